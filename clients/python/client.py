"""LiveEditClient: the Python client of the sidecar (blocking API; the CLI, the Qt preview
and tests use it; call it from a worker thread in a GUI).

    client = LiveEditClient.connect()                       # the local Unix socket
    client = LiveEditClient.connect(address="127.0.0.1:50051")  # TCP; token from the config folder
    for edited in client.edit_stream(frames, "make it snow", seed=0):
        ...
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import grpc
import numpy as np

from liveedit.errors import InputError, LiveEditError
from liveedit.protos.liveedit.v1 import (common_pb2, edit_pb2, edit_pb2_grpc, preview_pb2, preview_pb2_grpc,
                                         render_pb2, render_pb2_grpc, server_info_pb2, server_info_pb2_grpc)
from liveedit.clients import transport
from liveedit.clients.transport import FrameRing

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 2**20


class ServerNotRunningError(LiveEditError):
    """No sidecar answers at the address."""


class ServerError(LiveEditError):
    """The server refused a request; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{message} ({code.name})")
        self.code = code
        self.details = message


def _raise_server_error(exc: grpc.RpcError):
    raise ServerError(exc.code(), exc.details() or "") from None


@dataclass(frozen=True)
class PreviewFrame:
    frame: int
    image: np.ndarray  # uint8 [H, W, 3] RGB
    cached: bool
    seek_frame: int


