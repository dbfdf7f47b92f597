"""The preview window's logic without a model: shuttle keys, chunk arithmetic, display aspect,
latest-request-wins in the sidecar link (with a client double whose seeks we hold open),
--follow requests, and starting a background sidecar when none runs."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from fractions import Fraction  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QObject, QRectF, QThread, Slot  # noqa: E402

from liveedit.clients.python import PreviewFrame, ServerNotRunningError  # noqa: E402
from liveedit.sidecar.media import read as media_read  # noqa: E402
from liveedit.sidecar.preview import PreviewConfig, chunk_bounds  # noqa: E402
from liveedit.ui.compare_view import fit_rect  # noqa: E402
from liveedit.ui.controller import chunk_of, merge_ranges, shuttle  # noqa: E402
from liveedit.ui.follow import FollowError, Follower, parse_request  # noqa: E402
from liveedit.ui.launch import SidecarStartError, SidecarTarget, connect_or_start  # noqa: E402
from liveedit.ui.sidecar_link import SessionRequest, SidecarLink  # noqa: E402
from liveedit.ui.source_frames import OpenedMedia, pixel_aspect  # noqa: E402
from media_fixtures import FFMPEG  # noqa: E402


@pytest.mark.parametrize("speed, key, after", [
    (0, "l", 1), (1, "l", 2), (2, "l", 4), (4, "l", 8), (8, "l", 8),
    (0, "j", -1), (-1, "j", -2), (-8, "j", -8),
    (4, "j", -1), (-4, "l", 1),  # against the direction of play: 1x the other way
    (4, "k", 0), (-2, "K", 0), (0, "k", 0)])
def test_jkl_shuttle_as_editors_expect(speed, key, after):
    assert shuttle(speed, key) == after


def test_edited_frames_merge_into_runs():
    assert merge_ranges([]) == []
    assert merge_ranges([0, 1, 2, 5, 6, 9]) == [(0, 3), (5, 7), (9, 10)]


def test_chunk_of_matches_the_sidecars_chunking():
    seg = PreviewConfig().segment_frames
    for region_first in (0, 7):
        for frame in range(region_first, region_first + 3 * seg):
            segment_start = region_first + (frame - region_first) // seg * seg
            assert chunk_of(frame, region_first, seg) == chunk_bounds(segment_start, seg, frame - segment_start)


def test_pictures_fit_at_their_aspect_ratio():
    box = QRectF(0, 0, 400, 100)
    wide = fit_rect(box, 16 / 9)
    assert (wide.width(), wide.height()) == pytest.approx((177.78, 100), abs=0.01)
    assert wide.center().x() == pytest.approx(200)  # centred
    tall = fit_rect(QRectF(10, 10, 100, 400), 4 / 3)
    assert (tall.width(), tall.height()) == pytest.approx((100, 75))
    assert fit_rect(QRectF(0, 0, 0, 50), 1.0).width() == 0


def test_display_aspect_follows_the_media(tmp_path, media_clips):
    square = media_clips["ntsc_film"]  # 64x48, no sample aspect ratio: square pixels
    info = media_read.probe(square)
    assert pixel_aspect(square) == 1
    assert OpenedMedia(info, Fraction(1)).display_aspect == Fraction(4, 3)
    anamorphic = tmp_path / "anamorphic.mp4"  # 64x48 stored, pixels 4:3 wide → 16:9 shown
    subprocess.run([FFMPEG, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
                    "-frames:v", "2", "-vf", "setsar=4/3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(anamorphic)], check=True)
    assert pixel_aspect(anamorphic) == Fraction(4, 3)
    assert OpenedMedia(media_read.probe(anamorphic), Fraction(4, 3)).display_aspect == Fraction(16, 9)
    portrait = dataclasses.replace(info, rotation=90)  # phone clip: shown upright
    assert OpenedMedia(portrait, Fraction(1)).display_aspect == Fraction(3, 4)


# -- latest request wins -------------------------------------------------------------------


class HeldHandle:
    """A preview session whose seeks wait until the test lets them answer."""

    def __init__(self, session_id: str):
        self.session = SimpleNamespace(session_id=session_id, random_weights=True)
        self.started: list[int] = []
        self.gates: dict[int, threading.Event] = {}
        self.closed = False

    def seek(self, frame: int):
        gate = self.gates.setdefault(frame, threading.Event())
        self.started.append(frame)
        assert gate.wait(10), f"the test never released frame {frame}"
        for f in (frame, frame + 1):
            yield PreviewFrame(f, np.full((2, 2, 3), f, np.uint8), False, frame)

    def close(self):
        self.closed = True


class HeldClient:
    def __init__(self):
        self.handles: list[HeldHandle] = []

    def open_preview(self, media, instruction, seed, **kw):
        self.handles.append(HeldHandle(f"s{len(self.handles)}"))
        return self.handles[-1]

    def close(self):
        pass


class Recorder(QObject):
    """Receives the link's signals like the controller does, noting the thread they run on."""

    def __init__(self):
        super().__init__()
        self.frames, self.done, self.opened, self.off_gui_thread = [], [], [], 0

    def _note(self):
        self.off_gui_thread += QThread.currentThread() is not self.thread()

    @Slot(object)
    def frame(self, out):
        self._note()
        self.frames.append((out.generation, out.request_id, out.frame))

    @Slot(object)
    def seek_done(self, done):
        self._note()
        self.done.append((done.generation, done.request_id, done.seek_frame))

    @Slot(int, object)
    def session(self, generation, session):
        self._note()
        self.opened.append(generation)


