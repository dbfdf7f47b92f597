"""Timeline frame → source media frame, from the values a live Resolve reports.

Standard library only: imported inside Resolve (as ``liveedit_resolve.mapping``) and by
our tests (as ``liveedit.clients.resolve.mapping``). No Resolve objects here: ``host.py``
reads the API into the plain records below.

What the numbers mean (shared/spec/nle-integration.md §1.6; unverified on a real Studio
build, see docs/resolve.md):

- ``Timeline.GetStartFrame()`` is the absolute frame number of the timeline's first frame
  (86400 for 01:00:00:00 at 24 fps); ``TimelineItem.GetStart()``/``GetEnd()`` count in the
  same absolute frames, end exclusive.
- ``TimelineItem.GetLeftOffset(True)`` is how far the item could be extended to the left:
  the in-point, in timeline frames, from the first frame of the media pool clip (of the
  subclip, for a subclip). It was exact where ``GetSourceStartFrame`` was off by one.
- The media pool clip reports its own ``FPS``, ``Start TC`` and, for a subclip, ``Start``
  (its first frame within the file). Media and timeline rates can differ: both play in
  real time, so we map through seconds with exact fractions, like sidecar/timeline/placement.py.
- Resolve has no API to read a clip's speed. A retimed item shows as a source span
  (``GetSourceEndFrame - GetSourceStartFrame``) that does not match its duration; such
  items are refused rather than guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .errors import ResolveScriptError, RetimedClipError

# Exact NTSC rates: Resolve reports "23.976", "29.97", "59.94" as text.
_STANDARD_RATES = [Fraction(n, 1001) for n in (24000, 30000, 48000, 60000, 120000)] + [
    Fraction(n) for n in (12, 15, 16, 18, 24, 25, 30, 48, 50, 60, 72, 96, 100, 120)
]
_TIMECODE = re.compile(r"^\s*(\d{1,2})[:;.](\d{2})[:;.](\d{2})([:;.])(\d{2,3})\s*$")
# A source span this far from the expected one (in media frames) means a speed change;
# 1 frame of slack covers GetSourceStartFrame's known off-by-one and an inclusive end.
_RETIME_SLACK_FRAMES = 1


def parse_rate(text) -> Fraction:
    """'23.976', '29.97 DF', '25', 24.0 → an exact rate (24000/1001, 30000/1001, 25, 24)."""
    if isinstance(text, Fraction):
        return text
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]*)?)", str(text))
    if not match or float(match.group(1)) <= 0:
        raise ResolveScriptError(f"frame rate {text!r} is not a positive number; check the clip's or timeline's frame rate")
    value = float(match.group(1))
    for standard in _STANDARD_RATES:
        if abs(float(standard) - value) < 2e-3:
            return standard
    return Fraction(value).limit_denominator(1001)


def is_drop_frame_rate(rate: Fraction) -> bool:
    return rate in (Fraction(30000, 1001), Fraction(60000, 1001))


def timecode_to_frame(text: str, rate: Fraction, drop_frame: bool | None = None) -> int:
    """SMPTE timecode → absolute frame count. Drop-frame is taken from a ';' separator
    unless given; it only exists at 29.97 and 59.94."""
    match = _TIMECODE.match(str(text))
    if not match:
        raise ResolveScriptError(f"{text!r} is not a timecode like 01:00:00:00")
    hours, minutes, secs, separator, frames = match.groups()
    h, m, s, f = int(hours), int(minutes), int(secs), int(frames)
    nominal = round(rate)
    if m > 59 or s > 59 or f >= nominal:
        raise ResolveScriptError(f"timecode {text!r} is out of range at {float(rate):g} fps")
    if drop_frame is None:
        drop_frame = separator == ";"
    count = (h * 3600 + m * 60 + s) * nominal + f
    if drop_frame and is_drop_frame_rate(rate):
        dropped = 2 * nominal // 30  # 2 frame numbers per minute at 29.97, 4 at 59.94
        total_minutes = 60 * h + m
        count -= dropped * (total_minutes - total_minutes // 10)
    return count


def frame_to_timecode(frame: int, rate: Fraction, drop_frame: bool = False) -> str:
    """Absolute frame count → SMPTE timecode (for messages and markers)."""
    nominal = round(rate)
    frame = int(frame)
    separator = ":"
    if drop_frame and is_drop_frame_rate(rate):
        separator = ";"
        dropped = 2 * nominal // 30
        per_10_minutes = nominal * 600 - dropped * 9
        per_minute = nominal * 60 - dropped
        tens, rest = divmod(frame, per_10_minutes)
        extra = 0 if rest < dropped else dropped * ((rest - dropped) // per_minute)
        frame += dropped * 9 * tens + extra
    f = frame % nominal
    s = frame // nominal % 60
    m = frame // (nominal * 60) % 60
    h = frame // (nominal * 3600) % 24
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{f:02d}"


def exact(value) -> Fraction:
    """A frame position Resolve returns as int or float (subframe precision) as a fraction."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    try:
        return Fraction(float(value)).limit_denominator(100_000)
    except (TypeError, ValueError):
        raise ResolveScriptError(f"Resolve returned {value!r} where a frame number was expected") from None


# -- the plain records host.py fills from the API --------------------------------------


