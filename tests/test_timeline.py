"""Timeline → source frame mapping and region finding (sidecar/timeline/).

The expected numbers are worked out by hand from each file's raw values; the comment
next to every check says how."""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio
import pytest

from liveedit.sidecar.timeline import (
    MediaTiming,
    TimelineError,
    clip_placements,
    exact_rate,
    find_markers,
    read_timeline,
    record_frame_from_timecode,
    region_for,
    regions_for_range,
    regions_from_markers,
)

ALL_FIXTURES = [
    "premiere-fcp7-markers-30p.xml",
    "resolve-clip-embedded-tc-marker.json",
    "resolve-clip-imgseq-embedded-tc.json",
    "resolve-e117-ftw-24p.otio",
    "resolve-e120-compound-24p.otio",
    "resolve-fcp7-60p.xml",
    "resolve-timeline-markers.edl",
    "resolve-transitions-retime-30p.otio",
]


def _whole(placement, instruction="x", **kw):
    return region_for(placement, placement.record_start, placement.record_end, instruction, **kw)


def _by_name(timeline, name):
    return [p for p in clip_placements(timeline) if p.clip.name == name]


# -- the real exports -------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_and_maps(nle_exports, name):
    timeline = read_timeline(nle_exports / name, edl_rate=30)
    for placement in clip_placements(timeline):
        assert placement.record_frames > 0
        if placement.retime or not isinstance(placement.clip.media_reference, otio.schema.ExternalReference):
            continue
        region = _whole(placement)
        assert region.first_frame >= 0 and region.frame_count > 0
    assert set(ALL_FIXTURES) == {p.name for p in nle_exports.iterdir() if p.suffix != ".md"}


