"""The render queue: jobs made of regions, persisted in SQLite so that a crash or a restart
loses nothing. (Over 600 lines on purpose: the job states, the SQLite rows, the process lock
and the render threads all change under one lock, and splitting them would spread that lock
across modules.)

- A job is a list of regions (a source range of one media file plus an instruction) and an
  output folder. Regions are handed out in submission order through a `RegionExecutor`, as
  many at once as the queue has slots (one by default; an executor with several workers says
  how many through its `slots` attribute). The local one calls `render_job_region` on the GPU
  worker; the Ray one (ray_executor.py) renders on the GPUs of a Ray cluster.
- State lives in SQLite (WAL mode). Exactly one `RenderQueue` per database runs jobs: an
  exclusive lock file next to the database keeps a second sidecar from running them twice.
- On start, regions that were running when the process died go back to "queued" and render
  again; finished regions are never redone. A region is recorded as done only after the
  executor returned a segment that was moved into place and reported its frame count, and the
  queue checked that the file exists, lies inside the output folder and has a plausible
  frame count. A partial file is therefore never presented as a finished output.
- Progress (frames, fps, ETA) is kept in memory and pushed to watchers as `Job` snapshots;
  only state changes are written to disk.
- Jobs are not kept forever: `delete` forgets a finished job, and with `retention_seconds`
  finished jobs are forgotten that long after they finished (their files stay). `list_page`
  hands them out a page at a time. A `request_id` on submit makes a retried submit answer
  the job the first one queued instead of queueing it twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Callable

from liveedit.errors import Kind, LiveEditError, known_failure
from liveedit.sidecar.jobs.executor import RegionCancelled, RegionExecutor, RegionResult, RegionTask
from liveedit.sidecar.jobs.spec import (CANCELLED, DONE, FAILED, QUEUED, RUNNING, Job, JobSpec, JobSpecError,
                                        RegionSpec, RegionStatus, job_state, validate_spec)
from liveedit.sidecar.naming import confined_path, default_stem, region_leftovers
from liveedit.sidecar.outputs import cut

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_REQUEST_ID_CHARS = 128


class JobNotFoundError(LiveEditError):
    """No job with that id in this queue."""

    kind = Kind.NOT_FOUND


class QueueBusyError(LiveEditError):
    """Another process already runs the jobs of this database."""

    kind = Kind.BUSY


class JobsDatabaseError(LiveEditError):
    """The jobs database was written by a newer LiveEdit; this one cannot use it."""

    kind = Kind.FAILED_PRECONDITION


class JobBusyError(LiveEditError):
    """The job is still queued or running."""

    kind = Kind.FAILED_PRECONDITION


class QueueClosedError(LiveEditError):
    """The queue was closed; start the sidecar again."""

    kind = Kind.UNAVAILABLE


class OutputCheckError(LiveEditError):
    """An executor reported an output that is missing, misplaced or of the wrong length."""

    kind = Kind.FAILED_PRECONDITION


def remove_leftovers(output_stem: Path) -> None:
    """Delete what naming.region_leftovers finds; a leftover that cannot go is logged, not raised.
    Whatever host and pid the partials name: this is called only once the queue knows that
    nothing renders the region any more (its renderer died or vanished, or it renders it again
    itself), which outputs.remove_dead_partials cannot know for another machine's files."""
    import shutil

    for path in region_leftovers(output_stem):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            log.info("removed %s, left by an interrupted render", path)
        except OSError as exc:  # a leftover is untidy, not harmful: the render goes on
            log.warning("could not remove %s, left by an interrupted render: %s", path, exc)


# --------------------------------------------------------------------------- the queue


@dataclass
class _Region:
    spec: RegionSpec
    output_stem: Path
    state: str = QUEUED
    output: str | None = None
    otio: str | None = None
    error: str | None = None
    frames_done: int = 0
    frames_total: int | None = None
    started: float | None = None
    fps: float | None = None
    eta: float | None = None

    def status(self, index: int) -> RegionStatus:
        return RegionStatus(
            index=index,
            state=self.state,
            frames_done=self.frames_done,
            frame_count=self.frames_total or self.spec.frame_count,
            fps=None if self.fps is None else round(self.fps, 3),
            eta_seconds=None if self.eta is None else round(self.eta, 1),
            output=self.output,
            otio=self.otio,
            error=self.error,
        )


