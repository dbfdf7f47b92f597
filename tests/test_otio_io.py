"""OTIO write-back (sidecar/writeback.py): Resolve shape, validator rules, EDL / FCP XML round trips."""

from __future__ import annotations

import json
from fractions import Fraction

import opentimelineio as otio
import pytest

from liveedit.sidecar.timeline import writeback
from liveedit.sidecar.timeline import clip_placements, read_timeline, region_for

RESOLVE_OWN = ["resolve-e117-ftw-24p.otio", "resolve-e120-compound-24p.otio", "resolve-transitions-retime-30p.otio"]


def _segment(region, path, handles_before=6, handles_after=6):
    prov = writeback.provenance(region, seed=7, model="tiny:random", checkpoint_hash=None, random_weights=True,
                              sampler={"shift": 5.0}, job_id="job1", settings_key="abc123",
                              handles=(handles_before, handles_after))
    return writeback.EditedSegment(region, str(path), region.media_timecode_start + region.first_frame - handles_before,
                                 region.frame_count + handles_before + handles_after, prov)


@pytest.fixture
def e117_edit(nle_exports, tmp_path):
    timeline = read_timeline(nle_exports / "resolve-e117-ftw-24p.otio")
    placement = [p for p in clip_placements(timeline) if p.clip.name == "cut_src.mp4"][0]
    region = region_for(placement, 10, 40, "make it snowy", marker_id="m1")  # media frames 34..63
    return timeline, region, _segment(region, tmp_path / "cut_src_edit.mov")


@pytest.mark.parametrize("name", RESOLVE_OWN)
def test_resolve_own_exports_pass_the_validator(nle_exports, name):
    assert writeback.validate_for_resolve(read_timeline(nle_exports / name)) == []


def test_edited_timeline_keeps_original_and_adds_liveedit_track(e117_edit, tmp_path):
    timeline, region, segment = e117_edit
    before = writeback.otio_text(timeline)
    edited = writeback.edited_timeline(timeline, [segment])
    assert writeback.otio_text(timeline) == before  # the input timeline is not touched
    names = [t.name for t in edited.tracks]
    assert names[:2] == ["Video 1", "LiveEdit"] and names[2] == "Audio 1"  # above V1, before audio
    path = writeback.write_otio(edited, tmp_path / "out.otio")
    text = path.read_text()
    assert '"OTIO_SCHEMA": "Clip.2"' in text and '"DEFAULT_MEDIA"' in text
    reread = otio.adapters.read_from_file(str(path))
    assert writeback.validate_for_resolve(reread) == []
    (clip,) = reread.tracks[1].find_clips()
    # Record 10..40 at 24 fps; source = same TC-absolute in-point as the original (24+10 = 34).
    assert clip.range_in_parent() == otio.opentime.TimeRange(otio.opentime.RationalTime(10, 24), otio.opentime.RationalTime(30, 24))
    assert clip.source_range.start_time.value == 34
    ref = clip.media_reference
    assert ref.target_url == str((tmp_path / "cut_src_edit.mov").resolve())  # bare absolute path
    assert (ref.available_range.start_time.value, ref.available_range.duration.value) == (28, 42)
    meta = clip.metadata["liveedit"]
    assert meta["schema_version"] == 1 and meta["instruction"] == "make it snowy" and meta["seed"] == 7
    assert meta["source"]["first_frame"] == 34 and list(meta["source"]["handles"]) == [6, 6]
    assert meta["record"]["timecode"] == "01:00:00:10" and meta["job_id"] == "job1"
    # The original clip underneath is unchanged.
    assert [c.source_range for c in reread.tracks[0].find_clips()] == [c.source_range for c in timeline.tracks[0].find_clips()]


def test_rerun_replaces_overlapping_segments_only(e117_edit, tmp_path):
    timeline, region, segment = e117_edit
    first = writeback.edited_timeline(timeline, [segment])
    later = region_for(clip_placements(timeline)[0], 60, 70, "rain")
    second = writeback.edited_timeline(first, [_segment(later, tmp_path / "b.mov", 0, 0)])
    again = writeback.edited_timeline(second, [_segment(region, tmp_path / "c.mov")])
    clips = [(c.range_in_parent().start_time.value, c.media_reference.target_url.rsplit("/", 1)[1])
             for c in again.tracks[1].find_clips()]
    assert clips == [(10, "c.mov"), (60, "b.mov")]
    assert sum(1 for t in again.tracks if t.name == "LiveEdit") == 1


