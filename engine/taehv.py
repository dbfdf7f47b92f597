"""Tiny VAE for previews: the TAEHV architecture with the taew2_1 (Wan 2.1) layout.

TAEHV (madebyollin/taehv, MIT) is a ~11 M parameter stand-in for the Wan VAE: frame-wise
2-D convolutions whose `MemBlock`s also see the previous frame's features, `TPool`
(fuse 2 frames into 1, encoder) and `TGrow` (split 1 frame into 2, decoder). This is our
own implementation of that architecture. Module indices follow the released
`taew2_1.pth` (`encoder.N...`, `decoder.N...`), so a user-supplied file loads strictly.

Three pixel spaces are involved; keep them apart:

- **engine pixels** p in [0, 1]: what the editor passes to every VAE.
- **LiveEdit's latent space**: the Wan VAE applied to p *as if p were a [-1, 1] signal*
  (spec liveedit-model.md §1), then normalised with the 16 mean/std values.
- **TAEHV pixels** q in [0, 1]: TAEHV was distilled so that TAEHV_enc(q) approximates the
  normalised Wan latent of the [-1, 1] signal w = 2q - 1, and TAEHV_dec inverts that.

To land in LiveEdit's latent space we need w = p, hence (spec §5):

    encode:  z = TAEHV_enc(q)       with q = (p + 1) / 2        (q lies in [0.5, 1])
    decode:  p = clamp(2 * TAEHV_dec(z) - 1, 0, 1)

The final clamp to [0, 1] is LiveEdit's decode clamp (Wan output clamped to [-1, 1], then
to [0, 1]).

Time alignment: TAEHV's encoder turns every 4 frames into 1 latent and its decoder turns
1 latent into 4 frames, of which the stream's first 3 are dropped, so latent i decodes to
frames 4i-3..4i: Wan's causal layout (1 frame, then 4 per latent). For the encoder to use
the same frames for latent i, `StreamingTAEHV` starts a stream with 3 extra copies of its
first frame. Then a first chunk of 1 + 4k frames gives 1 + k latents at once and later
chunks of 4k frames give k latents, with no look-ahead. (The reference `encode_video` pads
the clip's end instead, which cannot stream 9-frame chunks; expect small differences
against it.)
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from liveedit.engine.config import TAEHVConfig
from liveedit.errors import InputError


def _conv(n_in: int, n_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    """Soft clamp of latents to (-3, 3) before decoding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    """Residual block over [current frame, previous frame's input to this block]."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(
            _conv(n_in * 2, n_out), nn.ReLU(), _conv(n_out, n_out), nn.ReLU(), _conv(n_out, n_out)
        )
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(torch.cat([x, past], 1)) + self.skip(x))


class TPool(nn.Module):
    """`stride` consecutive frames [N*T, C, H, W] -> one frame, by a 1x1 conv over channels."""

    def __init__(self, n_f: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f * stride, n_f, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        return self.conv(x.reshape(-1, self.stride * c, h, w))


class TGrow(nn.Module):
    """One frame -> `stride` consecutive frames, by a 1x1 conv to stride*C channels."""

    def __init__(self, n_f: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n_f, n_f * stride, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, c, h, w = x.shape
        return self.conv(x).reshape(-1, c, h, w)


class TAEHV(nn.Module):
    """Encoder and decoder as `nn.Sequential`s with the released indices.

    `encode_clip` / `decode_clip` process a whole clip at once in TAEHV's own convention
    (NTCHW, TAEHV pixels in [0, 1], the clip's length a multiple of 4); `StreamingTAEHV`
    is what the editor uses.
    """

    def __init__(self, config: TAEHVConfig = TAEHVConfig()):
        super().__init__()
        self.config = config
        e, (d0, d1, d2, d3) = config.encoder_width, config.decoder_widths
        down = [2 if flag else 1 for flag in config.encoder_time_downscale]
        up = [2 if flag else 1 for flag in config.decoder_time_upscale]
        space = [2 if flag else 1 for flag in config.decoder_space_upscale]
        self.encoder = nn.Sequential(
            _conv(3, e), nn.ReLU(),
            TPool(e, down[0]), _conv(e, e, stride=2, bias=False), MemBlock(e, e), MemBlock(e, e), MemBlock(e, e),
            TPool(e, down[1]), _conv(e, e, stride=2, bias=False), MemBlock(e, e), MemBlock(e, e), MemBlock(e, e),
            TPool(e, down[2]), _conv(e, e, stride=2, bias=False), MemBlock(e, e), MemBlock(e, e), MemBlock(e, e),
            _conv(e, config.latent_channels),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            Clamp(), _conv(config.latent_channels, d0), nn.ReLU(),
            MemBlock(d0, d0), MemBlock(d0, d0), MemBlock(d0, d0),
            nn.Upsample(scale_factor=space[0]), TGrow(d0, up[0]), _conv(d0, d1, bias=False),
            MemBlock(d1, d1), MemBlock(d1, d1), MemBlock(d1, d1),
            nn.Upsample(scale_factor=space[1]), TGrow(d1, up[1]), _conv(d1, d2, bias=False),
            MemBlock(d2, d2), MemBlock(d2, d2), MemBlock(d2, d2),
            nn.Upsample(scale_factor=space[2]), TGrow(d2, up[2]), _conv(d2, d3, bias=False),
            nn.ReLU(), _conv(d3, 3),
        )  # fmt: skip
        self.t_downscale = down[0] * down[1] * down[2]
        self.t_upscale = up[0] * up[1] * up[2]
        self.space_scale = space[0] * space[1] * space[2]
        self.frames_to_trim = self.t_upscale - 1

    @torch.no_grad()
    def encode_clip(self, q: torch.Tensor) -> torch.Tensor:
        """TAEHV pixels [N, T, 3, H, W] (T a multiple of t_downscale) -> latents [N, T/4, C, h, w]."""
        if q.shape[1] % self.t_downscale:
            raise InputError(f"encode_clip needs a multiple of {self.t_downscale} frames, got {q.shape[1]}")
        return _run_whole_clip(self.encoder, q)

    @torch.no_grad()
    def decode_clip(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [N, t, C, h, w] -> TAEHV pixels [N, 4t - 3, 3, H, W] in [0, 1]."""
        return _run_whole_clip(self.decoder, z)[:, self.frames_to_trim :].clamp(0, 1)


def _frames(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, *x.shape[2:])  # [N, T, C, H, W] -> [N*T, C, H, W]


def _run_whole_clip(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """All frames at once, layer by layer; a MemBlock's 'previous frame' is the clip's
    own previous frame, zeros for the first."""
    n = x.shape[0]
    for layer in layers:
        t = x.shape[1]
        flat = _frames(x)
        if isinstance(layer, MemBlock):
            past = F.pad(x, (0, 0, 0, 0, 0, 0, 1, 0))[:, :t]
            flat = layer(flat, _frames(past))
        else:
            flat = layer(flat)
        x = flat.reshape(n, -1, *flat.shape[1:])
    return x


class _LayerState:
    """Per-layer memory of one stream through one `nn.Sequential`: the last frame seen
    by each MemBlock, and the frames a TPool holds until it has `stride` of them."""

    def __init__(self, layers: nn.Sequential):
        self.layers = layers
        self.memory: list[torch.Tensor | None] = [None] * len(layers)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        for i, layer in enumerate(self.layers):
            if isinstance(layer, MemBlock):
                previous = self.memory[i] if self.memory[i] is not None else torch.zeros_like(x[:, :1])
                past = torch.cat([previous, x[:, :-1]], 1)
                self.memory[i] = x[:, -1:].clone()
                flat = layer(_frames(x), _frames(past))
            elif isinstance(layer, TPool):
                if self.memory[i] is not None:
                    x = torch.cat([self.memory[i], x], 1)
                usable = x.shape[1] // layer.stride * layer.stride
                self.memory[i] = x[:, usable:].clone() if usable < x.shape[1] else None
                x = x[:, :usable]
                if usable == 0:
                    return x  # nothing to pass on until more frames arrive
                flat = layer(_frames(x))
            else:
                flat = layer(_frames(x))
            x = flat.reshape(n, -1, *flat.shape[1:])
        return x


class StreamingTAEHV:
    """One stream over a shared `TAEHV`, with the same interface and frame counts as
    `StreamingWanVAE`: engine pixels [B, 3, T, H, W] in [0, 1] <-> LiveEdit latents
    [B, C, t, H/8, W/8]. See the module docstring for the range and time conventions."""

    def __init__(self, taehv: TAEHV):
        self.taehv = taehv
        self.reset()

    def reset(self) -> None:
        self._encoder = _LayerState(self.taehv.encoder)
        self._decoder = _LayerState(self.taehv.decoder)
        self.frames_encoded = 0
        self.latents_decoded = 0

    @torch.no_grad()
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        self._check_frames(frames)
        param = next(self.taehv.parameters())
        q = (frames.to(device=param.device, dtype=param.dtype) + 1) / 2  # engine -> TAEHV pixels
        q = q.permute(0, 2, 1, 3, 4)  # [B, 3, T, H, W] -> [B, T, 3, H, W]
        if self.frames_encoded == 0:
            # Start the stream with extra copies of frame 0 so latent i sees frames 4i-3..4i.
            q = torch.cat([q[:, :1].expand(-1, self.taehv.t_downscale - 1, -1, -1, -1), q], 1)
        self.frames_encoded += frames.shape[2]
        return self._encoder.run(q).permute(0, 2, 1, 3, 4)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        channels = self.taehv.config.latent_channels
        if latents.ndim != 5 or latents.shape[1] != channels or latents.shape[2] < 1:
            raise InputError(f"decode expects latents [B, {channels}, t>=1, h, w], got {tuple(latents.shape)}")
        param = next(self.taehv.parameters())
        z = latents.to(device=param.device, dtype=param.dtype).permute(0, 2, 1, 3, 4)
        q = self._decoder.run(z)
        if self.latents_decoded == 0:
            q = q[:, self.taehv.frames_to_trim :]  # warm-up frames before the stream's frame 0
        self.latents_decoded += latents.shape[2]
        # TAEHV pixels -> engine pixels, with LiveEdit's clamp to [0, 1].
        return (2 * q.clamp(0, 1) - 1).clamp_(0, 1).permute(0, 2, 1, 3, 4)

    def _check_frames(self, frames: torch.Tensor) -> None:
        stride = self.taehv.t_downscale
        if not isinstance(frames, torch.Tensor) or frames.ndim != 5 or frames.shape[1] != 3:
            raise InputError(
                f"encode expects float frames [B, 3, T, H, W] in [0, 1], got {getattr(frames, 'shape', frames)!r}"
            )
        if not frames.is_floating_point():
            raise InputError(f"encode expects float frames in [0, 1], got dtype {frames.dtype}; divide uint8 by 255")
        t, h, w = frames.shape[2:]
        if h % 8 or w % 8:
            raise InputError(f"frame size {w}x{h} is not a multiple of 8; resize or pad the frames")
        if self.frames_encoded == 0:
            if t < 1 or (t - 1) % stride:
                raise InputError(f"the first chunk of a stream must have 1 + {stride}k frames, got {t}")
        elif t < stride or t % stride:
            raise InputError(f"after the first chunk a stream takes {stride}k frames, got {t}")
