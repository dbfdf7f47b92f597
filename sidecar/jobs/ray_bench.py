"""What `liveedit bench-ray` measures: the Ray executor against the local one, and regions
per minute as workers are added (docs/benchmarks.md, docs/scale-out.md).

- `bench_region`: one region of `frames` frames at the model's full size, rendered by the
  local executor (models in this process, warmed up as `liveedit serve` does) and by the Ray
  executor with one worker (warmed up likewise), alternately, `repeat` times each after one
  untimed region each. Reports the medians and the Ray overhead in percent (target: <= 5).
- `bench_scaling`: a job of `regions` regions through the render queue with 1 worker, then
  with each other worker count asked for (None: one per GPU of the cluster). Reports regions
  per minute, the speed-up over the smallest count and the scaling efficiency (speed-up per
  added GPU), the peak GPU memory of each worker, and when each worker wrote its first frame
  (after the job was submitted, and after the executor was started). With `kill_one`, one
  worker process is killed mid-region in the run with the most workers, and the result says
  whether the job still completed with every output whole and none twice.

Random weights of the real shapes by default (engine/benchmark.py): speed does not depend on
the weights' values. The source is a synthetic clip at the model's picture size, written into
`work`, which must be on storage every worker shares when the cluster has several machines.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Callable

from liveedit.errors import LiveEditError
from liveedit.sidecar.jobs import DONE, JobSpec, LocalExecutor, RegionSpec, RegionTask, RenderQueue
from liveedit.sidecar.models import ModelSpec

RATE = Fraction(24)


@dataclass
class BenchConfig:
    work: Path  # source clip and outputs; shared storage on a cluster of several machines
    model: ModelSpec = field(default_factory=lambda: ModelSpec("liveedit-1.3b", benchmark_random=True))
    address: str | None = None  # None: a local cluster of this machine's GPUs
    frames: int = 81
    format: str = "prores"
    repeat: int = 3
    regions: int = 8
    workers: tuple = (1, None)  # None: one per GPU of the cluster
    kill_one: bool = False
    executor_options: dict = field(default_factory=dict)  # more RayExecutor arguments (ray_init, env)


def make_source(work: Path, model: ModelSpec, frames: int) -> Path:
    """A moving synthetic clip at the model's picture size (H.264: decoding costs little)."""
    import numpy as np

    from liveedit.engine.presets import get_preset
    from liveedit.sidecar.media import SegmentWriter

    preset = get_preset(model.preset)
    path = work / f"source-{preset.width}x{preset.height}-{frames}.mov"
    if path.exists():
        return path
    y, x = np.mgrid[0:preset.height, 0:preset.width]
    with SegmentWriter(path, rate=RATE, format="h264", width=preset.width, height=preset.height) as writer:
        for i in range(frames):
            frame = np.stack([(x + 4 * i) % 256, (y + 2 * i) % 256, ((x + y) // 2 + 3 * i) % 256], axis=-1)
            writer.write(frame.astype(np.uint8))
    return path


def _task(source: Path, folder: Path, name: str, frames: int, seed: int, format: str) -> RegionTask:
    region = RegionSpec(media=source, first_frame=0, frame_count=frames, instruction="make the fur snowy white",
                        seed=seed, name=name)
    return RegionTask(f"bench-{name}", 0, region, folder, folder / name, format)


def _timed(executor, task: RegionTask) -> tuple[float, float | None]:
    """Seconds for the whole region, and until its first edited frame: from the progress
    reports, or, when the Ray worker finished before its progress was polled, from the time
    the worker recorded (its machine's clock)."""
    start, wall = time.perf_counter(), time.time()
    first: list[float] = []

    def progress(done: int, total: int | None = None) -> None:
        if done > 0 and not first:
            first.append(time.perf_counter() - start)

    executor.run(task, progress, threading.Event())
    seconds = time.perf_counter() - start
    if not first:
        recorded = [r["first_frame"] for r in getattr(executor, "records", [])
                    if r["job_id"] == task.job_id and r["outcome"] == "done" and r["first_frame"]]
        if recorded:
            first.append(recorded[-1] - wall)
    return seconds, (first[0] if first else None)


def _ray_executor(config: BenchConfig, workers: int | None):
    from liveedit.sidecar.jobs.ray_executor import RayExecutor

    return RayExecutor(config.model, address=config.address, workers=workers, **config.executor_options)


def bench_region(config: BenchConfig, make_executor: Callable = _ray_executor) -> dict:
    import torch

    config.work.mkdir(parents=True, exist_ok=True)
    source = make_source(config.work, config.model, config.frames)
    folder = config.work / f"region-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir()
    models = replace(config.model, device=None).load()
    if models.device.type == "cuda":
        from liveedit.engine.speed import warm_up

        warm_up(models)
    local = LocalExecutor(models=models)
    ray = make_executor(config, 1)
    try:
        worker = ray.ready_worker()
        runs: dict[str, list[tuple[float, float | None]]] = {"local": [], "ray": []}
        for i in range(config.repeat + 1):  # the first of each is not timed
            for kind, executor in (("local", local), ("ray", ray)):
                result = _timed(executor, _task(source, folder, f"{kind}-{i}", config.frames, i, config.format))
                if i:
                    runs[kind].append(result)
    finally:
        ray.close()
    local_s = statistics.median(t for t, _ in runs["local"])
    ray_s = statistics.median(t for t, _ in runs["ray"])
    del local, models
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {
        "what": "ray-region", "frames": config.frames, "format": config.format, "repeat": config.repeat,
        "local_s": round(local_s, 3), "ray_s": round(ray_s, 3),
        "ray_overhead_pct": round(100 * (ray_s / local_s - 1), 2),
        "local_first_frame_s": _median_or_none([f for _, f in runs["local"]]),
        "ray_first_frame_s": _median_or_none([f for _, f in runs["ray"]]),
        "local_fps": round(config.frames / local_s, 2), "ray_fps": round(config.frames / ray_s, 2),
        "ray_worker": f"{worker.host} GPU {','.join(worker.gpu_ids)} {worker.device_name or worker.device}",
    }


def _median_or_none(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def bench_scaling(config: BenchConfig, make_executor: Callable = _ray_executor) -> dict:
    config.work.mkdir(parents=True, exist_ok=True)
    source = make_source(config.work, config.model, config.frames)
    runs = []
    for n in config.workers:
        kill = config.kill_one and n == max(config.workers, key=lambda w: float("inf") if w is None else w)
        runs.append(_scaling_run(config, source, n, kill, make_executor))
    base = min(runs, key=lambda r: r["workers"])
    for r in runs:
        r["speedup"] = round(r["regions_per_minute"] / base["regions_per_minute"], 3)
        r["efficiency"] = round(r["speedup"] / (r["workers"] / base["workers"]), 3)
    return {"what": "ray-scaling", "frames": config.frames, "format": config.format, "regions": config.regions,
            "runs": runs}


def _scaling_run(config: BenchConfig, source: Path, workers: int | None, kill: bool, make_executor) -> dict:
    started = time.time()
    ex = make_executor(config, workers)
    try:
        while not (statuses := ex.workers()) or any(w.state != "idle" for w in statuses):
            failed = [w.error or f"worker {w.index} failed" for w in statuses if w.state == "failed"]
            if failed:  # a measurement with fewer workers than asked would mislead
                raise LiveEditError("a Ray worker could not start: " + "; ".join(failed))
            time.sleep(0.1)
        ready = time.time()
        count = len(statuses)
        folder = config.work / f"scaling-{count}-{time.strftime('%Y%m%d-%H%M%S')}"
        folder.mkdir()
        regions = tuple(RegionSpec(media=source, first_frame=0, frame_count=config.frames, seed=i, name=f"r{i}",
                                   instruction="make the fur snowy white") for i in range(config.regions))
        killed = None
        with RenderQueue(folder / "jobs.sqlite", ex) as queue:
            submitted = time.time()
            job = queue.submit(JobSpec(regions, folder, format=config.format))
            while not (job := queue.get(job.id)).finished:
                if kill and killed is None:
                    killed = _kill_one_worker(ex, job.id)
                time.sleep(0.05)
            done = time.time()
        records = [r for r in ex.records if r["job_id"] == job.id]
    finally:
        ex.close()
    seconds = done - submitted
    first = {}
    for r in records:
        if r["first_frame"] is not None:
            first[r["worker"]] = min(first.get(r["worker"], r["first_frame"]), r["first_frame"])
    peak = {}
    for r in records:
        if r.get("peak_memory"):
            peak[r["worker"]] = max(peak.get(r["worker"], 0), r["peak_memory"])
    result = {
        "workers": count, "state": job.state, "seconds": round(seconds, 2),
        "regions_per_minute": round(config.regions / seconds * 60, 3),
        "workers_ready_s": round(ready - started, 2),
        "first_frame_after_submit_s": {w: round(t - submitted, 2) for w, t in sorted(first.items())},
        "first_frame_after_start_s": {w: round(t - started, 2) for w, t in sorted(first.items())},
        "all_workers_first_frame_after_submit_s": round(max(first.values()) - submitted, 2) if first else None,
        "peak_memory_gib": {w: round(b / 2**30, 2) for w, b in sorted(peak.items())},
    }
    if kill:
        result["kill"] = _kill_report(killed, records, job, folder, config.regions)
    return result


def _kill_one_worker(ex, job_id: str) -> dict | None:
    """SIGKILL the first worker of this machine seen mid-region (frames written, not all)."""
    for w in ex.workers():
        if (w.job_id == job_id and w.state == "rendering" and w.frames_done > 0 and w.pid
                and w.host == socket.gethostname() and (w.frames_total is None or w.frames_done < w.frames_total)):
            os.kill(w.pid, signal.SIGKILL)
            return {"worker": w.index, "pid": w.pid, "region": w.region_index, "frames_done": w.frames_done}
    return None


def _kill_report(killed: dict | None, records: list[dict], job, folder: Path, regions: int) -> dict:
    if killed is None:
        return {"killed": None, "ok": False, "why": "no worker of this machine was seen mid-region"}
    attempts = [r for r in records if r["index"] == killed["region"]]
    names = sorted(p.name for p in folder.iterdir() if p.suffix in (".mov", ".otio") or p.name.startswith("."))
    expected = sorted(f"r{i}{ext}" for i in range(regions) for ext in (".mov", ".otio"))
    report = {**killed, "attempts": [(r["outcome"], r["worker"], r["pid"]) for r in attempts],
              "job_state": job.state, "outputs_as_expected": names == expected}
    report["ok"] = (job.state == DONE and names == expected and [r["outcome"] for r in attempts][-1:] == ["done"]
                    and any(r["outcome"] == "lost" for r in attempts))
    return report


def record(path: Path, meta: dict, results: list[dict]) -> None:
    """A dated table appended to a markdown file (docs/benchmarks.md)."""
    lines = [f"\n### {meta['date']} · {meta['device']} · commit {meta['commit']} · {meta['model']} · "
             f"`liveedit bench-ray`\n", "| measurement | figures |", "| --- | --- |"]
    for r in results:
        if r["what"] == "ray-scaling":
            for run in r["runs"]:
                figures = ", ".join(f"{k} {v}" for k, v in run.items())
                lines.append(f"| ray-scaling ({r['regions']} regions of {r['frames']} frames) | {figures} |")
        else:
            lines.append(f"| {r['what']} | " + ", ".join(f"{k} {v}" for k, v in r.items() if k != "what") + " |")
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")
