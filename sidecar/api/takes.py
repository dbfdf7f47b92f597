"""The bridge's take routes (`/v1/takes/...`): thin HTTP over sidecar/takes/ for the OpenFX
plug-in, which speaks plain HTTP/1.1 with binary bodies (no gRPC inside a host's process).

Bodies with pixels are framed as ``[u32 little-endian n][n bytes of JSON][payload]``: the JSON
describes the payload's parts by byte count. These routes read their bodies themselves, with
their own cap (a 4K float RGBA frame fits), instead of the bridge's 256 KiB JSON cap; the
bridge's middlewares (token, Host, Origin, JSON errors) apply as to every route.

| route | body | answer |
| --- | --- | --- |
| `GET /v1/takes/info` | | chunk layout, qualities, colours, depths, whether weights are random, the detail setting |
| `POST /v1/takes/frame` | JSON (framed or plain): `take`, `frame`, `hashes` (hex, frames 0..end of the frame's chunk), `format` `{depth, channels}`, `window` `[x1, y1, x2, y2]`, `wait_ms`, `alpha` (`send`, or `source`: the client copies its own source's alpha), `accept` (optional: `["rgb"]`) | 200 framed: `{encoding, width, height, depth, channels, lut_bytes, rgb_bytes, alpha, alpha_bytes?, raw_bytes?, rows?, frame, premultiplied, status}` + payload ("lut" for 8-bit edits, "raw" at the host's depth for 16-bit and float ones and premultiplied output, or "rgb" instead of "raw" for clients that accept it: RGB rows top-down, alpha opaque or the client's); 202 JSON `{state: "need_sources", need: [frames]}` or `{state: "pending"}`, both with `status` |
| `POST /v1/takes/sources` | framed: `take`, `frames: [{index, hash, width, height, depth, channels, premultiplied, bytes}]` + the frames' pixels one after another | `{stored: n}` |
| `GET /v1/takes/stats` | | counters: edited, replayed, cache hits, bytes held |
| `POST /v1/takes/clear` | | drops every take, edited and source frame (memory and disk) |
"""

from __future__ import annotations

import json
import struct

import numpy as np
from aiohttp import web

from liveedit.errors import InputError, LiveEditError
from liveedit.sidecar.takes.pixels import PixelFormat, check_size, check_window
from liveedit.sidecar.takes.service import (
    FrameReady,
    FrameRequest,
    SourceUpload,
    TakeService,
    TakeSettings,
    parse_hash,
)

# One 3840x2160 float RGBA frame is 127 MiB and fits; an 8K float RGBA frame (506 MiB) does not.
MAX_TAKE_BODY_BYTES = 160 * 2**20
MAX_HEADER_BYTES = 4 * 2**20  # the JSON part: 100,000 hashes are 3.4 MB
FRAMED = "application/x-liveedit-frame"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _failure(exc: LiveEditError) -> web.Response:
    from liveedit.sidecar.api.bridge import http_status_for  # the one kind -> HTTP status table

    status, code = http_status_for(exc)
    return _error(status, code, str(exc))


async def _read_body(request: web.Request) -> bytes | web.Response:
    length = request.content_length
    if length is None:
        return _error(411, "length_required", "send the body with a Content-Length header")
    if length > MAX_TAKE_BODY_BYTES:
        return _error(413, "request_entity_too_large",
                      f"request body of {length} bytes is over the take limit of {MAX_TAKE_BODY_BYTES // 2**20} MiB "
                      "(a 4K float RGBA frame is 127 MiB); send fewer frames per request, or work at a lower "
                      "resolution or depth")
    return await request.content.readexactly(length)


