"""Source frames for the left pane, decoded off the GUI thread.

One background thread probes the media and decodes blocks of frames around the asked-for
frame (one keyframe seek serves the whole block); only the newest request is worked on, older
ones are forgotten. Decoded frames stay in a small LRU cache, so stepping and playing back
over frames already seen never touches the decoder.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

import numpy as np
from PySide6.QtCore import QObject, Signal

from liveedit.sidecar.media import read as media_read
from liveedit.ui.sidecar_link import readable

BLOCK_FRAMES = 24
CACHE_BYTES = 256 * 2**20


class FrameCache:
    """LRU of frames by number, bounded in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, frame: int) -> np.ndarray | None:
        image = self._frames.get(frame)
        if image is not None:
            self._frames.move_to_end(frame)
        return image

    def put(self, frame: int, image: np.ndarray) -> None:
        if frame in self._frames:
            self.bytes -= self._frames.pop(frame).nbytes
        self._frames[frame] = image
        self.bytes += image.nbytes
        while self.bytes > self.max_bytes and len(self._frames) > 1:
            self.bytes -= self._frames.popitem(last=False)[1].nbytes

    def __contains__(self, frame: int) -> bool:
        return frame in self._frames

    def frames(self) -> list[int]:
        return sorted(self._frames)

    def clear(self) -> None:
        self._frames.clear()
        self.bytes = 0


@dataclass(frozen=True)
class OpenedMedia:
    info: media_read.MediaInfo
    pixel_aspect: Fraction  # width of a stored pixel over its height (1 = square)

    @property
    def display_aspect(self) -> Fraction:
        """Width over height of the upright picture as it should be seen."""
        aspect = Fraction(self.info.width, self.info.height) * self.pixel_aspect
        return 1 / aspect if self.info.rotation in (90, 270) else aspect


def pixel_aspect(path: Path) -> Fraction:
    """The stream's sample aspect ratio; square pixels when the file says nothing."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar > 0 else Fraction(1)


class SourceFrames(QObject):
    opened = Signal(object)  # OpenedMedia
    frame_ready = Signal(int, object)  # frame number, uint8 [H, W, 3] (upright)
    error = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.info: media_read.MediaInfo | None = None
        self.cache = FrameCache()
        self._wake = threading.Condition()
        self._path: Path | None = None  # media to open next
        self._wanted: int | None = None  # newest frame asked for
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="liveedit-ui-decode", daemon=True)
        self._thread.start()

    def open(self, path: Path) -> None:
        with self._wake:
            self._path, self._wanted = Path(path), None
            self._wake.notify()

    def get(self, frame: int) -> np.ndarray | None:
        """The frame if already decoded (GUI thread; never blocks)."""
        with self._wake:
            return self.cache.get(frame)

    def request(self, frame: int) -> None:
        """Decode `frame` (and its block); `frame_ready` follows. Replaces older requests."""
        with self._wake:
            self._wanted = frame
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stop and self._path is None and self._wanted is None:
                    self._wake.wait()
                if self._stop:
                    return
                path, self._path = self._path, None
                wanted, self._wanted = self._wanted, None
            try:
                if path is not None:
                    self._open(path)
                elif wanted is not None and self.info is not None:
                    self._decode_block(wanted)
            except Exception as exc:  # noqa: BLE001 - shown in the window
                self.error.emit(readable(exc))

    def _open(self, path: Path) -> None:
        info = media_read.probe(path)
        media = OpenedMedia(info, pixel_aspect(path))
        with self._wake:
            self.cache.clear()
            self.info = info
        self.opened.emit(media)

    def _decode_block(self, wanted: int) -> None:
        info = self.info
        cached = self.get(wanted)
        if cached is not None:
            self.frame_ready.emit(wanted, cached)
            return
        first = max(0, min(wanted - wanted % BLOCK_FRAMES, info.frame_count - 1))
        count = min(BLOCK_FRAMES, info.frame_count - first)
        for number, image in enumerate(media_read.read_frames(info.path, first, count, apply_rotation=True),
                                       start=first):
            with self._wake:
                self.cache.put(number, image)
                newer = self._wanted is not None or self._path is not None
            if number == wanted:
                self.frame_ready.emit(number, image)
            if newer and number >= wanted:
                return  # the rest of the block can wait: someone wants another frame now
