"""`liveedit edit INPUT -p INSTRUCTION -o OUTDIR`: the main job. Streams a clip through
the editor and writes the edited clip next to a small .otio that references it (the
source on V1, the edit on a "LiveEdit" track above). The source file is only read.
With --sidecar, a running `liveedit serve` renders it as a one-region job instead."""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

from liveedit.commands._detail import add_detail_arguments
from liveedit.commands._mask_cache import add_mask_cache_arguments, reuse_report
from liveedit.commands._models import add_model_arguments, check_model_arguments, load_models
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
    p.add_argument("--conform-rate", type=conform_rate, metavar="RATE",
                   help="edit a variable-frame-rate clip as if its frames ran at RATE (e.g. 30000/1001): every "
                        "frame is kept and evenly spaced; without it such clips are refused")
    add_model_arguments(p)
    add_mask_cache_arguments(p)
    add_detail_arguments(p)
    add_sidecar_argument(p, ignored=("model", "weights", "ema", "device", "dtype", "force"))
    p.set_defaults(func=run)


def conform_rate(text: str) -> Fraction:
    """argparse type for --conform-rate: a frame rate such as 30000/1001, 25 or 29.97."""
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        rate = None
    if rate is None or not 1 <= rate <= 240:
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate: give one like 30000/1001, 24 or 25")
    from liveedit.sidecar.timeline.timebase import exact_rate

    return exact_rate(rate)


def frame_range(args, info) -> int:
    """How many frames --start/--frames ask for; a range outside the clip is refused in the
    words the user typed."""
    from liveedit.errors import InputError

    last = info.frame_count - 1
    typed = f"--start {args.start}" + (f" --frames {args.frames}" if args.frames is not None else "")
    has = f"{args.input} has frames 0-{last} ({info.frame_count} frames)"
    if args.start < 0:
        raise InputError(f"{has}; {typed}: frames count from 0")
    if args.frames is not None and args.frames <= 0:
        raise InputError(f"{has}; {typed}: give --frames 1 or more, or leave it out to edit to the end")
    if args.start > last:
        raise InputError(f"{has}; {typed} starts past its end: give --start 0 to {last}")
    count = args.frames if args.frames is not None else info.frame_count - args.start
    if args.start + count > info.frame_count:
        raise InputError(f"{has}; {typed} asks for frames {args.start}-{args.start + count - 1}: "
                         f"give --frames {info.frame_count - args.start} or less")
    return count


def run(args) -> int:
    from tqdm import tqdm

    from liveedit.errors import InputError
    from liveedit.sidecar.jobs import RegionSpec
    from liveedit.sidecar.media.read import probe
    from liveedit.sidecar.outputs import check_output_dir, check_path_length, remove_dead_partials
    from liveedit.sidecar.render import check_constant_rate, render_job_region
    from liveedit.sidecar.validation import check_instruction

    # Every argument is checked before a model loads or a folder is made.
    args.instruction = check_instruction(args.instruction, "-p/--instruction")
    check_path_length(args.input, "input")
    check_path_length(args.output_dir, "output folder -o")
    if not args.input.is_file():
        raise InputError(f"{args.input} does not exist or is not a file")
    info = probe(args.input)
    count = frame_range(args, info)
    check_constant_rate(info, args.conform_rate)
    settings = render_settings(args)
    if args.sidecar is not None:
        if args.conform_rate is not None:
            raise InputError("--conform-rate works only in-process: conform the clip with ffmpeg first, or leave "
                             "out --sidecar")
        return _edit_on_sidecar(args, count, info)
    check_model_arguments(args)
    check_output_dir(args.output_dir, "output folder -o")
    models = load_models(args)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(args.output_dir)  # left by an edit that was killed (SIGKILL, power loss)
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
                                   mask_cache=settings.mask_cache, save_masks=settings.save_masks,
                                   detail=settings.detail, conform_rate=args.conform_rate)
    finally:
        bar.close()
    if result.skipped:
        print(f"already edited with these settings: {result.path} (use --force to redo)")
    else:
        print(f"edited {result.frame_count} frames of {args.input} -> {result.path}")
    print(f"timeline: {result.otio_path}")
    if result.masks_path is not None:
        print(f"token masks: {result.masks_path}")
    if result.change_masks_path is not None:
        print(f"change mask: {result.change_masks_path}")
    if settings.mask_cache is not None:
        print(reuse_report(result.reused_token_fraction))
    if args.conform_rate is not None and info.variable_frame_rate:
        print(f"conformed: the variable-rate frames of {args.input.name} were edited as "
              f"{args.conform_rate.numerator}/{args.conform_rate.denominator} fps, evenly spaced")
    # Random weights were announced when the model loaded (once per run).
    return 0


def _edit_on_sidecar(args, count: int, media) -> int:
    """The same edit as a one-region job on a running sidecar; no model is loaded here. The
    region gets the output name the in-process path would pick, so a rerun (either way) skips it."""
    from dataclasses import replace

    from liveedit.commands.render import (connect_sidecar, note_ignored_options, region_outcomes, rendered_by,
                                          run_sidecar_job, segment_from_result, server_model,
                                          sidecar_render_settings)
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.delivery import change_mask_path
    from liveedit.sidecar.intake import timeline_region
    from liveedit.sidecar.jobs import RegionSpec
    from liveedit.sidecar.media.mask_video import mask_video_path
    from liveedit.sidecar.naming import stable_names

    from liveedit.sidecar.outputs import check_output_dir

    note_ignored_options(args, "edit")
    settings = sidecar_render_settings(args)  # a bad option fails before connecting
    check_output_dir(args.output_dir, "output folder -o")  # the sidecar makes it once it accepts the job
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
    if settings.save_masks and change_mask_path(output).exists():
        print(f"change mask: {change_mask_path(output)}")
    if info.random_weights:
        print("note: RANDOM weights (the sidecar runs --model tiny): the output shows the pipeline works; it is not an edit.")
    return 0
