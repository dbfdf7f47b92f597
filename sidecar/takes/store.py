"""Where takes keep frames (sidecar/takes/service.py uses these): uploaded source frames and
edited chunks, in bytes-bounded LRUs, and the disk cache of edited chunks in the sidecar's cache
folder, written through and trimmed by last use, so a restarted sidecar keeps finished takes.

Frames are kept in the type the editor takes and delivers (uint8, uint16 or float32 RGB: the
host's precision, sidecar/takes/pixels.py), so a source the edit did not change comes back
bit for bit. Bytes are counted at their real size: a 1920x1080 frame is 6.2 MB as uint8,
12.4 MB as uint16 and 24.9 MB as float32 (plus its alpha plane, if any, at the host's depth).
On disk a chunk is an .npz whose arrays carry their dtype."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liveedit.sidecar.outputs import process_running
from liveedit.sidecar.takes.pixels import FRAME_DTYPES

log = logging.getLogger(__name__)

HASH_BYTES = 16  # keys are 16-byte hashes (service.py's chain)


@dataclass
class SourceFrame:
    rgb: np.ndarray  # [H, W, 3] top-down, uint8/uint16/float32 (pixels.frame_dtype): what the editor takes
    alpha: np.ndarray | None  # [H, W] at the host's depth; None = opaque
    premultiplied: bool

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + (self.alpha.nbytes if self.alpha is not None else 0)


@dataclass
class ChunkResult:
    key: bytes
    frames: list[np.ndarray]  # delivered [H, W, 3] (uint8, uint16 or float32), one per source frame of the chunk
    alphas: list[np.ndarray | None]  # the sources' alpha planes (None: opaque)
    premultiplied: list[bool]

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames) + sum(a.nbytes for a in self.alphas if a is not None)


class _Lru:
    """Bytes-bounded LRU of objects with an `nbytes`."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.items: collections.OrderedDict = collections.OrderedDict()
        self.bytes = 0

    def get(self, key):
        item = self.items.get(key)
        if item is not None:
            self.items.move_to_end(key)
        return item

    def __contains__(self, key) -> bool:
        return key in self.items

    def put(self, key, item) -> None:
        old = self.items.pop(key, None)
        if old is not None:
            self.bytes -= old.nbytes
        self.items[key] = item
        self.bytes += item.nbytes
        while self.bytes > self.limit and len(self.items) > 1:
            _, dropped = self.items.popitem(last=False)
            self.bytes -= dropped.nbytes

    def clear(self) -> int:
        count = len(self.items)
        self.items.clear()
        self.bytes = 0
        return count


class ChunkStore:
    """Edited chunks by chain key: memory first, then the disk cache (write-through)."""

    def __init__(self, memory_bytes: int, disk_dir: Path | None, disk_bytes: int):
        self.memory = _Lru(memory_bytes)
        self.disk_dir = disk_dir
        self.disk_bytes = int(disk_bytes)
        self._disk: collections.OrderedDict[bytes, int] = collections.OrderedDict()  # key -> size, LRU order
        self._disk_total = 0
        self._writes: set[asyncio.Task] = set()
        self.memory_hits = 0
        self.disk_hits = 0
        if disk_dir is not None:
            self._scan()

    def _path(self, key: bytes) -> Path:
        return self.disk_dir / f"{key.hex()}.npz"

    def _scan(self) -> None:
        self.disk_dir.mkdir(parents=True, exist_ok=True)
        entries = []
        for path in self.disk_dir.glob("*.npz"):
            try:
                key = bytes.fromhex(path.stem)
                st = path.stat()
            except (ValueError, OSError):
                continue
            if len(key) == HASH_BYTES:
                entries.append((st.st_mtime, key, st.st_size))
        for _, key, size in sorted(entries):
            self._disk[key] = size
            self._disk_total += size
        for stale in self.disk_dir.glob(".*.tmp"):
            # `.<key>.<pid>.tmp`: another sidecar of this user may be writing it right now
            pid = stale.name.rsplit(".", 2)[-2]
            if not (pid.isdigit() and process_running(int(pid))):
                stale.unlink(missing_ok=True)
        self._trim_disk()

    def contains(self, key: bytes) -> bool:
        return key in self.memory or key in self._disk

    async def lookup(self, key: bytes) -> ChunkResult | None:
        result = self.memory.get(key)
        if result is not None:
            self.memory_hits += 1
            return result
        if key not in self._disk:
            return None
        result = await asyncio.to_thread(self._load, key)
        if result is None:
            self._forget_disk(key)
            return None
        self.disk_hits += 1
        self._disk.move_to_end(key)
        self.memory.put(key, result)
        return result

    def put(self, result: ChunkResult) -> None:
        self.memory.put(result.key, result)
        if self.disk_dir is not None and result.key not in self._disk:
            task = asyncio.ensure_future(self._write(result))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _write(self, result: ChunkResult) -> None:
        try:
            size = await asyncio.to_thread(self._save, result)
        except OSError as exc:
            log.warning("takes: could not write %s to the disk cache: %s", result.key.hex(), exc)
            return
        if result.key not in self._disk:
            self._disk[result.key] = size
            self._disk_total += size
            self._trim_disk()

    def _save(self, result: ChunkResult) -> int:
        arrays = {"frames": np.stack(result.frames), "premultiplied": np.array(result.premultiplied)}
        for j, alpha in enumerate(result.alphas):
            if alpha is not None:
                arrays[f"alpha{j}"] = alpha
        path = self._path(result.key)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
        return path.stat().st_size

    def _load(self, key: bytes) -> ChunkResult | None:
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                frames = list(data["frames"])
                premultiplied = [bool(v) for v in data["premultiplied"]]
                alphas = [data[f"alpha{j}"] if f"alpha{j}" in data.files else None for j in range(len(frames))]
            os.utime(path)  # last use, for the LRU order after a restart
        except (OSError, ValueError, KeyError) as exc:
            log.warning("takes: disk cache entry %s is unreadable (%s); it will be edited again", path, exc)
            path.unlink(missing_ok=True)
            return None
        if len(premultiplied) != len(frames) or any(f.dtype not in FRAME_DTYPES or f.ndim != 3 or f.shape[2] != 3
                                                    for f in frames):
            log.warning("takes: disk cache entry %s does not hold RGB frames; it will be edited again", path)
            path.unlink(missing_ok=True)
            return None
        return ChunkResult(key, frames, alphas, premultiplied)

    def _forget_disk(self, key: bytes) -> None:
        size = self._disk.pop(key, None)
        if size is not None:
            self._disk_total -= size

    def _trim_disk(self) -> None:
        while self._disk_total > self.disk_bytes and self._disk:
            key, size = self._disk.popitem(last=False)
            self._disk_total -= size
            self._path(key).unlink(missing_ok=True)

    async def flush(self) -> None:
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def clear(self) -> dict:
        await self.flush()
        removed_disk = 0
        for key in list(self._disk):
            self._path(key).unlink(missing_ok=True)
            removed_disk += 1
        self._disk.clear()
        self._disk_total = 0
        return {"memory_chunks": self.memory.clear(), "disk_chunks": removed_disk}

    @property
    def disk_total(self) -> int:
        return self._disk_total
