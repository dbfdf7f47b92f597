"""`liveedit bench-transport`: frames/s through the sidecar, in-message vs shared memory."""

from __future__ import annotations

from pathlib import Path

from liveedit.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "bench-transport",
        help="measure frame transport through the gRPC sidecar (in-message vs shared memory, 480p/1080p)",
        description="Stream frames through a local sidecar with a pass-through editor (no model) and "
        "report frames per second for each transport and size.",
    )
    p.add_argument("--frames", type=int, default=120, help="frames per measurement (default 120)")
    p.add_argument("--sizes", default="480p,1080p", help="comma list of 480p, 1080p")
    p.add_argument("--record", type=Path, help="append a dated table to this markdown file (docs/benchmarks.md)")
    p.set_defaults(func=run)


def run(args) -> int:
    from liveedit.commands import _transport_bench as transport_bench

    sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    unknown = [s for s in sizes if s not in transport_bench.SIZES]
    if unknown or args.frames < 1:
        raise InputError(f"--sizes takes {', '.join(transport_bench.SIZES)} and --frames at least 1; "
                         f"got {args.sizes!r}, {args.frames}")
    results = transport_bench.run(args.frames, sizes)
    print("\n".join(transport_bench.table(results)))
    if args.record:
        transport_bench.record(args.record, results)
        print(f"recorded in {args.record}")
    return 0
