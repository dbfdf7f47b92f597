"""The preview window: widgets around a PreviewController. Nothing here talks to the sidecar
or decodes video; it draws what the controller signals and forwards what the user does."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QMainWindow, QProgressBar,
                               QPushButton, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from liveedit.ui.compare_view import CompareView, ViewMode
from liveedit.ui.controller import PreviewController, RenderStatus, Statistics, frame_rate_text
from liveedit.ui.scrub_bar import ScrubBar
from liveedit.ui.source_frames import OpenedMedia

INFO_MESSAGE_MS = 10000
ERROR_STYLE = "background:#7a1f1f; color:white; padding:4px 8px; border-radius:3px"
INFO_STYLE = "background:#1f4a7a; color:white; padding:4px 8px; border-radius:3px"
RANDOM_STYLE = "background:#b00020; color:white; font-weight:bold; padding:2px 6px"


class PreviewWindow(QMainWindow):
    def __init__(self, controller: PreviewController):
        super().__init__()
        self.controller = controller
        self.setWindowTitle("LiveEdit preview")
        self.resize(1180, 640)

        # instruction, seed, view mode
        self.instruction = QLineEdit(controller.instruction)
        self.instruction.setPlaceholderText("What should the edit do? (Enter starts a new preview)")
        self.instruction.returnPressed.connect(self._instruction_entered)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setKeyboardTracking(False)  # a new preview per finished number, not per digit
        self.seed.setValue(controller.seed)
        self.seed.valueChanged.connect(controller.set_seed)
        self.mode = QComboBox()
        self.mode.addItems([m.value for m in ViewMode])
        self.mode.currentIndexChanged.connect(lambda i: self.view.set_mode(list(ViewMode)[i]))
        top = QHBoxLayout()
        top.addWidget(QLabel("Instruction"))
        top.addWidget(self.instruction, 1)
        top.addWidget(QLabel("Seed"))
        top.addWidget(self.seed)
        top.addWidget(QLabel("View"))
        top.addWidget(self.mode)

        self.view = CompareView()
        self.scrub = ScrubBar()
        self.scrub.scrubbed.connect(controller.seek)

        # transport, timecode, render
        self.step_back = QToolButton(text="◀|")
        self.step_back.setToolTip("Step back one frame (Left arrow)")
        self.step_back.clicked.connect(lambda: controller.step(-1))
        self.play = QToolButton(text="▶")
        self.play.setToolTip("Play / pause (Space); J K L shuttle")
        self.play.clicked.connect(controller.toggle_play)
        self.step_forward = QToolButton(text="|▶")
        self.step_forward.setToolTip("Step forward one frame (Right arrow)")
        self.step_forward.clicked.connect(lambda: controller.step(1))
        self.timecode = QLabel("--:--:--:--")
        self.timecode.setStyleSheet("font-family: monospace; font-size: 15px; font-weight: bold")
        self.position = QLabel("")
        self.render_button = QPushButton("Render this region")
        self.render_button.clicked.connect(controller.render_region)
        self.render_progress = QProgressBar()
        self.render_progress.setFormat("no render yet")
        self.render_progress.setValue(0)
        self.render_progress.setMinimumWidth(220)
        transport = QHBoxLayout()
        for w in (self.step_back, self.play, self.step_forward):
            transport.addWidget(w)
        transport.addSpacing(8)
        transport.addWidget(self.timecode)
        transport.addWidget(self.position, 1)
        transport.addWidget(self.render_button)
        transport.addWidget(self.render_progress)

        # statistics and the model in use
        self.edit_fps = QLabel("Edit: — fps")
        self.latency = QLabel("Latency: —")
        self.gpu_memory = QLabel("GPU memory: —")
        self.model = QLabel("Model: —")
        stats = QHBoxLayout()
        for w in (self.edit_fps, self.latency, self.gpu_memory):
            stats.addWidget(w)
            stats.addSpacing(16)
        stats.addWidget(self.model, 1)

        # non-modal messages: errors stay until dismissed or replaced, notes fade
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.dismiss = QToolButton(text="✕")
        self.dismiss.clicked.connect(self.clear_message)
        banner = QHBoxLayout()
        banner.addWidget(self.message, 1)
        banner.addWidget(self.dismiss)
        self._message_timer = QTimer(self, singleShot=True, interval=INFO_MESSAGE_MS)
        self._message_timer.timeout.connect(self.clear_message)

        layout = QVBoxLayout()
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.scrub)
        layout.addLayout(transport)
        layout.addLayout(stats)
        layout.addLayout(banner)
        central = QWidget()
        central.setLayout(layout)
        self.setCentralWidget(central)
        self.clear_message()

        self._shortcuts()
        c = controller
        c.media_opened.connect(self._on_media)
        c.region_changed.connect(self.scrub.set_region)
        c.position_changed.connect(self._on_position)
        c.source_changed.connect(self._on_source)
        c.edited_changed.connect(self._on_edited)
        c.edited_ranges_changed.connect(self.scrub.set_edited)
        c.speed_changed.connect(self._on_speed)
        c.stats_changed.connect(self._on_stats)
        c.session_changed.connect(self._on_session)
        c.render_changed.connect(self._on_render)
        c.message.connect(self.show_message)
        c.status.connect(self.show_status)

    def _shortcuts(self) -> None:
        c = self.controller
        keys = {"Space": c.toggle_play, "Left": lambda: c.step(-1), "Right": lambda: c.step(1),
                "J": lambda: c.shuttle("j"), "K": lambda: c.shuttle("k"), "L": lambda: c.shuttle("l"),
                "Home": lambda: c.seek(c.region[0]), "End": lambda: c.seek(sum(c.region) - 1)}
        for key, action in keys.items():
            # Window-wide, yet typing in the instruction field wins: line edits claim these keys.
            QShortcut(QKeySequence(key), self, action)
        QShortcut(QKeySequence("Escape"), self.instruction, self.view.setFocus)

    # -- user input --------------------------------------------------------------------
    def _instruction_entered(self) -> None:
        self.controller.set_instruction(self.instruction.text())
        self.view.setFocus()  # back to the keys that drive the playhead

    # -- what the controller says ------------------------------------------------------
    def _on_media(self, media: OpenedMedia) -> None:
        info = media.info
        self.setWindowTitle(f"LiveEdit preview — {info.path.name}")
        self.view.set_aspect(media.display_aspect)
        self.view.set_edited(None, None, "EDIT")
        self._media_text = f"{info.width}×{info.height}, {frame_rate_text(info.frame_rate)}"

    def _on_position(self, frame: int, timecode: str) -> None:
        first, count = self.controller.region
        self.timecode.setText(timecode)
        self.position.setText(f"frame {frame}  (region {first}–{first + count - 1}, "
                              f"{getattr(self, '_media_text', '')})")
        self.scrub.set_frame(frame)
        shown = self.view.edited_frame
        if shown is not None and shown != frame and self.view.edited is not None:
            # Keep the newest edit on screen, but say it is not this frame's yet.
            self.view.edited_caption = f"EDIT  {self.controller.timecode(shown)}  (catching up)"
            self.view.update()

    def _on_source(self, frame: int, image) -> None:
        self.view.set_source(frame, image, f"SOURCE  {self.controller.timecode(frame)}")

    def _on_edited(self, frame: int, image) -> None:
        caption = f"EDIT  {self.controller.timecode(frame)}"
        if frame != self.controller.frame:
            caption += "  (catching up)"
        self.view.set_edited(frame, image, caption)

    def _on_speed(self, speed: int) -> None:
        self.play.setText("❚❚" if speed else "▶")
        if speed not in (0, 1):
            self.statusBar().showMessage(f"Shuttle {speed:+d}×", 2000)

    def _on_stats(self, s: Statistics) -> None:
        self.edit_fps.setText(f"Edit: {s.edit_fps:.1f} fps" if s.edit_fps else "Edit: — fps")
        if s.latency_seconds is not None:
            self.latency.setText(f"Latency: {s.latency_seconds * 1000:.0f} ms" + (" (cached)" if s.cached else ""))
        self.gpu_memory.setText(f"GPU memory: {s.gpu_memory}")
        self.model.setText(s.model if s.random_weights else f"Model: {s.model}")
        self.model.setStyleSheet(RANDOM_STYLE if s.random_weights else "")

    def _on_session(self, instruction: str, seed: int) -> None:
        if self.instruction.text() != instruction:
            self.instruction.setText(instruction)
        if self.seed.value() != seed and seed <= self.seed.maximum():
            self.seed.blockSignals(True)
            self.seed.setValue(seed)
            self.seed.blockSignals(False)
        self.view.set_edited(None, None, "EDIT  (new preview…)")

    def _on_render(self, r: RenderStatus) -> None:
        self.render_progress.setMaximum(max(r.frame_count, 1))
        self.render_progress.setValue(r.frames_done)
        self.render_progress.setFormat(f"render {r.state}: {r.frames_done}/{r.frame_count} frames")

    # -- messages ----------------------------------------------------------------------
    def show_message(self, level: str, text: str) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if level == "error" else INFO_STYLE)
        self.message.show()
        self.dismiss.show()
        self.statusBar().showMessage(text.splitlines()[0][:200], INFO_MESSAGE_MS)
        if level == "error":
            self._message_timer.stop()
        else:
            self._message_timer.start()

    def show_error(self, text: str) -> None:
        self.show_message("error", text)

    def show_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    def clear_message(self) -> None:
        self.message.clear()
        self.message.hide()
        self.dismiss.hide()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.controller.close()
        super().closeEvent(event)
