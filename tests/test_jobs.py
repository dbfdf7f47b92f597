"""Render queue: submit/run/cancel, persistence across restarts and crashes, progress events,
spec validation. Runs with fake executors (no model); see test_jobs_e2e.py for the real one."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from liveedit.sidecar.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    JobNotFoundError,
    JobSpec,
    JobSpecError,
    LocalExecutor,
    QueueBusyError,
    RegionCancelled,
    RegionResult,
    RegionSpec,
    RenderQueue,
)
from liveedit.errors import LiveEditError

TESTS = Path(__file__).resolve().parent


def write_segment(task, frames: int) -> Path:
    """What a real executor does: write under a temp name, then move into place."""
    out = task.output_stem.with_suffix(".mov")
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_bytes(b"f" * frames)
    os.replace(tmp, out)
    return out


class FakeExecutor:
    """Reports progress frame by frame and writes a file of `frames` bytes."""

    def __init__(self, *, per_frame=None, gate: threading.Event | None = None, result=None, error=None):
        self.calls: list[tuple[str, int]] = []
        self.per_frame = per_frame
        self.gate = gate
        self.result = result
        self.error = error

    def run(self, task, progress, cancel):
        self.calls.append((task.job_id, task.index))
        if self.error is not None:
            raise self.error
        total = task.region.frame_count
        for done in range(1, total + 1):
            if self.gate is not None:
                while not self.gate.wait(0.01):
                    if cancel.is_set():
                        raise RegionCancelled("cancelled")
            if self.per_frame:
                self.per_frame(done)
            progress(done, total)
        if self.result is not None:
            return self.result(task)
        return RegionResult(write_segment(task, total), total)


class CrashingExecutor:
    """Used by the crash test's child process: region 0 finishes, region 1 writes a partial
    file and then hangs until the process is killed."""

    def run(self, task, progress, cancel):
        if task.index == 0:
            progress(task.region.frame_count)
            return RegionResult(write_segment(task, task.region.frame_count), task.region.frame_count)
        partial = task.output_stem.with_name(f".{task.output_stem.name}.mov.partial")
        partial.write_bytes(b"half")
        progress(1, task.region.frame_count)
        while True:
            time.sleep(0.05)


@pytest.fixture
def media(tmp_path) -> Path:
    path = tmp_path / "media" / "shot 010.mov"
    path.parent.mkdir()
    path.write_bytes(b"not really a movie; fake executors never read it")
    return path


@pytest.fixture
def out_dir(tmp_path) -> Path:
    return tmp_path / "renders"


def region(media=None, **kw) -> RegionSpec:
    args = dict(media=media, first_frame=10, frame_count=5, instruction="make the fur snowy white", seed=3)
    args.update(kw)  # may replace media too
    return RegionSpec(**args)


def spec(media, out_dir, n=2, **kw) -> JobSpec:
    return JobSpec(regions=tuple(region(media, first_frame=10 * i) for i in range(n)), output_dir=out_dir, **kw)


def wait_for(queue, job_id, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queue.get(job_id)
        if predicate(job):
            return job
        time.sleep(0.01)
    raise AssertionError(f"timed out; job is {queue.get(job_id)}")


def finished(job):
    return job.finished


def test_submit_runs_to_done_and_records_outputs(tmp_path, media, out_dir):
    executor = FakeExecutor()
    with RenderQueue(tmp_path / "jobs.db", executor) as queue:
        job = queue.submit(spec(media, out_dir, label="shot 010 snow"))
        assert job.state in (QUEUED, RUNNING)
        assert out_dir.is_dir()  # created on submit
        job = wait_for(queue, job.id, finished)
        assert job.state == DONE
        assert job.label == "shot 010 snow"
        assert [r.state for r in job.regions] == [DONE, DONE]
        for r in job.regions:
            out = Path(r.output)
            assert out.parent == out_dir.resolve()
            assert out.read_bytes() == b"f" * 5
            assert r.frames_done == r.frame_count == 5
        assert executor.calls == [(job.id, 0), (job.id, 1)]
        assert [j.id for j in queue.list()] == [job.id]
        as_json = job.to_dict()
        assert set(as_json) == {"id", "state", "regions", "created", "label"}
        assert set(as_json["regions"][0]) == {"index", "state", "frames_done", "frame_count", "fps",
                                              "eta_seconds", "output", "otio", "error"}


def test_finished_jobs_survive_a_restart_and_are_not_redone(tmp_path, media, out_dir):
    db = tmp_path / "jobs.db"
    first = FakeExecutor()
    with RenderQueue(db, first) as queue:
        job = wait_for(queue, queue.submit(spec(media, out_dir)).id, finished)
    second = FakeExecutor()
    with RenderQueue(db, second) as queue:
        again = queue.get(job.id)
        assert again.state == DONE
        assert [r.output for r in again.regions] == [r.output for r in job.regions]
        assert [r.frame_count for r in again.regions] == [5, 5]
        time.sleep(0.1)
        assert second.calls == []


def test_second_queue_on_same_database_is_refused(tmp_path):
    with RenderQueue(tmp_path / "jobs.db", FakeExecutor()):
        with pytest.raises(QueueBusyError, match="already running"):
            RenderQueue(tmp_path / "jobs.db", FakeExecutor())


def test_close_while_rendering_requeues_the_region(tmp_path, media, out_dir):
    db = tmp_path / "jobs.db"
    gate = threading.Event()
    queue = RenderQueue(db, FakeExecutor(gate=gate))
    job = queue.submit(spec(media, out_dir, n=1))
    wait_for(queue, job.id, lambda j: j.state == RUNNING)
    queue.close()
    executor = FakeExecutor()
    with RenderQueue(db, executor, autostart=False) as queue:
        assert queue.get(job.id).regions[0].state == QUEUED
        queue.resume()
        assert wait_for(queue, job.id, finished).state == DONE
    assert executor.calls == [(job.id, 0)]


def test_killed_worker_process_resumes_without_redoing_or_showing_partial_output(tmp_path, media, out_dir):
    db = tmp_path / "jobs.db"
    with RenderQueue(db, FakeExecutor(), autostart=False) as queue:
        job = queue.submit(spec(media, out_dir, n=3))
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from test_jobs import CrashingExecutor; from liveedit.sidecar.jobs import RenderQueue;"
         "q = RenderQueue(sys.argv[2], CrashingExecutor()); time.sleep(120)",
         str(TESTS), str(db)])
    try:
        deadline = time.monotonic() + 60
        states = []
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as con:  # WAL: a reader does not disturb the writer
                states = [s for (s,) in con.execute(
                    "SELECT state FROM regions WHERE job_id = ? ORDER BY idx", (job.id,))]
            if states == [DONE, RUNNING, QUEUED] and list(out_dir.glob(".*.partial")):
                break
            assert child.poll() is None, "child queue process died on its own"
            time.sleep(0.05)
        else:
            raise AssertionError(f"child never reached region 1; states {states}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    region0_output = out_dir.resolve() / next(p.name for p in out_dir.glob("*-r0.mov"))
    region0_mtime = region0_output.stat().st_mtime_ns

    executor = FakeExecutor()
    with RenderQueue(db, executor, autostart=False) as queue:
        before = queue.get(job.id)
        assert [r.state for r in before.regions] == [DONE, QUEUED, QUEUED]
        assert before.regions[1].output is None  # the partial file is not an output
        assert list(out_dir.glob(".*.partial"))  # ...even though it is still on disk
        queue.resume()
        after = wait_for(queue, job.id, finished)
    assert after.state == DONE
    assert executor.calls == [(job.id, 1), (job.id, 2)]  # region 0 was not redone
    assert region0_output.stat().st_mtime_ns == region0_mtime
    assert all(Path(r.output).read_bytes() == b"f" * 5 for r in after.regions)


def test_cancel_stops_the_running_region_and_drops_queued_ones(tmp_path, media, out_dir):
    gate = threading.Event()
    executor = FakeExecutor(gate=gate)
    with RenderQueue(tmp_path / "jobs.db", executor) as queue:
        job = queue.submit(spec(media, out_dir, n=2))
        later = queue.submit(spec(media, out_dir, n=1))
        wait_for(queue, job.id, lambda j: j.regions[0].state == RUNNING)
        cancelled = queue.cancel(job.id)
        assert cancelled.regions[1].state == CANCELLED
        gate.set()
        job = wait_for(queue, job.id, finished)
        assert job.state == CANCELLED
        assert [r.state for r in job.regions] == [CANCELLED, CANCELLED]
        assert all(r.output is None for r in job.regions)
        # The queue goes on with the next job.
        assert wait_for(queue, later.id, finished).state == DONE
        assert executor.calls == [(job.id, 0), (later.id, 0)]
        with pytest.raises(JobNotFoundError, match="no job"):
            queue.cancel("nope")


def test_progress_events_carry_frames_fps_and_eta(tmp_path, media, out_dir):
    now = [100.0]
    frames = 8

    def tick(done):  # half a second of fake time per frame, and a little real time to watch
        now[0] += 0.5
        time.sleep(0.02)

    gate = threading.Event()
    executor = FakeExecutor(per_frame=tick, gate=gate)
    with RenderQueue(tmp_path / "jobs.db", executor, clock=lambda: now[0]) as queue:
        job = queue.submit(JobSpec((region(media, frame_count=frames),), out_dir))

        async def collect():
            seen = []
            async for snapshot in queue.watch(job.id):
                seen.append(snapshot)
                gate.set()  # start rendering once we are watching
            return seen

        seen = asyncio.run(asyncio.wait_for(collect(), 20))
    progress = [s.regions[0] for s in seen if s.state == RUNNING and s.regions[0].frames_done > 0]
    assert len(progress) >= 2
    for r in progress:
        assert r.frame_count == frames
        assert r.fps == pytest.approx(2.0)
        assert r.eta_seconds == pytest.approx((frames - r.frames_done) / 2.0)
    assert seen[-1].state == DONE and seen[-1].regions[0].frames_done == frames


def test_watch_all_sees_every_job(tmp_path, media, out_dir):
    with RenderQueue(tmp_path / "jobs.db", FakeExecutor(), autostart=False) as queue:
        a = queue.submit(spec(media, out_dir, n=1))
        b = queue.submit(spec(media, out_dir, n=1))

        async def collect():
            states: dict[str, str] = {}
            async for snapshot in queue.watch_all():
                states[snapshot.id] = snapshot.state
                if len(states) == 2 and set(states.values()) == {QUEUED}:
                    queue.resume()
                if len(states) == 2 and set(states.values()) == {DONE}:
                    return states

        assert asyncio.run(asyncio.wait_for(collect(), 20)) == {a.id: DONE, b.id: DONE}


@pytest.mark.parametrize("bad, message", [
    (dict(media=Path("/no/such/clip.mov")), r"regions\[0\]\.media .* does not exist"),
    (dict(instruction="   "), r"regions\[0\]\.instruction is empty"),
    (dict(name="../escaped"), r"regions\[0\]\.name .* outside output_dir"),
    (dict(name="/etc/passwd"), r"regions\[0\]\.name .* relative"),
    (dict(frame_count=0), r"frame_count is 0"),
    (dict(first_frame=-1), r"first_frame is -1"),
    (dict(handles=-2), r"handles is -2"),
])
def test_invalid_regions_are_rejected_with_clear_errors(tmp_path, media, out_dir, bad, message):
    executor = FakeExecutor()
    with RenderQueue(tmp_path / "jobs.db", executor) as queue:
        with pytest.raises(JobSpecError, match=message):
            queue.submit(JobSpec((region(**{"media": media, **bad}),), out_dir))
        assert queue.list() == []


def test_invalid_jobs_are_rejected(tmp_path, media, out_dir):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with RenderQueue(tmp_path / "jobs.db", FakeExecutor()) as queue:
        with pytest.raises(JobSpecError, match="no regions"):
            queue.submit(JobSpec((), out_dir))
        with pytest.raises(JobSpecError, match="format 'avi' is not supported"):
            queue.submit(spec(media, out_dir, format="avi"))
        with pytest.raises(JobSpecError, match="is a file, not a folder"):
            queue.submit(spec(media, a_file))
        with pytest.raises(JobSpecError, match="write the same output"):
            queue.submit(JobSpec((region(media, name="take"), region(media, name="take")), out_dir))
        with pytest.raises(JobSpecError, match="write over its source media"):
            queue.submit(JobSpec((region(media, name="shot 010"),), media.parent))
        assert queue.list() == []


def test_wire_form_is_checked(media, out_dir):
    good = {"regions": [{"media": str(media), "first_frame": 0, "frame_count": 9, "instruction": "snow",
                         "seed": 1, "handles": 2, "record_start": {"frame": 86400, "rate": [24000, 1001]}}],
            "output_dir": str(out_dir), "format": "h264", "label": "a"}
    parsed = JobSpec.from_dict(good)
    assert parsed.regions[0].record_start.rate == Fraction(24000, 1001) and parsed.format == "h264"
    assert JobSpec.from_dict(parsed.to_dict()) == parsed
    cases = [
        ({**good, "output_dir": "renders"}, "output_dir must be an absolute path"),
        ({**good, "regions": [{**good["regions"][0], "media": "clip.mov"}]}, r"media must be an absolute"),
        ({**good, "regions": [{**good["regions"][0], "first_frame": True}]}, r"first_frame must be an integer"),
        ({**good, "regions": [{**good["regions"][0], "record_start": {"frame": 1, "rate": [0, 1]}}]},
         "rate must be two positive integers"),
        ({**good, "colour": "red"}, "unknown field"),
        ({**good, "regions": "all"}, "must be a list"),
    ]
    for data, message in cases:
        with pytest.raises(JobSpecError, match=message):
            JobSpec.from_dict(data)


def test_outputs_are_checked_before_being_recorded(tmp_path, media, out_dir):
    outside = tmp_path / "elsewhere.mov"
    outside.write_bytes(b"x")
    cases = [
        (FakeExecutor(result=lambda task: RegionResult(outside, 5)), "outside the output folder"),
        (FakeExecutor(result=lambda task: RegionResult(task.output_stem.with_suffix(".mov"), 5)),
         "does not exist"),
        (FakeExecutor(result=lambda task: RegionResult(write_segment(task, 3), 3)), "has 3 frames"),
        (FakeExecutor(error=LiveEditError("frame 12 of shot 010.mov cannot be decoded")), "frame 12"),
        (FakeExecutor(error=ZeroDivisionError("boom")), r"internal error \(ZeroDivisionError"),
    ]
    for i, (executor, message) in enumerate(cases):
        with RenderQueue(tmp_path / f"jobs{i}.db", executor) as queue:
            job = wait_for(queue, queue.submit(spec(media, out_dir, n=1)).id, finished)
        assert job.state == FAILED
        assert job.regions[0].output is None
        assert re.search(message, job.regions[0].error), job.regions[0].error


def test_local_executor_renders_on_the_gpu_worker_and_lets_preview_in_between_chunks(media, out_dir):
    from liveedit.sidecar.jobs import RegionTask
    from liveedit.sidecar.worker import GpuWorker

    class Segment:
        def __init__(self, path, frame_count, otio_path):
            self.path, self.frame_count, self.otio_path = path, frame_count, otio_path

    seen, order = {}, []
    worker = GpuWorker(models="the models")

    def fake_render(region, models, output_dir, **kw):
        seen.update(kw, region=region, models=models, output_dir=output_dir,
                    thread=threading.current_thread().name)
        # A preview request arrives while the first chunk renders...
        worker.submit(lambda m: order.append("preview"), priority="preview")
        kw["progress"](1, 5)  # ...and runs at the chunk boundary, not after the whole region.
        order.append("chunk 2")
        return Segment(output_dir / "a.mov", 5, output_dir / "a.otio")

    try:
        task = RegionTask("job", 0, region(media, handles=2), out_dir, out_dir / "sub" / "name", "png")
        calls = []
        result = LocalExecutor(worker=worker, render=fake_render).run(
            task, lambda done, total=None: calls.append((done, total)), threading.Event())
    finally:
        asyncio.run(worker.close())
    assert result == RegionResult(out_dir / "a.mov", 5, out_dir / "a.otio")
    assert seen["models"] == "the models" and seen["thread"] == "liveedit-gpu"
    assert seen["format"] == "png" and seen["handles"] == 2 and seen["seed"] == 3
    assert seen["name"] == "sub/name" and calls == [(1, 5)]
    assert order == ["preview", "chunk 2"]



# -- several regions at once (an executor with several workers) --------------------------------


class MeetingExecutor:
    """Every region waits inside run() until `parties` regions are in there together, so a
    queue that hands out fewer at once breaks the barrier and fails them (the barrier's
    timeout only bounds a failing test). Counts how many were inside at once."""

    def __init__(self, slots: int, parties: int | None = None):
        self.slots = slots
        self.barrier = threading.Barrier(parties or slots, timeout=20)
        self.lock = threading.Lock()
        self.inside = self.most_inside = 0
        self.threads: set[str] = set()

    def run(self, task, progress, cancel):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self.threads.add(threading.current_thread().name)
        try:
            self.barrier.wait()
            progress(task.region.frame_count, task.region.frame_count)
            return RegionResult(write_segment(task, task.region.frame_count), task.region.frame_count)
        finally:
            with self.lock:
                self.inside -= 1


def test_the_queue_hands_out_as_many_regions_at_once_as_the_executor_has_slots(tmp_path, media, out_dir):
    executor = MeetingExecutor(slots=2)
    with RenderQueue(tmp_path / "jobs.db", executor) as queue:  # slots from the executor
        job = wait_for(queue, queue.submit(spec(media, out_dir, n=4)).id, finished, timeout=60)
    assert [r.state for r in job.regions] == [DONE] * 4, [r.error for r in job.regions]
    assert executor.most_inside == 2  # two at once, never more
    assert len(executor.threads) == 2


def test_slots_given_to_the_queue_override_the_executors(tmp_path, media, out_dir):
    executor = MeetingExecutor(slots=1, parties=3)
    with RenderQueue(tmp_path / "jobs.db", executor, slots=3) as queue:
        job = wait_for(queue, queue.submit(spec(media, out_dir, n=3)).id, finished, timeout=60)
    assert job.state == DONE and executor.most_inside == 3
    with pytest.raises(ValueError, match="at least one slot"):
        RenderQueue(tmp_path / "other.db", FakeExecutor(), slots=0)


def test_cancel_stops_every_running_region_of_the_job(tmp_path, media, out_dir):
    gate = threading.Event()
    executor = FakeExecutor(gate=gate)
    with RenderQueue(tmp_path / "jobs.db", executor, slots=2) as queue:
        job = queue.submit(spec(media, out_dir, n=3))
        wait_for(queue, job.id, lambda j: [r.state for r in j.regions] == [RUNNING, RUNNING, QUEUED])
        queue.cancel(job.id)
        job = wait_for(queue, job.id, finished)
    assert [r.state for r in job.regions] == [CANCELLED] * 3
    assert sorted(executor.calls) == [(job.id, 0), (job.id, 1)]
    assert not list(out_dir.iterdir())


def test_close_requeues_every_running_region(tmp_path, media, out_dir):
    db = tmp_path / "jobs.db"
    queue = RenderQueue(db, FakeExecutor(gate=threading.Event()), slots=2)
    job = queue.submit(spec(media, out_dir, n=3))
    wait_for(queue, job.id, lambda j: [r.state for r in j.regions] == [RUNNING, RUNNING, QUEUED])
    queue.close()
    executor = FakeExecutor()
    with RenderQueue(db, executor, autostart=False) as queue:
        assert [r.state for r in queue.get(job.id).regions] == [QUEUED] * 3
        queue.resume()
        assert wait_for(queue, job.id, finished).state == DONE
    assert executor.calls == [(job.id, 0), (job.id, 1), (job.id, 2)]

# -- render settings travel with a job ------------------------------------------------------


def test_render_settings_travel_in_the_wire_form_and_are_checked(media, out_dir):
    from liveedit.engine.config import MaskCacheConfig
    from liveedit.sidecar.jobs import RenderSettings

    base = {"regions": [{"media": str(media), "first_frame": 0, "frame_count": 9, "instruction": "snow",
                         "name": "shots/a"}], "output_dir": str(out_dir)}
    assert JobSpec.from_dict(base).settings == RenderSettings()  # absent: raw steps, no mask cache
    full = {**base, "sampler": {"warped_steps": True}, "mask_cache": {"keep_ratio": 0.5,
            "pruned_sublayers": ["self_attn", "ffn"]}, "save_masks": True}
    parsed = JobSpec.from_dict(full)
    assert parsed.settings == RenderSettings(True, MaskCacheConfig(keep_ratio=0.5, pruned_sublayers=("self_attn", "ffn")),
                                             True)
    assert parsed.regions[0].name == "shots/a"
    assert JobSpec.from_dict(parsed.to_dict()) == parsed  # what the database stores reads back the same
    assert JobSpec.from_dict({**base, "mask_cache": {}}).settings.mask_cache == MaskCacheConfig(
        keep_ratio=0.3, pruned_sublayers=("self_attn",))
    fixed = JobSpec.from_dict({**base, "mask_cache": {"rule": "fixed"}})
    assert fixed.settings.mask_cache.rule == "fixed"
    assert fixed.settings.to_dict()["mask_cache"]["rule"] == "fixed"
    assert JobSpec.from_dict(fixed.to_dict()) == fixed
    assert "rule" not in parsed.settings.to_dict()["mask_cache"]  # the default stays implicit
    cases = [
        ({**base, "mask_cache": {"keep_ratio": 1.5}}, "keep_ratio must be in"),
        ({**base, "mask_cache": {"keep_ratio": "0.3"}}, "keep_ratio must be a number"),
        ({**base, "mask_cache": {"pruned_sublayers": ["mlp"]}}, "pruned_sublayers must be some of"),
        ({**base, "mask_cache": {"ratio": 0.3}}, "unknown field"),
        ({**base, "mask_cache": 0.3}, "or null for no mask cache"),
        ({**base, "sampler": {"warped_steps": "yes"}}, "warped_steps must be true or false"),
        ({**base, "sampler": {"shift": 3}}, "unknown field"),
        ({**base, "save_masks": 1}, "save_masks must be true or false"),
    ]
    for data, message in cases:
        with pytest.raises(JobSpecError, match=message):
            JobSpec.from_dict(data)


def test_save_masks_without_the_mask_cache_is_refused(tmp_path, media, out_dir):
    from liveedit.sidecar.jobs import RenderSettings

    with RenderQueue(tmp_path / "jobs.db", FakeExecutor(), autostart=False) as queue:
        with pytest.raises(JobSpecError, match="set mask_cache too"):
            queue.submit(spec(media, out_dir, settings=RenderSettings(save_masks=True)))


def test_local_executor_passes_the_jobs_render_settings_to_render_region(tmp_path, media, out_dir):
    from liveedit.engine.config import MaskCacheConfig, SamplerConfig
    from liveedit.sidecar.jobs import RenderSettings

    class Segment:
        def __init__(self, path):
            self.path, self.frame_count, self.otio_path = path, 5, None

    seen = []

    def fake_render(region, models, output_dir, **kw):
        seen.append(kw)
        out = output_dir / f"{kw['name']}.mov"
        out.write_bytes(b"segment")
        return Segment(out)

    settings = RenderSettings(True, MaskCacheConfig(keep_ratio=0.25, pruned_sublayers=("self_attn", "ffn")), True)
    job_spec = JobSpec((region(media, name="take 2"),), out_dir, settings=settings)
    with RenderQueue(tmp_path / "jobs.db", LocalExecutor(models="m", render=fake_render)) as queue:
        job = wait_for(queue, queue.submit(job_spec).id, finished)
        assert job.state == DONE, job.regions[0].error
        plain = wait_for(queue, queue.submit(spec(media, out_dir, n=1)).id, finished)  # no settings given
        assert plain.state == DONE, plain.regions[0].error
    assert Path(job.regions[0].output) == out_dir.resolve() / "take 2.mov"
    assert seen[0]["name"] == "take 2"
    assert seen[0]["sampler"] == SamplerConfig(warp=True)
    assert seen[0]["mask_cache"] == MaskCacheConfig(keep_ratio=0.25, pruned_sublayers=("self_attn", "ffn"))
    assert seen[0]["save_masks"] is True
    assert (seen[1]["sampler"], seen[1]["mask_cache"], seen[1]["save_masks"]) == (SamplerConfig(), None, False)


# -- crash leftovers --------------------------------------------------------------------------


class LitteringExecutor:
    """Region 0 finishes; region 1 leaves the hidden temporaries a real render leaves mid-way
    (segment, token-mask video, PNG folder, OTIO) and hangs until the process is killed."""

    def run(self, task, progress, cancel):
        if task.index == 0:
            return RegionResult(write_segment(task, task.region.frame_count), task.region.frame_count)
        stem = task.output_stem
        for name in (f".{stem.name}.mov.0123abcd.partial.mov", f".{stem.name}.masks.mov.89abcdef.partial.mov",
                     f".{stem.name}.otio.k2x_9q1z.tmp"):
            stem.with_name(name).write_bytes(b"half")
        (stem.parent / f".{stem.name}.deadbeef.partial").mkdir()
        (stem.parent / f".{stem.name}.deadbeef.partial" / "f.0000001.png").write_bytes(b"png")
        progress(1, task.region.frame_count)
        while True:
            time.sleep(0.05)


def test_a_region_requeued_after_a_crash_loses_its_temporaries_and_nothing_else(tmp_path, media, out_dir):
    from liveedit.sidecar.naming import region_leftovers

    db = tmp_path / "jobs.db"
    with RenderQueue(db, FakeExecutor(), autostart=False) as queue:
        job = queue.submit(JobSpec((region(media, name="a"), region(media, name="b", first_frame=30)), out_dir))
    # Hidden files that are not region b's temporaries: another region's, a longer name, a user's.
    others = [out_dir / n for n in (".a.mov.0123abcd.partial.mov", ".bb.mov.0123abcd.partial.mov",
                                    ".b.mov.notes", ".b.mov.0123abcd.partial.mp4")]
    for path in others:
        path.write_bytes(b"keep")
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; sys.path.insert(0, sys.argv[1]);"
         "from test_jobs import LitteringExecutor; from liveedit.sidecar.jobs import RenderQueue;"
         "q = RenderQueue(sys.argv[2], LitteringExecutor()); time.sleep(120)",
         str(TESTS), str(db)])
    try:
        deadline = time.monotonic() + 60
        while len(region_leftovers(out_dir.resolve() / "b")) < 4:
            assert child.poll() is None, "child queue process died on its own"
            assert time.monotonic() < deadline, "region b never started"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = region_leftovers(out_dir.resolve() / "b")
    assert sorted(p.name for p in leftovers) == sorted([
        ".b.deadbeef.partial", ".b.masks.mov.89abcdef.partial.mov", ".b.mov.0123abcd.partial.mov",
        ".b.otio.k2x_9q1z.tmp"])

    executor = FakeExecutor()
    with RenderQueue(db, executor, autostart=False) as queue:
        assert [r.state for r in queue.get(job.id).regions] == [DONE, QUEUED]
        assert not any(p.exists() for p in leftovers)  # removed as the region went back to the queue
        queue.resume()
        assert wait_for(queue, job.id, finished).state == DONE
    assert all(p.read_bytes() == b"keep" for p in others)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([*(p.name for p in others), "a.mov", "b.mov"])
