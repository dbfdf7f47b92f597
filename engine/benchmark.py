"""Speed measurements of the engine with random weights of a preset's real shapes.

Speed does not depend on the weights' values, so random weights give the real figures;
they never give a real edit. Every function returns plain dicts (JSON-ready). Timing
follows the device method: warm up first, synchronise the GPU around timed regions,
report medians.

Text encoding is left out of the streaming figures: it runs once per instruction, before
the stream, and the encoder is offloaded afterwards.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from contextlib import contextmanager

import numpy as np
import torch

from liveedit.engine import attention as attention_mod
from liveedit.engine import stream as stream_mod
from liveedit.engine.config import LATENT_CHANNELS, TAEHV_PRESETS, MaskCacheConfig, SamplerConfig, SpeedOptions
from liveedit.engine.editor import CHUNK_FRAMES, EditorModels, StreamingEditor
from liveedit.engine.presets import Preset
from liveedit.engine.speed import apply_speed_options
from liveedit.engine.stream import LatentStream
from liveedit.engine.transformer import LiveEditTransformer
from liveedit.engine.taehv import TAEHV, StreamingTAEHV
from liveedit.engine.vae import StreamingWanVAE, build_vae


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def _attention_backend(name: str):
    previous = attention_mod._requested
    attention_mod.set_attention_backend(name)
    try:
        yield
    finally:
        attention_mod.set_attention_backend(previous)


def _peak_gb(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**30


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class FixedContext:
    """Stands in for the text encoder in benchmarks: a random instruction embedding of the
    right shape (the real encoder runs once per instruction and is then offloaded)."""

    def __init__(self, preset: Preset, device, dtype, seed: int = 0):
        g = torch.Generator(device="cpu").manual_seed(seed)
        cfg = preset.text_encoder
        self._context = torch.randn(1, cfg.text_len, preset.transformer.text_dim, generator=g).to(device, dtype)

    def encode(self, instruction: str) -> torch.Tensor:
        return self._context


def random_models(preset: Preset, device, dtype, seed: int = 0) -> EditorModels:
    """Random-weight transformer and VAE built directly on the device (fast even at 1.3B)."""
    torch.manual_seed(seed)
    with torch.device(device):
        transformer = LiveEditTransformer(preset.transformer).to(dtype).eval()
        vae = build_vae(preset.vae).to(dtype).eval()
        tiny_vae = TAEHV(TAEHV_PRESETS["tiny" if preset.random_only else "taew2_1"]).to(dtype).eval()
    return EditorModels(
        preset=preset,
        transformer=transformer,
        vae=vae,
        tiny_vae=tiny_vae,
        text_encoder=FixedContext(preset, device, dtype, seed),
        description=f"{preset.name} with RANDOM weights (benchmark only)",
        random_weights=True,
    )


def standin_change(cfg, chunk: int, device, dtype, frames: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A stand-in for a real edit's change map (random weights make the real one random):
    (edited, source) latents of one chunk where an object (an ellipse over ~14% of the
    frame) moves 1.5 latent pixels per frame across a still background and the edit changes
    it strongly, and everything else changes a little (|N(0, 0.05)|)."""
    h, w = cfg.latent_height, cfg.latent_width
    g = torch.Generator(device="cpu").manual_seed(1000 + chunk)
    source = torch.randn(1, LATENT_CHANNELS, frames, h, w, generator=torch.Generator().manual_seed(7))
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    change = 0.05 * torch.randn(1, LATENT_CHANNELS, frames, h, w, generator=g)
    for f in range(frames):
        t = chunk * frames + f
        cy, cx = h / 2 + h / 6 * np.sin(t / 8), (0.2 * w + 1.5 * t) % w
        dx = torch.minimum((xs - cx).abs(), w - (xs - cx).abs())  # wraps around the frame's sides
        inside = ((ys - cy) / (0.22 * h)) ** 2 + (dx / (0.2 * w)) ** 2 <= 1
        change[:, :, f] += inside * (1.0 + 0.2 * torch.randn(1, LATENT_CHANNELS, h, w, generator=g))
    return (source + change).to(device, dtype), source.to(device, dtype)


