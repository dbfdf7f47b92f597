"""The Ray executor: the render queue's regions rendered on the GPUs of a Ray cluster.

`RayExecutor` sits behind the queue's `RegionExecutor` seam (executor.py), like the local
executor: `run(task, progress, cancel)` returns once the region's segment is in place and
checked. Its `slots` (one per GPU worker) tell the queue how many regions to hand out at
once; SQLite stays the only record of job and region state, so a sidecar that dies resumes
as it does with the local executor.

Ray runs in a process of its own (ray_driver.py), started by the executor and spoken to over
a socket: a Ray driver whose cluster goes away ends its process, and that must not end the
sidecar. When that process ends (the cluster stopped, its head node lost, a crash), regions
in flight and later ones fail with a message saying so, or render on this machine's GPU
when a `fallback` executor was given; the executor tries to reconnect at most every
`reconnect_interval` seconds. Nothing waits without a bound.

Where things are: regions name media and output folders by path, so on a cluster they must
be on storage that the sidecar and every worker mount at the same paths. A worker that cannot
read a region's media or write its folder fails that region with a message naming the host
and the path; the sidecar checks that it sees what a worker wrote before reporting it.

Without an address the executor starts a local cluster bound to the loopback interface only.
Ray is an optional dependency: `pip install 'liveedit-sidecar[ray]'`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.jobs.executor import (ProgressCallback, RegionCancelled, RegionExecutor, RegionResult,
                                            RegionTask)
from liveedit.sidecar.jobs.queue import OutputCheckError, remove_leftovers
from liveedit.sidecar.models import ModelSpec

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'liveedit-sidecar[ray]'"
DRIVER_MODULE = __name__.rsplit(".", 1)[0] + ".ray_driver"


class RayNotInstalledError(LiveEditError):
    """--ray was asked for but Ray is not installed."""

    kind = Kind.FAILED_PRECONDITION


class RayClusterError(LiveEditError):
    """The Ray cluster cannot be reached, or went away."""

    kind = Kind.UNAVAILABLE


class RayRegionError(LiveEditError):
    """A region failed on a Ray worker; the message says why and where."""

    kind = Kind.FAILED_PRECONDITION


def require_ray() -> None:
    """Raise RayNotInstalledError, saying how to install Ray, unless it can be imported."""
    if importlib.util.find_spec("ray") is None:
        raise RayNotInstalledError(
            f"rendering on a Ray cluster needs Ray, which is not installed here: {INSTALL_HINT} "
            "(the same Ray version as the cluster's)")


@dataclass(frozen=True)
class WorkerStatus:
    """One GPU worker, as `liveedit status` lists it."""

    index: int
    state: str  # starting, idle, reserved, rendering, cancelling, restarting, failed
    host: str = ""
    node_ip: str = ""
    pid: int = 0
    gpu_ids: tuple[str, ...] = ()
    device: str = ""
    device_name: str = ""
    job_id: str | None = None
    region_index: int | None = None
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    regions_done: int = 0
    model: str = ""  # the loaded model's description (says so when the weights are random)
    model_identity: str = ""  # render.model_identity: names the weights in settings keys

    @classmethod
    def from_dict(cls, data: dict) -> "WorkerStatus":
        return cls(**{**data, "gpu_ids": tuple(data.get("gpu_ids") or ())})


@dataclass
class _Driver:
    """One driver process and what it said."""

    process: subprocess.Popen
    conn: object
    address: str = ""
    slots: int = 0
    info: dict = field(default_factory=dict)
    mailboxes: dict = field(default_factory=dict)  # region key -> queue.Queue of messages
    workers: list = field(default_factory=list)
    gone: str | None = None  # why it ended
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *message) -> bool:
        try:
            with self.send_lock:
                self.conn.send(message)
            return True
        except (OSError, EOFError, ValueError):
            return False


class RayExecutor:
    """Renders regions on Ray workers, one long-lived actor per GPU.

    `models` is what every worker loads (its device is the worker's own GPU). `address`: a
    Ray cluster ("HOST:PORT", "auto"); None starts a local cluster on this machine, with
    `ray_init` passed to ray.init (num_cpus, num_gpus, object_store_memory, ...).
    `workers`: how many GPU workers (default: one per GPU in the cluster). A region whose
    worker dies goes to another worker, up to `max_attempts` tries in all. `fallback`: an
    executor for this machine that renders when the cluster is gone (None: those regions
    fail with the reason). `env`: extra environment for the driver process (RAY_* settings)."""

    def __init__(self, models: ModelSpec, *, address: str | None = None, workers: int | None = None,
                 cpus_per_worker: float = 1, max_attempts: int = 3, warm_up: bool = True,
                 fallback: RegionExecutor | None = None, ray_init: dict | None = None,
                 connect_timeout: float = 120.0, start_timeout: float = 600.0, cancel_timeout: float = 30.0,
                 stall_timeout: float = 300.0, reconnect_interval: float = 30.0, env: dict | None = None):
        require_ray()
        if workers is not None and workers < 1:
            raise LiveEditError(f"a Ray executor needs at least one worker, not {workers}")
        if max_attempts < 1:
            raise LiveEditError(f"max_attempts must be 1 or more, not {max_attempts}")
        self.address = address
        self.fallback = fallback
        self.connect_timeout = connect_timeout
        self.cancel_timeout = cancel_timeout
        self.reconnect_interval = reconnect_interval
        self._env = dict(env or {})
        self._config = {
            "address": address, "workers": workers, "cpus_per_worker": cpus_per_worker,
            "max_attempts": max_attempts, "warm_up": warm_up, "ray_init": dict(ray_init or {}),
            "model": replace(models, device=None),  # each worker picks its own GPU
            "start_timeout": start_timeout, "cancel_timeout": cancel_timeout, "stall_timeout": stall_timeout,
        }
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._closed = False
        self._last_start = time.monotonic()
        self._reconnect_error: str | None = None
        self._driver: _Driver = self._start_driver()
        self.slots = self._driver.slots

    # ------------------------------------------------------------------ the driver process

    def _start_driver(self) -> _Driver:
        parent, child = socket.socketpair()
        env = {**os.environ, **self._env}
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not self.address:
            # A local cluster listens on the loopback interface only: Ray binds its servers to
            # the node's address, which this makes 127.0.0.1 (on Linux it would be the LAN's).
            env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        try:
            process = subprocess.Popen([sys.executable, "-m", DRIVER_MODULE, str(child.fileno())],
                                       pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        finally:
            child.close()
        from multiprocessing.connection import Connection

        conn = Connection(parent.detach())
        driver = _Driver(process, conn)
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
        try:
            driver.send("config", self._config)
            deadline = time.monotonic() + self.connect_timeout
            while not conn.poll(0.2):
                if process.poll() is not None:
                    raise RayClusterError(f"the Ray driver for {where} ended (exit code {process.returncode}) "
                                          "before connecting; see the messages above")
                if time.monotonic() > deadline:
                    raise RayClusterError(f"could not connect to {where} within {self.connect_timeout:.0f} s")
            try:
                kind, detail = conn.recv()
            except (EOFError, OSError):
                raise RayClusterError(f"the Ray driver for {where} ended before connecting; see the messages "
                                      "above") from None
            if kind == "fatal":
                raise RayClusterError(detail)
        except BaseException:
            _end_process(process, conn, timeout=2.0)  # not connected: no workers to stop
            raise
        driver.info, driver.address, driver.slots = detail, detail["address"], detail["slots"]
        threading.Thread(target=self._read, args=(driver,), daemon=True, name="liveedit-ray-reader").start()
        log.info("Ray cluster at %s: %d GPU worker(s)", driver.address, driver.slots)
        return driver

    def _read(self, driver: _Driver) -> None:
        while True:
            try:
                message = driver.conn.recv()
            except (EOFError, OSError):
                break
            kind = message[0]
            if kind == "workers":
                with self._lock:
                    driver.workers = [WorkerStatus.from_dict(w) for w in message[1]]
            elif kind == "record":
                with self._lock:
                    self._records.append(message[1])
            else:  # progress, done, failed, cancelled: for the region's run()
                with self._lock:
                    mailbox = driver.mailboxes.get(message[1])
                if mailbox is not None:
                    mailbox.put(message)
        try:
            code = driver.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        reason = (f"the connection to the Ray cluster at {driver.address} ended (its driver process exited with "
                  f"code {code}): the cluster was stopped or became unreachable")
        with self._lock:
            if self._closed:
                reason = "the Ray executor was closed"
            driver.gone = reason
            driver.workers = [replace(w, state="failed", error=reason) for w in driver.workers]
            mailboxes = list(driver.mailboxes.values())
        if not self._closed:
            log.error("%s", reason)
        for mailbox in mailboxes:
            mailbox.put(("gone", None, reason))

    def _current_driver(self) -> _Driver | None:
        """The live driver; after it ended, a new one if reconnecting works (at most every
        reconnect_interval seconds), else None."""
        with self._lock:
            driver, closed = self._driver, self._closed
            if closed:
                raise RayClusterError("the Ray executor was closed; start the sidecar again")
            if driver.gone is None:
                return driver
            if time.monotonic() - self._last_start < self.reconnect_interval:
                return None
            self._last_start = time.monotonic()
        try:
            fresh = self._start_driver()
        except LiveEditError as exc:
            log.warning("reconnecting to the Ray cluster failed: %s", exc)
            with self._lock:
                self._reconnect_error = str(exc)
            return None
        with self._lock:
            self._driver, self._reconnect_error = fresh, None
        return fresh

    def _gone_reason(self) -> str:
        with self._lock:
            reason, error = self._driver.gone or "the Ray driver stopped", self._reconnect_error
        return f"{reason}; reconnecting failed: {error}" if error else reason

    # ------------------------------------------------------------------ RegionExecutor

    def run(self, task: RegionTask, progress: ProgressCallback, cancel: threading.Event) -> RegionResult:
        driver = self._current_driver()
        if driver is None:
            return self._without_cluster(task, progress, cancel, self._gone_reason())
        # Unique per call: a late message about an earlier, abandoned render of the same
        # region can never reach this one.
        key = f"{task.job_id}:{task.index}:{uuid.uuid4().hex[:8]}"
        mailbox: queue.Queue = queue.Queue()
        with self._lock:
            driver.mailboxes[key] = mailbox
            gone = driver.gone
        if gone is not None or not driver.send("render", key, task):
            with self._lock:
                driver.mailboxes.pop(key, None)
            return self._without_cluster(task, progress, cancel, gone or "the Ray driver stopped")
        cancel_sent = None
        try:
            while True:
                if cancel.is_set() and cancel_sent is None:
                    driver.send("cancel", key)
                    cancel_sent = time.monotonic()
                if cancel_sent is not None and time.monotonic() - cancel_sent > self.cancel_timeout + 15:
                    raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled (its Ray worker "
                                          "did not confirm in time)")
                try:
                    kind, _, *detail = mailbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                if kind == "progress":
                    try:
                        progress(*detail)
                    except RegionCancelled:
                        pass  # the cancel event is set: sent to the worker above
                elif kind == "done":
                    return self._checked(task, detail[0])
                elif kind == "failed":
                    raise RayRegionError(detail[0])
                elif kind == "cancelled":
                    raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled")
                elif kind == "gone":
                    if cancel.is_set():
                        raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled")
                    return self._without_cluster(task, progress, cancel, detail[0])
        finally:
            with self._lock:
                driver.mailboxes.pop(key, None)

    def _without_cluster(self, task: RegionTask, progress, cancel, reason: str | None) -> RegionResult:
        if self.fallback is None:
            raise RayClusterError(f"{reason}; region {task.index} was not rendered. Start the cluster again, or "
                                  "serve with --ray-fallback to render on this machine meanwhile")
        log.warning("rendering region %d of job %s on this machine: %s", task.index, task.job_id, reason)
        remove_leftovers(task.output_stem)  # what a worker that vanished mid-region left
        return self.fallback.run(task, progress, cancel)

    def _checked(self, task: RegionTask, outcome: dict) -> RegionResult:
        """The worker's segment as this sidecar sees it: it must exist here (shared storage)
        and hold the frames the worker reported."""
        output = Path(outcome["output"])
        where = f"the Ray worker on {outcome.get('host', '?')}"
        if not output.exists():
            raise OutputCheckError(
                f"{where} wrote {output}, but this sidecar cannot see it: the output folder must be on storage "
                "the sidecar and every worker share at the same path (docs/scale-out.md)")
        frames = segment_frame_count(output)
        if frames != outcome["frame_count"]:
            raise OutputCheckError(f"{where} reported {outcome['frame_count']} frames in {output}, but it holds "
                                   f"{frames}; it was not recorded as done")
        otio = Path(outcome["otio"]) if outcome.get("otio") else None
        return RegionResult(output=output, frame_count=frames, otio=otio)

    # ------------------------------------------------------------------ status

    def describe(self) -> str:
        with self._lock:
            driver = self._driver
            if driver.gone:
                return f"ray cluster at {driver.address}: GONE ({driver.gone})"
            local = "" if self.address else " (local, started by this sidecar)"
            return f"ray cluster at {driver.address}{local}, {driver.slots} GPU worker(s)"

    def workers(self) -> list[WorkerStatus]:
        with self._lock:
            return list(self._driver.workers)

    def ready_worker(self, timeout: float | None = None) -> WorkerStatus:
        """The first worker with its models loaded (what they are: `model`, `model_identity`);
        waits for one. Raises RayClusterError when none can start or the cluster is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                workers, gone = list(self._driver.workers), self._driver.gone
            if gone is not None:
                raise RayClusterError(gone)
            ready = [w for w in workers if w.model_identity]
            if ready:
                return ready[0]
            if workers and all(w.state == "failed" for w in workers):
                raise RayClusterError("no Ray worker could start: " + "; ".join(w.error or "?" for w in workers))
            if deadline is not None and time.monotonic() > deadline:
                raise RayClusterError(f"no Ray worker had loaded the models within {timeout:.0f} s")
            time.sleep(0.1)

    @property
    def records(self) -> list[dict]:
        """Every attempt at a region, as the workers recorded it: job_id, index, worker, host,
        pid, gpu_ids, outcome (done, failed, cancelled, lost), started / first_frame / ended
        (the worker's clock, seconds since the epoch), frames, reason, attempt, peak_memory
        (bytes of GPU memory the render peaked at; None on the CPU)."""
        with self._lock:
            return list(self._records)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the workers and the driver (regions still running are cancelled)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            driver = self._driver
        driver.send("shutdown")
        _end_process(driver.process, driver.conn, timeout)

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def segment_frame_count(path: Path) -> int:
    """Frames in a written segment: a movie's, or a PNG folder's files."""
    if path.is_dir():
        return sum(1 for p in path.iterdir() if p.suffix.lower() == ".png")
    from liveedit.sidecar.media import probe

    return probe(path).frame_count


def _end_process(process: subprocess.Popen, conn, timeout: float = 30.0) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("the Ray driver did not stop within %.0f s; ending it", timeout)
        try:
            os.killpg(process.pid, 9)  # its own session: the driver and a local cluster it started
        except OSError:
            process.kill()
        process.wait()
    conn.close()
