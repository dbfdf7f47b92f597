"""The Ray side of the Ray executor: a driver process and the GPU workers it keeps. (Over
600 lines on purpose: it runs as its own process and ships its actor class to Ray workers, so
it imports nothing of the sidecar's that it can keep to itself.)

`RayExecutor` (ray_executor.py) starts this module as its own process,
`python -m liveedit.sidecar.jobs.ray_driver FD`, and talks to it over the socket FD with pickled
tuples (below). The sidecar never imports Ray itself: a Ray driver whose cluster goes away
ends its own process after Ray's reconnect timeout, and that must not take the sidecar, its
queue and its previews with it. Here the process ends, the sidecar sees the socket close and
reports the cluster gone (or renders locally, if asked).

This process connects to a cluster (an address, "auto") or starts a local one, then keeps
one `RegionWorker` actor per GPU (`num_gpus=1`). Each loads the models once and renders
whole regions, one at a time, so a region's causal stream never splits across workers.
Regions wait in arrival order for a free worker; a worker whose process dies (killed, its
node lost) is replaced by a new actor and its region goes back to the head of the line, to
another worker when one is free, up to `max_attempts` times. Progress is polled from the
rendering worker a few times a second and sent on.

Messages, sidecar → driver: ("config", dict) first, then ("render", key, RegionTask),
("cancel", key), ("shutdown",).
Driver → sidecar: ("connected", dict) or ("fatal", message) first, then ("workers", [dict]),
("progress", key, frames_done, frames_total), ("record", dict) once per attempt, and one of
("done", key, dict), ("failed", key, message), ("cancelled", key) per region.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from liveedit.errors import Kind, LiveEditError

log = logging.getLogger("liveedit.ray")

# A worker slot's states, as `liveedit status` shows them.
STARTING, IDLE, RESERVED, RENDERING, CANCELLING, RESTARTING, FAILED = (
    "starting", "idle", "reserved", "rendering", "cancelling", "restarting", "failed")
LIVE_STATES = frozenset({STARTING, IDLE, RESERVED, RENDERING, CANCELLING, RESTARTING})
MAX_START_FAILURES = 3  # a worker slot that cannot start this many times in a row gives up


class WorkerStorageError(LiveEditError):
    """A worker cannot read a region's media or write its output folder."""

    kind = Kind.FAILED_PRECONDITION  # the files are not where the workers are: fix the storage


# --------------------------------------------------------------------------- the worker actor


