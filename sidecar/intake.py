"""Timeline files → the regions to render: what `liveedit render`, the gRPC server and the
bridge all use to find a timeline's regions, so a timeline renders the same whichever way it
arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from liveedit.errors import LiveEditError
from liveedit.sidecar.media import probe
from liveedit.sidecar.timeline import (MediaTiming, TimelineError, record_frame_from_timecode, regions_for_range,
                                       regions_from_markers)


def media_timing(path: str):
    """A probe of a media file as the timeline mapping wants it: the file itself is
    authoritative over the timeline's copy of its rate, timecode and length."""
    try:
        info = probe(path)
    except LiveEditError as exc:
        raise TimelineError(str(exc)) from exc
    return MediaTiming(rate=info.frame_rate, timecode_start=info.start_timecode_frame, frame_count=info.frame_count)


def timeline_regions(timeline, *, marker_color: str = "Green", instruction: str | None = None,
                     in_timecode: str | None = None, out_timecode: str | None = None,
                     on_refused: Callable | None = None) -> list:
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


def region_dict(region, *, seed: int, handles: int, name: str | None = None) -> dict:
    """A timeline Region → one region of a job (the wire form), with its place on the timeline
    so the segment's own .otio puts it at the right record time."""
    rate = region.timeline_rate
    data = {"media": str(Path(region.media_path).resolve()), "first_frame": region.first_frame,
            "frame_count": region.frame_count, "instruction": region.instruction, "seed": seed,
            "handles": handles, "record_start": {"frame": region.record_start, "rate": [rate.numerator, rate.denominator]}}
    if name is not None:
        data["name"] = name
    return data
