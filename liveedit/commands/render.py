"""`liveedit render`: edit the marked regions of an editor's timeline, write them back.

Reads a timeline exported from Resolve or Premiere (OTIO, FCP 7 XML or EDL), finds the
regions (markers of one colour with the instruction in the note, or an in/out range /
the whole timeline with -p), renders each through the model into new media files, and
writes the updated timeline as .otio, .edl and .xml with the edits on a "LiveEdit"
track. Sources are never modified; regions already rendered with the same settings are
skipped. One failing region does not stop the others; the exit code says if any failed.

With --sidecar the regions go to a running `liveedit serve` as one render job instead of
loading a model here; the timeline is still written by this command, from the job's results.
With --ray they go, as one job, to the GPU workers of a Ray cluster (one region per worker at
a time), through a render queue of this command's own.
The sidecar helpers below (address option, job submission and progress) are shared with
`liveedit edit`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from liveedit.commands._detail import add_detail_arguments, detail_config
from liveedit.commands._models import add_model_arguments, check_model_arguments, load_models, model_spec
from liveedit.commands._ray import add_ray_arguments, check_ray_arguments, ray_executor
from liveedit.commands._mask_cache import add_mask_cache_arguments, mask_cache_config, reuse_report

SIDECAR_HELP = ("render on a running sidecar (`liveedit serve`) instead of loading a model here: no value = "
                "the local default socket, or unix:/path/to.sock, or 127.0.0.1:PORT (TCP, uses the per-install "
                "token); put it after the file argument or write --sidecar=ADDRESS")


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
    p.add_argument("--format", default="prores", choices=["prores", "h264", "png"])
    p.add_argument("--handles", type=int, default=12, help="extra source frames on each side (clamped to the media)")
    p.add_argument("--force", action="store_true", help="render again even if a finished render has the same settings")
    p.add_argument("--edl-rate", type=float, help="frame rate of an EDL timeline (EDLs do not state it)")
    add_mask_cache_arguments(p)
    add_detail_arguments(p)
    add_model_arguments(p)
    add_sidecar_argument(p, ignored=("model", "weights", "ema", "device", "dtype", "force"))
    add_ray_arguments(p, fallback=False)
    p.set_defaults(func=run)


# -- --sidecar: shared with `liveedit edit` ----------------------------------------------


def sidecar_address(text: str) -> str:
    """argparse type for --sidecar: "" (the default socket), unix:/path or HOST:PORT."""
    if text == "" or (text.startswith("unix:") and len(text) > len("unix:")):
        return text
    host, sep, port = text.rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a sidecar address: use unix:/path/to/sidecar.sock or 127.0.0.1:PORT "
        "(if it is your input file or timeline, put --sidecar after it or write --sidecar=ADDRESS)")


def looks_like_sidecar_address(text: str) -> bool:
    """Whether the word after --sidecar is its value (unix:..., HOST:PORT) rather than the
    file argument that follows it (liveedit/cli.py leaves such a word alone)."""
    return text.startswith("unix:") or re.fullmatch(r"[^/\\]*:[0-9]+", text) is not None


def resolve_sidecar_address(value: str) -> str:
    """The address to connect to for a --sidecar value: "" (no address given) means
    $LIVEEDIT_SIDECAR when it is set, else the local default socket."""
    if value == "":
        env = os.environ.get("LIVEEDIT_SIDECAR", "").strip()
        if env:
            try:
                return sidecar_address(env)
            except argparse.ArgumentTypeError as exc:
                from liveedit.errors import InputError

                raise InputError(f"LIVEEDIT_SIDECAR: {exc}") from None
    return value


def add_sidecar_argument(parser, *, ignored: tuple[str, ...]) -> None:
    """--sidecar [ADDRESS]; `ignored` names the options (dests) that only matter for a model
    loaded here, so that a user who passed them is told they have no effect."""
    option = parser.add_argument("--sidecar", nargs="?", const="", default=None, metavar="ADDRESS",
                                 type=sidecar_address, help=SIDECAR_HELP)
    option.looks_like_value = looks_like_sidecar_address  # `--sidecar clip.mov` keeps clip.mov (cli.py)
    parser.set_defaults(sidecar_ignored={dest: parser.get_default(dest) for dest in ignored})


def note_ignored_options(args, command: str) -> None:
    passed = [f"--{dest.replace('_', '-')}" for dest, default in args.sidecar_ignored.items()
              if getattr(args, dest) != default]
    if passed:
        print(f"liveedit {command}: {', '.join(passed)} ignored with --sidecar: the sidecar renders with the "
              "model and settings it was started with", file=sys.stderr)


def _sidecar_error(message: str):
    from liveedit.errors import LiveEditError

    return LiveEditError(" ".join(message.split()))  # one line, whatever the server sent


def _explain(exc, where: str, job_id: str | None = None):
    """A client ServerError → a one-line LiveEditError that says what to do."""
    import grpc

    from liveedit.clients import transport

    code, details = exc.code, exc.details or str(exc)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        hint = "restart it without --no-jobs to render jobs"
    elif code == grpc.StatusCode.UNAUTHENTICATED:
        hint = (f"the token in {transport.token_path()} is not the one this sidecar was started with; "
                "run both as the same user with the same config folder")
    elif code == grpc.StatusCode.UNAVAILABLE and job_id:
        hint = (f"the sidecar stopped answering; job {job_id} stays in its queue and resumes when "
                "`liveedit serve` runs again")
    elif code == grpc.StatusCode.UNAVAILABLE:
        hint = "the sidecar is stopping or gone; start it with `liveedit serve`"
    else:
        hint = ""
    return _sidecar_error(f"sidecar at {where}: {details} ({code.name})" + (f"; {hint}" if hint else ""))


def connect_sidecar(address: str):
    """LiveEditClient for a --sidecar value and the server's ServerInfoResponse."""
    from liveedit.clients.python import LiveEditClient, ServerError

    address = resolve_sidecar_address(address)
    client = LiveEditClient.connect(address=address or None)  # no sidecar: says to run `liveedit serve`
    try:
        return client, client.info()
    except ServerError as exc:
        client.close()
        raise _explain(exc, client.target) from None


