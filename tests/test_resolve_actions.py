"""The Resolve menu actions end to end, as fake-host tests: the strict fake Resolve
(tests/fake_resolve.py, not the real editor) drives clients/resolve/actions.py, which talks
over HTTP to a real sidecar bridge with a real render queue running the tiny model
(random weights) on generated clips."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from liveedit.clients.resolve import actions, host
from liveedit.clients.resolve.bridge_client import BridgeClient
from liveedit.clients.resolve.errors import ResolveScriptError, SidecarNotRunningError
from fake_resolve import FakeResolve, MediaFacts
from media_fixtures import ffprobe_frame_count

pytestmark = pytest.mark.fakehost
TOKEN = "resolve-test-token-" + "y" * 24
NTSC = Fraction(24000, 1001)


def probe_facts(path: str) -> MediaFacts:
    from liveedit.sidecar.media import probe

    info = probe(path)
    return MediaFacts(info.frame_rate, info.start_timecode or "00:00:00:00", info.frame_count)


@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def tiny_models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.fixture
def sidecar(tmp_path, config_dir, tiny_models):
    """RenderQueue + LocalExecutor + start_bridge on a background event loop, as
    `liveedit serve` would run them; the token file and bridge.json in the config folder."""
    from liveedit.sidecar.api.bridge import start_bridge
    from liveedit.sidecar.jobs import LocalExecutor, RenderQueue

    config_dir.mkdir(mode=0o700)
    token = config_dir / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    queue = RenderQueue(tmp_path / "jobs.db", LocalExecutor(tiny_models))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    bridge = asyncio.run_coroutine_threadsafe(
        start_bridge(queue, None, token=TOKEN, info={"model_preset": "tiny", "random_weights": True}), loop).result(30)
    try:
        yield bridge
    finally:
        asyncio.run_coroutine_threadsafe(bridge.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        queue.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_edit_selection_renders_places_and_tags_two_clips(media_clips, sidecar, tmp_path):
    source = media_clips["ntsc_film"]  # 30 frames at 24000/1001, timecode 01:00:00:00
    before = _digest(source)
    resolve = FakeResolve(probe=probe_facts)
    timeline = resolve._new_timeline(rate=NTSC)
    clip = resolve._media(str(source), probe_facts(str(source)))
    a = timeline._add_clip(1, clip, record_offset=0, duration=5, left_offset=4)  # source frames 4..8
    b = timeline._add_clip(1, clip, record_offset=20, duration=5, left_offset=16)  # source frames 16..20
    # An earlier edit already sits on the LiveEdit track over clip A: A must go elsewhere.
    liveedit_track = timeline._add_track("LiveEdit")
    timeline._add_clip(liveedit_track, clip, record_offset=1, duration=3, left_offset=0, name="older edit")
    timeline._selection = [b, a]

    client = BridgeClient.from_config()
    messages: list[str] = []
    options = actions.EditOptions("make the fur snowy white", seed=1, handles=1, format="h264",
                                  output_dir=str(tmp_path / "renders"))
    report = actions.edit_selection(resolve, client, options, messages.append, poll_seconds=0.05)

    assert report.problems == [], report.text()
    assert len(report.placements) == 2 and any("frames" in m for m in messages)
    pool = resolve.GetProjectManager().GetCurrentProject().GetMediaPool()
    assert pool.dropped == []  # no placement was attempted onto an occupied range
    by_record = {p.record_frame: p for p in report.placements}
    first, second = by_record[86400], by_record[86420]
    # Two media files with the region's frames plus one handle each side (ffmpeg counts them).
    for placement, first_frame in ((first, 4), (second, 16)):
        assert placement.region.first_frame == first_frame and placement.region.frame_count == 5
        assert Path(placement.output).parent == (tmp_path / "renders").resolve()
        assert ffprobe_frame_count(placement.output) == 7
    # B lands on the free LiveEdit track; A's range there is taken, so a new track on top.
    assert second.track_index == liveedit_track
    assert first.track_index == 3 and timeline.GetTrackName("video", 3) == "LiveEdit 2"
    assert any("LiveEdit is occupied" in line and "LiveEdit 2" in line for line in report.lines)
    for placement in (first, second):
        (item,) = [i for i in timeline.GetItemListInTrack("video", placement.track_index)
                   if i.GetStart() == placement.record_frame]
        assert item.GetDuration() == 5 and item.GetLeftOffset() == 1  # the handle is hidden, not shown
        assert item.GetMediaPoolItem().GetClipProperty("File Path") == placement.output
    # Two markers whose custom data is the job id, at the edits' record frames.
    markers = timeline.GetMarkers()
    job_ids = {m["customData"] for m in markers.values()}
    assert job_ids == {f"liveedit-job:{first.job_id}"} and sorted(markers) == [0.0, 20.0]
    # Imported into the LiveEdit bin; the source never touched; the random weights said out loud.
    (bin_,) = [f for f in pool.GetRootFolder().GetSubFolderList() if f.GetName() == "LiveEdit"]
    assert len(bin_.GetClipList()) == 2 and pool.GetCurrentFolder() is pool.GetRootFolder()
    assert _digest(source) == before
    assert "RANDOM weights" in report.text()


@pytest.mark.slow
def test_render_marked_regions_renders_only_the_marked_frames(media_clips, sidecar, tmp_path):
    source = media_clips["ntsc_film"]
    resolve = FakeResolve(probe=probe_facts)
    timeline = resolve._new_timeline(rate=NTSC)
    clip = resolve._media(str(source), probe_facts(str(source)))
    timeline._add_clip(1, clip, record_offset=0, duration=12, left_offset=2)  # source frames 2..13
    timeline.AddMarker(3, "Green", "Marker 1", "make it snow", 4, "")  # record 3..6 → source 5..8
    timeline.AddMarker(9, "Blue", "other colour", "ignore me", 2, "")
    timeline.AddMarker(10, "Green", "Marker 3", "", 1, "")  # no instruction: refused, not guessed

    options = actions.EditOptions("(from markers)", seed=0, handles=1, format="h264", output_dir=str(tmp_path / "out"))
    report = actions.render_marked_regions(resolve, BridgeClient.from_config(), "Green", options, poll_seconds=0.05)

    assert len(report.problems) == 1 and "no instruction" in report.problems[0]
    (placement,) = report.placements
    assert (placement.region.first_frame, placement.region.frame_count) == (5, 4)
    assert ffprobe_frame_count(placement.output) == 6  # 4 marked frames + 1 handle each side
    assert placement.record_frame == 86403 and timeline.GetTrackName("video", placement.track_index) == "LiveEdit"
    # Resolve's own OTIO export and ours with the edit and its provenance, side by side.
    ours = otio.adapters.read_from_file(report.otio)
    assert Path(report.otio).parent == (tmp_path / "out").resolve()
    assert (Path(report.otio).parent / "Timeline_1.resolve.otio").is_file()
    (track,) = [t for t in ours.video_tracks() if t.name == "LiveEdit"]
    (edit,) = list(track.find_clips())
    assert edit.range_in_parent().start_time.value == 3 and edit.duration().value == 4
    assert edit.metadata["liveedit"]["instruction"] == "make it snow"
    assert edit.metadata["liveedit"]["job_id"] == placement.job_id
    from liveedit.sidecar.timeline.writeback import validate_for_resolve

    assert validate_for_resolve(ours) == []


def test_a_sidecar_that_is_not_running_says_how_to_start_it(config_dir, tmp_path):
    resolve = FakeResolve()
    resolve._new_timeline()
    with pytest.raises(SidecarNotRunningError, match=r"not running.*\n\s+liveedit serve"):
        BridgeClient.from_config()
    config_dir.mkdir()
    (config_dir / "bridge.json").write_text(json.dumps({"port": 9}))  # nothing listens on the discard port
    (config_dir / "token").write_text("t")
    with pytest.raises(SidecarNotRunningError, match=r"(?s)127\.0\.0\.1:9.*liveedit serve"):
        BridgeClient.from_config()


def test_nothing_selected_and_nothing_under_the_playhead_is_explained(config_dir):
    resolve = FakeResolve()
    timeline = resolve._new_timeline()
    timeline._set_playhead(100)
    client = BridgeClient("http://127.0.0.1:9", "t")
    with pytest.raises(ResolveScriptError, match="no clip is selected"):
        actions.edit_selection(resolve, client, actions.EditOptions("snow"))
    with pytest.raises(ResolveScriptError, match="write an instruction"):
        actions.edit_selection(resolve, client, actions.EditOptions("  "))


ECHO_WINDOW = """
import sys
for line in sys.stdin.buffer:  # a stand-in window: says back each request the moment it arrives
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()
"""


def test_live_preview_hands_each_playhead_move_over_before_the_next_poll(tmp_path, monkeypatch):
    """The hand-over is a line on the window's standard input, flushed as the script sees the
    playhead move: a real child process has each request before the script polls again (the
    old hand-over was a file the window read once a second)."""
    resolve = FakeResolve()
    timeline = resolve._new_timeline(rate=Fraction(25), start_timecode="10:00:00:00")
    media = resolve._media(str(tmp_path / "p50.mov"), MediaFacts(Fraction(50), "10:00:00:00", 500))
    timeline._add_clip(1, media, record_offset=100, duration=20, left_offset=10)  # 50 fps media on a 25 fps timeline
    timeline._set_playhead(105)
    playhead = iter([105, 106, 106, 130, 107])  # 130 is off the clip: nothing sent

    launched, windows = [], []

    def launch(command):
        launched.append(command)
        window = subprocess.Popen([sys.executable, "-c", ECHO_WINDOW], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        windows.append(window)
        return window

    received = []

    def next_line(window) -> dict:
        box = []
        reader = threading.Thread(target=lambda: box.append(window.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)  # an upper bound on a hang, not a timing assertion
        assert box and box[0], "the window did not get the request before the next poll"
        return json.loads(box[0])

    sent_log = []
    send = actions.send_follow_request

    def recording_send(pipe, request):
        sent_log.append(request["frame"])
        return send(pipe, request)

    def sleep(_):  # between two polls: whatever the script sent must already be at the window
        while len(received) < len(sent_log):
            received.append(next_line(windows[0]))
        try:
            timeline._set_playhead(next(playhead))
        except StopIteration:
            stop.set()

    stop = threading.Event()
    monkeypatch.setattr(actions, "send_follow_request", recording_send)
    sent = actions.live_preview(resolve, ["liveedit"], "snow", seed=3, launch=launch, sleep=sleep,
                                should_stop=stop.is_set)
    windows[0].wait(30)  # the script closed the window's input: the stand-in ends
    # Playhead 105 is 5 frames into a clip whose in-point is 10 timeline frames (20 media frames) in.
    assert sent == [30, 32, 34]
    assert [r["frame"] for r in received] == [30, 32, 34]
    assert received[0] == {"media": str(tmp_path / "p50.mov"), "start": 20, "frames": 40, "instruction": "snow",
                           "seed": 3, "frame": 30}
    (command,) = launched
    assert command[:3] == ["liveedit", "preview", str(tmp_path / "p50.mov")]
    assert command[command.index("--start") + 1] == "20" and command[command.index("--frames") + 1] == "40"
    assert command[command.index("--follow") + 1] == "-" and command[command.index("-p") + 1] == "snow"
    # The window's own parser accepts what the script sends.
    from liveedit.ui.follow import parse_request

    assert parse_request(json.dumps(received[-1]), "stdin")["media"] == str(tmp_path / "p50.mov")


def test_live_preview_ends_when_the_window_closes(tmp_path):
    resolve = FakeResolve()
    timeline = resolve._new_timeline(rate=Fraction(25), start_timecode="10:00:00:00")
    media = resolve._media(str(tmp_path / "a.mov"), MediaFacts(Fraction(25), "10:00:00:00", 500))
    timeline._add_clip(1, media, record_offset=100, duration=50, left_offset=0)
    timeline._set_playhead(105)
    window = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)  # closes at once
    window.wait(30)
    moves = iter(range(106, 140))
    sent = actions.live_preview(resolve, ["liveedit"], "snow", launch=lambda command: window,
                                sleep=lambda _: timeline._set_playhead(next(moves)))
    assert sent == []  # the loop saw the window gone and stopped, without an error


def test_take_placement_keeps_the_original_as_take_one(tmp_path):
    resolve = FakeResolve()
    timeline = resolve._new_timeline()
    original = resolve._media(str(tmp_path / "a.mov"), MediaFacts(Fraction(24), "01:00:00:00", 100))
    rendered = resolve._media(str(tmp_path / "a_edit.mov"), MediaFacts(Fraction(24), "01:00:00:03", 26))
    item = timeline._add_clip(1, original, record_offset=0, duration=20, left_offset=4)
    assert host.add_as_take(item, rendered, 1, 21) == 2
    assert item.GetSelectedTakeIndex() == 2 and item.GetTakeByIndex(1)["mediaPoolItem"] is original
    assert item.GetTakeByIndex(2) == {"mediaPoolItem": rendered, "startFrame": 1, "endFrame": 21}


def test_marker_colour_filter_skips_our_own_job_markers():
    resolve = FakeResolve()
    timeline = resolve._new_timeline()
    timeline.AddMarker(0, "Green", "snowy", "", 1, "")
    timeline.AddMarker(5, "Green", "LiveEdit abc", "snow", 1, "liveedit-job:abc")
    session = host.current_session(resolve)
    (marker,) = host.timeline_markers(session, "green")
    assert (marker.frame, marker.instruction) == (86400, "snowy")
