"""The Resolve scripts' own timeline → source frame mapping (clients/resolve/mapping.py,
standard library only), checked against the real Resolve exports through
liveedit.sidecar.timeline, and golden cases worked out by hand."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from liveedit.clients.resolve.errors import ResolveScriptError, RetimedClipError
from liveedit.clients.resolve.mapping import (
    ItemTiming,
    TimelineTiming,
    frame_to_timecode,
    parse_rate,
    source_frame_at,
    source_range,
    timecode_to_frame,
)
from liveedit.errors import LiveEditError
from liveedit.sidecar.timeline import clip_placements, exact_rate, read_timeline, region_for, seconds

RESOLVE_EXPORTS = [
    "resolve-e117-ftw-24p.otio",
    "resolve-e120-compound-24p.otio",
    "resolve-clip-embedded-tc-marker.json",
    "resolve-clip-imgseq-embedded-tc.json",
    "resolve-transitions-retime-30p.otio",
]


def _rate_text(rate: Fraction) -> str:
    """How Resolve shows a rate in GetSetting / GetClipProperty: '23.976', '25'."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def _live_values(placement):
    """What a live Resolve would report for this exported clip: the API's numbers built
    from the export's (absolute item start, in-point as a left offset in timeline frames,
    the media's FPS / Start TC / Frames, the source span a clip at its speed covers)."""
    rate = placement.timeline_rate
    timeline = TimelineTiming(rate=parse_rate(_rate_text(rate)), start_frame=round(placement.timeline_start))
    ref = placement.clip.media_reference
    available = ref.available_range
    media_rate = exact_rate(available.start_time.rate)
    origin = round(seconds(available.start_time) * media_rate)
    left = (placement.source_seconds - Fraction(origin) / media_rate) * rate
    speed = Fraction(1)
    for effect in placement.clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            speed = Fraction(effect.time_scalar).limit_denominator(1000)
    source_start = int(left * media_rate / rate)
    path = ref.target_url if isinstance(ref, otio.schema.ExternalReference) else "/seq/frame.%04d.exr"
    item = ItemTiming(
        name=placement.clip.name,
        track_index=placement.track_index,
        start=round(placement.timeline_start + placement.record_start),
        end=round(placement.timeline_start + placement.record_end),
        left_offset=Fraction(float(left)).limit_denominator(100_000),  # GetLeftOffset(True) is a float
        media_path=path,
        media_rate=parse_rate(_rate_text(media_rate)),
        media_start_timecode=frame_to_timecode(origin, media_rate),
        media_frames=round(seconds(available.duration) * media_rate),
        source_start_frame=source_start,
        source_end_frame=source_start + round(placement.record_frames * media_rate / rate * speed),
    )
    return timeline, item


def _mappable(placement) -> bool:
    ref = placement.clip.media_reference
    top_level = isinstance(placement.clip.parent(), otio.schema.Track) and isinstance(
        placement.clip.parent().parent(), otio.schema.Stack) and placement.clip.parent().parent().parent() is None
    # Resolve's API shows a compound clip as one item, so only clips directly on a track count.
    return top_level and isinstance(ref, (otio.schema.ExternalReference, otio.schema.ImageSequenceReference)) \
        and ref.available_range is not None


@pytest.mark.parametrize("name", RESOLVE_EXPORTS)
def test_real_exports_map_like_the_sidecar(nle_exports, name):
    timeline = read_timeline(nle_exports / name)
    checked = 0
    for placement in filter(_mappable, clip_placements(timeline)):
        live_timeline, item = _live_values(placement)
        if placement.retime:
            with pytest.raises(RetimedClipError):
                source_range(live_timeline, item)
            continue
        a, b = round(placement.record_start), round(placement.record_end)
        spans = [(a, b)] + ([(a + 3, b - 2)] if b - a > 6 else [])
        for start, end in spans:
            ours = source_range(live_timeline, item, live_timeline.start_frame + start, live_timeline.start_frame + end)
            theirs = region_for(placement, start, end, "x")
            assert (ours.first_frame, ours.frame_count, ours.record_start, ours.record_frames) == (
                theirs.first_frame, theirs.frame_count, theirs.record_start, theirs.record_frames), (name, item.name)
            assert ours.media_rate == theirs.media_rate and ours.source_timecode == theirs.source_timecode
            checked += 1
    assert checked or name == "resolve-transitions-retime-30p.otio"


def test_e117_trimmed_clip_by_hand(nle_exports):
    # cut_src.mp4 (no timecode): source 24+96 @24 → in-point 24 frames into the file.
    timeline = read_timeline(nle_exports / "resolve-e117-ftw-24p.otio")
    (placement,) = [p for p in clip_placements(timeline) if p.clip.name == "cut_src.mp4" and p.track == "Video 1"]
    live_timeline, item = _live_values(placement)
    assert (item.start, item.left_offset, item.media_start_timecode) == (86400, 24, "00:00:00:00")
    region = source_range(live_timeline, item)
    assert (region.first_frame, region.frame_count, region.record_start, region.record_timecode) == (24, 96, 0, "01:00:00:00")


