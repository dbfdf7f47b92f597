"""The gRPC servicers: thin adapters from liveedit.v1 messages to the domain objects (the GPU
worker's edit sessions, the preview sessions, the render queue). What they call is tested
without a server; the messages ↔ job model conversion is `api/convert.py`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from google.protobuf.message import DecodeError

from liveedit import __version__
from liveedit.errors import InputError, Kind, LiveEditError, ResourceExhaustedError
from liveedit.protos.liveedit.v1 import common_pb2, edit_pb2, preview_pb2, render_pb2, server_info_pb2
from liveedit.sidecar.api.convert import job_message, job_spec_from_request
from liveedit.sidecar.edit_session import (ChunkOut, EditedOut, EditSession, EditStreamConfig, Finished,
                                           SourceIn)
from liveedit.clients.transport import RingSpec
from liveedit.sidecar.naming import model_identity_of
from liveedit.sidecar.preview import PreviewSessions
from liveedit.sidecar.validation import MAX_INSTRUCTION_CHARS
from liveedit.sidecar.worker import GpuWorker

log = logging.getLogger(__name__)


# -- request parsing ---------------------------------------------------------------------


class _Malformed:
    """Stands in for a request that did not parse; handlers answer INVALID_ARGUMENT."""

    def __init__(self, type_name: str, error: str):
        self.message = f"malformed {type_name} message ({error}); send a valid liveedit.v1 message"


def safe_parser(message_type) -> Callable[[bytes], Any]:
    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return _Malformed(message_type.DESCRIPTOR.full_name, str(exc)[:200])

    return parse


def check_parsed(request):
    if isinstance(request, _Malformed):
        raise InputError(request.message)
    return request


class UnimplementedError(LiveEditError):
    """The request asks for something this server does not do yet."""

    kind = Kind.UNIMPLEMENTED



# -- model description -----------------------------------------------------------------


@dataclass(frozen=True)
class ModelCard:
    """What clients are told about the loaded model."""

    preset: str
    random_weights: bool
    description: str
    checkpoint_hash: str = ""
    device: str = "cpu"
    width: int = 0
    height: int = 0

    @classmethod
    def of(cls, models) -> "ModelCard":
        preset = getattr(models, "preset", None)
        return cls(
            preset=getattr(preset, "name", str(preset)),
            random_weights=bool(getattr(models, "random_weights", True)),
            description=getattr(models, "description", "unknown model"),
            checkpoint_hash=getattr(models, "checkpoint_hash", None) or "",
            device=str(getattr(models, "device", "cpu")),
            width=int(getattr(preset, "width", 0) or 0),
            height=int(getattr(preset, "height", 0) or 0),
        )

    @property
    def identity(self) -> str:
        """The model's identity (naming.py): what output names, settings keys and the preview
        cache tell models apart by; the same preset with other weights never shares results."""
        return model_identity_of(self.preset, self.random_weights, self.checkpoint_hash)


def _gpu_memory(device: str) -> tuple[str, int, int]:
    try:
        import torch

        if device.startswith("cuda") and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(torch.device(device))
            return torch.cuda.get_device_name(torch.device(device)), int(total), int(free)
    except Exception:  # noqa: BLE001 - information only
        log.debug("GPU memory query failed", exc_info=True)
    return "", 0, 0


# -- servicers -------------------------------------------------------------------------


class ServerInfoServicer:
    def __init__(self, card: ModelCard, max_message_bytes: int, preview_quality: str = "full"):
        self.card = card
        self.max_message_bytes = max_message_bytes
        self.preview_quality = preview_quality
        # The render queue's executor, when there is one: its describe() and, for a Ray
        # cluster, its workers() are reported (`liveedit status`).
        self.render_executor = None

    async def GetInfo(self, request, context):
        return self.describe()

    def describe(self) -> server_info_pb2.ServerInfoResponse:
        name, total, free = _gpu_memory(self.card.device)
        return server_info_pb2.ServerInfoResponse(
            version=__version__, model_preset=self.card.preset,
            random_weights=self.card.random_weights, model_description=self.card.description,
            checkpoint_hash=self.card.checkpoint_hash, device=self.card.device, device_name=name,
            gpu_memory_total_bytes=total, gpu_memory_free_bytes=free,
            model_width=self.card.width, model_height=self.card.height,
            preview_quality=self.preview_quality,
            capabilities=server_info_pb2.Capabilities(
                shared_memory=True, pixel_formats=[common_pb2.PIXEL_FORMAT_RGB24],
                max_message_bytes=self.max_message_bytes, max_instruction_chars=MAX_INSTRUCTION_CHARS,
                first_chunk_frames=9, chunk_frames=12,
            ),
            **_render_executor_fields(self.render_executor, self.card.device),
        )


def _render_executor_fields(executor, device: str) -> dict:
    if executor is None:
        return {}
    describe = getattr(executor, "describe", None)
    workers = getattr(executor, "workers", None)
    return {
        "render_executor": describe() if describe else f"local ({device})",
        "render_workers": [
            server_info_pb2.RenderWorker(
                index=w.index, state=w.state, host=w.host, node_ip=w.node_ip, pid=w.pid, gpu_ids=list(w.gpu_ids),
                device=w.device, device_name=w.device_name, job_id=w.job_id or "", region_index=w.region_index or 0,
                frames_done=w.frames_done, frame_count=w.frames_total or 0, error=w.error or "",
                regions_done=w.regions_done)
            for w in (workers() if workers else [])],
    }


class EditServicer:
    def __init__(self, worker: GpuWorker, card: ModelCard, max_streams: int = 2):
        self.worker = worker
        self.card = card
        self.max_streams = max_streams  # each stream holds a KV cache on the GPU
        self.active = 0

    async def EditStream(self, request_iterator, context) -> AsyncIterator[edit_pb2.EditResponse]:
        try:
            first = check_parsed(await request_iterator.__anext__())
        except StopAsyncIteration:
            raise InputError("the stream ended before its start message; send EditRequest.start first") from None
        if first.WhichOneof("kind") != "start":
            raise InputError("the first message of an edit stream must be EditRequest.start "
                             "(instruction, seed, width, height, pixel format)")
        config = _stream_config(first.start)
        if self.active >= self.max_streams:  # checked and counted with no await between: no race
            raise ResourceExhaustedError(
                f"this sidecar already runs {self.active} edit stream(s), the most it allows (each holds the "
                f"model's cache on the GPU); finish one first, or start the sidecar with a higher "
                f"--max-edit-streams if the GPU has the memory")
        self.active += 1
        try:
            session = EditSession.open(self.worker, config)
        except BaseException:
            self.active -= 1
            raise
        try:
            log.info("edit stream %r: %dx%d, %s", first.start.label[:80], first.start.width,
                     first.start.height, "shared memory" if session.shared_memory else "in-message")
            yield edit_pb2.EditResponse(accepted=edit_pb2.EditAccepted(
                transport=(common_pb2.FRAME_TRANSPORT_SHARED_MEMORY if session.shared_memory
                           else common_pb2.FRAME_TRANSPORT_IN_MESSAGE),
                fallback_reason=session.fallback_reason, random_weights=self.card.random_weights,
                model_description=self.card.description, color=first.start.color))
            async for out in session.run(_source_frames(request_iterator)):
                yield _edit_response(out)
        finally:
            session.close()  # client gone, error or done: GPU state and ring released
            self.active -= 1


def _stream_config(start: edit_pb2.EditStart) -> EditStreamConfig:
    if start.pixel_format != common_pb2.PIXEL_FORMAT_RGB24:
        raise InputError(f"pixel_format {start.pixel_format} is not supported (0 means it was not "
                         "set); send PIXEL_FORMAT_RGB24")
    ring = None
    if start.transport == common_pb2.FRAME_TRANSPORT_SHARED_MEMORY:
        if not start.HasField("ring"):
            raise InputError("transport SHARED_MEMORY needs the ring description (EditStart.ring)")
        r = start.ring
        ring = RingSpec(r.name, r.slot_count, r.slot_bytes, r.header_bytes, bytes(r.nonce))
    elif start.transport not in (common_pb2.FRAME_TRANSPORT_UNSPECIFIED, common_pb2.FRAME_TRANSPORT_IN_MESSAGE):
        raise InputError(f"unknown transport {start.transport}; use IN_MESSAGE or SHARED_MEMORY")
    return EditStreamConfig(start.instruction, start.seed, start.width, start.height, ring, start.label)


async def _source_frames(request_iterator) -> AsyncIterator[SourceIn | None]:
    async for request in request_iterator:
        request = check_parsed(request)
        kind = request.WhichOneof("kind")
        if kind == "frame":
            pixels = request.frame.pixels
            where = pixels.WhichOneof("location")
            yield SourceIn(request.frame.index, data=pixels.data if where == "data" else None,
                           slot=pixels.slot if where == "slot" else None)
        elif kind == "end":
            yield None
            return
        elif kind == "start":
            raise InputError("a second start message arrived; one edit stream has one start")
        else:
            raise InputError("an EditRequest with nothing set arrived; send a frame or end")


def _edit_response(out) -> edit_pb2.EditResponse:
    if isinstance(out, EditedOut):
        pixels = (common_pb2.FramePixels(slot=out.slot) if out.slot is not None
                  else common_pb2.FramePixels(data=out.frame.tobytes()))
        return edit_pb2.EditResponse(frame=edit_pb2.EditedFrame(index=out.index, pixels=pixels))
    if isinstance(out, ChunkOut):
        s = out.stats
        reuse = getattr(s, "reused_token_fraction", None)
        stats = common_pb2.ChunkStatistics(
            index=s.index, source_frames=s.source_frames, latent_frames=s.latent_frames,
            encode_seconds=s.encode_seconds, transformer_seconds=s.transformer_seconds,
            decode_seconds=s.decode_seconds, queued_seconds=out.queued_seconds)
        if reuse is not None:
            stats.reused_token_fraction = reuse
        return edit_pb2.EditResponse(chunk=stats)
    assert isinstance(out, Finished)
    return edit_pb2.EditResponse(finished=edit_pb2.EditFinished(frames_in=out.frames_in,
                                                                frames_out=out.frames_out))


class PreviewServicer:
    def __init__(self, previews: PreviewSessions, card: ModelCard):
        self.previews = previews
        self.card = card

    async def OpenSession(self, request, context):
        if not request.media_path:
            raise InputError("media_path is empty; give the absolute path of a video file")
        session = await asyncio.to_thread(
            self.previews.open, Path(request.media_path), request.instruction, request.seed,
            max_height=request.max_height, region_first=request.region_first_frame,
            region_count=request.region_frame_count)
        rate = session.source.frame_rate
        return preview_pb2.PreviewSession(
            session_id=session.id, region_first_frame=session.region_first,
            region_frame_count=session.region_count, width=session.width, height=session.height,
            frame_rate_numerator=rate.numerator, frame_rate_denominator=rate.denominator,
            segment_frames=self.previews.config.segment_frames,
            random_weights=self.card.random_weights, model_description=self.card.description)

    async def Seek(self, request, context):
        async for out in self.previews.seek(request.session_id, request.frame):
            h, w = out.pixels.shape[:2]
            yield preview_pb2.PreviewFrame(frame=out.frame, rgb24=out.pixels.tobytes(), width=w, height=h,
                                           cached=out.cached, seek_frame=out.seek_frame)

    async def CloseSession(self, request, context):
        self.previews.close(request.session_id)
        return preview_pb2.CloseSessionResponse()


class RenderServicer:
    """Thin adapter over sidecar.jobs.RenderQueue (submit/get/list/cancel/watch)."""

    def __init__(self, queue, card: ModelCard | None = None):
        self.queue = queue
        self.card = card  # names a timeline's regions as a local render of this model would

    def _queue(self):
        if self.queue is None:
            raise UnimplementedError("this server runs without a render queue (started with --no-jobs?)")
        return self.queue

    async def SubmitJob(self, request, context):
        queue = self._queue()
        model = self.card.identity if self.card is not None else None
        spec = await asyncio.to_thread(job_spec_from_request, request, model)
        return job_message(await asyncio.to_thread(queue.submit, spec, request.request_id or None))

    async def GetJob(self, request, context):
        return job_message(self._queue().get(request.job_id))

    async def ListJobs(self, request, context):
        jobs, next_token = await asyncio.to_thread(self._queue().list_page, request.page_size, request.page_token)
        return render_pb2.ListJobsResponse(jobs=[job_message(j) for j in jobs], next_page_token=next_token)

    async def DeleteJob(self, request, context):
        await asyncio.to_thread(self._queue().delete, request.job_id)
        return render_pb2.DeleteJobResponse()

    async def CancelJob(self, request, context):
        return job_message(await asyncio.to_thread(self._queue().cancel, request.job_id))

    async def WatchJob(self, request, context):
        async for job in self._queue().watch(request.job_id):
            yield job_message(job)


