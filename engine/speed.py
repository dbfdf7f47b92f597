"""Speed switches for a loaded model, each measured in docs/benchmarks.md and each
checked against the plain path (`liveedit bench --what check-fused`, tests on CPU).

Defaults on CUDA: fused elementwise work (torch.compile of the small fp32 functions
around the GEMMs), cuDNN autotuning of the VAE's convolutions, and channels-last weights
for the VAE's 3-D convolutions (the layout of cuDNN's fast kernels). On CPU all are off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from liveedit.engine.transformer import set_compile


@dataclass(frozen=True)
class SpeedOptions:
    fuse_elementwise: bool = True
    cudnn_benchmark: bool = True
    channels_last_vae: bool = True

    @classmethod
    def plain(cls) -> "SpeedOptions":
        """The reference's choices: eager, no autotuning, default layouts."""
        return cls(False, False, False)

    @classmethod
    def for_device(cls, device: torch.device) -> "SpeedOptions":
        return cls() if torch.device(device).type == "cuda" else cls.plain()


def conv3d_layout(module: torch.nn.Module, layout: torch.memory_format) -> None:
    """Re-lay the weights of every Conv3d in ``module`` (the VAE has 2-D and 1-D weights
    too, which have no 3-D channels-last form, so ``module.to(memory_format=…)`` fails)."""
    for m in module.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=layout)


def apply_speed_options(models, options: SpeedOptions) -> None:
    """Switch a loaded EditorModels to ``options`` (process-wide for the two global switches)."""
    set_compile(options.fuse_elementwise)
    torch.backends.cudnn.benchmark = options.cudnn_benchmark
    conv3d_layout(models.vae, torch.channels_last_3d if options.channels_last_vae else torch.contiguous_format)