def bench_transformer(
    models: EditorModels, *, window_frames: int = 21, backend: str = "auto", chunks: int = 4,
    sampler: SamplerConfig | None = None, mask_cache: MaskCacheConfig | None = None, standin: bool = False,
) -> dict:
    """Steady-state chunk time with a full window: fill the cache, then time more chunks
    (each = the denoising forwards + the clean refresh forward). ``mask_cache``:
    MaskCacheConfig() times the reference's token pruning (off when None). ``standin``:
    the mask cache picks its tokens from :func:`standin_change` instead of the random
    model's own (random) change map."""
    preset, device, dtype = models.preset, models.device, models.dtype
    cfg = preset.transformer
    sampler = sampler or SamplerConfig()
    kept: list[int] = []
    with _attention_backend(backend):
        stream = LatentStream(models.transformer, cfg, sampler, device=device, dtype=dtype,
                              window_frames=window_frames, record_timings=True, mask_cache=mask_cache,
                              cuda_graphs=models.speed.cuda_graphs)
        if mask_cache is not None:
            mask, end_chunk, counter = stream._mask, stream._mask.end_chunk, iter(range(10**9))

            def end_with_standin(edited, source):
                if standin:
                    edited, source = standin_change(cfg, next(counter), device, dtype, edited.shape[2])
                end_chunk(edited, source)
                kept.append(mask._previous.shape[2])

            mask.end_chunk = end_with_standin
        stream.start(models.text_encoder.encode("benchmark"), seed=0)
        source = torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width,
                             device=device, dtype=dtype)
        fill = -(-window_frames // cfg.chunk_frames)  # chunks until the window is full
        _reset_peak(device)
        for _ in range(fill + 1):  # +1: one more chunk, so the first timed one already evicts
            stream.edit_chunk(source)
        stream.timings.clear()
        for _ in range(chunks):
            stream.edit_chunk(source)
        chunk_s = [sum(t.step_seconds) + t.refresh_seconds for t in stream.timings]
        forward_s = [s for t in stream.timings for s in (*t.step_seconds, t.refresh_seconds)]
    chunk = statistics.median(chunk_s)
    frames_per_chunk = CHUNK_FRAMES  # a 3-latent chunk is 12 video frames
    from liveedit.engine import fast_attention

    return {
        "what": "transformer",
        "backend": attention_mod.attention_backend(device) if backend == "auto" else backend,
        "numerics": fast_attention.numerics(),
        "window_latent_frames": window_frames,
        "kv_tokens": window_frames * cfg.tokens_per_frame,
        "forwards_per_chunk": len(sampler.timesteps) + 1,
        "mask_cache": None if mask_cache is None else {
            "rule": mask_cache.rule, "bucket": mask_cache.bucket, "keep_ratio": mask_cache.keep_ratio,
            "pruned_steps": list(mask_cache.pruned_steps), "reused_fraction": stream.last_reused_fraction,
            "change_map": "stand-in (moving object)" if standin else "the random model's own",
            "kept_tokens_per_frame_timed_chunks": kept[-chunks:]},
        "ms_per_forward": 1000 * statistics.median(forward_s),
        "ms_per_chunk": 1000 * chunk,
        "fps": frames_per_chunk / chunk,
        "peak_gb": _peak_gb(device),
    }


def bench_vae(models: EditorModels, *, chunks: int = 4, tiny: bool = False) -> dict:
    """Streaming VAE: encode 12 frames and decode 3 latents per chunk at the model size.
    ``tiny``: the preview VAE (TAEHV) instead of the Wan VAE."""
    preset, device, dtype = models.preset, models.device, models.dtype
    vae = StreamingTAEHV(models.tiny_vae) if tiny else StreamingWanVAE(models.vae)
    frames = torch.rand(1, 3, 9, preset.height, preset.width, device=device, dtype=dtype)
    latents = vae.encode(frames)
    vae.decode(latents)  # first chunk: warm-up
    more = torch.rand(1, 3, CHUNK_FRAMES, preset.height, preset.width, device=device, dtype=dtype)
    enc, dec = [], []
    for _ in range(chunks):
        _sync(device)
        t0 = time.perf_counter()
        latents = vae.encode(more)
        _sync(device)
        t1 = time.perf_counter()
        vae.decode(latents)
        _sync(device)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    e, d = statistics.median(enc), statistics.median(dec)
    return {
        "what": "tiny-vae-streaming" if tiny else "wan-vae-streaming",
        "ms_per_frame_encode": 1000 * e / CHUNK_FRAMES,
        "ms_per_frame_decode": 1000 * d / CHUNK_FRAMES,
        "ms_per_frame": 1000 * (e + d) / CHUNK_FRAMES,
        "peak_gb": _peak_gb(device),
    }


def bench_editor(models: EditorModels, *, frames: int = 81, backend: str = "auto", seed: int = 0,
                 preview_vae: bool = False, mask_cache: MaskCacheConfig | None = None, label: str = "editor",
                 delivery=None) -> dict:
    """End to end: uint8 frames in, edited uint8 frames out, at the model size, for a clip
    of ``frames`` frames (cache growing as in the released 81-frame setting). Reports the
    whole-clip rate, the per-chunk split and the first chunk's latency (from its last
    source frame pushed to its first edited frame out). ``delivery``: the editor's detail
    delivery hook (engine/detail.py); None scales the model picture up (here: a no-op)."""
    preset, device = models.preset, models.device
    rng = np.random.default_rng(seed)
    clip = [rng.integers(0, 256, (preset.height, preset.width, 3), dtype=np.uint8) for _ in range(frames)]
    with _attention_backend(backend):
        options = dict(preview_vae=preview_vae, mask_cache=mask_cache, delivery=delivery)
        # Warm-up over a full window, twice: kernels, cuDNN plans per key count, the
        # allocator, then the CUDA graphs of every chunk position (captured by the second
        # stream, on the first one's pooled buffers), as `liveedit serve` does at start.
        for _ in range(2):
            warm = StreamingEditor(models, instruction="benchmark", seed=seed, **options)
            for frame in clip[:81]:
                warm.push(frame)
            warm.finish()
            del warm
        _reset_peak(device)
        first_out: list[float] = []  # when the first edited frame was handed out
        editor = StreamingEditor(models, instruction="benchmark", seed=seed, **options,
                                 on_frames=lambda frames: first_out or first_out.append(time.perf_counter()))
        out = 0
        first_latency = None
        start = time.perf_counter()
        for i, frame in enumerate(clip):
            pushed = time.perf_counter()
            edited = editor.push(frame)
            if edited and first_latency is None:
                first_latency = first_out[0] - pushed
            out += len(edited)
        out += len(editor.finish())
        _sync(device)
        total = time.perf_counter() - start
    assert out == frames, f"editor returned {out} frames for {frames}"
    later = editor.stats[1:] or editor.stats
    med = lambda xs: 1000 * statistics.median(xs)  # noqa: E731
    return {
        "what": label,
        "frames": frames,
        "fps": frames / total,
        "first_chunk_latency_ms": 1000 * first_latency,
        "chunk_ms_encode": med([s.encode_seconds for s in later]),
        "chunk_ms_transformer": med([s.transformer_seconds for s in later]),
        "chunk_ms_decode": med([s.decode_seconds for s in later]),
        "chunk_ms_total": med([s.total_seconds for s in later]),
        "first_chunk_ms": {"encode": 1000 * editor.stats[0].encode_seconds,
                           "transformer": 1000 * editor.stats[0].transformer_seconds,
                           "decode": 1000 * editor.stats[0].decode_seconds},
        "peak_gb": _peak_gb(device),
    }


# Source frames the detail bench delivers to, for the released model's 480x832 picture:
# (label, height, width, frame type). Other presets scale them with their model picture.
DETAIL_BENCH_SOURCES = (("uhd-10bit", 2160, 3840, torch.uint16), ("1080p-10bit", 1080, 1920, torch.uint16),
                        ("480x832-8bit", 480, 832, torch.uint8))


def bench_detail(preset: Preset, device: torch.device, *, frames: int = 4, repeats: int = 20, seed: int = 0) -> dict:
    """Detail delivery (engine/detail.py) alone, per frame, at the sizes above: the source
    frames and the edited and seen model pictures already on the device, as the editor has
    them after a latent's decode (``frames`` frames per call: one latent). Also UHD with
    the delivered frames' download to pinned host memory, which the editor does next.
    Medians of ``repeats`` calls, the device synchronised around each."""
    from liveedit.engine.detail import deliver
    from liveedit.engine.config import DetailConfig
    from liveedit.engine.picture import place

    g = torch.Generator(device="cpu").manual_seed(seed)
    model_size = (preset.height, preset.width)
    result: dict = {"what": "detail", "frames_per_call": frames}

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times) / frames

    for label, height, width, dtype in DETAIL_BENCH_SOURCES:
        h, w = round(height * preset.height / 480), round(width * preset.width / 832)
        p = place((h, w), model_size)
        full = 255 if dtype == torch.uint8 else 65535
        source = torch.randint(0, full + 1, (frames, h, w, 3), generator=g, dtype=torch.int32).to(dtype).to(device)
        seen = torch.rand(frames, 3, p.height, p.width, generator=g).to(device)
        edited = (seen + 0.1 * torch.rand(frames, 3, p.height, p.width, generator=g).to(device)).clamp_(0, 1)
        entry: dict = {"source": f"{w}x{h}", "model_picture": f"{p.width}x{p.height}"}
        for mode in ("transfer", "masked"):
            config = DetailConfig(mode)
            entry[f"{mode}_ms_per_frame"] = timed(lambda: deliver(source, edited, seen, config))
        if label.startswith("uhd"):
            host = torch.empty(source.shape, dtype=dtype, pin_memory=device.type == "cuda")
            config = DetailConfig("transfer")
            entry["transfer_with_download_ms_per_frame"] = timed(
                lambda: host.copy_(deliver(source, edited, seen, config)[0], non_blocking=True))
        result[label] = entry
        del source, seen, edited
    return result


