"""The single GPU worker: one thread owns the models and runs every piece of GPU work.

Why one thread: the models (and their CUDA context) are shared by every stream, preview and
render; running them from one thread keeps GPU memory predictable and makes priorities
meaningful. Callers submit small pieces of work (one frame push, one chunk) with a priority;
preview work is taken before live streams, and both before batch renders, so a render yields
the GPU to the preview at every chunk boundary.

From asyncio: `await worker.run(fn, priority=...)` never blocks the event loop; cancelling the
await cancels the work if it has not started (work that has started finishes and its result
is dropped). From other threads (render executors): `worker.run_blocking(...)`.

Per-stream state (a StreamingEditor with its KV caches) lives in `WorkerStream` objects whose
every call runs on the worker thread; `release()` drops that state and any queued work of the
stream, which the server does when a client goes away.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Protocol

import numpy as np

from liveedit.errors import Kind, LiveEditError

log = logging.getLogger(__name__)


class Priority(IntEnum):
    """Lower runs first."""

    CONTROL = -1  # releasing state: frees memory before anything else allocates
    PREVIEW = 0
    LIVE = 1  # Edit streams from NLE plug-ins
    BATCH = 2  # render jobs

    @classmethod
    def of(cls, value: "Priority | str | int") -> "Priority":
        if isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown priority {value!r}; use preview, live or batch") from None
        return cls(value)


class WorkerClosedError(LiveEditError):
    """The worker is shutting down and takes no new work."""

    kind = Kind.UNAVAILABLE


class Editor(Protocol):
    """What the worker needs of liveedit.engine.editor.StreamingEditor."""

    stats: list

    def push(self, frame: np.ndarray) -> list[np.ndarray]: ...

    def finish(self) -> list[np.ndarray]: ...


# (models, instruction, seed) -> Editor. The default builds a StreamingEditor; tests may pass
# a simpler one with the same chunking.
EditorFactory = Callable[[Any, str, int], Editor]


def streaming_editor_factory(models, instruction: str, seed: int) -> Editor:
    from liveedit.engine.editor import StreamingEditor

    return StreamingEditor(models, instruction=instruction, seed=seed)


# -- preview quality ---------------------------------------------------------------------
# "full": previews are edited exactly like renders. "fast": the tiny VAE (taew2_1) both ways
# and the mask cache at the reference settings: about twice the frame rate on an H100
# (docs/benchmarks.md) at a visibly lower quality. Only preview sessions ever use "fast";
# edit streams and renders always run at full quality.
PREVIEW_QUALITIES = ("full", "fast")


class PreviewQualityError(LiveEditError):
    """The preview quality asked for cannot be served with the loaded models."""

    kind = Kind.FAILED_PRECONDITION


def fast_preview_editor_factory(models, instruction: str, seed: int) -> Editor:
    from liveedit.engine.editor import StreamingEditor
    from liveedit.engine.mask_cache import MaskCacheConfig

    return StreamingEditor(models, instruction=instruction, seed=seed, preview_vae=True,
                           mask_cache=MaskCacheConfig())


def preview_editor_factory(quality: str) -> EditorFactory | None:
    """The factory of preview streams for a quality; None = the worker's own (full quality)."""
    check_preview_quality_name(quality)
    return fast_preview_editor_factory if quality == "fast" else None


def check_preview_quality_name(quality: str) -> str:
    if quality not in PREVIEW_QUALITIES:
        raise PreviewQualityError(f"unknown preview quality {quality!r}; use one of {', '.join(PREVIEW_QUALITIES)}")
    return quality


