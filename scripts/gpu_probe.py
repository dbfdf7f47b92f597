"""Kernel-level probes for the speed work (issue 7), one call on the GPU box.

Measures the two ceilings (device copy bandwidth, bf16 and fp8 matrix rate), our shapes'
attention and GEMM kernels in isolation, and where one steady-state chunk of the
transformer and of the Wan VAE spends its GPU time. Prints a short table per part and
writes everything as JSON to $OUT/probe.json (or ./probe.json).

    source scripts/gpu_env.sh && (cd /tmp && python3 /path/to/scripts/gpu_probe.py [parts])

parts: ceilings, attention, gemm, profile, op-profile, vae-profile, overlap-ab, warm-up
(default: the first six).
"""

from __future__ import annotations

import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def bench(fn, *, warm=5, reps=20) -> float:
    """Median ms of ``fn`` timed with CUDA events."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def ceilings() -> dict:
    x = torch.randn(256 * 2**20, device="cuda", dtype=torch.bfloat16)  # 512 MiB
    y = torch.empty_like(x)
    ms = bench(lambda: y.copy_(x))
    gbs = 2 * x.numel() * 2 / ms / 1e6
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    ms_mm = bench(lambda: a @ b)
    out = {"copy_GBps": gbs, "bf16_TFLOPs": 2 * 8192**3 / ms_mm / 1e9}
    a8, b8 = a.to(torch.float8_e4m3fn), b.t().contiguous().to(torch.float8_e4m3fn).t()
    one = torch.ones((), device="cuda")
    try:
        ms8 = bench(lambda: torch._scaled_mm(a8, b8, one, one, out_dtype=torch.bfloat16))
        out["fp8_TFLOPs"] = 2 * 8192**3 / ms8 / 1e9
    except Exception as e:  # noqa: BLE001
        out["fp8_error"] = repr(e)[:200]
    print("ceilings", json.dumps(out))
    return out


def attention() -> list[dict]:
    rows = []
    heads, d = 12, 128
    backends = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}
    for lq, lk in [(4680, 32760), (9360, 32760), (1404, 32760), (4680, 4680), (4680, 18720)]:
        for layout in ("BLHD", "BHLD"):
            if layout == "BLHD":
                q = torch.randn(1, lq, heads, d, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
                k = torch.randn(1, lk, heads, d, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
                v = torch.randn(1, lk, heads, d, device="cuda", dtype=torch.bfloat16).transpose(1, 2)
            else:
                q = torch.randn(1, heads, lq, d, device="cuda", dtype=torch.bfloat16)
                k = torch.randn(1, heads, lk, d, device="cuda", dtype=torch.bfloat16)
                v = torch.randn(1, heads, lk, d, device="cuda", dtype=torch.bfloat16)
            for name, be in backends.items():
                if name == "flash" and layout == "BHLD":
                    continue
                try:
                    with sdpa_kernel([be]):
                        ms = bench(lambda: F.scaled_dot_product_attention(q, k, v))
                except RuntimeError as e:
                    rows.append({"lq": lq, "lk": lk, "layout": layout, "backend": name, "error": str(e)[:120]})
                    continue
                flops = 4 * lq * lk * heads * d
                rows.append({"lq": lq, "lk": lk, "layout": layout, "backend": name, "ms": ms,
                             "TFLOPs": flops / ms / 1e9, "ms_x30_layers": 30 * ms})
    for r in rows:
        print("attention", json.dumps(r))
    return rows


def gemm() -> list[dict]:
    rows = []
    m = 4680
    for n, k in [(1536, 1536), (8960, 1536), (1536, 8960), (1536 * 3, 1536)]:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
        bias = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        ms = bench(lambda: F.linear(x, w, bias))
        row = {"m": m, "n": n, "k": k, "bf16_ms": ms, "bf16_TFLOPs": 2 * m * n * k / ms / 1e9}
        # fp8 row-wise scales: activations per row, weights per output channel.
        w8s = w.float().abs().amax(1, keepdim=True) / 448
        w8 = (w.float() / w8s).to(torch.float8_e4m3fn)

        def fp8():
            xs = x.float().abs().amax(1, keepdim=True) / 448
            x8 = (x.float() / xs).to(torch.float8_e4m3fn)
            return torch._scaled_mm(x8, w8.t(), xs, w8s.t(), bias=bias, out_dtype=torch.bfloat16)

        try:
            ref = F.linear(x.float(), w.float(), bias.float())
            row["fp8_rel_err"] = float((fp8().float() - ref).norm() / ref.norm())
            row["fp8_ms_with_quant"] = bench(fp8)
            xs = x.float().abs().amax(1, keepdim=True) / 448
            x8 = (x.float() / xs).to(torch.float8_e4m3fn)
            row["fp8_ms_gemm_only"] = bench(lambda: torch._scaled_mm(x8, w8.t(), xs, w8s.t(), bias=bias,
                                                                     out_dtype=torch.bfloat16))
        except Exception as e:  # noqa: BLE001
            row["fp8_error"] = repr(e)[:200]
        rows.append(row)
        print("gemm", json.dumps(row))
    return rows


def _models():
    from liveedit.engine import benchmark
    from liveedit.engine.presets import get_preset
    from liveedit.engine.config import SpeedOptions
    from liveedit.engine.speed import apply_speed_options

    models = benchmark.random_models(get_preset("liveedit-1.3b"), torch.device("cuda"), torch.bfloat16)
    apply_speed_options(models, SpeedOptions())
    return models


def profile(models) -> dict:
    from liveedit.engine import benchmark

    r = benchmark.profile_transformer(models, top=45)
    print(f"profile transformer chunk: GPU {r['gpu_ms']:.1f} ms")
    for row in r["top"]:
        print(f"  {row['ms']:8.2f} ms {row['calls']:5d}x {row['share']:6.1%}  {row['kernel']}")
    return r


def op_profile(models) -> dict:
    """One steady-state chunk by aten op and input shapes: which eager ops cost GPU time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from liveedit.engine.config import LATENT_CHANNELS, SamplerConfig
    from liveedit.engine.stream import LatentStream

    cfg = models.preset.transformer
    stream = LatentStream(models.transformer, cfg, SamplerConfig(), device=models.device, dtype=models.dtype,
                          cuda_graphs=models.speed.cuda_graphs)
    stream.start(models.text_encoder.encode("profile"), seed=0)
    source = torch.randn(1, LATENT_CHANNELS, 3, cfg.latent_height, cfg.latent_width, device="cuda", dtype=torch.bfloat16)
    for _ in range(9):
        stream.edit_chunk(source)
    torch.cuda.synchronize()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        stream.edit_chunk(source)
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages(group_by_input_shape=True) if e.self_device_time_total > 0]
    events.sort(key=lambda e: e.self_device_time_total, reverse=True)
    rows = [{"op": e.key, "calls": e.count, "ms": e.self_device_time_total / 1000, "shapes": str(e.input_shapes)[:160]}
            for e in events[:40]]
    print("ops of one steady chunk (self GPU time):")
    for r in rows:
        print(f"  {r['ms']:8.2f} ms {r['calls']:5d}x  {r['op'][:40]:40s} {r['shapes']}")
    return {"top": rows}


