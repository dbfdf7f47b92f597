"""Speed switches for a loaded model, each measured in docs/benchmarks.md and each
checked against the plain path (`liveedit bench --what check-fused`, tests on CPU).

The switches are `SpeedOptions` (engine/config.py). Defaults on CUDA: fused elementwise
work (torch.compile of the small fp32 functions around the GEMMs), cuDNN autotuning of the
VAE's convolutions, channels-last weights and lean causal convs for the VAE, CUDA graphs
for steady-state chunks, and the VAE on its own CUDA stream. On CPU all are off.
"""

from __future__ import annotations

import time

import numpy as np
import torch

import torch.nn.functional as F
from diffusers.models.autoencoders.autoencoder_kl_wan import CACHE_T, WanCausalConv3d, WanResample

from liveedit.engine.config import MaskCacheConfig, SpeedOptions
from liveedit.engine.editor import EditorModels, StreamingEditor
from liveedit.engine.vae_fused import fuse_norm_silu


def conv3d_layout(module: torch.nn.Module, layout: torch.memory_format) -> None:
    """Re-lay the weights of every Conv3d in ``module`` (the VAE has 2-D and 1-D weights
    too, which have no 3-D channels-last form, so ``module.to(memory_format=…)`` fails);
    with ``channels_last_3d`` the 2-D convs' weights go channels-last too."""
    flat = torch.channels_last if layout == torch.channels_last_3d else torch.contiguous_format
    for m in module.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=layout)
        elif isinstance(m, torch.nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=flat)


class LeanCausalConv3d(WanCausalConv3d):
    """diffusers' causal conv with the same arithmetic and one copy less: diffusers pads
    all three axes with F.pad (a full copy of the activation, 100s of MB at 480x832)
    before a padding-free conv; here the conv zero-pads height and width itself and only
    the causal time padding, which the cached frames usually fill, is concatenated."""

    def forward(self, x, cache_x=None) -> torch.Tensor:
        w_pad, _, h_pad, _, t_pad, _ = self._padding
        if cache_x is not None and t_pad > 0:
            x = torch.cat([cache_x.to(x.device), x], dim=2)
            t_pad -= cache_x.shape[2]
        if t_pad > 0:
            x = F.pad(x, (0, 0, 0, 0, t_pad, 0))
        return F.conv3d(x, self.weight, self.bias, self.stride, (0, h_pad, w_pad), self.dilation, self.groups)


def _upsample_2x(frames: torch.Tensor) -> torch.Tensor:
    """Nearest-exact 2x upsampling of images [N, C, H, W] (output pixel (y, x) is input
    pixel (y // 2, x // 2), as nearest-exact gives at scale 2), as one broadcast copy into
    a channels-last result: torch's bf16 channels-last nearest kernel took 1.5 ms a call
    at the decoder's largest size on the H100."""
    n, c, h, w = frames.shape
    pixels = frames.permute(0, 2, 3, 1)  # [N, H, W, C], a view for channels-last input
    up = pixels[:, :, None, :, None, :].expand(n, h, 2, w, 2, c).reshape(n, 2 * h, 2 * w, c)
    return up.permute(0, 3, 1, 2)


