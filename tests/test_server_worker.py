"""The single GPU worker: priorities, cancellation, per-stream state, never blocking the loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from liveedit.sidecar.worker import GpuWorker, Priority, WorkerClosedError
from server_fakes import InvertEditor, expected_edit, make_clip


@pytest.fixture
def worker():
    w = GpuWorker(models="models", editor_factory=InvertEditor)
    yield w
    asyncio.run(w.close(drain=False))


def _gate(worker):
    """Occupy the worker thread until the returned event is set."""
    gate = threading.Event()
    worker.submit(lambda m: gate.wait(5), priority=Priority.CONTROL)
    return gate


def test_preview_work_runs_before_batch_work(worker):
    order = []
    gate = _gate(worker)
    futures = [worker.submit(lambda m, n=n: order.append(n), priority=p)
               for n, p in [("batch1", Priority.BATCH), ("live", Priority.LIVE),
                            ("preview", Priority.PREVIEW), ("batch2", Priority.BATCH)]]
    gate.set()
    for f in futures:
        f.result(5)
    assert order == ["preview", "live", "batch1", "batch2"]


def test_event_loop_keeps_running_while_gpu_work_runs(worker):
    async def main():
        ticks = 0
        done = asyncio.ensure_future(worker.run(lambda m: threading.Event().wait(0.3) or m,
                                                priority=Priority.PREVIEW))
        while not done.done():
            ticks += 1
            await asyncio.sleep(0.01)
        return ticks, done.result()

    ticks, models = asyncio.run(main())
    assert models == "models"  # work receives the worker's models
    assert ticks >= 10


def test_cancelling_the_await_cancels_queued_work(worker):
    ran = []

    async def main():
        gate = _gate(worker)
        task = asyncio.ensure_future(worker.run(lambda m: ran.append(1), priority=Priority.BATCH))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        await worker.run(lambda m: None, priority=Priority.BATCH)  # queue flushed past it

    asyncio.run(main())
    assert ran == []


def test_stream_edits_on_the_worker_thread_and_release_drops_state(worker):
    frames = make_clip(10)

    async def main():
        stream = worker.open_stream("invert", 3, priority=Priority.LIVE)
        out, stats = [], []
        for f in frames:
            edited, new_stats, queued = await stream.push(f)
            out += edited
            stats += new_stats
            assert queued >= 0
        edited, new_stats, _ = await stream.finish()
        out += edited
        stats += new_stats
        stream.release()
        await worker.run(lambda m: None, priority=Priority.BATCH)
        return stream, out, stats

    stream, out, stats = asyncio.run(main())
    assert len(out) == 10 and [s.source_frames for s in stats] == [9, 1]
    for src, got in zip(frames, out):
        np.testing.assert_array_equal(got, expected_edit(src, 3))
    assert stream._editor is None
    assert InvertEditor.threads == {"liveedit-gpu"}
    with pytest.raises(WorkerClosedError):
        stream.push_blocking(frames[0])


def test_release_cancels_the_streams_queued_work(worker):
    gate = _gate(worker)
    stream = worker.open_stream("x", 0, priority=Priority.LIVE)
    futures = [worker.submit(lambda m: 1, priority=Priority.LIVE, owner=stream) for _ in range(3)]
    stream.release()
    gate.set()
    assert all(f.cancelled() for f in futures)


def test_closed_worker_refuses_new_work():
    w = GpuWorker(models=None, editor_factory=InvertEditor)
    done = w.submit(lambda m: 42, priority=Priority.BATCH)
    asyncio.run(w.close(drain=True))
    assert done.result(1) == 42  # queued work finished before the thread stopped
    with pytest.raises(WorkerClosedError, match="shutting down"):
        w.submit(lambda m: 1, priority=Priority.BATCH)


def test_run_blocking_from_another_thread(worker):
    result = []
    t = threading.Thread(target=lambda: result.append(worker.run_blocking(lambda m: m + "!")))
    t.start()
    t.join(5)
    assert result == ["models!"]


def test_long_batch_work_lets_preview_work_through_at_yield_points(worker):
    order = []
    gate = threading.Event()

    def render(models):  # a region render: three chunks, yielding between them
        for chunk in range(3):
            if chunk == 1:
                gate.wait(5)
            order.append(f"render{chunk}")
            worker.yield_to_urgent()

    job = worker.submit(render, priority="batch")
    while not order:
        threading.Event().wait(0.01)
    preview = worker.submit(lambda m: order.append("preview"), priority=Priority.PREVIEW)
    other_batch = worker.submit(lambda m: order.append("batch2"), priority="batch")
    gate.set()
    job.result(5), preview.result(5), other_batch.result(5)
    assert order == ["render0", "render1", "preview", "render2", "batch2"]
    assert worker.yield_to_urgent() == 0  # not on the worker thread: no-op