def choose_preview_quality(models, requested: str | None = None) -> str:
    """`requested` if the models can serve it; None picks fast when the tiny VAE is loaded,
    else full. Fast without the tiny VAE is refused rather than quietly served at full."""
    has_tiny_vae = getattr(models, "tiny_vae", None) is not None
    if requested is None:
        return "fast" if has_tiny_vae else "full"
    check_preview_quality_name(requested)
    if requested == "fast" and not has_tiny_vae:
        raise PreviewQualityError(
            "fast previews need the tiny preview VAE, which is not loaded: put taew2_1.pth in the "
            "--weights folder, or serve with --preview-quality full")
    return requested


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    fn: Callable[[Any], Any] = field(compare=False)
    future: concurrent.futures.Future = field(compare=False)
    owner: object = field(compare=False, default=None)


@dataclass
class WorkResult:
    value: Any
    queued_seconds: float  # time between submit and start: how long other work held the GPU


_STOP = object()


class GpuWorker:
    def __init__(self, models, *, editor_factory: EditorFactory = streaming_editor_factory,
                 name: str = "liveedit-gpu"):
        self.models = models
        self.editor_factory = editor_factory
        self._heap: list[_Item] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        self.items_done = 0

    # -- submitting work --------------------------------------------------
    def submit(self, fn: Callable[[Any], Any], *, priority: Priority | str, owner: object = None
               ) -> concurrent.futures.Future:
        """Queue fn(models) for the worker thread; the future resolves to fn's result.
        `priority` may also be given by name ("preview", "live", "batch")."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cv:
            if self._closed:
                raise WorkerClosedError("the server is shutting down; retry once it is back")
            item = _Item(int(Priority.of(priority)), next(self._seq), fn, future, owner)
            heapq.heappush(self._heap, item)
            self._cv.notify()
        return future

    async def run(self, fn: Callable[[Any], Any], *, priority: Priority | str, owner: object = None) -> Any:
        # wrap_future cancels the worker's future when this await is cancelled.
        return await asyncio.wrap_future(self.submit(fn, priority=priority, owner=owner))

    async def run_timed(self, fn, *, priority: Priority | str, owner: object = None) -> WorkResult:
        """Like run, and also says how long the work waited behind other work."""
        submitted = time.perf_counter()
        started, value = await self.run(lambda m: (time.perf_counter(), fn(m)),
                                        priority=priority, owner=owner)
        return WorkResult(value, started - submitted)

    def run_blocking(self, fn, *, priority: Priority = Priority.BATCH, owner: object = None,
                     timeout: float | None = None) -> Any:
        """For threads other than the event loop (render executors)."""
        if threading.current_thread() is self._thread:
            return fn(self.models)  # already on the worker: waiting on ourselves would deadlock
        return self.submit(fn, priority=priority, owner=owner).result(timeout)

    def cancel_owned(self, owner: object) -> int:
        """Cancel queued (not yet started) work of one owner; returns how many."""
        with self._cv:
            return sum(1 for item in self._heap if item.owner is owner and item.future.cancel())

    @property
    def pending(self) -> int:
        with self._cv:
            return sum(1 for item in self._heap if not item.future.done())

    # -- streams -----------------------------------------------------------
    def open_stream(self, instruction: str, seed: int, *, priority: Priority,
                    editor_factory: EditorFactory | None = None) -> "WorkerStream":
        """`editor_factory` overrides the worker's for this stream (fast previews)."""
        return WorkerStream(self, instruction, seed, priority, editor_factory)

    # -- lifetime ----------------------------------------------------------
    async def close(self, *, drain: bool = True) -> None:
        """Stop taking work; finish queued work (drain) or cancel it; wait for the thread."""
        with self._cv:
            self._closed = True
            if not drain:
                for item in self._heap:
                    item.future.cancel()
            heapq.heappush(self._heap, _Item(10**9, next(self._seq), None, None))  # type: ignore[arg-type]
            self._cv.notify()
        await asyncio.to_thread(self._thread.join)

    def yield_to_urgent(self, than: Priority | str = Priority.BATCH) -> int:
        """Run queued work more urgent than `than`, now. Long work on the worker thread (a
        region render) calls this between chunks, e.g. from its progress callback, so that a
        preview seek waits for one chunk rather than for a whole region. Returns how many
        items ran; does nothing when called from another thread."""
        if threading.current_thread() is not self._thread:
            return 0
        limit, ran = int(Priority.of(than)), 0
        while True:
            with self._cv:
                if not self._heap or self._heap[0].priority >= limit or self._heap[0].fn is None:
                    return ran
                item = heapq.heappop(self._heap)
            ran += self._execute(item)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                item = heapq.heappop(self._heap)
            if item.fn is None:
                return
            self._execute(item)

    def _execute(self, item: _Item) -> bool:
        if not item.future.set_running_or_notify_cancel():
            return False  # cancelled while queued
        try:
            value = item.fn(self.models)
        except BaseException as exc:  # noqa: BLE001 - delivered to the caller
            item.future.set_exception(exc)
        else:
            item.future.set_result(value)
        self.items_done += 1
        return True


