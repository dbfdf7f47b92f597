"""LiveEditTransformer against diffusers' WanTransformer3DModel (the numerical oracle)."""

from __future__ import annotations

import pytest
import torch
from diffusers import WanTransformer3DModel
from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

from liveedit.engine.attention import attention, attention_backend, block_causal_mask
from liveedit.engine.checkpoint import from_diffusers, to_diffusers
from liveedit.errors import InputError
from liveedit.engine.config import TRANSFORMER_PRESETS
from liveedit.engine.transformer import LiveEditTransformer, RotaryEmbedding

CFG = TRANSFORMER_PRESETS["tiny"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    ours = LiveEditTransformer(CFG).eval()
    with torch.no_grad():  # every weight random and O(1) effect, so no path hides behind a zero
        for p in ours.parameters():
            p.normal_(0, 0.2)
    oracle = WanTransformer3DModel(
        patch_size=CFG.patch_size, num_attention_heads=CFG.num_heads, attention_head_dim=CFG.head_dim,
        in_channels=32, out_channels=16, text_dim=CFG.text_dim, freq_dim=CFG.freq_dim, ffn_dim=CFG.ffn_dim,
        num_layers=CFG.num_layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=CFG.eps,
        rope_max_seq_len=CFG.rope_max_positions,
    ).eval()
    oracle.load_state_dict(to_diffusers(ours.state_dict()), strict=True)
    return ours, oracle


def inputs(batch=2, frames=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (batch, 16, frames, CFG.latent_height, CFG.latent_width)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g), torch.randn(batch, 7, CFG.text_dim, generator=g)


def test_parameter_names_are_wans_originals():
    names = set(LiveEditTransformer(CFG).state_dict())
    for name in [
        "patch_embedding.weight", "text_embedding.0.weight", "text_embedding.2.bias", "time_embedding.0.weight",
        "time_embedding.2.weight", "time_projection.1.weight", "blocks.0.self_attn.q.weight",
        "blocks.0.self_attn.norm_k.weight", "blocks.1.cross_attn.o.bias", "blocks.1.cross_attn.norm_q.weight",
        "blocks.0.norm3.weight", "blocks.0.norm3.bias", "blocks.0.ffn.0.weight", "blocks.0.ffn.2.weight",
        "blocks.0.modulation", "head.head.weight", "head.modulation",
    ]:
        assert name in names
    assert LiveEditTransformer(CFG).state_dict()["patch_embedding.weight"].shape == (CFG.dim, 32, 1, 2, 2)


def test_name_map_round_trips(models):
    ours, _ = models
    sd = ours.state_dict()
    diff = to_diffusers(sd)
    assert "blocks.0.norm2.weight" in diff and "blocks.0.attn2.to_out.0.weight" in diff and "proj_out.weight" in diff
    assert from_diffusers(diff).keys() == sd.keys()


def test_uniform_timestep_matches_diffusers(models):
    ours, oracle = models
    noisy, source, context = inputs()
    t = torch.tensor([750.0, 250.0])
    with torch.no_grad():
        got = ours(noisy, source, t, context)
        want = oracle(torch.cat([noisy, source], 1), t, context).sample
    assert got.shape == noisy.shape
    assert rel_err(got, want) < 1e-4


def test_per_frame_timesteps_match_diffusers_per_token_path(models):
    # diffusers' 2-D timestep path takes one t per token; expand ours per frame by hand.
    ours, oracle = models
    noisy, source, context = inputs()
    t = torch.tensor([[0.0, 0.0, 500.0], [250.0, 1000.0, 1000.0]])
    with torch.no_grad():
        got = ours(noisy, source, t, context)
        want = oracle(torch.cat([noisy, source], 1), t.repeat_interleave(CFG.tokens_per_frame, dim=1), context).sample
        uniform = ours(noisy, source, torch.tensor([500.0, 500.0]), context)
    assert rel_err(got, want) < 1e-4
    assert rel_err(got, uniform) > 1e-2  # the per-frame values really change the output


def test_source_channels_matter(models):
    ours, _ = models
    noisy, source, context = inputs()
    with torch.no_grad():
        a = ours(noisy, source, 500.0, context)
        b = ours(noisy, source * 0, 500.0, context)
    assert rel_err(a, b) > 1e-2


def test_rope_with_frame_offset_matches_diffusers_slice():
    rope = RotaryEmbedding(CFG.head_dim)
    total, offset, frames, h, w = 40, 29, 3, 4, 7
    cos_all, sin_all = WanRotaryPosEmbed(CFG.head_dim, CFG.patch_size, 1024)(torch.zeros(1, 1, total, 2 * h, 2 * w))
    tokens = slice(offset * h * w, (offset + frames) * h * w)
    cos, sin = rope.frames(offset, frames, h, w, device="cpu")
    # diffusers repeats each pair's value on both of its dims
    assert torch.allclose(cos, cos_all[0, tokens, 0, 0::2].float(), atol=1e-6)
    assert torch.allclose(sin, sin_all[0, tokens, 0, 1::2].float(), atol=1e-6)


def test_rope_tables_stay_on_the_cpu_under_a_device_context():
    """Benchmarks build models under `with torch.device("cuda")`; the RoPE tables must stay
    host-side regardless (here: a meta context, which would break any table built in it)."""
    with torch.device("meta"):
        rope = RotaryEmbedding(32)
    cos, sin = rope.frames(5, 2, 4, 7, device="cpu")
    assert cos.device.type == "cpu" and torch.isfinite(cos).all() and torch.isfinite(sin).all()


def test_rope_pair_split_follows_head_dim():
    assert RotaryEmbedding(128).axis_dims == (44, 42, 42)  # 22 / 21 / 21 pairs
    assert RotaryEmbedding(32).axis_dims == (12, 10, 10)


def test_frame_offset_shifts_only_time(models):
    ours, _ = models
    noisy, source, context = inputs(batch=1, frames=1)
    with torch.no_grad():
        a = ours(noisy, source, 500.0, context, frame_offset=0)
        b = ours(noisy, source, 500.0, context, frame_offset=5)
    # one frame alone: relative RoPE inside the frame is unchanged, so the offset cancels
    assert rel_err(a, b) < 1e-5


def test_rope_time_positions_go_past_the_table():
    """Streams put frames at absolute positions (engine/cache.py): time angles past Wan's
    1024-row table are computed in float64, like the table itself."""
    rope = RotaryEmbedding(32, max_positions=1024)
    position, h, w = 123_456, 4, 7
    cos, sin = rope.frames(position, 2, h, w, device="cpu")
    pairs = rope.axis_dims[0] // 2
    for frame in range(2):
        angle = (position + frame) * (1.0 / 10000.0 ** (torch.arange(0, 12, 2, dtype=torch.float64) / 12))
        tokens = slice(frame * h * w, (frame + 1) * h * w)
        assert torch.equal(cos[tokens, :pairs], angle.cos().float().expand(h * w, -1))
        assert torch.equal(sin[tokens, :pairs], angle.sin().float().expand(h * w, -1))
    # the spatial pairs do not depend on the frame's position
    near, _ = rope.frames(3, 2, h, w, device="cpu")
    assert torch.equal(cos[:, pairs:], near[:, pairs:])
    with pytest.raises(InputError, match="token grid"):
        rope.frames(0, 1, 2000, 7, device="cpu")
    with pytest.raises(InputError, match=">= 0"):
        rope.frames(-1, 1, 4, 7, device="cpu")


def test_bad_shapes_are_clear_errors(models):
    ours, _ = models
    noisy, source, context = inputs()
    with pytest.raises(InputError, match="noisy and source"):
        ours(noisy, source[:, :, :2], 500.0, context)
    with pytest.raises(InputError, match="instruction context"):
        ours(noisy, source, 500.0, context[..., :5])
    with pytest.raises(InputError, match="timesteps"):
        ours(noisy, source, torch.zeros(2, 5), context)


def test_attention_matches_reference_and_mask():
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 12, 2, 8, generator=g) for _ in range(3))
    mask = block_causal_mask([2, 1], tokens_per_frame=4)
    assert mask.shape == (12, 12) and mask[0, 7] and not mask[0, 8] and mask[8, 11]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / 8**0.5
    want = torch.einsum("bhqk,bkhd->bqhd", scores.masked_fill(~mask, float("-inf")).softmax(-1), v)
    assert torch.allclose(attention(q, k, v, mask), want, atol=1e-5)
    assert "SDPA" in attention_backend("cpu")
