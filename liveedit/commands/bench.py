"""`liveedit bench`: speed of the engine with random weights of a preset's real shapes."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import liveedit.engine
from liveedit.commands._models import DTYPES
from liveedit.engine.config import MaskCacheConfig, SpeedOptions
from liveedit.engine.presets import get_preset


def register(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure engine speed (random weights of the real shapes; no edit quality)",
        description="Time the transformer, the streaming VAE and the whole editor. Random weights: "
        "speed does not depend on their values, and nothing is edited.",
    )
    p.add_argument("--model", default="liveedit-1.3b", help="preset (default liveedit-1.3b)")
    p.add_argument("--device", default=None,
                   help="cuda (default), cuda:1, or cpu: without a GPU, bench runs only when asked for --device cpu")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    p.add_argument("--what", default="transformer,vae,editor",
                   help="comma list of: transformer, transformer-reference, vae, editor, editor-detail, detail, editor-sustained, editor-mask-cache, editor-sustained-mask-cache, editor-preview, editor-reference, check-fused, check-vae, check-graphs, check-overlap, check-mask-buckets, mask-cache-rules[-all], check-fast-numerics, tiny-vae, transformer-mask-cache[-RATIO], profile, profile-mask-cache")
    p.add_argument("--window", type=int, default=21, help="KV window in latent frames (default 21, as released)")
    p.add_argument("--plain", action="store_true",
                   help="the reference's choices: no fusion, no cuDNN autotuning, default layouts")
    p.add_argument("--numerics", choices=["reference", "fast"], default="reference",
                   help="reference: bf16 (default); fast: FP8 self-attention through cuDNN on Hopper (opt-in, "
                        "numerically different: see check-fast-numerics). A measurement named NAME@fast in "
                        "--what runs with fast numerics whatever this says")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--record", type=Path, help="append a dated table to this markdown file (docs/benchmarks.md)")
    p.set_defaults(func=run)


def _commit() -> str:
    """The commit measured: $LIVEEDIT_COMMIT (set it where the checkout has no .git), else git."""
    if os.environ.get("LIVEEDIT_COMMIT"):
        return os.environ["LIVEEDIT_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(liveedit.engine.__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args) -> int:
    import torch  # here, not at the top: building the parser must not load torch

    from liveedit.engine import benchmark
    from liveedit.engine.speed import apply_speed_options
    from liveedit.engine.stream import release_idle_buffers

    preset = get_preset(args.model)
    if args.device is None and not torch.cuda.is_available():
        from liveedit.errors import InputError

        raise InputError(f"no GPU found: liveedit bench measures the engine's speed on a GPU; pass --device cpu to "
                         f"time {preset.name} on the CPU instead (the real shapes take minutes per chunk there)")
    device = torch.device(args.device or "cuda")
    dtype = getattr(torch, DTYPES[args.dtype])
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"liveedit bench: {preset.name} with RANDOM weights on {device_name}, {args.dtype}: building the model, "
          f"then timing {args.what}", flush=True)
    models = benchmark.random_models(preset, device, dtype)
    speed = SpeedOptions.plain() if args.plain else SpeedOptions.for_device(device)
    apply_speed_options(models, speed)
    print(f"speed options: {speed}")
    results = []
    from liveedit.engine import fast_attention

    if args.numerics == "fast" or "@fast" in args.what:
        ok, why = fast_attention.available(device)
        if not ok:
            from liveedit.errors import InputError

            raise InputError(f"--numerics fast needs FP8 attention, which is not available here: {why}")
    for what in [w.strip() for w in args.what.split(",") if w.strip()]:
        # Each measurement as in a process that holds nothing else: no idle stream buffers
        # (KV caches, graphs) of earlier measurements in its peak memory.
        release_idle_buffers(models.transformer)
        numerics = "fast" if what.endswith("@fast") else args.numerics
        what = what.removesuffix("@fast")
        fast_attention.set_numerics(numerics)
        if what == "transformer":
            r = benchmark.bench_transformer(models, window_frames=args.window, backend="auto")
        elif what == "transformer-reference":
            # torch's default SDPA choice (the FlashAttention-2 kernel on Hopper): the
            # reference code's attention, for the before/after ratio.
            r = benchmark.bench_transformer(models, window_frames=args.window, backend="sdpa")
        elif what == "check-fused":
            r = benchmark.check_fused_matches_eager(models)
        elif what == "check-graphs":
            r = benchmark.check_graphs_match_eager(models)
        elif what == "check-overlap":
            r = benchmark.check_overlap_matches_serial(models)
        elif what == "check-fast-numerics":
            r = benchmark.check_fast_numerics(models)
        elif what == "check-mask-buckets":
            r = benchmark.check_mask_buckets(models)
        elif what in ("mask-cache-rules", "mask-cache-rules-all"):  # -all: the random model's change map too
            r = benchmark.bench_mask_rules(models, window_frames=args.window, random_map=what.endswith("-all"))
        elif what == "check-vae":
            r = benchmark.check_vae_speed_options(models)
        elif what == "vae":
            r = benchmark.bench_vae(models)
        elif what == "tiny-vae":
            r = benchmark.bench_vae(models, tiny=True)
        elif what.startswith("transformer-mask-cache"):  # e.g. transformer-mask-cache-0.5
            ratio = float(what.rsplit("-", 1)[1]) if what[-1].isdigit() else 0.3
            r = benchmark.bench_transformer(models, window_frames=args.window,
                                            mask_cache=MaskCacheConfig(keep_ratio=ratio))
        elif what == "editor-preview":
            r = benchmark.bench_editor(models, frames=81, preview_vae=True, mask_cache=MaskCacheConfig(),
                                       label="editor-preview (tiny VAE + mask cache)")
        elif what == "profile":
            r = benchmark.profile_transformer(models, window_frames=args.window)
        elif what == "profile-mask-cache":
            r = benchmark.profile_transformer(models, window_frames=args.window, mask_cache=MaskCacheConfig())
        elif what == "editor":
            r = benchmark.bench_editor(models, frames=81)
        elif what == "detail":  # delivery at the source's size and bit depth (UHD 10-bit, 1080p, 480x832)
            r = benchmark.bench_detail(preset, device)
        elif what == "editor-detail":  # the editor at 480x832 with detail delivery, against "editor"
            from liveedit.engine.detail import SourceDetail
            from liveedit.engine.config import DetailConfig

            r = benchmark.bench_editor(models, frames=81, delivery=SourceDetail(DetailConfig("transfer")),
                                       label="editor-detail (transfer)")
        elif what == "editor-reference":
            r = benchmark.bench_editor(models, frames=81, backend="sdpa", label="editor-reference (FA2 kernel)")
        elif what == "editor-sustained":
            r = benchmark.bench_editor(models, frames=9 + 12 * 14)
        elif what in ("editor-mask-cache", "editor-sustained-mask-cache"):  # full VAE, the reference's pruning
            r = benchmark.bench_editor(models, frames=81 if what == "editor-mask-cache" else 9 + 12 * 14,
                                       mask_cache=MaskCacheConfig(), label=what)
        else:
            raise SystemExit(f"liveedit bench: unknown measurement {what!r}")
        if numerics == "fast" and what != "check-fast-numerics":
            r["what"] = f"{r['what']} [fast numerics: FP8 attention]"
        results.append(r)
        print(json.dumps(r))
    meta = {
        "date": datetime.date.today().isoformat(),
        "device": device_name,
        "torch": torch.__version__,
        "commit": _commit(),
        "preset": preset.name,
        "dtype": args.dtype,
        "weights": "random",
        "speed": str(speed),
    }
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if args.record:
        _record(args.record, meta, results)
    return 0


def _record(path: Path, meta: dict, results: list[dict]) -> None:
    lines = [f"\n### {meta['date']} · {meta['device']} · commit {meta['commit']} · {meta['preset']} {meta['dtype']}, "
             f"random weights, torch {meta['torch']}, {meta['speed']}\n", "| measurement | figures |", "| --- | --- |"]
    for r in results:
        figures = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items() if k != "what")
        lines.append(f"| {r['what']} | {figures} |")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")