@dataclass(frozen=True)
class TimelineTiming:
    rate: Fraction  # GetSetting("timelineFrameRate")
    start_frame: int  # GetStartFrame(): absolute frame of the timeline's first frame
    start_timecode: str = ""  # GetStartTimecode()
    drop_frame: bool = False  # GetSetting("timelineDropFrameTimecode") == "1"

    def timecode(self, frame: int) -> str:
        """Timecode of an absolute timeline frame."""
        return frame_to_timecode(frame, self.rate, self.drop_frame)

    def frame_of_timecode(self, text: str) -> int:
        """Absolute timeline frame of a timecode as Resolve shows it (GetCurrentTimecode)."""
        return timecode_to_frame(text, self.rate, self.drop_frame or ";" in text)


@dataclass(frozen=True)
class ItemTiming:
    name: str
    track_index: int  # 1-based video track
    start: int  # GetStart(): absolute timeline frame
    end: int  # GetEnd(): absolute, exclusive
    left_offset: Fraction  # GetLeftOffset(True): timeline frames of the clip before the in-point
    media_path: str  # GetClipProperty("File Path")
    media_rate: Fraction  # GetClipProperty("FPS")
    media_start_timecode: str = ""  # GetClipProperty("Start TC") (the subclip's, for a subclip)
    media_first_frame: int = 0  # GetClipProperty("Start"): a subclip's first frame in the file
    media_frames: int | None = None  # GetClipProperty("Frames")
    source_start_frame: int | None = None  # GetSourceStartFrame()
    source_end_frame: int | None = None  # GetSourceEndFrame()

    @property
    def duration(self) -> int:
        return self.end - self.start

    def file_timecode_origin(self) -> int:
        """The file's first frame as a timecode frame count at the media rate."""
        if not self.media_start_timecode:
            return 0
        return timecode_to_frame(self.media_start_timecode, self.media_rate) - self.media_first_frame


@dataclass(frozen=True)
class SourceRange:
    """Which frames of which file sit under a stretch of the timeline."""

    media_path: str
    first_frame: int  # 0-based frame index in the file
    frame_count: int  # media frames, at media_rate
    media_rate: Fraction
    record_start: int  # timeline frames from the timeline start
    record_frames: int
    timeline_rate: Fraction
    clip_name: str
    track_index: int
    source_timecode: str  # the file timecode of first_frame
    record_timecode: str  # the timeline timecode of record_start

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frame_count


def check_not_retimed(timeline: TimelineTiming, item: ItemTiming) -> None:
    """Refuse items whose source span does not match their duration (speed change,
    reverse, freeze). Items that report no source span (0/0, e.g. after an XML import)
    cannot be checked and pass."""
    where = f"clip {item.name!r} on V{item.track_index} at {timeline.timecode(item.start)}"
    start, end = item.source_start_frame, item.source_end_frame
    if start is None or end is None or (start == 0 and end == 0):
        return
    if end < start:
        raise RetimedClipError(
            f"{where} plays in reverse; render it to a new clip at normal speed first and edit that"
        )
    expected = Fraction(item.duration) * item.media_rate / timeline.rate
    if abs((end - start) - expected) > _RETIME_SLACK_FRAMES + expected / 100:
        speed = (end - start) / expected * 100 if expected else 0
        raise RetimedClipError(
            f"{where} is retimed (about {float(speed):.0f}% speed: {end - start} source frames over "
            f"{item.duration} timeline frames); LiveEdit cannot map retimed clips frame for frame. "
            f"Render the clip at its new speed to a file first (or remove the speed change) and edit that"
        )


def source_range(timeline: TimelineTiming, item: ItemTiming, record_start: int | None = None,
                 record_end: int | None = None) -> SourceRange:
    """Map the absolute timeline frames [record_start, record_end) of one item (default:
    all of it) to the file's frames: the frame on screen at record_start through the one
    still on screen just before record_end."""
    check_not_retimed(timeline, item)
    a = item.start if record_start is None else max(int(record_start), item.start)
    b = item.end if record_end is None else min(int(record_end), item.end)
    where = f"clip {item.name!r} on V{item.track_index} at {timeline.timecode(a)}"
    if b <= a:
        raise ResolveScriptError(f"{where}: the range does not overlap the clip; choose frames inside it")
    if not item.media_path:
        raise ResolveScriptError(f"{where} has no media file (a generator, title or offline clip); pick a clip with media")
    t0 = (item.left_offset + (a - item.start)) / timeline.rate  # seconds from the clip's first frame
    t1 = t0 + Fraction(b - a) / timeline.rate
    first = item.media_first_frame + math.floor(t0 * item.media_rate)
    end = item.media_first_frame + math.ceil(t1 * item.media_rate)
    if first < 0:
        raise ResolveScriptError(f"{where} starts before its media (frame {first}); relink the clip")
    limit = None if item.media_frames is None else item.media_first_frame + item.media_frames
    if limit is not None and end > limit:
        raise ResolveScriptError(
            f"{where} needs media frames {first}–{end - 1} but {item.media_path} has frames up to {limit - 1}; "
            f"relink the clip or check its media"
        )
    return SourceRange(
        media_path=item.media_path,
        first_frame=first,
        frame_count=end - first,
        media_rate=item.media_rate,
        record_start=a - timeline.start_frame,
        record_frames=b - a,
        timeline_rate=timeline.rate,
        clip_name=item.name,
        track_index=item.track_index,
        source_timecode=frame_to_timecode(item.file_timecode_origin() + first, item.media_rate,
                                          ";" in item.media_start_timecode),
        record_timecode=timeline.timecode(a),
    )


def source_frame_at(timeline: TimelineTiming, item: ItemTiming, frame: int) -> int:
    """The file frame on screen at absolute timeline frame ``frame`` (live preview)."""
    return source_range(timeline, item, frame, frame + 1).first_frame