@pytest.fixture
def held(qtbot):
    client = HeldClient()
    link = SidecarLink(SidecarTarget())
    link.use_client(client)
    recorder = Recorder()
    link.edited_frame.connect(recorder.frame)
    link.seek_done.connect(recorder.seek_done)
    link.session_opened.connect(recorder.session)
    yield link, client, recorder
    for handle in client.handles:
        for gate in handle.gates.values():
            gate.set()
    link.close()


def request(instruction="snow"):
    return SessionRequest(Path("/clip.mov"), instruction, 0, 0, 0, 540)


def test_seeks_faster_than_answers_deliver_only_the_newest(qtbot, held):
    link, client, recorder = held
    generation = link.open_session(request())
    qtbot.waitUntil(lambda: recorder.opened == [generation])
    handle = client.handles[0]
    ids = [link.seek(10)]
    qtbot.waitUntil(lambda: handle.started == [10])
    ids.append(link.seek(20))  # runs beside the first, so the sidecar can supersede that one
    qtbot.waitUntil(lambda: handle.started == [10, 20])
    ids += [link.seek(30), link.seek(40)]  # two in flight: these wait, the newer replacing the older
    qtbot.wait(100)
    assert sorted(handle.started) == [10, 20]  # 30 was replaced by 40 before it ever ran
    handle.gates[10].set()
    handle.gates[20].set()
    qtbot.waitUntil(lambda: 40 in handle.started)
    assert 30 not in handle.started
    handle.gates[40].set()
    qtbot.waitUntil(lambda: bool(recorder.done))
    assert recorder.frames == [(generation, ids[-1], 40), (generation, ids[-1], 41)]
    assert recorder.done == [(generation, ids[-1], 40)]
    assert recorder.off_gui_thread == 0  # results arrive on the GUI thread


def test_a_new_instruction_drops_the_old_sessions_answers(qtbot, held):
    link, client, recorder = held
    first = link.open_session(request("snow"))
    qtbot.waitUntil(lambda: recorder.opened == [first])
    link.seek(5)
    qtbot.waitUntil(lambda: client.handles[0].started == [5])
    second = link.open_session(request("rain"))
    qtbot.waitUntil(lambda: recorder.opened == [first, second])
    assert client.handles[0].closed  # the old session is closed on the sidecar
    client.handles[0].gates[5].set()
    request_id = link.seek(7)
    qtbot.waitUntil(lambda: client.handles[1].started == [7])
    client.handles[1].gates[7].set()
    qtbot.waitUntil(lambda: bool(recorder.done))
    assert recorder.frames == [(second, request_id, 7), (second, request_id, 8)]


# -- --follow -------------------------------------------------------------------------------


def test_follow_requests_are_checked():
    assert parse_request('{"media": "/a.mov", "frame": 3}', "f") == {"media": "/a.mov", "frame": 3}
    for text, words in (("[1]", "JSON object"), ("{", "not JSON"), ('{"frame": "3"}', "'frame' must be a int"),
                        ('{"speed": 2}', "unknown keys speed"), ('{"seed": true}', "'seed' must be a int")):
        with pytest.raises(FollowError, match=words):
            parse_request(text, "f")