def split_framed(body: bytes) -> tuple[dict, memoryview]:
    """`[u32 n][n bytes JSON][payload]` -> (JSON object, payload)."""
    if len(body) < 4:
        raise InputError("the body is shorter than its 4-byte header length")
    (n,) = struct.unpack_from("<I", body)
    if n > MAX_HEADER_BYTES or 4 + n > len(body):
        raise InputError(f"the body's JSON header says {n} bytes but the body has {len(body) - 4}")
    try:
        header = json.loads(bytes(body[4:4 + n]))
    except ValueError:
        raise InputError("the body's JSON header is not valid JSON") from None
    if not isinstance(header, dict):
        raise InputError("the body's JSON header must be an object")
    return header, memoryview(body)[4 + n:]


def _framed_head(header: dict) -> bytes:
    """`[u32 n][JSON]`, the JSON padded with spaces so that the payload after it starts 16-byte aligned."""
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-(4 + len(blob)) % 16)
    return struct.pack("<I", len(blob)) + blob


def framed(header: dict, parts: list) -> bytearray:
    """`[u32 n][JSON][parts]`, the parts (bytes or numpy arrays of any layout) copied once, straight
    into one buffer (request bodies; answers are streamed by `send_framed`)."""
    head = _framed_head(header)
    sizes = [p.nbytes if isinstance(p, np.ndarray) else len(p) for p in parts]
    out = bytearray(len(head) + sum(sizes))
    out[:len(head)] = head
    offset = len(head)
    for part, size in zip(parts, sizes):
        if isinstance(part, np.ndarray):
            target = np.frombuffer(out, dtype=part.dtype, count=part.size, offset=offset).reshape(part.shape)
            np.copyto(target, part)
        else:
            out[offset:offset + size] = part
        offset += size
    return out


SEND_CHUNK = 1 << 20  # bytes handed to the socket at a time when streaming an answer


async def send_framed(request: web.Request, header: dict, parts: list) -> web.StreamResponse:
    """`framed`'s bytes, streamed: the parts go to the socket from where they lie (a stored frame
    is sent without a copy of it in Python), a megabyte at a time so that the event loop's
    transport never buffers a whole frame. An already-edited 1080p float frame is 25 MB; copying
    it into fresh memory twice more (the joined answer, the transport's buffer) cost more CPU
    on a 2-core machine than everything else the answer takes (docs/benchmarks.md)."""
    head = _framed_head(header)
    views = [memoryview(np.ascontiguousarray(p)).cast("B") if isinstance(p, np.ndarray) else memoryview(p).cast("B")
             for p in parts]
    response = web.StreamResponse(headers={"Cache-Control": "no-store"})
    response.content_type = FRAMED
    response.content_length = len(head) + sum(v.nbytes for v in views)
    await response.prepare(request)
    await response.write(head)
    for view in views:
        for start in range(0, view.nbytes, SEND_CHUNK):
            await response.write(view[start:start + SEND_CHUNK])
    await response.write_eof()
    return response


def _integer(data: dict, name: str, default=None) -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(f'"{name}" must be a whole number; got {value!r}')
    return value


def _format(data) -> PixelFormat:
    if not isinstance(data, dict):
        raise InputError('"format" must be {"depth": "u8"|"u16"|"f32", "channels": 3|4}')
    return PixelFormat(data.get("depth"), data.get("channels"))


def parse_frame_request(body: dict) -> FrameRequest:
    hashes = body.get("hashes")
    if not isinstance(hashes, list) or not hashes:
        raise InputError('"hashes" must list the source frames\' hashes from the edit start on')
    window = body.get("window")
    wait_ms = _integer(body, "wait_ms", 0)
    alpha = body.get("alpha", "send")
    if alpha not in ("send", "source"):
        raise InputError('"alpha" is "send" (in the answer) or "source" (the client copies its source\'s alpha)')
    accept = body.get("accept", [])
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        raise InputError('"accept" lists the answer encodings the client reads beyond "lut" and "raw", e.g. ["rgb"]')
    if not 0 <= wait_ms <= 60_000:
        raise InputError(f"wait_ms {wait_ms} is outside 0..60000")
    return FrameRequest(
        settings=TakeSettings.from_dict(body.get("take")),
        frame=_integer(body, "frame"),
        hashes=tuple(parse_hash(h, f"hash of source frame {i}") for i, h in enumerate(hashes)),
        fmt=_format(body.get("format")),
        window=check_window(tuple(window) if isinstance(window, list) else window),
        wait_seconds=wait_ms / 1000.0,
        alpha_from_source=alpha == "source",
        accept_rgb="rgb" in accept,
    )


