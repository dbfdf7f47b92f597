"""HTTP + WebSocket JSON bridge for clients that cannot speak gRPC: the Premiere UXP panel
(fetch and WebSocket only, no listening sockets), Resolve's stdlib-only scripts, a browser
debug page. It is a thin layer over the same services as the gRPC server: the render queue
(`sidecar/jobs/`) and the preview service.

Security model (the bridge drives a GPU and writes files as the user):
- It listens on loopback only (127.0.0.1 by default: UXP on macOS reaches `127.0.0.1`
  literals, not `localhost`).
- Every request carries the per-install token (`config.load_or_create_token`, a mode-0600 file
  in the user's config folder): `Authorization: Bearer <token>`, or `?token=` where the client
  cannot set headers (WebSocket from UXP/browsers, `<img src>` preview URLs).
- A request with an `Origin` header is refused (403) unless the origin is in the allow-list,
  so a web page the user happens to visit cannot drive the bridge even if it guessed the
  port. Allowed: no Origin (scripts, curl), `null`, `file://`, and `uxp://...` (what UXP
  panels are reported to send: `uxp://<plugin id>` or `uxp://uxp-internal`, and `null` in
  some hosts). `null` is also what a sandboxed iframe sends, so the token, which no web page
  can read, remains the real lock. Extra origins can be added when starting the bridge.
- The Host header must name a loopback host (defeats DNS rebinding).
- CORS: the allowed origin is echoed back, never `*`.
- Bodies and WebSocket messages are capped; errors are JSON without tracebacks.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np
from aiohttp import WSMsgType, web

from liveedit import __version__
from liveedit.errors import InputError, Kind, LiveEditError, known_failure
from liveedit.sidecar import config, preview
from liveedit.sidecar.api import pairing
from liveedit.sidecar.api.convert import job_spec_from_json
from liveedit.sidecar.jobs import RenderQueue
from liveedit.sidecar.outputs import check_path_length, cut
from liveedit.sidecar.validation import check_instruction, check_seed

log = logging.getLogger(__name__)

API_VERSION = 1
MAX_BODY_BYTES = 256 * 1024  # a job of 1000 regions fits; a video upload does not
MAX_WS_MESSAGE_BYTES = 256 * 1024
MAX_MESSAGE_CHARS = 2000  # error messages cut what they echo of a request to this
ALLOWED_ORIGINS = ("null", "file://")
ALLOWED_ORIGIN_PREFIXES = ("uxp://",)
LOOPBACK_HOST_NAMES = ("127.0.0.1", "localhost", "::1")
# Paths whose clients cannot send an Authorization header.
QUERY_TOKEN_PATHS = ("/v1/events", "/v1/preview/frame")
PREVIEW_FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
PREVIEW_SIDES = ("edit", "source")

_BRIDGE_KEY = web.AppKey("bridge", object)


# --------------------------------------------------------------------------- preview interface


@dataclass(frozen=True)
class PreviewRequest:
    media: Path
    frame: int
    instruction: str
    seed: int
    side: str  # "edit": the edited frame; "source": the frame as it is in the media
    max_height: int = 0  # picture height (width follows the aspect ratio); 0: source size
    client: str = "default"


class PreviewService(Protocol):
    """What the bridge needs from the preview service: one frame as uint8 RGB [H, W, 3].
    Cancelling the await must be safe (the bridge cancels superseded requests)."""

    async def preview_frame(self, request: PreviewRequest) -> np.ndarray: ...


class SessionPreview:
    """PreviewService over `sidecar.preview.PreviewSessions`: one preview session per
    (client, media, instruction, seed, size), kept open so that scrubbing forward continues
    its live stream and edited chunks come from the shared cache."""

    MAX_SESSIONS = 16

    def __init__(self, sessions):
        self.sessions = sessions
        self._ids: dict[tuple, str] = {}  # oldest first

    async def preview_frame(self, request: PreviewRequest) -> np.ndarray:
        if request.side == "source":
            return await asyncio.to_thread(_read_source_frame, request.media, request.frame, request.max_height)
        key = (request.client, str(request.media), request.instruction, request.seed, request.max_height)
        for attempt in (1, 2):
            session_id = self._ids.get(key)
            if session_id is None:
                session = await asyncio.to_thread(self.sessions.open, request.media, request.instruction,
                                                  request.seed, max_height=request.max_height)
                session_id = self._ids[key] = session.id
                while len(self._ids) > self.MAX_SESSIONS:
                    self._close(next(iter(self._ids)))
            try:
                async for out in self.sessions.seek(session_id, request.frame):
                    if out.frame == request.frame:
                        return out.pixels
                raise LiveEditError(f"the preview did not produce frame {request.frame}")
            except preview.UnknownSessionError:  # closed behind our back (session limit): reopen once
                self._ids.pop(key, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _close(self, key: tuple) -> None:
        session_id = self._ids.pop(key)
        try:
            self.sessions.close(session_id)
        except preview.UnknownSessionError:
            pass


def _read_source_frame(media: Path, frame: int, max_height: int) -> np.ndarray:
    source = preview.open_media(media, max_height)
    try:
        if frame >= source.frame_count:
            raise preview.FrameOutOfRangeError(f"frame {frame} is past the last frame ({source.frame_count - 1}) "
                                               f"of {media}")
        return source.read(frame, 1)[0]
    finally:
        source.close()


# --------------------------------------------------------------------------- helpers


class BridgeError(LiveEditError):
    """The bridge cannot start as asked."""

    kind = Kind.FAILED_PRECONDITION


def origin_allowed(origin: str | None, extra: Iterable[str] = ()) -> bool:
    if origin is None:
        return True  # scripts and command-line tools send no Origin
    if origin in ALLOWED_ORIGINS or origin in extra:
        return True
    return origin.startswith(ALLOWED_ORIGIN_PREFIXES) and len(origin) > len("uxp://")


def _host_is_loopback(host_header: str | None) -> bool:
    if not host_header:
        return False
    host = host_header.strip()
    if host.startswith("["):  # [::1]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.lower() in LOOPBACK_HOST_NAMES


def _error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


# What each kind of error answers: (HTTP status, error code); the same as the gRPC server's
# GRPC_CODE_BY_KIND in HTTP's words. Anything that is not a LiveEditError is ours (500, details
# only in the log).
HTTP_STATUS_BY_KIND: dict[Kind, tuple[int, str]] = {
    Kind.INVALID: (400, "invalid_request"),
    Kind.INVALID_JOB: (400, "invalid_job"),
    Kind.NOT_FOUND: (404, "not_found"),
    Kind.OUT_OF_RANGE: (400, "out_of_range"),
    Kind.BUSY: (503, "unavailable"),
    Kind.UNAVAILABLE: (503, "unavailable"),
    Kind.FAILED_PRECONDITION: (400, "bad_request"),
    Kind.SUPERSEDED: (409, "superseded"),
    Kind.CANCELLED: (499, "cancelled"),  # no standard status; 499 is the usual "client closed request"
    Kind.UNIMPLEMENTED: (501, "unimplemented"),
    Kind.EXHAUSTED: (429, "resource_exhausted"),
}
DEFAULT_MAX_WEBSOCKETS = 32  # editor panels open one or two each


def http_status_for(exc: LiveEditError) -> tuple[int, str]:
    return HTTP_STATUS_BY_KIND[exc.kind]


def _http_code(exc: web.HTTPException) -> str:
    return (exc.reason or "error").lower().replace(" ", "_")


# --------------------------------------------------------------------------- the app


class _Bridge:
    def __init__(self, queue: RenderQueue, preview: PreviewService | None, token: str,
                 info: Callable[[], Any] | dict | None, extra_origins: Iterable[str], model: str | None,
                 max_websockets: int = DEFAULT_MAX_WEBSOCKETS):
        self.queue = queue
        self.max_websockets = max_websockets
        self.model = model  # the loaded model's identity: names a timeline's regions as `liveedit render` does
        self.preview = preview
        self.token = token
        self.info = info
        self.extra_origins = tuple(extra_origins)
        self.preview_inflight: dict[str, asyncio.Future] = {}  # client -> its latest request
        self.sockets: set[web.WebSocketResponse] = set()

    # -- middlewares --------------------------------------------------------

    @web.middleware
    async def errors(self, request: web.Request, handler) -> web.StreamResponse:
        """Every failure becomes `{"error": {"code", "message"}}`; never a traceback."""
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
            if exc.status == 404:
                message = f"no such endpoint {request.path}; see the bridge API in docs/architecture.md"
            elif exc.status == 405:
                message = f"{request.method} is not allowed on {request.path}"
            elif exc.status == 413:
                message = f"request body too large; the limit is {MAX_BODY_BYTES // 1024} KiB"
            return _error(exc.status, _http_code(exc), message)
        except LiveEditError as exc:
            status, code = http_status_for(exc)
            return _error(status, code, cut(str(exc), MAX_MESSAGE_CHARS))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - our bug: log it, tell the client only that it happened
            known = known_failure(exc)  # GPU out of memory, a path too long: not our bug
            if known is not None:
                status, code = http_status_for(known)
                return _error(status, code, str(known))
            log.exception("bridge: %s %s failed", request.method, cut(request.path))
            return _error(500, "internal", "internal error in the LiveEdit sidecar; see its log")

    @web.middleware
    async def guard(self, request: web.Request, handler) -> web.StreamResponse:
        """Host, Origin and token checks, and CORS for the allowed origins."""
        if not _host_is_loopback(request.headers.get("Host")):
            return _error(403, "forbidden_host", "the bridge answers only requests addressed to "
                          "127.0.0.1 or localhost")
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, self.extra_origins):
            log.warning("bridge: refused a request from origin %r", cut(origin))
            return _error(403, "forbidden_origin", f"requests from {cut(origin)!r} are not allowed; the bridge "
                          "serves the LiveEdit panel and local scripts only")
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}
        if request.method == "OPTIONS" and origin:  # CORS preflight: carries no token by design
            return web.Response(status=204, headers={
                **cors,
                "Access-Control-Allow-Methods": "GET, POST, DELETE",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            })
        if not self._authorized(request):
            return _error(401, "unauthorized",
                          "missing or wrong token: send 'Authorization: Bearer <token>' with the token "
                          f"from {config.token_path()}", headers={"WWW-Authenticate": "Bearer", **cors})
        response = await handler(request)
        if cors and not response.prepared:
            response.headers.update(cors)
        return response

    def _authorized(self, request: web.Request) -> bool:
        if request.method == "POST" and request.path in pairing.PUBLIC_PATHS:
            return True  # exchanging a one-time pairing code for the token (sidecar/api/pairing.py)
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return config.token_matches(self.token, header[len("Bearer "):].strip())
        if request.method == "GET" and request.path in QUERY_TOKEN_PATHS:
            return config.token_matches(self.token, request.query.get("token"))
        return False

    # -- handlers -----------------------------------------------------------

    async def get_info(self, request: web.Request) -> web.Response:
        info = self.info() if callable(self.info) else dict(self.info or {})
        if inspect.isawaitable(info):
            info = await info
        return web.json_response({"version": __version__, "bridge_api": API_VERSION,
                                  "preview": self.preview is not None, **info})

    async def submit_job(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        job = await asyncio.to_thread(self._submit, body)
        return web.json_response({"job": job.to_dict()}, status=201)

    async def list_jobs(self, request: web.Request) -> web.Response:
        jobs, next_token = await asyncio.to_thread(self._list_page, request.query)
        more = {"next_page_token": next_token} if next_token else {}  # only when there is a next page
        return web.json_response({"jobs": [job.to_dict() for job in jobs], **more})

    async def delete_job(self, request: web.Request) -> web.Response:
        await asyncio.to_thread(self.queue.delete, request.match_info["job_id"])
        return web.json_response({"deleted": request.match_info["job_id"]})

    def _list_page(self, query) -> tuple[list, str]:
        raw = query.get("page_size", "0")
        if not raw.isdigit():
            raise InputError(f"page_size must be a whole number; got {cut(raw)!r}")
        return self.queue.list_page(int(raw), query.get("page_token", ""))

    async def get_job(self, request: web.Request) -> web.Response:
        return web.json_response({"job": self.queue.get(request.match_info["job_id"]).to_dict()})

    async def cancel_job(self, request: web.Request) -> web.Response:
        job = await asyncio.to_thread(self.queue.cancel, request.match_info["job_id"])
        return web.json_response({"job": job.to_dict()})

    async def preview_frame(self, request: web.Request) -> web.Response:
        if self.preview is None:
            return _error(503, "unavailable", "this sidecar runs without a preview service")
        wanted, image_format, client = _parse_preview_query(request.query)
        # Latest wins per client: a new request cancels the one still waiting, which answers 409.
        previous = self.preview_inflight.get(client)
        if previous is not None and not previous.done():
            previous.cancel()
        work = asyncio.ensure_future(self.preview.preview_frame(wanted))
        self.preview_inflight[client] = work
        try:
            pixels = await work
        except asyncio.CancelledError:
            if self.preview_inflight.get(client) is not work and work.cancelled():
                return _error(409, "superseded", "a newer preview request from this client replaced this one")
            raise
        finally:
            if self.preview_inflight.get(client) is work:
                del self.preview_inflight[client]
        pil_format, content_type = PREVIEW_FORMATS[image_format]
        data = await asyncio.to_thread(_encode_image, pixels, pil_format)
        return web.Response(body=data, content_type=content_type, headers={"Cache-Control": "no-store"})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """WebSocket: pushes `{"type": "job", "job": Job}` for every job (current ones first,
        then each change) and answers commands: submit, cancel, get, list, delete. At most
        `max_websockets` at once: each holds a watcher of every job."""
        if len(self.sockets) >= self.max_websockets:
            return _error(429, "resource_exhausted",
                          f"the bridge already has {len(self.sockets)} event connections, the most it allows; "
                          "close one (another panel or script) and connect again")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_WS_MESSAGE_BYTES)
        self.sockets.add(ws)  # counted before the handshake's await, so a burst cannot overshoot
        try:
            await ws.prepare(request)
        except BaseException:
            self.sockets.discard(ws)
            raise
        send_lock = asyncio.Lock()

        async def send(message: dict) -> None:
            async with send_lock:
                if not ws.closed:
                    await ws.send_json(message)

        async def pump() -> None:
            async for job in self.queue.watch_all():
                await send({"type": "job", "job": job.to_dict()})

        pump_task = asyncio.create_task(pump())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await send(await self._command(message.data))
                elif message.type == WSMsgType.BINARY:
                    await send(_ws_error(None, "invalid_request", "send JSON text messages, not binary"))
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            pump_task.cancel()
            self.sockets.discard(ws)
        return ws

    async def _command(self, text: str) -> dict:
        try:
            message = json.loads(text)
        except ValueError:
            return _ws_error(None, "invalid_json", "the message is not valid JSON")
        if not isinstance(message, dict):
            return _ws_error(None, "invalid_request", 'messages are objects like {"type": "list"}')
        request_id = message.get("request_id")
        kind = message.get("type")
        try:
            if kind == "submit":
                job = await asyncio.to_thread(self._submit, message.get("job"))
            elif kind == "cancel":
                job = await asyncio.to_thread(self.queue.cancel, _job_id(message))
            elif kind == "get":
                job = self.queue.get(_job_id(message))
            elif kind == "list":
                jobs, next_token = await asyncio.to_thread(
                    self.queue.list_page, _page_size(message), str(message.get("page_token") or ""))
                more = {"next_page_token": next_token} if next_token else {}
                return {"type": "result", "request_id": request_id, "jobs": [j.to_dict() for j in jobs], **more}
            elif kind == "delete":
                job_id = _job_id(message)
                await asyncio.to_thread(self.queue.delete, job_id)
                return {"type": "result", "request_id": request_id, "deleted": job_id}
            else:
                return _ws_error(request_id, "unknown_type",
                                 f"unknown message type {cut(kind)!r}; use submit, cancel, get, list or delete")
        except LiveEditError as exc:
            return _ws_error(request_id, http_status_for(exc)[1], cut(str(exc), MAX_MESSAGE_CHARS))
        except Exception as exc:  # noqa: BLE001
            known = known_failure(exc)
            if known is not None:
                return _ws_error(request_id, http_status_for(known)[1], str(known))
            log.exception("bridge: WebSocket command %r failed", cut(kind))
            return _ws_error(request_id, "internal", "internal error in the LiveEdit sidecar; see its log")
        return {"type": "result", "request_id": request_id, "job": job.to_dict()}

    def _submit(self, body: Any):
        """Off the event loop: a timeline job reads files. An optional "request_id" in the body
        makes a retried submit answer the first one's job instead of queueing it twice."""
        request_id = None
        if isinstance(body, dict) and "request_id" in body:
            body = dict(body)
            request_id = body.pop("request_id")
            if request_id is not None and not isinstance(request_id, str):
                raise InputError("request_id must be text")
        return self.queue.submit(job_spec_from_json(body, self.model), request_id or None)

    async def _json_body(self, request: web.Request) -> Any:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send the body as JSON with Content-Type: application/json")
        try:
            return await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the request body is not valid JSON") from None

    async def on_shutdown(self, app: web.Application) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"sidecar shutting down")


