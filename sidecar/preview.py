"""Preview sessions: edited frames around the playhead of a media file (no gRPC here).

A session fixes (media, instruction, seed, preview size). `seek(frame)` yields the edited
frames of the chunk that holds `frame`.

Where a seek starts editing (the model is causal: chunk k is edited with the history of
chunks 0..k-1 of its stream): the region is cut into fixed segments of `segment_frames`
(one 9-frame first chunk + 3 chunks of 12 = 45 frames by default), and every preview stream
starts at a segment start. So a seek edits at most one segment (a few chunks before the
frame, never the whole clip), and the edit of a given frame does not depend on where the user
seeked before, which is what makes caching it sound. The price: each segment starts without
history, so a preview may differ slightly from a full render near segment starts.

- Chunks edited once are kept in an LRU cache keyed by (media identity, preview size,
  segment start, chunk first frame, instruction, seed, model, preview quality).
- Preview quality (`PreviewConfig.quality`): "full" edits like a render; "fast" uses the tiny
  VAE and the mask cache (sidecar/worker.py, fast_preview_editor_factory).
- A session that keeps seeking forward inside one segment continues its live stream instead
  of starting over.
- Latest seek wins: a newer seek in the same session makes older ones stop at their next
  step with SupersededError, before delivering anything more; their queued GPU work is
  cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import AsyncIterator, Callable, Protocol

import numpy as np

from liveedit.engine.config import DetailConfig
from liveedit.errors import InputError, Kind, LiveEditError
from liveedit.sidecar.outputs import check_path_length, cut
from liveedit.sidecar.validation import check_instruction, check_seed
from liveedit.sidecar.worker import (EditorFactory, GpuWorker, Priority, check_preview_quality_name,
                                     preview_editor_factory)

log = logging.getLogger(__name__)

FIRST_CHUNK_FRAMES = 9
CHUNK_FRAMES = 12


class UnknownSessionError(LiveEditError):
    """No preview session has this id (never opened, closed, or the server restarted)."""

    kind = Kind.NOT_FOUND


class SupersededError(LiveEditError):
    """A newer request replaced this one; its results are not delivered."""

    kind = Kind.SUPERSEDED


class MediaNotFoundError(LiveEditError):
    """The media file does not exist."""

    kind = Kind.NOT_FOUND


class MediaError(InputError):
    """The media file exists but cannot be read as video."""

    kind = Kind.INVALID


class FrameOutOfRangeError(InputError):
    """A frame number outside the session's region."""

    kind = Kind.OUT_OF_RANGE


# -- media -----------------------------------------------------------------------------


class FrameSource(Protocol):
    """What previews need from a media file."""

    frame_count: int
    frame_rate: Fraction
    width: int
    height: int

    def read(self, first: int, count: int) -> list[np.ndarray]: ...

    def close(self) -> None: ...


class MediaFrameSource:
    """Exact frames through sidecar/media/read.py (frame n is the media's n-th frame, its own
    colour matrix and range), scaled down to ``max_height`` for previews when it is smaller.
    Previews are shown at 8 bits, so frames are read as uint8 whatever the media's depth; the
    edit is delivered onto these frames at the preview's size (sidecar/delivery.py)."""

    def __init__(self, path: Path, max_height: int = 0):
        from liveedit.sidecar.media.read import MediaError as ReadError, probe

        self.path = path
        try:
            info = probe(path)
        except ReadError as exc:
            raise MediaError(str(exc)) from None
        self.frame_rate = info.frame_rate
        self.frame_count = info.frame_count
        if max_height and max_height < info.height:
            self.height = max(2, max_height - max_height % 2)
            self.width = max(2, round(info.width * self.height / info.height / 2) * 2)
        else:
            self.width, self.height = info.width, info.height
        self._scaled = (self.width, self.height) != (info.width, info.height)

    def read(self, first: int, count: int) -> list[np.ndarray]:
        from PIL import Image

        from liveedit.sidecar.media.read import MediaError as ReadError, read_frames

        try:
            frames = list(read_frames(self.path, first, count))
        except ReadError as exc:
            raise MediaError(str(exc)) from None
        if self._scaled:
            size = (self.width, self.height)
            frames = [np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) for f in frames]
        return frames

    def close(self) -> None:
        pass  # media_read opens the file per read and caches only its frame index


