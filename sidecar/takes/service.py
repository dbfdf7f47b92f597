"""Takes: exact, order-independent edited frames for editor plug-ins (no HTTP here; the bridge's
routes are sidecar/api/takes.py, the OpenFX plug-in in clients/ofx/ is the client).

A take is one edit of one stretch of source frames: instruction, seed and settings (quality,
mask cache, input colour, and the sidecar's detail setting) on the loaded model. Its frames are
numbered from the edit start (0). The edit of frame i is the causal stream from frame 0 through
the chunk that holds i (9 frames for the first chunk, 12 after: engine/editor.py), the last
chunk ending early when the clip does; so it depends on exactly those source frames and nothing
else, whichever order or thread asks for it.

Keys. The client hashes each source frame (16 bytes, any content hash) and sends the hashes
from frame 0 through the end of frame i's chunk. The sidecar chains them:
``chain[0] = H(take key, h0)``, ``chain[j] = H(chain[j-1], hj)``; the take key hashes the
instruction, seed, settings (detail delivery included) and the model's identity. The client's
frame hashes cover each frame's size, depth, channels and premultiplication as well as its
pixels, so sources sent at another depth give other keys. An edited chunk is stored under the
chain hash of its last frame, which therefore names everything its pixels depend on: a new
instruction, an upstream grade or one changed frame k gives new keys from k's chunk on,
and the frames before it keep theirs. A stale edit is never served because no key can
refer to it.

Editing. Each take keeps one live stream (a StreamingEditor on the GPU worker, at LIVE
priority) and the chain hashes of the chunks pushed into it. A frame that is not stored
becomes a target: the take's runner continues the live stream when it lies on the target's
chain, else starts over from frame 0. Starting over replays the chunks before the change:
their frames are already stored (and are not replaced), but the causal state after them
has to be rebuilt (the KV window is 6 GB at 480x832, too large to snapshot at every chunk).
Replayed frames are counted apart from edited ones in `stats()`. Source frames the runner
needs are asked of the client (`FrameWaiting.need`, at most MAX_NEED at a time) and kept
in a bounded store; the client uploads them with `add_sources`.

Precision. Takes edit through sidecar/delivery.py like every other edit in the sidecar: the
editor gets each source frame at the host's precision (pixels.decode_source: 8-bit or 16-bit
codes as sent, float32 for float hosts, scene-linear input and premultiplied RGBA), shows the
model its 8-bit picture and, with the sidecar's detail setting (`liveedit serve --detail`,
default "transfer"), delivers source + upscale(edited - seen) at the source's size and type;
where the edit changed nothing the host gets its own values back. Detail "off" delivers the
model picture scaled up, as uint8. Preview-quality takes deliver the same way (as preview
sessions do: only the VAE differs).

Storage: edited chunks (RGB at the source size in the type the editor delivered: uint8,
uint16 or float32, plus the source alpha at the host's depth) in memory (LRU, bounded in
bytes) and written through to a disk cache in the sidecar's cache folder (LRU by last use,
bounded in bytes), so a restart of the sidecar keeps finished takes. pixels.encode_output
converts a stored frame to whatever depth a request asks for.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from liveedit import __version__
from liveedit.engine.config import DetailConfig, MaskCacheConfig
from liveedit.errors import InputError, Kind, LiveEditError
from liveedit.sidecar.takes import pixels as take_pixels
from liveedit.sidecar.takes.pixels import PixelFormat
from liveedit.sidecar.takes.store import HASH_BYTES, ChunkResult, ChunkStore, SourceFrame, _Lru
from liveedit.sidecar.validation import check_instruction, check_seed

log = logging.getLogger(__name__)

# Bump when what a key names changes: old disk entries then never match. 2: detail delivery
# (the key names the detail setting; chunks hold the host's precision, not uint8).
TAKE_FORMAT = 2
FIRST_CHUNK_FRAMES = 9  # engine/editor.py's chunks (a test holds them equal; importing it here would
CHUNK_FRAMES = 12  # load torch into every importer of this module)
QUALITIES = ("full", "preview")
MAX_NEED = 24  # source frames asked for at once (two chunks): bounds the source store's working set
MAX_TAKE_FRAMES = 100_000  # hashes in one request (an hour at 24 fps is 86,400)
TARGET_TTL_SECONDS = 30.0  # a target nobody asked about for this long is abandoned
MAX_TAKES = 64
MAX_WAIT_SECONDS = 10.0


class TakeError(LiveEditError):
    """A take cannot be edited as asked (the message says why and what to do)."""

    kind = Kind.FAILED_PRECONDITION


class TakeUnavailableError(LiveEditError):
    """The sidecar cannot edit right now (GPU out of memory, shutting down): try again later."""

    kind = Kind.UNAVAILABLE


# -- what a take is -----------------------------------------------------------------------


@dataclass(frozen=True)
class TakeSettings:
    instruction: str
    seed: int = 0
    quality: str = "full"  # "full": edited like a render; "preview": the tiny VAE both ways
    mask_cache: bool = False
    colour: str = "display"  # how host values map to the model's 8-bit RGB (pixels.py)
    # How the edit is delivered at the source's size and precision: the sidecar's --detail,
    # not the client's to choose (TakeService sets it on every request's settings).
    detail: DetailConfig = DetailConfig()

    @classmethod
    def from_dict(cls, data) -> "TakeSettings":
        if not isinstance(data, dict):
            raise InputError('"take" must be an object: {"instruction": str, "seed": int, "quality": '
                             '"full"|"preview", "mask_cache": bool, "colour": "display"|"linear"}')
        unknown = set(data) - {"instruction", "seed", "quality", "mask_cache", "colour"}
        if unknown:
            raise InputError(f"unknown take settings {sorted(unknown)}; use instruction, seed, quality, "
                             "mask_cache, colour")
        instruction = data.get("instruction")
        if not isinstance(instruction, str):
            raise InputError("take instruction must be text")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise InputError(f"take seed must be a whole number; got {seed!r}")
        quality = data.get("quality", "full")
        if quality not in QUALITIES:
            raise InputError(f"take quality {quality!r} is not one of {', '.join(QUALITIES)}")
        mask_cache = data.get("mask_cache", False)
        if not isinstance(mask_cache, bool):
            raise InputError("take mask_cache must be true or false")
        colour = take_pixels.check_colour(data.get("colour", "display"))
        return cls(check_instruction(instruction, "take instruction"), check_seed(seed, "take seed"),
                   quality, mask_cache, colour)

    def key(self, model_key: str) -> bytes:
        blob = json.dumps({"format": TAKE_FORMAT, "model": model_key, "instruction": self.instruction,
                           "seed": self.seed, "quality": self.quality, "mask_cache": self.mask_cache,
                           "colour": self.colour, "detail": self.detail.pixel_settings()}, sort_keys=True).encode()
        return hashlib.blake2b(blob, digest_size=HASH_BYTES).digest()


def chain_hashes(take_key: bytes, frame_hashes) -> list[bytes]:
    """chain[j] names the take and every source frame 0..j."""
    out, previous = [], take_key
    for h in frame_hashes:
        previous = hashlib.blake2b(previous + h, digest_size=HASH_BYTES).digest()
        out.append(previous)
    return out


def parse_hash(text, what: str = "frame hash") -> bytes:
    if not isinstance(text, str) or len(text) != 2 * HASH_BYTES:
        raise InputError(f"{what} must be {2 * HASH_BYTES} hex digits; got {text!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not hexadecimal") from None


def chunk_of(frame: int) -> tuple[int, int, int]:
    """(chunk index, its first frame, its last frame if the clip goes on) of a take frame."""
    if frame < FIRST_CHUNK_FRAMES:
        return 0, 0, FIRST_CHUNK_FRAMES - 1
    k = 1 + (frame - FIRST_CHUNK_FRAMES) // CHUNK_FRAMES
    first = FIRST_CHUNK_FRAMES + (k - 1) * CHUNK_FRAMES
    return k, first, first + CHUNK_FRAMES - 1


def chunk_span(k: int) -> tuple[int, int]:
    """(first, last) frame of chunk k if the clip goes on."""
    if k == 0:
        return 0, FIRST_CHUNK_FRAMES - 1
    first = FIRST_CHUNK_FRAMES + (k - 1) * CHUNK_FRAMES
    return first, first + CHUNK_FRAMES - 1


# -- requests and answers -------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRequest:
    settings: TakeSettings
    frame: int  # take frame: 0 = the edit start
    hashes: tuple[bytes, ...]  # source frames 0 .. the end of frame's chunk (or the clip's end)
    fmt: PixelFormat
    window: tuple[int, int, int, int]  # pixels of the frame, y up from the bottom row (OpenFX)
    wait_seconds: float = 0.0
    alpha_from_source: bool = False  # the client fills alpha from its own source frame
    accept_rgb: bool = False  # the client reads pixels.encode_output's "rgb" encoding


@dataclass
class SourceUpload:
    hash: bytes
    width: int
    height: int
    fmt: PixelFormat
    premultiplied: bool
    data: memoryview  # rows bottom-up, tightly packed


@dataclass
class FrameReady:
    meta: dict  # pixels.encode_output's description
    parts: list  # its parts: numpy arrays or bytes (pixels.payload_bytes)
    status: dict


@dataclass
class FrameWaiting:
    need: list[int]  # take frames to upload first; empty: being edited, ask again
    status: dict


# -- the take service -------------------------------------------------------------------------


@dataclass
class _Target:
    """A chunk some client waits for, on one chain."""

    key: bytes  # chain hash at the chunk's last frame
    hashes: tuple[bytes, ...]  # source frames 0..last
    chain: list[bytes]
    chunk: int
    last: int  # the chunk's last frame (the clip's end when it ends early)
    asked: float = field(default_factory=time.monotonic)
    error: BaseException | None = None

    @property
    def partial(self) -> bool:
        return self.last < chunk_span(self.chunk)[1]

    def span(self, k: int) -> tuple[int, int]:
        first, last = chunk_span(k)
        return first, min(last, self.last)


class _Take:
    def __init__(self, key: bytes, settings: TakeSettings):
        self.key = key
        self.settings = settings
        self.stream = None  # WorkerStream
        self.done: list[bytes] = []  # chain hash at the end of each chunk pushed into the stream
        self.finished = False  # the stream's last chunk was a clip's short last chunk
        self.frame_size: tuple[int, int] | None = None
        self.frame_dtype: np.dtype | None = None  # one editor stream takes one frame type
        self.targets: dict[bytes, _Target] = {}
        self.runner: asyncio.Task | None = None
        self.busy = False  # a chunk of this take is on the worker


# settings -> EditorFactory(models, instruction, seed)
EditorFactoryFor = Callable[[TakeSettings], Callable]


def editor_factory_for(settings: TakeSettings):
    """The editors of a take, made where every edit in the sidecar is (sidecar/delivery.py),
    delivering with the settings' detail."""
    from liveedit.sidecar.delivery import editor_factory

    return editor_factory(settings.detail, preview_vae=settings.quality == "preview",
                          mask_cache=MaskCacheConfig() if settings.mask_cache else None)


