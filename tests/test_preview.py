"""Preview sessions (domain logic, no gRPC): seek windows, caching, latest seek wins, errors."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from liveedit.errors import InputError
from liveedit.sidecar.preview import (FrameOutOfRangeError, MediaError, MediaNotFoundError, PreviewConfig,
                                      PreviewSessions, SupersededError, UnknownSessionError, chunk_bounds)
from liveedit.sidecar.worker import GpuWorker, Priority
from preview_media import source_frame, write_clip
from server_fakes import InvertEditor, expected_edit


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("media") / "clip.mov", 60)


@pytest.fixture
def previews():
    worker = GpuWorker(models=None, editor_factory=InvertEditor)
    sessions = PreviewSessions(worker, model_key="fake", config=PreviewConfig(chunks_per_segment=3))
    yield sessions
    sessions.close_all()
    asyncio.run(worker.close(drain=False))


async def collect(previews, session_id, frame):
    return [out async for out in previews.seek(session_id, frame)]


def test_chunk_bounds_follow_the_9_then_12_pattern():
    assert chunk_bounds(0, 33, 0) == (0, 9)
    assert chunk_bounds(0, 33, 8) == (0, 9)
    assert chunk_bounds(0, 33, 9) == (9, 21)
    assert chunk_bounds(33, 33, 32) == (54, 66)


def test_seek_returns_the_edited_chunk_holding_the_frame(previews, clip):
    session = previews.open(clip, "invert", seed=2)
    assert (session.region_count, session.width, session.height) == (60, 32, 24)
    before = InvertEditor.chunks_run
    out = asyncio.run(collect(previews, session.id, 14))
    # segment 0 is frames 0..32 (chunks 0..8, 9..20, 21..32): frame 14 is in the second chunk,
    # edited after the first one (causal history).
    assert [o.frame for o in out] == list(range(9, 21))
    assert InvertEditor.chunks_run - before == 2
    for o in out:
        assert not o.cached and o.seek_frame == 14
        np.testing.assert_array_equal(o.pixels, expected_edit(source_frame(o.frame), 2))


def test_cached_chunks_are_not_edited_again_and_forward_seeks_continue_the_stream(previews, clip):
    session = previews.open(clip, "invert", seed=0)
    asyncio.run(collect(previews, session.id, 3))
    before = InvertEditor.chunks_run
    again = asyncio.run(collect(previews, session.id, 5))
    assert all(o.cached for o in again) and InvertEditor.chunks_run == before
    forward = asyncio.run(collect(previews, session.id, 14))  # next chunk: continues, 1 chunk
    assert [o.frame for o in forward][0] == 9 and InvertEditor.chunks_run == before + 1
    # another session with the same media, instruction and seed shares the cache
    other = previews.open(clip, "invert", seed=0)
    assert all(o.cached for o in asyncio.run(collect(previews, other.id, 10)))
    # a different seed does not
    third = previews.open(clip, "invert", seed=1)
    assert not any(o.cached for o in asyncio.run(collect(previews, third.id, 10)))


def test_second_segment_starts_its_own_stream_and_region_end_is_a_partial_chunk(previews, clip):
    session = previews.open(clip, "invert", region_first=10, region_count=40)  # frames 10..49
    out = asyncio.run(collect(previews, session.id, 49))
    # segments of 33 from frame 10: the second is 43..49, a 7-frame partial first chunk
    assert [o.frame for o in out] == list(range(43, 50))
    np.testing.assert_array_equal(out[-1].pixels, expected_edit(source_frame(49), 0))


def test_ten_rapid_seeks_deliver_only_the_last_ones_frames(previews, clip):
    session = previews.open(clip, "invert")
    gate = threading.Event()
    previews.worker.submit(lambda m: gate.wait(5), priority=Priority.CONTROL)  # GPU busy

    async def main():
        async def one(frame):
            try:
                return await collect(previews, session.id, frame)
            except SupersededError as exc:
                return exc

        tasks = []
        for n in range(10):
            tasks.append(asyncio.ensure_future(one(n * 5)))
            await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*tasks)

    results = asyncio.run(main())
    assert all(isinstance(r, SupersededError) for r in results[:9]), results
    assert [o.frame for o in results[9]] == list(range(42, 54))  # frame 45: segment 33..65, chunk 42..53
    assert {o.seek_frame for o in results[9]} == {45}


def test_bad_requests_get_clear_errors(previews, clip, tmp_path):
    with pytest.raises(MediaNotFoundError, match="does not exist"):
        previews.open(tmp_path / "missing.mov", "invert")
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError, match="junk.mov cannot be opened as media"):
        previews.open(junk, "invert")
    with pytest.raises(InputError, match="must be absolute"):
        previews.open("clip.mov", "invert")
    with pytest.raises(InputError, match="empty"):
        previews.open(clip, "   ")
    with pytest.raises(InputError, match="limit"):
        previews.open(clip, "x" * 100_000)
    with pytest.raises(FrameOutOfRangeError):
        previews.open(clip, "invert", region_first=50, region_count=20)
    session = previews.open(clip, "invert")
    with pytest.raises(FrameOutOfRangeError, match="outside"):
        asyncio.run(collect(previews, session.id, 60))
    with pytest.raises(UnknownSessionError, match="OpenSession"):
        asyncio.run(collect(previews, "nope", 0))
    previews.close(session.id)
    with pytest.raises(UnknownSessionError):
        previews.close(session.id)


def test_source_media_is_never_modified(previews, clip):
    before = clip.read_bytes()
    session = previews.open(clip, "invert")
    asyncio.run(collect(previews, session.id, 0))
    assert clip.read_bytes() == before
