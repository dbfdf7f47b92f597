"""HTTP + WebSocket bridge: token, Origin and Host checks, the job API over HTTP and over a
WebSocket (the way the UXP panel uses it), preview frames as images. A real bridge on
127.0.0.1 with a real render queue; only the executor and the preview service are fakes."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import threading
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image

from liveedit.clients import transport
from liveedit.sidecar import config
from liveedit.sidecar.api.bridge import PreviewRequest, origin_allowed, start_bridge
from liveedit.sidecar.jobs import RenderQueue
from test_jobs import FakeExecutor

TOKEN = "test-token-" + "x" * 32


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "config"
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(path))
    return path


@pytest.fixture
def media(tmp_path) -> Path:
    path = tmp_path / "clip.mov"
    path.write_bytes(b"fake media")
    return path


class FakePreview:
    """A gradient picture whose pixels encode the request, so tests can tell frames apart."""

    def __init__(self, hold: asyncio.Event | None = None, fail: Exception | None = None):
        self.hold = hold
        self.fail = fail
        self.requests: list[PreviewRequest] = []
        self.cancelled = 0

    async def preview_frame(self, request: PreviewRequest) -> np.ndarray:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        if self.hold is not None and len(self.requests) == 1:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        picture = np.zeros((36, 64, 3), np.uint8)
        picture[..., 0] = np.arange(64, dtype=np.uint8)[None, :] * 4
        picture[..., 1] = request.frame % 256
        picture[..., 2] = 255 if request.side == "edit" else 0
        return picture


def run_with_bridge(tmp_path, test, *, executor=None, preview=None, **bridge_kw):
    """Start a queue and a bridge, run `test(session, bridge, queue)`, shut everything down."""
    queue = RenderQueue(tmp_path / "jobs.db", executor or FakeExecutor())

    async def main():
        bridge = await start_bridge(queue, preview or FakePreview(), token=TOKEN, **bridge_kw)
        try:
            async with aiohttp.ClientSession(bridge.url) as session:
                return await asyncio.wait_for(test(session, bridge, queue), 30)
        finally:
            await bridge.close()

    try:
        return asyncio.run(main())
    finally:
        queue.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def job_body(media, out_dir, **kw):
    body = {"regions": [{"media": str(media), "first_frame": 0, "frame_count": 4,
                         "instruction": "make the fur snowy white", "seed": 1, "handles": 0}],
            "output_dir": str(out_dir), "format": "prores", "label": "bridge test"}
    body.update(kw)
    return body


def test_requests_need_the_token(tmp_path):
    async def test(session, bridge, queue):
        results = {}
        async with session.get("/v1/jobs") as r:
            results["none"] = (r.status, await r.json())
        async with session.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}) as r:
            results["wrong"] = r.status
        async with session.get("/v1/jobs", params={"token": TOKEN}) as r:
            results["query on a header-only path"] = r.status
        async with session.post("/v1/jobs/x/cancel", params={"token": TOKEN}) as r:
            results["query on a POST"] = r.status
        async with session.get("/v1/nowhere") as r:
            results["unknown path without token"] = r.status
        async with session.get("/v1/jobs", headers=AUTH) as r:
            results["right"] = (r.status, await r.json())
        return results

    results = run_with_bridge(tmp_path, test)
    status, body = results["none"]
    assert status == 401 and body["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in body["error"]["message"]
    assert results["wrong"] == results["query on a header-only path"] == 401
    assert results["query on a POST"] == results["unknown path without token"] == 401
    assert results["right"] == (200, {"jobs": []})


def test_foreign_origins_and_hosts_are_refused(tmp_path):
    async def test(session, bridge, queue):
        out = {}
        evil = {**AUTH, "Origin": "https://evil.example"}
        async with session.get("/v1/jobs", headers=evil) as r:
            out["evil"] = (r.status, await r.json(), r.headers.get("Access-Control-Allow-Origin"))
        async with session.options("/v1/jobs", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "POST"}) as r:
            out["evil preflight"] = r.status
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect("/v1/events", params={"token": TOKEN}, origin="https://evil.example")
        out["evil websocket"] = refused.value.status
        async with session.get("/v1/jobs", headers={**AUTH, "Host": f"attacker.example:{bridge.port}"}) as r:
            out["rebinding"] = (r.status, (await r.json())["error"]["code"])
        panel = {**AUTH, "Origin": "uxp://com.liveedit.premiere"}
        async with session.get("/v1/jobs", headers=panel) as r:
            out["uxp"] = (r.status, r.headers.get("Access-Control-Allow-Origin"))
        async with session.options("/v1/jobs", headers={"Origin": "uxp://com.liveedit.premiere",
                                                        "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization"}) as r:
            out["uxp preflight"] = (r.status, dict(r.headers))
        async with session.get("/v1/jobs", headers={**AUTH, "Origin": "null"}) as r:
            out["null"] = r.status
        ws = await session.ws_connect("/v1/events", params={"token": TOKEN}, origin="uxp://uxp-internal")
        out["uxp websocket"] = not ws.closed
        await ws.close()
        return out

    out = run_with_bridge(tmp_path, test)
    status, body, cors = out["evil"]
    assert status == 403 and body["error"]["code"] == "forbidden_origin" and cors is None
    assert out["evil preflight"] == 403 and out["evil websocket"] == 403
    assert out["rebinding"] == (403, "forbidden_host")
    assert out["uxp"] == (200, "uxp://com.liveedit.premiere")
    status, headers = out["uxp preflight"]
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "uxp://com.liveedit.premiere"
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert out["null"] == 200 and out["uxp websocket"]


def test_origin_allow_list():
    assert origin_allowed(None) and origin_allowed("null") and origin_allowed("file://")
    assert origin_allowed("uxp://com.liveedit.premiere") and origin_allowed("uxp://uxp-internal")
    assert not origin_allowed("uxp://") and not origin_allowed("https://evil.example")
    assert not origin_allowed("http://127.0.0.1:8000")  # a local web page is still a web page
    assert origin_allowed("http://127.0.0.1:8000", extra=["http://127.0.0.1:8000"])


def test_http_job_api_and_json_errors(tmp_path, media):
    out_dir = tmp_path / "renders"

    async def test(session, bridge, queue):
        out = {}
        async with session.post("/v1/jobs", json=job_body(media, out_dir), headers=AUTH) as r:
            out["submit"] = (r.status, await r.json())
        job_id = out["submit"][1]["job"]["id"]
        for _ in range(500):
            async with session.get(f"/v1/jobs/{job_id}", headers=AUTH) as r:
                job = (await r.json())["job"]
            if job["state"] == "done":
                break
            await asyncio.sleep(0.01)
        out["done"] = job
        async with session.get("/v1/jobs", headers=AUTH) as r:
            out["list"] = await r.json()
        bad = job_body(media, out_dir)
        bad["regions"][0]["instruction"] = " "
        async with session.post("/v1/jobs", json=bad, headers=AUTH) as r:
            out["empty instruction"] = (r.status, await r.json())
        async with session.post("/v1/jobs", json=job_body(tmp_path / "missing.mov", out_dir), headers=AUTH) as r:
            out["missing media"] = (r.status, await r.json())
        async with session.post("/v1/jobs", data=b"{not json", headers={**AUTH, "Content-Type": "application/json"}) as r:
            out["bad json"] = (r.status, await r.json())
        async with session.post("/v1/jobs", data=b"x" * (300 * 1024),
                                headers={**AUTH, "Content-Type": "application/json"}) as r:
            out["too big"] = (r.status, await r.json())
        async with session.post("/v1/jobs/nope/cancel", headers=AUTH) as r:
            out["unknown job"] = (r.status, await r.json())
        async with session.delete("/v1/jobs", headers=AUTH) as r:
            out["wrong method"] = (r.status, await r.json())
        async with session.get("/v1/info", headers=AUTH) as r:
            out["info"] = await r.json()
        return out

    out = run_with_bridge(tmp_path, test, info=lambda: {"model_preset": "tiny", "random_weights": True})
    status, body = out["submit"]
    assert status == 201 and body["job"]["label"] == "bridge test"
    done = out["done"]
    assert done["state"] == "done" and Path(done["regions"][0]["output"]).parent == out_dir.resolve()
    assert [j["id"] for j in out["list"]["jobs"]] == [done["id"]]
    for key, status, code, words in [
        ("empty instruction", 400, "invalid_job", "regions[0].instruction is empty"),
        ("missing media", 400, "invalid_job", "does not exist"),
        ("bad json", 400, "bad_request", "not valid JSON"),
        ("too big", 413, "request_entity_too_large", "limit is 256 KiB"),
        ("unknown job", 404, "not_found", "no job 'nope'"),
        ("wrong method", 405, "method_not_allowed", "DELETE is not allowed"),
    ]:
        got_status, body = out[key]
        assert got_status == status, (key, body)
        assert body["error"]["code"] == code and words in body["error"]["message"], (key, body)
        assert "Traceback" not in body["error"]["message"]
    info = out["info"]
    assert info["bridge_api"] == 1 and info["random_weights"] is True and info["model_preset"] == "tiny"


def test_a_websocket_client_submits_watches_and_cancels(tmp_path, media):
    out_dir = tmp_path / "renders"
    gate = threading.Event()

    async def test(session, bridge, queue):
        ws = await session.ws_connect("/v1/events", params={"token": TOKEN}, origin="uxp://com.liveedit.premiere")
        await ws.send_json({"type": "submit", "request_id": 1, "job": job_body(media, out_dir)})
        events = []

        async def until(predicate):
            while True:
                message = await ws.receive_json()
                events.append(message)
                if predicate(message):
                    return message

        reply = await until(lambda m: m["type"] == "result")
        job_id = reply["job"]["id"]
        assert reply["request_id"] == 1
        await until(lambda m: m["type"] == "job" and m["job"]["id"] == job_id and m["job"]["state"] == "running")
        await ws.send_json({"type": "cancel", "request_id": "c", "job_id": job_id})
        await until(lambda m: m["type"] == "result" and m["request_id"] == "c")
        gate.set()
        final = await until(lambda m: m["type"] == "job" and m["job"]["id"] == job_id
                            and m["job"]["state"] in ("done", "failed", "cancelled"))
        await ws.send_json({"type": "cancel", "request_id": 2, "job_id": "nope"})
        error = await until(lambda m: m["type"] == "error")
        await ws.send_json({"type": "shout"})
        unknown = await until(lambda m: m["type"] == "error")
        await ws.send_str("{broken")
        broken = await until(lambda m: m["type"] == "error")
        await ws.send_json({"type": "list", "request_id": 3})
        listed = await until(lambda m: m["type"] == "result" and m["request_id"] == 3)
        await ws.close()
        return final, error, unknown, broken, listed, events

    final, error, unknown, broken, listed, events = run_with_bridge(tmp_path, test, executor=FakeExecutor(gate=gate))
    assert final["job"]["state"] == "cancelled"
    assert final["job"]["regions"][0]["output"] is None
    assert error["request_id"] == 2 and error["error"]["code"] == "not_found"
    assert unknown["error"]["code"] == "unknown_type" and broken["error"]["code"] == "invalid_json"
    assert [j["state"] for j in listed["jobs"]] == ["cancelled"]


def test_preview_frame_is_a_decodable_image(tmp_path, media):
    preview = FakePreview()

    async def test(session, bridge, queue):
        params = {"token": TOKEN, "media": str(media), "frame": "7", "instruction": "snow", "seed": "2"}
        async with session.get("/v1/preview/frame", params=params) as r:
            jpeg = (r.status, r.content_type, await r.read())
        async with session.get("/v1/preview/frame", params={**params, "format": "png", "side": "source"}) as r:
            png = (r.status, r.content_type, await r.read())
        async with session.get("/v1/preview/frame", params={**params, "frame": "-1"}) as r:
            negative = (r.status, await r.json())
        async with session.get("/v1/preview/frame", params={**params, "instruction": ""}) as r:
            empty = (r.status, await r.json())
        return jpeg, png, negative, empty

    jpeg, png, negative, empty = run_with_bridge(tmp_path, test, preview=preview)
    status, content_type, data = jpeg
    assert status == 200 and content_type == "image/jpeg"
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "JPEG" and picture.size == (64, 36)
    pixels = np.asarray(picture.convert("RGB")).astype(int)
    assert abs(pixels[..., 1].mean() - 7) < 3 and pixels[..., 2].mean() > 240  # the edit of frame 7
    status, content_type, data = png
    assert status == 200 and content_type == "image/png"
    exact = np.asarray(Image.open(io.BytesIO(data)))
    assert exact[0, 10].tolist() == [40, 7, 0]  # lossless, the source side
    assert preview.requests[0] == PreviewRequest(media, 7, "snow", 2, "edit")
    assert negative[0] == 400 and "frames count from 0" in negative[1]["error"]["message"]
    assert empty[0] == 400 and "instruction is empty" in empty[1]["error"]["message"]


def test_a_newer_preview_request_supersedes_the_waiting_one(tmp_path, media):
    async def test(session, bridge, queue):
        preview.hold = asyncio.Event()
        params = {"token": TOKEN, "media": str(media), "instruction": "snow", "client": "panel-1"}

        async def fetch(frame):
            async with session.get("/v1/preview/frame", params={**params, "frame": str(frame)}) as r:
                return r.status, (await r.json() if r.status != 200 else None)

        first = asyncio.create_task(fetch(1))
        while not preview.requests:
            await asyncio.sleep(0.01)
        second = await fetch(2)
        return await first, second

    preview = FakePreview()
    first, second = run_with_bridge(tmp_path, test, preview=preview)
    assert first[0] == 409 and first[1]["error"]["code"] == "superseded"
    assert second == (200, None)
    assert preview.cancelled == 1  # the old request's GPU work was cancelled, not just ignored


def test_preview_failures_are_json_without_traceback(tmp_path, media):
    async def test(session, bridge, queue):
        params = {"token": TOKEN, "media": str(media), "frame": "0", "instruction": "snow"}
        async with session.get("/v1/preview/frame", params=params) as r:
            return r.status, await r.json()

    status, body = run_with_bridge(tmp_path, test, preview=FakePreview(fail=KeyError("secret internals")))
    assert status == 500 and body["error"]["code"] == "internal"
    assert "secret internals" not in body["error"]["message"]


def test_start_bridge_binds_loopback_only_and_writes_token_and_port(tmp_path, config_dir):
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())

    async def main():
        with pytest.raises(config.ConfigError, match="only binds loopback"):
            await start_bridge(queue, None, host="0.0.0.0")
        bridge = await start_bridge(queue, None)  # no token given: created on first run
        try:
            running = transport.read_bridge_info()
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{bridge.port}/v1/info",
                                       headers={"Authorization": f"Bearer {bridge.token}"}) as r:
                    return bridge, r.status, await r.json(), running
        finally:
            await bridge.close()

    try:
        bridge, status, info, running = asyncio.run(main())
    finally:
        queue.close()
    assert bridge.host == "127.0.0.1" and status == 200 and info["preview"] is False
    token_file = config_dir / "token"
    assert token_file.read_text().strip() == bridge.token
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert running == {"port": bridge.port}
    assert transport.read_bridge_info() is None  # a stopped sidecar leaves no port behind


def test_a_stopping_bridge_leaves_a_newer_sidecars_port_file(tmp_path, config_dir):
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())

    async def main():
        old = await start_bridge(queue, None)
        new = await start_bridge(queue, None)  # another sidecar took over bridge.json meanwhile
        try:
            await old.close()
            return new.port, transport.read_bridge_info()
        finally:
            await new.close()

    try:
        port, left = asyncio.run(main())
    finally:
        queue.close()
    assert left == {"port": port}
    assert transport.read_bridge_info() is None


def test_preview_frames_come_from_preview_sessions(tmp_path, media_clips):
    """The bridge wired to the real PreviewSessions and GPU worker (with an editor that inverts
    colours, so the edit is checkable): the edited frame is the inverse of the source frame."""
    from liveedit.sidecar.api.bridge import SessionPreview
    from liveedit.sidecar.preview import PreviewConfig, PreviewSessions
    from liveedit.sidecar.worker import GpuWorker
    from server_fakes import InvertEditor

    clip = media_clips["pal"]  # 20 frames, 64x48

    async def test(session, bridge, queue):
        params = {"token": TOKEN, "media": str(clip), "instruction": "invert", "seed": "0", "format": "png"}
        images = {}
        for side, frame in [("edit", 5), ("source", 5), ("edit", 14), ("source", 14)]:
            async with session.get("/v1/preview/frame", params={**params, "side": side, "frame": str(frame)}) as r:
                assert r.status == 200, await r.text()
                images[side, frame] = np.asarray(Image.open(io.BytesIO(await r.read())))
        async with session.get("/v1/preview/frame", params={**params, "frame": "99"}) as r:
            past_end = (r.status, await r.json())
        async with session.get("/v1/preview/frame", params={**params, "media": str(tmp_path / "gone.mov"),
                                                            "frame": "1"}) as r:
            missing = (r.status, await r.json())
        return images, past_end, missing

    worker = GpuWorker(models=None, editor_factory=InvertEditor)
    sessions = PreviewSessions(worker, model_key="fake", config=PreviewConfig(chunks_per_segment=2))
    try:
        images, past_end, missing = run_with_bridge(tmp_path, test, preview=SessionPreview(sessions))
    finally:
        sessions.close_all()
        asyncio.run(worker.close(drain=False))
    for frame in (5, 14):
        edited, source = images["edit", frame], images["source", frame]
        assert edited.shape == source.shape == (48, 64, 3)
        assert np.array_equal(edited, 255 - source)
    assert not np.array_equal(images["source", 5], images["source", 14])
    assert past_end[0] == 400 and "outside" in past_end[1]["error"]["message"]
    assert missing[0] == 400 and "does not exist" in missing[1]["error"]["message"]