@dataclass
class _Job:
    id: str
    created: str
    spec: JobSpec
    regions: list[_Region] = field(default_factory=list)
    finished_at: float | None = None  # wall clock when it last became finished (retention)
    request_id: str | None = None
    seq: int = 0  # submission number (the database's), for paging

    def snapshot(self) -> Job:
        return Job(
            id=self.id,
            state=job_state(r.state for r in self.regions),
            regions=tuple(r.status(i) for i, r in enumerate(self.regions)),
            created=self.created,
            label=self.spec.label,
            spec=self.spec,
        )


@dataclass
class _Running:
    job: _Job
    index: int
    cancel: threading.Event
    by_user: bool = False  # cancelled by a client, not by shutdown


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    spec    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS regions (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    idx         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    output_stem TEXT NOT NULL,
    output      TEXT,
    otio        TEXT,
    frames      INTEGER,
    error       TEXT,
    PRIMARY KEY (job_id, idx)
);
"""


class RenderQueue:
    """Jobs persisted in `db_path`, rendered by `executor` on background threads: `slots`
    regions at once (default: the executor's `slots` attribute, else 1), each on its own
    thread. Thread-safe; `watch` and `watch_all` are for asyncio callers."""

    def __init__(self, db_path: str | os.PathLike, executor: RegionExecutor, *,
                 autostart: bool = True, clock: Callable[[], float] = time.monotonic,
                 process_lock: "_ProcessLock | None" = None, retention_seconds: float | None = None,
                 wall_clock: Callable[[], float] = time.time, slots: int | None = None):
        """`process_lock`: the database's lock, taken earlier with `acquire_queue_lock` (a
        sidecar takes it before loading its model); `retention_seconds`: forget finished jobs
        that long after they finished (None: keep them until `delete`)."""
        self._db_path = Path(db_path)
        self._executor = executor
        self._clock = clock
        self._wall_clock = wall_clock
        self._retention = retention_seconds
        self._request_ids: dict[str, tuple[str, str]] = {}  # request_id -> (job id, spec JSON)
        self._slots = int(slots if slots is not None else getattr(executor, "slots", 1))
        if self._slots < 1:
            raise ValueError(f"a render queue needs at least one slot, not {self._slots}")
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, _Job] = {}  # insertion order = submission order
        self._listeners: set[_Listener] = set()
        self._running: dict[tuple[str, int], _Running] = {}  # (job id, region index) in flight
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._closed = False
        self._lock_file = process_lock or acquire_queue_lock(self._db_path)
        try:
            self._db = sqlite3.connect(self._db_path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a recorded "done" survives power loss
            self._db.executescript(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise JobsDatabaseError(f"{self._db_path} was written by a newer LiveEdit (schema {version}); "
                                     "upgrade, or point the sidecar at another jobs database")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._load()
        except Exception:
            self._lock_file.close()
            raise
        if autostart:
            self.resume()

    # ------------------------------------------------------------------ public API

    def submit(self, spec: JobSpec, request_id: str | None = None) -> Job:
        """Validate and queue a job; returns its first snapshot. Nothing is created on disk
        unless the job is accepted. A `request_id` seen before answers that job again (a
        retried submit), or is refused if it came with another job."""
        fingerprint = json.dumps(spec.to_dict(), sort_keys=True, default=str) if request_id else None
        if request_id:
            if len(request_id) > MAX_REQUEST_ID_CHARS:
                raise JobSpecError(f"request_id is {len(request_id)} characters; the limit is "
                                   f"{MAX_REQUEST_ID_CHARS}")
            with self._lock:
                self._check_open()
                seen = self._seen_request(request_id, fingerprint)
                if seen is not None:
                    return seen
        spec = validate_spec(spec)
        job_id = uuid.uuid4().hex
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        regions = []
        stems: dict[Path, int] = {}
        for i, region in enumerate(spec.regions):
            stem = (confined_path(spec.output_dir, region.name, f"regions[{i}].name") if region.name
                    else default_stem(spec.output_dir, job_id, i, region))
            if stem in stems:
                raise JobSpecError(f"regions[{stems[stem]}] and regions[{i}] would write the same output "
                                   f"{str(stem)!r}; give them different names")
            if region.media.with_suffix("") == stem or region.media.is_relative_to(stem):
                raise JobSpecError(f"regions[{i}] would write over its source media {str(region.media)!r}; "
                                   "choose another name or output folder")
            stems[stem] = i
            regions.append(_Region(spec=region, output_stem=stem))
        job = _Job(id=job_id, created=created, spec=spec, regions=regions, request_id=request_id or None)
        with self._lock:
            self._check_open()
            if request_id and (seen := self._seen_request(request_id, fingerprint)) is not None:
                return seen  # the same request raced itself: the first one queued it
            try:  # accepted: only now is the output folder made
                spec.output_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JobSpecError(f"output_dir {cut(spec.output_dir)!r} cannot be created "
                                   f"({exc.strerror or type(exc).__name__}); choose a folder you can write to") from None
            with self._db:  # one transaction: the job appears whole or not at all
                self._db.execute("BEGIN")
                job.seq = self._db.execute("INSERT INTO jobs (id, created, spec) VALUES (?, ?, ?)",
                                           (job_id, created, json.dumps(spec.to_dict()))).lastrowid
                self._db.executemany(
                    "INSERT INTO regions (job_id, idx, state, output_stem) VALUES (?, ?, ?, ?)",
                    [(job_id, i, QUEUED, str(r.output_stem)) for i, r in enumerate(regions)])
            self._jobs[job_id] = job
            if request_id:
                self._request_ids[request_id] = (job_id, fingerprint)
            snapshot = job.snapshot()
            self._publish(snapshot)
            self._wake.notify_all()
        log.info("job %s queued: %d region(s) into %s", job_id, len(regions), cut(spec.output_dir))
        self.expire()
        return snapshot

    def _seen_request(self, request_id: str, fingerprint: str) -> Job | None:
        seen = self._request_ids.get(request_id)
        if seen is None or seen[0] not in self._jobs:
            return None
        if seen[1] != fingerprint:
            raise JobSpecError(f"request_id {cut(request_id)!r} was already used for another job; "
                               "give each job its own request_id")
        return self._jobs[seen[0]].snapshot()

    @property
    def executor(self) -> RegionExecutor:
        """What renders the regions (the server reports it and its workers)."""
        return self._executor

    def get(self, job_id: str) -> Job:
        with self._lock:
            return self._job(job_id).snapshot()

    def list(self) -> list[Job]:
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def list_page(self, page_size: int = 0, page_token: str = "") -> tuple[list[Job], str]:
        """One page of jobs, oldest first, and the token of the next page ("" after the last).
        The token is the submission number of the page's last job, so jobs deleted or forgotten
        between pages never make a page skip or repeat one."""
        if page_size < 0:
            raise JobSpecError(f"page_size {page_size}: give 0 (the default, {DEFAULT_PAGE_SIZE}) or more")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = 0
        if page_token:
            if not page_token.isdigit() or len(page_token) > 18:
                raise JobSpecError(f"page_token {cut(page_token)!r} is not one this server gave; "
                                   "pass next_page_token from the previous page, or none for the first")
            after = int(page_token)
        self.expire()
        with self._lock:
            later = [job for job in self._jobs.values() if job.seq > after]
            page = later[:size]
            more = len(later) > size
        return [job.snapshot() for job in page], (str(page[-1].seq) if more else "")

    def delete(self, job_id: str) -> None:
        """Forget a finished job (its files stay). A queued or running one must be cancelled first."""
        with self._lock:
            job = self._job(job_id)
            if not job.snapshot().finished:
                raise JobBusyError(f"job {cut(job_id)} is still {job.snapshot().state}; cancel it first, "
                                   "then delete it")
            self._forget(job)

    def expire(self) -> list[str]:
        """Forget finished jobs older than the retention; returns their ids."""
        if self._retention is None:
            return []
        now = self._wall_clock()
        with self._lock:
            if self._closed:
                return []
            old = [job for job in self._jobs.values()
                   if job.finished_at is not None and now - job.finished_at > self._retention]
            for job in old:
                self._forget(job)
        if old:
            log.info("forgot %d finished job(s) older than %.0f s", len(old), self._retention)
        return [job.id for job in old]

    def _forget(self, job: "_Job") -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM regions WHERE job_id = ?", (job.id,))
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
        del self._jobs[job.id]
        if job.request_id:
            self._request_ids.pop(job.request_id, None)

    def cancel(self, job_id: str) -> Job:
        """Cancel the job's queued regions and stop its running ones. Finished regions keep
        their outputs. Cancelling a finished job changes nothing."""
        with self._lock:
            job = self._job(job_id)
            for i, region in enumerate(job.regions):
                if region.state == QUEUED:
                    self._set_state(job, i, CANCELLED)
            for running in self._running.values():
                if running.job is job:
                    running.by_user = True
                    running.cancel.set()
            snapshot = job.snapshot()
            self._publish(snapshot)
        return snapshot

    def resume(self) -> None:
        """Start rendering queued regions (those left running by a process that died were
        queued again when the database was opened). Does nothing if already started."""
        with self._lock:
            self._check_open()
            if not self._threads:
                for slot in range(self._slots):
                    name = "liveedit-render-queue" + (f"-{slot}" if self._slots > 1 else "")
                    thread = threading.Thread(target=self._loop, name=name, daemon=True)
                    self._threads.append(thread)
                    thread.start()
            self._wake.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Stop rendering (running regions go back to the queue) and release the database."""
        with self._lock:
            if self._closed:
                return
            self._stopping = True
            for running in self._running.values():
                running.cancel.set()
            self._wake.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                log.warning("render thread %s did not stop within %.0f s; its region will render again",
                            thread.name, timeout)
        with self._lock:
            self._closed = True
            listeners = list(self._listeners)
            self._listeners.clear()
            self._db.close()
            self._lock_file.close()
        for listener in listeners:
            listener.close()

    def __enter__(self) -> "RenderQueue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """Snapshots of one job: the current one first, then one per change, until it finishes.
        A slow reader skips intermediate snapshots, never the last one."""
        listener = _Listener(asyncio.get_running_loop(), job_id)
        with self._lock:
            first = self._job(job_id).snapshot()
            self._check_open()
            self._listeners.add(listener)
        try:
            yield first
            if first.finished:
                return
            async for job in listener:
                yield job
                if job.finished:
                    return
        finally:
            self._remove_listener(listener)

    async def watch_all(self) -> AsyncIterator[Job]:
        """Snapshots of every job: all current jobs first, then one per change, until close()."""
        listener = _Listener(asyncio.get_running_loop(), None)
        with self._lock:
            self._check_open()
            current = [job.snapshot() for job in self._jobs.values()]
            self._listeners.add(listener)
        try:
            for job in current:
                yield job
            async for job in listener:
                yield job
        finally:
            self._remove_listener(listener)

    # ------------------------------------------------------------------ rendering

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (claimed := self._claim_next()) is None:
                    self._wake.wait()
                if self._stopping:
                    return
                self._publish(claimed.job.snapshot())
            self._render(claimed)

    def _claim_next(self) -> _Running | None:
        for job in self._jobs.values():
            for i, region in enumerate(job.regions):
                if region.state == QUEUED:
                    region.frames_done, region.frames_total = 0, None
                    region.fps = region.eta = None
                    region.started = self._clock()
                    self._set_state(job, i, RUNNING)
                    running = self._running[(job.id, i)] = _Running(job, i, threading.Event())
                    return running
        return None

    def _render(self, running: _Running) -> None:
        job, index, cancel = running.job, running.index, running.cancel
        region = job.regions[index]
        task = RegionTask(job.id, index, region.spec, job.spec.output_dir, region.output_stem, job.spec.format,
                          job.spec.settings)

        def progress(frames_done: int, frames_total: int | None = None) -> None:
            if cancel.is_set():
                raise RegionCancelled(f"region {index} of job {job.id} was cancelled")
            self._progress(job, region, frames_done, frames_total)

        result = error = None
        try:
            result = self._check_result(task, self._executor.run(task, progress, cancel))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the region
            error = exc
        with self._lock:
            self._running.pop((job.id, index), None)
            if self._closed:
                return
            if result is not None:
                region.output, region.otio = str(result.output), result.otio and str(result.otio)
                region.frames_done = region.frames_total = result.frame_count
                region.eta = 0.0
                self._set_state(job, index, DONE, frames=result.frame_count)
            elif running.by_user:
                self._set_state(job, index, CANCELLED)
            elif self._stopping and not isinstance(error, OutputCheckError):
                self._set_state(job, index, QUEUED)  # shutdown, not the user's cancel: render it next start
            else:
                self._set_state(job, index, FAILED, error=_describe(error))
            self._publish(job.snapshot())
        if error is not None and not cancel.is_set():
            if isinstance(error, LiveEditError):
                log.warning("job %s region %d failed: %s", job.id, index, error)
            else:
                log.error("job %s region %d failed", job.id, index, exc_info=error)

    def _progress(self, job: _Job, region: _Region, frames_done: int, frames_total: int | None) -> None:
        with self._lock:
            now = self._clock()
            region.frames_done = frames_done
            if frames_total:
                region.frames_total = frames_total
            elapsed = now - (region.started or now)
            # Average since the region started: includes warm-up, so it never flatters.
            region.fps = frames_done / elapsed if elapsed > 0 and frames_done > 0 else None
            total = region.frames_total or region.spec.frame_count
            region.eta = max(total - frames_done, 0) / region.fps if region.fps else None
            self._publish(job.snapshot())

    @staticmethod
    def _check_result(task: RegionTask, result: RegionResult) -> RegionResult:
        if not isinstance(result, RegionResult):
            raise OutputCheckError(f"executor returned {type(result).__name__}, not a RegionResult")
        output_dir = task.output_dir
        paths = [("output", Path(result.output))] + ([("otio", Path(result.otio))] if result.otio else [])
        for what, path in paths:
            resolved = path.resolve()
            if not resolved.is_relative_to(output_dir):
                raise OutputCheckError(f"the renderer wrote its {what} to {str(path)!r}, outside the output "
                                       f"folder {str(output_dir)!r}; it was not recorded")
            if not resolved.exists():
                raise OutputCheckError(f"the renderer reported {what} {str(path)!r} but it does not exist; "
                                       "the region will need rendering again")
        low = task.region.frame_count
        high = task.region.frame_count + 2 * task.region.handles
        if not low <= result.frame_count <= high:
            raise OutputCheckError(
                f"the segment {str(result.output)!r} has {result.frame_count} frames; region {task.index} "
                f"needs {low} (up to {high} with handles). It was not recorded as done")
        return replace(result, output=Path(result.output).resolve(),
                       otio=Path(result.otio).resolve() if result.otio else None)

    # ------------------------------------------------------------------ storage

    def _load(self) -> None:
        rows = self._db.execute("SELECT seq, id, created, spec FROM jobs ORDER BY seq").fetchall()
        for seq, job_id, created, spec_json in rows:
            raw = json.loads(spec_json)
            spec = JobSpec.from_dict(raw)
            job = _Job(id=job_id, created=created, spec=spec, seq=seq)
            for idx, state, stem, output, otio, frames, error in self._db.execute(
                    "SELECT idx, state, output_stem, output, otio, frames, error FROM regions "
                    "WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall():
                region = _Region(spec=spec.regions[idx], output_stem=Path(stem), state=state,
                                 output=output, otio=otio, error=error)
                job.regions.append(region)
                if state == RUNNING:
                    # We hold the process lock, so whoever was rendering it died: whatever
                    # it left on disk is partial. Queue it again; never show it as done.
                    log.info("job %s region %d was interrupted; it will render again", job_id, idx)
                    remove_leftovers(Path(stem))
                    self._set_state(job, idx, QUEUED)
                if state == DONE and frames is not None:
                    region.frames_done = region.frames_total = frames
            if job.snapshot().finished:  # when is not stored: its retention counts from this start
                job.finished_at = self._wall_clock()
            self._jobs[job_id] = job

    def _set_state(self, job: _Job, index: int, state: str, *, frames: int | None = None,
                   error: str | None = None) -> None:
        region = job.regions[index]
        region.state, region.error = state, error
        job.finished_at = self._wall_clock() if job_state(r.state for r in job.regions) in (DONE, FAILED, CANCELLED) \
            else None
        if state != DONE:
            region.output = region.otio = None
        self._db.execute(
            "UPDATE regions SET state = ?, output = ?, otio = ?, frames = ?, error = ? WHERE job_id = ? AND idx = ?",
            (state, region.output, region.otio, frames, error, job.id, index))

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {cut(job_id)!r} in the render queue; list jobs to see their ids")
        return job

    def _check_open(self) -> None:
        if self._closed or self._stopping:
            raise QueueClosedError("the render queue is shutting down; start the sidecar again")

    # ------------------------------------------------------------------ listeners

    def _publish(self, snapshot: Job) -> None:
        # Under the lock, so watchers see snapshots in the order the changes happened (a stale
        # "running" must never arrive after "done"). offer() only schedules; it never blocks.
        with self._lock:
            for listener in list(self._listeners):
                if not listener.offer(snapshot):
                    self._listeners.discard(listener)

    def _remove_listener(self, listener: "_Listener") -> None:
        with self._lock:
            self._listeners.discard(listener)


def _describe(error: BaseException | None) -> str:
    if error is not None and not isinstance(error, LiveEditError):
        error = known_failure(error) or error  # the GPU out of memory: say what to do
    if isinstance(error, LiveEditError):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); see the sidecar log"


class _Listener:
    """Delivers snapshots from the render thread to one asyncio consumer. Keeps only the
    latest snapshot per job, so a slow consumer cannot make memory grow."""

    def __init__(self, loop: asyncio.AbstractEventLoop, job_id: str | None):
        self._loop = loop
        self._job_id = job_id
        self._pending: dict[str, Job] = {}
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, job: Job) -> bool:
        """Called from any thread. False once the consumer's loop is gone."""
        if self._job_id is not None and job.id != self._job_id:
            return True
        try:
            self._loop.call_soon_threadsafe(self._put, job)
        except RuntimeError:  # loop closed
            return False
        return True

    def close(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._close)
        except RuntimeError:
            pass

    def _put(self, job: Job) -> None:
        self._pending.pop(job.id, None)
        self._pending[job.id] = job
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> "_Listener":
        return self

    async def __anext__(self) -> Job:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        job_id = next(iter(self._pending))
        return self._pending.pop(job_id)


# --------------------------------------------------------------------------- one process per db


class _ProcessLock:
    """An exclusive OS lock on `<db>.lock`; released by the OS if the process dies."""

    def __init__(self, path: Path):
        self._file = open(path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise QueueBusyError(
                f"another LiveEdit sidecar (pid {holder}) is already running the jobs in "
                f"{path.with_suffix('')}; stop it first, or give this one its own jobs database") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the file releases the lock


def acquire_queue_lock(db_path: str | os.PathLike) -> _ProcessLock:
    """The exclusive lock of one jobs database; QueueBusyError when another process holds it.
    Take it before anything slow (loading a model) and hand it to RenderQueue(process_lock=)."""
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return _ProcessLock(db_path.with_name(db_path.name + ".lock"))


