"""Detail delivery (engine/detail.py): the edited picture back at the source's size and
precision. Through the real StreamingEditor with an identity stand-in for the model
(tests/identity_editor.py), and on the delivery function itself with synthetic edits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from identity_editor import IdentityEditor, editor_with
from liveedit.engine.detail import SourceDetail, change_mask, deliver
from liveedit.engine.config import DetailConfig
from liveedit.engine.editor import EditorModels
from liveedit.engine.picture import resize
from liveedit.engine.presets import get_preset
from liveedit.errors import InputError

TEN_BIT = 64  # one 10-bit code value in the 16-bit frames the reader gives


@pytest.fixture(scope="module")
def models():
    return EditorModels.random(get_preset("tiny"), seed=0)


def ten_bit(codes: np.ndarray) -> np.ndarray:
    """10-bit code values as the 16-bit RGB the media reader gives (bit replication)."""
    codes = np.asarray(codes, dtype=np.uint16)
    return (codes << 6) | (codes >> 4)


def noisy_frames(n: int, size: tuple[int, int], kind: str, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = size
    if kind == "8bit":
        return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    return [ten_bit(rng.integers(0, 1024, (h, w, 3))) for _ in range(n)]


def edit(models, frames, detail: DetailConfig, edit_fn=None) -> list[np.ndarray]:
    delivery = SourceDetail(detail) if detail.delivers else None
    editor = editor_with(edit_fn)(models, instruction="x", seed=0, delivery=delivery)
    return list(editor.edit(frames))


# -- identity: what the model did not change comes back exactly ----------------------------------


@pytest.mark.parametrize("size,kind", [((1080, 1920), "10bit"), ((37, 101), "10bit"), ((37, 101), "8bit")],
                         ids=["1080p-10bit", "odd-10bit", "odd-8bit"])
def test_an_identity_model_gives_back_the_source_bit_exactly_unless_detail_is_off(models, size, kind):
    frames = noisy_frames(2, size, kind)
    for mode in ("transfer", "masked"):
        out = edit(models, frames, DetailConfig(mode))
        assert len(out) == 2
        for got, want in zip(out, frames):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    off = edit(models, frames, DetailConfig("off"))
    assert off[0].dtype == np.uint8 and off[0].shape == frames[0].shape
    widened = off[0].astype(np.uint32) * (257 if kind == "10bit" else 1)
    assert not np.array_equal(widened, frames[0])  # scaled up from the model picture: not the source


def test_an_identity_model_over_several_chunks_keeps_every_frame_in_order(models):
    """The hook gets each latent's frames with their own model pictures and sources, across
    chunks and the padded tail of the last one."""
    frames = noisy_frames(23, (20, 44), "10bit", seed=3)  # chunks of 9 and 12, a tail of 2
    out = edit(models, frames, DetailConfig("transfer"))
    assert len(out) == 23
    for got, want in zip(out, frames):
        np.testing.assert_array_equal(got, want)


def test_float_frames_come_back_as_float_and_keep_values_above_white(models):
    rng = np.random.default_rng(1)
    frames = [rng.uniform(-0.1, 1.3, (18, 30, 3)).astype(np.float32) for _ in range(2)]
    out = edit(models, frames, DetailConfig("transfer"))
    assert out[0].dtype == np.float32
    for got, want in zip(out, frames):
        np.testing.assert_array_equal(got, want)


# -- a synthetic edit confined to a rectangle ----------------------------------------------------


def _box(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Box filter over (2r+1)^2 pixels of [N, C, H, W] (reflect padding)."""
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="reflect"), k, stride=1)


def _nchw(frames: torch.Tensor) -> torch.Tensor:
    return frames.permute(0, 3, 1, 2).to(torch.float64)


