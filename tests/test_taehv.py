"""TAEHV tiny VAE: released parameter names, streaming == whole clip, Wan frame counts,
and LiveEdit's range remapping.

Random weights (tiny widths, and the released widths for the name check), fp32 on CPU.
Tolerance: atol 1e-5 / rtol 1e-4 (same kernels, frames grouped differently).
"""

from __future__ import annotations

import pytest
import torch

from liveedit.errors import CheckpointError, InputError
from liveedit.engine.config import TAEHV_PRESETS, VAE_PRESETS
from liveedit.engine.loading import Weights, load_tiny_vae
from liveedit.engine.taehv import TAEHV, StreamingTAEHV
from liveedit.engine.vae import StreamingWanVAE, build_vae

ATOL, RTOL = 1e-5, 1e-4
H, W = 32, 48


@pytest.fixture(scope="module")
def taehv():
    torch.manual_seed(0)
    model = TAEHV(TAEHV_PRESETS["tiny"]).eval()
    with torch.no_grad():  # keep decoded pixels off the clamps so comparisons mean something
        model.decoder[-1].weight.mul_(0.1)
        model.decoder[-1].bias.fill_(0.75)
    return model


def _memblock(prefix):
    return {f"{prefix}.conv.{j}.{p}" for j in (0, 2, 4) for p in ("weight", "bias")}


def released_taew2_1_names() -> set[str]:
    """taew2_1.pth's keys: nn.Sequential indices of the reference TAEHV layout."""
    names = {"encoder.0.weight", "encoder.0.bias", "encoder.17.weight", "encoder.17.bias"}
    for pool, conv, blocks in [(2, 3, (4, 5, 6)), (7, 8, (9, 10, 11)), (12, 13, (14, 15, 16))]:
        names |= {f"encoder.{pool}.conv.weight", f"encoder.{conv}.weight"}
        for b in blocks:
            names |= _memblock(f"encoder.{b}")
    names |= {"decoder.1.weight", "decoder.1.bias", "decoder.22.weight", "decoder.22.bias"}
    for blocks, grow, conv in [((3, 4, 5), 7, 8), ((9, 10, 11), 13, 14), ((15, 16, 17), 19, 20)]:
        names |= {f"decoder.{grow}.conv.weight", f"decoder.{conv}.weight"}
        for b in blocks:
            names |= _memblock(f"decoder.{b}")
    return names


def test_parameter_names_and_shapes_are_the_released_ones():
    sd = TAEHV(TAEHV_PRESETS["taew2_1"]).state_dict()
    assert set(sd) == released_taew2_1_names()
    assert sd["encoder.0.weight"].shape == (64, 3, 3, 3)
    assert sd["encoder.2.conv.weight"].shape == (64, 128, 1, 1)  # TPool stride 2
    assert sd["encoder.12.conv.weight"].shape == (64, 64, 1, 1)  # stride 1: no time pooling
    assert sd["encoder.17.weight"].shape == (16, 64, 3, 3)
    assert sd["decoder.1.weight"].shape == (256, 16, 3, 3)
    assert sd["decoder.7.conv.weight"].shape == (256, 256, 1, 1)
    assert sd["decoder.13.conv.weight"].shape == (256, 128, 1, 1)  # TGrow stride 2
    assert sd["decoder.22.weight"].shape == (3, 64, 3, 3)
    assert 10e6 < sum(v.numel() for v in sd.values()) < 12e6  # ~11.3 M, as counted in the spec


def whole_clip_encode(taehv, frames):
    """Reference: the whole clip at once in TAEHV's convention, with the stream start padding."""
    q = ((frames + 1) / 2).permute(0, 2, 1, 3, 4)
    q = torch.cat([q[:, :1]] * (taehv.t_downscale - 1) + [q], 1)
    return taehv.encode_clip(q).permute(0, 2, 1, 3, 4)


def whole_clip_decode(taehv, latents):
    q = taehv.decode_clip(latents.permute(0, 2, 1, 3, 4)).permute(0, 2, 1, 3, 4)
    return (2 * q - 1).clamp(0, 1)


def chunks_of(x, first, later):
    out, t = [x[:, :, :first]], first
    while t < x.shape[2]:
        out.append(x[:, :, t : t + later])
        t += later
    return out


