"""One-pass RMS norm + SiLU for the Wan VAE.

Every WanRMS_norm in the VAE's residual blocks and output heads is followed by a SiLU. In
diffusers' eager code that pair is ~7 passes over the largest activations of the whole
model (96 channels at 480x832x4 frames is 300 MB in bf16): an fp32 copy, the norm's
reduction, a division, a cast, two multiplies, the SiLU. A profile of one 12-frame chunk
on an H100 puts the VAE's elementwise work and copies at ~60% of its GPU time
(docs/benchmarks.md). Here the pair is one read and one write: a Triton kernel on CUDA
(each program normalises a tile of positions over all channels in registers), the same
arithmetic in torch elsewhere.

Same function as diffusers (x / max(‖x‖₂, 1e-12) over channels · √C · gamma + bias, then
SiLU), computed in fp32 with one rounding at the end instead of one per step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import (
    WanDecoder3d,
    WanEncoder3d,
    WanResidualBlock,
    WanRMS_norm,
)
from torch import nn

try:  # Triton comes with CUDA builds of torch; CPU-only installs use the torch path.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the torch build
    triton = None


def norm_silu_reference(x: torch.Tensor, gamma: torch.Tensor, bias, scale: float) -> torch.Tensor:
    """The fused function in plain torch (channel dim 1), fp32 inside."""
    xf = x.float()
    y = xf / xf.norm(dim=1, keepdim=True).clamp_min(1e-12) * (scale * gamma.float())
    if isinstance(bias, torch.Tensor):
        y = y + bias.float()
    return F.silu(y).to(x.dtype)


if triton is not None:

    @triton.jit
    def _norm_silu_kernel(x_ptr, w_ptr, b_ptr, y_ptr, positions, channels, stride_b, stride_p, stride_c,
                          HAS_BIAS: tl.constexpr, ROWS: tl.constexpr, BLOCK_C: tl.constexpr):
        batch = tl.program_id(1)
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK_C)
        mask = (rows[:, None] < positions) & (cols[None, :] < channels)
        offsets = batch * stride_b + rows[:, None] * stride_p + cols[None, :] * stride_c
        x = tl.load(x_ptr + offsets, mask=mask, other=0.0).to(tl.float32)
        inv = 1.0 / tl.maximum(tl.sqrt(tl.sum(x * x, axis=1)), 1e-12)
        w = tl.load(w_ptr + cols, mask=cols < channels, other=0.0).to(tl.float32)
        y = x * inv[:, None] * w[None, :]
        if HAS_BIAS:
            y += tl.load(b_ptr + cols, mask=cols < channels, other=0.0).to(tl.float32)[None, :]
        y = y * tl.sigmoid(y)
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


def _position_strides(x: torch.Tensor) -> tuple[int, int] | None:
    """(stride between positions, stride between channels) if the T·H·W positions of x
    [B, C, T, H, W] are evenly spaced (contiguous or channels-last), else None."""
    _, c, t, h, w = x.shape
    st, sh, sw = x.stride(2), x.stride(3), x.stride(4)
    # Strides of size-1 dims mean nothing (torch leaves them arbitrary, e.g. after a view of
    # a channels-last 2-D conv's output): the spacing comes from the innermost dim that varies.
    p = sw if w > 1 else sh if h > 1 else st if t > 1 else 1
    if (w == 1 or sw == p) and (h == 1 or sh == w * p) and (t == 1 or st == h * w * p):
        return p, x.stride(1)
    return None


def norm_silu(x: torch.Tensor, gamma: torch.Tensor, bias, scale: float) -> torch.Tensor:
    if triton is None or not x.is_cuda or x.ndim != 5:
        return norm_silu_reference(x, gamma, bias, scale)
    strides = _position_strides(x)
    if strides is None:
        x = x.clone(memory_format=torch.channels_last_3d)
        strides = _position_strides(x)
    batch, channels = x.shape[:2]
    positions = x.shape[2] * x.shape[3] * x.shape[4]
    y = torch.empty_like(x)  # same memory format, so the same strides
    weight = (gamma.float().reshape(-1) * scale).contiguous()
    has_bias = isinstance(bias, torch.Tensor)
    bias_t = bias.float().reshape(-1).contiguous() if has_bias else weight
    block_c = triton.next_power_of_2(channels)
    rows = max(1, 4096 // block_c)  # a tile of ~4K values per program keeps registers in check
    grid = (triton.cdiv(positions, rows), batch)
    _norm_silu_kernel[grid](x, weight, bias_t, y, positions, channels, x.stride(0), strides[0], strides[1],
                            HAS_BIAS=has_bias, ROWS=rows, BLOCK_C=block_c)
    return y


class NormSiLU(WanRMS_norm):
    """A WanRMS_norm that also applies the SiLU that follows it (same parameters, so the
    state dict is unchanged). Installed by :func:`fuse_norm_silu`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return norm_silu(x, self.gamma, self.bias, self.scale)


def fuse_norm_silu(vae: nn.Module, enabled: bool = True) -> None:
    """Fuse every norm→SiLU pair of a Wan VAE (or undo it): the residual blocks' norm1 and
    norm2 and the encoder's/decoder's norm_out, whose module's SiLU becomes an identity.
    The attention block's norm is not followed by a SiLU and stays as it is."""
    for module in vae.modules():
        if isinstance(module, WanResidualBlock):
            norms = (module.norm1, module.norm2)
        elif isinstance(module, (WanEncoder3d, WanDecoder3d)):
            norms = (module.norm_out,)
        else:
            continue
        for norm in norms:
            norm.__class__ = NormSiLU if enabled else WanRMS_norm
        module.nonlinearity = nn.Identity() if enabled else nn.SiLU()