def _page_size(message: dict) -> int:
    size = message.get("page_size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InputError("page_size must be a whole number, 0 for the default")
    return size


def _job_id(message: dict) -> str:
    job_id = message.get("job_id")
    if not isinstance(job_id, str):
        raise InputError('this message needs "job_id" (text)')
    return job_id


def _ws_error(request_id, code: str, message: str) -> dict:
    return {"type": "error", "request_id": request_id, "error": {"code": code, "message": message}}


def _parse_preview_query(query) -> tuple[PreviewRequest, str, str]:
    def integer(name: str, default: int | None = None) -> int:
        raw = query.get(name)
        if raw is None and default is not None:
            return default
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise InputError(f"query parameter {name} must be an integer; got {cut(raw)!r}") from None

    media = query.get("media")
    if not media or not Path(media).is_absolute():
        raise InputError("query parameter media must be the absolute path of the source media")
    check_path_length(media, "media")
    if not Path(media).is_file():
        raise InputError(f"media {cut(media)!r} does not exist or is not a file; check the path")
    frame = integer("frame")
    if frame < 0:
        raise InputError(f"frame is {frame}; frames count from 0")
    side = query.get("side", "edit")
    if side not in PREVIEW_SIDES:
        raise InputError(f"side must be 'edit' or 'source'; got {side!r}")
    image_format = query.get("format", "jpeg")
    if image_format not in PREVIEW_FORMATS:
        raise InputError(f"format must be 'jpeg' or 'png'; got {image_format!r}")
    instruction = query.get("instruction", "")
    if side == "edit":
        instruction = check_instruction(instruction, "instruction")
    seed = check_seed(integer("seed", 0))
    max_height = integer("max_height", 0)
    if not 0 <= max_height <= 8192:
        raise InputError(f"max_height {max_height} must be 0 (source size) to 8192 pixels")
    client = query.get("client", "default")[:100]
    return PreviewRequest(Path(media), frame, instruction, seed, side, max_height, client), image_format, client


def _encode_image(pixels: np.ndarray, pil_format: str) -> bytes:
    from PIL import Image

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise TypeError(f"preview service returned {pixels.dtype} {pixels.shape}, not uint8 [H, W, 3]")
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, pil_format, **({"quality": 90} if pil_format == "JPEG" else {}))
    return out.getvalue()


