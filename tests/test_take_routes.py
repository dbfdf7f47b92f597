"""The bridge's take routes over real HTTP on 127.0.0.1: framing, the token, the body cap of
its own (a float 4K frame fits where the JSON routes stop at 256 KiB), JSON errors, and the
ask / upload / ask-again loop the OpenFX plug-in runs."""

from __future__ import annotations

import asyncio
import json
import struct

import aiohttp
import numpy as np
import pytest

from liveedit.sidecar.takes import pixels as take_pixels
from liveedit.sidecar.api.bridge import start_bridge
from liveedit.sidecar.jobs import RenderQueue
from liveedit.sidecar.takes.pixels import PixelFormat
from liveedit.sidecar.api.takes import FRAMED, MAX_TAKE_BODY_BYTES, framed, split_framed
from liveedit.sidecar.takes import TakeService, TakeSettings
from liveedit.sidecar.worker import GpuWorker
from take_helpers import HostClip, fake_factory, random_frames, reference_edit
from test_jobs import FakeExecutor

TOKEN = "take-token-" + "y" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TAKE = {"instruction": "make it snow", "seed": 7}


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))


def run_bridge(tmp_path, test):
    queue = RenderQueue(tmp_path / "jobs.db", FakeExecutor())

    async def main():
        worker = GpuWorker(None)
        takes = TakeService(worker, model_key="fake", random_weights=True, model_description="fake editor",
                            preview_available=False, cache_dir=tmp_path / "takes", editor_factory=fake_factory)
        bridge = await start_bridge(queue, None, token=TOKEN, takes=takes)
        try:
            async with aiohttp.ClientSession(bridge.url) as session:
                return await asyncio.wait_for(test(session, takes), 60)
        finally:
            await bridge.close()
            await takes.close()
            await worker.close(drain=False)

    try:
        return asyncio.run(main())
    finally:
        queue.close()


