"""Takes deliver the edit at the source's size and precision (issue 17's one place,
sidecar/delivery.py): with an identity stand-in for the model (tests/identity_editor.py: the
real StreamingEditor and delivery hook, a model that hands back the picture it was given) a
take's frames are the host's own values, for 8-bit, 16-bit and float RGBA at an odd size;
with detail "off" they are not. The detail setting is part of the take key, and the chunk
store keeps uint16 and float32 frames, in memory and on disk, at their real sizes."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from identity_editor import models, stand_in  # noqa: F401 (fixtures the tests name)
from liveedit.engine.config import DetailConfig
from liveedit.errors import InputError
from liveedit.sidecar.takes import ChunkStore, TakeSettings
from liveedit.sidecar.takes.pixels import PixelFormat
from liveedit.sidecar.takes.store import ChunkResult
from take_helpers import HostClip, render_frame, run_take_service

SETTINGS = TakeSettings("make the fur snowy white", seed=3)
HEIGHT, WIDTH = 23, 37  # odd: the model picture is padded and scaled, the delivery must undo it exactly
FRAMES = 12  # a chunk of 9, then a short last one of 3


def run_takes(models, tmp_path, test, *, detail: DetailConfig, cache: bool = False):
    """`test(service)` on a TakeService over a real GpuWorker with the loaded (stand-in) model and
    the real editor factory, delivering with `detail`."""
    return run_take_service(test, models=models, timeout=300, model_key="tiny", random_weights=True,
                            model_description="identity stand-in", preview_available=False,
                            cache_dir=tmp_path / "takes" if cache else None, detail=detail)


def host_pixels(depth: str, seed: int = 0, count: int = FRAMES) -> list[np.ndarray]:
    """RGBA frames with a real (non-opaque) alpha; float values beyond [0, 1] as a host's
    superwhites and negative values are."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(count):
        if depth == "f32":
            f = rng.uniform(-0.25, 2.5, (HEIGHT, WIDTH, 4)).astype(np.float32)
            f[..., 3] = rng.uniform(0, 1, (HEIGHT, WIDTH))
        else:
            dtype = np.uint8 if depth == "u8" else np.uint16
            f = rng.integers(0, np.iinfo(dtype).max + 1, (HEIGHT, WIDTH, 4), dtype=dtype)
        frames.append(f)
    return frames


async def render_all(service, clip: HostClip, settings: TakeSettings = SETTINGS, fmt=None) -> list[np.ndarray]:
    return [await render_frame(service, settings, clip, i, fmt=fmt) for i in range(len(clip.frames))]


# -- an edit that changes nothing gives the host its own values back -------------------------------


@pytest.mark.parametrize("depth", ["u8", "u16", "f32"])
def test_an_identity_take_gives_back_the_host_values_exactly_unless_detail_is_off(models, stand_in, tmp_path,
                                                                                 depth):
    """Exact, not to a tolerance: float32 values too (source + 0 in float32 is the source)."""
    clip = HostClip.of_pixels(host_pixels(depth))
    for mode in ("transfer", "masked"):
        out = run_takes(models, tmp_path, lambda service: render_all(service, clip), detail=DetailConfig(mode))
        for i, (got, want) in enumerate(zip(out, clip.frames)):
            assert got.dtype == want.dtype and got.shape == (HEIGHT, WIDTH, 4), (mode, i)
            np.testing.assert_array_equal(got, want, err_msg=f"{mode}, frame {i}")

    off = run_takes(models, tmp_path, lambda service: render_all(service, clip), detail=DetailConfig("off"))
    for i, (got, want) in enumerate(zip(off, clip.frames)):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert not np.array_equal(got[..., :3], want[..., :3]), f"off, frame {i}: the model picture scaled up"
        np.testing.assert_array_equal(got[..., 3], want[..., 3])  # alpha is the source's either way


def test_a_16bit_take_asked_as_float_converts_its_stored_frames(models, stand_in, tmp_path):
    """One take, one stored edit (the hashes name the 16-bit uploads); the depth asked for only
    changes the conversion on the way out."""
    clip = HostClip.of_pixels(host_pixels("u16", seed=1, count=9))

    async def test(service):
        codes = await render_all(service, clip)
        edited = service.edited_frames
        floats = await render_all(service, clip, fmt=PixelFormat("f32", 4))
        return codes, floats, edited, service.edited_frames

    codes, floats, edited, edited_after = run_takes(models, tmp_path, test, detail=DetailConfig())
    assert edited == edited_after == 9, "asking at another depth edits nothing again"
    for got, want in zip(floats, clip.frames):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want / np.float32(65535))


