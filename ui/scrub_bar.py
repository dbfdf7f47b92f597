"""The scrub bar: the region's frames left to right, chunks with a known edit drawn in green,
the playhead in yellow. Click or drag to scrub."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

EDITED = QColor(60, 170, 90)
TRACK = QColor(58, 58, 62)
PLAYHEAD = QColor(255, 210, 0)


class ScrubBar(QWidget):
    scrubbed = Signal(int)  # frame the user moved to

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(False)
        self.first, self.count = 0, 1
        self.frame = 0
        self.edited: list[tuple[int, int]] = []

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(400, 28)

    def set_region(self, first: int, count: int) -> None:
        self.first, self.count = first, max(1, count)
        self.update()

    def set_frame(self, frame: int) -> None:
        self.frame = frame
        self.update()

    def set_edited(self, ranges: list[tuple[int, int]]) -> None:
        self.edited = list(ranges)
        self.update()

    def _track(self) -> QRectF:
        return QRectF(self.rect()).adjusted(4, 6, -4, -6)

    def x_of(self, frame: int) -> float:
        track = self._track()
        return track.x() + track.width() * (frame - self.first) / self.count

    def frame_at(self, x: float) -> int:
        track = self._track()
        offset = int((x - track.x()) / max(track.width(), 1) * self.count)
        return self.first + min(max(offset, 0), self.count - 1)

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        track = self._track()
        painter.fillRect(track, TRACK)
        for first, end in self.edited:
            painter.fillRect(QRectF(self.x_of(first), track.y(), self.x_of(end) - self.x_of(first),
                                    track.height()), EDITED)
        x = (self.x_of(self.frame) + self.x_of(self.frame + 1)) / 2
        painter.setPen(QPen(PLAYHEAD, 3))
        painter.drawLine(int(x), 1, int(x), self.height() - 1)
        painter.end()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.scrubbed.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.scrubbed.emit(self.frame_at(event.position().x()))
