"""`liveedit render`: edit the marked regions of an editor's timeline, write them back.

Reads a timeline exported from Resolve or Premiere (OTIO, FCP 7 XML or EDL), finds the
regions (markers of one colour with the instruction in the note, or an in/out range /
the whole timeline with -p), renders each through the model into new media files, and
writes the updated timeline as .otio, .edl and .xml with the edits on a "LiveEdit"
track. Sources are never modified; regions already rendered with the same settings are
skipped. One failing region does not stop the others; the exit code says if any failed.
"""

from __future__ import annotations

import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render the marked regions of a timeline and write it back with the edits",
        description="Edit the regions of an exported timeline (markers of one colour, or -p for an "
        "in/out range or the whole timeline) and write the timeline back (.otio/.edl/.xml) with the "
        "edited segments on a LiveEdit track above the originals.",
    )
    p.add_argument("timeline", type=Path, help="timeline exported from the editor (.otio, .json, .xml, .edl)")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for the new media and timelines")
    p.add_argument("--marker-color", default="Green", help="edit the regions under markers of this colour (default Green)")
    p.add_argument("-p", "--prompt", help="instruction for the in/out range (--in/--out) or the whole timeline, instead of markers")
    p.add_argument("--in", dest="in_tc", help="in point as record timecode, e.g. 01:00:10:00 (with -p)")
    p.add_argument("--out", dest="out_tc", help="out point as record timecode, exclusive (with -p)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default="tiny", choices=["tiny", "liveedit-1.3b"], help="model preset (default tiny: random weights)")
    p.add_argument("--weights", type=Path, help="folder with the liveedit-1.3b weights")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--format", default="prores", choices=["prores", "h264", "png"])
    p.add_argument("--handles", type=int, default=12, help="extra source frames on each side (clamped to the media)")
    p.add_argument("--force", action="store_true", help="render again even if a finished render has the same settings")
    p.add_argument("--edl-rate", type=float, help="frame rate of an EDL timeline (EDLs do not state it)")
    p.set_defaults(func=run)


def _media_info():
    from liveedit.engine.errors import LiveEditError
    from liveedit.sidecar.media import probe
    from liveedit.sidecar.timeline import MediaTiming, TimelineError

    def media_info(path: str) -> MediaTiming:
        try:
            info = probe(path)
        except LiveEditError as exc:
            raise TimelineError(str(exc)) from exc
        return MediaTiming(rate=info.frame_rate, timecode_start=info.start_timecode_frame, frame_count=info.frame_count)

    return media_info


def _load_models(args):
    import torch

    from liveedit.engine.errors import LiveEditError
    from liveedit.engine.presets import get_preset

    preset = get_preset(args.model)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if preset.random_only or args.weights is None:
        if args.weights is not None:
            print(f"liveedit render: --weights is ignored for the {preset.name} preset (it has no released weights)")
        from liveedit.engine.editor import EditorModels

        return EditorModels.random(preset, seed=args.seed, device=device)
    try:
        from liveedit.sidecar.weights import load_editor_models
    except ImportError as exc:
        raise LiveEditError("loading released weights is not available in this build yet; use --model tiny") from exc
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return load_editor_models(preset, weights_dir=args.weights, device=device, dtype=dtype)


def run(args) -> int:
    from tqdm import tqdm

    from liveedit.engine.errors import LiveEditError
    from liveedit.sidecar import otio_io
    from liveedit.sidecar.render import render_region
    from liveedit.sidecar.timeline import (
        read_timeline,
        record_frame_from_timecode,
        regions_for_range,
        regions_from_markers,
    )

    timeline = read_timeline(args.timeline, edl_rate=args.edl_rate)
    failures: list[str] = []
    refuse = lambda exc: failures.append(str(exc))  # noqa: E731 - collected, reported below
    if args.prompt:
        record_range = None
        if args.in_tc or args.out_tc:
            if not (args.in_tc and args.out_tc):
                raise LiveEditError("give both --in and --out (or neither, for the whole timeline)")
            record_range = (record_frame_from_timecode(timeline, args.in_tc), record_frame_from_timecode(timeline, args.out_tc))
        regions = regions_for_range(timeline, args.prompt, record_range, media_info=_media_info(), on_refused=refuse)
    else:
        regions = regions_from_markers(timeline, args.marker_color, media_info=_media_info(), on_refused=refuse)
    for message in failures:
        print(f"FAILED: {message}", file=sys.stderr)
    if not regions:
        print(f"liveedit render: no regions to render in {args.timeline}"
              + ("" if args.prompt else f" (no {args.marker_color} markers with an instruction)"), file=sys.stderr)
        return 1 if failures else 0

    models = _load_models(args)
    print(f"liveedit render: model {models.description}")
    if models.random_weights:
        print("liveedit render: WARNING: the weights are RANDOM; the output is not a real edit, only a test of the pipeline")

    args.output.mkdir(parents=True, exist_ok=True)
    segments = []
    for n, region in enumerate(regions, start=1):
        label = f"[{n}/{len(regions)}] {region.clip_name} @ {region.record_timecode}"
        with tqdm(total=region.frame_count, desc=label, unit="frame", file=sys.stderr, leave=True) as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            try:
                result = render_region(
                    region, models, args.output, format=args.format, handles=args.handles, seed=args.seed,
                    progress=progress, timeline=timeline, force=args.force,
                )
            except LiveEditError as exc:
                failures.append(f"{region.describe()}: {exc}")
                print(f"FAILED: {region.describe()}: {exc}", file=sys.stderr)
                continue
        state = "skipped (already rendered with these settings)" if result.skipped else "rendered"
        print(f"{label}: {state}: {result.path}")
        segments.append(result.segment)

    if segments:
        edited = otio_io.edited_timeline(timeline, segments)
        written = otio_io.write_all(edited, args.output / f"{args.timeline.stem}_liveedit")
        for kind, path in written.items():
            print(f"timeline ({kind}): {path}")
        for problem in otio_io.validate_for_resolve(edited):
            print(f"warning: Resolve may refuse the .otio: {problem}", file=sys.stderr)
    if failures:
        print(f"liveedit render: {len(failures)} region(s) failed, {len(segments)} done", file=sys.stderr)
        return 1
    return 0
