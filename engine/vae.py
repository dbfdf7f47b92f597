"""The Wan2.1 VAE, driven chunk by chunk.

diffusers' `AutoencoderKLWan` already holds every causal layer the Wan VAE needs, but its
public `encode`/`decode` always process a whole clip and clear the causal caches at the
start and end. `StreamingWanVAE` drives the same `encoder`/`decoder` submodules with
caches it owns, so a stream is encoded and decoded one chunk at a time and the result
equals diffusers' whole-clip output. This uses the layers' `feat_cache`/`feat_idx`
arguments and the decoder's `first_chunk` flag, which are internal to diffusers: we pin
diffusers==0.42.1 and tests/test_vae.py checks the equality against that version.

Pixel convention (LiveEdit's quirk, spec liveedit-model.md §1/§5): frames are float
[0, 1] and are fed to the VAE as they are, although the Wan VAE was trained on [-1, 1].
The model therefore lives in the latent space of "[0, 1] video read as [-1, 1] video",
and decoding clamps to [-1, 1] and then to [0, 1]. Do not "fix" this: the released
transformer weights were trained in that space.
"""

from __future__ import annotations

import logging

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

from liveedit.engine.config import VAE_SPATIAL_STRIDE, VAE_TEMPORAL_STRIDE
from liveedit.errors import InputError


class _NoEmptyFloat32Notice(logging.Filter):
    """diffusers warns on every `.to(dtype)` of a model that "should keep modules in float32",
    even when the list is empty, as it is for AutoencoderKLWan; only that empty notice is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


logging.getLogger("diffusers.models.modeling_utils").addFilter(_NoEmptyFloat32Notice())


def build_vae(config: dict) -> AutoencoderKLWan:
    """A randomly initialised `AutoencoderKLWan` of the given preset config, in eval mode."""
    return AutoencoderKLWan(**config).eval()


class StreamingWanVAE:
    """One stream's encode and decode state over a shared `AutoencoderKLWan`.

    - `encode(frames)`: float [B, 3, T, H, W] in [0, 1]. The first call of a stream takes
      1 + 4k frames (k >= 0), later calls 4k frames (k >= 1). Returns normalised mean
      latents [B, 16, t, H/8, W/8] with t = 1 + k for the first call and k after.
    - `decode(latents)`: normalised latents [B, 16, t, h, w]; the stream's first latent
      gives 1 frame, every later latent 4. Returns [B, 3, T', 8h, 8w] in [0, 1].

    The encoder and decoder keep separate causal caches, so decoding chunk k after
    encoding chunk k+1 is fine. The VAE module itself holds no stream state, so several
    streams can share one loaded VAE.
    """

    def __init__(self, vae: AutoencoderKLWan):
        if getattr(vae.config, "is_residual", False) or vae.config.patch_size is not None:
            raise InputError(
                "StreamingWanVAE supports the Wan2.1 VAE layout only (is_residual=False, patch_size=None); "
                "the Wan2.2 VAE is not supported"
            )
        self.vae = vae
        self.z_dim = vae.config.z_dim
        self._mean = torch.tensor(vae.config.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self._std = torch.tensor(vae.config.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        # One cache slot per causal conv, as diffusers' clear_cache sizes them.
        self._encoder_slots = sum(isinstance(m, WanCausalConv3d) for m in vae.encoder.modules())
        self._decoder_slots = sum(isinstance(m, WanCausalConv3d) for m in vae.decoder.modules())
        self.reset()

    def reset(self) -> None:
        """Start a new stream: both causal caches emptied, frame counting from zero."""
        self._encoder_cache: list = [None] * self._encoder_slots
        self._decoder_cache: list = [None] * self._decoder_slots
        self.frames_encoded = 0
        self.latents_decoded = 0

    @property
    def _param(self) -> torch.Tensor:
        return next(self.vae.parameters())

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        self._check_frames(frames)
        param = self._param
        x = frames.to(device=param.device, dtype=param.dtype)  # [0, 1] fed as-is, see module doc
        # Same grouping as diffusers' whole-clip _encode: the stream's first frame alone,
        # then groups of 4 frames. Each group starts a fresh layer counter over the cache.
        groups = []
        start = 0
        if self.frames_encoded == 0:
            groups.append(x[:, :, :1])
            start = 1
        for t in range(start, x.shape[2], VAE_TEMPORAL_STRIDE):
            groups.append(x[:, :, t : t + VAE_TEMPORAL_STRIDE])
        out = torch.cat(
            [self.vae.encoder(g, feat_cache=self._encoder_cache, feat_idx=[0]) for g in groups], dim=2
        )
        moments = self.vae.quant_conv(out)
        mu = moments[:, : self.z_dim]  # the posterior mean ("argmax" latents), no sampling
        self.frames_encoded += x.shape[2]
        mean, std = self._mean.to(mu.device), self._std.to(mu.device)
        return ((mu.float() - mean) / std).to(param.dtype)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.ndim != 5 or latents.shape[1] != self.z_dim or latents.shape[2] < 1:
            raise InputError(
                f"decode expects latents [B, {self.z_dim}, t>=1, h, w], got shape {tuple(latents.shape)}"
            )
        param = self._param
        mean, std = self._mean.to(param.device), self._std.to(param.device)
        z = (latents.to(param.device).float() * std + mean).to(param.dtype)
        x = self.vae.post_quant_conv(z)  # 1x1x1 conv: per latent, no time state
        frames = []
        for i in range(x.shape[2]):
            frames.append(
                self.vae.decoder(
                    x[:, :, i : i + 1],
                    feat_cache=self._decoder_cache,
                    feat_idx=[0],
                    first_chunk=self.latents_decoded == 0,
                )
            )
            self.latents_decoded += 1
        video = torch.cat(frames, dim=2)
        # LiveEdit clamps to the VAE's [-1, 1] and then (wo_scale) to [0, 1] without the
        # usual *0.5+0.5: together that is a clamp to [0, 1].
        return video.clamp_(-1.0, 1.0).clamp_(0.0, 1.0)

    def _check_frames(self, frames: torch.Tensor) -> None:
        if not isinstance(frames, torch.Tensor) or frames.ndim != 5 or frames.shape[1] != 3:
            raise InputError(
                f"encode expects float frames [B, 3, T, H, W] in [0, 1], got {getattr(frames, 'shape', frames)!r}"
            )
        if not frames.is_floating_point():
            raise InputError(f"encode expects float frames in [0, 1], got dtype {frames.dtype}; divide uint8 by 255")
        t, h, w = frames.shape[2:]
        if h % VAE_SPATIAL_STRIDE or w % VAE_SPATIAL_STRIDE:
            raise InputError(f"frame size {w}x{h} is not a multiple of {VAE_SPATIAL_STRIDE}; resize or pad the frames")
        if self.frames_encoded == 0:
            if t < 1 or (t - 1) % VAE_TEMPORAL_STRIDE:
                raise InputError(
                    f"the first chunk of a stream must have 1 + 4k frames (1, 5, 9, ...), got {t}; "
                    "pad it by repeating the last frame"
                )
        elif t < VAE_TEMPORAL_STRIDE or t % VAE_TEMPORAL_STRIDE:
            raise InputError(
                f"after the first chunk a stream takes 4k frames (4, 8, 12, ...), got {t}; "
                "pad it by repeating the last frame"
            )