def parse_sources(body: dict, payload: memoryview) -> tuple[TakeSettings, list[SourceUpload]]:
    settings = TakeSettings.from_dict(body.get("take"))
    frames = body.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError('"frames" must list the uploaded frames')
    uploads, offset = [], 0
    for n, item in enumerate(frames):
        if not isinstance(item, dict):
            raise InputError(f"frames[{n}] must be an object")
        fmt = _format(item)
        width, height = _integer(item, "width"), _integer(item, "height")
        size = _integer(item, "bytes")
        check_size(width, height, f"frames[{n}]")
        if size != fmt.frame_bytes(width, height):
            raise InputError(f"frames[{n}]: {width}x{height} {fmt.depth} with {fmt.channels} channels is "
                             f"{fmt.frame_bytes(width, height)} bytes, not {size}")
        if offset + size > len(payload):
            raise InputError(f"frames[{n}] runs past the end of the body ({offset + size} > {len(payload)} bytes)")
        premultiplied = item.get("premultiplied", False)
        if not isinstance(premultiplied, bool):
            raise InputError(f"frames[{n}].premultiplied must be true or false")
        uploads.append(SourceUpload(parse_hash(item.get("hash"), f"frames[{n}].hash"), width, height, fmt,
                                    premultiplied, payload[offset:offset + size]))
        offset += size
    if offset != len(payload):
        raise InputError(f"the body has {len(payload) - offset} bytes after the last frame")
    return settings, uploads


class _Routes:
    def __init__(self, service: TakeService):
        self.service = service

    async def _json(self, request: web.Request) -> dict | web.Response:
        body = await _read_body(request)
        if isinstance(body, web.Response):
            return body
        if request.content_type == FRAMED:
            header, _ = split_framed(body)
            return header
        try:
            data = json.loads(body)
        except ValueError:
            raise InputError("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise InputError("the request body must be a JSON object")
        return data

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.info())

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.service.stats())

    async def clear(self, request: web.Request) -> web.Response:
        return web.json_response({"cleared": await self.service.clear()})

    async def frame(self, request: web.Request) -> web.Response:
        try:
            body = await self._json(request)
            if isinstance(body, web.Response):
                return body
            answer = await self.service.frame(parse_frame_request(body))
        except LiveEditError as exc:
            return _failure(exc)
        if isinstance(answer, FrameReady):
            return await send_framed(request, {**answer.meta, "status": answer.status}, answer.parts)
        state = "need_sources" if answer.need else "pending"
        return web.json_response({"state": state, "need": answer.need, "status": answer.status}, status=202)

    async def sources(self, request: web.Request) -> web.Response:
        try:
            body = await _read_body(request)
            if isinstance(body, web.Response):
                return body
            if request.content_type != FRAMED:
                raise InputError(f"send source frames as {FRAMED}: [u32 n][n bytes of JSON][pixels]")
            header, payload = split_framed(body)
            settings, uploads = parse_sources(header, payload)
            return web.json_response(await self.service.add_sources(settings, uploads))
        except LiveEditError as exc:
            return _failure(exc)


def add_take_routes(app: web.Application, service: TakeService) -> None:
    routes = _Routes(service)
    app.router.add_get("/v1/takes/info", routes.info)
    app.router.add_get("/v1/takes/stats", routes.stats)
    app.router.add_post("/v1/takes/clear", routes.clear)
    app.router.add_post("/v1/takes/frame", routes.frame)
    app.router.add_post("/v1/takes/sources", routes.sources)