def overlap_ab(models) -> dict:
    """Editor end to end with the VAE on its own stream or not, alternating in one process."""
    import dataclasses

    from liveedit.engine import benchmark
    from liveedit.engine.speed import apply_speed_options

    out = []
    for overlap in (False, True, False, True):
        apply_speed_options(models, dataclasses.replace(models.speed, overlap_vae=overlap))
        r = benchmark.bench_editor(models, frames=9 + 12 * 14)
        r["overlap_vae"] = overlap
        print("overlap-ab", json.dumps({k: r[k] for k in ("overlap_vae", "fps", "first_chunk_latency_ms",
                                                            "chunk_ms_encode", "chunk_ms_transformer", "chunk_ms_decode")}))
        out.append(r)
    return {"runs": out}


def vae_profile(models) -> dict:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    from liveedit.engine.vae import StreamingWanVAE

    p = models.preset
    vae = StreamingWanVAE(models.vae)
    first = torch.rand(1, 3, 9, p.height, p.width, device="cuda", dtype=torch.bfloat16)
    more = torch.rand(1, 3, 12, p.height, p.width, device="cuda", dtype=torch.bfloat16)
    vae.decode(vae.encode(first))
    for _ in range(2):
        vae.decode(vae.encode(more))
    torch.cuda.synchronize()
    out = {}
    for part in ("encode", "decode"):
        latents = vae.encode(more)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            if part == "encode":
                vae.encode(more)
            else:
                vae.decode(latents)
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        events = sorted(prof.key_averages(), key=lambda e: e.self_device_time_total, reverse=True)
        total = sum(e.self_device_time_total for e in events) / 1000
        rows = [{"kernel": e.key[:90], "calls": e.count, "ms": e.self_device_time_total / 1000} for e in events[:25]]
        print(f"profile VAE {part} of 12 frames: GPU {total:.1f} ms, wall {1000 * wall:.1f} ms (profiled)")
        for row in rows:
            print(f"  {row['ms']:8.2f} ms {row['calls']:5d}x  {row['kernel']}")
        out[part] = {"gpu_ms": total, "top": rows}
    return out


def warm_up(models) -> dict:
    from liveedit.engine import benchmark, speed

    t = speed.warm_up(models, preview=True)
    after = benchmark.bench_editor(models, frames=81)
    r = {"warm_up_s": t, "editor_after_warm_up": after}
    print("warm-up", json.dumps(r))
    return r


def main(parts: list[str]) -> None:
    print(torch.__version__, torch.cuda.get_device_name(), "cudnn", torch.backends.cudnn.version())
    results: dict = {}
    models = None
    for part in parts:
        if part == "ceilings":
            results[part] = ceilings()
        elif part == "attention":
            results[part] = attention()
        elif part == "gemm":
            results[part] = gemm()
        else:
            models = models or _models()
            parts_with_models = {"profile": profile, "vae-profile": vae_profile, "warm-up": warm_up,
                                 "op-profile": op_profile, "overlap-ab": overlap_ab}
            results[part] = parts_with_models[part](models)
    path = os.path.join(os.environ.get("OUT", "."), f"probe-{parts[0]}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:] or ["ceilings", "attention", "gemm", "profile", "vae-profile", "warm-up"])