@pytest.mark.parametrize("num_frames", [1, 9, 21])
def test_streaming_encode_equals_whole_clip(taehv, num_frames):
    torch.manual_seed(num_frames)
    frames = torch.rand(1, 3, num_frames, H, W)
    stream = StreamingTAEHV(taehv)
    parts = [stream.encode(c) for c in chunks_of(frames, 9, 12)]
    got = torch.cat(parts, 2)
    assert got.shape == (1, 16, 1 + (num_frames - 1) // 4, H // 8, W // 8)
    torch.testing.assert_close(got, whole_clip_encode(taehv, frames), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("num_latents", [1, 3, 6])
def test_streaming_decode_equals_whole_clip(taehv, num_latents):
    torch.manual_seed(10 + num_latents)
    latents = torch.randn(1, 16, num_latents, H // 8, W // 8)
    stream = StreamingTAEHV(taehv)
    parts = [stream.decode(c) for c in chunks_of(latents, 3, 3)]
    got = torch.cat(parts, 2)
    expected = whole_clip_decode(taehv, latents)
    assert got.shape == (1, 3, 1 + 4 * (num_latents - 1), H, W)
    assert ((expected > 0) & (expected < 1)).float().mean() > 0.5  # not hidden by the clamp
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def test_one_latent_at_a_time_equals_whole_clip(taehv):
    torch.manual_seed(5)
    latents = torch.randn(2, 16, 4, H // 8, W // 8)
    stream = StreamingTAEHV(taehv)
    got = torch.cat([stream.decode(latents[:, :, i : i + 1]) for i in range(4)], 2)
    torch.testing.assert_close(got, whole_clip_decode(taehv, latents), atol=ATOL, rtol=RTOL)


def test_frame_counts_match_the_wan_vae(taehv):
    torch.manual_seed(6)
    frames = torch.rand(1, 3, 21, 16, 16)
    tiny, wan = StreamingTAEHV(taehv), StreamingWanVAE(build_vae(VAE_PRESETS["tiny"]))
    for chunk in chunks_of(frames, 9, 12):
        a, b = tiny.encode(chunk), wan.encode(chunk)
        assert a.shape == b.shape
        assert tiny.decode(a).shape == wan.decode(b).shape == chunk.shape


def test_range_remapping(taehv):
    """Encode sees (p + 1) / 2 of engine pixels p; decode returns 2 * TAEHV_dec - 1 clamped."""
    frames = torch.full((1, 3, 1, H, W), 0.0)
    as_if_half = StreamingTAEHV(taehv).encode(frames)
    direct = taehv.encode_clip(torch.full((1, 4, 3, H, W), 0.5))
    torch.testing.assert_close(as_if_half, direct.permute(0, 2, 1, 3, 4), atol=ATOL, rtol=RTOL)

    latents = torch.randn(1, 16, 1, H // 8, W // 8)
    q = taehv.decode_clip(latents.permute(0, 2, 1, 3, 4))[:, -1]
    p = StreamingTAEHV(taehv).decode(latents)[:, :, -1]
    torch.testing.assert_close(p, (2 * q - 1).clamp(0, 1), atol=ATOL, rtol=RTOL)
    assert p.min() >= 0 and p.max() <= 1


def test_frame_count_errors(taehv):
    stream = StreamingTAEHV(taehv)
    with pytest.raises(InputError, match="1 \\+ 4k"):
        stream.encode(torch.rand(1, 3, 4, H, W))
    stream.encode(torch.rand(1, 3, 9, H, W))
    with pytest.raises(InputError, match="4k"):
        stream.encode(torch.rand(1, 3, 9, H, W))
    with pytest.raises(InputError, match="latents"):
        stream.decode(torch.randn(1, 4, 1, 4, 6))


def test_pth_file_loads_strictly_and_matches(taehv, tmp_path):
    path = tmp_path / "taew2_1.pth"
    torch.save(taehv.state_dict(), path)
    loaded = load_tiny_vae(TAEHV_PRESETS["tiny"], Weights(torch.load(path, weights_only=True), str(path)))
    frames = torch.rand(1, 3, 9, H, W)
    torch.testing.assert_close(StreamingTAEHV(loaded).encode(frames), StreamingTAEHV(taehv).encode(frames))


def test_wider_tgrow_in_file_keeps_last_frame_channels(taehv):
    """A file trained with time upscaling at decoder.7 loads into the released layout
    (stride 1 there) by keeping the last frame's channels, like the reference."""
    sd = dict(taehv.state_dict())
    extra = torch.randn_like(sd["decoder.7.conv.weight"])
    sd["decoder.7.conv.weight"] = torch.cat([extra, sd["decoder.7.conv.weight"]], 0)
    loaded = load_tiny_vae(TAEHV_PRESETS["tiny"], Weights(sd, "x.pth"))
    torch.testing.assert_close(loaded.decoder[7].conv.weight, taehv.decoder[7].conv.weight, atol=0, rtol=0)


def test_wrong_file_is_refused_with_names(taehv):
    sd = dict(taehv.state_dict())
    del sd["decoder.22.bias"]
    with pytest.raises(CheckpointError, match="decoder.22.bias"):
        load_tiny_vae(TAEHV_PRESETS["tiny"], Weights(sd, "x.pth"))
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_tiny_vae(TAEHV_PRESETS["taew2_1"], Weights(taehv.state_dict(), "x.pth"))