def test_masked_keeps_the_source_outside_a_rectangle_edit_and_its_detail_inside():
    """A 10-bit textured source, 5x the model picture's size. The synthetic edit is a
    low-frequency colour change inside a rectangle (a constant per channel plus a linear
    ramp), and noise below the threshold everywhere else (what a VAE round trip adds)."""
    torch.manual_seed(0)
    scale, h, w = 5, 54, 96
    H, W = h * scale, w * scale
    y, x = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    smooth = 300 + 250 * (x / W) + 100 * torch.sin(y / 40.0)  # 10-bit codes, room for the edit
    texture = torch.randint(-40, 41, (1, H, W, 3))
    codes = (smooth[None, :, :, None] + texture).round().clamp(0, 1023).to(torch.int32)
    source = torch.from_numpy(ten_bit(codes.numpy()))
    seen = resize(_nchw(source).float() / 65535.0, (h, w))  # the model's view of it

    top, bottom, left, right = 14, 38, 30, 70  # the rectangle, in model pixels
    inside = torch.zeros(1, 1, h, w, dtype=torch.bool)
    inside[..., top:bottom, left:right] = True
    ramp = (torch.arange(w) - left).clamp(min=0) / w * 0.1
    change = torch.tensor([0.2, -0.15, 0.1]).view(1, 3, 1, 1) + ramp.view(1, 1, 1, w)
    noise = (torch.rand(1, 3, h, w) * 2 - 1) * 0.02  # |noise| < threshold 0.05
    edited = torch.where(inside, seen + change, seen + noise)

    softness = 4
    out, mask = deliver(source, edited, seen, DetailConfig("masked", threshold=0.05, softness=softness),
                        with_mask=True)
    assert out.dtype == torch.uint16 and out.shape == source.shape

    # Outside: every pixel further than the mask's reach (softness, +1 for the 3x3 average,
    # +1 for bilinear upscaling; in source pixels) is the source, bit for bit.
    reach = (softness + 2) * scale + 1
    sy, sx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    dy = torch.maximum(top * scale - sy, sy - (bottom * scale - 1)).clamp(min=0)
    dx = torch.maximum(left * scale - sx, sx - (right * scale - 1)).clamp(min=0)
    far = torch.maximum(dy, dx) > reach
    assert far.float().mean() > 0.4  # the test looks at most of the picture
    assert torch.equal(out[0][far], source[0][far])
    assert torch.all(mask[0][far] == 0)
    # ... which transfer, applying the noise too, does not.
    transferred, _ = deliver(source, edited, seen, DetailConfig("transfer"))
    assert not torch.equal(transferred[0][far], source[0][far])

    # Inside (2 model pixels in from the edge, past the bilinear blend): the mask is full,
    # the low frequencies follow the edit, the high-frequency band is the source's.
    core = torch.zeros(H, W, dtype=torch.bool)
    core[(top + 2) * scale : (bottom - 2) * scale, (left + 2) * scale : (right - 2) * scale] = True
    assert torch.all(mask[0][core] == 1)
    out_f, src_f = _nchw(out), _nchw(source)
    low_out, low_edit = _box(out_f, 7), _box(resize(edited, (H, W)).to(torch.float64) * 65535, 7)
    low_src = _box(src_f, 7)
    core4 = core[None, None].expand_as(out_f)
    follow = (low_out - low_edit)[core4].abs().mean() / TEN_BIT
    moved = (low_out - low_src)[core4].abs().mean() / TEN_BIT
    assert moved > 100 and follow < 2, (moved, follow)  # ~150 codes of edit, followed within 2
    high_out, high_src = out_f - _box(out_f, 1), src_f - _box(src_f, 1)
    assert (high_out - high_src)[core4].abs().max() <= TEN_BIT  # within 1 code value


