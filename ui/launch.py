"""Connecting the preview window to a sidecar, starting one in the background when none answers.

The started sidecar is a separate `liveedit serve` process in its own session, so it outlives
the window (the NLE clients share it) and a crash of one never takes the other down. Its output
goes to a log file in the runtime folder, which the error message names when it fails to start.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from liveedit.clients import transport
from liveedit.clients.python import LiveEditClient, ServerNotRunningError
from liveedit.errors import LiveEditError

START_TIMEOUT_SECONDS = 300.0  # loading the real model from disk can take minutes
LOG_FILE = "sidecar-autostart.log"


class SidecarStartError(LiveEditError):
    """A background sidecar was started but never answered."""


@dataclass(frozen=True)
class SidecarTarget:
    """Where the window looks for a sidecar, and what it starts when none answers."""

    socket: Path | None = None  # Unix socket; None = the per-user default
    port: int | None = None  # loopback TCP instead (uses the per-install token)
    host: str = "127.0.0.1"
    start_if_missing: bool = True
    serve_args: tuple[str, ...] = field(default=())  # extra `liveedit serve` options (--model tiny ...)
    connect_timeout: float = 2.0
    start_timeout: float = START_TIMEOUT_SECONDS

    @property
    def address(self) -> str | None:
        if self.port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def describe(self) -> str:
        if self.address:
            return self.address
        if self.socket:
            return str(self.socket)
        return str(transport.default_socket_path())

    def serve_command(self) -> list[str]:
        where = (["--port", str(self.port), "--host", self.host] if self.port is not None
                 else (["--socket", str(self.socket)] if self.socket else []))
        return [sys.executable, "-m", "liveedit", "serve", *where, *self.serve_args]


@dataclass
class Connection:
    client: LiveEditClient
    started: subprocess.Popen | None  # the sidecar we started, or None when one was running


def _connect(target: SidecarTarget, timeout: float) -> LiveEditClient:
    if target.address:
        return LiveEditClient.connect(address=target.address, timeout=timeout)
    return LiveEditClient.connect(target.socket, timeout=timeout)


def connect_or_start(target: SidecarTarget, status: Callable[[str], None] = lambda _: None) -> Connection:
    """A connected client. Blocking (minutes when a sidecar has to load its model): call it
    from a worker thread. `status` hears what is happening, in words for the status bar."""
    status(f"Connecting to the sidecar at {target.describe()}...")
    try:
        client = _connect(target, target.connect_timeout)
        status(f"Connected to the sidecar at {target.describe()}")
        return Connection(client, None)
    except ServerNotRunningError:
        if not target.start_if_missing:
            raise
    log_path = transport.ensure_private_dir(transport.runtime_dir()) / LOG_FILE
    command = target.serve_command()
    with open(log_path, "ab") as log:
        # Own session: the sidecar keeps running for other clients when the window closes.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   start_new_session=True)
    status(f"No sidecar was running: started one in the background (pid {process.pid}); "
           "waiting for it to load the model...")
    deadline = time.monotonic() + target.start_timeout
    while True:
        try:
            client = _connect(target, 1.0)
            status(f"Started a background sidecar (pid {process.pid}) at {target.describe()}")
            return Connection(client, process)
        except ServerNotRunningError:
            pass
        if process.poll() is not None:
            raise SidecarStartError(
                f"the background sidecar (`{' '.join(command[1:])}`) exited with code {process.returncode} "
                f"before answering; its output is in {log_path}: {_tail(log_path)}")
        if time.monotonic() > deadline:
            raise SidecarStartError(
                f"the background sidecar (pid {process.pid}) did not answer within "
                f"{target.start_timeout:.0f} s; see {log_path}, or start one yourself with `liveedit serve`")
        time.sleep(0.5)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])