def sidecar_render_settings(args):
    """render_settings for a job sent to a running sidecar: its gRPC protocol has no field
    for the mask-cache rule yet, so a non-default rule is refused rather than dropped."""
    settings = render_settings(args)
    if settings.mask_cache is not None and settings.mask_cache.rule != "reference":
        from liveedit.errors import InputError

        raise InputError("--mask-rule fixed is not carried to a running sidecar (its protocol has no field for it "
                         "yet); run without --sidecar, or drop --mask-rule")
    return settings


def render_settings(args):
    """The render settings (jobs.RenderSettings) from the shared options, for a render here or
    a job on the sidecar alike; a bad combination fails here, before anything loads or is sent."""
    from liveedit.sidecar.jobs import RenderSettings

    return RenderSettings(warped_steps=bool(getattr(args, "warped_steps", False)), mask_cache=mask_cache_config(args),
                          save_masks=args.save_masks, detail=detail_config(args))


def server_model(info) -> str:
    """naming.model_identity of the sidecar's model, from its ServerInfo."""
    from liveedit.sidecar.naming import model_identity_of

    return model_identity_of(info.model_preset, info.random_weights, info.checkpoint_hash)


def run_sidecar_job(client, regions: list[dict], output_dir: Path, *, format: str, label: str,
                    describe, settings) -> "object":
    """Submit one render job, show each region's progress as the in-process path does
    (a tqdm bar of frames with the edit fps), and return the finished liveedit.v1.Job.
    `describe(index)` is a region's bar label. Ctrl-C cancels the job on the sidecar."""
    from tqdm import tqdm

    from liveedit.clients.python import ServerError

    try:
        job = client.submit_job(regions, output_dir.resolve(), format=format, label=label, settings=settings)
    except ServerError as exc:
        raise _explain(exc, client.target) from None
    bars: dict[int, tqdm] = {}
    try:
        for job in client.watch_job(job.id):
            show_progress(bars, job, describe)
    except ServerError as exc:
        raise _explain(exc, client.target, job.id) from None
    except KeyboardInterrupt:
        try:
            client.cancel_job(job.id)
            print(f"liveedit: cancelled job {job.id} on the sidecar", file=sys.stderr)
        except ServerError:
            print(f"liveedit: could not cancel job {job.id}; it may still run on the sidecar", file=sys.stderr)
        raise
    finally:
        for bar in bars.values():
            bar.close()
    return job


