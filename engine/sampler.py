"""The few-step rectified-flow sampler of the distilled model (Self-Forcing's DMD sampler).

x_t = (1 − σ)·x0 + σ·ε; the model predicts v = ε − x0, so x0 = x_t − σ·v. Between steps the
x0 prediction is re-noised to the next timestep with *fresh* Gaussian noise (not an ODE
step). Facts: ../shared/spec/liveedit-model.md §3, backbone-and-peers.md §C3.

σ for a timestep t is looked up on the training scheduler's grid (shift 5, 1000 steps),
nearest grid timestep, as the released scheduler does; for the raw steps that is within
2e-3 of t/1000 (σ = 0.2516 at t = 250, where the shifted grid is coarsest).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from liveedit.errors import InputError


@dataclass(frozen=True)
class SamplerConfig:
    # Released list, used raw by LiveEdit's inference (σ = 1, .75, .5, .25).
    denoising_steps: tuple[float, ...] = (1000.0, 750.0, 500.0, 250.0)
    # True maps each step through the shifted grid as Self-Forcing's training does
    # (≈ [1000, 937.5, 833.3, 625]); the checkpoint may have been trained on those.
    warp: bool = False
    shift: float = 5.0
    num_train_timesteps: int = 1000
    # Timestep of the clean refresh pass that writes a chunk's history K/V (0 = clean).
    context_noise: float = 0.0

    def __post_init__(self):
        steps = self.denoising_steps
        if not steps or any(not 0 < s <= self.num_train_timesteps for s in steps):
            raise InputError(f"denoising steps must be in (0, {self.num_train_timesteps}], got {list(steps)}")
        if list(steps) != sorted(steps, reverse=True):
            raise InputError(f"denoising steps must decrease, got {list(steps)}")
        if not 0 <= self.context_noise < self.num_train_timesteps:
            raise InputError(f"context_noise must be in [0, {self.num_train_timesteps}), got {self.context_noise}")

    @cached_property
    def grid(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training scheduler's (timesteps, sigmas), float64: σ = shift·s / (1 + (shift−1)·s)
        with s = linspace(1, 0, N+1)[:-1] (sigma_min 0, the extra step dropped)."""
        s = torch.linspace(1.0, 0.0, self.num_train_timesteps + 1, dtype=torch.float64)[:-1]
        sigmas = self.shift * s / (1 + (self.shift - 1) * s)
        return sigmas * self.num_train_timesteps, sigmas

    @cached_property
    def timesteps(self) -> tuple[float, ...]:
        """The timesteps the model is run at, one per denoising step."""
        if not self.warp:
            return tuple(float(s) for s in self.denoising_steps)
        grid_t = torch.cat([self.grid[0], torch.zeros(1, dtype=torch.float64)])
        return tuple(float(grid_t[self.num_train_timesteps - round(s)]) for s in self.denoising_steps)

    def sigma(self, t: float) -> float:
        """σ of the grid timestep nearest to t (σ = 0 for t = 0: the clean refresh)."""
        if t <= 0:
            return 0.0
        grid_t, sigmas = self.grid
        return float(sigmas[(grid_t - t).abs().argmin()])


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
