"""`liveedit serve`: run the gRPC sidecar (and its render queue) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from liveedit.commands._detail import add_detail_arguments, detail_config
from liveedit.commands._models import add_model_arguments, check_model_arguments, load_models, model_spec
from liveedit.commands._ray import add_ray_arguments, check_ray_arguments, ray_executor
from liveedit.engine.presets import get_preset

log = logging.getLogger("liveedit")

# A fixed default so the Premiere panel's manifest can name the one port it may reach.
DEFAULT_BRIDGE_PORT = 47311
DEFAULT_KEEP_JOBS_DAYS = 7.0
DEFAULT_MAX_EDIT_STREAMS = 2


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
    p.add_argument("--keep-jobs-days", type=float, default=DEFAULT_KEEP_JOBS_DAYS, metavar="DAYS",
                   help=f"forget finished jobs this many days after they finished (default "
                        f"{DEFAULT_KEEP_JOBS_DAYS:g}; 0 keeps them until deleted); their files stay")
    p.add_argument("--max-edit-streams", type=int, default=DEFAULT_MAX_EDIT_STREAMS, metavar="N",
                   help=f"live edit streams at once (each holds a KV cache on the GPU; default "
                        f"{DEFAULT_MAX_EDIT_STREAMS}); more are refused with RESOURCE_EXHAUSTED")
    p.add_argument("--grace", type=float, default=10.0, help="seconds running calls get on shutdown")
    p.add_argument("--bridge-port", type=int, default=DEFAULT_BRIDGE_PORT,
                   help=f"HTTP/WebSocket bridge for the Resolve scripts and the Premiere panel, on 127.0.0.1 "
                   f"(default {DEFAULT_BRIDGE_PORT}; 0 picks a free port; clients read it from bridge.json)")
    p.add_argument("--no-bridge", action="store_true", help="serve gRPC only")
    p.add_argument("--take-memory-gb", type=float, default=2.0,
                   help="edited take frames (the OpenFX plug-in's) kept in memory (default 2 GB)")
    p.add_argument("--take-cache-gb", type=float, default=20.0,
                   help="edited take frames kept on disk in the cache folder (default 20 GB; 0: none)")
    p.add_argument("--no-warm-up", action="store_true",
                   help="skip the start-up warm-up on a GPU (compiling kernels, capturing CUDA graphs); "
                   "the first edit is then slower")
    p.add_argument("--preview-quality", choices=("full", "fast"), default=None,
                   help="preview seeks: fast = tiny preview VAE (taew2_1.pth in --weights) + mask cache, "
                   "full = edited like a render (default: fast when the tiny VAE is loaded, else full); "
                   "edit streams and renders are always full quality")
    add_detail_arguments(p)  # previews, edit streams and takes; render jobs carry their own
    add_ray_arguments(p, fallback=True)
    p.set_defaults(func=run)


def run(args) -> int:
    from liveedit.sidecar import config
    from liveedit.sidecar.preview import PreviewConfig
    from liveedit.sidecar.api.server import ServerOptions, Sidecar
    from liveedit.sidecar.worker import choose_preview_quality

    if args.port is not None:
        config.check_loopback(args.host)  # before loading a model for minutes
    else:  # likewise: a sidecar already serving this socket is found now, not after loading
        from liveedit.sidecar.api.server import clear_stale_socket

        clear_stale_socket(args.socket or config.default_socket_path())
    _check_fast_preview_files(args)  # likewise
    check_model_arguments(args)
    detail = detail_config(args)  # likewise
    if args.max_edit_streams < 1:
        from liveedit.errors import InputError

        raise InputError(f"--max-edit-streams {args.max_edit_streams}: allow at least 1 stream")
    if args.ray is not None and args.no_jobs:
        from liveedit.errors import LiveEditError

        raise LiveEditError("--ray renders the render queue's jobs; it cannot go with --no-jobs")
    check_ray_arguments(args)  # likewise
    queue_lock = None
    if not args.no_jobs:
        from liveedit.sidecar.jobs import acquire_queue_lock

        db = args.jobs_db or config.ensure_private_dir(config.config_dir()) / "jobs.sqlite"
        # Before anything loads: a second sidecar on the same queue stops here, in a second.
        queue_lock = acquire_queue_lock(db)
    ray = None
    try:
        if args.ray is not None:  # first: its workers load their models while this one does
            ray = ray_executor(args, model_spec(args), warm_up=not args.no_warm_up)
        models = load_models(args)
        quality = choose_preview_quality(models, args.preview_quality)
        print(f"liveedit: previews at {quality} quality ({PREVIEW_QUALITY_WORDS[quality]})", file=sys.stderr)
        options = ServerOptions(socket_path=args.socket, host=args.host, port=args.port, grace_seconds=args.grace,
                                preview=PreviewConfig(quality=quality), max_edit_streams=args.max_edit_streams,
                                detail=detail)
        sidecar = Sidecar(models, options)
        if models.device.type == "cuda" and not args.no_warm_up:
            from liveedit.engine.speed import warm_up

            print("liveedit: warming up (compiling kernels, capturing CUDA graphs)...", file=sys.stderr)
            # On the GPU worker's thread, where every edit runs: PyTorch keeps cuDNN's benchmarked
            # convolution plans per thread, so a warm-up on another thread would leave the first
            # edit to benchmark every VAE convolution again.
            seconds = sidecar.worker.run_blocking(lambda m: warm_up(m, preview=quality == "fast"))
            print(f"liveedit: warm-up took {seconds:.1f} s", file=sys.stderr)
        if queue_lock is not None:
            from liveedit.sidecar.jobs import LocalExecutor, RenderQueue

            retention = args.keep_jobs_days * 86400 if args.keep_jobs_days > 0 else None
            executor = LocalExecutor(worker=sidecar.worker)
            if ray is not None:  # as many regions at once as the cluster has workers
                ray.fallback = executor if args.ray_fallback else None
                executor = ray
            sidecar.render_queue = RenderQueue(db, executor, process_lock=queue_lock, retention_seconds=retention)
    except BaseException:
        if queue_lock is not None:
            queue_lock.close()
        if ray is not None:
            ray.close()
        raise
    bridge_port = None if args.no_bridge or sidecar.render_queue is None else args.bridge_port
    try:
        return asyncio.run(_serve(sidecar, bridge_port, args))
    finally:
        if ray is not None:
            ray.close()


async def _serve(sidecar, bridge_port: int | None, args=None) -> int:
    address = await sidecar.start()
    print(f"liveedit: serving on {address}", file=sys.stderr)
    bridge = takes = None
    if bridge_port is not None:
        from liveedit.sidecar.api.bridge import SessionPreview, start_bridge

        try:
            takes = _take_service(sidecar, args)
            bridge = await start_bridge(sidecar.render_queue, SessionPreview(sidecar.previews), port=bridge_port,
                                        info=lambda: _bridge_info(sidecar), model=sidecar.card.identity,
                                        takes=takes)
        except Exception:
            if takes is not None:
                await takes.close()
            await sidecar.stop()
            raise
        print(f"liveedit: bridge for editor panels on {bridge.url}", file=sys.stderr)
    if sidecar.token:
        from liveedit.clients.transport import token_path

        print(f"liveedit: clients authenticate with the token in {token_path()}", file=sys.stderr)
    # Random weights were announced when the model loaded (once per run).
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
        if bridge is not None:
            await bridge.close()
        if takes is not None:
            await takes.close()
        await sidecar.stop()
    return 0


def _take_service(sidecar, args):
    """Takes for the OpenFX plug-in (sidecar/takes/), on the bridge."""
    from liveedit.sidecar import config
    from liveedit.sidecar.takes import TakeLimits, take_service_for

    memory_gb = getattr(args, "take_memory_gb", 2.0)
    disk_gb = getattr(args, "take_cache_gb", 20.0)
    limits = TakeLimits(memory_bytes=int(memory_gb * 2**30), disk_bytes=int(disk_gb * 2**30))
    cache = config.cache_dir() / "takes" if disk_gb > 0 else None
    if cache is not None:
        config.ensure_private_dir(cache.parent)
    return take_service_for(sidecar, cache_dir=cache, limits=limits)


PREVIEW_QUALITY_WORDS = {
    "fast": "tiny preview VAE + mask cache; renders stay full quality",
    "full": "the full VAE, like renders",
}


def _check_fast_preview_files(args) -> None:
    """`--preview-quality fast` with released weights needs taew2_1.pth in --weights: say so
    before the model loads for minutes (choose_preview_quality checks the loaded models too)."""
    from liveedit.sidecar.weights import TINY_VAE_FILE
    from liveedit.sidecar.worker import PreviewQualityError

    if args.preview_quality != "fast" or get_preset(args.model).random_only:
        return
    if args.weights is None or not (Path(args.weights).expanduser() / TINY_VAE_FILE).is_file():
        where = f"the --weights folder ({args.weights})" if args.weights else "a --weights folder"
        raise PreviewQualityError(
            f"--preview-quality fast needs the tiny preview VAE: put {TINY_VAE_FILE} in {where}, "
            "or serve with --preview-quality full")


def _bridge_info(sidecar) -> dict:
    """The bridge's GET /v1/info: the same facts as gRPC ServerInfo."""
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(sidecar.info.describe(), preserving_proto_field_name=True)