def show_progress(bars: dict, job, describe) -> None:
    """One tqdm bar per region that started (frames, edit fps), from a liveedit.v1.Job."""
    from tqdm import tqdm

    from liveedit.protos.liveedit.v1 import render_pb2

    for region in job.regions:
        if region.state in (render_pb2.JOB_STATE_QUEUED, render_pb2.JOB_STATE_UNSPECIFIED):
            continue
        bar = bars.get(region.index)
        if bar is None:
            bar = bars[region.index] = tqdm(total=region.frame_count, desc=describe(region.index), unit="frame",
                                            file=sys.stderr)
        bar.total, bar.n = region.frame_count, region.frames_done
        if region.fps:
            bar.set_postfix(edit_fps=f"{region.fps:.1f}", refresh=False)
        bar.refresh()


def region_outcomes(job):
    """(index, output, otio, frame_count, error) per region of a finished job; output is
    None unless the region is done."""
    from liveedit.protos.liveedit.v1 import render_pb2

    for r in job.regions:
        if r.state == render_pb2.JOB_STATE_DONE and r.output:
            yield r.index, Path(r.output), Path(r.otio) if r.otio else None, r.frame_count, None
        else:
            state = render_pb2.JobState.Name(r.state).removeprefix("JOB_STATE_").lower()
            yield r.index, None, None, r.frame_count, r.error or f"the render queue reports the region {state}"


# -- the command -------------------------------------------------------------------------


def find_regions(args, timeline, failures: list[str]):
    """The regions to render (markers, or -p with an optional --in/--out); refused ones are
    appended to `failures`. The sidecar finds a timeline job's regions with the same function."""
    from liveedit.sidecar.intake import timeline_regions

    return timeline_regions(timeline, marker_color=args.marker_color, instruction=args.prompt, in_timecode=args.in_tc,
                            out_timecode=args.out_tc, on_refused=lambda exc: failures.append(str(exc)))


def region_label(n: int, total: int, region) -> str:
    return f"[{n}/{total}] {region.clip_name} @ {region.record_timecode}"


def write_timeline(args, timeline, segments) -> None:
    """The editor's timeline with the edited segments on the LiveEdit track, as .otio/.edl/.xml."""
    from liveedit.sidecar.timeline import writeback

    edited = writeback.edited_timeline(timeline, segments)
    written = writeback.write_all(edited, args.output / f"{args.timeline.stem}_liveedit")
    for kind, path in written.items():
        print(f"timeline ({kind}): {path}")
    for problem in writeback.validate_for_resolve(edited):
        print(f"warning: Resolve may refuse the .otio: {problem}", file=sys.stderr)


def check_arguments(args) -> None:
    """Everything that can be checked before a timeline is read, a model loads or a folder is made."""
    from liveedit.sidecar.outputs import check_output_dir, check_path_length
    from liveedit.sidecar.validation import check_instruction

    if args.prompt is not None:
        args.prompt = check_instruction(args.prompt, "-p/--prompt")
    check_path_length(args.timeline, "timeline")
    check_output_dir(args.output, "output folder -o")
    render_settings(args)
    if args.sidecar is None:
        check_model_arguments(args)


def run(args) -> int:
    from liveedit.sidecar.timeline import read_timeline

    check_arguments(args)
    if args.sidecar is not None and args.ray is not None:
        from liveedit.errors import LiveEditError

        raise LiveEditError("--sidecar and --ray both say where to render; give one")
    check_ray_arguments(args)
    timeline = read_timeline(args.timeline, edl_rate=args.edl_rate)
    failures: list[str] = []
    regions = find_regions(args, timeline, failures)
    for message in failures:
        print(f"FAILED: {message}", file=sys.stderr)
    if not regions:
        print(f"liveedit render: no regions to render in {args.timeline}"
              + ("" if args.prompt else f" (no {args.marker_color} markers with an instruction)"), file=sys.stderr)
        return 1 if failures else 0

    render = _render_here
    if args.sidecar is not None:
        render = _render_on_sidecar
    elif args.ray is not None:
        render = _render_on_ray
    segments = render(args, timeline, regions, failures)
    if segments:
        write_timeline(args, timeline, segments)
    if failures:
        print(f"liveedit render: {len(failures)} region(s) failed, {len(segments)} done", file=sys.stderr)
        return 1
    return 0


