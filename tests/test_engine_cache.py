"""KV cache: a rolling window in a ring of slots, keys at absolute RoPE positions."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from liveedit.engine.cache import KVCache
from liveedit.errors import InputError
from liveedit.engine.config import TRANSFORMER_PRESETS, SamplerConfig
from liveedit.engine.sampler import add_noise, flow_to_x0, initial_noise
from liveedit.engine.stream import LatentStream
from liveedit.engine.transformer import LiveEditTransformer, RotaryEmbedding

CFG = TRANSFORMER_PRESETS["tiny"]


def make_cache(window=9, sinks=3, tokens=2, layers=1, batch=1):
    return KVCache(
        num_layers=layers, batch_size=batch, tokens_per_frame=tokens, num_heads=2, head_dim=32,
        rope=RotaryEmbedding(32), window_frames=window, sink_frames=sinks,
    )


def test_ring_keeps_keys_where_they_were_written():
    """15 frames through a 9-frame window with 3 sinks: kept frames keep the keys written at
    their absolute positions (copied, never re-rotated), history + chunk fill one prefix of
    the buffer, sinks sit right before the oldest kept frame, values travel with keys."""
    cache, rope, tokens = make_cache(), RotaryEmbedding(32), 2
    g = torch.Generator().manual_seed(0)
    raw_k, raw_v = {}, {}  # frame number -> un-rotated keys, values
    for chunk in range(5):
        position = cache.begin_chunk(3)
        assert position == 3 * chunk
        assert cache.chunk_start == cache.frames  # the chunk goes right after the history
        k = torch.randn(1, 3 * tokens, 2, 32, generator=g)
        v = torch.randn(1, 3 * tokens, 2, 32, generator=g)
        cos, sin = rope.frames(position, 3, 1, tokens, device="cpu")
        cache.store(0, RotaryEmbedding.apply(k, cos, sin), v)
        cache.end_chunk()
        for j in range(3):
            raw_k[3 * chunk + j] = k[:, j * tokens : (j + 1) * tokens]
            raw_v[3 * chunk + j] = v[:, j * tokens : (j + 1) * tokens]
    assert cache.frames == 9 and cache.evicted_frames == 6
    slots = sorted(slot for slot, _ in cache.history)
    assert slots == list(range(9))  # one prefix
    kept = [position for _, position in cache.history[3:]]
    assert kept == list(range(9, 15))  # the newest six frames
    sinks = [position for _, position in cache.history[:3]]
    assert sinks == [6, 7, 8]  # right before frame 9
    for i, (slot, position) in enumerate(cache.history):
        frame = i if i < 3 else position  # sinks are frames 0-2, now placed at 6-8
        cos, sin = rope.frames(position, 1, 1, tokens, device="cpu")
        want = RotaryEmbedding.apply(raw_k[frame], cos, sin)
        got = cache.keys[0, :, slot * tokens : (slot + 1) * tokens]
        if i < 3:
            assert torch.allclose(got, want, atol=1e-5), (frame, slot)
        else:
            assert torch.equal(got, want), (frame, slot)  # bitwise: never re-rotated
        assert torch.equal(cache.values[0, :, slot * tokens : (slot + 1) * tokens], raw_v[frame])


def test_sink_rotation_does_not_accumulate():
    """Sinks are re-rotated from their first keys on every eviction: after 300 evictions they
    are as close to a fresh rotation as after one."""
    cache, rope, tokens = make_cache(window=6, sinks=3), RotaryEmbedding(32), 2
    g = torch.Generator().manual_seed(1)
    sink_raw = torch.randn(1, 3 * tokens, 2, 32, generator=g, dtype=torch.float64).float()
    for chunk in range(301):
        position = cache.begin_chunk(3)
        k = sink_raw if chunk == 0 else torch.randn(1, 3 * tokens, 2, 32, generator=g)
        cos, sin = rope.frames(position, 3, 1, tokens, device="cpu")
        cache.store(0, RotaryEmbedding.apply(k, cos, sin), torch.zeros_like(k))
        cache.end_chunk()
    base = cache.history[0][1]
    assert base == 897 and cache.evicted_frames == 897  # window 6 = 3 sinks + the newest chunk
    cos, sin = rope.frames(base, 3, 1, tokens, device="cpu")
    want = RotaryEmbedding.apply(sink_raw, cos, sin)
    assert (cache.keys[0, :, : 3 * tokens] - want).abs().max() < 1e-5


def test_size_bytes_is_what_the_cache_allocates():
    cache = make_cache(window=9, sinks=3, tokens=2, layers=2, batch=3)
    allocated = sum(t.numel() * t.element_size() for t in (cache.keys, cache.values))
    assert KVCache.size_bytes(num_layers=2, batch_size=3, tokens_per_frame=2, num_heads=2, head_dim=32,
                              window_frames=9, dtype=torch.float32, sink_frames=3) == allocated


def test_window_must_hold_sinks_and_a_chunk():
    with pytest.raises(InputError, match="sink"):
        make_cache(window=5, sinks=3)
    with pytest.raises(InputError, match="does not fit"):
        make_cache(window=9, sinks=3).begin_chunk(7)


class WindowOracle:
    """The rolling window written the obvious way, to check the ring against: history kept
    as per-frame un-rotated keys in a list, and on every forward all of them rotated afresh
    at window-relative positions (sinks 0…s−1, then the kept frames, then the chunk)."""

    def __init__(self, model, window, sinks):
        self.model, self.window, self.sinks = model, window, sinks
        self.rope, self.t = model.rope, model.config.tokens_per_frame
        self.history: list[tuple[list, list]] = []  # per frame: per-layer raw keys, values
        self.chunk: list | None = None

    def _rotate(self, k, first, frames, sign=1):
        cos, sin = self.rope.frames(first, frames, 1, self.t, device="cpu")
        return RotaryEmbedding.apply(k, cos, sign * sin)

    def forward(self, x, source, t, context_kv):
        frames = x.shape[2]
        if len(self.history) + frames > self.window:  # evict the oldest after the sinks
            del self.history[self.sinks : self.sinks + len(self.history) + frames - self.window]
        position = len(self.history)
        self.chunk = [None] * len(self.model.blocks)

        def store(layer, k, v):
            raw = self._rotate(k, position, frames, sign=-1)  # undo the chunk's rotation
            self.chunk[layer] = (raw, v)
            keys = [self._rotate(h[0][layer], p, 1) for p, h in enumerate(self.history)] + [k]
            return torch.cat(keys, 1), torch.cat([h[1][layer] for h in self.history] + [v], 1)

        stores = [lambda k, v, i=i: store(i, k, v) for i in range(len(self.model.blocks))]
        return self.model._run(x, source, t, context_kv, position, stores=stores)

    def keep_chunk(self):
        t = self.t
        frames = self.chunk[0][0].shape[1] // t
        for f in range(frames):
            span = slice(f * t, (f + 1) * t)
            self.history.append(([k[:, span] for k, _ in self.chunk], [v[:, span] for _, v in self.chunk]))


@pytest.mark.parametrize("window,sinks,chunks", [(6, 0, [3, 3, 3, 2, 3, 1, 3]), (9, 3, [3] * 6 + [2, 1, 3])])
@torch.no_grad()
def test_stream_past_the_window_equals_window_relative_attention(window, sinks, chunks):
    """A stream through the ring cache gives the edits of the obvious window-relative cache,
    chunk after chunk past many evictions (partial chunks included)."""
    torch.manual_seed(0)
    model = LiveEditTransformer(CFG).eval()
    g = torch.Generator().manual_seed(1)
    ctx = torch.randn(1, 4, CFG.text_dim, generator=g)
    srcs = [torch.randn(1, 16, f, CFG.latent_height, CFG.latent_width, generator=g) for f in chunks]
    sampler = SamplerConfig()
    stream = LatentStream(model, CFG, sampler, window_frames=window, sink_frames=sinks)
    stream.start(ctx, seed=5)
    got = [stream.edit_chunk(s) for s in srcs]

    oracle, context_kv = WindowOracle(model, window, sinks), model.context_kv(ctx)
    gen = torch.Generator().manual_seed(5)
    for src, edited in zip(srcs, got):
        x = initial_noise(src.shape, gen, "cpu", torch.float32)
        for i, t in enumerate(sampler.timesteps):
            ts = torch.full((1, src.shape[2]), t)
            x0 = flow_to_x0(x, oracle.forward(x, src, ts, context_kv), sampler.sigma(t))
            if i + 1 < len(sampler.timesteps):
                x = add_noise(x0, sampler.sigma(sampler.timesteps[i + 1]), gen)
        oracle.forward(x0, src, torch.zeros(1, src.shape[2]), context_kv)  # clean refresh
        oracle.keep_chunk()
        assert torch.allclose(edited, x0, atol=1e-4, rtol=1e-4), (edited - x0).abs().max()
    assert stream._kv.evicted_frames == sum(chunks) - len(oracle.history) > 0


@pytest.mark.slow
@torch.no_grad()
def test_stream_runs_past_the_rope_table():
    """Sink 3 + window 6 frames, > 1100 latent frames (> the 1024-row RoPE table): positions
    are absolute and unbounded, the output stays finite. One token per frame keeps it fast."""
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
    assert stream._kv.position == frames
