"""The Ray executor on a real local Ray cluster: two logical GPUs on the CPU, the tiny model
(random weights), tiny clips. One cluster for the module (started like a user's head node,
by its own process); each test starts its own executor, whose GPU workers load the model.

What is checked: a job of six regions from two clips renders through two workers at once
and gives the same bytes as the local executor; a worker killed mid-region has its region
rendered again by another one; a region that kills workers repeatedly fails with the
reason; cancel stops regions on the workers; a worker that cannot read a region's media
fails only that region, naming the path; a sidecar killed mid-job resumes without redoing
finished regions or duplicating outputs; a cluster that goes away gives a clear error, or a
local render when a fallback was given."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from liveedit.sidecar.jobs import (CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobSpec, LocalExecutor, RegionSpec,
                                   RenderQueue)
from liveedit.sidecar.models import ModelSpec
from media_fixtures import ffprobe_frame_count

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent

# Ray kept small and quiet for two CPU cores: no usage report, no metrics, no memory
# monitor killing workers on a busy machine, servers on the loopback interface only; the
# cluster's token (in ~/.ray) is asked of every process that connects, as on a real one.
RAY_ENV = {
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_enable_metrics_collection": "0",
    "RAY_memory_monitor_refresh_ms": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}

# A head node as `ray start --head` would be, kept by a process of its own so that killing a
# sidecar (or its Ray driver) leaves it running: ray.init with two logical GPUs.
HOLDER = """
import sys, ray
ray.init(address="local", num_cpus=int(sys.argv[1]), num_gpus=int(sys.argv[2]), include_dashboard=False,
         object_store_memory=80 * 2**20, logging_level="WARNING", log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
"""


class Cluster:
    def __init__(self, cpus: int, gpus: int):
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, str(cpus), str(gpus)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, **RAY_ENV},
                                        start_new_session=True)
        self.address = self.process.stdout.readline().strip()
        if not self.address:
            self.kill()
            pytest.fail("the Ray head node did not start; see the output above")

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """The head node and everything it started, at once: the cluster is gone."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


@pytest.fixture(scope="module")
def cluster():
    head = Cluster(cpus=2, gpus=2)
    yield head.address
    head.stop()


def executor(address, env=None, **kw):
    from liveedit.sidecar.jobs.ray_executor import RayExecutor

    return RayExecutor(ModelSpec("tiny"), address=address, env={**RAY_ENV, **(env or {})}, **kw)


@pytest.fixture(scope="module")
def shared(cluster):
    """One executor for the tests that can share its two workers (the model loads once per
    worker). A region goes to a second worker when the first dies under it, not a third."""
    with executor(cluster, max_attempts=2) as ex:
        yield ex


@pytest.fixture(scope="module")
def local_models():
    return ModelSpec("tiny").load()


def wait_for(queue, job_id, predicate, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = queue.get(job_id)
        if predicate(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"timed out; job is {queue.get(job_id)}")


def finished(job):
    return job.finished


def rendering(ex, job_id, index, pids_to_skip=()):
    """The worker rendering region `index` of the job once it has written a frame, or None."""
    for worker in ex.workers():
        if (worker.job_id == job_id and worker.region_index == index and worker.frames_done > 0
                and worker.pid not in pids_to_skip):
            return worker
    return None


def all_idle(ex, timeout=300.0):
    """Wait until every worker is loaded and idle: a test that needs two regions in flight
    must not start while a worker replaced by an earlier test is still loading its model."""
    deadline = time.monotonic() + timeout
    while not (workers := ex.workers()) or any(w.state != "idle" for w in workers):
        assert time.monotonic() < deadline, workers
        time.sleep(0.05)
    return ex


def region(clip, first, count, name, seed=0):
    return RegionSpec(media=clip, first_frame=first, frame_count=count, instruction="make the fur snowy white",
                      seed=seed, handles=1, name=name)


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def overlaps(a: dict, b: dict) -> bool:
    return a["started"] < b["ended"] and b["started"] < a["ended"]


# --------------------------------------------------------------------------- a sidecar that dies


SIDECAR = """
import sys, time
sys.path.insert(0, sys.argv[1])
from test_ray_executor import executor
from liveedit.sidecar.jobs import RenderQueue
queue = RenderQueue(sys.argv[2], executor(sys.argv[3]))
time.sleep(600)
"""


class NoExecutor:
    def run(self, task, progress, cancel):
        raise AssertionError("nothing renders here")


# First in the module: the sidecar it kills needs the cluster's two GPUs, which the shared
# executor holds from its first use on.
def test_a_sidecar_killed_mid_job_resumes_without_redoing_finished_regions(cluster, media_clips, tmp_path, request):
    film, pal = media_clips["ntsc_film"], media_clips["pal"]
    db, out = tmp_path / "jobs.db", tmp_path / "out"
    regions = tuple(region(film, i * 3, 12, f"film-{i}") for i in range(4)) + (region(pal, 0, 12, "pal-0"),
                                                                             region(pal, 6, 12, "pal-1"))
    with RenderQueue(db, NoExecutor(), autostart=False) as queue:
        job = queue.submit(JobSpec(regions, out, format="h264"))
    sidecar = subprocess.Popen([sys.executable, "-c", SIDECAR, str(TESTS), str(db), cluster])
    try:
        deadline = time.monotonic() + 300
        while True:
            with sqlite3.connect(db) as con:
                states = [s for (s,) in con.execute("SELECT state FROM regions WHERE job_id = ? ORDER BY idx",
                                                    (job.id,))]
            if states.count(DONE) >= 2 and RUNNING in states:
                break
            assert sidecar.poll() is None, "the sidecar died on its own"
            assert time.monotonic() < deadline, states
            time.sleep(0.05)
    finally:
        sidecar.send_signal(signal.SIGKILL)
        sidecar.wait()

    ex = request.getfixturevalue("shared")  # its workers take the GPUs as the killed sidecar's are ended
    with RenderQueue(db, ex, autostart=False) as queue:
        before = queue.get(job.id)
        finished_before = {r.index: Path(r.output).stat().st_mtime_ns for r in before.regions if r.state == DONE}
        assert len(finished_before) >= 2 and all(r.state in (DONE, QUEUED) for r in before.regions)
        queue.resume()
        after = wait_for(queue, job.id, finished)
        records = [r for r in ex.records if r["job_id"] == job.id]
    assert after.state == DONE, [r.error for r in after.regions]
    assert sorted(r["index"] for r in records if r["outcome"] == "done") == sorted(
        set(range(6)) - set(finished_before))  # the rest, once each
    for index, mtime in finished_before.items():
        assert Path(after.regions[index].output).stat().st_mtime_ns == mtime  # not redone
    expected = sorted(f"{r.name}{ext}" for r in regions for ext in (".mov", ".otio"))
    assert sorted(p.name for p in out.iterdir()) == expected  # no duplicate, no partial file
    for r in after.regions:
        assert ffprobe_frame_count(r.output) == r.frame_count


# --------------------------------------------------------------------------- a job across two GPUs


def test_six_regions_from_two_clips_render_two_at_a_time_and_match_the_local_executor(
        shared, media_clips, tmp_path, local_models):
    film, pal = media_clips["ntsc_film"], media_clips["pal"]  # 30 frames at 23.976, 20 at 25
    regions = (region(film, 0, 12, "film-a", seed=1), region(film, 10, 12, "film-b", seed=2),
               region(film, 18, 12, "film-c", seed=3), region(pal, 0, 10, "pal-a", seed=4),
               region(pal, 5, 12, "pal-b", seed=5), region(pal, 8, 12, "pal-c", seed=6))
    snapshots = []

    ex = all_idle(shared)
    assert ex.slots == 2  # one worker per GPU of the cluster
    with RenderQueue(tmp_path / "ray.db", ex) as queue:
        # ProRes, the default delivery format (H.264's bytes are checked across CPU counts in test_media_write).
        job = queue.submit(JobSpec(regions, tmp_path / "ray", format="prores", label="six"))

        async def watch():
            async for snapshot in queue.watch(job.id):
                snapshots.append(snapshot)

        asyncio.run(asyncio.wait_for(watch(), 300))
        job = queue.get(job.id)
    workers = ex.workers()
    records = [r for r in ex.records if r["job_id"] == job.id]

    assert job.state == DONE, [r.error for r in job.regions]
    # Progress reached the job's watchers mid-region, with a frame rate, as for local renders.
    assert any(0 < r.frames_done < r.frame_count and r.fps for s in snapshots for r in s.regions if r.state == RUNNING)
    # Two regions were rendering at the same time, on different workers (their own clocks).
    done = [r for r in records if r["outcome"] == "done"]
    assert sorted((r["index"]) for r in done) == list(range(6))  # each region once
    assert any(overlaps(a, b) and a["pid"] != b["pid"] for a in done for b in done if a is not b)
    assert {r["worker"] for r in done} == {0, 1}
    # The workers: two, one logical GPU each, idle again, six regions between them.
    assert sorted(w.gpu_ids for w in workers) == [("0",), ("1",)]
    assert [w.state for w in workers] == ["idle", "idle"] and sum(w.regions_done for w in workers) >= 6
    assert all(w.host == socket.gethostname() and w.pid > 0 for w in workers)

    # The same regions through the local executor: the same bytes.
    with RenderQueue(tmp_path / "local.db", LocalExecutor(models=local_models)) as queue:
        local = wait_for(queue, queue.submit(JobSpec(regions, tmp_path / "local", format="prores")).id, finished)
    assert local.state == DONE, [r.error for r in local.regions]
    for remote, here in zip(job.regions, local.regions):
        remote_out, local_out = Path(remote.output), Path(here.output)
        assert remote_out.parent == (tmp_path / "ray").resolve() and remote_out.name == local_out.name
        assert remote_out.read_bytes() == local_out.read_bytes(), remote_out.name
        assert ffprobe_frame_count(remote_out) == remote.frame_count == here.frame_count
    assert hidden_files(tmp_path / "ray") == []


# --------------------------------------------------------------------------- faults


def test_a_worker_killed_mid_region_has_it_rendered_again_elsewhere_and_a_killer_region_fails(
        shared, media_clips, tmp_path):
    film = media_clips["ntsc_film"]
    out = tmp_path / "out"
    ex = all_idle(shared)  # max_attempts=2
    with RenderQueue(tmp_path / "jobs.db", ex) as queue:
        job = queue.submit(JobSpec((region(film, 0, 24, "a"), region(film, 4, 24, "b")), out, format="h264"))
        deadline = time.monotonic() + 240
        while (victim := rendering(ex, job.id, 0)) is None:
            assert time.monotonic() < deadline, ex.workers()
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)  # mid-region: it had written frames, not all
        job = wait_for(queue, job.id, finished)
        assert job.state == DONE, [r.error for r in job.regions]
        attempts = [r for r in ex.records if r["job_id"] == job.id and r["index"] == 0]
        assert [r["outcome"] for r in attempts] == ["lost", "done"]
        assert attempts[0]["pid"] == victim.pid and attempts[1]["pid"] != victim.pid
        assert "died" in attempts[0]["reason"]
        assert [r.frame_count for r in job.regions] == [25, 26]  # the region and its handles, in the clip
        for r in job.regions:  # whole files, nothing half-written left behind
            assert ffprobe_frame_count(r.output) == r.frame_count
        assert sorted(p.name for p in out.iterdir()) == ["a.mov", "a.otio", "b.mov", "b.otio"]

        # A region that takes its worker down every time fails after max_attempts, with the reason.
        killer = queue.submit(JobSpec((region(film, 2, 24, "killer"),), out, format="h264"))
        killed = set()
        while len(killed) < 2:
            worker = rendering(ex, killer.id, 0, pids_to_skip=killed)
            if worker is not None:
                os.kill(worker.pid, signal.SIGKILL)
                killed.add(worker.pid)
            assert time.monotonic() < deadline + 240, ex.workers()
            time.sleep(0.02)
        killer = wait_for(queue, killer.id, finished)
        assert killer.state == FAILED
        assert "died 2 time(s)" in killer.regions[0].error and killer.regions[0].output is None
        assert not (out / "killer.mov").exists() and hidden_files(out) == []
        # ...and the workers are back for the next job.
        again = wait_for(queue, queue.submit(JobSpec((region(film, 0, 9, "after"),), out, format="h264")).id, finished)
        assert again.state == DONE, again.regions[0].error


def test_cancel_stops_the_regions_on_the_workers_and_an_unreadable_clip_fails_only_its_region(
        shared, media_clips, tmp_path):
    film = media_clips["ntsc_film"]
    out = tmp_path / "out"
    ex = all_idle(shared)
    with RenderQueue(tmp_path / "jobs.db", ex, autostart=False) as queue:
        job = queue.submit(JobSpec(tuple(region(film, i, 28, f"r{i}") for i in range(3)), out, format="h264"))
        doomed = tmp_path / "media" / "doomed clip.mp4"
        doomed.parent.mkdir()
        shutil.copy(media_clips["pal"], doomed)
        lost = queue.submit(JobSpec((region(doomed, 0, 9, "lost"), region(film, 0, 9, "kept")), out, format="h264"))
        doomed.unlink()  # after submit: the sidecar saw it, the workers will not
        queue.resume()

        deadline = time.monotonic() + 240
        while not (rendering(ex, job.id, 0) and rendering(ex, job.id, 1)):
            assert time.monotonic() < deadline, ex.workers()
            time.sleep(0.02)
        queue.cancel(job.id)
        job = wait_for(queue, job.id, finished)
        assert [r.state for r in job.regions] == [CANCELLED] * 3
        cancelled = [r for r in ex.records if r["job_id"] == job.id]
        assert sorted(r["index"] for r in cancelled) == [0, 1]
        assert all(r["outcome"] == "cancelled" and r["frames"] < 30 for r in cancelled)

        lost = wait_for(queue, lost.id, finished)
        assert [r.state for r in lost.regions] == [FAILED, DONE]
        error = lost.regions[0].error
        assert str(doomed) in error and socket.gethostname() in error and "cannot read the media" in error
    assert sorted(p.name for p in out.iterdir()) == ["kept.mov", "kept.otio"]


class Borrowed:
    """The shared executor as `liveedit render --ray` gets it, without closing it after."""

    def __init__(self, ex):
        self._ex = ex

    def __getattr__(self, name):
        return getattr(self._ex, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def close(self):
        pass


def test_liveedit_render_ray_renders_a_timelines_regions_on_the_workers_as_in_process_would(
        shared, tmp_path, monkeypatch, capsys):
    from liveedit.cli import main
    from test_render import _timeline  # markers on a.mov and b.mov, and on c.mov, which is damaged

    timeline, out = _timeline(tmp_path), tmp_path / "out"
    asked = []
    monkeypatch.setattr("liveedit.commands.render.ray_executor",
                        lambda args, spec, **kw: asked.append((args.ray, spec)) or Borrowed(shared))
    before = len(shared.records)
    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--model", "tiny",
                 f"--ray={shared.address}"]) == 1  # c failed
    printed = capsys.readouterr()
    assert asked == [(shared.address, ModelSpec("tiny"))]
    assert "RANDOM" in printed.out and printed.out.count(": rendered: ") == 2
    assert "c.mov" in printed.err and "damaged" in printed.err and "2 done" in printed.err
    assert sorted(r["outcome"] for r in shared.records[before:]) == ["done", "done", "failed"]  # on the workers
    assert (out / "show_liveedit.otio").is_file() and hidden_files(out) == []

    # The same command in-process finds both segments finished: the workers named them as it does.
    monkeypatch.undo()
    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--model", "tiny"]) == 1
    assert capsys.readouterr().out.count("skipped (already rendered with these settings)") == 2


