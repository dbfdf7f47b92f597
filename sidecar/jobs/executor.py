"""Executors: what renders one region of a job. The queue hands a `RegionTask` to a
`RegionExecutor` and records the `RegionResult` it returns; `LocalExecutor` renders on this
machine's GPU worker. Other executors (a cluster) implement the same protocol.
"""

from __future__ import annotations

import concurrent.futures
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.jobs.spec import RegionSpec, RenderSettings


class RegionCancelled(LiveEditError):
    """Raised inside an executor when the region's cancel event is set."""

    kind = Kind.CANCELLED


@dataclass(frozen=True)
class RegionTask:
    """One region to render, as handed to an executor."""

    job_id: str
    index: int
    region: RegionSpec
    output_dir: Path
    output_stem: Path  # absolute, inside output_dir, without extension
    format: str
    settings: RenderSettings = RenderSettings()


@dataclass(frozen=True)
class RegionResult:
    """What an executor reports once the segment is in its final place."""

    output: Path
    frame_count: int  # frames in the written segment, handles included
    otio: Path | None = None


class ProgressCallback(Protocol):
    def __call__(self, frames_done: int, frames_total: int | None = None) -> None: ...


class RegionExecutor(Protocol):
    """Renders one region. Must write its output atomically (temp name, then os.replace) and
    return only once it is in place. Should stop soon after `cancel` is set (raising
    RegionCancelled); `progress` also raises RegionCancelled once cancel is set, so calling it
    often is enough."""

    def run(self, task: RegionTask, progress: ProgressCallback, cancel: threading.Event) -> RegionResult: ...


# --------------------------------------------------------------------------- local executor


BATCH_PRIORITY = "batch"  # the GPU worker serves preview requests before batch renders


class LocalExecutor:
    """Renders regions on this machine with `liveedit.sidecar.render.render_job_region`.

    With a `worker` (sidecar/worker.py), the render runs as a batch-priority item on the single
    GPU worker, which owns the models and puts preview frames first. Without one, it runs on
    the queue's thread with `models` (tests, the command line)."""

    def __init__(self, models=None, *, worker=None, render: Callable | None = None):
        if models is None and worker is None:
            raise ValueError("LocalExecutor needs the loaded models or the GPU worker that owns them")
        self._models = models
        self._worker = worker
        self._render = render

    def run(self, task: RegionTask, progress: ProgressCallback, cancel: threading.Event) -> RegionResult:
        render = self._render
        if render is None:
            from liveedit.sidecar.render import render_job_region as render

        def on_progress(frames_done: int, frames_total: int | None = None) -> None:
            progress(frames_done, frames_total)
            if self._worker is not None:
                # Between chunks: let queued preview work use the GPU before the next chunk.
                self._worker.yield_to_urgent(BATCH_PRIORITY)

        def work(models) -> RegionResult:
            segment = render(
                task.region, models, task.output_dir, format=task.format, handles=task.region.handles,
                seed=task.region.seed, progress=on_progress, cancel=cancel,
                name=task.output_stem.relative_to(task.output_dir).as_posix(), job_id=task.job_id,
                sampler=task.settings.sampler_config(), mask_cache=task.settings.mask_cache,
                save_masks=task.settings.save_masks,
            )
            return result_from_segment(segment)

        if self._worker is None:
            return work(self._models)
        future = self._worker.submit(work, priority=BATCH_PRIORITY)
        while True:
            try:
                return future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                # Still waiting behind preview work: a cancel must not wait for the GPU.
                if cancel.is_set() and future.cancel():
                    raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled") from None


def result_from_segment(segment) -> RegionResult:
    """`render_region`'s RenderedSegment → RegionResult (the frame count it reports is the
    number of frames it wrote and verified)."""
    return RegionResult(output=Path(segment.path), frame_count=int(segment.frame_count),
                        otio=Path(segment.otio_path) if segment.otio_path else None)
