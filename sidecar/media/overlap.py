"""Reading and writing media beside the edit: a render decodes frame n+1 and encodes frame
n-1 while the GPU edits frame n, instead of one after another on one thread.

Both wrap the serial objects of media/read.py and media/write.py and keep their behaviour:
the same frames in the same order, the same errors at the same frame (raised on the
caller's thread), the writer's temporary name until `close`, `abort` leaving nothing. PyAV
releases the GIL while it decodes and encodes, so the threads overlap with the editor's
CUDA work as well as with each other.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Iterator

_END = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class PrefetchedFrames:
    """Iterates `frames` (e.g. media.read_frames) up to `depth` frames ahead on its own
    thread. An error of the source is raised by the `next()` that would have returned the
    frame it failed on. Call `close()` when stopping early: the thread then stops too."""

    def __init__(self, frames: Iterator, depth: int = 4, name: str = "liveedit-read"):
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if not self._put(frame):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the caller's thread
            self._put(_Failed(exc))
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()  # a generator's file is closed on this thread, where it runs

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "PrefetchedFrames":
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failed):
            self._done = True
            raise item.error
        return item

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join()


class BackgroundWriter:
    """A segment writer (media.SegmentWriter) fed from its own thread, at most `depth` frames
    waiting (a UHD 16-bit frame is 50 MB). The frames must not change after `write` (the editor hands out copies). An
    encoder error is raised by the next `write` or by `close`; the segment is then aborted,
    as the writer does itself."""

    def __init__(self, writer, depth: int = 4):
        self.writer = writer
        self.path: Path = writer.path
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"liveedit-write-{Path(writer.path).name}",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is _END:
                return
            if self._error is not None:
                continue  # failed: drain what waits, so that `write` never blocks on a full queue
            try:
                self.writer.write(frame)
            except BaseException as exc:  # raised on the caller's thread
                self._error = exc

    def write(self, frame) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def _finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def close(self) -> Path:
        """Waits for every frame to be encoded, then finishes the file and moves it into place."""
        self._finish()
        if self._error is not None:
            raise self._error
        return self.writer.close()

    def abort(self) -> None:
        """Drops the frames still waiting and everything written; nothing under the final name."""
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass
        self._finish()
        self.writer.abort()