@contextmanager
def _speed_switched(models: EditorModels, **switches):
    """``models`` with some SpeedOptions changed, put back afterwards."""
    previous = models.speed
    apply_speed_options(models, dataclasses.replace(previous, **switches))
    try:
        yield
    finally:
        apply_speed_options(models, previous)


def _same_chunks_both_ways(models: EditorModels, switch: str, *, chunks: int, seed: int, window_frames=None,
                           mask_cache: MaskCacheConfig | None = None):
    """Run the same chunks from the same seed with the SpeedOptions field ``switch`` off,
    then on; returns (off, on) edited latents and the stream of the second run."""
    cfg = models.preset.transformer
    device, dtype = models.device, models.dtype
    g = torch.Generator(device="cpu").manual_seed(seed)
    sources = [torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width, generator=g)
               .to(device, dtype) for _ in range(chunks)]
    outputs = []
    for on in (False, True):
        with _speed_switched(models, **{switch: on}):
            stream = LatentStream(models.transformer, cfg, SamplerConfig(), device=device, dtype=dtype,
                                  window_frames=window_frames, mask_cache=mask_cache,
                                  cuda_graphs=models.speed.cuda_graphs)
            stream.start(models.text_encoder.encode("check"), seed=seed)
            outputs.append(torch.cat([stream.edit_chunk(s) for s in sources], dim=2).float())
    return outputs[0], outputs[1], stream