def test_follower_emits_each_new_request_once(qtbot, tmp_path):
    path = tmp_path / "follow.json"
    follower = Follower(str(path))
    got, errors = [], []
    follower.requested.connect(got.append)
    follower.error.connect(errors.append)
    follower.poll()  # no file yet: nothing, no error
    path.write_text('{"media": "/a.mov", "frame": 3}')
    follower.poll()
    follower.poll()
    path.write_text('{"media": "/a.mov", "frame": 4}')
    follower.poll()
    path.write_text('{"frame": "x"}')
    follower.poll()
    follower.poll()
    assert got == [{"media": "/a.mov", "frame": 3}, {"media": "/a.mov", "frame": 4}]
    assert len(errors) == 1 and "'frame' must be a int" in errors[0]


def test_a_stream_follower_applies_each_line_as_it_arrives(qtbot, monkeypatch):
    """`--follow -`: no polling. With the poll interval set to an hour, each request still
    arrives by itself, one line at a time, before the next is written."""
    from liveedit.ui import follow

    monkeypatch.setattr(follow, "POLL_SECONDS", 3600.0)
    read_fd, write_fd = os.pipe()
    writer = os.fdopen(write_fd, "wb", buffering=0)
    follower = Follower("-", stream=os.fdopen(read_fd, "rb"))
    got, errors, ended = [], [], []
    follower.requested.connect(got.append)
    follower.error.connect(errors.append)
    follower.ended.connect(lambda: ended.append(True))
    follower.start()
    for frame in (3, 4, 5):
        writer.write(b'{"media": "/a.mov", "frame": %d}\n' % frame)
        qtbot.waitUntil(lambda: len(got) == frame - 2, timeout=10000)  # an upper bound on a hang only
    writer.write(b'{"frame": "x"}\n\n{"frame": 6}\n')
    qtbot.waitUntil(lambda: len(got) == 4, timeout=10000)
    writer.close()  # the client stopped following
    qtbot.waitUntil(lambda: bool(ended), timeout=10000)
    assert got == [{"media": "/a.mov", "frame": 3}, {"media": "/a.mov", "frame": 4}, {"media": "/a.mov", "frame": 5},
                   {"frame": 6}]
    assert len(errors) == 1 and "'frame' must be a int" in errors[0] and "standard input" in errors[0]


# -- starting a sidecar ------------------------------------------------------------------------


@pytest.fixture
def short_dirs(tmp_path, monkeypatch):
    run_dir = Path(tempfile.mkdtemp(prefix="le-ui-"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(run_dir))
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    yield run_dir


def test_no_sidecar_and_no_start_says_how_to_start_one(short_dirs):
    with pytest.raises(ServerNotRunningError, match="liveedit serve"):
        connect_or_start(SidecarTarget(start_if_missing=False, connect_timeout=0.3))


@pytest.mark.slow
def test_a_background_sidecar_is_started_when_none_runs(short_dirs):
    said = []
    target = SidecarTarget(serve_args=("--model", "tiny", "--device", "cpu", "--no-jobs"),
                           connect_timeout=0.3, start_timeout=120)
    connection = connect_or_start(target, said.append)
    try:
        assert connection.started is not None and connection.started.poll() is None
        assert any("No sidecar was running: started one in the background" in s for s in said)
        assert f"pid {connection.started.pid}" in said[-1]
        info = connection.client.info()
        assert info.model_preset == "tiny" and info.random_weights
        connection.client.close()
        again = connect_or_start(target, said.append)  # now one runs: connect, start nothing
        assert again.started is None
        again.client.close()
    finally:
        connection.started.send_signal(signal.SIGTERM)
        assert connection.started.wait(60) == 0


def test_a_sidecar_that_fails_to_start_names_its_log(short_dirs):
    target = SidecarTarget(serve_args=("--model", "no-such-model"), connect_timeout=0.3, start_timeout=60)
    with pytest.raises(SidecarStartError, match="sidecar-autostart.log") as err:
        connect_or_start(target)
    assert "exited with code" in str(err.value)


def test_preview_command_refuses_bad_input_without_a_traceback(tmp_path, capsys):
    from liveedit.cli import main

    assert main(["preview", str(tmp_path / "missing.mov")]) == 1
    assert "missing.mov does not exist" in capsys.readouterr().err
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"x")
    assert main(["preview", str(clip), "--start", "-3"]) == 1
    assert "--start -3 is negative" in capsys.readouterr().err
