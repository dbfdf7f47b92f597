"""`--follow`: a client (an NLE panel, a script) steers an open preview window with small JSON
requests:

    {"media": "/abs/clip.mov", "start": 100, "frames": 48, "instruction": "...", "seed": 0, "frame": 110}

Every key is optional except `media` for the first request. Two ways to send them:

- `--follow -`: the client starts the window and writes one request per line to its standard
  input (what Resolve's "Live preview" does). A reader thread blocks on the pipe and hands each
  line over the moment it arrives: no polling, so the window follows the client within the
  time the line takes through the pipe. The end of the input ends the following.
- `--follow FILE-or-URL`: the client rewrites a file (or serves a local URL) and the window
  polls it once a second, off the GUI thread, applying a request whenever its content changes.
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.request
from pathlib import Path
from typing import BinaryIO

from PySide6.QtCore import QObject, Signal

POLL_SECONDS = 1.0
STDIN = "-"
MAX_LINE_BYTES = 256 * 1024
KEYS = {"media": str, "start": int, "frames": int, "instruction": str, "seed": int, "frame": int}


class FollowError(ValueError):
    pass


def parse_request(text: str, where: str) -> dict:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FollowError(f"{where} is not JSON ({exc}); write an object like "
                          '{"media": "/abs/clip.mov", "instruction": "..."}') from None
    if not isinstance(data, dict):
        raise FollowError(f"{where} must hold a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise FollowError(f"{where}: unknown keys {', '.join(unknown)}; use {', '.join(KEYS)}")
    for key, kind in KEYS.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise FollowError(f"{where}: {key!r} must be a {kind.__name__}, got {data[key]!r}")
    return data


class Follower(QObject):
    requested = Signal(dict)
    error = Signal(str)
    ended = Signal()  # the stream (--follow -) closed: the client stopped following

    def __init__(self, source: str, parent: QObject | None = None, *, stream: BinaryIO | None = None):
        super().__init__(parent)
        self.source = source
        self.is_url = source.startswith(("http://", "https://"))
        self.is_stream = source == STDIN
        self._stream = stream
        self._last: str | None = None
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read_stream if self.is_stream else self._loop,
                                        name="liveedit-ui-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _read(self) -> str | None:
        if self.is_url:
            with urllib.request.urlopen(self.source, timeout=2) as answer:
                return answer.read(256 * 1024).decode()
        path = Path(self.source)
        return path.read_text() if path.exists() else None

    def poll(self) -> None:
        try:
            text = self._read()
            if text is None or text == self._last:
                return
            self._last = text
            self.requested.emit(parse_request(text, self.source))
            self._last_error = None
        except (OSError, FollowError, UnicodeDecodeError) as exc:
            message = f"--follow {self.source}: {exc}"
            if message != self._last_error:  # once per distinct problem, not every second
                self._last_error = message
                self.error.emit(message)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(POLL_SECONDS)

    def _read_stream(self) -> None:
        """One request per line, each emitted as soon as it is read (blocking reads, no timer)."""
        stream = self._stream if self._stream is not None else sys.stdin.buffer
        where = "--follow - (standard input)"
        while not self._stop.is_set():
            line = stream.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            if len(line) > MAX_LINE_BYTES:
                self._report(f"{where}: a request longer than {MAX_LINE_BYTES // 1024} KiB; send one JSON object "
                             "per line")
                while line and not line.endswith(b"\n"):  # skip the rest of that line
                    line = stream.readline(MAX_LINE_BYTES)
                continue
            if not line.strip() or self._stop.is_set():
                continue
            try:
                self.requested.emit(parse_request(line.decode("utf-8"), where))
            except (FollowError, UnicodeDecodeError) as exc:
                self._report(f"{where}: {exc}")
        self.ended.emit()

    def _report(self, message: str) -> None:
        if message != self._last_error:
            self._last_error = message
            self.error.emit(message)
