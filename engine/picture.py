"""The source picture inside the model picture, and back: one implementation for the
editor's input, its output and detail delivery (engine/detail.py).

"fit": the source is scaled to fit inside the model picture without distortion and the
rest is padded by repeating the edge pixels; the edited picture is cropped back out of the
same rectangle. "stretch" reproduces the released code (resize to the model size, aspect
ratio ignored): the rectangle is then the whole model picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

FrameMapping = Literal["fit", "stretch"]


@dataclass
class Placement:
    """Where the source picture sits inside the model picture, in model pixels."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The source's rectangle of model pictures [..., H_model, W_model] (a view)."""
        return x[..., self.top : self.top + self.height, self.left : self.left + self.width]

    def pad(self, model_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """F.pad's (left, right, top, bottom) from the rectangle to the model picture."""
        model_h, model_w = model_size
        return (self.left, model_w - self.width - self.left, self.top, model_h - self.height - self.top)


def place(size: tuple[int, int], model_size: tuple[int, int], mapping: FrameMapping = "fit") -> Placement:
    """The placement of a source of ``size`` (H, W) in a model picture of ``model_size``."""
    model_h, model_w = model_size
    if mapping == "stretch":
        return Placement(0, 0, model_h, model_w)
    h, w = size
    scale = min(model_h / h, model_w / w)
    fit_h = max(1, min(model_h, round(h * scale)))
    fit_w = max(1, min(model_w, round(w * scale)))
    return Placement((model_h - fit_h) // 2, (model_w - fit_w) // 2, fit_h, fit_w)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float pictures [N, C, h, w] → [N, C, H, W]: bilinear, antialiased when shrinking;
    the same tensor when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)


def to_model_picture(x: torch.Tensor, placement: Placement, model_size: tuple[int, int]) -> torch.Tensor:
    """Float source pictures [T, 3, H, W] → model pictures [T, 3, H_model, W_model]."""
    x = resize(x, (placement.height, placement.width))
    pad = placement.pad(model_size)
    if any(pad):
        x = F.pad(x, pad, mode="replicate")
    return x
