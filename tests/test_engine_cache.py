"""KV cache: rolling window with sinks and window-relative RoPE."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from liveedit.engine.cache import KVCache
from liveedit.engine.errors import InputError
from liveedit.engine.stream import LatentStream
from liveedit.engine.transformer import TRANSFORMER_PRESETS, LiveEditTransformer, RotaryEmbedding

CFG = TRANSFORMER_PRESETS["tiny"]


def make_cache(window=9, sinks=3, tokens=2, layers=1, batch=1):
    return KVCache(
        num_layers=layers, batch_size=batch, tokens_per_frame=tokens, num_heads=2, head_dim=32,
        rope=RotaryEmbedding(32), window_frames=window, sink_frames=sinks,
    )


def test_eviction_rerotates_exactly():
    """After eviction every kept frame's key equals its un-rotated key rotated afresh at
    its new slot; sink frames stay put; values move with their keys."""
    cache, rope, tokens = make_cache(), RotaryEmbedding(32), 2
    g = torch.Generator().manual_seed(0)
    raw_k = {}  # frame number -> un-rotated keys
    raw_v = {}
    slot_of = {}
    for chunk in range(5):  # 15 frames through a 9-frame window
        start = cache.begin_chunk(3)
        k = torch.randn(1, 3 * tokens, 2, 32, generator=g)
        v = torch.randn(1, 3 * tokens, 2, 32, generator=g)
        cos, sin = rope.frames(start, 3, 1, tokens, device="cpu")
        cache.store(0, RotaryEmbedding.apply(k, cos, sin), v)
        cache.end_chunk()
        for j in range(3):
            raw_k[3 * chunk + j] = k[:, j * tokens : (j + 1) * tokens]
            raw_v[3 * chunk + j] = v[:, j * tokens : (j + 1) * tokens]
        # sinks: frames 0-2 in slots 0-2; the rest: the most recent frames after them
        kept = [0, 1, 2] + list(range(3 * chunk + 3))[3:][-(9 - 3):]
        slot_of = {frame: slot for slot, frame in enumerate(kept[: cache.frames])}
    assert cache.frames == 9 and cache.evicted_frames == 6
    for frame, slot in slot_of.items():
        cos, sin = rope.frames(slot, 1, 1, tokens, device="cpu")
        want = RotaryEmbedding.apply(raw_k[frame], cos, sin)
        got = cache.keys[0, :, slot * tokens : (slot + 1) * tokens]
        assert torch.allclose(got, want, atol=1e-5), (frame, slot)
        assert torch.equal(cache.values[0, :, slot * tokens : (slot + 1) * tokens], raw_v[frame])


def test_window_must_hold_sinks_and_a_chunk():
    with pytest.raises(InputError, match="sink"):
        make_cache(window=5, sinks=3)
    with pytest.raises(InputError, match="RoPE"):
        make_cache(window=2000, sinks=0)


@torch.no_grad()
def test_model_keys_after_eviction_equal_fresh_keys_at_rebased_slot():
    """Layer-0 keys depend only on the frame itself, so a frame's cached key after it moved
    down must equal the key the model writes when that frame is run at the new slot."""
    torch.manual_seed(0)
    model = LiveEditTransformer(CFG).eval()
    g = torch.Generator().manual_seed(1)
    ctx = torch.randn(1, 4, CFG.text_dim, generator=g)
    stream = LatentStream(model, CFG, window_frames=6, sink_frames=0)
    stream.start(ctx, seed=0)
    srcs = [torch.randn(1, 16, 3, CFG.latent_height, CFG.latent_width, generator=g) for _ in range(3)]
    x0 = [stream.edit_chunk(s) for s in srcs]  # third chunk evicts the first; second moves 3 -> 0
    kv = stream._kv
    assert kv.evicted_frames == 3

    fresh = LatentStream(model, CFG, window_frames=6, sink_frames=0)
    fresh.start(ctx, seed=0)
    fresh._kv.begin_chunk(3)  # slot 0
    model.forward_chunk(x0[1], srcs[1], torch.zeros(1, 3), fresh._kv, fresh._cross.get())
    n = 3 * CFG.tokens_per_frame
    assert torch.allclose(kv.keys[0, :, :n], fresh._kv.keys[0, :, :n], atol=1e-5)
    assert torch.allclose(kv.values[0, :, :n], fresh._kv.values[0, :, :n], atol=1e-6)


@pytest.mark.slow
@torch.no_grad()
def test_stream_runs_past_the_rope_table():
    """Sink 3 + window 6 frames, > 1100 latent frames (> the 1024-row RoPE table): positions
    stay window-relative, the output stays finite. One token per frame keeps it fast."""
    cfg = dataclasses.replace(CFG, latent_height=2, latent_width=2, num_layers=1)
    torch.manual_seed(0)
    model = LiveEditTransformer(cfg).eval()
    stream = LatentStream(model, cfg, window_frames=9, sink_frames=3)
    stream.start(torch.randn(1, 4, cfg.text_dim), seed=0)
    source = torch.randn(1, 16, 3, 2, 2)
    frames = 0
    while frames < 1110:
        out = stream.edit_chunk(source)
        frames += 3
    assert torch.isfinite(out).all()
    assert stream.frames_in_window == 9
    assert stream._kv.evicted_frames == frames - 9
