"""The gRPC sidecar: grpc.aio servicers over the domain objects (worker, edit sessions,
preview sessions, render queue). The servicers only translate messages and errors; the logic
they call is tested without a server.

Safety rules, all enforced here:
- Listens on a Unix socket (mode 0600, in a 0700 per-user folder) by default; TCP only on a
  loopback address and only with the per-install token (`authorization: Bearer <token>`).
- Requests are parsed by us, not by grpc, so malformed bytes answer INVALID_ARGUMENT instead of
  INTERNAL; our errors map to specific status codes (`STATUS_BY_ERROR`); anything unexpected
  is logged and answers INTERNAL without taking the server down.
- Frame-sized messages: the receive/send limits are raised to `max_message_bytes`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import grpc
from google.protobuf import message_factory
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from liveedit import __version__
from liveedit.engine.detail_config import DetailConfig
from liveedit.errors import InputError, LiveEditError
from liveedit.protos.liveedit.v1 import (common_pb2, edit_pb2, preview_pb2, render_pb2, server_info_pb2)
from liveedit.sidecar import config
from liveedit.sidecar.delivery import editor_factory as delivery_factory
from liveedit.sidecar.edit_session import (ChunkOut, EditedOut, EditSession, EditStreamConfig, Finished,
                                           SourceIn)
from liveedit.sidecar.frame_transport import RingSpec
from liveedit.sidecar.preview import MediaNotFoundError, PreviewConfig, PreviewSessions
from liveedit.sidecar.validation import MAX_INSTRUCTION_CHARS
from liveedit.sidecar.worker import GpuWorker, choose_preview_quality

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 2**20  # a UHD RGB24 frame is 24.9 MB
CODE = grpc.StatusCode

# Our errors → status codes, by class name so that modules written in parallel (jobs.py) need
# not be imported here. The first name found along the error's class hierarchy wins.
STATUS_BY_ERROR: dict[str, grpc.StatusCode] = {
    "UnknownSessionError": CODE.NOT_FOUND,
    "JobNotFoundError": CODE.NOT_FOUND,
    "MediaNotFoundError": CODE.NOT_FOUND,
    "SupersededError": CODE.ABORTED,
    "FrameOutOfRangeError": CODE.OUT_OF_RANGE,
    "WorkerClosedError": CODE.UNAVAILABLE,
    "QueueClosedError": CODE.UNAVAILABLE,
    "UnauthenticatedError": CODE.UNAUTHENTICATED,
    "UnimplementedError": CODE.UNIMPLEMENTED,
    "InputError": CODE.INVALID_ARGUMENT,
    "JobSpecError": CODE.INVALID_ARGUMENT,
    "RegionCancelled": CODE.CANCELLED,
    "LiveEditError": CODE.FAILED_PRECONDITION,
}


class UnimplementedError(LiveEditError):
    """The request asks for something this server does not do yet."""


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    for cls in type(exc).__mro__:
        if cls.__name__ in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls.__name__], str(exc)
    return CODE.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


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
    def key(self) -> str:
        """Identity for caches: the same preset with other weights must not share results."""
        return f"{self.preset}:{self.checkpoint_hash or ('random' if self.random_weights else '?')}"


def _gpu_memory(device: str) -> tuple[str, int, int]:
    try:
        import torch

        if device.startswith("cuda") and torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info(torch.device(device))
            return torch.cuda.get_device_name(torch.device(device)), int(total), int(free)
    except Exception:  # noqa: BLE001 - information only
        log.debug("GPU memory query failed", exc_info=True)
    return "", 0, 0


# -- request parsing and error mapping ---------------------------------------------------


class _Malformed:
    """Stands in for a request that did not parse; handlers answer INVALID_ARGUMENT."""

    def __init__(self, type_name: str, error: str):
        self.message = f"malformed {type_name} message ({error}); send a valid liveedit.v1 message"


def _safe_parser(message_type) -> Callable[[bytes], Any]:
    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            return _Malformed(message_type.DESCRIPTOR.full_name, str(exc)[:200])

    return parse


def _check_parsed(request):
    if isinstance(request, _Malformed):
        raise InputError(request.message)
    return request


async def _abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == CODE.INTERNAL:
        log.exception("unexpected error in a request handler", exc_info=exc)
    await context.abort(code, message)


def _unary(method):
    async def handler(request, context):
        try:
            return await method(_check_parsed(request), context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never crashes the server
            await _abort_with(context, exc)

    return handler


def _streaming(method, *, parse_request: bool = True):
    async def handler(request, context):
        try:
            if parse_request:
                request = _check_parsed(request)
            async for response in method(request, context):
                yield response
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001
            await _abort_with(context, exc)

    return handler


def _register(server: grpc.aio.Server, file_pb2, service_name: str, servicer) -> str:
    """Registers servicer methods by the service descriptor, with our own request parsing."""
    service = file_pb2.DESCRIPTOR.services_by_name[service_name]
    handlers = {}
    for method in service.methods:
        impl = getattr(servicer, method.name)
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        kw = dict(request_deserializer=_safe_parser(request_type),
                  response_serializer=response_type.SerializeToString)
        if method.client_streaming and method.server_streaming:
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                _streaming(impl, parse_request=False), **kw)
        elif method.server_streaming:
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(_streaming(impl), **kw)
        elif method.client_streaming:
            raise NotImplementedError(f"{method.full_name}: client streaming is not used by the contract")
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(_unary(impl), **kw)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    return service.full_name


# -- servicers -------------------------------------------------------------------------


class ServerInfoServicer:
    def __init__(self, card: ModelCard, max_message_bytes: int, preview_quality: str = "full"):
        self.card = card
        self.max_message_bytes = max_message_bytes
        self.preview_quality = preview_quality

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
        )


class EditServicer:
    def __init__(self, worker: GpuWorker, card: ModelCard):
        self.worker = worker
        self.card = card
        self.active = 0

    async def EditStream(self, request_iterator, context) -> AsyncIterator[edit_pb2.EditResponse]:
        try:
            first = _check_parsed(await request_iterator.__anext__())
        except StopAsyncIteration:
            raise InputError("the stream ended before its start message; send EditRequest.start first") from None
        if first.WhichOneof("kind") != "start":
            raise InputError("the first message of an edit stream must be EditRequest.start "
                             "(instruction, seed, width, height, pixel format)")
        session = EditSession.open(self.worker, _stream_config(first.start))
        self.active += 1
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
        request = _check_parsed(request)
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


_JOB_STATES = {"queued": render_pb2.JOB_STATE_QUEUED, "running": render_pb2.JOB_STATE_RUNNING,
               "done": render_pb2.JOB_STATE_DONE, "failed": render_pb2.JOB_STATE_FAILED,
               "cancelled": render_pb2.JOB_STATE_CANCELLED}
_FORMATS = {render_pb2.OUTPUT_FORMAT_UNSPECIFIED: "prores", render_pb2.OUTPUT_FORMAT_PRORES: "prores",
            render_pb2.OUTPUT_FORMAT_H264: "h264", render_pb2.OUTPUT_FORMAT_PNG: "png"}


def job_spec_dict(request: render_pb2.SubmitJobRequest, model: str | None = None) -> dict:
    """SubmitJobRequest → the JSON-shaped job spec sidecar/jobs.py (and the bridge) take.
    A timeline is read here (file access: call it off the event loop); `model` (the
    render.model_identity of the loaded model) names its regions as `liveedit render` would."""
    if request.format not in _FORMATS:
        raise InputError(f"unknown output format {request.format}; use PRORES, H264 or PNG")
    spec = {"output_dir": request.output_dir, "format": _FORMATS[request.format], "label": request.label,
            **_settings_dict(request)}
    if request.HasField("timeline") and request.timeline.path:
        if request.regions:
            raise InputError("send either regions or a timeline, not both")
        spec["regions"] = _timeline_regions(request.timeline, spec, model)
        return spec
    regions = []
    for i, r in enumerate(request.regions):
        media = Path(r.media_path)
        if media.is_absolute() and not media.exists():
            raise MediaNotFoundError(f"regions[{i}].media_path {r.media_path!r} does not exist; check the path")
        region = {"media": r.media_path, "first_frame": r.first_frame, "frame_count": r.frame_count,
                  "instruction": r.instruction, "seed": r.seed, "handles": r.handles}
        if r.HasField("record_start"):
            rs = r.record_start
            if rs.rate_denominator == 0 or rs.rate_numerator == 0:
                raise InputError(f"regions[{i}].record_start needs a rate like 24000/1001")
            region["record_start"] = {"frame": rs.frame, "rate": [rs.rate_numerator, rs.rate_denominator]}
        if r.name:
            region["name"] = r.name
        regions.append(region)
    spec["regions"] = regions
    return spec


def _settings_dict(request: render_pb2.SubmitJobRequest) -> dict:
    """The job-level render settings in the JSON shape of jobs.RenderSettings."""
    settings: dict = {"save_masks": request.save_masks}
    if request.HasField("sampler"):
        settings["sampler"] = {"warped_steps": request.sampler.warped_steps}
    if request.HasField("mask_cache"):
        mask_cache: dict = {}
        if request.mask_cache.HasField("keep_ratio"):
            mask_cache["keep_ratio"] = request.mask_cache.keep_ratio
        if request.mask_cache.pruned_sublayers:
            mask_cache["pruned_sublayers"] = list(request.mask_cache.pruned_sublayers)
        settings["mask_cache"] = mask_cache
    if request.HasField("detail"):
        detail: dict = {}
        if request.detail.mode:
            detail["mode"] = request.detail.mode
        if request.detail.HasField("threshold"):
            detail["threshold"] = request.detail.threshold
        if request.detail.HasField("softness"):
            detail["softness"] = request.detail.softness
        settings["detail"] = detail
    return settings


def _timeline_regions(source: render_pb2.TimelineSource, spec: dict, model: str | None) -> list[dict]:
    """The timeline's regions, found by the same functions as `liveedit render`. All or
    nothing: a region the timeline cannot give refuses the submission, naming every one."""
    from liveedit.sidecar.jobs import JobSpecError, RenderSettings, region_dict, stable_names, timeline_regions
    from liveedit.sidecar.timeline import TimelineError, read_timeline

    path = Path(source.path)
    if not path.is_absolute():
        raise InputError(f"timeline.path must be an absolute path; got {source.path!r}")
    if not path.is_file():
        raise MediaNotFoundError(f"timeline.path {source.path!r} does not exist or is not a file; check the path")
    refused: list[TimelineError] = []
    try:
        timeline = read_timeline(path, edl_rate=source.edl_rate or None)
        regions = timeline_regions(timeline, marker_color=source.marker_color or "Green",
                                   instruction=source.instruction or None, in_timecode=source.in_timecode or None,
                                   out_timecode=source.out_timecode or None, on_refused=refused.append)
    except TimelineError as exc:
        raise JobSpecError(f"timeline {path}: {exc}") from None
    if refused:
        raise JobSpecError(
            f"timeline {path}: {len(refused)} region(s) cannot be rendered: "
            + "; ".join(str(e) for e in refused)
            + ". Fix them in the editor and export again, or send the other regions as SubmitJobRequest.regions")
    if not regions:
        what = ("no video clip in the chosen range" if source.instruction else
                f"no {source.marker_color or 'Green'} markers with an instruction")
        raise JobSpecError(f"timeline {path}: nothing to render ({what})")
    names = [None] * len(regions)
    if model is not None:
        names = stable_names(regions, model=model, seed=source.seed, handles=source.handles, format=spec["format"],
                             settings=RenderSettings.from_dict(spec))
    return [region_dict(r, seed=source.seed, handles=source.handles, name=n) for r, n in zip(regions, names)]


def job_message(job) -> render_pb2.Job:
    """A jobs.Job snapshot → liveedit.v1.Job."""
    regions = []
    for r in job.regions:
        progress = render_pb2.RegionProgress(
            index=r.index, state=_JOB_STATES.get(r.state, render_pb2.JOB_STATE_UNSPECIFIED),
            frames_done=r.frames_done, frame_count=r.frame_count, fps=r.fps or 0.0,
            output=r.output or "", otio=r.otio or "", error=r.error or "")
        if r.eta_seconds is not None:
            progress.eta_seconds = r.eta_seconds
        regions.append(progress)
    return render_pb2.Job(id=job.id, state=_JOB_STATES.get(job.state, render_pb2.JOB_STATE_UNSPECIFIED),
                          regions=regions, created=job.created, label=job.label or "")


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
        from liveedit.sidecar.jobs import JobSpec

        queue = self._queue()
        model = None
        if self.card is not None:
            from liveedit.sidecar.jobs import model_identity_of

            model = model_identity_of(self.card.preset, self.card.random_weights, self.card.checkpoint_hash)
        spec = JobSpec.from_dict(await asyncio.to_thread(job_spec_dict, request, model))
        return job_message(await asyncio.to_thread(queue.submit, spec))

    async def GetJob(self, request, context):
        return job_message(self._queue().get(request.job_id))

    async def ListJobs(self, request, context):
        return render_pb2.ListJobsResponse(jobs=[job_message(j) for j in self._queue().list()])

    async def CancelJob(self, request, context):
        return job_message(await asyncio.to_thread(self._queue().cancel, request.job_id))

    async def WatchJob(self, request, context):
        async for job in self._queue().watch(request.job_id):
            yield job_message(job)


# -- authentication ----------------------------------------------------------------------


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """TCP only: every call must carry `authorization: Bearer <per-install token>`."""

    def __init__(self, token: str):
        self._token = token

    async def intercept_service(self, continuation, details):
        given = None
        for key, value in details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                given = value[len("Bearer "):]
        handler = await continuation(details)
        if config.token_matches(self._token, given) or handler is None:
            return handler
        return _refusing(handler, "missing or wrong token: send metadata 'authorization: Bearer <token>' "
                                  f"with the token from {config.token_path()}")


def _refusing(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def unary(request, context):
        await context.abort(CODE.UNAUTHENTICATED, message)

    async def streaming(request, context):
        await context.abort(CODE.UNAUTHENTICATED, message)
        yield  # pragma: no cover - makes this an async generator

    kw = dict(request_deserializer=None, response_serializer=None)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(streaming, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **kw)
    return grpc.unary_unary_rpc_method_handler(unary, **kw)


# -- the server ----------------------------------------------------------------------------


@dataclass
class ServerOptions:
    socket_path: Path | None = None  # default: config.default_socket_path() when no port
    host: str = "127.0.0.1"
    port: int | None = None  # TCP when set (0 picks a free port)
    token: str | None = None  # TCP: default the per-install token
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_concurrent_rpcs: int = 256
    grace_seconds: float = 10.0
    preview: PreviewConfig = field(default_factory=PreviewConfig)
    # How previews and live edit streams deliver edits at their frames' size and type (render
    # jobs carry their own); None: the default, "transfer".
    detail: DetailConfig | None = None


class Sidecar:
    """Owns the worker, the preview sessions and the gRPC server around them."""

    SERVICES = ("liveedit.v1.ServerInfo", "liveedit.v1.Edit", "liveedit.v1.Preview", "liveedit.v1.Render")

    def __init__(self, models, options: ServerOptions | None = None, *, render_queue=None,
                 editor_factory=None, worker: GpuWorker | None = None,
                 card: ModelCard | None = None):
        self.options = options or ServerOptions()
        # before the worker thread starts: fast previews without the tiny VAE are refused here
        choose_preview_quality(models, self.options.preview.quality)
        self.card = card or ModelCard.of(models)
        detail = self.options.detail or DetailConfig()
        if editor_factory is None:
            editor_factory = delivery_factory(detail)
        self.worker = worker or GpuWorker(models, editor_factory=editor_factory)
        self.previews = PreviewSessions(self.worker, model_key=self.card.key, config=self.options.preview,
                                        detail=detail)
        self.render_queue = render_queue
        self.address: str | None = None
        self.socket_path: Path | None = None
        self.token: str | None = None
        self._server: grpc.aio.Server | None = None
        self._health = health_aio.HealthServicer()
        self.info = ServerInfoServicer(self.card, self.options.max_message_bytes, self.options.preview.quality)
        self.edit = EditServicer(self.worker, self.card)

    async def start(self) -> str:
        opts = self.options
        interceptors = []
        if opts.port is not None:
            config.check_loopback(opts.host)
            self.token = opts.token or config.load_or_create_token()
            interceptors.append(TokenInterceptor(self.token))
        size = opts.max_message_bytes
        server = grpc.aio.server(
            interceptors=interceptors, maximum_concurrent_rpcs=opts.max_concurrent_rpcs,
            options=[("grpc.max_receive_message_length", size), ("grpc.max_send_message_length", size),
                     ("grpc.so_reuseport", 0)])  # a second server must fail, not share the port
        _register(server, server_info_pb2, "ServerInfo", self.info)
        _register(server, edit_pb2, "Edit", self.edit)
        _register(server, preview_pb2, "Preview", PreviewServicer(self.previews, self.card))
        _register(server, render_pb2, "Render", RenderServicer(self.render_queue, self.card))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            (*self.SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), server)
        if opts.port is not None:
            host = f"[{opts.host}]" if ":" in opts.host else opts.host
            port = server.add_insecure_port(f"{host}:{opts.port}")
            if port == 0:
                raise config.ConfigError(f"cannot listen on {opts.host}:{opts.port}; is another "
                                         "server using it? pick another --port")
            self.address = f"{host}:{port}"
        else:
            path = opts.socket_path or config.default_socket_path()
            config.ensure_private_dir(path.parent) if opts.socket_path is None else \
                path.parent.mkdir(parents=True, exist_ok=True)
            _clear_stale_socket(path)
            old_umask = os.umask(0o177)  # the socket is created 0600: only this user connects
            try:
                bound = server.add_insecure_port(f"unix:{path}")
            finally:
                os.umask(old_umask)
            if bound == 0:
                raise config.ConfigError(f"cannot listen on socket {path}; check the folder is writable")
            os.chmod(path, 0o600)
            self.socket_path = path
            self.address = f"unix:{path}"
        await server.start()
        self._server = server
        for name in ("", *self.SERVICES):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("liveedit sidecar %s listening on %s; model: %s", __version__, self.address,
                 self.card.description)
        return self.address

    async def wait(self) -> None:
        await self._server.wait_for_termination()

    async def stop(self, grace: float | None = None) -> None:
        """Graceful: refuse new calls, let running calls finish for `grace` seconds, put a
        running render region back in the queue (it re-renders on next start), then stop
        the worker after its queued work."""
        if self._server is None:
            return
        grace = self.options.grace_seconds if grace is None else grace
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)
        self._server = None
        self.previews.close_all()
        if self.render_queue is not None:
            await asyncio.to_thread(self.render_queue.close)
        await self.worker.close(drain=True)
        if self.socket_path is not None:
            try:
                self.socket_path.unlink()
            except FileNotFoundError:
                pass
        log.info("liveedit sidecar stopped")


def _clear_stale_socket(path: Path) -> None:
    """A socket file left by a crashed server is removed; a live server's is not."""
    if not path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except OSError:
        path.unlink()
        return
    finally:
        probe.close()
    raise config.ConfigError(f"a server is already listening on {path}; stop it or pass another --socket")
