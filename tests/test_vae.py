"""StreamingWanVAE against diffusers' whole-clip AutoencoderKLWan (pinned 0.42.1).

Tiny preset, random weights, fp32 on CPU. Tolerance: atol 1e-5 / rtol 1e-4 on
latents and pixels (the streaming path runs the same kernels on the same frame groups;
only the concatenation order differs, so differences are float rounding at most).
"""

from __future__ import annotations

import re

import pytest
import torch
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

from liveedit.errors import CheckpointError, InputError
from liveedit.engine.config import VAE_PRESETS, WAN_LATENTS_MEAN, WAN_LATENTS_STD
from liveedit.engine.loading import Weights, load_vae
from liveedit.engine.vae import StreamingWanVAE, build_vae

ATOL, RTOL = 1e-5, 1e-4
H, W = 32, 48


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    model = build_vae(VAE_PRESETS["tiny"])
    # Random init saturates the decoder; shrink conv_out so decoded pixels stay inside
    # (0, 1) and the clamp does not hide differences.
    with torch.no_grad():
        model.decoder.conv_out.weight.mul_(0.05)
        model.decoder.conv_out.bias.fill_(0.5)
    return model


def normalise(mu):
    mean = torch.tensor(WAN_LATENTS_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN_LATENTS_STD).view(1, -1, 1, 1, 1)
    return (mu - mean) / std


def denormalise(z):
    mean = torch.tensor(WAN_LATENTS_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN_LATENTS_STD).view(1, -1, 1, 1, 1)
    return z * std + mean


def whole_clip_latents(vae, frames):
    with torch.no_grad():
        return normalise(vae.encode(frames).latent_dist.mode())


def whole_clip_pixels(vae, latents):
    with torch.no_grad():
        return vae.decode(denormalise(latents)).sample.clamp(0, 1)


def chunks_of(frames):
    """9 frames, then 12 at a time: the editor's chunking."""
    out = [frames[:, :, :9]] if frames.shape[2] >= 9 else [frames]
    t = out[0].shape[2]
    while t < frames.shape[2]:
        out.append(frames[:, :, t : t + 12])
        t += 12
    return out