def _render_here(args, timeline, regions, failures: list[str]) -> list:
    from tqdm import tqdm

    from liveedit.errors import LiveEditError
    from liveedit.sidecar.render import render_region

    from liveedit.sidecar.outputs import remove_dead_partials

    settings = render_settings(args)  # before loading models: a bad option fails fast
    models = load_models(args)  # says so once when the weights are random
    if not models.random_weights:
        print(f"liveedit render: model {models.description}")

    args.output.mkdir(parents=True, exist_ok=True)
    remove_dead_partials(args.output)  # left by a render that was killed
    segments = []
    reuse: list[tuple[float, int]] = []  # (reused token fraction, frames) of regions rendered now
    for n, region in enumerate(regions, start=1):
        label = region_label(n, len(regions), region)
        with tqdm(total=region.frame_count, desc=label, unit="frame", file=sys.stderr, leave=True) as bar:

            def progress(done: int, total: int, bar=bar) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            try:
                result = render_region(
                    region, models, args.output, format=args.format, handles=args.handles, seed=args.seed,
                    progress=progress, timeline=timeline, force=args.force, sampler=settings.sampler_config(),
                    mask_cache=settings.mask_cache, save_masks=settings.save_masks, detail=settings.detail,
                )
            except LiveEditError as exc:
                failures.append(f"{region.describe()}: {exc}")
                print(f"FAILED: {region.describe()}: {exc}", file=sys.stderr)
                continue
        state = "skipped (already rendered with these settings)" if result.skipped else "rendered"
        print(f"{label}: {state}: {result.path}")
        if result.masks_path is not None:
            print(f"{label}: token masks: {result.masks_path}")
        if result.change_masks_path is not None:
            print(f"{label}: change mask: {result.change_masks_path}")
        if result.reused_token_fraction is not None:
            reuse.append((result.reused_token_fraction, result.frame_count))
        segments.append(result.segment)
    if settings.mask_cache is not None:  # one figure for the run, weighted by frames rendered
        frames = sum(n for _, n in reuse)
        print(reuse_report(sum(f * n for f, n in reuse) / frames if frames else None))
    return segments


def _render_on_sidecar(args, timeline, regions, failures: list[str]) -> list:
    """All regions as one job on the sidecar; the segments for the timeline come back from
    the job's region results (file, its .otio with the provenance, frame count)."""
    from liveedit.sidecar.intake import job_region
    from liveedit.sidecar.naming import stable_names

    note_ignored_options(args, "render")
    settings = sidecar_render_settings(args)  # a bad option fails before connecting
    client, info = connect_sidecar(args.sidecar)
    with client:
        print(f"liveedit render: model {info.model_description} (sidecar at {client.target})")
        if info.random_weights:
            print("liveedit render: WARNING: the weights are RANDOM; the output is not a real edit, only a test of the pipeline")
        # The sidecar makes the output folder once it accepts the job.
        # The names the in-process path would use, so either path skips what the other finished.
        names = stable_names(regions, model=server_model(info), seed=args.seed, handles=args.handles,
                             format=args.format, settings=settings)
        job = run_sidecar_job(client, [job_region(r, seed=args.seed, handles=args.handles, name=n).to_dict()
                                       for r, n in zip(regions, names)],
                              args.output, format=args.format, label=f"liveedit render {args.timeline.name}",
                              describe=lambda i: region_label(i + 1, len(regions), regions[i]), settings=settings)
    return job_segments(regions, job, settings, failures)


def _render_on_ray(args, timeline, regions, failures: list[str]) -> list:
    """All regions as one job through a render queue of this command's own (a temporary
    database: a rerun skips finished regions by their names, as the other paths do), rendered
    by the Ray cluster's workers, several at once."""
    import tempfile
    import time

    from liveedit.sidecar.api.convert import job_message
    from liveedit.sidecar.intake import job_region
    from liveedit.sidecar.jobs import JobSpec, RenderQueue
    from liveedit.sidecar.naming import stable_names

    if args.device is not None or args.force:
        print("liveedit render: --device and --force are ignored with --ray: every worker renders on its own GPU, "
              "and finished regions are reused", file=sys.stderr)
    settings = render_settings(args)  # a bad option fails before connecting
    with ray_executor(args, model_spec(args)) as executor:
        worker = executor.ready_worker()  # what the workers loaded names the outputs
        print(f"liveedit render: model {worker.model} (Ray workers)")
        if "RANDOM" in worker.model:
            print("liveedit render: WARNING: the weights are RANDOM; the output is not a real edit, only a test of the pipeline")
        args.output.mkdir(parents=True, exist_ok=True)
        names = stable_names(regions, model=worker.model_identity, seed=args.seed, handles=args.handles,
                             format=args.format, settings=settings)
        spec = JobSpec(tuple(job_region(r, seed=args.seed, handles=args.handles, name=n) for r, n in zip(regions, names)),
                       args.output.resolve(), format=args.format, label=f"liveedit render {args.timeline.name}",
                       settings=settings)
        describe = lambda i: region_label(i + 1, len(regions), regions[i])  # noqa: E731
        with tempfile.TemporaryDirectory(prefix="liveedit-render-") as folder, \
                RenderQueue(Path(folder) / "jobs.sqlite", executor) as queue:
            job = queue.submit(spec)
            bars: dict = {}
            try:
                while True:
                    job = queue.get(job.id)
                    show_progress(bars, job_message(job), describe)
                    if job.finished:
                        break
                    time.sleep(0.2)
            except KeyboardInterrupt:
                queue.cancel(job.id)
                print(f"liveedit: cancelled; finished regions are kept in {args.output}", file=sys.stderr)
                raise
            finally:
                for bar in bars.values():
                    bar.close()
    return job_segments(regions, job_message(job), settings, failures)


