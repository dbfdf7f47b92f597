"""One timebase (sidecar/timeline/timebase.py): media, timelines, EDLs and typed timecodes snap
rates and read timecode by the same rules. Each test pins a rule two modules once disagreed on."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest

from liveedit.sidecar.media import SegmentWriter, probe
from liveedit.sidecar.timeline import TimelineError, read_edl, record_frame_from_timecode
from liveedit.sidecar.timeline.timebase import (STANDARD_RATES, exact_rate, frame_to_timecode, same_rate,
                                                timecode, timecode_to_frame)

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(("given", "exact"), [
    (23.976, Fraction(24000, 1001)),
    (23.976023976023978, Fraction(24000, 1001)),  # what OTIO stores
    # The timeline's table once required 0.001 fps and made 23.98 the rate 1199/50, while media
    # snapped it to 23.976: one relative tolerance now decides for both.
    (23.98, Fraction(24000, 1001)),
    (Fraction(2997, 100), NTSC),  # a container's approximation
    (Fraction(24), Fraction(24)),
    (90.0, Fraction(90)),  # once only in the media table
    (8, Fraction(8)),
    (12.5, Fraction(25, 2)),  # not standard: kept exactly
    (Fraction(2983, 100), Fraction(2983, 100)),  # a phone's average rate: kept
])
def test_one_snap_rule_for_every_rate(given, exact):
    assert exact_rate(given) == exact


def test_the_standard_rates_are_far_enough_apart_to_snap_unambiguously():
    for a, b in zip(STANDARD_RATES, STANDARD_RATES[1:]):
        assert float(b / a) - 1 > 4 * 2e-4
    assert same_rate(Fraction(24000, 1001), 23.976) and not same_rate(24, 23.976)


def test_the_segment_writer_snaps_with_the_same_rule(tmp_path):
    with SegmentWriter(tmp_path / "a.mov", rate=Fraction(2997, 100), format="h264") as writer:
        assert writer.rate == NTSC
        for _ in range(3):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert probe(tmp_path / "a.mov").frame_rate == NTSC


def _marker_edl(record_in: str) -> str:
    return ("TITLE: T\nFCM: DROP FRAME\n\n"
            f"001  001      V     C        {record_in} {record_in} {record_in} {record_in}  \n"
            " snow |C:ResolveColorGreen |M:Marker 1 |D:5\n")


def test_a_dot_in_an_edl_timecode_means_drop_frame_as_in_media_timecode():
    # read_edl used to read '.' as non-drop while the media timecode parser read it as drop-frame.
    semicolon = read_edl(_marker_edl("01:00:00;00"), rate=29.97)
    dot = read_edl(_marker_edl("01:00:00.00"), rate=29.97)
    colon = read_edl(_marker_edl("01:00:00:00"), rate=29.97)
    assert semicolon.global_start_time.value == dot.global_start_time.value == 107892
    assert colon.global_start_time.value == 108000
    assert timecode_to_frame("01:00:00.00", NTSC) == 107892


def test_edl_events_read_through_the_adapter_get_the_same_drop_frame_reading():
    edl = ("TITLE: T\nFCM: DROP FRAME\n\n"
           "001  AX       V     C        00:00:00.00 00:00:02.00 01:00:00.00 01:00:02.00\n"
           "* FROM CLIP NAME: a.mov\n")
    timeline = read_edl(edl, rate=29.97)
    (clip,) = timeline.find_clips()
    assert timeline.global_start_time.value == 107892
    assert clip.source_range.duration.value == 60
    assert clip.source_range.duration.rate == pytest.approx(float(NTSC))


def test_an_edl_with_a_drop_frame_label_that_does_not_exist_is_refused():
    # read_edl used to let OTIO map 00:01:00;00 at 29.97 (a skipped label) to a neighbour.
    with pytest.raises(TimelineError, match="line 4: .*does not exist"):
        read_edl(_marker_edl("00:01:00;00"), rate=29.97)


def test_a_drop_frame_separator_at_a_rate_without_drop_frame_is_refused():
    with pytest.raises(TimelineError, match="line 4: .*drop-frame exists only"):
        read_edl(_marker_edl("01:00:00.00"), rate=25)


def test_typed_record_timecodes_use_the_same_parser():
    timeline = read_edl(_marker_edl("01:00:00;00"), rate=29.97)
    assert record_frame_from_timecode(timeline, "01:00:01.00") == 30
    with pytest.raises(TimelineError, match="does not exist"):
        record_frame_from_timecode(timeline, "01:01:00;00")


@pytest.mark.parametrize("rate", [Fraction(24), Fraction(24000, 1001), NTSC, Fraction(25)])
def test_timecode_labels_agree_with_opentime_and_drop_part_frames(rate):
    for frame in (0, 1799, 107892, 215999):
        expected = otio.opentime.to_timecode(otio.opentime.RationalTime(frame, float(rate)), float(rate))
        assert timecode(frame, rate) == frame_to_timecode(frame, rate) == expected
        assert timecode(Fraction(frame) + Fraction(2, 3), rate) == expected
