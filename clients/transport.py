"""How frame pixels cross between client and server: bytes in messages, or a shared-memory
ring when both run on one machine (several times faster for large frames; see
docs/benchmarks.md and shared/spec/nle-integration.md §5).

The ring (`FrameRing`) is created by the client: a header (16 random bytes, the nonce) then
`slot_count` frame slots. Frame i of a stream uses slot i % slot_count in both directions: the
server copies source frame i out when its message arrives and later writes edited frame i into
the same slot. The client keeps at most slot_count frames in flight (sent but not yet read
back), which is the whole ownership protocol: no slot is ever written by both sides at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from liveedit.errors import InputError, LiveEditError

RING_PREFIX = "liveedit_"
HEADER_BYTES = 64
NONCE_BYTES = 16
MIN_RING_SLOTS = 16  # a whole chunk (12 frames) must fit in flight, or the stream stalls
MAX_RING_BYTES = 8 * 2**30
_CREATED_HERE: set[str] = set()  # rings this process created (client and server in one process)


class RingUnavailable(LiveEditError):
    """The server cannot use the client's ring (another machine, wrong name); fall back."""


def frame_bytes(width: int, height: int) -> int:
    return width * height * 3


def frame_from_bytes(data: bytes, width: int, height: int, where: str) -> np.ndarray:
    expected = frame_bytes(width, height)
    if len(data) != expected:
        raise InputError(f"{where} has {len(data)} bytes; a {width}x{height} RGB24 frame has "
                         f"{expected}: send frames of the size given at the start of the stream")
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


def check_frame_array(frame: np.ndarray, width: int, height: int, where: str) -> np.ndarray:
    if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
        raise InputError(f"{where} is {frame.dtype} {tuple(frame.shape)}; expected uint8 "
                         f"({height}, {width}, 3) RGB")
    return frame


@dataclass(frozen=True)
class RingSpec:
    """The fields of liveedit.v1.SharedMemoryRing."""

    name: str
    slot_count: int
    slot_bytes: int
    header_bytes: int
    nonce: bytes


class FrameRing:
    def __init__(self, shm: shared_memory.SharedMemory, spec: RingSpec, width: int, height: int,
                 owner: bool):
        self._shm = shm
        self.spec = spec
        self.width, self.height = width, height
        self._owner = owner

    # -- creating (client) and opening (server) ---------------------------
    @classmethod
    def create(cls, width: int, height: int, slot_count: int = 24) -> "FrameRing":
        if slot_count < MIN_RING_SLOTS:
            raise InputError(f"a ring needs at least {MIN_RING_SLOTS} slots; got {slot_count}")
        slot = frame_bytes(width, height)
        name = RING_PREFIX + secrets.token_hex(8)
        shm = shared_memory.SharedMemory(name=name, create=True, size=HEADER_BYTES + slot * slot_count)
        _CREATED_HERE.add(name)
        nonce = secrets.token_bytes(NONCE_BYTES)
        shm.buf[:NONCE_BYTES] = nonce
        return cls(shm, RingSpec(name, slot_count, slot, HEADER_BYTES, nonce), width, height, owner=True)

    @classmethod
    def open(cls, spec: RingSpec, width: int, height: int) -> "FrameRing":
        """Opens the client's ring, or raises RingUnavailable saying why (the caller falls back
        to in-message frames) or InputError for a ring described inconsistently."""
        if not spec.name.startswith(RING_PREFIX) or "/" in spec.name or len(spec.name) > 64:
            raise InputError(f"ring name {spec.name[:80]!r} must start with {RING_PREFIX!r} "
                             "and contain no '/'")
        if spec.slot_count < MIN_RING_SLOTS:
            raise InputError(f"ring slot_count {spec.slot_count} is below {MIN_RING_SLOTS}: a whole "
                             "chunk must fit in flight")
        if spec.slot_bytes < frame_bytes(width, height):
            raise InputError(f"ring slot_bytes {spec.slot_bytes} is smaller than one "
                             f"{width}x{height} frame ({frame_bytes(width, height)} bytes)")
        if spec.header_bytes < NONCE_BYTES or len(spec.nonce) != NONCE_BYTES:
            raise InputError(f"ring header must hold the {NONCE_BYTES}-byte nonce")
        total = spec.header_bytes + spec.slot_bytes * spec.slot_count
        if total > MAX_RING_BYTES:
            raise InputError(f"ring of {total} bytes is larger than {MAX_RING_BYTES}; use fewer slots")
        try:
            shm = _attach(spec.name)
        except (FileNotFoundError, PermissionError, OSError) as exc:
            raise RingUnavailable(f"cannot open shared memory {spec.name!r} ({exc}); "
                                  "client and server are probably on different machines") from None
        if shm.size < total or bytes(shm.buf[:NONCE_BYTES]) != spec.nonce:
            shm.close()
            raise RingUnavailable(f"shared memory {spec.name!r} is not the client's ring "
                                  "(size or nonce differ)")
        return cls(shm, spec, width, height, owner=False)

    # -- pixels ------------------------------------------------------------
    def slot_of(self, index: int) -> int:
        return index % self.spec.slot_count

    def _view(self, slot: int) -> np.ndarray:
        if not 0 <= slot < self.spec.slot_count:
            raise InputError(f"ring slot {slot} is outside 0..{self.spec.slot_count - 1}")
        start = self.spec.header_bytes + slot * self.spec.slot_bytes
        return np.ndarray((self.height, self.width, 3), np.uint8, self._shm.buf, start)

    def write(self, slot: int, frame: np.ndarray) -> None:
        self._view(slot)[...] = frame

    def read(self, slot: int) -> np.ndarray:
        """A copy: the slot is reused once the frame is handed back."""
        return self._view(slot).copy()

    def close(self) -> None:
        try:
            self._shm.close()
        except BufferError:
            pass  # a numpy view is still alive; the mapping goes when it does
        if self._owner:
            _CREATED_HERE.discard(self.spec.name)
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _attach(name: str) -> shared_memory.SharedMemory:
    # Python < 3.13 registers attached segments with the resource tracker, which would unlink
    # the client's ring when the server exits; only the creator may unlink it.
    try:
        return shared_memory.SharedMemory(name=name, create=False, track=False)  # 3.13+
    except TypeError:
        shm = shared_memory.SharedMemory(name=name, create=False)
        if name in _CREATED_HERE:
            return shm  # one registration for both ends: the creator's unlink clears it
        try:
            from multiprocessing import resource_tracker

            resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - platform without a tracker (Windows)
            pass
        return shm
