"""The preview window against a real sidecar running the tiny model (random weights, CPU) on a
temporary Unix socket, with its render queue: opening a clip, seeking, changing the
instruction, rendering, sidecar errors, the keyboard, and a screenshot.

Set LIVEEDIT_UPDATE_SCREENSHOT=1 to also copy the screenshot to docs/images/preview.png."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QImage  # noqa: E402

from liveedit.clients.python import LiveEditClient  # noqa: E402
from liveedit.sidecar.media import read as media_read  # noqa: E402
from liveedit.ui.app import PreviewOptions, build_window  # noqa: E402
from liveedit.ui.controller import RANDOM_WEIGHTS_LABEL  # noqa: E402
from liveedit.ui.launch import SidecarTarget  # noqa: E402
from server_fakes import ServerThread  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
WAIT_MS = 120_000  # a tiny-model chunk takes about a second on two shared cores; leave room
INSTRUCTION = "make the fur snowy white"


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    """A real Sidecar with the tiny model and a render queue, on a short temporary socket."""
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset
    from liveedit.sidecar.jobs import LocalExecutor, RenderQueue
    from liveedit.sidecar.api.server import ServerOptions, Sidecar
    from liveedit.sidecar.preview import PreviewConfig

    root = tmp_path_factory.mktemp("ui")
    run_dir = Path(tempfile.mkdtemp(prefix="le-ui-"))  # socket paths must stay short
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVEEDIT_CONFIG_DIR", str(root / "cfg"))
    mp.setenv("LIVEEDIT_RUNTIME_DIR", str(run_dir))
    socket = run_dir / "sidecar.sock"
    # Fast quality: what `liveedit serve --model tiny` and the sidecar `liveedit preview` starts pick
    # by default (the tiny model has the tiny preview VAE), so the window is tested as users see it.
    server = Sidecar(EditorModels.random(get_preset("tiny"), seed=0),
                     ServerOptions(socket_path=socket, preview=PreviewConfig(quality="fast")))
    server.render_queue = RenderQueue(root / "jobs.sqlite", LocalExecutor(worker=server.worker))
    thread = ServerThread(server)
    yield socket
    thread.stop()
    mp.undo()
    shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture
def clip(media_clips):
    return media_clips["ntsc_film"]  # 30 frames 64x48 at 24000/1001, timecode 01:00:00:00


def open_window(qtbot, socket, clip, **options):
    options.setdefault("instruction", INSTRUCTION)
    window = build_window(PreviewOptions(media=clip, target=SidecarTarget(socket=socket, start_if_missing=False),
                                         **options))
    qtbot.addWidget(window)
    window.show()
    window.view.setFocus()
    return window


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    stride = image.bytesPerLine()
    data = np.frombuffer(image.constBits(), np.uint8, count=stride * image.height())
    return data.reshape(image.height(), stride)[:, :image.width() * 3].reshape(image.height(), image.width(), 3)


def direct_edit(socket, clip, frame, instruction=INSTRUCTION, seed=0) -> np.ndarray:
    """The same frame's edit asked for with the client library, for comparison."""
    with LiveEditClient.connect(socket) as client, client.open_preview(clip, instruction, seed,
                                                                       max_height=540) as preview:
        return next(f.image for f in preview.seek(frame) if f.frame == frame)


def wait_for_edit(qtbot, window, frame):
    qtbot.waitUntil(lambda: window.view.edited_frame == frame and window.controller.frame == frame,
                    timeout=WAIT_MS)