def test_resolve_trimmed_clip_e117(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-e117-ftw-24p.otio")
    # cut_src.mp4: source_range 24+96 @24, available_range 0+192 (no timecode) → frames 24..119,
    # at record 0 of a timeline starting at 86400 (01:00:00:00).
    (v1,) = [p for p in _by_name(timeline, "cut_src.mp4") if p.track == "Video 1"]
    region = _whole(v1)
    assert (region.first_frame, region.frame_count, region.media_rate) == (24, 96, 24)
    assert (region.record_start, region.timeline_start, region.record_timecode) == (0, 86400, "01:00:00:00")
    assert region.media_path == "/Users/samuelgursky/Movies/mcp_probe_tmp/cut_src.mp4"
    # The generators after the dissolve have no media: refused with the clip named.
    solid = _by_name(timeline, "Solid Color")[0]
    assert solid.record_start == 96  # the 12/12 dissolve does not move the cut
    with pytest.raises(TimelineError, match="'Solid Color'.*generator"):
        _whole(solid)


def test_resolve_embedded_timecode_24_on_25(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-clip-embedded-tc-marker.json")
    (p,) = clip_placements(timeline)
    region = _whole(p)
    # source 90032@25 = 3601.28 s; media origin 86400@24 = 3600 s → 1.28 s in = 30.72 media
    # frames: frame 30 is on screen. End (90032+44)/25 = 3603.04 s → 72.96 → last frame 72.
    assert (region.first_frame, region.frame_count, region.media_rate, region.timeline_rate) == (30, 43, 24, 25)
    assert region.source_start == 90032  # kept TC-absolute at the timeline rate for write-back
    assert region.media_path.endswith("qt_embedded_tc.mov")
    (marker,) = find_markers(timeline)
    # Clip marker 90054@25 in source space: 22 timeline frames after the clip's 90032.
    assert (marker.color, marker.record_start, marker.record_frames) == ("GREEN", 22, 1)
    assert marker.instruction.startswith('{"resolve_sub_products"')  # the note, from Resolve_OTIO.Note


def test_resolve_image_sequence_fractional_source(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-clip-imgseq-embedded-tc.json")
    (p,) = clip_placements(timeline)
    region = _whole(p)
    # 91046.625@25 = 3641.865 s; origin 87399@24 = 3641.625 s → 0.24 s = 5.76 frames → 5;
    # end 3641.865 + 74/25 = 3644.825 s → 3.2 s = 76.8 → frames 5..76 (72 frames).
    assert (region.first_frame, region.frame_count) == (5, 72)
    assert region.media_path.endswith("output.%04d.exr")
    (marker,) = find_markers(timeline)
    assert marker.record_start == 37  # 91083.625 - 91046.625


def test_resolve_compound_clips_e120(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-e120-compound-24p.otio")
    # V1: cut_src 24+48 at record 0..48, then compound E57_OUT (48 frames) holding E57_IN
    # (white_src 0+24) and cut_src 96+24 → record 48..72 and 72..96.
    white = _whole(_by_name(timeline, "white_src.mp4")[0])
    assert (white.record_start, white.first_frame, white.frame_count) == (48, 0, 24)
    inner_cut = [p for p in _by_name(timeline, "cut_src.mp4") if p.record_start == 72]
    assert len(inner_cut) == 1
    region = _whole(inner_cut[0])
    assert (region.first_frame, region.frame_count) == (96, 24)


def test_resolve_fcp7_xml_60p(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-fcp7-60p.xml")
    placements = clip_placements(timeline)
    assert len(placements) == 9
    # Raw XML, second clipitem: <start>122014 <end>171309 <in>181062 <out>230357, file TC 0,
    # sequence TC 01:00:00:00 = frame 216000 at 60.
    second = _whole(placements[1])
    assert (second.record_start, second.record_frames) == (122014, 171309 - 122014)
    assert (second.first_frame, second.frame_count) == (181062, 230357 - 181062)
    assert second.timeline_start == 216000
    assert second.media_path == "/Volumes/Mojave/videoschnitt-in-arbeit/AWS Security Fundamentals/2021-04-17_15-01-18.mp4"


def test_premiere_fcp7_xml(nle_exports):
    timeline = read_timeline(nle_exports / "premiere-fcp7-markers-30p.xml")
    # clipitem-1: clip rate 15, <in>0 <out>50 (3.33 s) of a 30 fps, 100-frame file at
    # record <start>536 → media frames 0..99 at 30: same seconds, no speed change.
    (first,) = [p for p in clip_placements(timeline) if p.record_start == 536]
    region = _whole(first)
    assert (region.first_frame, region.frame_count, region.media_rate) == (0, 100, 30)
    assert region.media_path == "D:/media/sc01_sh010_anim.mov"
    # clipitem-11: file timecode frame 99 (00:00:03:09), <in>34 → media frame 34, at record
    # 956; the centred dissolve at 1152–1177 cuts it at 1164 → 208 frames.
    (temp,) = [p for p in _by_name(timeline, "sc01_master_layerA_sh030_temp.mov") if p.track_index == 4]
    region = _whole(temp)
    assert (region.record_start, region.first_frame, region.frame_count) == (956, 34, 208)
    assert region.media_timecode_start == 99
    markers = {m.marker_id: m for m in find_markers(timeline)}
    # Sequence markers: <in>113 "My MArker 1" / "so, this happened", <in>492, <in>298.
    timeline_markers = sorted((round(m.record_start), m.instruction) for m in markers.values() if m.track is None)
    assert timeline_markers == [(113, "so, this happened"), (298, ""), (492, "fsfsfs")]
    # Clip marker <in>73 on sc01_sh030_anim (record 322, <in>0) → record 395.
    clip_markers = [m for m in markers.values() if m.placement is not None]
    assert [(m.placement.clip.name, m.record_start) for m in clip_markers] == [("sc01_sh030_anim.mov", 395)]


def test_resolve_timeline_marker_edl(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-timeline-markers.edl", edl_rate=30)
    markers = find_markers(timeline)
    assert len(markers) == 82 and {m.color for m in markers} == {"BLUE"}
    # 01:00:36:25 at 30 = 109105 is the first event, so the timeline origin; event 3 is
    # 01:00:43:29 = 109319 → 214 frames later.
    assert timeline.global_start_time.value == 109105
    assert [(m.marker.name, m.record_start, m.record_frames) for m in markers[:3:2]] == [
        ("Marker 1", 0, 1), ("Marker 3", 214, 1)
    ]
    # Their names are automatic and their notes empty: no instruction to act on.
    assert all(m.instruction == "" for m in markers)
    with pytest.raises(TimelineError, match="no EDL|frame rate"):
        read_timeline(nle_exports / "resolve-timeline-markers.edl")


def test_retimed_clip_is_refused_with_name_and_record_time(nle_exports):
    timeline = read_timeline(nle_exports / "resolve-transitions-retime-30p.otio")
    second = clip_placements(timeline)[1]
    # V2 second clip at record 51 of a 30 fps timeline starting 01:00:00:00 → 01:00:01:21.
    with pytest.raises(TimelineError, match=r"happy_horse_cheerful_meadow\.mp4.*Video 2.*01:00:01:21.*43% speed"):
        _whole(second)


# -- golden cases built here ---------------------------------------------------------


def _rt(value, rate):
    return otio.opentime.RationalTime(value, rate)


def _range(start, duration, rate):
    return otio.opentime.TimeRange(_rt(start, rate), _rt(duration, rate))


def _timeline(rate, start, *tracks):
    timeline = otio.schema.Timeline(global_start_time=_rt(start, rate))
    for n, items in enumerate(tracks, start=1):
        track = otio.schema.Track(name=f"Video {n}", kind=otio.schema.TrackKind.Video)
        for item in items:
            track.append(item)
        timeline.tracks.append(track)
    return timeline


def _gap(frames, rate):
    return otio.schema.Gap(source_range=_range(0, frames, rate))


def _clip(name, source, media_rate, available, timeline_rate=None):
    ref = otio.schema.ExternalReference(target_url=f"/media/{name}", available_range=_range(*available, media_rate))
    return otio.schema.Clip(name=name, media_reference=ref, source_range=_range(*source, timeline_rate or media_rate))


def test_golden_23976_with_hour_timecode():
    rate = 24000 / 1001
    clip = _clip("a.mov", (86400 + 100, 50), rate, (86400, 1000))
    timeline = _timeline(rate, 86400, [_gap(10, rate), clip])
    (region,) = regions_for_range(timeline, "snow")
    # media 01:00:00:00 = 86400; in-point 86500 → frame 100; record after a 10-frame gap.
    assert (region.first_frame, region.frame_count, region.record_start) == (100, 50, 10)
    assert region.media_rate == Fraction(24000, 1001) and region.timeline_rate == Fraction(24000, 1001)
    assert exact_rate(23.976) == Fraction(24000, 1001)  # an approximate rate snaps to the exact one


def test_golden_2997_drop_frame():
    rate = 30000 / 1001
    start = 107892  # 01:00:00;00 drop-frame
    clip = _clip("b.mov", (start + 1000, 900), rate, (start, 5000))
    timeline = _timeline(rate, start, [_gap(1800, rate), clip])
    (region,) = regions_for_range(timeline, "snow")
    assert (region.first_frame, region.frame_count, region.record_start) == (1000, 900, 1800)
    # 1800 frames after 01:00:00;00 is one minute of nominal 30 fps: DF skips ;00 and ;01.
    assert region.record_timecode == "01:01:00;02"
    assert record_frame_from_timecode(timeline, "01:01:00;02") == 1800


def test_golden_50fps_media_on_25fps_timeline():
    # Media at 50 fps stamped 10:00:00:00 (1,800,000 at 50); the clip's source range is in
    # timeline (25) frames from the same origin: 900,050 @25 = 1,800,100 @50 → frame 100.
    clip = _clip("c.mov", (900050, 20), 50, (1800000, 500), timeline_rate=25)
    timeline = _timeline(25, 90000, [clip])
    (region,) = regions_for_range(timeline, "snow")
    assert (region.first_frame, region.frame_count, region.media_rate) == (100, 40, 50)
    assert (region.record_start, region.record_frames) == (0, 20)


def test_golden_subclip_uses_the_media_files_own_timecode():
    # A subclip's available_range starts where the subclip does (86500), not at the file's
    # timecode origin (86400): the probe of the real file decides.
    clip = _clip("d.mov", (86550, 24), 24, (86500, 100))
    timeline = _timeline(24, 86400, [clip])
    (p,) = clip_placements(timeline)

    def probe(path):
        assert path == "/media/d.mov"
        return MediaTiming(rate=Fraction(24), timecode_start=86400, frame_count=300)

    assert _whole(p, media_info=probe).first_frame == 150
    assert _whole(p).first_frame == 50  # without a probe: relative to what the timeline knows


@pytest.mark.parametrize(
    "effect, reason",
    [(otio.schema.LinearTimeWarp(time_scalar=2.0), "200% speed"), (otio.schema.FreezeFrame(), "freeze frame")],
)
def test_retimes_refused(effect, reason):
    clip = _clip("f.mov", (10, 48), 24, (0, 200))
    clip.effects.append(effect)
    timeline = _timeline(24, 86400, [_gap(24, 24), clip])
    with pytest.raises(TimelineError, match=rf"'f\.mov' on Video 1 at 01:00:01:00 .*{reason}"):
        regions_for_range(timeline, "snow")
    refused = []
    assert regions_for_range(timeline, "snow", on_refused=refused.append) == []
    assert len(refused) == 1


def test_range_splits_by_visible_clip_and_top_track_wins():
    v1 = [_clip("a.mov", (0, 48), 24, (0, 100)), _clip("b.mov", (10, 48), 24, (0, 100))]
    v2 = [_gap(40, 24), _clip("top.mov", (0, 16), 24, (0, 100))]
    timeline = _timeline(24, 0, v1, v2)
    regions = regions_for_range(timeline, "snow", (24, 72))
    # a: 24..40 (frames 24..39), top: 40..56 (0..15), b: 56..72 (b starts at record 48
    # with in-point 10 → record 56 is frame 18, 16 frames).
    assert [(r.clip_name, r.record_start, r.record_frames, r.first_frame, r.frame_count) for r in regions] == [
        ("a.mov", 24, 16, 24, 16), ("top.mov", 40, 16, 0, 16), ("b.mov", 56, 16, 18, 16)
    ]
    assert [r.track for r in regions] == ["Video 1", "Video 2", "Video 1"]


def test_markers_point_means_clip_long_means_frames_and_colour_filter():
    a = _clip("a.mov", (86400 + 10, 48), 24, (86400, 200))
    b = _clip("b.mov", (86400, 48), 24, (86400, 200))
    point = otio.schema.Marker(name="Marker 1", marked_range=_range(86400 + 30, 1, 24), color="GREEN",
                               metadata={"Resolve_OTIO": {"Keywords": [], "Note": "snowy"}})
    a.markers.append(point)
    timeline = _timeline(24, 86400, [a, b])
    span = otio.schema.Marker(name="make it night", marked_range=_range(40, 20, 24), color="GREEN")
    other = otio.schema.Marker(name="ignored", marked_range=_range(0, 5, 24), color="BLUE")
    timeline.tracks.markers.extend([span, other])
    regions = regions_from_markers(timeline, "Green")
    got = sorted((r.clip_name, r.record_start, r.record_frames, r.first_frame, r.instruction) for r in regions)
    # Point clip marker → all of clip a (record 0..48, media 10..57). Timeline marker
    # 40..60 spans the cut at 48 → a 40..48 (media 50..57) and b 48..60 (media 0..11).
    assert got == [
        ("a.mov", 0, 48, 10, "snowy"),
        ("a.mov", 40, 8, 50, "make it night"),
        ("b.mov", 48, 12, 0, "make it night"),
    ]
    assert {r.marker_id for r in regions if r.instruction == "make it night"} == {"timeline#0"}


def test_marker_without_instruction_is_refused_clearly():
    a = _clip("a.mov", (0, 48), 24, (0, 200))
    a.markers.append(otio.schema.Marker(name="Marker 7", marked_range=_range(5, 1, 24), color="GREEN"))
    timeline = _timeline(24, 86400, [a])
    with pytest.raises(TimelineError, match="'Marker 7'.*no instruction.*note"):
        regions_from_markers(timeline, "GREEN")


def test_clear_errors_for_bad_files(tmp_path):
    with pytest.raises(TimelineError, match="does not exist"):
        read_timeline(tmp_path / "missing.otio")
    bad = tmp_path / "bad.otio"
    bad.write_text("{not json")
    with pytest.raises(TimelineError, match="bad.otio could not be read"):
        read_timeline(bad)
    other = tmp_path / "t.aaf2"
    other.write_text("x")
    with pytest.raises(TimelineError, match="unknown timeline format"):
        read_timeline(other)


def test_region_beyond_the_media_is_refused():
    clip = _clip("g.mov", (90, 20), 24, (0, 100))  # asks for frames 90..109 of a 100-frame file
    with pytest.raises(TimelineError, match=r"needs media frames 90–109 .* has frames 0–99"):
        regions_for_range(_timeline(24, 0, [clip]), "snow")
