"""`liveedit bench-ray`: the Ray executor against the local one, and regions per minute as
GPU workers are added (sidecar/jobs/ray_bench.py; figures in docs/benchmarks.md and docs/scale-out.md)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from liveedit.commands._ray import ray_address


def _workers(text: str) -> tuple:
    counts = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            counts.append(None)
        elif part.isdigit() and int(part) > 0:
            counts.append(int(part))
        else:
            raise argparse.ArgumentTypeError(f"--workers takes worker counts and 'all', e.g. 1,all; got {part!r}")
    if not counts:
        raise argparse.ArgumentTypeError("--workers needs at least one count, e.g. 1,all")
    return tuple(counts)


def register(sub) -> None:
    p = sub.add_parser(
        "bench-ray",
        help="measure renders through a Ray cluster: one region vs the local executor, regions/minute per GPU count",
        description="region: one full-size region through the local executor and through one Ray worker "
        "(warmed up alike), alternately, and the Ray overhead. scaling: a job of --regions regions with 1 "
        "worker and then with more (--workers), regions per minute, speed-up, scaling efficiency, peak GPU "
        "memory and time to each worker's first frame; --kill-one kills a worker mid-region in the largest "
        "run and checks the job still completes whole. Random weights of the real shapes unless --weights.",
    )
    p.add_argument("--what", default="region", help="comma list of: region, scaling (default region)")
    p.add_argument("--ray", nargs="?", const="", default="", metavar="ADDRESS", type=ray_address,
                   help="the cluster's head node HOST:PORT or auto (default: a local cluster of this machine's GPUs)")
    p.add_argument("--model", default="liveedit-1.3b", help="preset (default liveedit-1.3b, 480x832)")
    p.add_argument("--weights", metavar="DIR", help="released weights instead of random ones (every worker reads them)")
    p.add_argument("--dtype", choices=("bf16", "fp16", "fp32"), default=None)
    p.add_argument("--frames", type=int, default=81, help="frames per region (default 81)")
    p.add_argument("--format", default="prores", choices=("prores", "h264", "png"))
    p.add_argument("--repeat", type=int, default=3, help="timed regions per executor in 'region' (default 3)")
    p.add_argument("--regions", type=int, default=8, help="regions in the job of 'scaling' (default 8)")
    p.add_argument("--workers", type=_workers, default=(1, None), help="worker counts for 'scaling' (default 1,all)")
    p.add_argument("--kill-one", action="store_true", help="'scaling': kill one worker mid-region in the largest run")
    p.add_argument("--work", type=Path, help="folder for the source clip and the outputs (default: a temporary one; "
                   "on a cluster of several machines, a shared folder)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--record", type=Path, help="append a dated table to this markdown file (docs/benchmarks.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile

    from liveedit.errors import InputError
    from liveedit.sidecar.jobs import ray_bench
    from liveedit.sidecar.models import ModelSpec
    from liveedit.sidecar.jobs.ray_executor import require_ray

    require_ray()
    what = [w.strip() for w in args.what.split(",") if w.strip()]
    if not what or set(what) - {"region", "scaling"} or min(args.frames, args.repeat, args.regions) < 1:
        raise InputError("--what takes region and/or scaling; --frames, --repeat and --regions at least 1")
    model = ModelSpec(args.model, weights_dir=args.weights, dtype=args.dtype, benchmark_random=args.weights is None)
    with tempfile.TemporaryDirectory(prefix="liveedit-bench-ray-") as temporary:
        config = ray_bench.BenchConfig(work=(args.work or Path(temporary)).resolve(), model=model,
                                       address=args.ray or None, frames=args.frames, format=args.format,
                                       repeat=args.repeat, regions=args.regions, workers=args.workers,
                                       kill_one=args.kill_one)
        results = []
        for item in what:
            result = ray_bench.bench_region(config) if item == "region" else ray_bench.bench_scaling(config)
            print(json.dumps(result))
            results.append(result)
    meta = {"date": datetime.date.today().isoformat(), "device": _device(), "commit": _commit(),
            "model": f"{args.model} {'random weights' if args.weights is None else 'weights ' + args.weights}"}
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if args.record:
        ray_bench.record(args.record, meta, results)
        print(f"recorded in {args.record}", file=sys.stderr)
    return 0


def _device() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return platform.processor() or "cpu"


def _commit() -> str:
    from liveedit.commands.bench import _commit as commit

    return commit()
