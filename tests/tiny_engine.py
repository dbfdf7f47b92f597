"""Shared inputs for engine tests: a tiny transformer with weights large enough that
every block matters (the default init keeps tiny blocks near identity), and seeded
source latents and instruction contexts."""

from __future__ import annotations

import torch

from liveedit.engine.config import TRANSFORMER_PRESETS
from liveedit.engine.transformer import LiveEditTransformer

CFG = TRANSFORMER_PRESETS["tiny"]


def tiny_transformer() -> LiveEditTransformer:
    torch.manual_seed(0)
    m = LiveEditTransformer(CFG).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.15)
    return m


def sources(chunks, batch, seed=5):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 16, f, CFG.latent_height, CFG.latent_width, generator=g) for f in chunks]


def context(batch, seed=6):
    return torch.randn(batch, 5, CFG.text_dim, generator=torch.Generator().manual_seed(seed))