def test_retimed_clip_in_the_real_export_is_refused_by_name(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-transitions-retime-30p.otio")
    retimed = [p for p in clip_placements(timeline) if p.retime and _mappable(p)]
    assert retimed
    live_timeline, item = _live_values(retimed[0])
    with pytest.raises(RetimedClipError, match=rf"{item.name!r}.*retimed \(about 43% speed.*Render the clip"):
        source_range(live_timeline, item)


# -- golden cases ----------------------------------------------------------------------------


def _item(**kw):
    base = dict(name="a.mov", track_index=1, start=86400, end=86400 + 50, left_offset=Fraction(0), media_path="/m/a.mov",
                media_rate=Fraction(24), media_start_timecode="00:00:00:00", media_frames=1000)
    base.update(kw)
    return ItemTiming(**base)


def test_golden_23976_media_starting_at_one_hour():
    rate = Fraction(24000, 1001)
    timeline = TimelineTiming(parse_rate("23.976"), timecode_to_frame("01:00:00:00", rate), "01:00:00:00")
    item = _item(start=86400 + 10, end=86400 + 60, left_offset=Fraction(100), media_rate=parse_rate("23.976"),
                 media_start_timecode="01:00:00:00")
    region = source_range(timeline, item)
    assert timeline.start_frame == 86400 and region.media_rate == rate
    assert (region.first_frame, region.frame_count, region.record_start, region.record_frames) == (100, 50, 10, 50)
    assert (region.source_timecode, region.record_timecode) == ("01:00:04:04", "01:00:00:10")


def test_golden_2997_drop_frame():
    rate = Fraction(30000, 1001)
    start = timecode_to_frame("01:00:00;00", rate)
    assert start == 107892
    timeline = TimelineTiming(parse_rate("29.97"), start, "01:00:00;00", drop_frame=True)
    item = _item(start=start + 1800, end=start + 1900, left_offset=Fraction(2), media_rate=rate,
                 media_start_timecode="00:59:59;28")
    region = source_range(timeline, item)
    # 1800 frames after 01:00:00;00 is a nominal minute: DF skips ;00 and ;01 of minute 1.
    assert region.record_timecode == "01:01:00;02" and region.record_start == 1800
    # Two frames after 00:59:59;28 is the hour, which keeps ;00 (every tenth minute).
    assert (region.first_frame, region.frame_count, region.source_timecode) == (2, 100, "01:00:00;00")
    assert timeline.frame_of_timecode("01:01:00;02") == start + 1800
    for frame in (0, 1799, 1800, 17981, 17982, 107892, 107893):
        assert timecode_to_frame(frame_to_timecode(frame, rate, True), rate) == frame


def test_golden_50fps_media_on_25fps_timeline():
    timeline = TimelineTiming(Fraction(25), 90000, "01:00:00:00")
    item = _item(start=90000, end=90020, left_offset=Fraction(50), media_rate=parse_rate("50"),
                 media_start_timecode="10:00:00:00", media_frames=500)
    region = source_range(timeline, item)
    assert (region.first_frame, region.frame_count, region.record_frames) == (100, 40, 20)  # two media frames a frame
    assert region.source_timecode == "10:00:02:00"
    # An in-point on an odd media frame is half a timeline frame: GetLeftOffset(True) says 50.5.
    odd = source_range(timeline, _item(start=90000, end=90020, left_offset=Fraction(101, 2), media_rate=Fraction(50),
                                       media_frames=500))
    assert (odd.first_frame, odd.frame_count) == (101, 40)
    assert source_frame_at(timeline, item, 90007) == 114  # the playhead 7 frames in


def test_golden_subclip_counts_from_the_file():
    # A subclip starting at file frame 100 of a 24 fps file stamped 01:00:00:00: Resolve
    # reports the subclip's own Start TC and its Start frame; the left offset counts from it.
    timeline = TimelineTiming(Fraction(24), 86400, "01:00:00:00")
    item = _item(left_offset=Fraction(50), start=86400, end=86424, media_start_timecode="01:00:04:04",
                 media_first_frame=100, media_frames=100)
    region = source_range(timeline, item)
    assert (region.first_frame, region.frame_count, region.source_timecode) == (150, 24, "01:00:06:06")
    with pytest.raises(ResolveScriptError, match="frames up to 199"):
        source_range(timeline, _item(left_offset=Fraction(90), start=86400, end=86424, media_first_frame=100,
                                     media_frames=100))


def test_golden_retimed_and_reversed_clips_are_refused():
    timeline = TimelineTiming(Fraction(24), 86400, "01:00:00:00")
    double = _item(source_start_frame=0, source_end_frame=100)  # 100 source frames over 50 timeline frames
    with pytest.raises(RetimedClipError, match=r"'a.mov' on V1 at 01:00:00:00 is retimed \(about 200% speed"):
        source_range(timeline, double)
    with pytest.raises(RetimedClipError, match="plays in reverse"):
        source_range(timeline, _item(source_start_frame=49, source_end_frame=0))
    assert isinstance(RetimedClipError("x"), LiveEditError)  # the CLI prints it without a traceback
    # Normal speed, with Resolve's known off-by-one on the start frame, passes.
    assert source_range(timeline, _item(source_start_frame=1, source_end_frame=50)).frame_count == 50


def test_bad_values_get_clear_errors():
    with pytest.raises(ResolveScriptError, match="frame rate 'abc'"):
        parse_rate("abc")
    with pytest.raises(ResolveScriptError, match="not a timecode"):
        timecode_to_frame("1 hour", Fraction(24))
    with pytest.raises(ResolveScriptError, match="out of range"):
        timecode_to_frame("01:00:00:24", Fraction(24))
    timeline = TimelineTiming(Fraction(24), 86400)
    with pytest.raises(ResolveScriptError, match="no media file"):
        source_range(timeline, _item(media_path=""))
    with pytest.raises(ResolveScriptError, match="does not overlap"):
        source_range(timeline, _item(), 86500, 86510)
    assert parse_rate("29.97 DF") == Fraction(30000, 1001) and parse_rate("59.94") == Fraction(60000, 1001)
