"""--ray [ADDRESS] and its options, shared by `liveedit serve` and `liveedit render`: render
jobs on the GPUs of a Ray cluster (sidecar/jobs/ray_executor.py, docs/scale-out.md)."""

from __future__ import annotations

import argparse
import sys

RAY_HELP = ("render on the GPUs of a Ray cluster, one worker per GPU: ADDRESS of its head node (HOST:PORT, "
            "what `ray start --head` prints), auto (the cluster this machine belongs to), or no value to start a "
            "local cluster on this machine's GPUs; needs pip install 'liveedit-sidecar[ray]'. Media and output "
            "folders must be at the same paths on every machine (docs/scale-out.md); put it after a file "
            "argument or write --ray=ADDRESS")


def ray_address(text: str) -> str:
    """argparse type for --ray: "" (a local cluster), auto, or HOST:PORT."""
    if text in ("", "auto"):
        return text
    host, sep, port = text.rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a Ray cluster address: use HOST:PORT (e.g. 10.0.0.5:6379) or auto (if it is your "
        "input file, put --ray after it or write --ray=ADDRESS)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def add_ray_arguments(parser, *, fallback: bool) -> None:
    g = parser.add_argument_group("Ray cluster")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", type=ray_address, help=RAY_HELP)
    g.add_argument("--ray-workers", type=_positive, metavar="N",
                   help="GPU workers to run on the cluster (default: one per GPU it has)")
    g.add_argument("--ray-attempts", type=_positive, default=3, metavar="N",
                   help="times a region is rendered when its workers die under it, before it fails (default 3)")
    if fallback:
        g.add_argument("--ray-fallback", action="store_true",
                       help="when the cluster goes away, render on this machine's GPU (default: those regions "
                            "fail, saying why)")


def check_ray_arguments(args) -> None:
    """Before any model loads: Ray must be installed for --ray (the error says how)."""
    if getattr(args, "ray", None) is None:
        for option in ("ray_workers",):
            if getattr(args, option, None) is not None:
                from liveedit.errors import LiveEditError

                raise LiveEditError(f"--{option.replace('_', '-')} goes with --ray")
        return
    from liveedit.sidecar.jobs.ray_executor import require_ray

    require_ray()


def ray_executor(args, spec, *, fallback=None, warm_up: bool = True):
    """A RayExecutor for the parsed options; says where it renders. `warm_up`: workers on a
    GPU compile kernels and capture CUDA graphs once loaded, as `liveedit serve` does."""
    from liveedit.sidecar.jobs.ray_executor import RayExecutor

    where = f"the Ray cluster at {args.ray}" if args.ray else "a local Ray cluster on this machine's GPUs"
    print(f"liveedit: connecting to {where}...", file=sys.stderr)
    executor = RayExecutor(spec, address=args.ray or None, workers=args.ray_workers, max_attempts=args.ray_attempts,
                           fallback=fallback, warm_up=warm_up)
    print(f"liveedit: rendering on the {executor.describe()}"
          + ("; this machine's GPU takes over if it goes away" if fallback is not None else ""), file=sys.stderr)
    return executor