@pytest.mark.parametrize("num_frames", [1, 9, 21])
def test_streaming_encode_equals_whole_clip(vae, num_frames):
    torch.manual_seed(num_frames)
    frames = torch.rand(1, 3, num_frames, H, W)
    expected = whole_clip_latents(vae, frames)

    stream = StreamingWanVAE(vae)
    got = torch.cat([stream.encode(c) for c in chunks_of(frames)], dim=2)

    assert got.shape == (1, 16, 1 + (num_frames - 1) // 4, H // 8, W // 8)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("num_frames", [1, 9, 21])
def test_streaming_decode_equals_whole_clip(vae, num_frames):
    torch.manual_seed(100 + num_frames)
    latents = torch.randn(1, 16, 1 + (num_frames - 1) // 4, H // 8, W // 8)
    expected = whole_clip_pixels(vae, latents)
    assert 0.05 < ((expected > 0) & (expected < 1)).float().mean()  # not all clamped

    stream = StreamingWanVAE(vae)
    # 3 latents (9 frames) first, then 3 latents (12 frames) per chunk.
    parts = [stream.decode(latents[:, :, i : i + 3]) for i in range(0, latents.shape[2], 3)]
    assert [p.shape[2] for p in parts] == ([min(num_frames, 9)] + [12] * ((num_frames - 9) // 12))
    got = torch.cat(parts, dim=2)

    assert got.shape == (1, 3, num_frames, H, W)
    assert got.min() >= 0 and got.max() <= 1
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def test_encoder_and_decoder_caches_are_independent(vae):
    """The editor encodes chunk k+1 before it decodes chunk k; neither may disturb the other."""
    torch.manual_seed(7)
    frames = torch.rand(1, 3, 21, H, W)
    stream = StreamingWanVAE(vae)
    first = stream.encode(frames[:, :, :9])
    second = stream.encode(frames[:, :, 9:])
    decoded = torch.cat([stream.decode(first), stream.decode(second)], dim=2)

    latents = whole_clip_latents(vae, frames)
    torch.testing.assert_close(torch.cat([first, second], 2), latents, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(decoded, whole_clip_pixels(vae, latents), atol=ATOL, rtol=RTOL)


def test_reset_starts_a_new_stream(vae):
    torch.manual_seed(8)
    frames = torch.rand(1, 3, 9, H, W)
    stream = StreamingWanVAE(vae)
    a = stream.encode(frames)
    stream.encode(torch.rand(1, 3, 4, H, W))
    stream.reset()
    torch.testing.assert_close(stream.encode(frames), a, atol=0, rtol=0)


def test_batch_of_two_streams_matches_single(vae):
    torch.manual_seed(9)
    frames = torch.rand(2, 3, 9, H, W)
    both = StreamingWanVAE(vae).encode(frames)
    one = StreamingWanVAE(vae).encode(frames[1:])
    torch.testing.assert_close(both[1:], one, atol=ATOL, rtol=RTOL)


def test_frame_counts_are_checked(vae):
    stream = StreamingWanVAE(vae)
    with pytest.raises(InputError, match="1 \\+ 4k"):
        stream.encode(torch.rand(1, 3, 8, H, W))
    stream.encode(torch.rand(1, 3, 5, H, W))
    with pytest.raises(InputError, match="4k frames"):
        stream.encode(torch.rand(1, 3, 5, H, W))
    with pytest.raises(InputError, match="multiple of 8"):
        StreamingWanVAE(vae).encode(torch.rand(1, 3, 1, 30, W))
    with pytest.raises(InputError, match="float"):
        StreamingWanVAE(vae).encode(torch.zeros(1, 3, 1, H, W, dtype=torch.uint8))
    with pytest.raises(InputError, match="latents"):
        stream.decode(torch.randn(1, 8, 1, 4, 6))


# -- original Wan file names ------------------------------------------------------
_RESIDUAL = {
    "norm1.gamma": "residual.0.gamma",
    "conv1.weight": "residual.2.weight",
    "conv1.bias": "residual.2.bias",
    "norm2.gamma": "residual.3.gamma",
    "conv2.weight": "residual.6.weight",
    "conv2.bias": "residual.6.bias",
    "conv_shortcut.weight": "shortcut.weight",
    "conv_shortcut.bias": "shortcut.bias",
}


def diffusers_vae_to_wan(sd: dict) -> dict:
    """Inverse of diffusers' convert_wan_vae_to_diffusers, for synthesising a
    `Wan2.1_VAE.pth` with the original names (checked by round trip below)."""
    out = {}
    for key, value in sd.items():
        if m := re.fullmatch(r"(post_)?quant_conv\.(\w+)", key):
            new = f"conv{2 if m[1] else 1}.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.conv_in\.(\w+)", key):
            new = f"{m[1]}.conv1.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.norm_out\.gamma", key):
            new = f"{m[1]}.head.0.gamma"
        elif m := re.fullmatch(r"(encoder|decoder)\.conv_out\.(\w+)", key):
            new = f"{m[1]}.head.2.{m[2]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
            new = f"{m[1]}.middle.{0 if m[2] == '0' else 2}.{_RESIDUAL[m[3]]}"
        elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
            new = f"{m[1]}.middle.1.{m[2]}"
        elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.(.+)", key):
            new = f"encoder.downsamples.{m[1]}.{_RESIDUAL.get(m[2], m[2])}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d)\.resnets\.(\d)\.(.+)", key):
            new = f"decoder.upsamples.{4 * int(m[1]) + int(m[2])}.{_RESIDUAL[m[3]]}"
        elif m := re.fullmatch(r"decoder\.up_blocks\.(\d)\.upsamplers\.0\.(.+)", key):
            new = f"decoder.upsamples.{4 * int(m[1]) + 3}.{m[2]}"
        else:
            raise AssertionError(f"no original name for {key}")
        out[new] = value
    return out


def test_inverse_names_round_trip_through_diffusers_converter(vae):
    sd = vae.state_dict()
    original = diffusers_vae_to_wan(sd)
    assert "decoder.upsamples.4.shortcut.weight" in original  # the converter's special case
    assert set(convert_wan_vae_to_diffusers(dict(original))) == set(sd)


def test_original_format_pth_loads_and_matches(vae, tmp_path):
    path = tmp_path / "Wan2.1_VAE.pth"
    torch.save(diffusers_vae_to_wan(vae.state_dict()), path)

    torch.manual_seed(123)  # a different random init, overwritten by the file
    loaded = load_vae(VAE_PRESETS["tiny"], Weights(torch.load(path, map_location="cpu", weights_only=True), str(path)))

    frames = torch.rand(1, 3, 9, H, W)
    a, b = StreamingWanVAE(vae), StreamingWanVAE(loaded)
    la, lb = a.encode(frames), b.encode(frames)
    torch.testing.assert_close(lb, la, atol=0, rtol=0)
    torch.testing.assert_close(b.decode(lb), a.decode(la), atol=0, rtol=0)


def test_wrong_file_names_what_is_wrong(vae):
    original = diffusers_vae_to_wan(vae.state_dict())
    del original["decoder.head.2.weight"]
    original["encoder.conv1.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as info:
        load_vae(VAE_PRESETS["tiny"], Weights(original, "some/Wan2.1_VAE.pth"))
    message = str(info.value)
    assert "some/Wan2.1_VAE.pth" in message
    assert "decoder.conv_out.weight" in message and "encoder.conv_in.weight" in message
    assert "liveedit weights fetch" in message
