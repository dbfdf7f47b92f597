"""The strict fake Resolve itself (fake-host tests): its methods match fusionscript-stubs,
unknown names raise, and the documented behaviours our scripts rely on are there."""

from __future__ import annotations

from fractions import Fraction

import pytest

from liveedit.clients.resolve import host
import fake_resolve
from fake_resolve import FakeResolve, MediaFacts, contract_problems

pytestmark = pytest.mark.fakehost


def test_every_fake_method_is_in_the_stubs_with_the_same_parameters():
    assert fake_resolve.stub_file().is_file()
    assert contract_problems() == []


def test_the_contract_check_catches_a_wrong_name_and_wrong_parameters(monkeypatch):
    monkeypatch.setattr(fake_resolve.FakeTimeline, "GetSelectedItems", lambda self: [], raising=False)
    monkeypatch.setattr(fake_resolve.FakeTimeline, "AddMarker", lambda self, frame, color: True)
    problems = contract_problems()
    assert any("Timeline.GetSelectedItems is not in the scripting API" in p for p in problems)
    assert any(p.startswith("Timeline.AddMarker('frame', 'color')") for p in problems)


def test_unknown_attributes_raise_instead_of_being_fabricated():
    resolve = FakeResolve()
    timeline = resolve._new_timeline()
    with pytest.raises(AttributeError, match="Timeline has no 'GetTimelineByName'"):
        timeline.GetTimelineByName("x")
    assert not host.has_method(timeline, "GetTimelineByName")


def test_selection_api_only_from_21_0_4_and_the_playhead_fallback(tmp_path):
    old = FakeResolve(version=(21, 0, 3))
    timeline = old._new_timeline()
    media = old._media(str(tmp_path / "a.mov"), MediaFacts(Fraction(24), "01:00:00:00", 100))
    item = timeline._add_clip(1, media, record_offset=10, duration=20)
    assert not host.has_method(timeline, "GetSelectedClips")
    with pytest.raises(AttributeError):
        timeline.GetSelectedClips()
    timeline._set_playhead(15)
    assert host.selected_items(host.current_session(old)) == [item]


def test_documented_behaviours(tmp_path):
    resolve = FakeResolve(probe=lambda path: MediaFacts(Fraction(24), "01:00:00:00", 48))
    timeline = resolve._new_timeline()
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    media = resolve._media(str(tmp_path / "a.mov"), MediaFacts(Fraction(24), "01:00:00:00", 100))
    first = timeline._add_clip(1, media, record_offset=0, duration=10)
    assert first.GetEnd() - first.GetStart() == first.GetDuration() == 10  # end exclusive
    assert timeline.GetItemListInTrack("video", 0) is None  # tracks are 1-based
    # endFrame is exclusive; an overlapping append is dropped silently (earlier clip wins).
    placed = pool.AppendToTimeline([{"mediaPoolItem": media, "startFrame": 0, "endFrame": 5, "trackIndex": 1,
                                     "recordFrame": 86405}])
    assert placed == [] and len(pool.dropped) == 1
    (ok,) = pool.AppendToTimeline([{"mediaPoolItem": media, "startFrame": 3, "endFrame": 8, "trackIndex": 1,
                                    "recordFrame": 86410}])
    assert (ok.GetStart(), ok.GetDuration(), ok.GetLeftOffset()) == (86410, 5, 3)
    # A failed import answers None; a good one lands in the current folder.
    assert pool.ImportMedia([str(tmp_path / "missing.mov")]) is None
    (tmp_path / "b.mov").write_bytes(b"x")
    (clip,) = pool.ImportMedia([str(tmp_path / "b.mov")])
    assert clip in pool.GetCurrentFolder().GetClipList()
    # One marker per frame; the custom data round-trips.
    assert timeline.AddMarker(3, "Green", "n", "note", 1, "data")
    assert not timeline.AddMarker(3, "Blue", "n", "note", 1, "")
    assert timeline.GetMarkers()[3.0]["customData"] == "data"


def test_free_track_search_never_targets_an_occupied_or_locked_range(tmp_path):
    resolve = FakeResolve()
    timeline = resolve._new_timeline()
    media = resolve._media(str(tmp_path / "a.mov"), MediaFacts(Fraction(24), "01:00:00:00", 100))
    timeline._add_clip(1, media, record_offset=0, duration=50)
    locked = timeline._add_track("LiveEdit", locked=True)
    busy = timeline._add_track("LiveEdit 2")
    timeline._add_clip(busy, media, record_offset=10, duration=5)
    session = host.current_session(resolve)
    index, note = host.free_liveedit_track(session, 86400 + 12, 86400 + 20, above=1)
    assert index == 4 and timeline.GetTrackName("video", 4) == "LiveEdit 3"
    assert "LiveEdit is locked" in note and "LiveEdit 2 is occupied" in note and "LiveEdit 3" in note
    # Past the busy clip, LiveEdit 2 is free again and is used without a note.
    assert host.free_liveedit_track(session, 86400 + 15, 86400 + 20, above=1) == (busy, "LiveEdit is locked at 01:00:00:15, so the edit went on LiveEdit 2")
    assert locked == 2