def build_app(queue: RenderQueue, preview: PreviewService | None, token: str, *,
              info: Callable[[], Any] | dict | None = None, extra_origins: Iterable[str] = (),
              model: str | None = None, max_websockets: int = DEFAULT_MAX_WEBSOCKETS,
              takes=None) -> web.Application:
    bridge = _Bridge(queue, preview, token, info, extra_origins, model, max_websockets)
    app = web.Application(middlewares=[bridge.errors, bridge.guard], client_max_size=MAX_BODY_BYTES)
    app[_BRIDGE_KEY] = bridge
    app.router.add_get("/v1/info", bridge.get_info)
    app.router.add_post("/v1/jobs", bridge.submit_job)
    app.router.add_get("/v1/jobs", bridge.list_jobs)
    app.router.add_get("/v1/jobs/{job_id}", bridge.get_job)
    app.router.add_delete("/v1/jobs/{job_id}", bridge.delete_job)
    app.router.add_post("/v1/jobs/{job_id}/cancel", bridge.cancel_job)
    app.router.add_get("/v1/preview/frame", bridge.preview_frame)
    app.router.add_get("/v1/events", bridge.events)
    pairing.register(app, token)
    if takes is not None:  # sidecar/takes/ behind /v1/takes/... (the OpenFX plug-in)
        from liveedit.sidecar.api.takes import add_take_routes

        add_take_routes(app, takes)
    app.on_shutdown.append(bridge.on_shutdown)
    return app


