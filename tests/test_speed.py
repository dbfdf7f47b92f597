"""Every speed switch computes what the plain path computes (CPU, tiny shapes)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from liveedit.engine.editor import EditorModels, StreamingEditor
from liveedit.engine.presets import get_preset
from liveedit.engine.config import SpeedOptions
from liveedit.engine.speed import apply_speed_options, lean_vae_convs
from liveedit.engine.vae import StreamingWanVAE


@pytest.fixture(scope="module")
def models():
    return EditorModels.random(get_preset("tiny"), seed=1)


def encode_decode(vae_module, frames):
    """Stream ``frames`` (a list of clips) through a fresh StreamingWanVAE: (latents, pixels)."""
    vae = StreamingWanVAE(vae_module)
    latents = [vae.encode(f) for f in frames]
    return torch.cat(latents, 2), torch.cat([vae.decode(z) for z in latents], 2)


def test_lean_causal_convs_equal_diffusers_convs(models):
    torch.manual_seed(0)
    frames = [torch.rand(1, 3, 9, 64, 112), torch.rand(1, 3, 12, 64, 112)]

    plain = encode_decode(models.vae, frames)
    lean_vae_convs(models.vae, True)
    try:
        lean = encode_decode(models.vae, frames)
    finally:
        lean_vae_convs(models.vae, False)
    for a, b in zip(lean, plain):
        # Same arithmetic, fp32 reordering only
        # (pixels are in [0, 1], so 2e-5 is far below one 8-bit step).
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)


def test_speed_options_round_trip_keeps_the_output(models):
    """Layout and conv switches on, then back to plain: the editor's output is unchanged
    (compilation stays off here: inductor on a 2-core CPU is a GPU-box check, see
    `liveedit bench --what check-fused`)."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (64, 112, 3), dtype=np.uint8) for _ in range(9)]
    plain = list(StreamingEditor(models, instruction="x", seed=0).edit(frames))
    apply_speed_options(models, SpeedOptions(fuse_elementwise=False, cudnn_benchmark=False,
                                             channels_last_vae=True, lean_vae_convs=True))
    try:
        fast = list(StreamingEditor(models, instruction="x", seed=0).edit(frames))
    finally:
        apply_speed_options(models, SpeedOptions.plain())
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(fast, plain)) <= 1
    assert SpeedOptions.for_device(torch.device("cpu")) == SpeedOptions.plain()


def test_fused_norm_silu_rewiring_equals_diffusers(models):
    """Each norm→SiLU pair as one module (torch path on CPU): same encode and decode."""
    from liveedit.engine.vae_fused import fuse_norm_silu

    torch.manual_seed(1)
    for m in models.vae.modules():  # non-trivial gammas, so a skipped norm would show
        if type(m).__name__ == "WanRMS_norm":
            m.gamma.data.uniform_(0.5, 1.5)
    frames = [torch.rand(1, 3, 9, 64, 112), torch.rand(1, 3, 4, 64, 112)]

    plain = encode_decode(models.vae, frames)
    fuse_norm_silu(models.vae, True)
    try:
        fused = encode_decode(models.vae, frames)
        silus = [m for m in models.vae.modules() if isinstance(m, torch.nn.SiLU)]
        assert silus == []  # every SiLU was folded into a norm
    finally:
        fuse_norm_silu(models.vae, False)
    for a, b in zip(fused, plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-5)  # fp32: one rounding instead of several
    assert [m for m in models.vae.modules() if isinstance(m, torch.nn.SiLU)]  # and undone


