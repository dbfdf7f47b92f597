"""Talking to the sidecar's HTTP bridge from inside Resolve (standard library only).

The bridge (docs/architecture.md, "Bridge HTTP API") listens on 127.0.0.1 at the port
in ``bridge.json`` and wants the per-install ``token`` from the same per-user config
folder. Both files are read on every connect, so a restarted sidecar on a new port is
found without reinstalling the scripts.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from .errors import ResolveScriptError, SidecarError, SidecarNotRunningError

DEFAULT_START_COMMAND = "liveedit serve"
FINISHED = ("done", "failed", "cancelled")


def default_config_dir(platform: str | None = None, env: dict | None = None, home: Path | None = None) -> Path:
    """The sidecar's per-user config folder (same rules as liveedit.clients.transport.config_dir)."""
    platform = platform or sys.platform
    env = os.environ if env is None else env
    home = Path.home() if home is None else Path(home)
    if env.get("LIVEEDIT_CONFIG_DIR"):
        return Path(env["LIVEEDIT_CONFIG_DIR"])
    if platform == "win32":
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "LiveEdit"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "LiveEdit"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "liveedit"


class BridgeClient:
    """Synchronous JSON calls to the bridge, with the token."""

    def __init__(self, url: str, token: str, start_command: str = DEFAULT_START_COMMAND, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.token = token
        self.start_command = start_command
        self.timeout = timeout

    @classmethod
    def from_config(cls, config_dir: str | Path | None = None, start_command: str = DEFAULT_START_COMMAND) -> "BridgeClient":
        """Find the running sidecar from bridge.json and token; say how to start it if none runs."""
        folder = Path(config_dir) if config_dir else default_config_dir()
        not_running = (f"The LiveEdit sidecar is not running. Start it in a terminal with:\n    {start_command}\n"
                       f"then run this script again.")
        try:
            port = json.loads((folder / "bridge.json").read_text())["port"]
            token = (folder / "token").read_text().strip()
        except FileNotFoundError:
            raise SidecarNotRunningError(f"{not_running}\n(no bridge.json/token in {folder} yet)") from None
        except (ValueError, KeyError, TypeError):
            raise SidecarNotRunningError(f"{not_running}\n({folder / 'bridge.json'} is damaged; the sidecar rewrites it)") from None
        client = cls(f"http://127.0.0.1:{int(port)}", token, start_command)
        client.info()  # fails with the same advice if nothing listens there
        return client

    # -- HTTP -------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read().decode("utf-8")).get("error", {})
            except ValueError:
                error = {}
            message = error.get("message") or exc.reason
            if exc.code == 401:
                message = ("the sidecar refused our token; it was probably reinstalled. Restart it "
                           f"({self.start_command}) so both read the same token file")
            raise SidecarError(f"sidecar: {message}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SidecarNotRunningError(
                f"The LiveEdit sidecar is not running at {self.url} ({reason}). Start it in a terminal with:\n"
                f"    {self.start_command}\nthen run this script again."
            ) from None

    def info(self) -> dict:
        return self._call("GET", "/v1/info")

    def submit(self, job: dict) -> dict:
        return self._call("POST", "/v1/jobs", job)["job"]

    def job(self, job_id: str) -> dict:
        return self._call("GET", f"/v1/jobs/{job_id}")["job"]

    def cancel(self, job_id: str) -> dict:
        return self._call("POST", f"/v1/jobs/{job_id}/cancel")["job"]

    def wait(self, job_id: str, progress: Callable[[dict], None] | None = None, *, poll_seconds: float = 0.5,
             timeout_seconds: float | None = None, sleep: Callable[[float], None] = time.sleep) -> dict:
        """Poll until the job is finished; ``progress(job)`` sees every snapshot."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job["state"] in FINISHED:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise ResolveScriptError(f"job {job_id} is still {job['state']} after {timeout_seconds:g} s; "
                                         "it keeps running in the sidecar (see `liveedit status`)")
            sleep(poll_seconds)


def describe_progress(job: dict, names: list[str] | None = None) -> str:
    """One line per region: 'clip A: 12/14 frames (3.1 fps)'."""
    lines = []
    for region in job.get("regions", []):
        name = names[region["index"]] if names and region["index"] < len(names) else f"region {region['index'] + 1}"
        text = f"{name}: {region['state']}, {region['frames_done']}/{region['frame_count']} frames"
        if region.get("fps"):
            text += f" ({region['fps']:.1f} fps)"
        if region.get("error"):
            text += f" – {region['error']}"
        lines.append(text)
    return "\n".join(lines)
