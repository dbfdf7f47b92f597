"""Detail delivery: the model's edited picture back at the source's size and precision.

The model sees an 8-bit picture of the source at its own size (engine/picture.py) and
gives back an edited one. Scaling that edited picture up ("off") loses the source's fine
detail and bit depth everywhere, even where the edit changed nothing. Instead:

    output = source + upscale(edited - seen)                 ("transfer")
    output = source + upscale(mask) * upscale(edited - seen)  ("masked")

where ``seen`` is the model picture the editor built from this very source frame (the
VAE's input, cropped to the source's rectangle), so an edit that changes nothing adds
exactly zero and the source comes back code value for code value. All arithmetic is in
float32 on the frames' device; integer frames are rounded back to their own type
(uint8 or uint16), float frames stay float and are not clamped (superwhites survive).

The change mask (``masked``), at the model's size:
1. how much each pixel changed: the largest of its three channel differences, averaged
   over 3x3 pixels (the VAE's round-trip error is pixel noise, an edit is a region);
2. 0 up to ``threshold``, rising linearly to 1 at twice the threshold;
3. grown by ceil(softness/2) pixels (max filter), then softened by a box of
   floor(softness/2) pixels each side: 1 on everything that changed, 0 beyond
   ``softness`` + 1 model pixels from it (+1 for the 3x3 average).
Where the upscaled mask is exactly 0 the output is the source, bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from liveedit.engine.config import DetailConfig
from liveedit.engine.picture import resize
from liveedit.errors import InputError


def code_max(dtype: torch.dtype) -> float | None:
    """Full scale of an integer frame type (255, 65535); None for float frames (1.0 = white)."""
    if dtype == torch.uint8:
        return 255.0
    if dtype == torch.uint16:
        return 65535.0
    if dtype.is_floating_point:
        return None
    raise InputError(f"frames must be uint8, uint16 or float, not {dtype}")


def change_mask(delta: torch.Tensor, threshold: float, softness: int) -> torch.Tensor:
    """The soft change mask [N, 1, h, w] in [0, 1] of picture differences [N, 3, h, w]."""
    change = delta.abs().amax(dim=1, keepdim=True)
    change = F.avg_pool2d(change, 3, stride=1, padding=1, count_include_pad=False)
    mask = ((change - threshold) / threshold).clamp_(0.0, 1.0)
    grow, blur = (softness + 1) // 2, softness // 2
    if grow:
        mask = F.max_pool2d(mask, 2 * grow + 1, stride=1, padding=grow)
    if blur:
        mask = F.avg_pool2d(mask, 2 * blur + 1, stride=1, padding=blur, count_include_pad=False)
    return mask


@torch.no_grad()
def deliver(source: torch.Tensor, edited: torch.Tensor, seen: torch.Tensor, config: DetailConfig,
            *, with_mask: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Frames [N, H, W, 3] (uint8, uint16 or float) + edited and seen model pictures
    [N, 3, h, w] (float, [0, 1], the source's rectangle only) → the delivered frames, same
    type and shape as ``source``, and with ``with_mask`` the change mask at the source size
    [N, H, W] (float, [0, 1]; all ones for "transfer")."""
    if config.mode == "off":
        raise InputError("detail mode 'off' scales the model picture up; there is nothing to deliver here")
    if source.ndim != 4 or source.shape[-1] != 3:
        raise InputError(f"source frames must be [N, H, W, 3], got shape {tuple(source.shape)}")
    if edited.shape != seen.shape or edited.ndim != 4 or edited.shape[1] != 3 or edited.shape[0] != source.shape[0]:
        raise InputError(f"edited {tuple(edited.shape)} and seen {tuple(seen.shape)} pictures must both be "
                         f"[{source.shape[0]}, 3, h, w]")
    full_scale = code_max(source.dtype)
    size = tuple(source.shape[1:3])
    # The difference upscaled in channels-last, so that it lines up with [N, H, W, 3] frames.
    delta = edited.float() - seen.float()
    change = resize(delta.contiguous(memory_format=torch.channels_last), size)
    mask = None
    if config.mode == "masked":
        mask = resize(change_mask(delta, config.threshold, config.softness), size).clamp_(0.0, 1.0)
        change.mul_(mask)
    change = change.permute(0, 2, 3, 1)
    out = source.to(torch.float32, copy=True)
    if full_scale is None:
        out.add_(change)
    else:
        out.add_(change, alpha=full_scale).round_().clamp_(0.0, full_scale)
    out = out.to(source.dtype)
    if not with_mask:
        return out, None
    if mask is None:
        return out, torch.ones(out.shape[:3], device=out.device)
    return out, mask[:, 0]


class SourceDetail:
    """The editor's delivery hook (StreamingEditor(delivery=...)): called with each decoded
    latent's edited and seen pictures and the source frames they came from, on the device
    and CUDA stream the editor decodes on. With ``keep_masks`` it also keeps each frame's
    change mask (uint8 [H, W], 255 = the edit applies in full) for ``take_masks``."""

    def __init__(self, config: DetailConfig, *, keep_masks: bool = False):
        if not config.delivers:
            raise InputError("detail mode 'off' needs no delivery hook; give the editor delivery=None")
        self.config = config
        self.keep_masks = keep_masks
        self._masks: list[np.ndarray] = []

    def __call__(self, edited: torch.Tensor, seen: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        out, mask = deliver(source, edited, seen, self.config, with_mask=self.keep_masks)
        if mask is not None:
            # Saving masks is for looking at them: a synchronous copy is fine here.
            self._masks.extend((mask * 255.0).round_().to(torch.uint8).cpu().numpy())
        return out

    def take_masks(self) -> list[np.ndarray]:
        """The masks of the frames delivered since the last call, oldest first."""
        masks, self._masks = self._masks, []
        return masks