# --------------------------------------------------------------------------- starting


@dataclass
class RunningBridge:
    host: str
    port: int
    token: str
    _runner: web.AppRunner
    port_file: bool = False  # whether it wrote bridge.json, which close() removes

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        await self._runner.cleanup()
        if self.port_file:  # clients must not find a stopped sidecar's port
            config.remove_bridge_info(self.port)


async def start_bridge(queue: RenderQueue, preview_service: PreviewService | None, host: str = "127.0.0.1",
                       port: int = 0, *, token: str | None = None,
                       info: Callable[[], Any] | dict | None = None, extra_origins: Iterable[str] = (),
                       write_port_file: bool = True, model: str | None = None,
                       max_websockets: int = DEFAULT_MAX_WEBSOCKETS, takes=None) -> RunningBridge:
    """Start the bridge on the running event loop (e.g. beside the grpc.aio server in
    `liveedit serve`, which starts it by default). Port 0 picks a free port; the port is written to
    `bridge.json` in the config folder for clients to find. `model` (the loaded model's identity)
    names a timeline job's regions as `liveedit render` would. Stop it with `await bridge.close()`."""
    if host == "localhost":
        host = "127.0.0.1"  # bind the literal: UXP on macOS reaches 127.0.0.1, not localhost
    config.check_loopback(host)
    for origin in extra_origins:
        if origin == "*" or not origin:
            raise BridgeError("extra origins must be exact origins like 'https://panel.example'; '*' would let "
                              "any web page drive the sidecar")
    token = token or config.load_or_create_token()
    app = build_app(queue, preview_service, token, info=info, extra_origins=extra_origins, model=model,
                    max_websockets=max_websockets, takes=takes)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise BridgeError(f"cannot listen on {host}:{port} ({exc.strerror}); is another sidecar running? "
                          "Pick another port or stop it") from None
    actual_port = runner.addresses[0][1]
    if write_port_file:
        config.write_bridge_info(actual_port)
    log.info("bridge listening on http://%s:%d", host, actual_port)
    return RunningBridge(host, actual_port, token, runner, port_file=write_port_file)