class LeanResample(WanResample):
    """diffusers' resample block with the same arithmetic and fewer copies in its upsample
    modes (the decoder). diffusers interleaves the time-upsampled frames with a stack, goes
    through a contiguous layout, upsamples in float32 and casts back: four full copies at
    the upsampled size. Here the interleave is one copy straight into channels-last images,
    the nearest-exact upsample is one broadcast copy in the input dtype (it only copies
    pixels, so the values are the same), and the result is a channels-last view. The downsample modes
    (encoder) are diffusers' own."""

    def forward(self, x, feat_cache=None, feat_idx=[0]) -> torch.Tensor:  # noqa: B006 (diffusers' signature)
        upsample = self.resample[0] if self.mode in ("upsample2d", "upsample3d") else None
        if upsample is None or upsample.mode != "nearest-exact" or tuple(upsample.scale_factor) != (2.0, 2.0):
            return super().forward(x, feat_cache, feat_idx)  # encoder modes (or a layout we do not know)
        b, c, t, h, w = x.shape
        frames = None
        if self.mode == "upsample3d" and feat_cache is not None:
            idx = feat_idx[0]
            if feat_cache[idx] is None:  # a stream's first frame: no time upsampling
                feat_cache[idx] = "Rep"
                feat_idx[0] += 1
            else:
                cache_x = x[:, :, -CACHE_T:].clone()
                if cache_x.shape[2] < 2 and feat_cache[idx] != "Rep":  # last frame of the chunk before
                    cache_x = torch.cat([feat_cache[idx][:, :, -1:].to(cache_x.device), cache_x], dim=2)
                if cache_x.shape[2] < 2 and feat_cache[idx] == "Rep":
                    cache_x = torch.cat([torch.zeros_like(cache_x), cache_x], dim=2)
                y = self.time_conv(x) if feat_cache[idx] == "Rep" else self.time_conv(x, feat_cache[idx])
                feat_cache[idx] = cache_x
                feat_idx[0] += 1
                # [b, 2c, t, h, w] -> frames [b·2t, c, h, w]: frame 2i+j is channels j·c…(j+1)·c of i
                frames = y.permute(0, 2, 3, 4, 1).unflatten(-1, (2, c)).permute(0, 1, 4, 2, 3, 5)
                t *= 2
                frames = frames.reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        if frames is None:
            frames = x.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c).permute(0, 3, 1, 2)
        frames = self.resample[1](_upsample_2x(frames))
        return frames.permute(0, 2, 3, 1).unflatten(0, (b, t)).permute(0, 4, 1, 2, 3)


def lean_vae_convs(vae: torch.nn.Module, enabled: bool = True) -> None:
    """Swap every causal conv and resample block of a Wan VAE to the lean forward (or back)."""
    for m in vae.modules():
        if isinstance(m, WanCausalConv3d):
            m.__class__ = LeanCausalConv3d if enabled else WanCausalConv3d
        elif isinstance(m, WanResample):
            m.__class__ = LeanResample if enabled else WanResample


def apply_speed_options(models: EditorModels, options: SpeedOptions) -> None:
    """Switch a loaded EditorModels to ``options``: the transformer's fusion and the VAE's
    layout, convs and norms are set on the modules; CUDA graphs and the VAE's own stream
    are read from ``models.speed`` by each new StreamingEditor; cuDNN autotuning is torch's
    switch, so it is process-wide."""
    models.speed = options
    models.transformer.fuse_elementwise = options.fuse_elementwise
    torch.backends.cudnn.benchmark = options.cudnn_benchmark
    conv3d_layout(models.vae, torch.channels_last_3d if options.channels_last_vae else torch.contiguous_format)
    lean_vae_convs(models.vae, options.lean_vae_convs)
    fuse_norm_silu(models.vae, options.fused_vae_norms)


def warm_up(models: EditorModels, *, frames: int = 81, preview: bool = False) -> float:
    """Run one throw-away stream over a full window so the first real one is fast: torch.compile
    builds its kernels, cuDNN its plans for every key count, and the CUDA graphs of each chunk
    position are captured into the model's buffer pool. Returns the seconds it took."""
    start = time.perf_counter()
    preset = models.preset
    grey = np.full((preset.height, preset.width, 3), 128, dtype=np.uint8)
    # Two streams: the first compiles and runs eagerly, the second captures the graphs of
    # every chunk position (graphs are captured for positions an earlier stream used).
    for _ in range(2):
        editor = StreamingEditor(models, instruction="warm-up", seed=0)
        for _frame in editor.edit(grey for _ in range(frames)):
            pass
        del editor
    if preview:  # the fast preview path: tiny VAE both ways and the mask cache's pruned shapes
        editor = StreamingEditor(models, instruction="warm-up", seed=0, preview_vae=True, mask_cache=MaskCacheConfig())
        for _frame in editor.edit(grey for _ in range(frames)):
            pass
        del editor
    if models.device.type == "cuda":
        torch.cuda.synchronize(models.device)
    return time.perf_counter() - start