def frame_body(clip: HostClip, frame: int, window=None, wait_ms=2000, take=TAKE) -> bytes:
    last = min(8 if frame < 9 else 9 + 12 * ((frame - 9) // 12) + 11, len(clip.frames) - 1)
    return framed({"take": take, "frame": frame, "hashes": [clip.hash(i).hex() for i in range(last + 1)],
                   "format": {"depth": clip.fmt.depth, "channels": clip.fmt.channels},
                   "window": list(window or (0, 0, clip.width, clip.height)), "wait_ms": wait_ms}, [])


def sources_body(clip: HostClip, frames: list[int], take=TAKE) -> bytes:
    items = [{"index": i, "hash": clip.hash(i).hex(), "width": clip.width, "height": clip.height,
              "depth": clip.fmt.depth, "channels": clip.fmt.channels, "premultiplied": False,
              "bytes": len(clip.data(i))} for i in frames]
    return framed({"take": take, "frames": items}, [clip.data(i) for i in frames])


async def http_render(session, clip: HostClip, frame: int, **kw) -> tuple[dict, np.ndarray]:
    for _ in range(50):
        async with session.post("/v1/takes/frame", data=frame_body(clip, frame, **kw),
                                headers={**AUTH, "Content-Type": FRAMED}) as r:
            body = await r.read()
            if r.status == 200:
                assert r.content_type == FRAMED
                meta, payload = split_framed(body)
                return meta, take_pixels.expand_output(meta, bytes(payload))
            assert r.status == 202, body
            answer = json.loads(body)
        if answer["need"]:
            async with session.post("/v1/takes/sources", data=sources_body(clip, answer["need"]),
                                    headers={**AUTH, "Content-Type": FRAMED}) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["stored"] == len(answer["need"])
    raise AssertionError("no frame after 50 rounds")


def test_a_frame_over_http_equals_the_reference_edit_and_counts_show_it(tmp_path):
    sources = random_frames(12, height=10, width=14)
    clip = HostClip(sources, PixelFormat("u16", 4))

    async def test(session, takes):
        async with session.get("/v1/takes/info", headers=AUTH) as r:
            info = await r.json()
        meta, pixels = await http_render(session, clip, 10, window=(3, 2, 11, 9))
        async with session.get("/v1/takes/stats", headers=AUTH) as r:
            stats = await r.json()
        async with session.post("/v1/takes/clear", headers=AUTH) as r:
            cleared = await r.json()
        return info, meta, pixels, stats, cleared

    info, meta, pixels, stats, cleared = run_bridge(tmp_path, test)
    assert info["first_chunk_frames"] == 9 and info["chunk_frames"] == 12 and info["random_weights"] is True
    assert info["qualities"] == ["full"], "no preview VAE loaded: preview quality is not offered"
    assert info["detail"] == {"mode": "transfer"}, "the sidecar's detail setting, the default"
    # 16-bit frames are edited and delivered at 16 bits: raw values, not an 8-bit table
    assert meta["encoding"] == "raw" and meta["frame"] == 10
    assert meta["status"]["frames_ready"] == 12 and meta["status"]["random_weights"] is True
    pushed = [f.astype(np.uint16) * 257 for f in sources]  # what the host sent, top-down
    expected = reference_edit(TakeSettings(**TAKE), pushed, 10)
    assert pixels.dtype == np.uint16 and pixels.shape == (7, 8, 4)
    whole = expected[::-1]  # bottom-up rows
    assert np.array_equal(pixels[..., :3], whole[2:9, 3:11]) and np.all(pixels[..., 3] == 65535)
    assert stats["edited_frames"] == 12 and stats["source_frames"] == 12
    assert cleared["cleared"]["memory_chunks"] == 2


def test_take_routes_need_the_token_and_answer_json_errors(tmp_path):
    clip = HostClip(random_frames(9, height=8, width=8))

    async def test(session, takes):
        out = {}
        async with session.get("/v1/takes/info") as r:
            out["no token"] = (r.status, await r.json())
        async with session.post("/v1/takes/frame", data=frame_body(clip, 0), headers={
                "Authorization": "Bearer wrong", "Content-Type": FRAMED}) as r:
            out["wrong token"] = (r.status, await r.json())
        async with session.post("/v1/takes/frame", data=frame_body(clip, 0, take={"instruction": ""}),
                                headers={**AUTH, "Content-Type": FRAMED}) as r:
            out["empty"] = (r.status, await r.json())
        async with session.post("/v1/takes/frame", data=b"\x05\x00\x00\x00{bad", headers={
                **AUTH, "Content-Type": FRAMED}) as r:
            out["framing"] = (r.status, await r.json())
        async with session.post("/v1/takes/frame", json={"take": TAKE, "frame": 0, "hashes": ["zz"],
                                                         "format": {"depth": "u8", "channels": 4},
                                                         "window": [0, 0, 8, 8]}, headers=AUTH) as r:
            out["hash"] = (r.status, await r.json())
        async with session.post("/v1/takes/sources", data=sources_body(clip, [0])[:-5],
                                headers={**AUTH, "Content-Type": FRAMED}) as r:
            out["short"] = (r.status, await r.json())
        big = sources_body(HostClip(random_frames(1, height=200, width=300), PixelFormat("f32", 4)), [0])
        async with session.post("/v1/takes/sources", data=big, headers={**AUTH, "Content-Type": FRAMED}) as r:
            out["big"] = (r.status, await r.json())
        headers = {**AUTH, "Content-Type": FRAMED, "Content-Length": str(MAX_TAKE_BODY_BYTES + 1)}
        async with session.post("/v1/takes/sources", data=b"x", headers=headers) as r:
            out["too big"] = (r.status, await r.json())
        return out

    out = run_bridge(tmp_path, test)
    assert out["no token"][0] == 401 and out["wrong token"][0] == 401
    assert out["empty"][0] == 400 and "empty" in out["empty"][1]["error"]["message"]
    assert out["framing"][0] == 400 and "JSON header" in out["framing"][1]["error"]["message"]
    assert out["hash"][0] == 400 and "32 hex digits" in out["hash"][1]["error"]["message"]
    assert out["short"][0] == 400 and "runs past the end" in out["short"][1]["error"]["message"]
    assert out["big"] == (200, {"stored": 1}), "a 940 KB float frame is over the JSON cap but fine here"
    assert out["too big"][0] == 413 and "take limit" in out["too big"][1]["error"]["message"]


def test_framing_round_trip_with_an_aligned_payload():
    view = np.arange(12, dtype=np.float32).reshape(3, 4)[::-1, 1:3]  # a non-contiguous view
    body = framed({"a": 1}, [b"xy", view])
    n = struct.unpack_from("<I", body)[0]
    assert (4 + n) % 16 == 0, "the payload starts 16-byte aligned"
    header, payload = split_framed(bytes(body))
    assert header == {"a": 1}
    assert bytes(payload) == b"xy" + np.ascontiguousarray(view).tobytes()
