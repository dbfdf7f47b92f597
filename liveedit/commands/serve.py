"""`liveedit serve`: run the gRPC sidecar (and its render queue) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from liveedit.commands._models import add_model_arguments, load_models

log = logging.getLogger("liveedit")


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="run the local GPU sidecar (gRPC) for the NLE clients and the preview window",
        description="Serve the model over gRPC on a private Unix socket (default) or, with --port, on "
        "a loopback TCP port that needs the per-install token. Stops gracefully on Ctrl-C / SIGTERM: "
        "running calls get --grace seconds, a running render region goes back to the queue.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, help="Unix socket path (default: the per-user runtime folder)")
    where.add_argument("--port", type=int, help="listen on loopback TCP instead (0 picks a free port)")
    p.add_argument("--host", default="127.0.0.1", help="loopback address for --port (127.0.0.1 or ::1)")
    add_model_arguments(p)
    p.add_argument("--jobs-db", type=Path, help="render queue database (default: jobs.sqlite in the config folder)")
    p.add_argument("--no-jobs", action="store_true", help="run without the render queue (Render calls answer UNIMPLEMENTED)")
    p.add_argument("--grace", type=float, default=10.0, help="seconds running calls get on shutdown")
    p.set_defaults(func=run)


def run(args) -> int:
    from liveedit.sidecar import config
    from liveedit.sidecar.server import ServerOptions, Sidecar

    if args.port is not None:
        config.check_loopback(args.host)  # before loading a model for minutes
    models = load_models(args)
    options = ServerOptions(socket_path=args.socket, host=args.host, port=args.port, grace_seconds=args.grace)
    sidecar = Sidecar(models, options)
    if not args.no_jobs:
        from liveedit.sidecar.jobs import LocalExecutor, RenderQueue

        db = args.jobs_db or config.ensure_private_dir(config.config_dir()) / "jobs.sqlite"
        sidecar.render_queue = RenderQueue(db, LocalExecutor(worker=sidecar.worker))
    return asyncio.run(_serve(sidecar))


async def _serve(sidecar) -> int:
    address = await sidecar.start()
    print(f"liveedit: serving on {address}", file=sys.stderr)
    if sidecar.token:
        print(f"liveedit: clients authenticate with the token in {sidecar_token_path()}", file=sys.stderr)
    if sidecar.card.random_weights:
        print(f"liveedit: WARNING: {sidecar.card.description}", file=sys.stderr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C raises KeyboardInterrupt
            pass
    try:
        await stop.wait()
    finally:
        print("liveedit: stopping (finishing running calls)...", file=sys.stderr)
        await sidecar.stop()
    return 0


def sidecar_token_path() -> Path:
    from liveedit.sidecar import config

    return config.token_path()