def test_change_mask_ignores_changes_below_the_threshold_and_reaches_one_at_twice_it():
    delta = torch.zeros(1, 3, 20, 20)
    delta[:, 1] = 0.0499  # within the threshold: no edit
    assert torch.all(change_mask(delta, 0.05, 0) == 0)
    delta[:, 1] = 0.1
    assert torch.all(change_mask(delta, 0.05, 0) == 1)
    delta[:, 1] = 0.075
    assert torch.allclose(change_mask(delta, 0.05, 0), torch.full((1, 1, 20, 20), 0.5))
    spot = torch.zeros(1, 3, 41, 41)
    spot[:, 0, 20, 20] = 1.0  # one pixel: its 3x3 mean is 1/9 (above twice 0.05)
    for softness in (0, 3, 8):
        mask = change_mask(spot, 0.05, softness)[0, 0]
        reach = torch.nonzero(mask).sub(20).abs().max().item()
        assert reach == softness + 1  # + 1: the 3x3 average
        assert mask[20, 20] == 1


def test_a_ten_bit_ramp_keeps_all_its_code_values_outside_the_edit(models):
    """All 1024 codes of a 10-bit ramp survive outside an edited band of rows, through the
    editor (model input at 8 bits, identity model plus a rectangle edit); "off" has 8-bit steps."""
    h, w = 512, 1024
    codes = np.broadcast_to(np.arange(w)[None, :, None], (h, w, 3)).copy()
    codes[..., 1] = 1023 - codes[..., 1]
    frame = ten_bit(codes)

    def band(x):  # model pictures [B, 3, T, 64, 112]: brighten rows 4..19 of the source's part
        out = x.clone()
        out[..., 8:24, :] = (out[..., 8:24, :] + 0.2).clamp(0, 1)
        return out

    outside = slice(260, None)  # source rows well below the band (rows ~0..185 with the mask's reach)
    for mode in ("transfer", "masked"):
        (out,) = edit(models, [frame], DetailConfig(mode, softness=2), band)[:1]
        np.testing.assert_array_equal(out[outside], frame[outside])
        for channel in range(3):
            assert len(np.unique(out[outside][..., channel] >> 6)) == 1024
        assert not np.array_equal(out[:150], frame[:150])  # the band was edited
    (off,) = edit(models, [frame], DetailConfig("off"), band)
    assert len(np.unique(off[outside][..., 0])) <= 256


# -- the hook and the settings --------------------------------------------------------------------


def test_the_hook_keeps_change_masks_at_the_source_size_when_asked():
    source = torch.full((2, 30, 40, 3), 1000, dtype=torch.uint16)
    seen = torch.full((2, 3, 6, 8), 0.3)
    edited = seen.clone()
    edited[:, :, :2, :2] += 0.3
    hook = SourceDetail(DetailConfig("masked", softness=0), keep_masks=True)
    hook(edited, seen, source)
    masks = hook.take_masks()
    assert len(masks) == 2 and masks[0].shape == (30, 40) and masks[0].dtype == np.uint8
    assert masks[0][0, 0] == 255 and masks[0][-1, -1] == 0
    assert hook.take_masks() == []


def test_detail_config_checks_its_values_and_says_what_decides_pixels():
    assert DetailConfig().mode == "transfer"
    assert DetailConfig("transfer", threshold=0.2).pixel_settings() == {"mode": "transfer"}
    assert DetailConfig("masked", 0.1, 4).pixel_settings() == {"mode": "masked", "threshold": 0.1, "softness": 4}
    assert DetailConfig.from_dict({"mode": "masked", "softness": 2}) == DetailConfig("masked", softness=2)
    assert DetailConfig.from_dict(None) == DetailConfig()
    for bad, words in (({"mode": "sharp"}, "not one of"), ({"threshold": 0}, "above 0"),
                       ({"threshold": True}, "threshold"), ({"softness": 1.5}, "whole number"),
                       ({"softness": 65}, "0 to 64"), ({"gain": 1}, "unknown fields")):
        with pytest.raises(InputError, match=words):
            DetailConfig.from_dict(bad)
    with pytest.raises(InputError, match="nothing to deliver"):
        deliver(torch.zeros(1, 4, 4, 3), torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 2), DetailConfig("off"))