class WorkerStream:
    """One stream's editor, created lazily and used only on the worker thread."""

    def __init__(self, worker: GpuWorker, instruction: str, seed: int, priority: Priority,
                 editor_factory: EditorFactory | None = None):
        self.worker = worker
        self.editor_factory = editor_factory
        self.instruction = instruction
        self.seed = seed
        self.priority = priority
        self._editor: Editor | None = None
        self._stats_seen = 0
        self.released = False

    def _get_editor(self, models) -> Editor:
        if self.released:
            raise WorkerClosedError("this stream was released; open a new one")
        if self._editor is None:
            factory = self.editor_factory or self.worker.editor_factory
            self._editor = factory(models, self.instruction, self.seed)
        return self._editor

    def _new_stats(self) -> list:
        stats = list(getattr(self._editor, "stats", []) or [])[self._stats_seen:]
        self._stats_seen += len(stats)
        return stats

    async def push(self, frame: np.ndarray) -> tuple[list[np.ndarray], list, float]:
        """Adds a source frame; returns (edited frames of a finished chunk, its stats, seconds queued)."""
        def work(models):
            return self._get_editor(models).push(frame), self._new_stats()

        result = await self.worker.run_timed(work, priority=self.priority, owner=self)
        return (*result.value, result.queued_seconds)

    async def finish(self) -> tuple[list[np.ndarray], list, float]:
        def work(models):
            return self._get_editor(models).finish(), self._new_stats()

        result = await self.worker.run_timed(work, priority=self.priority, owner=self)
        return (*result.value, result.queued_seconds)

    async def push_many(self, frames: list[np.ndarray], *, finish: bool = False,
                        owner: object = None) -> list[np.ndarray]:
        """Pushes several frames as one piece of work (a whole chunk), then finishes the stream
        if asked; returns the edited frames that came out. `owner` lets a caller cancel it."""
        def work(models):
            editor = self._get_editor(models)
            out: list[np.ndarray] = []
            for frame in frames:
                out += editor.push(frame)
            if finish:
                out += editor.finish()
            return out

        return await self.worker.run(work, priority=self.priority, owner=owner or self)

    def push_blocking(self, frame: np.ndarray) -> list[np.ndarray]:
        return self.worker.run_blocking(lambda m: self._get_editor(m).push(frame),
                                        priority=self.priority, owner=self)

    def release(self) -> None:
        """Drop queued work and the editor's GPU state. Safe to call from any thread, twice."""
        if self.released:
            return
        self.released = True
        self.worker.cancel_owned(self)

        def drop(models):
            self._editor = None
            _free_gpu_cache(models)

        try:
            self.worker.submit(drop, priority=Priority.CONTROL)
        except WorkerClosedError:
            self._editor = None


def _free_gpu_cache(models) -> None:
    try:
        import torch

        if torch.cuda.is_available() and getattr(models, "device", None) is not None \
                and models.device.type == "cuda":
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - freeing memory is best effort
        log.debug("could not empty the CUDA cache", exc_info=True)
