"""Where regions come from, and their two shapes.

A timeline file becomes the regions to render here, for `liveedit render`, the gRPC server and
the HTTP bridge alike, so a timeline renders the same whichever way it arrives. A region has
two shapes: the timeline's `Region` (where it sits on the editor's timeline, what the renderer
and the OTIO write-back need) and the job model's `RegionSpec` (what a job stores and sends).
The conversions between them are here too, once: `job_region` and `timeline_region`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

from liveedit.errors import InputError, LiveEditError
from liveedit.sidecar.jobs.spec import JobSpecError, RecordStart, RegionSpec, RenderSettings
from liveedit.sidecar.media import MediaInfo, probe
from liveedit.sidecar.naming import stable_names
from liveedit.sidecar.outputs import check_path_length, cut
from liveedit.sidecar.timeline import (MediaTiming, Region, TimelineError, read_timeline, record_frame_from_timecode,
                                       regions_for_range, regions_from_markers)


def media_timing(path: str) -> MediaTiming:
    """A probe of a media file as the timeline mapping wants it: the file itself is
    authoritative over the timeline's copy of its rate, timecode and length."""
    try:
        info = probe(path)
    except LiveEditError as exc:
        raise TimelineError(str(exc)) from exc
    return MediaTiming(rate=info.frame_rate, timecode_start=info.start_timecode_frame, frame_count=info.frame_count)


def timeline_regions(timeline, *, marker_color: str = "Green", instruction: str | None = None,
                     in_timecode: str | None = None, out_timecode: str | None = None,
                     on_refused: Callable | None = None) -> list[Region]:
    """The regions `liveedit render` edits on a timeline: with an instruction, the in/out
    range (record timecodes, out exclusive) or the whole timeline; without, the regions under
    markers of `marker_color`. Regions the timeline cannot give go to `on_refused` (a
    TimelineError each) when given, else raise."""
    if instruction:
        record_range = None
        if in_timecode or out_timecode:
            if not (in_timecode and out_timecode):
                raise TimelineError("give both an in and an out point (or neither, for the whole timeline)")
            record_range = (record_frame_from_timecode(timeline, in_timecode),
                            record_frame_from_timecode(timeline, out_timecode))
        return regions_for_range(timeline, instruction, record_range, media_info=media_timing, on_refused=on_refused)
    return regions_from_markers(timeline, marker_color, media_info=media_timing, on_refused=on_refused)


@dataclass(frozen=True)
class TimelineSource:
    """A whole timeline sent as a job (gRPC's TimelineSource, the bridge's "timeline"): which
    regions to take from it, and the seed and handles for all of them."""

    path: Path
    marker_color: str = "Green"
    instruction: str | None = None  # instead of markers: the in/out range, or the whole timeline
    in_timecode: str | None = None
    out_timecode: str | None = None
    seed: int = 0
    handles: int = 0
    edl_rate: float | None = None


def timeline_job_regions(source: TimelineSource, *, format: str, settings: RenderSettings,
                         model: str | None) -> tuple[RegionSpec, ...]:
    """A timeline sent as a job → its regions, found and named as `liveedit render` finds and
    names them (`model`, the loaded model's identity, gives the names; None leaves them to the
    job). All or nothing: a region the timeline cannot give refuses the job, naming every one.
    Reads files: call it off the event loop."""
    path = Path(source.path)
    try:
        check_path_length(path, "timeline.path")
    except InputError as exc:
        raise JobSpecError(str(exc)) from None
    if not path.is_absolute():
        raise JobSpecError(f"timeline.path must be an absolute path; got {cut(source.path)!r}")
    if not path.is_file():
        raise JobSpecError(f"timeline.path {cut(path)!r} does not exist or is not a file; check the path")
    refused: list[TimelineError] = []
    try:
        timeline = read_timeline(path, edl_rate=source.edl_rate)
        regions = timeline_regions(timeline, marker_color=source.marker_color, instruction=source.instruction,
                                   in_timecode=source.in_timecode, out_timecode=source.out_timecode,
                                   on_refused=refused.append)
    except TimelineError as exc:
        raise JobSpecError(f"timeline {path}: {exc}") from None
    if refused:
        raise JobSpecError(
            f"timeline {path}: {len(refused)} region(s) cannot be rendered: "
            + "; ".join(str(e) for e in refused)
            + ". Fix them in the editor and export again, or send the other regions on their own")
    if not regions:
        what = ("no video clip in the chosen range" if source.instruction else
                f"no {source.marker_color} markers with an instruction")
        raise JobSpecError(f"timeline {path}: nothing to render ({what})")
    names = [None] * len(regions)
    if model is not None:
        names = stable_names(regions, model=model, seed=source.seed, handles=source.handles, format=format,
                             settings=settings)
    return tuple(job_region(r, seed=source.seed, handles=source.handles, name=n) for r, n in zip(regions, names))


# -- the two shapes of a region --------------------------------------------------------------


def job_region(region: Region, *, seed: int, handles: int, name: str | None = None) -> RegionSpec:
    """A timeline Region → one region of a job, with its place on the timeline so the
    segment's own .otio puts it at the right record time."""
    return RegionSpec(media=Path(region.media_path).resolve(), first_frame=region.first_frame,
                      frame_count=region.frame_count, instruction=region.instruction, seed=seed, handles=handles,
                      record_start=RecordStart(region.record_start, region.timeline_rate), name=name)


def timeline_region(spec: RegionSpec, info: MediaInfo) -> Region:
    """A job's region → the timeline Region the renderer takes. A job region knows no timeline
    beyond its record start: it sits on "Video 1" of a timeline at its record rate, which
    starts at 0. Without a record start (`liveedit edit`, a clip sent on its own) the timeline
    is the clip's own, at its rate, starting at its timecode as an editor's export would."""
    rate = Fraction(info.frame_rate)
    record = spec.record_start
    timeline_rate = Fraction(record.rate) if record is not None else rate
    first = int(spec.first_frame)
    return Region(
        media_path=str(spec.media),
        first_frame=first,
        frame_count=int(spec.frame_count),
        media_rate=rate,
        record_start=record.frame if record is not None else 0,
        record_frames=round(Fraction(int(spec.frame_count)) / rate * timeline_rate),
        timeline_rate=timeline_rate,
        timeline_start=0 if record is not None else info.start_timecode_frame,
        track="Video 1",
        clip_name=Path(str(spec.media)).stem,
        instruction=spec.instruction,
        media_timecode_start=info.start_timecode_frame,
        media_frame_count=info.frame_count,
        source_start=Fraction(info.start_timecode_frame + first) / rate * timeline_rate,
    )