def test_the_ray_benchmark_measures_a_region_both_ways_and_a_job_across_the_workers(shared, tmp_path):
    """`liveedit bench-ray` on the CPU with the tiny model: the figures exist and add up (what
    they are worth is for a GPU box), and --kill-one's check holds."""
    from liveedit.sidecar.jobs import ray_bench

    config = ray_bench.BenchConfig(work=tmp_path, model=ModelSpec("tiny"), frames=9, repeat=1, regions=2,
                                   workers=(None,), kill_one=True)
    region = ray_bench.bench_region(config, make_executor=lambda config, workers: Borrowed(shared))
    assert region["local_s"] > 0 and region["ray_s"] > 0 and region["frames"] == 9
    assert region["ray_first_frame_s"] <= region["ray_s"] and socket.gethostname() in region["ray_worker"]
    scaling = ray_bench.bench_scaling(replace(config, frames=24), make_executor=lambda config, n: Borrowed(shared))
    (run,) = scaling["runs"]
    assert run["workers"] == 2 and run["state"] == DONE and run["regions_per_minute"] > 0
    assert run["speedup"] == run["efficiency"] == 1.0  # against itself
    # Every worker that rendered a region has its first frame (a replaced one may have had none).
    assert run["first_frame_after_submit_s"] and set(run["first_frame_after_submit_s"]) <= {0, 1}
    assert run["all_workers_first_frame_after_submit_s"] <= run["seconds"]
    assert run["kill"]["ok"], run["kill"]
    ray_bench.record(tmp_path / "bench.md", {"date": "2026-12-02", "device": "cpu", "commit": "x", "model": "tiny"},
                     [region, scaling])
    assert (tmp_path / "bench.md").read_text().count("| ray-") == 2


