"""`liveedit preview [MEDIA]`: the PySide6 preview window (source and edit side by side)."""

from __future__ import annotations

from pathlib import Path

from liveedit.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "preview", help="open the preview window: source and edited frames side by side, scrub, render",
        description="Preview LiveEdit on a clip: source and edit side by side or as a wipe, scrub bar with "
        "the media's timecode, J/K/L, live statistics, and 'Render this region' into the render queue. "
        "Connects to the sidecar, starting one in the background when none is running.")
    p.add_argument("media", nargs="?", type=Path, help="video file to open (or use --follow)")
    p.add_argument("--start", type=int, default=0, metavar="FRAME", help="first source frame of the region (from 0)")
    p.add_argument("--frames", type=int, default=0, metavar="N", help="frames in the region (default: to the end)")
    p.add_argument("-p", "--prompt", dest="instruction", metavar="INSTRUCTION",
                   help="what the edit should do, e.g. 'make the fur snowy white'")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--frame", type=int, help="frame to show first (default: the region's first)")
    p.add_argument("--follow", metavar="-|FILE|URL",
                   help="let a client steer the window with JSON requests (media, start, frames, instruction, "
                        "seed, frame): '-' reads one request per line from standard input and applies each at "
                        "once (what Resolve's Live preview uses); a FILE or local URL is polled every second")
    p.add_argument("--preview-height", type=int, default=540, help="height of edited preview frames (0 = source)")
    p.add_argument("--output-dir", type=Path, help="where 'Render this region' writes (default: "
                                                   "'LiveEdit renders' beside the clip)")
    p.add_argument("--format", choices=("prores", "h264", "png"), default="prores", help="render output format")
    where = p.add_argument_group("sidecar")
    where.add_argument("--socket", type=Path, help="Unix socket of the sidecar (default: the per-user one)")
    where.add_argument("--port", type=int, help="loopback TCP port of the sidecar instead")
    where.add_argument("--no-start", action="store_true", help="do not start a sidecar when none is running")
    where.add_argument("--model", default=None,
                       help="model for a sidecar started by the window (default: liveedit-1.3b; tiny = random weights)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.media is not None and not args.media.is_file():
        raise InputError(f"media {args.media} does not exist or is not a file; give the path of a video clip")
    for name in ("start", "frames", "seed", "preview_height"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} {getattr(args, name)} is negative; use 0 or more")
    try:
        import PySide6  # noqa: F401
    except ImportError:
        raise InputError("the preview window needs PySide6: pip install 'liveedit-sidecar[ui]' (scripts/liveedit "
                         "preview installs it by itself)") from None
    from liveedit.ui import system_libs

    if system_libs.uses_xcb():  # Qt would abort naming only the first missing library
        missing = system_libs.packages_for(system_libs.missing_libraries())
        if missing:
            raise InputError(system_libs.install_hint(missing))
    from liveedit.ui.app import PreviewOptions, run as run_window
    from liveedit.ui.launch import SidecarTarget

    target = SidecarTarget(socket=args.socket, port=args.port, start_if_missing=not args.no_start,
                           serve_args=("--model", args.model) if args.model else ())
    return run_window(PreviewOptions(
        media=args.media.absolute() if args.media else None, start=args.start, frames=args.frames,
        instruction=args.instruction, seed=args.seed, frame=args.frame, follow=args.follow,
        max_height=args.preview_height, output_dir=args.output_dir, output_format=args.format, target=target))
