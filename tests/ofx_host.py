"""Driving ofx-testhost (clients/ofx/testhost) from tests: build it, start it as a subprocess, send
JSON-line commands, read answers and events with timeouts, and read rendered frames as numpy arrays.

    paths = build_ofx()                       # scripts/build-ofx; skips only where allowed
    with OfxHost([paths.examples]) as host:
        host.source(width=33, height=17, depth="float", first=0, last=9, pattern="noise", seed=1)
        host.create("uk.co.thefoundry.OfxInvertExample")
        answer = host.render([0, 1], out=tmp_path)
        pixels, meta = read_frame(answer["frames"][0]["file"])

The host is a separate process so that a plugin crashing it shows as an exit status
(OfxHostDied), never as a crashed test run. The protocol is in clients/ofx/testhost/README.md.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "scripts" / "build-ofx"
BUILD_DIR = REPO / "build" / "ofx"

DTYPES = {"byte": np.uint8, "short": np.uint16, "float": np.float32}
MAX = {"byte": 255, "short": 65535, "float": 1.0}


class OfxHostError(RuntimeError):
    """A command the host answered with ok: false (the answer is attached)."""

    def __init__(self, answer: dict):
        super().__init__(f"{answer.get('cmd')}: {answer.get('error') or answer}")
        self.answer = answer


class OfxHostDied(RuntimeError):
    """The host process ended (crashed, or was killed) while an answer was awaited."""

    def __init__(self, returncode: int | None, stderr: str, events: list[dict]):
        super().__init__(f"ofx-testhost ended with status {returncode}; stderr tail:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr
        self.events = events


@dataclass
class OfxBuild:
    host: Path  # the ofx-testhost executable
    examples: Path  # SDK example bundles and the host's probe plugin
    plugins: Path  # LiveEdit.ofx.bundle, when the plugin is built
    seconds: float  # how long scripts/build-ofx took


def build_tools_present() -> bool:
    return all(shutil.which(t) for t in ("cmake", "c++", "make"))


def build_ofx(jobs: int = 2) -> OfxBuild:
    """Run scripts/build-ofx (incremental). Skips the calling test only when the compiler or CMake
    is missing and the environment is not CI (CI="true" makes missing tools a failure)."""
    import pytest

    if not build_tools_present():
        if os.environ.get("CI") == "true":
            pytest.fail("cmake, make and a C++ compiler are needed to build the OpenFX host (scripts/test installs them)")
        pytest.skip("cmake/make/c++ not installed (scripts/test installs them when run as root)")
    start = time.monotonic()
    proc = subprocess.run([str(BUILD_SCRIPT), "-j", str(jobs)], cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"scripts/build-ofx failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    host = BUILD_DIR / "bin" / "ofx-testhost"
    if not host.is_file():
        raise RuntimeError(f"scripts/build-ofx did not produce {host}")
    return OfxBuild(host=host, examples=BUILD_DIR / "examples", plugins=BUILD_DIR / "plugins", seconds=seconds)


class OfxHost:
    """One ofx-testhost process. Commands are sent one at a time; each returns the answer dict, with
    the events that arrived while it ran under answer["events"]. All events are also kept in
    self.events."""

    def __init__(
        self,
        plugin_paths: Iterable[os.PathLike | str],
        *,
        executable: os.PathLike | str | None = None,
        args: Iterable[str] = (),
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ):
        # LIVEEDIT_OFX_TESTHOST: another build of the host (a sanitizer build, say)
        exe = Path(executable or os.environ.get("LIVEEDIT_OFX_TESTHOST") or BUILD_DIR / "bin" / "ofx-testhost")
        paths = ":".join(str(Path(p)) for p in plugin_paths)
        full_env = dict(os.environ)
        full_env.pop("OFX_PLUGIN_PATH", None)  # only the given folders, unless the caller says so
        if env:
            full_env.update(env)
        self.timeout = timeout
        self.events: list[dict] = []
        self._stderr: deque[str] = deque(maxlen=400)
        self._lines: queue.Queue = queue.Queue()
        self._next_id = 0
        self.proc = subprocess.Popen(
            [str(exe), "--plugin-path", paths, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
        )
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        ready = self._wait(lambda m: m.get("event") == "ready", timeout)
        self.plugin_count = ready.get("plugins")

    # -- plumbing --------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                self._lines.put(json.loads(line))
            except json.JSONDecodeError:
                self._lines.put({"event": "garbage", "text": line})
        self._lines.put(None)  # end of stream

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def _died(self) -> OfxHostDied:
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        return OfxHostDied(self.proc.returncode, "\n".join(list(self._stderr)[-40:]), self.events)

    def _wait(self, match, timeout: float, collect: list | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from ofx-testhost within {timeout} s")
            try:
                msg = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                self._lines.put(None)
                raise self._died()
            if "event" in msg:
                self.events.append(msg)
                if collect is not None:
                    collect.append(msg)
                if match(msg):
                    return msg
                continue
            if match(msg):
                return msg

    # -- commands --------------------------------------------------------------------------------
    def send(self, cmd: str, timeout: float | None = None, **fields: Any) -> dict:
        """Send one command; return its answer (ok or not). Raises OfxHostDied if the host ends."""
        self._next_id += 1
        ident = self._next_id
        message = {"cmd": cmd, "id": ident, **fields}
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died() from None
        events: list[dict] = []
        answer = self._wait(lambda m: "event" not in m and m.get("id") == ident, timeout or self.timeout, events)
        answer["events"] = events
        return answer

    def call(self, cmd: str, timeout: float | None = None, **fields: Any) -> dict:
        """send(), raising OfxHostError when the answer is not ok."""
        answer = self.send(cmd, timeout, **fields)
        if not answer.get("ok"):
            raise OfxHostError(answer)
        return answer

    def list(self) -> list[dict]:
        return self.call("list")["plugins"]

    def create(self, plugin: str, context: str = "filter", **fields: Any) -> dict:
        return self.call("create", plugin=plugin, context=context, **fields)

    def set(self, param: str, value: Any) -> dict:
        return self.call("set", param=param, value=value)

    def get(self, param: str | None = None) -> Any:
        if param is None:
            return self.call("get")["values"]
        return self.call("get", param=param)["value"]

    def source(self, **spec: Any) -> dict:
        if "dir" in spec:
            spec["dir"] = str(spec["dir"])
        return self.call("source", **spec)

    def change_frame(self, frame: int, seed: int | None = None, notify: bool = True) -> dict:
        fields: dict[str, Any] = {"frame": frame, "notify": notify}
        if seed is not None:
            fields["seed"] = seed
        return self.call("change_frame", **fields)

    def render(self, frames: Iterable[float], out: os.PathLike | str | None = None, timeout: float | None = None,
               **fields: Any) -> dict:
        """Render; the answer's "ok" is false when any frame failed (no exception: check frames).
        fields go to the host as they are (threads, render_scale, window, frame_timeout, ...);
        timeout is how long to wait for the answer (default: enough for every frame's timeout)."""
        frames = list(frames)
        if out is not None:
            fields["out"] = str(out)
        if timeout is None:
            per_frame = float(fields.get("frame_timeout", 120.0)) + float(fields.get("abort_grace", 2.0))
            timeout = max(self.timeout, per_frame * len(frames) + 10.0)
        return self.send("render", timeout, frames=frames, **fields)

    def dump_source(self, frame: float, out: os.PathLike | str, **fields: Any) -> dict:
        return self.call("dump_source", frame=frame, out=str(out), **fields)

    def status(self) -> dict:
        return self.call("status")

    def messages(self, kind: str = "message") -> list[dict]:
        return [e for e in self.events if e.get("event") == kind]

    # -- lifetime --------------------------------------------------------------------------------
    def close(self, timeout: float = 30.0) -> int | None:
        """Quit (kOfxActionDestroyInstance, unload) and return the exit status; kill if it hangs."""
        if self.proc.poll() is None:
            try:
                self.send("quit", timeout)
            except (OfxHostDied, TimeoutError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        return self.proc.returncode

    def __enter__(self) -> "OfxHost":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def exported_symbols(binary: os.PathLike | str) -> set[str]:
    """The dynamic symbols a bundle's binary defines (nm -D --defined-only)."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(binary)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


def read_frame(path: os.PathLike | str) -> tuple[np.ndarray, dict]:
    """A frame the host wrote (render "out" or dump_source): array [height, width, channels] in the
    file's depth (uint8, uint16 or float32), row 0 = the bottom row (OFX order), and its metadata."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    channels = 4 if meta["components"] == "RGBA" else 1
    data = np.fromfile(path, dtype=DTYPES[meta["depth"]])
    return data.reshape(meta["height"], meta["width"], channels), meta


def write_frame(path: os.PathLike | str, pixels: np.ndarray) -> None:
    """A raw source frame for source(dir=...): [height, width, 4], row 0 = bottom."""
    np.ascontiguousarray(pixels).tofile(path)