def test_validator_names_every_rule(e117_edit):
    timeline, region, segment = e117_edit
    bad = writeback.edited_timeline(timeline, [segment])
    bad.metadata["Resolve_OTIO"] = {}
    bad.global_start_time = None
    bad.tracks[0].metadata["Resolve_OTIO"] = {}
    clip = bad.tracks[1].find_clips()[0]
    clip.media_reference.target_url = "file:///tmp/x.mov"
    clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(2, 24), otio.opentime.RationalTime(30, 24))
    clip.effects.append(otio.schema.Effect(name="fx"))
    clip.effects.append(otio.schema.LinearTimeWarp(time_scalar=0.5))
    original = bad.tracks[0].find_clips()[0]
    original.media_reference.available_range = None
    marker = otio.schema.Marker(name="m", marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(30, 24)),
                                color="green", metadata={"Resolve_OTIO": {"Note": "a"}})
    original.markers.append(marker)
    bad.tracks.append(otio.schema.Track(name="Video 9", kind=otio.schema.TrackKind.Video, metadata={"Resolve_OTIO": {"Locked": False}}))
    problems = "\n".join(writeback.validate_for_resolve(bad))
    for expected in [
        "Resolve OTIO Meta Version", "global_start_time must be set", "track 'Video 1': metadata Resolve_OTIO[\"Locked\"]",
        "must be a bare absolute path", "needs an available_range", "LinearTimeWarp must be the first effect",
        "upper-case names", "at least 1 frame", "both Resolve_OTIO[\"Note\"] and comment",
        "video tracks must all come before the audio tracks",
    ]:
        assert expected in problems, expected
    # A 0-based source range on timecoded media (the classic silent import failure):
    tc = writeback.edited_timeline(timeline, [segment])
    ref = tc.tracks[1].find_clips()[0]
    ref.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(30, 24))
    assert any("timecode-absolute" in p for p in writeback.validate_for_resolve(tc))
    # Inexact NTSC rate and a source range not at the timeline rate:
    ntsc = writeback.edited_timeline(timeline, [segment])
    c = ntsc.tracks[1].find_clips()[0]
    c.media_reference.available_range = otio.opentime.TimeRange(otio.opentime.RationalTime(28, 23.976), otio.opentime.RationalTime(42, 23.976))
    c.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(34, 48), otio.opentime.RationalTime(60, 48))
    text = "\n".join(writeback.validate_for_resolve(ntsc))
    assert "23.976 is not exact; write 24000/1001" in text and "timeline rate 24" in text


def test_resolve_shape_fixes_fcp_xml_timelines(nle_exports):
    timeline = read_timeline(nle_exports / "premiere-fcp7-markers-30p.xml")
    assert writeback.validate_for_resolve(timeline)  # FCP XML: file:// URLs, no Resolve keys, 15 fps clip
    writeback.resolve_shape(timeline)
    assert writeback.validate_for_resolve(timeline) == []
    clip = [c for c in timeline.find_clips() if c.metadata.get("fcp_xml", {}).get("@id") == "clipitem-1"]
    assert clip and clip[0].source_range.duration.value == 100  # 50 @15 rescaled to 100 @30
    assert clip[0].media_reference.target_url == "D:/media/sc01_sh010_anim.mov"


def _ntsc_edit(tmp_path):
    rate = 24000 / 1001
    ref = otio.schema.ExternalReference(target_url="/media/a.mov", available_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(86400, rate), otio.opentime.RationalTime(2000, rate)))
    clip = otio.schema.Clip(name="a.mov", media_reference=ref, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(86500, rate), otio.opentime.RationalTime(200, rate)))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(48, rate))))
    track.append(clip)
    timeline = otio.schema.Timeline(global_start_time=otio.opentime.RationalTime(86400, rate))
    timeline.tracks.append(track)
    (placement,) = clip_placements(timeline)
    region = region_for(placement, 60, 90, "snow")  # media frames 112..141
    return timeline, region, _segment(region, tmp_path / "a_edit.mov", 12, 12)


def test_edl_and_fcp_xml_round_trip_with_the_same_ranges(tmp_path):
    timeline, region, segment = _ntsc_edit(tmp_path)
    edited = writeback.edited_timeline(timeline, [segment])
    written = writeback.write_all(edited, tmp_path / "show_liveedit")
    assert sorted(p.name for p in written.values()) == ["show_liveedit.edl", "show_liveedit.otio", "show_liveedit.xml"]
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind
    start = 86400
    # EDL: record timecode absolute (timeline start + 60), source = the segment's TC in-point.
    edl = read_timeline(written["edl"], edl_rate=24000 / 1001)
    (clip,) = edl.find_clips()
    assert edl.global_start_time.value + clip.range_in_parent().start_time.value == start + 60
    assert (clip.source_range.start_time.value, clip.source_range.duration.value) == (86400 + 112, 30)
    assert "FCM: NON-DROP FRAME" in written["edl"].read_text()
    # FCP XML: both tracks come back with the same record and source ranges.
    xml = read_timeline(written["xml"])
    assert Fraction(xml.global_start_time.rate).limit_denominator(1001) == Fraction(24000, 1001)
    got = {c.name: (c.range_in_parent().start_time.value, c.range_in_parent().duration.value, c.source_range.start_time.value)
           for c in xml.find_clips()}
    assert got == {"a.mov": (48, 200, 86500), "a.mov LiveEdit": (60, 30, 86512)}
    live = [c for c in xml.find_clips() if c.name == "a.mov LiveEdit"][0]
    assert otio.url_utils.filepath_from_url(live.media_reference.target_url) == str((tmp_path / "a_edit.mov").resolve())


def test_fcp_xml_export_of_a_resolve_timeline_with_generators(e117_edit, tmp_path):
    timeline, region, segment = e117_edit
    path = writeback.write_fcp_xml(writeback.edited_timeline(timeline, [segment]), tmp_path / "e117.xml")
    back = read_timeline(path)
    assert {c.name for c in back.find_clips()} == {"cut_src.mp4", "cut_src.mp4 LiveEdit"}
    # Resolve's Solid Color generators become gaps (the XML writer cannot carry them).
    live = [c for c in back.find_clips() if c.name.endswith("LiveEdit")][0]
    assert (live.range_in_parent().start_time.value, live.range_in_parent().duration.value) == (10, 30)


def test_provenance_is_plain_json(e117_edit):
    _, region, segment = e117_edit
    text = json.dumps(segment.provenance)
    assert json.loads(text)["source"]["rate"] == [24, 1]