def open_media(path: Path, max_height: int = 0) -> FrameSource:
    check_path_length(path, "media path")
    if not path.is_absolute():
        raise InputError(f"media path {cut(path)!r} must be absolute (the server may run in another folder)")
    if not path.is_file():
        raise MediaNotFoundError(f"media {cut(path)!r} does not exist or is not a file; check the path")
    if not os.access(path, os.R_OK):
        raise MediaError(f"media {cut(path)!r} is not readable; check its permissions")
    return MediaFrameSource(path, max_height)


# -- cache ----------------------------------------------------------------------------


class ChunkCache:
    """LRU of edited chunks, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> list[np.ndarray] | None:
        frames = self._items.get(key)
        if frames is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return frames

    def put(self, key: tuple, frames: list[np.ndarray]) -> None:
        size = sum(f.nbytes for f in frames)
        if size > self.max_bytes:
            return
        if key in self._items:
            self.bytes -= sum(f.nbytes for f in self._items.pop(key))
        self._items[key] = frames
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= sum(f.nbytes for f in old)

    def __len__(self) -> int:
        return len(self._items)


# -- sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewConfig:
    chunks_per_segment: int = 4  # 9 + 3*12 = 45 frames: under 2 s of video at 24 fps
    cache_bytes: int = 1 << 30
    max_sessions: int = 64
    quality: str = "full"  # "full" or "fast" (sidecar/worker.py PREVIEW_QUALITIES)

    def __post_init__(self):
        check_preview_quality_name(self.quality)

    @property
    def segment_frames(self) -> int:
        return FIRST_CHUNK_FRAMES + CHUNK_FRAMES * (self.chunks_per_segment - 1)


@dataclass(frozen=True)
class PreviewFrameOut:
    frame: int
    pixels: np.ndarray
    cached: bool
    seek_frame: int


@dataclass
class _LiveStream:
    segment_start: int
    next_frame: int  # absolute source frame the stream expects next (always a chunk start)
    stream: object


@dataclass
class PreviewSession:
    id: str
    media_path: Path
    media_key: tuple
    source: FrameSource
    instruction: str
    seed: int
    region_first: int
    region_count: int
    generation: int = 0
    live: _LiveStream | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seek_owner: object = None

    @property
    def width(self) -> int:
        return self.source.width

    @property
    def height(self) -> int:
        return self.source.height

    @property
    def region_end(self) -> int:
        return self.region_first + self.region_count


def chunk_bounds(segment_start: int, segment_frames: int, offset: int) -> tuple[int, int]:
    """(first, end) of the chunk holding `offset` frames after a segment start, absolute."""
    if offset < FIRST_CHUNK_FRAMES:
        return segment_start, segment_start + FIRST_CHUNK_FRAMES
    k = (offset - FIRST_CHUNK_FRAMES) // CHUNK_FRAMES
    first = segment_start + FIRST_CHUNK_FRAMES + k * CHUNK_FRAMES
    return first, first + CHUNK_FRAMES


class PreviewSessions:
    def __init__(self, worker: GpuWorker, *, model_key: str, config: PreviewConfig = PreviewConfig(),
                 open_media: Callable[[Path, int], FrameSource] = open_media,
                 editor_factory: EditorFactory | None = None, detail=None):
        self.worker = worker
        # How edits are delivered at the preview's size (a DetailConfig; None = "transfer"); the
        # worker's factory (full quality) must deliver the same way: the Sidecar makes both.
        self.detail = detail or DetailConfig()
        # None: the quality's own (fast → tiny VAE + mask cache, full → the worker's factory)
        self.editor_factory = editor_factory or preview_editor_factory(config.quality, self.detail)
        self.model_key = model_key
        self.config = config
        self.cache = ChunkCache(config.cache_bytes)
        self._open_media = open_media
        self._sessions: OrderedDict[str, PreviewSession] = OrderedDict()

    # -- lifetime ----------------------------------------------------------
    def open(self, media_path: str | Path, instruction: str, seed: int = 0, *, max_height: int = 0,
             region_first: int = 0, region_count: int = 0) -> PreviewSession:
        instruction = check_instruction(instruction)
        check_seed(seed)
        if max_height < 0 or max_height > 8192:
            raise InputError(f"max_height {max_height} must be 0 (source size) to 8192")
        path = Path(media_path)
        source = self._open_media(path, max_height)
        try:
            if region_first >= source.frame_count:
                raise FrameOutOfRangeError(
                    f"region starts at frame {region_first} but {path} has {source.frame_count} frames")
            available = source.frame_count - region_first
            count = available if region_count == 0 else region_count
            if count > available:
                raise FrameOutOfRangeError(
                    f"region {region_first}..{region_first + count - 1} runs past the last frame "
                    f"({source.frame_count - 1}) of {path}; shorten it")
            stat = path.stat()
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        except BaseException:
            source.close()
            raise
        session = PreviewSession(secrets.token_hex(8), path, key, source, instruction, seed,
                                 region_first, count)
        self._sessions[session.id] = session
        while len(self._sessions) > self.config.max_sessions:  # forgotten sessions
            self.close(next(iter(self._sessions)))
        log.info("preview %s opened on %s frames %d..%d", session.id, cut(path), region_first,
                 region_first + count - 1)
        return session

    def get(self, session_id: str) -> PreviewSession:
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSessionError(
                f"no preview session {session_id[:64]!r}; open one with OpenSession (sessions end "
                "when closed or when the server restarts)") from None

    def close(self, session_id: str) -> None:
        session = self.get(session_id)
        del self._sessions[session_id]
        session.generation += 1  # any seek still running stops
        self._drop_live(session)
        session.source.close()

    def close_all(self) -> None:
        for session_id in list(self._sessions):
            self.close(session_id)

    def __len__(self) -> int:
        return len(self._sessions)

    # -- seeking -----------------------------------------------------------
    async def seek(self, session_id: str, frame: int) -> AsyncIterator[PreviewFrameOut]:
        session = self.get(session_id)
        if not session.region_first <= frame < session.region_end:
            raise FrameOutOfRangeError(
                f"frame {frame} is outside the session's region {session.region_first}.."
                f"{session.region_end - 1}; seek inside it")
        session.generation += 1
        mine = session.generation
        if session.seek_owner is not None:  # older seek's queued GPU work is now pointless
            self.worker.cancel_owned(session.seek_owner)
        owner = session.seek_owner = object()
        seg = self.config.segment_frames
        segment_start = session.region_first + (frame - session.region_first) // seg * seg
        segment_end = min(segment_start + seg, session.region_end)
        target_first, target_end = chunk_bounds(segment_start, seg, frame - segment_start)
        target_end = min(target_end, segment_end)

        def check() -> None:
            if session.generation != mine:
                raise SupersededError(f"seek to frame {frame} was superseded by a newer seek")

        frames = self.cache.get(self._key(session, segment_start, target_first))
        cached = frames is not None
        if frames is None:
            async with session.lock:
                check()
                frames = await self._edit_through(session, segment_start, segment_end, target_first,
                                                  owner, check)
        for offset, pixels in enumerate(frames):
            check()
            yield PreviewFrameOut(target_first + offset, pixels, cached, frame)

    def _key(self, session: PreviewSession, segment_start: int, chunk_first: int) -> tuple:
        return (session.media_key, session.width, session.height, segment_start, chunk_first,
                session.instruction, session.seed, self.model_key, self.config.quality,
                tuple(sorted(self.detail.pixel_settings().items())))

    async def _edit_through(self, session: PreviewSession, segment_start: int, segment_end: int,
                            target_first: int, owner: object, check: Callable[[], None]
                            ) -> list[np.ndarray]:
        """Streams the segment from its start (or from where the live stream stopped) through
        the target chunk, caching every chunk; returns the target chunk's frames."""
        live = session.live
        if live is None or live.segment_start != segment_start or live.next_frame > target_first:
            self._drop_live(session)
            live = _LiveStream(segment_start, segment_start,
                               self.worker.open_stream(session.instruction, session.seed,
                                                       priority=Priority.PREVIEW,
                                                       editor_factory=self.editor_factory))
        session.live = None  # only a stream that finished its chunks cleanly is reused
        seg = self.config.segment_frames
        while True:
            first, end = chunk_bounds(segment_start, seg, live.next_frame - segment_start)
            end = min(end, segment_end)
            sources = await asyncio.to_thread(session.source.read, first, end - first)
            check()
            last = end == segment_end
            try:
                edited = await live.stream.push_many(sources, finish=last, owner=owner)
            except asyncio.CancelledError:
                live.stream.release()
                check()  # the worker dropped queued work because a newer seek came: say so
                raise
            except BaseException:
                live.stream.release()
                raise
            if len(edited) != end - first:
                live.stream.release()
                raise LiveEditError(f"the editor returned {len(edited)} frames for chunk "
                                    f"{first}..{end - 1}; expected {end - first}")
            self.cache.put(self._key(session, segment_start, first), edited)
            live.next_frame = end
            if first == target_first:
                if last:
                    live.stream.release()  # a finished stream cannot continue
                else:
                    session.live = live
                return edited
            check()

    def _drop_live(self, session: PreviewSession) -> None:
        if session.live is not None:
            session.live.stream.release()
            session.live = None