def test_scene_linear_and_premultiplied_takes_come_back_on_the_host_values(models, stand_in, tmp_path):
    """Scene-linear float goes through the sRGB curve and back (float64 maths, float32 frames:
    equal to within a few float32 ulps, rtol 5e-7); premultiplied 16-bit RGBA is divided by alpha
    and multiplied back in float32 and lands on the very same codes."""
    linear = HostClip.of_pixels(host_pixels("f32", seed=2, count=9))
    rng = np.random.default_rng(3)
    premultiplied = []
    for f in host_pixels("u16", seed=4, count=9):
        a = f[..., 3].astype(np.float64)
        f[..., :3] = np.round(rng.uniform(0, 1, (HEIGHT, WIDTH, 3)) * a[..., None])
        premultiplied.append(f)
    premult = HostClip.of_pixels(premultiplied, premultiplied=True)
    linear_settings = TakeSettings(SETTINGS.instruction, SETTINGS.seed, colour="linear")

    async def test(service):
        return await render_all(service, linear, linear_settings), await render_all(service, premult)

    lin, pre = run_takes(models, tmp_path, test, detail=DetailConfig())
    for got, want in zip(lin, linear.frames):
        np.testing.assert_allclose(got, want, rtol=5e-7, atol=0)
    for got, want in zip(pre, premult.frames):
        np.testing.assert_array_equal(got, want)


# -- the detail setting is part of the take key -------------------------------------------------------


def test_the_take_key_names_the_detail_setting_and_clients_cannot_set_it():
    keys = {TakeSettings("x", detail=d).key("m") for d in (
        DetailConfig("transfer"), DetailConfig("off"), DetailConfig("masked"), DetailConfig("masked", 0.1),
        DetailConfig("masked", softness=2))}
    assert len(keys) == 5
    # threshold and softness shape only the change mask of "masked"
    assert TakeSettings("x", detail=DetailConfig("transfer", 0.1, 2)).key("m") == TakeSettings("x").key("m")
    with pytest.raises(InputError, match="unknown take settings"):
        TakeSettings.from_dict({"instruction": "x", "detail": {"mode": "off"}})


def test_a_sidecar_with_another_detail_setting_never_serves_the_stored_edit(models, stand_in, tmp_path):
    """The same disk cache, the same take and frames: a sidecar restarted with --detail off edits
    again (and delivers the model picture), and one back on transfer finds its own chunks."""
    clip = HostClip.of_pixels(host_pixels("u16", seed=5, count=9))

    def run(mode):
        async def test(service):
            frames = await render_all(service, clip)
            await service.store.flush()
            return frames, service.edited_frames, service.store.disk_hits

        return run_takes(models, tmp_path, test, detail=DetailConfig(mode), cache=True)

    transfer, edited, disk_hits = run("transfer")
    assert edited == 9 and disk_hits == 0
    off, edited, disk_hits = run("off")
    assert edited == 9 and disk_hits == 0, "the transfer chunk was not served"
    assert all(not np.array_equal(a, b) for a, b in zip(transfer, off))
    again, edited, disk_hits = run("transfer")
    assert edited == 0 and disk_hits == 1
    for got, want in zip(again, clip.frames):
        np.testing.assert_array_equal(got, want)


# -- the chunk store keeps the delivered type --------------------------------------------------------


def test_stored_chunks_keep_dtype_and_values_on_disk_and_count_their_real_bytes(tmp_path):
    rng = np.random.default_rng(6)
    deep = ChunkResult(b"\x01" * 16, [rng.integers(0, 65536, (HEIGHT, WIDTH, 3), dtype=np.uint16) for _ in range(9)],
                       [rng.integers(0, 65536, (HEIGHT, WIDTH), dtype=np.uint16)] + [None] * 8, [True] + [False] * 8)
    floats = ChunkResult(b"\x02" * 16,
                         [rng.uniform(-1, 4, (HEIGHT, WIDTH, 3)).astype(np.float32) for _ in range(12)],
                         [rng.uniform(0, 1, (HEIGHT, WIDTH)).astype(np.float32) for _ in range(12)], [False] * 12)
    pixels = HEIGHT * WIDTH * 3

    async def main():
        store = ChunkStore(2**30, tmp_path / "takes", 2**30)
        store.put(deep)
        store.put(floats)
        assert store.memory.bytes == 9 * pixels * 2 + HEIGHT * WIDTH * 2 + 12 * pixels * 4 + 12 * HEIGHT * WIDTH * 4
        await store.flush()
        files = sorted((tmp_path / "takes").glob("*.npz"))
        assert len(files) == 2 and store.disk_total == sum(f.stat().st_size for f in files)
        restarted = ChunkStore(2**30, tmp_path / "takes", 2**30)
        assert restarted.disk_total == store.disk_total
        return await restarted.lookup(deep.key), await restarted.lookup(floats.key), restarted

    got_deep, got_floats, restarted = asyncio.run(main())
    assert restarted.disk_hits == 2 and restarted.memory.bytes == deep.nbytes + floats.nbytes
    for want, got in ((deep, got_deep), (floats, got_floats)):
        assert got.premultiplied == want.premultiplied
        for a, b in zip(got.frames, want.frames):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        for a, b in zip(got.alphas, want.alphas):
            assert (a is None) == (b is None)
            if a is not None:
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
