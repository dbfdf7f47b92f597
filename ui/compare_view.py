"""Source and edited pictures side by side, or as a wipe (A/B split with a draggable line),
fit to the widget at the media's display aspect ratio."""

from __future__ import annotations

from enum import Enum
from fractions import Fraction

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

GAP = 6  # pixels between the side-by-side panes
CAPTION_HEIGHT = 22


class ViewMode(Enum):
    SIDE_BY_SIDE = "side by side"
    WIPE = "wipe"


def fit_rect(box: QRectF, aspect: float) -> QRectF:
    """The largest rectangle of width/height `aspect` centred in `box`."""
    if box.width() <= 0 or box.height() <= 0 or aspect <= 0:
        return QRectF(box.topLeft(), box.topLeft())
    width = min(box.width(), box.height() * aspect)
    height = width / aspect
    return QRectF(box.x() + (box.width() - width) / 2, box.y() + (box.height() - height) / 2, width, height)


def to_qimage(image: np.ndarray) -> QImage:
    """uint8 [H, W, 3] RGB → a QImage that owns its pixels (the array may be freed)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class CompareView(QWidget):
    wipe_moved = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.mode = ViewMode.SIDE_BY_SIDE
        self.aspect = Fraction(16, 9)
        self.wipe = 0.5  # wipe line position, fraction of the picture width
        self.source: QImage | None = None
        self.edited: QImage | None = None
        self.source_caption = "SOURCE"
        self.edited_caption = "EDIT"
        self.source_frame: int | None = None  # frame numbers of the pictures shown (tests read them)
        self.edited_frame: int | None = None

    def set_aspect(self, aspect: Fraction) -> None:
        self.aspect = aspect
        self.update()

    def set_mode(self, mode: ViewMode) -> None:
        self.mode = mode
        self.update()

    def set_source(self, frame: int, image: np.ndarray, caption: str) -> None:
        self.source, self.source_frame, self.source_caption = to_qimage(image), frame, caption
        self.update()

    def set_edited(self, frame: int | None, image: np.ndarray | None, caption: str) -> None:
        self.edited = to_qimage(image) if image is not None else None
        self.edited_frame, self.edited_caption = frame, caption
        self.update()

    # -- layout --------------------------------------------------------------------
    def pane_rects(self) -> list[QRectF]:
        """Picture rectangles: two side by side, or one for the wipe."""
        area = QRectF(self.rect()).adjusted(GAP, CAPTION_HEIGHT, -GAP, -GAP)
        if self.mode is ViewMode.WIPE:
            return [fit_rect(area, float(self.aspect))]
        half = (area.width() - GAP) / 2
        left = QRectF(area.x(), area.y(), half, area.height())
        right = QRectF(area.x() + half + GAP, area.y(), half, area.height())
        return [fit_rect(left, float(self.aspect)), fit_rect(right, float(self.aspect))]

    # -- painting ------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.fillRect(self.rect(), QColor(24, 24, 26))
        font = QFont(self.font())
        font.setPointSize(max(font.pointSize(), 10))
        painter.setFont(font)
        if self.mode is ViewMode.WIPE:
            self._paint_wipe(painter, self.pane_rects()[0])
        else:
            left, right = self.pane_rects()
            self._paint_pane(painter, left, self.source, self.source_caption)
            self._paint_pane(painter, right, self.edited, self.edited_caption)
        painter.end()

    def _paint_pane(self, painter: QPainter, rect: QRectF, image: QImage | None, caption: str) -> None:
        painter.fillRect(rect, QColor(0, 0, 0))
        if image is not None:
            painter.drawImage(rect, image)
        else:
            painter.setPen(QColor(150, 150, 150))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "waiting for the sidecar…")
        self._caption(painter, QRectF(rect.x(), rect.y() - CAPTION_HEIGHT, rect.width(), CAPTION_HEIGHT),
                      caption, Qt.AlignmentFlag.AlignLeft)

    def _paint_wipe(self, painter: QPainter, rect: QRectF) -> None:
        painter.fillRect(rect, QColor(0, 0, 0))
        split = rect.x() + rect.width() * self.wipe
        if self.source is not None:
            painter.save()
            painter.setClipRect(QRectF(rect.x(), rect.y(), split - rect.x(), rect.height()))
            painter.drawImage(rect, self.source)
            painter.restore()
        if self.edited is not None:
            painter.save()
            painter.setClipRect(QRectF(split, rect.y(), rect.right() - split, rect.height()))
            painter.drawImage(rect, self.edited)
            painter.restore()
        painter.setPen(QPen(QColor(255, 210, 0), 2))
        painter.drawLine(QPointF(split, rect.top()), QPointF(split, rect.bottom()))
        top = QRectF(rect.x(), rect.y() - CAPTION_HEIGHT, rect.width(), CAPTION_HEIGHT)
        self._caption(painter, top, "◀ " + self.source_caption, Qt.AlignmentFlag.AlignLeft)
        self._caption(painter, top, self.edited_caption + " ▶", Qt.AlignmentFlag.AlignRight)

    @staticmethod
    def _caption(painter: QPainter, rect: QRectF, text: str, align) -> None:
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(rect, align | Qt.AlignmentFlag.AlignVCenter, text)

    # -- the wipe line follows the mouse -----------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._drag(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event.position().x())

    def _drag(self, x: float) -> None:
        if self.mode is not ViewMode.WIPE:
            return
        rect = self.pane_rects()[0]
        if rect.width() > 0:
            self.wipe = min(1.0, max(0.0, (x - rect.x()) / rect.width()))
            self.wipe_moved.emit(self.wipe)
            self.update()