class PreviewHandle:
    """An open preview session; `seek()` may be called from several threads, the latest wins."""

    def __init__(self, client: "LiveEditClient", session: preview_pb2.PreviewSession):
        self._client = client
        self.session = session
        self.id = session.session_id

    def seek(self, frame: int, timeout: float | None = None) -> Iterator[PreviewFrame]:
        """Edited frames of the chunk holding `frame`. Raises ServerError with code ABORTED
        when a newer seek superseded this one."""
        try:
            for msg in self._client._preview.Seek(
                    preview_pb2.SeekRequest(session_id=self.id, frame=frame),
                    metadata=self._client._metadata, timeout=timeout):
                image = np.frombuffer(msg.rgb24, np.uint8).reshape(msg.height, msg.width, 3)
                yield PreviewFrame(msg.frame, image, msg.cached, msg.seek_frame)
        except grpc.RpcError as exc:
            _raise_server_error(exc)

    def close(self) -> None:
        self._client._call(self._client._preview.CloseSession,
                           preview_pb2.CloseSessionRequest(session_id=self.id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LiveEditClient:
    def __init__(self, channel: grpc.Channel, *, token: str | None = None, target: str = ""):
        self.channel = channel
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._info = server_info_pb2_grpc.ServerInfoStub(channel)
        self._edit = edit_pb2_grpc.EditStub(channel)
        self._preview = preview_pb2_grpc.PreviewStub(channel)
        self._render = render_pb2_grpc.RenderStub(channel)
        self.local = target.startswith("unix:")

    # -- connecting --------------------------------------------------------
    @classmethod
    def connect(cls, socket_path: str | Path | None = None, *, address: str | None = None,
                token: str | None = None, timeout: float = 5.0) -> "LiveEditClient":
        """Connects to the local socket (default path) or, with `address` ("127.0.0.1:PORT"),
        over TCP with the per-install token (read from the config folder when not given).
        An address of the form "unix:/path/to.sock" names a socket (what `liveedit serve` prints)."""
        if address is not None and address.startswith("unix:"):
            socket_path, address = address[len("unix:"):], None
            if not socket_path:
                raise InputError("the address 'unix:' names no socket; give unix:/path/to/sidecar.sock")
        if address is not None:
            target = address
            token = token or transport.read_token()
            if not token:
                raise InputError(f"connecting over TCP needs the token; none found at {transport.token_path()}")
        else:
            target = f"unix:{Path(socket_path) if socket_path else transport.default_socket_path()}"
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        channel = grpc.insecure_channel(target, options=options)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            channel.close()
            raise ServerNotRunningError(
                f"no LiveEdit server answers at {target}; start one with `liveedit serve`"
                + (f" --port {target.rsplit(':', 1)[-1]}" if address else "")
                + (f" --socket {socket_path}" if socket_path else "")) from None
        return cls(channel, token=token, target=target)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _call(self, method, request, timeout: float | None = 30.0):
        try:
            return method(request, metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as exc:
            _raise_server_error(exc)

    # -- info ----------------------------------------------------------------
    def info(self) -> server_info_pb2.ServerInfoResponse:
        return self._call(self._info.GetInfo, server_info_pb2.GetInfoRequest())

    # -- live edit -----------------------------------------------------------
    def edit_stream(self, frames: Iterable[np.ndarray], instruction: str, seed: int = 0, *,
                    shared_memory: bool | None = None, ring_slots: int = 24, label: str = "",
                    chunk_stats: list | None = None) -> Iterator[np.ndarray]:
        """Streams frames (uint8 [H, W, 3] RGB, one size) through the editor; yields edited
        frames in order as chunks finish. Shared memory is used on a Unix socket unless
        shared_memory=False; the server may still decline it (then bytes travel in messages).
        Per-chunk statistics are appended to `chunk_stats` when given."""
        frames = iter(frames)
        try:
            first = next(frames)
        except StopIteration:
            return
        if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
            raise InputError(f"frames must be uint8 [H, W, 3] RGB; got {first.dtype} {first.shape}")
        height, width = first.shape[:2]
        use_ring = self.local if shared_memory is None else shared_memory
        ring = FrameRing.create(width, height, ring_slots) if use_ring else None
        start = edit_pb2.EditStart(instruction=instruction, seed=seed, width=width, height=height,
                                   pixel_format=common_pb2.PIXEL_FORMAT_RGB24, label=label)
        if ring is not None:
            s = ring.spec
            start.transport = common_pb2.FRAME_TRANSPORT_SHARED_MEMORY
            start.ring.CopyFrom(common_pb2.SharedMemoryRing(name=s.name, slot_count=s.slot_count,
                                                             slot_bytes=s.slot_bytes,
                                                             header_bytes=s.header_bytes, nonce=s.nonce))
        accepted = threading.Event()
        stop = threading.Event()
        state = {"ring": None}
        # Slots free for new source frames; one comes back per edited frame read.
        free_slots = threading.Semaphore(ring_slots)

        def requests():
            yield edit_pb2.EditRequest(start=start)
            while not accepted.wait(0.1):
                if stop.is_set():
                    return
            for index, frame in enumerate(itertools.chain([first], frames)):
                if frame.shape != first.shape or frame.dtype != np.uint8:
                    # The server would refuse it too; raised to the caller once the stream ends.
                    state["error"] = InputError(f"frame {index} is {frame.dtype} {frame.shape}; the "
                                                f"stream started with uint8 {first.shape}")
                    stop.set()
                    return
                r = state["ring"]
                if r is not None:
                    while not free_slots.acquire(timeout=0.1):
                        if stop.is_set():
                            return
                    r.write(r.slot_of(index), frame)
                    pixels = common_pb2.FramePixels(slot=r.slot_of(index))
                else:
                    pixels = common_pb2.FramePixels(data=np.ascontiguousarray(frame).tobytes())
                if stop.is_set():
                    return
                yield edit_pb2.EditRequest(frame=edit_pb2.SourceFrame(index=index, pixels=pixels))
            yield edit_pb2.EditRequest(end=edit_pb2.EditEnd())

        call = self._edit.EditStream(requests(), metadata=self._metadata)
        try:
            for response in call:
                kind = response.WhichOneof("kind")
                if kind == "accepted":
                    if response.accepted.transport == common_pb2.FRAME_TRANSPORT_SHARED_MEMORY:
                        state["ring"] = ring
                    elif ring is not None:
                        log.info("server declined shared memory: %s", response.accepted.fallback_reason)
                    if response.accepted.random_weights:
                        log.warning("the server's model has RANDOM weights: %s",
                                    response.accepted.model_description)
                    accepted.set()
                elif kind == "frame":
                    pixels = response.frame.pixels
                    if pixels.WhichOneof("location") == "slot":
                        image = state["ring"].read(pixels.slot)
                        free_slots.release()
                    else:
                        image = np.frombuffer(pixels.data, np.uint8).reshape(height, width, 3)
                    yield image
                elif kind == "chunk" and chunk_stats is not None:
                    chunk_stats.append(response.chunk)
            if state.get("error"):
                raise state["error"]
        except grpc.RpcError as exc:
            _raise_server_error(exc)
        finally:
            stop.set()
            call.cancel()
            if ring is not None:
                ring.close()

    # -- preview ---------------------------------------------------------------
    def open_preview(self, media_path: str | Path, instruction: str, seed: int = 0, *,
                     max_height: int = 0, region_first_frame: int = 0,
                     region_frame_count: int = 0) -> PreviewHandle:
        session = self._call(self._preview.OpenSession, preview_pb2.OpenPreviewRequest(
            media_path=str(media_path), instruction=instruction, seed=seed, max_height=max_height,
            region_first_frame=region_first_frame, region_frame_count=region_frame_count))
        if session.random_weights:
            log.warning("preview uses a model with RANDOM weights: %s", session.model_description)
        return PreviewHandle(self, session)

    # -- render queue ------------------------------------------------------------
    def submit_job(self, regions: list[dict], output_dir: str | Path, *, format: str = "prores",
                   label: str = "", settings=None, request_id: str | None = None) -> render_pb2.Job:
        """regions: dicts with media, first_frame, frame_count, instruction, seed?, handles?,
        name?, record_start? ({"frame": int, "rate": [num, den]}) — the bridge's JSON shape.
        settings: render settings for the whole job (an object with ``warped_steps``,
        ``save_masks``, ``mask_cache`` (None, or with ``keep_ratio`` and
        ``pruned_sublayers``) and optionally ``detail`` (with ``mode``, ``threshold``,
        ``softness``), e.g. the sidecar's RenderSettings); None = defaults.
        request_id (default: a new one per call) makes the server answer a repeated submit with
        the job the first one queued: a submit whose answer was lost is sent once more with the
        same id, so it never queues the job twice."""
        formats = {"prores": render_pb2.OUTPUT_FORMAT_PRORES, "h264": render_pb2.OUTPUT_FORMAT_H264,
                   "png": render_pb2.OUTPUT_FORMAT_PNG}
        if format not in formats:
            raise InputError(f"format {format!r} is not one of {', '.join(formats)}")
        request = render_pb2.SubmitJobRequest(output_dir=str(output_dir), format=formats[format], label=label,
                                              request_id=request_id or uuid.uuid4().hex)
        if settings is not None:
            request.sampler.CopyFrom(render_pb2.SamplerSettings(warped_steps=settings.warped_steps))
            request.save_masks = settings.save_masks
            if settings.mask_cache is not None:
                request.mask_cache.CopyFrom(render_pb2.MaskCacheSettings(
                    keep_ratio=settings.mask_cache.keep_ratio, pruned_sublayers=settings.mask_cache.pruned_sublayers))
            detail = getattr(settings, "detail", None)
            if detail is not None:
                request.detail.CopyFrom(render_pb2.DetailSettings(
                    mode=detail.mode, threshold=detail.threshold, softness=detail.softness))
        for r in regions:
            region = request.regions.add(media_path=str(r["media"]), first_frame=r["first_frame"],
                                         frame_count=r["frame_count"], instruction=r["instruction"],
                                         seed=r.get("seed", 0), handles=r.get("handles", 0), name=r.get("name") or "")
            if r.get("record_start"):
                num, den = r["record_start"]["rate"]
                region.record_start.CopyFrom(render_pb2.RecordStart(
                    frame=r["record_start"]["frame"], rate_numerator=num, rate_denominator=den))
        try:
            return self._call(self._render.SubmitJob, request)
        except ServerError as exc:
            if exc.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            return self._call(self._render.SubmitJob, request)  # same request_id: queued at most once

    def get_job(self, job_id: str) -> render_pb2.Job:
        return self._call(self._render.GetJob, render_pb2.GetJobRequest(job_id=job_id))

    def list_jobs(self, page_size: int = 0) -> list[render_pb2.Job]:
        """Every job the server keeps, oldest first, fetched a page at a time."""
        jobs, token = [], ""
        while True:
            page = self._call(self._render.ListJobs, render_pb2.ListJobsRequest(page_size=page_size,
                                                                                 page_token=token))
            jobs += page.jobs
            token = page.next_page_token
            if not token:
                return jobs

    def delete_job(self, job_id: str) -> None:
        """Forget a finished job on the server (its files stay)."""
        self._call(self._render.DeleteJob, render_pb2.DeleteJobRequest(job_id=job_id))

    def cancel_job(self, job_id: str) -> render_pb2.Job:
        return self._call(self._render.CancelJob, render_pb2.CancelJobRequest(job_id=job_id))

    def watch_job(self, job_id: str, timeout: float | None = None) -> Iterator[render_pb2.Job]:
        try:
            yield from self._render.WatchJob(render_pb2.WatchJobRequest(job_id=job_id),
                                             metadata=self._metadata, timeout=timeout)
        except grpc.RpcError as exc:
            _raise_server_error(exc)