def test_a_cluster_that_goes_away_fails_regions_clearly_or_falls_back_to_this_machine(
        media_clips, tmp_path, local_models):
    film = media_clips["ntsc_film"]
    out = tmp_path / "out"
    head = Cluster(cpus=1, gpus=1)  # a cluster of its own, to lose
    fallback = LocalExecutor(models=local_models)
    try:
        # Ray ends a driver that cannot reach its cluster after a timeout (60 s by default).
        ex = executor(head.address, fallback=fallback, reconnect_interval=3600,
                      env={"RAY_gcs_rpc_server_reconnect_timeout_s": "5"})
    except BaseException:
        head.kill()
        raise
    with ex, RenderQueue(tmp_path / "jobs.db", ex) as queue:
        job = queue.submit(JobSpec((region(film, 0, 28, "mid"),), out, format="h264"))
        deadline = time.monotonic() + 240
        while (worker := rendering(ex, job.id, 0)) is None:
            assert time.monotonic() < deadline, ex.workers()
            time.sleep(0.02)
        # The cluster's only node is lost: its head and the worker rendering the region. (Ray's
        # worker processes have their own process group: the worker is ended by itself, or it
        # could finish the region before it noticed its node had gone.)
        head.kill()
        os.kill(worker.pid, signal.SIGKILL)
        job = wait_for(queue, job.id, finished)
        assert job.state == DONE, job.regions[0].error
        outcomes = [r["outcome"] for r in ex.records if r["job_id"] == job.id]
        assert "done" not in outcomes  # not on the cluster: on this machine, by the fallback
        assert ffprobe_frame_count(job.regions[0].output) == job.regions[0].frame_count == 29
        assert hidden_files(out) == []
        assert "GONE" in ex.describe() and all(w.state == "failed" for w in ex.workers())

        ex.fallback = None  # without a fallback: a clear error, and the queue goes on
        ex.reconnect_interval = 0  # and it tries to reconnect first
        lost = wait_for(queue, queue.submit(JobSpec((region(film, 0, 9, "lost"),), out, format="h264")).id, finished,
                        timeout=120)
        assert lost.state == FAILED
        error = lost.regions[0].error
        assert "the cluster was stopped or became unreachable" in error and "--ray-fallback" in error
        assert f"reconnecting failed: nothing answers at {head.address}" in error
        assert queue.get(job.id).state == DONE