def job_segments(regions, job, settings, failures: list[str]) -> list:
    """The EditedSegments of a finished liveedit.v1.Job's regions, for the timeline; failed
    regions go to `failures`."""
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.delivery import change_mask_path
    from liveedit.sidecar.media.mask_video import mask_video_path

    segments = []
    for index, output, otio_path, frame_count, error in region_outcomes(job):
        region = regions[index]
        label = region_label(index + 1, len(regions), region)
        if output is not None:
            try:
                segment = segment_from_result(region, output, otio_path, frame_count)
            except LiveEditError as exc:
                error = str(exc)
            else:
                segments.append(segment)
                print(f"{label}: {'rendered' if rendered_by(segment, job) else SKIPPED}: {output}")
                masks, change = mask_video_path(output), change_mask_path(output)
                if settings.save_masks and masks.exists():
                    print(f"{label}: token masks: {masks}")
                if settings.save_masks and change.exists():
                    print(f"{label}: change mask: {change}")
                continue
        failures.append(f"{region.describe()}: {error}")
        print(f"FAILED: {region.describe()}: {error}", file=sys.stderr)
    return segments


SKIPPED = "skipped (already rendered with these settings)"


def rendered_by(segment, job) -> bool:
    """False when the sidecar reused a segment an earlier render made (its provenance names
    that render's job)."""
    return segment.provenance.get("job_id") == job.id


def segment_from_result(region, output: Path, otio_path: Path | None, frame_count: int):
    """The EditedSegment render_region would have returned for `region`, rebuilt from a job's
    result: the sidecar's .otio holds the provenance (model, seed, sampler, settings key,
    handles); the timeline position is the local Region's, which the sidecar never saw."""
    import json
    from datetime import datetime

    import opentimelineio as otio

    from liveedit.errors import LiveEditError
    from liveedit.sidecar.timeline import writeback

    prov = None
    if otio_path is not None:
        try:
            segment_timeline = otio.adapters.read_from_file(str(otio_path), adapter_name="otio_json")
        except Exception as exc:  # noqa: BLE001 - any unreadable file means the same to the user
            raise LiveEditError(f"the sidecar's timeline {otio_path} cannot be read ({exc}); render the region again") from exc
        for clip in segment_timeline.find_clips():
            ref = clip.media_reference
            if "liveedit" in clip.metadata and Path(getattr(ref, "target_url", "")) == output:
                # OTIO containers → plain JSON types, as the provenance is built from them
                prov = json.loads(json.dumps(clip.metadata["liveedit"],
                                             default=lambda o: dict(o) if hasattr(o, "keys") else list(o)))
                break
    if prov is None:
        raise LiveEditError(f"the sidecar reported {output} without a .otio describing it; render the region again")
    before, after = (int(h) for h in prov["source"]["handles"])
    if region.frame_count + before + after != frame_count:
        raise LiveEditError(f"{output} has {frame_count} frames; region {region.describe()} with handles "
                            f"{before}+{after} needs {region.frame_count + before + after}; render it again")
    provenance = writeback.provenance(
        region, seed=int(prov["seed"]), model=prov["model"], checkpoint_hash=prov.get("checkpoint_hash"),
        random_weights=bool(prov["random_weights"]), sampler=prov["sampler"], job_id=prov["job_id"],
        settings_key=prov["settings_key"], handles=(before, after), created=datetime.fromisoformat(prov["created"]),
        detail=prov.get("detail"))
    timecode_start = region.media_timecode_start + region.first_frame - before
    return writeback.EditedSegment(region, str(output), timecode_start, frame_count, provenance)