def test_warm_up_runs_a_full_window_and_leaves_no_stream_behind(models):
    import gc

    from liveedit.engine import stream as stream_mod
    from liveedit.engine.speed import warm_up

    seconds = warm_up(models, frames=21, preview=True)
    gc.collect()
    assert seconds > 0
    idle = stream_mod._IDLE_BUFFERS.get(models.transformer, {})
    # The warm-up's buffers (and graphs) wait in the pool for the first streams: one set for
    # full-quality streams, one for fast previews (mask cache), nothing else left running.
    assert sum(len(v) for v in idle.values()) == 2
    assert sorted(key[-1] is not None for key in idle) == [False, True]


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile on the CPU needs a C compiler")
def test_fused_elementwise_equals_eager_on_the_cpu():
    """The compiled elementwise functions (LiveEditTransformer.fuse_elementwise: fp32 norms,
    modulation, residuals, RoPE, the residual+norm pair) compute what the eager ones do. fp32
    on the CPU through inductor; the GPU check (`liveedit bench --what check-fused`) covers bf16."""
    from liveedit.engine.stream import LatentStream
    from tiny_engine import CFG, context, sources, tiny_transformer

    model = tiny_transformer()

    def run():
        stream = LatentStream(model, CFG)
        stream.start(context(1), seed=3)
        return torch.cat([stream.edit_chunk(s) for s in sources([3, 3], 1)], 2)

    eager = run()
    model.fuse_elementwise = True
    fused = run()
    assert float((fused - eager).norm() / eager.norm()) < 1e-5


@pytest.mark.parametrize("mode", ["upsample3d", "upsample2d"])
def test_lean_resample_equals_diffusers_resample(mode):
    """The decoder's resample block with fewer copies (engine/speed.LeanResample): same
    frames and the same causal cache as diffusers', chunk after chunk, in both layouts."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanResample

    from liveedit.engine.speed import LeanResample

    torch.manual_seed(0)
    block = WanResample(8, mode).eval()
    chunks = [torch.randn(1, 8, t, 6, 10) for t in (1, 2, 1)]
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        outputs, caches = [], []
        for cls in (WanResample, LeanResample):
            block.__class__ = cls
            cache, out = [None], []
            with torch.no_grad():
                for x in chunks:
                    out.append(block(x.contiguous(memory_format=layout), feat_cache=cache, feat_idx=[0]))
            outputs.append(out)
            caches.append(cache[0])
        for plain, lean in zip(*outputs):
            assert plain.shape == lean.shape
            torch.testing.assert_close(lean, plain, rtol=1e-5, atol=1e-6)
        if mode == "upsample3d":
            assert torch.equal(caches[0], caches[1])


def test_norm_kernel_position_strides_ignore_size_one_dims():
    """The fused VAE norm kernel walks T·H·W positions at one spacing. A channels-last 2-D
    conv's output viewed back as [B, C, 1, H, W] has an arbitrary stride on its size-1 time
    dim, which must not stop the kernel (it did once 2-D conv weights went channels-last)."""
    from liveedit.engine.vae_fused import _position_strides

    frames = torch.randn(1, 8, 6, 10).contiguous(memory_format=torch.channels_last)
    x = frames.unflatten(0, (1, 1)).permute(0, 2, 1, 3, 4)  # [1, 8, 1, 6, 10]
    assert _position_strides(x) == (8, 1)
    odd = torch.empty_strided((1, 8, 1, 6, 10), (480, 1, 12345, 80, 8))
    assert _position_strides(odd) == (8, 1)
    assert _position_strides(torch.randn(1, 8, 3, 6, 10)) == (1, 180)  # contiguous: positions adjacent
    assert _position_strides(torch.randn(1, 8, 3, 6, 10).transpose(3, 4)) is None  # not evenly spaced


def test_upsample_2x_equals_nearest_exact():
    from liveedit.engine.speed import _upsample_2x

    x = torch.randn(3, 5, 7, 9).to(torch.bfloat16)
    want = torch.nn.functional.interpolate(x.float(), scale_factor=(2.0, 2.0), mode="nearest-exact").to(torch.bfloat16)
    for layout in (torch.contiguous_format, torch.channels_last):
        got = _upsample_2x(x.contiguous(memory_format=layout))
        assert torch.equal(got, want) and got.is_contiguous(memory_format=torch.channels_last)