class RegionWorker:
    """One GPU's worker (a Ray actor with num_gpus=1): loads the models once, renders whole
    regions with the local executor's own call (jobs.render_task). Errors come back as
    outcomes, not exceptions, so that only a dead process reaches the driver as a Ray error.
    Threaded (max_concurrency > 1): progress and cancel are answered while a region renders."""

    def __init__(self, spec, warm_up: bool = True):
        self._lock = threading.Lock()
        self._current: dict | None = None
        self._host = socket.gethostname()
        self._load_error: str | None = None
        self._models = None
        self._load_seconds = 0.0
        # Every piece of model work (load, warm-up, renders) on one thread of its own, as the
        # sidecar's GPU worker does: Ray runs a threaded actor's calls on any of its pool's
        # threads, and PyTorch keeps cuDNN's benchmarked convolution plans per thread, so a
        # render on a thread the warm-up never used benchmarked every VAE convolution again
        # (2.9 s more before the first frame of each region on an H200, docs/benchmarks.md).
        self._gpu = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="liveedit-ray-gpu")
        self._gpu.submit(self._load, spec, warm_up).result()

    def _load(self, spec, warm_up: bool) -> None:
        started = time.monotonic()
        try:
            import torch

            threads = os.environ.get("OMP_NUM_THREADS")  # Ray sets it to the actor's CPUs
            if threads and threads.isdigit() and int(threads) > 0:
                torch.set_num_threads(int(threads))
            self._models = spec.load()
            if warm_up and self._models.device.type == "cuda":
                from liveedit.engine.speed import warm_up as run_warm_up

                run_warm_up(self._models)
        except Exception as exc:  # noqa: BLE001 - reported by describe(), the slot fails with it
            log.exception("loading the models failed")
            self._load_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, LiveEditError) else str(exc)
        self._load_seconds = time.monotonic() - started

    def describe(self) -> dict:
        import ray

        info = {"host": self._host, "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid(),
                "gpu_ids": [str(g) for g in ray.get_gpu_ids()], "load_seconds": round(self._load_seconds, 2),
                "error": self._load_error, "device": "", "device_name": "", "model": "", "model_identity": ""}
        if self._models is not None:
            from liveedit.sidecar.naming import model_identity

            device = self._models.device
            info["device"] = str(device)
            info["model"] = self._models.description
            info["model_identity"] = model_identity(self._models)
            if device.type == "cuda":
                import torch

                info["device_name"] = torch.cuda.get_device_name(device)
        return info

    def progress(self) -> dict | None:
        with self._lock:
            current = self._current
            if current is None:
                return None
            return {k: current[k] for k in ("key", "done", "total", "first_frame")}

    def cancel(self, key: str) -> bool:
        with self._lock:
            if self._current is not None and self._current["key"] == key:
                self._current["cancel"].set()
                return True
        return False

    def render(self, key: str, task) -> dict:
        """One region, on the actor's model thread (see __init__); progress and cancel are
        answered on Ray's other threads meanwhile."""
        return self._gpu.submit(self._render, key, task).result()

    def _render(self, key: str, task) -> dict:
        from liveedit.sidecar.jobs.executor import RegionCancelled, render_task
        from liveedit.sidecar.jobs.queue import remove_leftovers
        from liveedit.sidecar.render import RenderCancelled

        cancel = threading.Event()
        state = {"key": key, "cancel": cancel, "done": 0, "total": None, "first_frame": None}
        with self._lock:
            self._current = state
        device = self._models.device if self._models is not None else None
        if device is not None and device.type == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats(device)
        started = time.time()

        def progress(frames_done: int, frames_total: int | None = None) -> None:
            state["done"] = frames_done
            if frames_total:
                state["total"] = frames_total
            if state["first_frame"] is None and frames_done > 0:
                state["first_frame"] = time.time()
            if cancel.is_set():
                raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled")

        try:
            self._check_storage(task)
            remove_leftovers(task.output_stem)  # a dead worker's temporaries, if it rendered this before
            result = render_task(task, self._models, progress, cancel)
            outcome = {"outcome": "done", "output": str(result.output), "frame_count": result.frame_count,
                       "otio": str(result.otio) if result.otio else None}
        except (RegionCancelled, RenderCancelled):
            outcome = {"outcome": "cancelled"}
        except LiveEditError as exc:
            outcome = {"outcome": "cancelled"} if cancel.is_set() else {"outcome": "failed", "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the sidecar with where to look
            log.exception("region %s failed", key)
            outcome = {"outcome": "failed",
                       "message": f"internal error on the Ray worker on {self._host} pid {os.getpid()} "
                                  f"({type(exc).__name__}: {exc}); see that worker's log"}
        finally:
            with self._lock:
                self._current = None
        outcome.update(started=started, first_frame=state["first_frame"], ended=time.time(),
                       frames=state["done"], host=self._host, pid=os.getpid(), peak_memory=None)
        if device is not None and device.type == "cuda":
            import torch

            outcome["peak_memory"] = torch.cuda.max_memory_allocated(device)
        return outcome

    def _check_storage(self, task) -> None:
        """Regions name media by path: on a cluster every worker must see the media and the
        output folder at the same paths as the sidecar (docs/scale-out.md)."""
        where = f"the Ray worker on {self._host}"
        media = Path(task.region.media)
        try:
            with open(media, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise WorkerStorageError(
                f"{where} cannot read the media {media} ({exc.strerror or exc}); every worker must see the "
                "media at the same path as the sidecar (shared storage, see docs/scale-out.md)") from None
        try:
            handle, probe = tempfile.mkstemp(prefix=".liveedit-write-check-", dir=task.output_dir)
            os.close(handle)
            os.unlink(probe)
        except OSError as exc:
            raise WorkerStorageError(
                f"{where} cannot write the output folder {task.output_dir} ({exc.strerror or exc}); every "
                "worker must be able to write it at the same path as the sidecar (shared storage, "
                "see docs/scale-out.md)") from None


# --------------------------------------------------------------------------- the driver


@dataclass
class _Slot:
    index: int
    actor: object = None
    state: str = STARTING
    generation: int = 0
    info: dict = field(default_factory=dict)
    error: str | None = None
    start_failures: int = 0
    region: "_Region | None" = None
    frames_done: int = 0
    frames_total: int | None = None
    regions_done: int = 0

    def status(self) -> dict:
        job_id, index = (self.region.task.job_id, self.region.task.index) if self.region else (None, None)
        return {"index": self.index, "state": self.state, "host": self.info.get("host", ""),
                "node_ip": self.info.get("node_ip", ""), "pid": self.info.get("pid", 0),
                "gpu_ids": list(self.info.get("gpu_ids", [])), "device": self.info.get("device", ""),
                "device_name": self.info.get("device_name", ""), "job_id": job_id, "region_index": index,
                "frames_done": self.frames_done, "frames_total": self.frames_total, "error": self.error,
                "regions_done": self.regions_done, "model": self.info.get("model", ""),
                "model_identity": self.info.get("model_identity", "")}


@dataclass
class _Region:
    key: str
    task: object
    attempts: int = 0  # times a worker died under it
    losses: list = field(default_factory=list)
    avoid: set = field(default_factory=set)  # slots where it lost a worker
    cancel: bool = False
    slot: _Slot | None = None


class Driver:
    def __init__(self, conn, config: dict):
        self._conn = conn
        self._config = config
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._slots: list[_Slot] = []
        self._regions: dict[str, _Region] = {}
        self._waiting: list[_Region] = []
        self._stopping = False
        self._actor_class = None
        self.address = None

    # ------------------------------------------------------------------ messages

    def send(self, *message) -> None:
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, EOFError, ValueError):  # the sidecar is gone: stop() follows from recv
            pass

    def _publish_workers(self) -> None:
        with self._cond:
            statuses = [slot.status() for slot in self._slots]
        self.send("workers", statuses)

    # ------------------------------------------------------------------ start

    def connect(self) -> None:
        import ray

        config = self._config
        options = dict(logging_level=logging.WARNING, log_to_driver=False, namespace="liveedit")
        address = config.get("address")
        if address:
            check_reachable(address)
            options["address"] = address
        else:  # a local cluster of this machine (loopback only: see ray_executor.py)
            options.update(address="local", include_dashboard=False, **(config.get("ray_init") or {}))
        ray.init(**options)
        self.address = ray.get_runtime_context().gcs_address
        gpus = int(ray.cluster_resources().get("GPU", 0))
        count = config.get("workers") or gpus
        if count < 1:
            raise LiveEditError(
                f"the Ray cluster at {self.address} has no GPUs; start its nodes on GPU machines "
                "(`ray start ... --num-gpus N` where Ray does not see them), or give the number of workers")
        self._actor_class = ray.remote(RegionWorker)
        self._slots = [_Slot(i) for i in range(count)]
        self.send("connected", {"address": self.address, "slots": count, "cluster_gpus": gpus,
                                "nodes": len([n for n in ray.nodes() if n.get("Alive")])})
        for slot in self._slots:
            self._start_slot(slot)

    def _start_slot(self, slot: _Slot, *, restart: bool = False) -> None:
        """A new actor for the slot; it becomes idle once its models are loaded."""
        config = self._config
        with self._cond:
            if self._stopping:
                return
            slot.generation += 1
            generation = slot.generation
            restart = restart or slot.start_failures > 0
            slot.state, slot.info, slot.region = RESTARTING if restart else STARTING, {}, None
            slot.frames_done, slot.frames_total = 0, None
            slot.actor = self._actor_class.options(
                num_gpus=1, num_cpus=config.get("cpus_per_worker", 1), max_restarts=0, max_task_retries=0,
                max_concurrency=4,
            ).remote(config["model"], config.get("warm_up", True))
            actor = slot.actor
        self._publish_workers()
        threading.Thread(target=self._await_start, args=(slot, actor, generation), daemon=True,
                         name=f"liveedit-ray-start-{slot.index}").start()

    def _await_start(self, slot: _Slot, actor, generation: int) -> None:
        import ray

        timeout = self._config.get("start_timeout", 600.0)
        info, error, retry = None, None, True
        try:
            info = ray.get(actor.describe.remote(), timeout=timeout)
            if info.get("error"):
                error, retry = f"could not load the models: {info['error']}", False  # the same again
        except ray.exceptions.GetTimeoutError:
            error = (f"did not start within {timeout:.0f} s (no free GPU on the cluster for it, or loading "
                     "the models takes longer)")
        except Exception as exc:  # noqa: BLE001 - the actor died while starting
            error = f"died while starting ({_short(exc)})"
        with self._cond:
            if slot.generation != generation or self._stopping:
                return
            if error is None:
                slot.state, slot.info, slot.error, slot.start_failures = IDLE, info, None, 0
            else:
                slot.start_failures += 1
                slot.error = f"worker {slot.index}: {error}"
                if info:
                    slot.info = info
                if retry and slot.start_failures < MAX_START_FAILURES:
                    slot.state = RESTARTING
                else:
                    slot.state = FAILED
                log.warning("Ray worker %d %s", slot.index, error)
            self._assign()
            self._cond.notify_all()
        if error is not None:
            _kill(actor)
            if slot.state == RESTARTING:
                time.sleep(min(2.0 * slot.start_failures, 10.0))
                self._start_slot(slot, restart=True)
        self._publish_workers()

    # ------------------------------------------------------------------ regions

    def serve(self) -> None:
        """Reads the sidecar's messages until it closes the socket or says shutdown."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "render":
                _, key, task = message
                region = _Region(key, task)
                with self._cond:
                    self._regions[key] = region
                    self._waiting.append(region)
                    self._assign()
                threading.Thread(target=self._run_region, args=(region,), daemon=True,
                                 name=f"liveedit-ray-region-{key}").start()
            elif kind == "cancel":
                with self._cond:
                    region = self._regions.get(message[1])
                    if region is not None:
                        region.cancel = True
                        self._cond.notify_all()
            elif kind == "shutdown":
                return

    def _assign(self) -> None:
        """Under the lock: idle workers to waiting regions, in order; a region prefers a
        worker other than the ones that died under it."""
        for region in list(self._waiting):
            idle = [s for s in self._slots if s.state == IDLE]
            if not idle:
                return
            fresh = [s for s in idle if s.index not in region.avoid]
            slot = (fresh or idle)[0]
            slot.state, slot.region = RESERVED, region
            slot.frames_done, slot.frames_total = 0, None
            region.slot = slot
            self._waiting.remove(region)
        self._cond.notify_all()

    def _wait_for_slot(self, region: _Region) -> _Slot | None:
        """The worker assigned to the region; None once it is cancelled or no worker can run it
        (a terminal message was sent)."""
        with self._cond:
            while region.slot is None:
                if region.cancel or self._stopping:
                    self._drop_waiting(region)
                    self.send("cancelled", region.key)
                    return None
                if self._slots and not any(s.state in LIVE_STATES for s in self._slots):
                    self._drop_waiting(region)
                    errors = "; ".join(s.error for s in self._slots if s.error) or "no worker started"
                    self.send("failed", region.key, f"no Ray worker can render on the cluster at {self.address}: "
                                                    f"{errors}")
                    return None
                self._cond.wait(1.0)
            return region.slot

    def _drop_waiting(self, region: _Region) -> None:
        if region in self._waiting:
            self._waiting.remove(region)
        self._regions.pop(region.key, None)

    def _run_region(self, region: _Region) -> None:
        try:
            while True:
                slot = self._wait_for_slot(region)
                if slot is None:
                    return
                kind, detail = self._render_on(slot, region)
                if kind != "lost":
                    self._release(slot, done=kind == "done")
                    self._finish(region, kind, detail)
                    return
                region.attempts += 1
                region.losses.append(detail)
                region.avoid.add(slot.index)
                self._replace(slot)
                with self._cond:
                    if region.cancel or self._stopping:
                        self._finish(region, "cancelled", None)
                        return
                    if region.attempts >= self._config.get("max_attempts", 3):
                        self._finish(region, "failed", (
                            f"the Ray workers rendering it died {region.attempts} time(s), so it was given up "
                            f"(last: {detail}); the region may make a worker crash (memory?), see the workers' "
                            "logs"))
                        return
                    log.warning("region %s goes back to the queue after its worker died: %s", region.key, detail)
                    self.send("progress", region.key, 0, None)  # it starts again from its first frame
                    region.slot = None
                    self._waiting.insert(0, region)  # back in the queue, first in line
                    self._assign()
        except Exception as exc:  # noqa: BLE001 - never leave the sidecar waiting
            log.exception("region %s", region.key)
            self._finish(region, "failed", f"internal error in the Ray driver ({type(exc).__name__}: {exc})")

    def _finish(self, region: _Region, kind: str, detail) -> None:
        with self._cond:
            self._regions.pop(region.key, None)
        if kind == "done":
            self.send("done", region.key, detail)
        elif kind == "failed":
            self.send("failed", region.key, detail)
        else:
            self.send("cancelled", region.key)

    def _render_on(self, slot: _Slot, region: _Region) -> tuple[str, object]:
        """Renders the region on the slot's actor; ("done", outcome), ("failed", message),
        ("cancelled", None) or ("lost", why the worker died)."""
        import ray

        config = self._config
        poll = config.get("poll_interval", 0.25)
        cancel_timeout = config.get("cancel_timeout", 30.0)
        stall_timeout = config.get("stall_timeout", 300.0)
        actor = slot.actor
        submitted = time.time()
        with self._cond:
            if region.cancel or self._stopping:
                return "cancelled", None
            slot.state = RENDERING
        self._publish_workers()
        ref = actor.render.remote(region.key, region.task)
        cancel_sent = None
        last_answer = time.monotonic()
        last = None
        while True:
            ready, _ = ray.wait([ref], timeout=poll)
            if ready:
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # the actor catches its own errors
                    outcome = {"outcome": "failed", "message": f"internal error on the Ray worker ({_short(exc)})"}
                except ray.exceptions.RayError as exc:  # the process died, or its node
                    why = _death(slot, exc)
                    self._record(region, slot, "lost", submitted, reason=why)
                    return "lost", why
                self._record(region, slot, outcome["outcome"], outcome["started"], outcome)
                if outcome["outcome"] == "done":
                    return "done", {k: outcome[k] for k in ("output", "frame_count", "otio", "host", "pid")}
                if outcome["outcome"] == "failed":
                    return "failed", outcome["message"]
                return "cancelled", None
            now = time.monotonic()
            with self._cond:
                cancel = region.cancel or self._stopping
            if cancel:
                # Again at every poll: a threaded actor may run this call before the render
                # call has started, and it is cheap and idempotent.
                actor.cancel.remote(region.key)
                if cancel_sent is None:
                    cancel_sent = now
                    with self._cond:
                        slot.state = CANCELLING
                    self._publish_workers()
            if cancel_sent is not None and now - cancel_sent > cancel_timeout:
                # It does not stop: end the process, and the region with it.
                self._record(region, slot, "cancelled", submitted, reason="killed: did not stop when cancelled")
                self._replace(slot)
                return "cancelled", None
            try:
                answer = ray.get(actor.progress.remote(), timeout=max(poll * 8, 2.0))
                last_answer = now
            except ray.exceptions.GetTimeoutError:
                if now - last_answer > stall_timeout:
                    _kill(actor)
                    why = f"worker {slot.index} on {slot.info.get('host', '?')} stopped answering for {stall_timeout:.0f} s"
                    self._record(region, slot, "lost", submitted, reason=why)
                    return "lost", why
                continue
            except ray.exceptions.RayError:
                continue  # dead: the next wait says so
            if answer and answer["key"] == region.key and (answer["done"], answer["total"]) != last:
                last = (answer["done"], answer["total"])
                with self._cond:
                    slot.frames_done, slot.frames_total = last
                self.send("progress", region.key, answer["done"], answer["total"])
                self._publish_workers()

    def _record(self, region: _Region, slot: _Slot, outcome: str, started: float, detail: dict | None = None,
                reason: str | None = None) -> None:
        detail = detail or {}
        self.send("record", {
            "job_id": region.task.job_id, "index": region.task.index, "worker": slot.index,
            "host": detail.get("host") or slot.info.get("host", ""), "pid": detail.get("pid") or slot.info.get("pid", 0),
            "gpu_ids": list(slot.info.get("gpu_ids", [])), "device": slot.info.get("device", ""),
            "outcome": outcome, "started": started, "first_frame": detail.get("first_frame"),
            "ended": detail.get("ended") or time.time(), "frames": detail.get("frames", slot.frames_done),
            "reason": reason or detail.get("message"), "attempt": region.attempts + 1,
            "peak_memory": detail.get("peak_memory")})

    def _release(self, slot: _Slot, *, done: bool) -> None:
        with self._cond:
            if slot.state in (RENDERING, CANCELLING, RESERVED):
                slot.state, slot.region = IDLE, None
                slot.frames_done, slot.frames_total = 0, None
                slot.regions_done += int(done)
                self._assign()
        self._publish_workers()

    def _replace(self, slot: _Slot) -> None:
        with self._cond:
            if self._stopping:
                return
            old = slot.actor
            slot.region, slot.start_failures = None, 0
        _kill(old)
        self._start_slot(slot, restart=True)

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 20.0) -> None:
        """Cancel every region, give renders a moment to stop cleanly, end the actors."""
        import ray

        with self._cond:
            self._stopping = True
            for region in self._regions.values():
                region.cancel = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                busy = any(s.state in (RENDERING, CANCELLING) for s in self._slots)
            if not busy:
                break
            time.sleep(0.1)
        for slot in self._slots:
            _kill(slot.actor)
        if ray.is_initialized():
            ray.shutdown()


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail at once, in plain words, when nothing listens at a HOST:PORT address (Ray itself
    retries for minutes). "auto" is left to Ray."""
    if address == "auto":
        return
    if "://" in address:
        raise LiveEditError(f"{address!r}: give the head node's address as HOST:PORT (what `ray start --head` "
                            "prints, port 6379 by default) or auto; Ray Client (ray://) addresses are not supported")
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise LiveEditError(f"{address!r} is not a Ray cluster address: use HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise LiveEditError(f"nothing answers at {address} ({exc.strerror or exc}): is `ray start --head` running "
                            "there, and is that its address and port?") from None


def _kill(actor) -> None:
    if actor is None:
        return
    try:
        import ray

        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _death(slot: _Slot, exc: BaseException) -> str:
    where = f"worker {slot.index} (pid {slot.info.get('pid', '?')} on {slot.info.get('host', '?')})"
    return f"{where} died: {_short(exc, 200)}"


def main(argv: list[str]) -> int:
    from multiprocessing.connection import Connection

    logging.basicConfig(level=logging.WARNING, format="liveedit ray driver: %(levelname)s %(message)s")
    conn = Connection(int(argv[1]))
    try:
        kind, config = conn.recv()
    except (EOFError, OSError):
        return 1
    assert kind == "config"
    driver = Driver(conn, config)
    try:
        try:
            driver.connect()
        except Exception as exc:  # noqa: BLE001 - said to the sidecar, which raises it
            message = str(exc) if isinstance(exc, LiveEditError) else _connect_error(config.get("address"), exc)
            driver.send("fatal", message)
            return 1
        driver.serve()
        return 0
    finally:
        try:
            driver.stop()
        except Exception:  # noqa: BLE001 - ending anyway
            traceback.print_exc()
        conn.close()


def _connect_error(address: str | None, exc: BaseException) -> str:
    where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
    text = _short(exc, 600)
    causes, cause = [], exc
    while cause is not None and len(causes) < 5:
        causes.append(f"{type(cause).__name__} {cause}".lower())
        cause = cause.__cause__ or cause.__context__
    hint = ""
    if any("authentication" in c or "auth token" in c for c in causes):
        hint = ("; the cluster wants its token: set RAY_AUTH_MODE=token for the sidecar as on the cluster, "
                "and give it the cluster's token (~/.ray/auth_token, or RAY_AUTH_TOKEN)")
    elif address:
        hint = "; check that `ray start --head` runs there and that the address and port are right"
    return f"could not connect to {where}: {text}{hint}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
