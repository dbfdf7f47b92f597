"""The window's line to the sidecar: the blocking client driven from worker threads, with
results coming back to the GUI thread as Qt signals (queued across threads by Qt).

Latest request wins:
- A preview *generation* is one session (media, region, instruction, seed). Opening a new one
  closes the old one; replies of older generations are dropped.
- Seeks carry increasing request ids. At most two run at once: a new seek starts beside the
  running one, so the server supersedes the older (it ends with ABORTED); any seek asked for
  while two run waits in a single "next" slot, each newer one replacing it. A reply is emitted
  only while its request id is still the newest, so the window never works through a backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal

from liveedit.clients.python import LiveEditClient, ServerError
from liveedit.errors import LiveEditError
from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.ui.launch import SidecarTarget, connect_or_start

log = logging.getLogger(__name__)

MAX_SEEKS_IN_FLIGHT = 2


@dataclass(frozen=True)
class SessionRequest:
    media: Path
    instruction: str
    seed: int
    region_first: int
    region_count: int
    max_height: int


@dataclass(frozen=True)
class EditedFrame:
    generation: int
    request_id: int
    frame: int
    seek_frame: int
    image: object  # numpy uint8 [H, W, 3]
    cached: bool
    seconds: float  # since the seek was asked for


@dataclass(frozen=True)
class SeekDone:
    generation: int
    request_id: int
    seek_frame: int
    frames: int
    edited_frames: int  # frames that came from the model, not the cache
    seconds: float


def readable(exc: BaseException) -> str:
    """What people see: our errors' own words; anything else named without a traceback."""
    if isinstance(exc, ServerError):
        return exc.details or str(exc)
    if isinstance(exc, LiveEditError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class SidecarLink(QObject):
    status = Signal(str)  # connection progress, for the status bar
    connected = Signal(object)  # ServerInfoResponse
    info = Signal(object)  # ServerInfoResponse, refreshed on request
    session_opened = Signal(int, object)  # generation, liveedit.v1.PreviewSession
    edited_frame = Signal(object)  # EditedFrame
    seek_done = Signal(object)  # SeekDone
    job_changed = Signal(object)  # liveedit.v1.Job
    error = Signal(str, str)  # what failed ("connect", "preview", "seek", "render", "info"), message

    def __init__(self, target: SidecarTarget, parent: QObject | None = None):
        super().__init__(parent)
        self.target = target
        self.client: LiveEditClient | None = None
        self.started_process = None
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="liveedit-ui")
        self._ready = threading.Event()  # set once connecting succeeded or failed
        self._lock = threading.Lock()
        self._generation = 0
        self._handle = None  # PreviewHandle of the current generation
        self._handle_generation = -1
        self._seek_id = 0
        self._next_seek: tuple[int, int, int] | None = None  # (generation, request id, frame)
        self._seeks_running = 0
        self._closed = False

    # -- connecting --------------------------------------------------------------
    def connect_sidecar(self) -> None:
        self._pool.submit(self._connect)

    def use_client(self, client) -> None:
        """Uses an already connected client instead of connecting (embedding, tests)."""
        self.client = client
        self._ready.set()

    def _connect(self) -> None:
        try:
            connection = connect_or_start(self.target, self.status.emit)
            self.client, self.started_process = connection.client, connection.started
            info = self.client.info()
        except Exception as exc:  # noqa: BLE001 - shown in the window, never a traceback
            self.client = None
            self.error.emit("connect", readable(exc))
        else:
            self.connected.emit(info)
        finally:
            self._ready.set()

    def _wait_client(self) -> LiveEditClient | None:
        self._ready.wait()
        return None if self._closed else self.client

    def refresh_info(self) -> None:
        if self.client is not None:
            self._pool.submit(self._run, "info", lambda c: self.info.emit(c.info()))

    def _run(self, what: str, work) -> None:
        client = self._wait_client()
        if client is None:
            return
        try:
            work(client)
        except Exception as exc:  # noqa: BLE001
            if not self._closed:
                self.error.emit(what, readable(exc))

    # -- preview sessions --------------------------------------------------------
    def open_session(self, request: SessionRequest) -> int:
        """Starts a new preview generation; returns its number. Seeks asked for before it is
        open wait for it."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            old, self._handle = self._handle, None
            self._next_seek = None
        self._pool.submit(self._open, generation, request, old)
        return generation

    def _open(self, generation: int, request: SessionRequest, old) -> None:
        if old is not None:
            try:
                old.close()  # its running seeks stop; its GPU state is freed
            except Exception:  # noqa: BLE001 - the session may already be gone with a restarted server
                log.debug("closing an old preview session failed", exc_info=True)
        client = self._wait_client()
        if client is None:
            return
        try:
            handle = client.open_preview(request.media, request.instruction, request.seed,
                                         max_height=request.max_height,
                                         region_first_frame=request.region_first,
                                         region_frame_count=request.region_count)
        except Exception as exc:  # noqa: BLE001
            if generation == self._generation:
                self.error.emit("preview", readable(exc))
            return
        with self._lock:
            if generation != self._generation:  # a newer instruction came meanwhile
                stale = True
            else:
                stale = False
                self._handle, self._handle_generation = handle, generation
        if stale:
            self._close_quietly(handle)
            return
        self.session_opened.emit(generation, handle.session)
        self._start_seeks()

    @staticmethod
    def _close_quietly(handle) -> None:
        try:
            handle.close()
        except Exception:  # noqa: BLE001
            log.debug("closing a preview session failed", exc_info=True)

    # -- seeking -----------------------------------------------------------------
    def seek(self, frame: int) -> int:
        """Asks for the edit of `frame` in the current generation; returns the request id."""
        with self._lock:
            self._seek_id += 1
            self._next_seek = (self._generation, self._seek_id, frame)
            request_id = self._seek_id
        self._start_seeks()
        return request_id

    def is_latest(self, generation: int, request_id: int) -> bool:
        return generation == self._generation and request_id == self._seek_id

    def _start_seeks(self) -> None:
        with self._lock:
            if (self._next_seek is None or self._handle is None
                    or self._seeks_running >= MAX_SEEKS_IN_FLIGHT):
                return
            self._seeks_running += 1
        self._pool.submit(self._seek_loop)

    def _seek_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    job, handle = self._next_seek, self._handle
                    if job is None or handle is None or job[0] != self._handle_generation:
                        return
                    self._next_seek = None
                self._seek_once(handle, *job)
        finally:
            with self._lock:
                self._seeks_running -= 1

    def _seek_once(self, handle, generation: int, request_id: int, frame: int) -> None:
        started = time.monotonic()
        delivered = edited = 0
        try:
            for out in handle.seek(frame):
                if self._closed or not self.is_latest(generation, request_id):
                    return  # a newer seek replaced this one: drop what is left
                delivered += 1
                edited += not out.cached
                self.edited_frame.emit(EditedFrame(generation, request_id, out.frame, out.seek_frame,
                                                   out.image, out.cached, time.monotonic() - started))
        except ServerError as exc:
            if exc.code in (grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED):
                return  # superseded by a newer seek or a closed session: expected
            if not self._closed and self.is_latest(generation, request_id):
                self.error.emit("seek", readable(exc))
            return
        except Exception as exc:  # noqa: BLE001
            if not self._closed:
                self.error.emit("seek", readable(exc))
            return
        if self.is_latest(generation, request_id):
            self.seek_done.emit(SeekDone(generation, request_id, frame, delivered, edited,
                                         time.monotonic() - started))

    # -- render queue ------------------------------------------------------------
    def submit_render(self, regions: list[dict], output_dir: Path, output_format: str, label: str) -> None:
        def work(client: LiveEditClient) -> None:
            job = client.submit_job(regions, output_dir, format=output_format, label=label)
            self.job_changed.emit(job)
            for job in client.watch_job(job.id):
                if self._closed:
                    return
                self.job_changed.emit(job)

        self._pool.submit(self._run, "render", work)

    # -- shutdown ----------------------------------------------------------------
    def close(self) -> None:
        """Closes the session and the channel (the sidecar keeps running for other clients)."""
        with self._lock:
            self._closed = True
            handle, self._handle = self._handle, None
            self._generation += 1
        self._ready.set()
        if handle is not None:
            self._close_quietly(handle)
        if self.client is not None:
            self.client.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


JOB_STATE_NAMES = {render_pb2.JOB_STATE_QUEUED: "queued", render_pb2.JOB_STATE_RUNNING: "running",
                   render_pb2.JOB_STATE_DONE: "done", render_pb2.JOB_STATE_FAILED: "failed",
                   render_pb2.JOB_STATE_CANCELLED: "cancelled"}
