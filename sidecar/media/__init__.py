"""Media in and out: exact frames, rates, timecode and colour from source clips
(`read`), edited segments written atomically (`write`), the mask cache's token masks as
video (`mask_video`). Timecode arithmetic lives in the one timebase
(`sidecar/timeline/timebase.py`) and is re-exported here for media code."""

from liveedit.sidecar.media.read import (
    AudioClip,
    AudioInfo,
    ColorTags,
    MediaError,
    MediaInfo,
    frame_times,
    probe,
    read_audio,
    read_frames,
)
from liveedit.sidecar.media.write import (
    SEGMENT_FORMATS,
    AudioRange,
    HandleRange,
    SegmentWriter,
    clamp_handles,
    write_segment,
)
from liveedit.sidecar.timeline.timebase import (
    TimecodeError,
    frame_to_timecode,
    is_drop_frame_rate,
    is_drop_frame_timecode,
    timecode_to_frame,
)

__all__ = [
    "SEGMENT_FORMATS",
    "AudioClip",
    "AudioRange",
    "HandleRange",
    "SegmentWriter",
    "clamp_handles",
    "write_segment",
    "AudioInfo",
    "ColorTags",
    "MediaError",
    "MediaInfo",
    "TimecodeError",
    "frame_times",
    "frame_to_timecode",
    "is_drop_frame_rate",
    "is_drop_frame_timecode",
    "probe",
    "read_audio",
    "read_frames",
    "timecode_to_frame",
]