def test_a_cluster_that_cannot_be_reached_is_a_clear_error(tmp_path):
    from liveedit.sidecar.jobs.ray_executor import RayClusterError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Said at once, in those words, not after Ray's own minutes of retries.
    with pytest.raises(RayClusterError, match=f"nothing answers at 127.0.0.1:{port} .* is `ray start --head` running"):
        executor(f"127.0.0.1:{port}")
    with pytest.raises(RayClusterError, match="Ray Client .* not supported"):
        executor(f"ray://127.0.0.1:{port}")


def test_without_ray_installed_the_executor_says_how_to_install_it(monkeypatch):
    import importlib.util

    from liveedit.sidecar.jobs import ray_executor

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ray_executor.RayNotInstalledError, match=r"pip install 'liveedit-sidecar\[ray\]'"):
        ray_executor.RayExecutor(ModelSpec("tiny"))


def test_model_specs_travel_to_workers_as_plain_data():
    import pickle

    from liveedit.errors import InputError

    spec = ModelSpec("tiny", weights_dir="/shared/weights", dtype="fp32")
    assert pickle.loads(pickle.dumps(spec)) == spec
    with pytest.raises(InputError, match="unknown model preset"):
        ModelSpec("huge")
    with pytest.raises(InputError, match="dtype 'int4'"):
        ModelSpec("tiny", dtype="int4")
