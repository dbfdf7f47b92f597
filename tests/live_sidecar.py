"""A real `liveedit serve` in a subprocess, as a user starts it, with its own config and cache
folders; the bridge on a free port. For tests and benchmarks that need the whole sidecar."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class LiveSidecar:
    def __init__(self, folder: Path, *, model: str = "tiny", extra_args: tuple[str, ...] = (), timeout: float = 180):
        self.folder = Path(folder)
        self.config = self.folder / "config"
        self.log_path = self.folder / "serve.log"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.config / "bridge.json").unlink(missing_ok=True)
        self.env = dict(os.environ, LIVEEDIT_CONFIG_DIR=str(self.config), LIVEEDIT_RUNTIME_DIR=str(self.folder / "run"),
                        LIVEEDIT_CACHE_DIR=str(self.folder / "cache"))
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "liveedit", "serve", "--model", model, "--device", "cpu", "--bridge-port", "0",
                 "--jobs-db", str(self.folder / "jobs.sqlite"), *extra_args],
                env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"liveedit serve ended with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"liveedit serve did not come up in {timeout} s:\n{self.log()}")
            try:
                self.port = json.loads((self.config / "bridge.json").read_text())["port"]
                self.token = (self.config / "token").read_text().strip()
                self.get("/v1/takes/info")
                break
            except (OSError, ValueError, KeyError, urllib.error.URLError):
                time.sleep(0.2)

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-4000:]
        except OSError:
            return ""

    def _call(self, method: str, path: str) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                         headers={"Authorization": f"Bearer {self.token}"},
                                         data=b"" if method == "POST" else None)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def stats(self) -> dict:
        return self.get("/v1/takes/stats")

    def clear(self) -> dict:
        return self._call("POST", "/v1/takes/clear")

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        return self.proc.returncode

    def __enter__(self) -> "LiveSidecar":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
