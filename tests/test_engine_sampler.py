"""The 4-step rectified-flow sampler: schedules, conversions, seeding."""

from __future__ import annotations

import pytest
import torch

from liveedit.errors import InputError
from liveedit.engine.config import SamplerConfig
from liveedit.engine.sampler import add_noise, flow_to_x0, initial_noise


def test_raw_steps_are_the_released_list():
    cfg = SamplerConfig()
    assert cfg.timesteps == (1000.0, 750.0, 500.0, 250.0)
    # σ from the nearest point of the shift-5 training grid, as released: close to t/1000
    # (the grid is coarsest at low σ: 0.2516 for t = 250)
    for t in cfg.timesteps:
        assert abs(cfg.sigma(t) - t / 1000) < 2e-3
    assert cfg.sigma(250.0) == pytest.approx(0.25160, abs=1e-4)
    assert cfg.sigma(1000.0) == 1.0 and cfg.sigma(0.0) == 0.0


def test_warped_steps_follow_the_shifted_grid():
    cfg = SamplerConfig(warp=True)
    want = [1000.0, 937.5, 2500 / 3, 625.0]  # 1000·5s/(1+4s) at s = 1, .75, .5, .25
    assert cfg.timesteps == pytest.approx(want, abs=1e-6)
    # warped steps are grid points: σ is exactly t/1000
    assert [cfg.sigma(t) for t in cfg.timesteps] == pytest.approx([t / 1000 for t in want], abs=1e-9)
    # another shift gives other values (computed, not a stored table)
    assert SamplerConfig(warp=True, shift=8.0).timesteps[1] == pytest.approx(1000 * 8 * 0.75 / (1 + 7 * 0.75))


def test_flow_conversions_invert_each_other():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 16, 3, 4, 4, generator=g), torch.randn(2, 16, 3, 4, 4, generator=g)
    sigma = 0.75
    x_t = (1 - sigma) * x0 + sigma * eps
    assert torch.allclose(flow_to_x0(x_t, eps - x0, sigma), x0, atol=1e-6)


def test_same_seed_same_noise_different_seed_different():
    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        x = initial_noise((1, 16, 3, 4, 4), g, "cpu", torch.float32)
        return x, add_noise(torch.zeros_like(x), 0.5, g)

    a, b, c = draw(1), draw(1), draw(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.allclose(a[0], c[0])
    assert not torch.allclose(a[0], a[1] * 2)  # re-noising draws fresh noise
    assert a[1].std().item() == pytest.approx(0.5, rel=0.2)


@pytest.mark.parametrize(
    "kwargs", [{"denoising_steps": ()}, {"denoising_steps": (250.0, 500.0)}, {"denoising_steps": (1200.0,)}, {"context_noise": -1}]
)
def test_bad_schedules_are_clear_errors(kwargs):
    with pytest.raises(InputError):
        SamplerConfig(**kwargs)