@dataclass
class TakeLimits:
    memory_bytes: int = 2 * 2**30  # edited chunks kept in memory
    disk_bytes: int = 20 * 2**30  # the disk cache
    source_bytes: int = 2 * 2**30  # uploaded source frames waiting to be edited (and kept for replays)
    live_streams: int = 2  # takes with a stream open on the GPU at once


class TakeService:
    """Everything about takes except transport. Runs on the sidecar's event loop."""

    def __init__(self, worker, *, model_key: str, random_weights: bool, model_description: str,
                 preview_available: bool, cache_dir: Path | None = None, limits: TakeLimits | None = None,
                 editor_factory: EditorFactoryFor = editor_factory_for, detail: DetailConfig | None = None):
        self.worker = worker
        self.model_key = f"{model_key}|{__version__}"
        self.random_weights = bool(random_weights)
        self.model_description = model_description
        self.preview_available = bool(preview_available)
        self.limits = limits or TakeLimits()
        self.editor_factory = editor_factory
        self.detail = detail or DetailConfig()
        self.store = ChunkStore(self.limits.memory_bytes, cache_dir, self.limits.disk_bytes)
        self.sources = _Lru(self.limits.source_bytes)
        self._takes: collections.OrderedDict[bytes, _Take] = collections.OrderedDict()
        self._live: collections.OrderedDict[bytes, _Take] = collections.OrderedDict()  # takes with a stream
        self._change = asyncio.Event()
        self._closed = False
        self.edited_frames = 0  # frames edited and stored as new results
        self.replayed_frames = 0  # frames re-run only to rebuild a stream's causal state
        self.replay_mismatches = 0  # replayed chunks whose pixels differ from the stored ones
        self.chunks_edited = 0
        self.edit_seconds = 0.0  # wall time of the worker's chunk edits (edited and replayed)
        self.source_frames = 0  # source frames received

    # -- public ---------------------------------------------------------------------------
    def info(self) -> dict:
        return {"first_chunk_frames": FIRST_CHUNK_FRAMES, "chunk_frames": CHUNK_FRAMES,
                "qualities": [q for q in QUALITIES if q != "preview" or self.preview_available],
                "colours": list(take_pixels.COLOURS), "depths": list(take_pixels.DEPTHS),
                "max_need": MAX_NEED, "random_weights": self.random_weights, "model": self.model_description,
                "detail": self.detail.pixel_settings()}

    def stats(self) -> dict:
        return {"edited_frames": self.edited_frames, "replayed_frames": self.replayed_frames,
                "replay_mismatches": self.replay_mismatches, "chunks_edited": self.chunks_edited,
                "edit_seconds": round(self.edit_seconds, 6),
                "memory_hits": self.store.memory_hits, "disk_hits": self.store.disk_hits,
                "source_frames": self.source_frames, "takes": len(self._takes), "live_streams": len(self._live),
                "memory_bytes": self.store.memory.bytes, "disk_bytes": self.store.disk_total,
                "source_bytes": self.sources.bytes}

    async def frame(self, request: FrameRequest) -> FrameReady | FrameWaiting:
        if self._closed:
            raise TakeUnavailableError("the sidecar is shutting down; render again once it is back")
        settings = self._with_detail(request.settings)
        if settings.quality == "preview" and not self.preview_available:
            raise TakeError("preview quality needs the tiny preview VAE (taew2_1.pth in the sidecar's --weights "
                            "folder); choose full quality or add the file and restart the sidecar")
        if not 0 <= request.frame < MAX_TAKE_FRAMES:
            raise InputError(f"take frame {request.frame} is outside 0..{MAX_TAKE_FRAMES - 1}")
        k, first, last = chunk_of(request.frame)
        if len(request.hashes) <= request.frame:
            raise InputError(f"frame {request.frame} needs the hashes of source frames 0..{last} (0..{request.frame} "
                             f"at least, when the clip ends earlier); got {len(request.hashes)}")
        last = min(last, len(request.hashes) - 1)
        hashes = tuple(request.hashes[: last + 1])
        take = self._take(settings)
        chain = chain_hashes(take.key, hashes)
        key = chain[last]
        deadline = time.monotonic() + max(0.0, min(request.wait_seconds, MAX_WAIT_SECONDS))
        while True:
            result = await self.store.lookup(key)
            if result is not None:
                take.targets.pop(key, None)
                return await self._ready(result, request, settings, request.frame - first, chain)
            target = take.targets.get(key)
            if target is not None and target.error is not None:
                del take.targets[key]
                raise target.error
            if target is None:
                target = take.targets[key] = _Target(key, hashes, chain, k, last)
            target.asked = time.monotonic()
            self._kick(take)
            need = self._needed(take, target)
            status = self._status(take, chain, editing=True)
            remaining = deadline - time.monotonic()
            if need or remaining <= 0:
                return FrameWaiting(need, status)
            await self._wait_change(remaining)

    async def add_sources(self, settings: TakeSettings, uploads: list[SourceUpload]) -> dict:
        """Decode and keep uploaded source frames (the colour setting decides the decoding)."""
        decoded = await asyncio.to_thread(
            lambda: [(u.hash, SourceFrame(*take_pixels.decode_source(u.data, u.width, u.height, u.fmt,
                                                                      settings.colour, u.premultiplied),
                                          u.premultiplied)) for u in uploads])
        for h, source in decoded:
            self.sources.put((h, settings.colour), source)
        self.source_frames += len(decoded)
        self._pulse()
        return {"stored": len(decoded)}

    async def clear(self) -> dict:
        """Forget every take, edited frame (memory and disk) and source frame."""
        for take in list(self._takes.values()):
            await self._drop_take(take)
        removed = await self.store.clear()
        removed["source_frames"] = self.sources.clear()
        self._pulse()
        return removed

    async def close(self) -> None:
        self._closed = True
        for take in list(self._takes.values()):
            await self._drop_take(take)
        await self.store.flush()

    # -- internals ----------------------------------------------------------------------------
    def _with_detail(self, settings: TakeSettings) -> TakeSettings:
        return settings if settings.detail == self.detail else replace(settings, detail=self.detail)

    def _take(self, settings: TakeSettings) -> _Take:
        key = settings.key(self.model_key)
        take = self._takes.get(key)
        if take is None:
            take = self._takes[key] = _Take(key, settings)
            for old in list(self._takes.values()):
                if len(self._takes) <= MAX_TAKES:
                    break
                if old is not take and not old.targets and old.runner is None:
                    self._release_stream(old)
                    del self._takes[old.key]
        else:
            self._takes.move_to_end(key)
        return take

    async def _drop_take(self, take: _Take) -> None:
        if take.runner is not None:
            take.runner.cancel()
            try:
                await take.runner
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being dropped
                pass
        take.targets.clear()
        self._release_stream(take)
        self._takes.pop(take.key, None)

    def _pulse(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    async def _wait_change(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._change.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _kick(self, take: _Take) -> None:
        if take.runner is None or take.runner.done():
            take.runner = asyncio.ensure_future(self._run(take))

    def _continuation(self, take: _Take, target: _Target) -> int:
        """The first chunk to push for target: where the live stream stands when it lies on
        the target's chain (chain hashes are cumulative: the last one says it all), else 0."""
        p = len(take.done)
        if take.stream is None or take.finished or p == 0 or p > target.chunk:
            return 0
        return p if take.done[-1] == target.chain[target.span(p - 1)[1]] else 0

    def _has_source(self, take: _Take, h: bytes) -> bool:
        return (h, take.settings.colour) in self.sources

    def _needed(self, take: _Take, target: _Target) -> list[int]:
        first = chunk_span(self._continuation(take, target))[0]
        need = []
        for i in range(first, target.last + 1):
            if not self._has_source(take, target.hashes[i]):
                need.append(i)
                if len(need) == MAX_NEED:
                    break
        return need

    def _status(self, take: _Take, chain: list[bytes], editing: bool) -> dict:
        ready, k = 0, 0
        while True:
            first, last = chunk_span(k)
            last = min(last, len(chain) - 1)
            if first > last or not self.store.contains(chain[last]):
                break
            ready, k = last + 1, k + 1
        return {"frames_ready": ready, "frames": len(chain), "editing": editing and take.runner is not None,
                "random_weights": self.random_weights}

    async def _ready(self, result: ChunkResult, request: FrameRequest, settings: TakeSettings, offset: int,
                     chain) -> FrameReady:
        frame, alpha = result.frames[offset], result.alphas[offset]
        premultiplied = result.premultiplied[offset]
        meta, parts = await asyncio.to_thread(take_pixels.encode_output, frame, alpha, request.fmt,
                                              settings.colour, request.window, premultiplied,
                                              request.alpha_from_source, request.accept_rgb)
        meta["frame"] = request.frame
        meta["premultiplied"] = premultiplied
        take = self._takes.get(settings.key(self.model_key))
        status = self._status(take, chain, editing=False) if take is not None else {}
        return FrameReady(meta, parts, status)

    # -- the runner: one per take, edits chunk after chunk on the GPU worker ------------------
    async def _run(self, take: _Take) -> None:
        try:
            while True:
                now = time.monotonic()
                for key, target in list(take.targets.items()):
                    if now - target.asked > TARGET_TTL_SECONDS or (target.error is None and self.store.contains(key)):
                        del take.targets[key]
                waiting = [t for t in take.targets.values() if t.error is None]
                if not waiting:
                    return
                plan = self._plan(take, waiting)
                if plan is None or not self._stream_slot(take, plan[2]):
                    await self._wait_change(1.0)  # sources or a stream slot may come
                    continue
                target, k, restart = plan
                try:
                    await self._edit_chunk(take, target, k, restart)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the waiting request reports it
                    target.error = _client_error(exc)
                    self._release_stream(take)
                self._pulse()
        finally:
            take.runner = None
            self._pulse()

    def _plan(self, take: _Take, targets: list[_Target]) -> tuple[_Target, int, bool] | None:
        """Which target to advance and from which chunk: ones that continue the live stream
        first (nearest chunk first), then ones that start it over (latest asked first)."""
        best, best_rank = None, None
        for target in targets:
            k = self._continuation(take, target)
            restart = k == 0 and (take.stream is not None and (bool(take.done) or take.finished))
            first, last = target.span(k)
            if not all(self._has_source(take, target.hashes[i]) for i in range(first, last + 1)):
                continue
            rank = (restart, -target.asked if restart else target.chunk)
            if best_rank is None or rank < best_rank:
                best, best_rank = (target, k, restart), rank
        return best

    def _stream_slot(self, take: _Take, restart: bool) -> bool:
        """A live stream for this take (at most `live_streams` takes hold one): an idle take's
        stream is released to make room; False when every slot is busy."""
        if take.stream is not None:
            self._live.move_to_end(take.key)
            return True
        while len(self._live) >= self.limits.live_streams:
            idle = next((t for t in self._live.values() if not t.busy and not t.targets), None)
            if idle is None:
                return False
            self._release_stream(idle)
        return True

    def _open_stream(self, take: _Take) -> None:
        from liveedit.sidecar.worker import Priority

        self._release_stream(take)
        s = take.settings
        take.stream = self.worker.open_stream(s.instruction, s.seed, priority=Priority.LIVE,
                                              editor_factory=self.editor_factory(s))
        take.done, take.finished, take.frame_size, take.frame_dtype = [], False, None, None
        self._live[take.key] = take

    def _release_stream(self, take: _Take) -> None:
        if take.stream is not None:
            take.stream.release()
        take.stream = None
        take.done, take.finished, take.frame_size, take.frame_dtype = [], False, None, None
        self._live.pop(take.key, None)

    async def _edit_chunk(self, take: _Take, target: _Target, k: int, restart: bool) -> None:
        if restart or take.stream is None:
            self._open_stream(take)
        first, last = target.span(k)
        sources = [self.sources.get((target.hashes[i], take.settings.colour)) for i in range(first, last + 1)]
        if any(s is None for s in sources):
            return  # evicted meanwhile: the next request asks for it again
        for offset, source in enumerate(sources):
            size, dtype = source.rgb.shape[:2], source.rgb.dtype
            if take.frame_size is None:
                take.frame_size, take.frame_dtype = size, dtype
            elif size != take.frame_size:
                raise TakeError(f"source frame {first + offset} is {size[1]}x{size[0]} but the take's earlier "
                                f"frames are {take.frame_size[1]}x{take.frame_size[0]}; a take keeps one frame size "
                                "(start a new one at the change with the edit start parameter)")
            elif dtype != take.frame_dtype:
                raise TakeError(f"source frame {first + offset} arrived with another bit depth or premultiplication "
                                f"({dtype}) than the take's earlier frames ({take.frame_dtype}); a take keeps one "
                                "pixel format (start a new one at the change with the edit start parameter)")
        partial = last < chunk_span(k)[1]
        take.busy = True
        started = time.perf_counter()
        try:
            edited = await take.stream.push_many([s.rgb for s in sources], finish=partial)
        finally:
            take.busy = False
            self.edit_seconds += time.perf_counter() - started
        if len(edited) != len(sources):
            raise TakeError(f"the editor returned {len(edited)} frames for a chunk of {len(sources)}")
        key = target.chain[last]
        take.done.append(key)
        take.finished = partial
        if self.store.contains(key):
            self.replayed_frames += len(edited)
            stored = self.store.memory.get(key)
            if stored is not None and not all(np.array_equal(a, b) for a, b in zip(stored.frames, edited)):
                self.replay_mismatches += 1
                log.warning("takes: a replayed chunk differs from its stored edit (non-deterministic kernels?); "
                            "the stored frames stay")
            return
        self.store.put(ChunkResult(key, list(edited), [s.alpha for s in sources], [s.premultiplied for s in sources]))
        self.edited_frames += len(edited)
        self.chunks_edited += 1


def _client_error(exc: BaseException) -> LiveEditError:
    """What a waiting client is told. GPU memory and shutdown are 'try later'; our errors keep
    their message; anything else is logged here and reported without internals."""
    name = type(exc).__name__
    if name == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return TakeUnavailableError("the GPU ran out of memory while editing; close other GPU programs or "
                                    "choose preview quality, then render again")
    if name == "WorkerClosedError":
        return TakeUnavailableError("the sidecar is shutting down; render again once it is back")
    if isinstance(exc, LiveEditError):
        return exc
    log.error("takes: editing failed", exc_info=exc)
    return TakeUnavailableError(f"editing failed inside the sidecar ({name}); see the sidecar's log")


def take_service_for(sidecar, *, cache_dir: Path | None, limits: TakeLimits | None = None) -> TakeService:
    """The take service of a running `Sidecar` (sidecar/api/server.py): its GPU worker, model and
    detail setting (the one its previews and edit streams deliver with)."""
    models = sidecar.worker.models
    card = sidecar.card
    dtype = str(getattr(models, "dtype", "")).replace("torch.", "")
    return TakeService(sidecar.worker, model_key=f"{card.identity}|{card.device}|{dtype}",
                       random_weights=card.random_weights, model_description=card.description,
                       preview_available=getattr(models, "tiny_vae", None) is not None,
                       cache_dir=cache_dir, limits=limits, detail=sidecar.detail)
