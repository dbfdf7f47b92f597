"""Frame-transport micro-benchmark: frames per second through a real sidecar over its Unix
socket, pixels in messages vs in the shared-memory ring, at 480p and 1080p RGB24.

The editor is a pass-through (no model), so the figures are the transport's ceiling: what is
left for the GPU is the frame budget minus this. Run with `liveedit bench-transport`. It
starts a sidecar and a client in one process, so it lives above both, with the CLI.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SIZES = {"480p": (832, 480), "1080p": (1920, 1080)}
TRANSPORTS = ("in-message", "shared-memory")
HEADER = ("# Benchmarks\n\nMeasured figures, newest last. Each section says the device, the commit "
          "and what was measured.\n")


class PassThroughEditor:
    """Chunking like StreamingEditor (9 frames, then 12), pixels returned untouched."""

    def __init__(self, models, instruction: str, seed: int):
        self.pending: list[np.ndarray] = []
        self.chunks = 0
        self.stats: list = []

    def push(self, frame):
        self.pending.append(frame)
        if len(self.pending) < (9 if self.chunks == 0 else 12):
            return []
        out, self.pending = self.pending, []
        self.chunks += 1
        return out

    def finish(self):
        out, self.pending = self.pending, []
        return out


@dataclass(frozen=True)
class TransportResult:
    transport: str
    size: str
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def gb_per_second(self) -> float:
        w, h = SIZES[self.size]
        return 2 * self.frames * w * h * 3 / self.seconds / 1e9  # both directions


def run(frames: int = 120, sizes=tuple(SIZES), transports=TRANSPORTS) -> list[TransportResult]:
    from liveedit.clients.python import LiveEditClient
    from liveedit.sidecar.api.server import ModelCard, ServerOptions, Sidecar

    card = ModelCard(preset="none", random_weights=True, description="pass-through (transport benchmark)")
    with tempfile.TemporaryDirectory(prefix="le-bench-") as tmp:
        sidecar = Sidecar(None, ServerOptions(socket_path=Path(tmp) / "s.sock"),
                          editor_factory=PassThroughEditor, card=card)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(sidecar.start(), loop).result(30)
        results = []
        try:
            with LiveEditClient.connect(sidecar.socket_path) as client:
                for size in sizes:
                    w, h = SIZES[size]
                    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
                    for transport in transports:
                        shared = transport == "shared-memory"
                        # warm-up: connection, ring creation, first allocations
                        for _ in client.edit_stream([frame] * 12, "bench", shared_memory=shared):
                            pass
                        t0 = time.perf_counter()
                        n = sum(1 for _ in client.edit_stream((frame for _ in range(frames)), "bench",
                                                              shared_memory=shared))
                        results.append(TransportResult(transport, size, n, time.perf_counter() - t0))
        finally:
            asyncio.run_coroutine_threadsafe(sidecar.stop(0), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
    return results


def describe_machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"


def commit() -> str:
    if os.environ.get("LIVEEDIT_COMMIT"):
        return os.environ["LIVEEDIT_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(results: list[TransportResult]) -> list[str]:
    lines = ["| size | transport | frames | frames/s | GB/s (both ways) |", "| --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.size} | {r.transport} | {r.frames} | {r.fps:.1f} | {r.gb_per_second:.2f} |")
    return lines


def record(path: Path, results: list[TransportResult]) -> None:
    """Appends a dated section (device, commit) to a markdown file, creating it with a header."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = [f"\n### {date} · transport (gRPC over a Unix socket, pass-through editor) · "
               f"{describe_machine()} · commit {commit()}\n", *table(results)]
    existing = path.read_text() if path.exists() else HEADER
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(existing + "\n".join(section) + "\n")
    os.replace(tmp, path)
