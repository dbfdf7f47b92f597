"""`--follow`: a client (an NLE panel, a script) steers an open preview window by writing a small
JSON request to a file, or by serving it at a local URL:

    {"media": "/abs/clip.mov", "start": 100, "frames": 48, "instruction": "...", "seed": 0, "frame": 110}

Every key is optional except `media` for the first request. The window polls once a second, off
the GUI thread, and applies a request whenever its content changes.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from PySide6.QtCore import QObject, Signal

POLL_SECONDS = 1.0
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

    def __init__(self, source: str, parent: QObject | None = None):
        super().__init__(parent)
        self.source = source
        self.is_url = source.startswith(("http://", "https://"))
        self._last: str | None = None
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="liveedit-ui-follow", daemon=True)

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
