"""Time, in one place: frame rates as exact fractions (one table of standard rates, one snap
rule), SMPTE timecode <-> frame numbers (drop-frame included), and OTIO's float times as exact
numbers. Media probing and writing, timeline reading and mapping, OTIO write-back and
rendering all use these, so a rate or a timecode means the same everywhere.

The rules, each decided once:
- A rate within 0.02% of a standard rate is that rate exactly (23.976, 23.98 and
  2997/125 are all 24000/1001); the closest two standard rates, 23.976 and 24, are 0.1%
  apart. Anything else stays as given (a float as the nearest fraction with a denominator
  up to 1001).
- In a timecode ':' separates non-drop frames; ';', '.' and ',' mean drop-frame, as ffmpeg
  and SMPTE 12M write it, in media metadata, EDLs and typed in/out points alike.
- Drop-frame labels that do not exist (00:01:00;00 at 29.97) are refused, not mapped to a
  neighbouring frame as OTIO's parser does.

OpenTimelineIO's opentime does the timecode arithmetic; rates it refuses (non-SMPTE, like a
phone clip's 29.83 average) count non-drop at the nominal integer rate, as ffmpeg does.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import opentimelineio.opentime as otime

from liveedit.errors import Kind, LiveEditError

STANDARD_RATES = tuple(sorted(
    [Fraction(n, 1001) for n in (24000, 30000, 48000, 60000, 120000)]
    + [Fraction(n) for n in (8, 10, 12, 15, 24, 25, 30, 48, 50, 60, 72, 90, 96, 100, 120)]))
RATE_TOLERANCE = 2e-4  # relative; well under the 0.1% between 23.976 and 24

# The only rates where drop-frame timecode exists, and how many frame labels
# each skips at the start of every minute not divisible by ten.
DROP_FRAME_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}

_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


class TimecodeError(LiveEditError):
    """A timecode string or rate that cannot be turned into a frame number."""

    kind = Kind.INVALID


def is_drop_frame_rate(rate: Fraction) -> bool:
    return Fraction(rate) in DROP_FRAME_RATES


def is_drop_frame_timecode(timecode: str) -> bool:
    """ffmpeg writes drop-frame with ';' (sometimes '.' or ','); non-drop with ':'."""
    match = _TIMECODE.match(timecode.strip())
    return bool(match) and match.group(4) != ":"


def timecode_to_frame(timecode: str, rate: Fraction) -> int:
    """Frame number of `timecode` counted from 00:00:00:00 at `rate`.

    Drop-frame is taken from the separator (';' '.' ',' = drop-frame), as every
    NLE and ffmpeg write it. Example: '01:00:00;00' at 30000/1001 is 107892.
    """
    rate = Fraction(rate)
    match = _TIMECODE.match(timecode.strip())
    if not match:
        raise TimecodeError(
            f"timecode {timecode!r} is not HH:MM:SS:FF (or HH:MM:SS;FF for drop-frame); "
            "write it as the editor shows it"
        )
    hours, minutes, seconds, separator, frames = match.groups()
    drop = separator != ":"
    nominal = round(rate)
    if int(minutes) > 59 or int(seconds) > 59 or int(frames) >= nominal:
        raise TimecodeError(
            f"timecode {timecode!r} is out of range at {_rate_text(rate)} fps "
            f"(minutes and seconds go to 59, frames to {nominal - 1})"
        )
    if drop:
        if rate not in DROP_FRAME_RATES:
            raise TimecodeError(
                f"timecode {timecode!r} is drop-frame (';') but the rate is {_rate_text(rate)} fps; "
                "drop-frame exists only at 29.97 and 59.94 (30000/1001, 60000/1001)"
            )
        skipped = DROP_FRAME_RATES[rate]
        if int(seconds) == 0 and int(minutes) % 10 != 0 and int(frames) < skipped:
            raise TimecodeError(
                f"timecode {timecode!r} does not exist in drop-frame counting: frames "
                f"0..{skipped - 1} are skipped at the start of minutes not divisible by ten"
            )
    label = f"{int(hours):02d}:{minutes}:{seconds}{';' if drop else ':'}{frames}"
    if not otime.RationalTime.is_valid_timecode_rate(float(rate)):
        # OTIO refuses non-SMPTE rates (e.g. a phone clip's 29.83 average);
        # count non-drop at the nominal integer rate, as ffmpeg does.
        return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * nominal + int(frames)
    try:
        return int(round(otime.from_timecode(label, float(rate)).value))
    except ValueError as error:  # pragma: no cover - guarded by the checks above
        raise TimecodeError(f"timecode {timecode!r} at {_rate_text(rate)} fps: {error}") from None


def frame_to_timecode(frame: int, rate: Fraction, drop_frame: bool | None = None) -> str:
    """Timecode label of `frame` (counted from 00:00:00:00) at `rate`.

    drop_frame=None means the usual choice for the rate: drop-frame at 29.97 and
    59.94, non-drop elsewhere. Pass False for 29.97 non-drop media.
    """
    rate = Fraction(rate)
    if frame < 0:
        raise TimecodeError(f"frame {frame} is before 00:00:00:00; timecode cannot be negative")
    if drop_frame is None:
        drop_frame = rate in DROP_FRAME_RATES
    if drop_frame and rate not in DROP_FRAME_RATES:
        raise TimecodeError(
            f"drop-frame timecode was asked for at {_rate_text(rate)} fps; it exists only at "
            "29.97 and 59.94 (30000/1001, 60000/1001)"
        )
    if not otime.RationalTime.is_valid_timecode_rate(float(rate)):
        nominal = round(rate)
        seconds, frames = divmod(frame, nominal)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours:02d}:{minutes:02d}:{seconds:02d}:{frames:02d}"
    return otime.to_timecode(otime.RationalTime(frame, float(rate)), float(rate), drop_frame)


def _rate_text(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".") + (f" ({rate})" if rate.denominator != 1 else "")



def exact_rate(rate: float | Fraction | int) -> Fraction:
    """A frame rate as an exact fraction: the standard rate it is (23.976... and 23.976 both
    give 24000/1001), else the rate itself as a fraction."""
    if rate <= 0:
        raise TimecodeError(f"frame rate {float(rate):g} is not positive; the timeline or media is damaged")
    for standard in STANDARD_RATES:
        if abs(float(rate / standard) - 1) < RATE_TOLERANCE:
            return standard
    return Fraction(rate).limit_denominator(1001) if isinstance(rate, float) else Fraction(rate)


def same_rate(a: float | Fraction, b: float | Fraction) -> bool:
    """Whether two rates are the same rate by the snap rule (a media file's exact rate and a
    timeline's double-precision copy of it)."""
    return exact_rate(a) == exact_rate(b)


def exact_value(value: float) -> Fraction:
    """A frame count written as a float (Resolve writes 91046.625) as an exact fraction."""
    return Fraction(value).limit_denominator(1_000_000)


def seconds(time: otime.RationalTime) -> Fraction:
    return exact_value(time.value) / exact_rate(time.rate)


def timecode(frame: int | Fraction, rate: Fraction) -> str:
    """SMPTE timecode of an absolute frame number, part frames dropped (drop-frame at 29.97
    and 59.94, as the editors show those rates)."""
    return frame_to_timecode(math.floor(frame), rate)
