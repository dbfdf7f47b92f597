"""The few-step rectified-flow sampler of the distilled model (Self-Forcing's DMD sampler).

x_t = (1 − σ)·x0 + σ·ε; the model predicts v = ε − x0, so x0 = x_t − σ·v. Between steps the
x0 prediction is re-noised to the next timestep with *fresh* Gaussian noise (not an ODE
step). Facts: ../shared/spec/liveedit-model.md §3, backbone-and-peers.md §C3.

The schedule itself (steps, warping, σ per timestep) is ``SamplerConfig`` in
engine/config.py; this module holds the tensor arithmetic between steps.
"""

from __future__ import annotations

import torch


def initial_noise(shape, generator: torch.Generator, device, dtype) -> torch.Tensor:
    """Pure noise at σ = 1: LiveEdit edits from noise, the source enters only as condition."""
    return torch.randn(shape, generator=generator, device=device, dtype=torch.float32).to(dtype)


def flow_to_x0(x_t: torch.Tensor, flow: torch.Tensor, sigma: float) -> torch.Tensor:
    """x0 = x_t − σ·v, in float64 as Self-Forcing does (the latents are small)."""
    return (x_t.double() - sigma * flow.double()).to(x_t.dtype)


def add_noise(x0: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """x_t = (1 − σ)·x0 + σ·ε with fresh ε."""
    eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=torch.float32)
    return ((1 - sigma) * x0.float() + sigma * eps).to(x0.dtype)