def test_opening_a_clip_shows_its_first_frame_and_its_edit(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip)
    qtbot.waitUntil(lambda: window.view.source_frame == 0, timeout=WAIT_MS)
    first = next(media_read.read_frames(clip, 0, 1))
    np.testing.assert_array_equal(pixels(window.view.source), first)
    assert window.timecode.text() == "01:00:00:00"  # the clip's own start timecode
    assert window.windowTitle().endswith(clip.name)

    wait_for_edit(qtbot, window, 0)
    edited = pixels(window.view.edited)
    np.testing.assert_array_equal(edited, direct_edit(sidecar, clip, 0))
    assert edited.max() > 16 and edited.std() > 1, "the edit pane is black or one flat colour"
    assert window.model.text() == RANDOM_WEIGHTS_LABEL
    # The whole first chunk (9 frames) is drawn on the bar once its last frame has arrived.
    qtbot.waitUntil(lambda: window.scrub.edited == [(0, 9)], timeout=WAIT_MS)
    assert "ms" in window.latency.text()
    assert "no GPU (cpu)" in window.gpu_memory.text()


def test_seeking_shows_the_requested_frames_edit_and_timecode(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip)
    wait_for_edit(qtbot, window, 0)
    scrub = window.scrub
    x = int((scrub.x_of(20) + scrub.x_of(21)) / 2)
    qtbot.mouseClick(scrub, Qt.MouseButton.LeftButton, pos=QPoint(x, scrub.height() // 2))
    assert window.controller.frame == 20
    assert window.timecode.text() == "01:00:00:20"
    wait_for_edit(qtbot, window, 20)
    qtbot.waitUntil(lambda: window.view.source_frame == 20, timeout=WAIT_MS)
    np.testing.assert_array_equal(pixels(window.view.edited), direct_edit(sidecar, clip, 20))
    np.testing.assert_array_equal(pixels(window.view.source), next(media_read.read_frames(clip, 20, 1)))
    assert any(first <= 20 < end for first, end in scrub.edited)

    qtbot.keyClick(window.view, Qt.Key.Key_Left)  # a step lands in a chunk already edited
    assert window.controller.frame == 19 and window.view.edited_frame == 19


def test_changing_the_instruction_restarts_the_preview(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip, frame=3)
    wait_for_edit(qtbot, window, 3)
    before = pixels(window.view.edited).copy()
    generation = window.controller.generation

    window.instruction.selectAll()
    qtbot.keyClicks(window.instruction, "turn the scene into a watercolour painting")
    qtbot.keyClick(window.instruction, Qt.Key.Key_Return)
    assert window.controller.generation == generation + 1
    assert window.controller.instruction == "turn the scene into a watercolour painting"
    assert window.scrub.edited == []  # the old instruction's chunks no longer count
    wait_for_edit(qtbot, window, 3)
    after = pixels(window.view.edited)
    np.testing.assert_array_equal(after, direct_edit(sidecar, clip, 3, "turn the scene into a watercolour painting"))
    assert not np.array_equal(after, before)

    window.seed.setValue(7)  # a new seed is a new preview too, with the window still open
    assert window.controller.generation == generation + 2 and window.controller.seed == 7
    wait_for_edit(qtbot, window, 3)
    np.testing.assert_array_equal(pixels(window.view.edited),
                                  direct_edit(sidecar, clip, 3, "turn the scene into a watercolour painting", 7))


def test_render_this_region_completes_and_the_window_reports_it(qtbot, sidecar, clip, tmp_path):
    window = open_window(qtbot, sidecar, clip, start=4, frames=10, output_dir=tmp_path / "renders",
                         output_format="h264")
    qtbot.waitUntil(lambda: window.view.source_frame == 4, timeout=WAIT_MS)
    qtbot.mouseClick(window.render_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.controller.render is not None and window.controller.render.finished,
                    timeout=WAIT_MS * 2)
    render = window.controller.render
    assert render.state == "done", render.error
    assert render.frames_done == render.frame_count == 10
    output = Path(render.outputs[0])
    assert output.is_file() and output.parent == (tmp_path / "renders").resolve()
    assert media_read.probe(output).frame_count == 10
    assert "Render finished" in window.message.text() and str(output) in window.message.text()
    assert window.render_progress.value() == window.render_progress.maximum() == 10


def test_a_sidecar_error_shows_a_message_and_the_window_stays_usable(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip)
    wait_for_edit(qtbot, window, 0)
    window.instruction.clear()
    qtbot.keyClick(window.instruction, Qt.Key.Key_Return)  # the sidecar refuses an empty instruction
    qtbot.waitUntil(lambda: "instruction is empty" in window.message.text(), timeout=WAIT_MS)
    assert window.message.isVisibleTo(window) and "Traceback" not in window.message.text()

    qtbot.keyClick(window.view, Qt.Key.Key_Right)  # still scrubs the source
    qtbot.waitUntil(lambda: window.view.source_frame == 1, timeout=WAIT_MS)
    qtbot.keyClicks(window.instruction, INSTRUCTION)
    qtbot.keyClick(window.instruction, Qt.Key.Key_Return)
    wait_for_edit(qtbot, window, 1)
    np.testing.assert_array_equal(pixels(window.view.edited), direct_edit(sidecar, clip, 1))


def test_no_sidecar_is_a_message_not_a_crash(qtbot, clip, tmp_path):
    window = open_window(qtbot, tmp_path / "nobody.sock", clip)
    qtbot.waitUntil(lambda: "Cannot reach the sidecar" in window.message.text(), timeout=WAIT_MS)
    assert "liveedit serve" in window.message.text()
    qtbot.waitUntil(lambda: window.view.source_frame == 0, timeout=WAIT_MS)  # the source still plays
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: window.view.source_frame == 1, timeout=WAIT_MS)


def test_keyboard_play_pause_step_and_jkl(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip)
    controller = window.controller
    qtbot.waitUntil(lambda: controller.media is not None, timeout=WAIT_MS)
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    assert controller.frame == 2
    qtbot.keyClick(window.view, Qt.Key.Key_Left)
    assert controller.frame == 1
    for key, speed in ((Qt.Key.Key_L, 1), (Qt.Key.Key_L, 2), (Qt.Key.Key_L, 4), (Qt.Key.Key_K, 0),
                       (Qt.Key.Key_J, -1), (Qt.Key.Key_J, -2), (Qt.Key.Key_L, 1)):
        qtbot.keyClick(window.view, key)
        assert controller.speed == speed
    qtbot.waitUntil(lambda: controller.frame >= 4, timeout=WAIT_MS)  # playing forward
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    assert controller.speed == 0 and window.play.text() == "▶"
    stopped_at = controller.frame
    qtbot.wait(200)
    assert controller.frame == stopped_at
    qtbot.keyClick(window.view, Qt.Key.Key_Space)
    assert controller.speed == 1 and window.play.text() == "❚❚"
    qtbot.waitUntil(lambda: controller.frame == 29 and controller.speed == 0, timeout=WAIT_MS)  # stops at the end
    # Typing in the instruction field types, it does not drive the playhead.
    window.instruction.setFocus()
    qtbot.keyClicks(window.instruction, " lk")
    assert controller.speed == 0 and window.instruction.text().endswith(" lk")


def test_scrubbing_faster_than_the_model_shows_the_newest_result(qtbot, sidecar, clip):
    window = open_window(qtbot, sidecar, clip)
    controller = window.controller
    qtbot.waitUntil(lambda: controller.session is not None, timeout=WAIT_MS)
    shown = []
    controller.edited_changed.connect(lambda frame, image: shown.append(frame))
    for frame in (27, 3, 15, 26, 12, 22):  # far faster than a chunk edits
        controller.seek(frame)
    wait_for_edit(qtbot, window, 22)
    qtbot.wait(300)  # nothing older trickles in afterwards
    assert window.view.edited_frame == 22 and shown[-1] == 22
    np.testing.assert_array_equal(pixels(window.view.edited), direct_edit(sidecar, clip, 22))


def test_wipe_view_and_screenshot(qtbot, sidecar, clip, tmp_path):
    from liveedit.ui.compare_view import ViewMode

    window = open_window(qtbot, sidecar, clip, frame=12, seed=11)  # a seed no other test uses: a fresh edit
    window.resize(1180, 640)
    wait_for_edit(qtbot, window, 12)
    qtbot.waitUntil(lambda: window.view.source_frame == 12, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "fps" in window.edit_fps.text() and "—" not in window.edit_fps.text(), timeout=WAIT_MS)
    left, right = window.view.pane_rects()
    assert abs(left.width() / left.height() - 64 / 48) < 0.01  # square pixels: 4:3 stays 4:3
    view = pixels(window.view.grab().toImage())
    for rect in (left, right):  # both panes filled with a picture, not the empty background
        inner = view[int(rect.top()) + 4:int(rect.bottom()) - 4, int(rect.left()) + 4:int(rect.right()) - 4]
        assert inner.std() > 10
    shot = tmp_path / "preview.png"
    assert window.grab().save(str(shot))
    if os.environ.get("LIVEEDIT_UPDATE_SCREENSHOT"):
        (REPO / "docs" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, REPO / "docs" / "images" / "preview.png")

    window.mode.setCurrentIndex(list(ViewMode).index(ViewMode.WIPE))
    (rect,) = window.view.pane_rects()
    qtbot.mouseClick(window.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(rect.left() + rect.width() * 0.25), int(rect.center().y())))
    assert window.view.wipe == pytest.approx(0.25, abs=0.01)
    wiped = pixels(window.view.grab().toImage())
    y = int(rect.center().y())
    source_x, edit_x = int(rect.left() + rect.width() * 0.1), int(rect.left() + rect.width() * 0.6)
    # Left of the line is the source picture, right of it the edit, at the same scale.
    scale = rect.width() / 64
    src = pixels(window.view.source)[int((y - rect.top()) / scale), int((source_x - rect.left()) / scale)]
    edt = pixels(window.view.edited)[int((y - rect.top()) / scale), int((edit_x - rect.left()) / scale)]
    assert np.abs(wiped[y, source_x].astype(int) - src).max() <= 40
    assert np.abs(wiped[y, edit_x].astype(int) - edt).max() <= 40


