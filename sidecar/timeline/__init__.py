"""Timelines: time itself (`timebase`: rates, timecode), reading editors' exports (`readers`),
where each clip's frames sit and which regions to edit (`placement`), and edited segments
written back as OTIO, EDL and FCP XML (`writeback`)."""

from liveedit.sidecar.timeline.placement import (
    LIVEEDIT_TRACK,
    ClipPlacement,
    FoundMarker,
    MediaTiming,
    Region,
    clip_placements,
    find_markers,
    marker_instruction,
    record_frame_from_timecode,
    region_for,
    regions_for_range,
    regions_from_markers,
    timeline_rate,
    timeline_start,
    video_tracks,
)
from liveedit.sidecar.timeline.readers import TimelineError, media_path_from_url, read_edl, read_timeline
from liveedit.sidecar.timeline.timebase import exact_rate, exact_value, seconds, timecode

__all__ = [
    "LIVEEDIT_TRACK", "ClipPlacement", "FoundMarker", "MediaTiming", "Region", "TimelineError", "clip_placements",
    "exact_rate", "exact_value", "find_markers", "marker_instruction", "media_path_from_url", "read_edl",
    "read_timeline", "record_frame_from_timecode", "region_for", "regions_for_range", "regions_from_markers",
    "seconds", "timecode", "timeline_rate", "timeline_start", "video_tracks",
]