def check_fused_matches_eager(models: EditorModels, *, chunks: int = 2, seed: int = 0) -> dict:
    """The fused (compiled) path must compute what the eager path computes: run the same
    chunks both ways from the same seed and compare the edited latents (‖a−b‖/‖b‖)."""
    eager, fused, _ = _same_chunks_both_ways(models, "fuse_elementwise", chunks=chunks, seed=seed)
    rel = float((fused - eager).norm() / eager.norm())
    return {"what": "check-fused-vs-eager", "relative_error": rel, "finite": bool(torch.isfinite(fused).all())}


def profile_transformer(models: EditorModels, *, window_frames: int = 21, top: int = 25,
                        mask_cache: MaskCacheConfig | None = None) -> dict:
    """Where one steady-state chunk's GPU time goes: the top kernels by total time."""
    from torch.profiler import ProfilerActivity, profile

    cfg = models.preset.transformer
    stream = LatentStream(models.transformer, cfg, SamplerConfig(), device=models.device, dtype=models.dtype,
                          window_frames=window_frames, mask_cache=mask_cache, cuda_graphs=models.speed.cuda_graphs)
    stream.start(models.text_encoder.encode("profile"), seed=0)
    source = torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width,
                         device=models.device, dtype=models.dtype)
    for _ in range(-(-window_frames // cfg.chunk_frames) + 1):
        stream.edit_chunk(source)
    _sync(models.device)
    cuda = models.device.type == "cuda"
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        stream.edit_chunk(source)
        _sync(models.device)
    rows = []
    time_of = (lambda e: e.self_device_time_total) if cuda else (lambda e: e.self_cpu_time_total)  # noqa: E731
    events = sorted(prof.key_averages(), key=time_of, reverse=True)
    total = sum(time_of(e) for e in events) or 1
    for e in events[:top]:
        rows.append({"kernel": e.key[:90], "calls": e.count, "ms": time_of(e) / 1000, "share": time_of(e) / total})
    return {"what": "profile-transformer-chunk", "gpu_ms": total / 1000, "top": rows}


def check_vae_speed_options(models: EditorModels, *, seed: int = 0) -> dict:
    """The VAE with the speed options (lean convs and norms, channels-last, fusion) must
    encode and decode what the plain VAE does: ‖fast − plain‖/‖plain‖ for 21 frames."""
    preset, device, dtype = models.preset, models.device, models.dtype
    g = torch.Generator(device="cpu").manual_seed(seed)
    frames = torch.rand(1, 3, 21, preset.height, preset.width, generator=g).to(device, dtype)

    def run():
        vae = StreamingWanVAE(models.vae)
        latents = torch.cat([vae.encode(frames[:, :, :9]), vae.encode(frames[:, :, 9:])], 2)
        return latents.float(), vae.decode(latents).float()

    fast = run()
    with _speed_switched(models, **dataclasses.asdict(SpeedOptions.plain())):
        plain = run()
    rel = [float((a - b).norm() / b.norm()) for a, b in zip(fast, plain)]
    # The fused norm+SiLU kernel alone, in both layouts, against its torch reference.
    from liveedit.engine.vae_fused import norm_silu, norm_silu_reference

    kernel = {}
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        x = torch.randn(1, 96, 4, 60, 104, generator=g).to(device, dtype).contiguous(memory_format=layout)
        gamma = (torch.rand(96, 1, 1, 1, generator=g) + 0.5).to(device, dtype)
        ref = norm_silu_reference(x, gamma, 0.0, 96**0.5).float()
        kernel[str(layout).split(".")[-1]] = float((norm_silu(x, gamma, 0.0, 96**0.5).float() - ref).norm() / ref.norm())
    return {"what": "check-vae-speed-options", "latents_relative_error": rel[0], "pixels_relative_error": rel[1],
            "norm_silu_kernel_relative_error": kernel}


def check_overlap_matches_serial(models: EditorModels, *, frames: int = 45, seed: int = 0) -> dict:
    """The editor with its VAE on a second CUDA stream (decode beside the refresh forward)
    must hand out the frames the one-stream editor does."""
    rng = np.random.default_rng(seed)
    clip = [rng.integers(0, 256, (models.preset.height, models.preset.width, 3), dtype=np.uint8) for _ in range(frames)]
    out = {}
    for overlap in (False, True, False):
        with _speed_switched(models, overlap_vae=overlap):
            out.setdefault(overlap, []).append(np.stack(list(StreamingEditor(models, instruction="check", seed=seed).edit(clip))))
    serial, serial_again, overlapped = out[False][0], out[False][1], out[True][0]
    diff = np.abs(overlapped.astype(np.int16) - serial.astype(np.int16))
    return {"what": "check-overlap-vae", "frames": frames, "max_abs_diff_uint8": int(diff.max()),
            "mean_abs_diff_uint8": float(diff.mean()), "bitwise_equal": bool(np.array_equal(overlapped, serial)),
            "serial_runs_bitwise_equal": bool(np.array_equal(serial, serial_again))}


def check_graphs_match_eager(models: EditorModels, *, window_frames: int = 9, chunks: int = 6, seed: int = 0) -> dict:
    """Chunks replayed from CUDA graphs must equal the same chunks run eagerly (same
    kernels, same inputs): once within one stream (steady state), then in a second stream
    on the pooled buffers, whose first chunks replay the first stream's graphs; without
    and with the mask cache (whose record / prune steps are graphs of their own)."""
    import gc

    result = {"what": "check-cuda-graphs"}
    for name, mask_cache in (("", None), ("mask_cache_", MaskCacheConfig())):
        run = lambda: _same_chunks_both_ways(models, "cuda_graphs", chunks=chunks, seed=seed,  # noqa: E731
                                             window_frames=window_frames, mask_cache=mask_cache)
        eager, graphs, stream = run()
        captured = len(stream._graphs)
        del stream
        gc.collect()  # the stream's buffers and graphs go back to the pool
        again = run()[1]
        result.update({f"{name}relative_error": float((graphs - eager).norm() / eager.norm()),
                       f"{name}graphs_captured": captured, f"{name}bitwise_equal": bool(torch.equal(graphs, eager)),
                       f"{name}second_stream_bitwise_equal": bool(torch.equal(again, eager))})
    return result


def bench_mask_rules(models: EditorModels, *, window_frames: int = 21, random_map: bool = False) -> dict:
    """Both token rules' steady-state speed (keep ratio 0.3, steps 1-2, self-attention), on
    the stand-in change map (and on the random model's own with ``random_map``); CUDA
    graphs as configured."""
    out = {"what": "mask-cache-rules"}
    for rule in ("reference", "fixed"):
        for standin in (True, False) if random_map else (True,):
            r = bench_transformer(models, window_frames=window_frames, mask_cache=MaskCacheConfig(rule=rule),
                                  standin=standin)
            out[f"{rule}, {'stand-in' if standin else 'random'} change map"] = {
                "ms_per_chunk": r["ms_per_chunk"], "fps": r["fps"],
                "kept_tokens_per_frame": r["mask_cache"]["kept_tokens_per_frame_timed_chunks"]}
    return out


def check_mask_buckets(models: EditorModels, *, window_frames: int = 9, chunks: int = 6, seed: int = 0) -> dict:
    """The reference rule with its token count bucketed (padded rows computed and thrown
    away, attention limited to the real keys; CUDA graphs as configured) against the exact
    count (eager pruned steps): the same chunks from the same seed."""
    result = {"what": "check-mask-buckets"}
    outputs = {}
    for bucket in (0, 32):
        cfg = models.preset.transformer
        g = torch.Generator(device="cpu").manual_seed(seed)
        sources = [torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width, generator=g)
                   .to(models.device, models.dtype) for _ in range(chunks)]
        stream = LatentStream(models.transformer, cfg, SamplerConfig(), device=models.device, dtype=models.dtype,
                              window_frames=window_frames, mask_cache=MaskCacheConfig(bucket=bucket),
                              cuda_graphs=models.speed.cuda_graphs)
        stream.start(models.text_encoder.encode("check"), seed=seed)
        outputs[bucket] = torch.cat([stream.edit_chunk(s) for s in sources], dim=2).float()
        if bucket:
            result["graphs_captured"] = len(stream._graphs)
            result["kept_tokens_per_frame_last"] = stream._mask._previous.shape[2]
        del stream
    exact, padded = outputs[0], outputs[32]
    result.update({"bitwise_equal": bool(torch.equal(padded, exact)),
                   "relative_error": float((padded - exact).norm() / exact.norm())})
    return result


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def check_fast_numerics(models: EditorModels, *, frames: int = 9 + 12 * 14, seed: int = 0) -> dict:
    """The error fast numerics (engine/fast_attention.py) cost, on the same random weights
    and inputs as the reference numerics: (1) relative error of each forward of one
    steady-state chunk (full window; both numerics on the same inputs and cache, graphs
    off); (2) over a 177-frame stream through the whole editor (Wan VAE both ways, CUDA
    graphs as configured), each chunk's edited latents (relative error) and every decoded
    frame (PSNR in dB against the reference numerics' frame, uint8)."""
    from liveedit.engine import fast_attention

    ok, why = fast_attention.available(models.device)
    if not ok:
        return {"what": "check-fast-numerics", "skipped": why}
    cfg, device, dtype = models.preset.transformer, models.device, models.dtype
    previous = fast_attention.numerics()
    rel = lambda a, b: float((a.float() - b.float()).norm() / b.float().norm())  # noqa: E731
    result = {"what": "check-fast-numerics"}
    try:
        # (1) per forward
        g = torch.Generator(device="cpu").manual_seed(seed)
        stream = LatentStream(models.transformer, cfg, SamplerConfig(), device=device, dtype=dtype)  # no graphs
        stream.start(models.text_encoder.encode("check"), seed=seed)
        fill = -(-cfg.window_frames // cfg.chunk_frames) + 1
        for _ in range(fill):
            stream.edit_chunk(torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width,
                                          generator=g).to(device, dtype))
        model, errors = models.transformer, []

        def both(*args, **kwargs):
            fast_attention.set_numerics("fast")
            fast = type(model).forward_chunk(model, *args, **kwargs)
            fast = None if fast is None else fast.clone()
            fast_attention.set_numerics("reference")
            ref = type(model).forward_chunk(model, *args, **kwargs)  # rewrites the chunk's K/V: the stream stays on reference
            if ref is not None:
                errors.append(rel(fast, ref))
            return ref

        model.forward_chunk = both
        try:
            stream.edit_chunk(torch.randn(1, LATENT_CHANNELS, cfg.chunk_frames, cfg.latent_height, cfg.latent_width,
                                          generator=g).to(device, dtype))
            stream.refresh_pending()
        finally:
            del model.forward_chunk
        result["forward_relative_error_steps"] = errors
        del stream

        # (2) a 177-frame stream, end to end
        rng = np.random.default_rng(seed)
        clip = [rng.integers(0, 256, (models.preset.height, models.preset.width, 3), dtype=np.uint8) for _ in range(frames)]
        runs = {}
        for name in ("reference", "fast"):
            stream_mod.release_idle_buffers(models.transformer)  # graphs are captured per numerics
            fast_attention.set_numerics(name)
            editor = StreamingEditor(models, instruction="check", seed=seed)
            latents = []
            edit_chunk = editor._stream.edit_chunk
            editor._stream.edit_chunk = lambda s: latents.append(edit_chunk(s)) or latents[-1]
            out = list(editor.edit(clip))
            runs[name] = ([x.float().cpu() for x in latents], out)
            del editor
        (ref_lat, ref_frames), (fast_lat, fast_frames) = runs["reference"], runs["fast"]
        chunk_err = [rel(a, b) for a, b in zip(fast_lat, ref_lat)]
        psnr = [_psnr(a, b) for a, b in zip(fast_frames, ref_frames)]
        result.update({
            "frames": frames, "chunk_latents_relative_error": chunk_err,
            "chunk_latents_relative_error_median": float(np.median(chunk_err)),
            "chunk_latents_relative_error_max": float(np.max(chunk_err)),
            "frame_psnr_db_mean": float(np.mean(psnr)), "frame_psnr_db_min": float(np.min(psnr)),
            "frame_psnr_db_per_chunk_min": [float(np.min(psnr[max(0, 9 + 12 * (i - 1)) if i else 0:9 + 12 * i]))
                                            for i in range(len(chunk_err))],
        })
    finally:
        fast_attention.set_numerics(previous)
        stream_mod.release_idle_buffers(models.transformer)
    return result
