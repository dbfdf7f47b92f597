"""Timecode <-> frame number, checked against known values and an independent
SMPTE drop-frame formula (not against OTIO, which the code uses)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveedit.sidecar.media import TimecodeError, frame_to_timecode, is_drop_frame_timecode, timecode_to_frame

NTSC = Fraction(30000, 1001)
NTSC_60 = Fraction(60000, 1001)
FILM = Fraction(24000, 1001)


@pytest.mark.parametrize(
    ("timecode", "rate", "frame"),
    [
        ("01:00:00:00", FILM, 86400),  # 23.976 counts 24 labels a second, no drop
        ("01:00:00;00", NTSC, 107892),  # an hour of drop-frame skips 108 labels
        ("00:59:59;28", NTSC, 107890),
        ("00:00:59;29", NTSC, 1799),
        ("00:01:00;02", NTSC, 1800),  # ;00 and ;01 do not exist in minute 1
        ("00:10:00;00", NTSC, 17982),  # ...but do in minute 10
        ("01:00:00:00", NTSC, 108000),  # 29.97 non-drop
        ("01:00:00;00", NTSC_60, 215784),
        ("10:00:00:00", Fraction(50), 1800000),
        ("00:00:01:00", Fraction(25), 25),
        ("00:00:00.05", NTSC, 5),  # ffmpeg also writes drop-frame with '.'
    ],
)
def test_known_timecodes(timecode, rate, frame):
    assert timecode_to_frame(timecode, rate) == frame


@pytest.mark.parametrize(
    ("frame", "rate", "drop", "timecode"),
    [
        (1800, NTSC, None, "00:01:00;02"),
        (1800, NTSC, False, "00:01:00:00"),
        (107892, NTSC, None, "01:00:00;00"),
        (86400, FILM, None, "01:00:00:00"),
        (1800000, Fraction(50), None, "10:00:00:00"),
    ],
)
def test_frames_to_labels(frame, rate, drop, timecode):
    assert frame_to_timecode(frame, rate, drop) == timecode


@pytest.mark.parametrize(
    ("timecode", "rate", "message"),
    [
        ("00:01:00;00", NTSC, "does not exist"),
        ("00:01:00;01", NTSC, "does not exist"),
        ("00:01:00;03", NTSC_60, "does not exist"),
        ("01:00:00;00", FILM, "drop-frame exists only"),
        ("00:00:00:24", Fraction(24), "out of range"),
        ("00:61:00:00", Fraction(24), "out of range"),
        ("one hour", Fraction(24), "HH:MM:SS:FF"),
    ],
)
def test_impossible_timecodes_are_refused(timecode, rate, message):
    with pytest.raises(TimecodeError, match=message):
        timecode_to_frame(timecode, rate)


def test_impossible_frame_requests_are_refused():
    with pytest.raises(TimecodeError, match="negative"):
        frame_to_timecode(-1, Fraction(25))
    with pytest.raises(TimecodeError, match="drop-frame"):
        frame_to_timecode(10, Fraction(25), drop_frame=True)


def test_drop_frame_is_read_from_the_separator():
    assert is_drop_frame_timecode("00:59:59;28")
    assert is_drop_frame_timecode("00:59:59.28")
    assert not is_drop_frame_timecode("01:00:00:00")


def test_non_smpte_rates_count_non_drop_at_the_nominal_rate():
    odd_rate = Fraction(2983, 100)  # a phone clip's average: not a timecode rate OTIO accepts
    assert timecode_to_frame("00:00:10:05", odd_rate) == 10 * 30 + 5
    assert frame_to_timecode(305, odd_rate) == "00:00:10:05"


def smpte_drop_frame_number(hours, minutes, seconds, frames, fps=30, dropped=2):
    """The SMPTE 12M drop-frame formula, written out independently."""
    total_minutes = hours * 60 + minutes
    return ((hours * 3600 + minutes * 60 + seconds) * fps + frames
            - dropped * (total_minutes - total_minutes // 10))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59), st.integers(0, 29))
def test_drop_frame_matches_the_smpte_formula(hours, minutes, seconds, frames):
    if seconds == 0 and minutes % 10 and frames < 2:
        return  # labels that drop-frame skips (refused, tested above)
    label = f"{hours:02d}:{minutes:02d}:{seconds:02d};{frames:02d}"
    frame = timecode_to_frame(label, NTSC)
    assert frame == smpte_drop_frame_number(hours, minutes, seconds, frames)
    assert frame_to_timecode(frame, NTSC) == label


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2_000_000),  # under 24 hours at every rate below
    st.sampled_from([(FILM, False), (Fraction(24), False), (Fraction(25), False), (NTSC, True),
                     (NTSC, False), (Fraction(50), False), (NTSC_60, True), (NTSC_60, False)]),
)
def test_round_trip(frame, rate_and_drop):
    rate, drop = rate_and_drop
    label = frame_to_timecode(frame, rate, drop)
    assert is_drop_frame_timecode(label) == drop
    assert timecode_to_frame(label, rate) == frame
