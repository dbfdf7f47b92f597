"""Test doubles for the sidecar tests: a trivial editor with the real chunking (9 frames,
then 12, final partial chunk on finish) that inverts colours, so results are checkable."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

FIRST_CHUNK, CHUNK = 9, 12


@dataclass
class FakeChunkStats:
    index: int
    source_frames: int
    latent_frames: int
    encode_seconds: float = 0.0
    transformer_seconds: float = 0.0
    decode_seconds: float = 0.0
    reused_token_fraction: float | None = None


class InvertEditor:
    """Edited frame = 255 - source (+ seed % 7 on the red channel, so seeds differ)."""

    threads: set = set()  # names of threads editors ran on (the worker's, never the loop's)
    chunks_run = 0
    chunk_seconds = 0.0

    def __init__(self, models, instruction: str, seed: int):
        self.instruction, self.seed = instruction, seed
        self.pending: list[np.ndarray] = []
        self.stats: list[FakeChunkStats] = []

    def _chunk(self, frames):
        InvertEditor.threads.add(threading.current_thread().name)
        InvertEditor.chunks_run += 1
        if InvertEditor.chunk_seconds:
            time.sleep(InvertEditor.chunk_seconds)
        out = []
        for f in frames:
            e = 255 - f
            e[..., 0] = (e[..., 0].astype(np.int32) + self.seed % 7).clip(0, 255).astype(np.uint8)
            out.append(e)
        self.stats.append(FakeChunkStats(len(self.stats), len(frames), (len(frames) + 3) // 4))
        return out

    def push(self, frame):
        self.pending.append(frame.copy())
        need = FIRST_CHUNK if not self.stats else CHUNK
        if len(self.pending) < need:
            return []
        frames, self.pending = self.pending, []
        return self._chunk(frames)

    def finish(self):
        frames, self.pending = self.pending, []
        return self._chunk(frames) if frames else []


def expected_edit(frame: np.ndarray, seed: int) -> np.ndarray:
    e = 255 - frame
    e[..., 0] = (e[..., 0].astype(np.int32) + seed % 7).clip(0, 255).astype(np.uint8)
    return e


def make_clip(count: int, height: int = 16, width: int = 24) -> list[np.ndarray]:
    """Frames whose pixels encode their index, so order mistakes are visible."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 200, size=(height, width, 3), dtype=np.uint8)
    return [(base + i).astype(np.uint8) for i in range(count)]


class ServerThread:
    """Runs a Sidecar on its own event loop in a background thread, so that tests can use the
    blocking client against a real server."""

    def __init__(self, sidecar):
        import asyncio

        self.sidecar = sidecar
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server", daemon=True)
        self.thread.start()
        self.address = self.call(sidecar.start())

    def call(self, coro, timeout: float = 30):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 0):
        try:
            self.call(self.sidecar.stop(grace))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
