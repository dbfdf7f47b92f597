"""Media in and out: exact frames, rates, timecode and colour from source clips
(media_read), edited segments written atomically (media_write), timecode
arithmetic (media_timecode). Import from here; the split is for readability."""

from liveedit.sidecar.media_read import (
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
from liveedit.sidecar.media_write import (
    SEGMENT_FORMATS,
    AudioRange,
    HandleRange,
    SegmentWriter,
    clamp_handles,
    write_segment,
)
from liveedit.sidecar.media_timecode import (
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