def test_a_client_steers_the_window_through_follow(qtbot, sidecar, clip, tmp_path):
    import json

    request = tmp_path / "follow.json"
    request.write_text(json.dumps({"media": str(clip), "start": 2, "frames": 20, "frame": 7, "instruction": "paint it"}))
    window = build_window(PreviewOptions(follow=str(request),
                                         target=SidecarTarget(socket=sidecar, start_if_missing=False)))
    qtbot.addWidget(window)
    window.show()
    wait_for_edit(qtbot, window, 7)
    assert window.controller.region == (2, 20) and window.instruction.text() == "paint it"
    assert window.scrub.first == 2 and window.scrub.count == 20
    request.write_text(json.dumps({"frame": 15, "seed": 3}))  # same clip: only the seed and playhead move
    qtbot.waitUntil(lambda: window.controller.seed == 3, timeout=WAIT_MS)
    wait_for_edit(qtbot, window, 15)
    assert window.seed.value() == 3 and window.controller.region == (2, 20)


def test_the_window_starts_a_sidecar_when_none_runs_and_says_so(qtbot, clip, monkeypatch):
    run_dir = Path(tempfile.mkdtemp(prefix="le-ui-"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(run_dir))
    target = SidecarTarget(serve_args=("--model", "tiny", "--device", "cpu", "--no-jobs"), connect_timeout=0.3)
    window = build_window(PreviewOptions(media=clip, instruction=INSTRUCTION, target=target))
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: "Started a background sidecar" in window.statusBar().currentMessage(),
                        timeout=WAIT_MS)
        wait_for_edit(qtbot, window, 0)
        assert window.model.text() == RANDOM_WEIGHTS_LABEL
    finally:
        process = window.controller.link.started_process
        if process is not None:
            process.terminate()
            process.wait(60)
        shutil.rmtree(run_dir, ignore_errors=True)
    assert process is not None
