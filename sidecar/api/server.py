"""The gRPC sidecar: the grpc.aio server around the servicers (`api/servicers.py`), which
only translate messages; the logic they call is tested without a server.

Safety rules, all enforced here:
- Listens on a Unix socket (mode 0600, in a 0700 per-user folder) by default; TCP only on a
  loopback address and only with the per-install token (`authorization: Bearer <token>`).
- Requests are parsed by us, not by grpc, so malformed bytes answer INVALID_ARGUMENT instead of
  INTERNAL; our errors answer the code of their kind (`GRPC_CODE_BY_KIND`); anything unexpected
  is logged and answers INTERNAL without taking the server down.
- Frame-sized messages: the receive/send limits are raised to `max_message_bytes`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from liveedit import __version__
from liveedit.engine.config import DetailConfig
from liveedit.errors import Kind, LiveEditError, known_failure
from liveedit.protos.liveedit.v1 import edit_pb2, preview_pb2, render_pb2, server_info_pb2
from liveedit.sidecar import config
from liveedit.sidecar.delivery import editor_factory as delivery_factory
from liveedit.sidecar.outputs import cut
from liveedit.sidecar.api.servicers import (EditServicer, ModelCard, PreviewServicer, RenderServicer,
                                            ServerInfoServicer, check_parsed, safe_parser)
from liveedit.sidecar.preview import PreviewConfig, PreviewSessions
from liveedit.sidecar.worker import GpuWorker, choose_preview_quality

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 2**20  # a UHD RGB24 frame is 24.9 MB
CODE = grpc.StatusCode

# What each kind of error answers (liveedit/errors.py declares the kind on every class; the
# bridge's HTTP_STATUS_BY_KIND says the same in HTTP).
GRPC_CODE_BY_KIND: dict[Kind, grpc.StatusCode] = {
    Kind.INVALID: CODE.INVALID_ARGUMENT,
    Kind.INVALID_JOB: CODE.INVALID_ARGUMENT,
    Kind.NOT_FOUND: CODE.NOT_FOUND,
    Kind.OUT_OF_RANGE: CODE.OUT_OF_RANGE,
    # Another sidecar holds the queue: this one cannot serve it, the other one can.
    Kind.BUSY: CODE.UNAVAILABLE,
    Kind.UNAVAILABLE: CODE.UNAVAILABLE,
    Kind.FAILED_PRECONDITION: CODE.FAILED_PRECONDITION,
    Kind.SUPERSEDED: CODE.ABORTED,
    Kind.CANCELLED: CODE.CANCELLED,
    Kind.UNIMPLEMENTED: CODE.UNIMPLEMENTED,
    Kind.EXHAUSTED: CODE.RESOURCE_EXHAUSTED,
}
# Status details travel as HTTP/2 trailers, which have a size limit: a message that echoes a
# huge request value would turn into RESOURCE_EXHAUSTED (metadata too large). Values are cut
# where messages are made; this is the backstop.
MAX_DETAILS_CHARS = 2000


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Our errors answer their kind's code with their message; anything else is our bug:
    INTERNAL, with the details only in the log."""
    if not isinstance(exc, LiveEditError):
        exc = known_failure(exc) or exc
    if isinstance(exc, LiveEditError):
        return GRPC_CODE_BY_KIND[exc.kind], cut(str(exc), MAX_DETAILS_CHARS)
    return CODE.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


# -- request parsing and error mapping ---------------------------------------------------


async def _abort_with(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_for(exc)
    if code == CODE.INTERNAL:
        log.exception("unexpected error in a request handler", exc_info=exc)
    await context.abort(code, message)


def _unary(method):
    async def handler(request, context):
        try:
            return await method(check_parsed(request), context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status, never crashes the server
            await _abort_with(context, exc)

    return handler


def _streaming(method, *, parse_request: bool = True):
    async def handler(request, context):
        try:
            if parse_request:
                request = check_parsed(request)
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
        kw = dict(request_deserializer=safe_parser(request_type),
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
    max_edit_streams: int = 2  # live edit streams at once; each holds a KV cache on the GPU


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
        # One detail setting for everything this sidecar edits live: edit streams, previews and
        # takes (take_service_for reads it here).
        detail = self.detail = self.options.detail or DetailConfig()
        if editor_factory is None:  # live streams and full-quality previews
            editor_factory = delivery_factory(detail)
        self.worker = worker or GpuWorker(models, editor_factory=editor_factory)
        self.previews = PreviewSessions(self.worker, model_key=self.card.identity, config=self.options.preview,
                                        detail=detail)
        self.render_queue = render_queue
        self.address: str | None = None
        self.socket_path: Path | None = None
        self.token: str | None = None
        self._server: grpc.aio.Server | None = None
        self._health = health_aio.HealthServicer()
        self.info = ServerInfoServicer(self.card, self.options.max_message_bytes, self.options.preview.quality)
        self.edit = EditServicer(self.worker, self.card, max_streams=self.options.max_edit_streams)

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
        self.info.render_executor = getattr(self.render_queue, "executor", None)
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
            clear_stale_socket(path)
            _bind_private_socket(server, path)
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


def _bind_private_socket(server: grpc.aio.Server, path: Path) -> None:
    """Listen on a Unix socket at `path` that only this user can connect to, without
    changing the process's umask (which would change the mode of every file other threads
    create meanwhile): the socket is bound inside a fresh 0700 folder next to `path`, made
    0600 there, then renamed into place (a listening socket follows its rename)."""
    private = Path(tempfile.mkdtemp(prefix=".le-", dir=path.parent))  # mode 0700; short: sun_path is 108 bytes
    inside = private / "s"
    try:
        if server.add_insecure_port(f"unix:{inside}") == 0:
            raise config.ConfigError(f"cannot listen on socket {path}; check the folder is writable")
        os.chmod(inside, 0o600)
        os.replace(inside, path)
    finally:
        try:
            inside.unlink(missing_ok=True)
            private.rmdir()
        except OSError as exc:
            log.warning("could not remove the temporary folder %s: %s", private, exc)


def clear_stale_socket(path: Path) -> None:
    """A socket file left by a crashed server is removed; a live server's is not, and
    anything that is not a socket is never touched."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise config.ConfigError(f"{path} exists and is not a socket; it was left as it is: pass another "
                                 "--socket path (a new name in a folder of your own)")
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
