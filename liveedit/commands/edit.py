"""`liveedit edit INPUT -p INSTRUCTION -o OUTDIR`: the main job. Streams a clip through
the editor and writes the edited clip next to a small .otio that references it (the
source on V1, the edit on a "LiveEdit" track above). The source file is only read.
With --sidecar, a running `liveedit serve` renders it as a one-region job instead."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from liveedit.commands._mask_cache import add_mask_cache_arguments, reuse_report
from liveedit.commands._models import add_model_arguments, load_models
from liveedit.commands.render import add_sidecar_argument, render_settings


def register(sub) -> None:
    p = sub.add_parser("edit", help="edit a clip by instruction (writes new media + .otio; never touches the source)")
    p.add_argument("input", type=Path, help="any video file PyAV/ffmpeg can read")
    p.add_argument("-p", "--instruction", required=True, help='what to change, e.g. "make the fur snowy white"')
    p.add_argument("-o", "--output-dir", type=Path, required=True, help="folder for the edited clip and its .otio")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="first source frame to edit (0-based, default 0)")
    p.add_argument("--frames", type=int, help="how many frames to edit (default: to the end)")
    p.add_argument("--format", choices=["prores", "h264", "png"], default="prores",
                   help="prores (422 HQ 10-bit .mov, default), h264 (.mov preview), png (numbered frames)")
    p.add_argument("--warped-steps", action="store_true",
                   help="use the shift-5 warped step list the checkpoint may have been trained on")
    p.add_argument("--force", action="store_true", help="redo even if the same edit exists in OUTDIR")
    add_model_arguments(p)
    add_mask_cache_arguments(p)
    add_sidecar_argument(p, ignored=("model", "weights", "ema", "device", "dtype", "force"))
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from liveedit.errors import InputError
    from liveedit.sidecar.jobs import RegionSpec
    from liveedit.sidecar.media.read import probe
    from liveedit.sidecar.render import render_job_region
    from liveedit.sidecar.validation import check_instruction

    if not args.input.is_file():
        raise InputError(f"{args.input} does not exist or is not a file")
    info = probe(args.input)
    count = args.frames if args.frames is not None else info.frame_count - args.start
    if args.start < 0 or count <= 0 or args.start + count > info.frame_count:
        raise InputError(
            f"{args.input} has frames 0-{info.frame_count - 1}; --start {args.start} --frames {count} is outside that"
        )
    check_instruction(args.instruction, "-p/--instruction")  # the sidecar's check, before anything loads
    args.output_dir.mkdir(parents=True, exist_ok=True)
    if args.sidecar is not None:
        return _edit_on_sidecar(args, count, info)
    settings = render_settings(args)  # before loading models: a bad option fails fast
    models = load_models(args)
    region = RegionSpec(media=args.input.resolve(), first_frame=args.start, frame_count=count,
                        instruction=args.instruction, seed=args.seed)
    bar = tqdm(total=count, unit="frame", desc=args.input.name, file=sys.stderr)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)
        bar.set_postfix(edit_fps=f"{done / max(time.perf_counter() - started, 1e-9):.1f}")

    try:
        result = render_job_region(region, models, args.output_dir, format=args.format, seed=args.seed, progress=progress,
                                   force=args.force, sampler=settings.sampler_config(),
                                   mask_cache=settings.mask_cache, save_masks=settings.save_masks)
    finally:
        bar.close()
    if result.skipped:
        print(f"already edited with these settings: {result.path} (use --force to redo)")
    else:
        print(f"edited {result.frame_count} frames of {args.input} -> {result.path}")
    print(f"timeline: {result.otio_path}")
    if result.masks_path is not None:
        print(f"token masks: {result.masks_path}")
    if settings.mask_cache is not None:
        print(reuse_report(result.reused_token_fraction))
    if models.random_weights:
        print("note: RANDOM weights (--model tiny): the output shows the pipeline works; it is not an edit.")
    return 0


def _edit_on_sidecar(args, count: int, media) -> int:
    """The same edit as a one-region job on a running sidecar; no model is loaded here. The
    region gets the output name the in-process path would pick, so a rerun (either way) skips it."""
    from dataclasses import replace

    from liveedit.commands.render import (connect_sidecar, note_ignored_options, region_outcomes, rendered_by,
                                          run_sidecar_job, segment_from_result, server_model,
                                          sidecar_render_settings)
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.intake import timeline_region
    from liveedit.sidecar.jobs import RegionSpec
    from liveedit.sidecar.media.mask_video import mask_video_path
    from liveedit.sidecar.naming import stable_names

    note_ignored_options(args, "edit")
    settings = sidecar_render_settings(args)  # a bad option fails before connecting
    client, info = connect_sidecar(args.sidecar)
    spec = RegionSpec(media=args.input.resolve(), first_frame=args.start, frame_count=count,
                      instruction=args.instruction, seed=args.seed)
    region = timeline_region(spec, media)  # the timeline Region render_job_region makes of it
    (name,) = stable_names([region], model=server_model(info), seed=args.seed, handles=0, format=args.format,
                           settings=settings)
    with client:
        job = run_sidecar_job(client, [replace(spec, name=name).to_dict()], args.output_dir, format=args.format,
                              label=f"liveedit edit {args.input.name}", describe=lambda _: args.input.name,
                              settings=settings)
    (_, output, otio_path, frame_count, error), = region_outcomes(job)
    if output is None:
        raise LiveEditError(f"the sidecar could not edit {args.input}: {error}")
    if rendered_by(segment_from_result(region, output, otio_path, frame_count), job):
        print(f"edited {frame_count} frames of {args.input} -> {output}")
    else:
        print(f"already edited with these settings: {output} (the sidecar reused it; delete it to redo)")
    print(f"timeline: {otio_path}")
    if settings.save_masks and mask_video_path(output).exists():
        print(f"token masks: {mask_video_path(output)}")
    if info.random_weights:
        print("note: RANDOM weights (the sidecar runs --model tiny): the output shows the pipeline works; it is not an edit.")
    return 0
