"""Takes (sidecar/takes/): exact, order-independent frames, re-edits from exactly the changed
chunk, the memory and disk caches. A real GpuWorker runs a causal fake editor with the real
chunking (tests/take_helpers.py); the real model runs through the same code in
tests/test_ofx_plugin.py."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from liveedit.errors import InputError
from liveedit.sidecar.takes.pixels import PixelFormat
from liveedit.sidecar.takes import (
    CHUNK_FRAMES,
    FIRST_CHUNK_FRAMES,
    FrameRequest,
    TakeError,
    TakeLimits,
    TakeSettings,
    TakeUnavailableError,
    chain_hashes,
    chunk_of,
    chunk_span,
)
from take_helpers import HostClip, fake_factory, random_frames, reference_edit, render_frame, run_take_service

SETTINGS = TakeSettings("make the fur snowy white", seed=3)


def run_service(tmp_path, test, *, cache=True, limits=None, factory=fake_factory, preview=True):
    """Run `test(service)` on a TakeService over a real GpuWorker."""
    return run_take_service(test, model_key="fake", random_weights=True, model_description="fake editor",
                            preview_available=preview, cache_dir=tmp_path / "takes" if cache else None,
                            limits=limits, editor_factory=factory)


def top_down_rgb(window: np.ndarray) -> np.ndarray:
    return window[::-1, :, :3]


def test_chunk_layout_follows_the_editor():
    assert chunk_of(0) == (0, 0, 8) and chunk_of(8) == (0, 0, 8)
    assert chunk_of(9) == (1, 9, 20) and chunk_of(20) == (1, 9, 20) and chunk_of(21) == (2, 21, 32)
    assert chunk_span(2) == (21, 32)
    from liveedit.engine import editor

    assert (FIRST_CHUNK_FRAMES, CHUNK_FRAMES) == (editor.FIRST_CHUNK_FRAMES, editor.CHUNK_FRAMES) == (9, 12)


def test_chain_hashes_name_every_earlier_frame():
    hashes = [bytes([i]) * 16 for i in range(5)]
    changed = list(hashes)
    changed[3] = b"\xff" * 16
    a, b = chain_hashes(b"k" * 16, hashes), chain_hashes(b"k" * 16, changed)
    assert a[:3] == b[:3] and a[3] != b[3] and a[4] != b[4]
    assert chain_hashes(b"x" * 16, hashes)[0] != a[0]  # another take, other keys


def test_settings_key_covers_every_setting():
    keys = {s.key("m") for s in (SETTINGS, TakeSettings(SETTINGS.instruction, 4), TakeSettings("other", 3),
                                 TakeSettings(SETTINGS.instruction, 3, quality="preview"),
                                 TakeSettings(SETTINGS.instruction, 3, mask_cache=True),
                                 TakeSettings(SETTINGS.instruction, 3, colour="linear"))}
    assert len(keys) == 6 and SETTINGS.key("other model") not in keys


def test_frames_are_the_causal_stream_through_their_chunk_in_any_order(tmp_path):
    """17 frames: a 9-frame chunk and a short last one of 8 (the clip ends). In order,
    shuffled and 6 requests at once give the reference edit bitwise, each frame edited once."""
    sources = random_frames(17)
    clip = HostClip(sources)
    expected = [reference_edit(SETTINGS, sources, i) for i in range(17)]

    async def test(service):
        results = {}
        for name, order in (("in order", list(range(17))), ("shuffled", random.Random(1).sample(range(17), 17))):
            await service.clear()
            before = service.edited_frames
            results[name] = [None] * 17
            for i in order:
                results[name][i] = await render_frame(service, SETTINGS, clip, i)
            assert service.edited_frames - before == 17, name
        await service.clear()
        before = service.edited_frames
        concurrent = await asyncio.gather(*(render_frame(service, SETTINGS, clip, i)
                                            for i in random.Random(2).sample(range(17), 17)))
        assert service.edited_frames - before == 17
        return results, concurrent

    results, concurrent = run_service(tmp_path, test)
    for i in range(17):
        assert np.array_equal(top_down_rgb(results["in order"][i]), expected[i]), i
        assert np.array_equal(results["in order"][i], results["shuffled"][i]), i
    # gather's results follow the shuffled order of the requests
    order = random.Random(2).sample(range(17), 17)
    for got, i in zip(concurrent, order):
        assert np.array_equal(got, results["in order"][i]), i


def test_a_changed_source_frame_re_edits_exactly_from_its_chunk(tmp_path):
    sources = random_frames(33)  # chunks 0..8, 9..20, 21..32
    clip = HostClip(sources)
    changed = list(sources)
    changed[14] = 255 - changed[14]
    changed_clip = HostClip(changed)

    async def test(service):
        first = [await render_frame(service, SETTINGS, clip, i) for i in range(33)]
        edited, replayed = service.edited_frames, service.replayed_frames
        second = [await render_frame(service, SETTINGS, changed_clip, i) for i in range(33)]
        return first, second, service.edited_frames - edited, service.replayed_frames - replayed, service

    first, second, edited, replayed, service = run_service(tmp_path, test)
    assert edited == 33 - 9, "frames 9..32 (the chunks from frame 14's on) are edited again"
    assert replayed == 9, "chunk 0 runs again only to rebuild the stream's state"
    assert service.replay_mismatches == 0
    for i in range(9):
        assert np.array_equal(first[i], second[i]), i
    for i in range(9, 33):
        assert not np.array_equal(first[i], second[i]), i
        assert np.array_equal(top_down_rgb(second[i]), reference_edit(SETTINGS, changed, i)), i


def test_an_instruction_change_is_a_new_take_and_the_old_one_stays(tmp_path):
    sources = random_frames(12)
    clip = HostClip(sources)
    other = TakeSettings("turn it into a watercolour", seed=3)

    async def test(service):
        a = [await render_frame(service, SETTINGS, clip, i) for i in range(12)]
        b = [await render_frame(service, other, clip, i) for i in range(12)]
        edited = service.edited_frames
        again = [await render_frame(service, SETTINGS, clip, i) for i in range(12)]
        return a, b, again, edited, service.edited_frames

    a, b, again, edited, edited_after = run_service(tmp_path, test)
    assert edited == 24 and edited_after == 24, "switching back re-edits nothing"
    assert all(not np.array_equal(x, y) for x, y in zip(a, b))
    assert all(np.array_equal(x, y) for x, y in zip(a, again))
    for i in range(12):
        assert np.array_equal(top_down_rgb(b[i]), reference_edit(other, sources, i))


def test_the_clip_end_makes_a_short_last_chunk_and_a_longer_clip_another_one(tmp_path):
    sources = random_frames(21)
    short, full = HostClip(sources[:15]), HostClip(sources)

    async def test(service):
        s = await render_frame(service, SETTINGS, short, 12)
        f = await render_frame(service, SETTINGS, full, 12)
        head = await render_frame(service, SETTINGS, full, 3)
        return s, f, head, service.edited_frames

    s, f, head, edited = run_service(tmp_path, test)
    assert np.array_equal(top_down_rgb(s), reference_edit(SETTINGS, sources[:15], 12))
    assert np.array_equal(top_down_rgb(f), reference_edit(SETTINGS, sources, 12))
    assert not np.array_equal(s, f)
    assert edited == 9 + 6 + 12, "chunk 0 once, the short chunk 1 and the whole one"
    assert np.array_equal(top_down_rgb(head), reference_edit(SETTINGS, sources, 3))


def test_the_disk_cache_serves_a_new_sidecar_and_stays_under_its_limit(tmp_path):
    sources = random_frames(21, height=16, width=24)
    clip = HostClip(sources)

    async def first(service):
        frames = [await render_frame(service, SETTINGS, clip, i) for i in range(21)]
        await service.store.flush()
        return frames

    async def second(service):
        frames = [await render_frame(service, SETTINGS, clip, i) for i in range(21)]
        return frames, service.edited_frames, service.store.disk_hits

    before = run_service(tmp_path, first)
    after, edited, disk_hits = run_service(tmp_path, second)
    assert edited == 0 and disk_hits == 2, "both chunks come from the disk cache"
    assert all(np.array_equal(a, b) for a, b in zip(before, after))

    chunk_file = 9 * 16 * 24 * 3  # a stored first chunk is its frames' bytes and a little more
    limits = TakeLimits(disk_bytes=int(chunk_file * 1.5))

    async def small(service):
        await service.clear()
        for n in range(3):
            other = HostClip(random_frames(12, height=16, width=24, seed=10 + n))
            await render_frame(service, SETTINGS, other, 0)
        await service.store.flush()
        files = list((tmp_path / "takes").glob("*.npz"))
        return service.store.disk_total, sum(f.stat().st_size for f in files), len(files)

    total, on_disk, files = run_service(tmp_path, small, limits=limits)
    assert total == on_disk <= limits.disk_bytes and files == 1, "the two older chunks were evicted"


def test_memory_is_bounded_and_evicted_chunks_come_back_from_disk(tmp_path):
    sources = random_frames(33, height=16, width=24)
    clip = HostClip(sources)
    limits = TakeLimits(memory_bytes=13 * 16 * 24 * 3)  # about one chunk

    async def test(service):
        first = [await render_frame(service, SETTINGS, clip, i) for i in range(33)]
        await service.store.flush()
        assert service.store.memory.bytes <= limits.memory_bytes + 12 * 16 * 24 * 3
        again = await render_frame(service, SETTINGS, clip, 0)
        return first, again, service.store.disk_hits, service.edited_frames

    first, again, disk_hits, edited = run_service(tmp_path, test, limits=limits)
    assert disk_hits >= 1 and edited == 33
    assert np.array_equal(first[0], again)


def test_alpha_window_and_depths_come_back_as_the_host_sent_them(tmp_path):
    sources = random_frames(9, height=7, width=11)  # odd sizes
    alpha = [np.linspace(0, 1, 77, dtype=np.float32).reshape(7, 11) for _ in range(9)]
    clip = HostClip(sources, PixelFormat("f32", 4), alpha=alpha)

    async def test(service):
        whole = await render_frame(service, SETTINGS, clip, 4)
        window = await render_frame(service, SETTINGS, clip, 4, window=(2, 1, 9, 6))
        beyond = await render_frame(service, SETTINGS, clip, 4, window=(-2, -1, 3, 2))
        return whole, window, beyond

    whole, window, beyond = run_service(tmp_path, test)
    pushed = [top_down_rgb(f) for f in clip.frames]  # float hosts' frames go to the editor as they are
    expected = reference_edit(SETTINGS, pushed, 4)
    assert whole.dtype == np.float32 and whole.shape == (7, 11, 4)
    assert np.array_equal(top_down_rgb(whole), expected)
    assert np.array_equal(whole[..., 3], alpha[4][::-1]), "alpha is the source's, bit for bit"
    assert np.array_equal(window, whole[1:6, 2:9])
    assert beyond.shape == (3, 5, 4)
    assert np.all(beyond[:1] == 0) and np.all(beyond[:, :2] == 0), "outside the frame: transparent black"
    assert np.array_equal(beyond[1:, 2:], whole[:2, :3])


def test_bad_requests_are_refused_with_reasons(tmp_path):
    clip = HostClip(random_frames(9))

    async def test(service):
        errors = []
        for request in (
            FrameRequest(SETTINGS, 5, (clip.hash(0),), clip.fmt, (0, 0, 64, 48)),  # too few hashes
            FrameRequest(SETTINGS, -1, (clip.hash(0),), clip.fmt, (0, 0, 64, 48)),
            FrameRequest(TakeSettings(SETTINGS.instruction, quality="preview"), 0, (clip.hash(0),), clip.fmt,
                         (0, 0, 64, 48)),
        ):
            with pytest.raises((InputError, TakeError)) as info:
                await service.frame(request)
            errors.append(str(info.value))
        return errors

    errors = run_service(tmp_path, test, preview=False)
    assert "hashes of source frames 0..8" in errors[0]
    assert "outside" in errors[1]
    assert "taew2_1.pth" in errors[2]
    with pytest.raises(InputError, match="empty"):
        TakeSettings.from_dict({"instruction": "  "})
    with pytest.raises(InputError, match="quality"):
        TakeSettings.from_dict({"instruction": "x", "quality": "draft"})
    with pytest.raises(InputError, match="unknown take settings"):
        TakeSettings.from_dict({"instruction": "x", "strength": 2})


def test_frames_of_another_size_inside_a_take_are_refused_with_the_frame_named(tmp_path):
    sources = random_frames(9) + random_frames(3, height=24, width=32)
    clip = HostClip(sources[:9])
    odd = HostClip(sources[9:])

    async def test(service):
        await render_frame(service, SETTINGS, clip, 0)
        # a host whose frame 9 onwards has another size: the hashes follow the real frames
        from liveedit.sidecar.takes import FrameReady

        hashes = tuple(clip.hash(i) for i in range(9)) + tuple(odd.hash(i) for i in range(3))
        request = FrameRequest(SETTINGS, 10, hashes, clip.fmt, (0, 0, 32, 24), 2.0)
        for _ in range(20):
            answer = await service.frame(request)
            assert not isinstance(answer, FrameReady)
            if answer.need:
                await service.add_sources(SETTINGS, [(clip if i < 9 else odd).upload(i if i < 9 else i - 9)
                                                     for i in answer.need])

    with pytest.raises(TakeError, match="source frame 9 is 32x24 but the take's earlier frames are 64x48"):
        run_service(tmp_path, test)


def test_a_failing_editor_reports_to_the_waiting_request_and_the_take_recovers(tmp_path):
    clip = HostClip(random_frames(9))
    failures = [RuntimeError("CUDA out of memory. Tried to allocate 6.00 GiB")]

    def factory(settings):
        make = fake_factory(settings)

        def build(models, instruction, seed):
            editor = make(models, instruction, seed)
            if failures:
                failures.pop()
                editor.push = lambda frame: (_ for _ in ()).throw(RuntimeError("CUDA out of memory."))
            return editor

        return build

    async def test(service):
        with pytest.raises(TakeUnavailableError, match="GPU ran out of memory"):
            await render_frame(service, SETTINGS, clip, 0)
        return await render_frame(service, SETTINGS, clip, 0)

    frame = run_service(tmp_path, test, factory=factory)
    assert np.array_equal(top_down_rgb(frame), reference_edit(SETTINGS, random_frames(9), 0))


def test_the_disk_cache_clears_dead_writers_temporaries_and_leaves_live_ones(tmp_path):
    """Another sidecar of the same user may share the cache folder and be writing an entry right
    now: only temporaries of processes that are gone are removed at start-up."""
    import subprocess
    import sys

    from liveedit.sidecar.takes import ChunkStore

    folder = tmp_path / "takes"
    folder.mkdir()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    try:
        live_tmp = folder / f".{'ab' * 16}.{alive.pid}.tmp"
        dead_tmp = folder / f".{'cd' * 16}.{gone.pid}.tmp"
        odd_tmp = folder / ".leftover.tmp"  # no pid: nobody can be writing it
        for path in (live_tmp, dead_tmp, odd_tmp):
            path.write_bytes(b"partial")
        ChunkStore(2**20, folder, 2**20)
        assert sorted(p.name for p in folder.iterdir()) == [live_tmp.name]
    finally:
        alive.kill()
        alive.wait()
