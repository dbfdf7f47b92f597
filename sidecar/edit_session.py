"""One live edit stream (the Edit service's domain logic, no gRPC here).

Frames arrive in order; each is handed to the GPU worker as soon as it arrives (the worker
runs a stream's work in order), while a second task hands back results in order. A bounded
queue between the two gives backpressure: a client that stops reading stops being read.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import AsyncIterator, Union

import numpy as np

from liveedit.errors import InputError
from liveedit.clients.transport import (FrameRing, RingSpec, RingUnavailable, check_frame_array,
                                              frame_from_bytes)
from liveedit.sidecar.validation import check_frame_size, check_instruction, check_seed
from liveedit.sidecar.worker import GpuWorker, Priority

log = logging.getLogger(__name__)

# Results waiting to be sent; two chunks' worth keeps the GPU busy while the client reads.
MAX_IN_FLIGHT = 24


@dataclass(frozen=True)
class EditStreamConfig:
    instruction: str
    seed: int
    width: int
    height: int
    ring: RingSpec | None = None  # shared-memory transport asked for
    label: str = ""


@dataclass(frozen=True)
class SourceIn:
    """A source frame as received: bytes, or a ring slot."""

    index: int
    data: bytes | None = None
    slot: int | None = None
    array: np.ndarray | None = None  # already decoded (in-process callers)


@dataclass(frozen=True)
class EditedOut:
    index: int
    frame: np.ndarray | None  # None when the pixels were written to `slot`
    slot: int | None = None


@dataclass(frozen=True)
class ChunkOut:
    stats: object  # engine ChunkStats
    queued_seconds: float


@dataclass(frozen=True)
class Finished:
    frames_in: int
    frames_out: int


Output = Union[EditedOut, ChunkOut, Finished]


@dataclass
class EditSession:
    worker: GpuWorker
    config: EditStreamConfig
    priority: Priority = Priority.LIVE
    ring: FrameRing | None = None
    fallback_reason: str = ""
    frames_in: int = 0
    frames_out: int = 0
    _stream: object = field(default=None, repr=False)

    @classmethod
    def open(cls, worker: GpuWorker, config: EditStreamConfig, **kw) -> "EditSession":
        """Validates the start of a stream and attaches the ring if one was offered."""
        check_instruction(config.instruction)
        check_seed(config.seed)
        check_frame_size(config.width, config.height)
        session = cls(worker, config, **kw)
        if config.ring is not None:
            try:
                session.ring = FrameRing.open(config.ring, config.width, config.height)
            except RingUnavailable as exc:
                session.fallback_reason = str(exc)
        session._stream = worker.open_stream(check_instruction(config.instruction), config.seed,
                                             priority=session.priority)
        return session

    @property
    def shared_memory(self) -> bool:
        return self.ring is not None

    def decode(self, source: SourceIn) -> np.ndarray:
        where = f"frame {source.index}"
        if source.index != self.frames_in:
            raise InputError(f"{where} arrived when frame {self.frames_in} was expected; send frames "
                             "in order, numbered from 0 without gaps")
        w, h = self.config.width, self.config.height
        if source.array is not None:
            return check_frame_array(source.array, w, h, where)
        if source.slot is not None:
            if self.ring is None:
                raise InputError(f"{where} names a ring slot but the stream uses in-message frames; "
                                 "send the pixels as bytes")
            return self.ring.read(source.slot)
        if source.data is None:
            raise InputError(f"{where} carries no pixels")
        if self.ring is not None:
            raise InputError(f"{where} carries bytes but the stream uses shared memory; send the slot")
        return frame_from_bytes(source.data, w, h, where)

    async def run(self, inputs: AsyncIterator[SourceIn | None]) -> AsyncIterator[Output]:
        """Edits every frame of `inputs` (None or the end of the iterator ends the stream) and
        yields edited frames in order, a ChunkOut after each chunk, then Finished. An error in
        the input surfaces here after the frames before it were delivered."""
        pending: asyncio.Queue = asyncio.Queue(MAX_IN_FLIGHT)

        async def read() -> None:
            try:
                async for source in inputs:
                    if source is None:
                        break
                    frame = self.decode(source)
                    self.frames_in += 1
                    await pending.put(asyncio.ensure_future(self._stream.push(frame)))
                await pending.put(asyncio.ensure_future(self._stream.finish()))
                await pending.put(None)
            except BaseException as exc:  # noqa: BLE001 - handed to the writer side
                await pending.put(exc)

        reader = asyncio.ensure_future(read())
        try:
            while True:
                item = await pending.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                frames, stats, queued = await item
                for frame in frames:
                    yield self._deliver(frame)
                for chunk in stats:
                    yield ChunkOut(chunk, queued)
            yield Finished(self.frames_in, self.frames_out)
        finally:
            reader.cancel()
            while not pending.empty():  # results nobody will read
                item = pending.get_nowait()
                if isinstance(item, asyncio.Future):
                    item.cancel()
            self.close()

    def _deliver(self, frame: np.ndarray) -> EditedOut:
        index = self.frames_out
        self.frames_out += 1
        if self.ring is None:
            return EditedOut(index, frame)
        slot = self.ring.slot_of(index)
        self.ring.write(slot, frame)
        return EditedOut(index, None, slot)

    def close(self) -> None:
        """Releases the stream's GPU state and the ring; called when the client goes away too."""
        if self._stream is not None:
            self._stream.release()
        if self.ring is not None:
            self.ring.close()
            self.ring = None
