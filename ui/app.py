"""Building and running the preview window: `liveedit preview [MEDIA]` lands here."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from liveedit.ui.launch import SidecarTarget


@dataclass(frozen=True)
class PreviewOptions:
    media: Path | None = None
    start: int = 0
    frames: int = 0  # 0 = to the end of the media
    instruction: str | None = None
    seed: int = 0
    frame: int | None = None
    follow: str | None = None
    max_height: int = 540
    output_dir: Path | None = None
    output_format: str = "prores"
    target: SidecarTarget = field(default_factory=SidecarTarget)


def build_window(options: PreviewOptions):
    """Controller + window, connecting and (when a clip is given) opening it. A QApplication
    must exist. Returns the window; `window.controller` drives it."""
    from liveedit.ui.controller import PreviewController
    from liveedit.ui.follow import Follower
    from liveedit.ui.sidecar_link import SidecarLink
    from liveedit.ui.source_frames import SourceFrames
    from liveedit.ui.window import PreviewWindow

    controller = PreviewController(SidecarLink(options.target), SourceFrames(), max_height=options.max_height,
                                   output_dir=options.output_dir, output_format=options.output_format)
    window = PreviewWindow(controller)
    controller.setParent(window)
    controller.start()
    if options.media is not None:
        controller.open_media(options.media, start=options.start, frames=options.frames,
                              instruction=options.instruction, seed=options.seed, frame=options.frame)
    elif options.instruction:
        controller.instruction = options.instruction
        window.instruction.setText(options.instruction)
    if options.follow:
        follower = Follower(options.follow, window)
        follower.requested.connect(controller.apply)
        follower.error.connect(window.show_error)  # a bound slot: delivered on the GUI thread
        controller.destroyed.connect(follower.stop)
        window.follower = follower
        follower.start()
    return window


def run(options: PreviewOptions) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("LiveEdit preview")
    window = build_window(options)
    window.show()
    window.view.setFocus()
    return app.exec()
