"""LatentStream: chunk by chunk through the KV cache equals one block-causal forward."""

from __future__ import annotations

import pytest
import torch

from liveedit.engine.attention import block_causal_mask
from liveedit.errors import InputError
from liveedit.engine.config import SamplerConfig
from liveedit.engine.sampler import add_noise, flow_to_x0, initial_noise
from liveedit.engine.stream import LatentStream
from tiny_engine import CFG, context, sources, tiny_transformer



@pytest.fixture(scope="module")
def model():
    return tiny_transformer()


@torch.no_grad()
def block_causal_reference(model, sampler, ctx, srcs, seed):
    """The same sampler, but every forward is one pass over the whole sequence so far with a
    block-causal mask: earlier chunks as their clean x0 at t = 0, the current one at its t."""
    gen = torch.Generator().manual_seed(seed)
    done: list[torch.Tensor] = []
    for k, src in enumerate(srcs):
        batch, _, f = src.shape[:3]
        sizes = [s.shape[2] for s in srcs[: k + 1]]
        mask = block_causal_mask(sizes, CFG.tokens_per_frame)
        x = initial_noise(src.shape, gen, "cpu", torch.float32)
        for i, t in enumerate(sampler.timesteps):
            hist = sum(sizes[:-1])
            ts = torch.tensor([0.0] * hist + [t] * f).expand(batch, -1)
            flow = model(torch.cat([*done, x], 2), torch.cat(srcs[: k + 1], 2), ts, ctx, attention_mask=mask)
            x0 = flow_to_x0(x, flow[:, :, hist:], sampler.sigma(t))
            if i + 1 < len(sampler.timesteps):
                x = add_noise(x0, sampler.sigma(sampler.timesteps[i + 1]), gen)
        done.append(x0)
    return done


@pytest.mark.parametrize("batch", [1, 2])
def test_streaming_equals_block_causal_forward(model, batch):
    sampler = SamplerConfig()
    chunks = [3, 3, 2]  # a partial last chunk too
    srcs, ctx = sources(chunks, batch), context(batch)
    stream = LatentStream(model, CFG, sampler)
    stream.start(ctx, seed=11)
    got = [stream.edit_chunk(s) for s in srcs]
    want = block_causal_reference(model, sampler, ctx, srcs, seed=11)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert torch.allclose(g, w, atol=2e-5, rtol=1e-5), (g - w).abs().max()
    assert stream.frames_in_window == sum(chunks)


def test_history_is_used(model):
    """The second chunk's output depends on the first chunk's source (through the cache)."""
    srcs, ctx = sources([3, 3], 1), context(1)
    outs = []
    for first in (srcs[0], srcs[0] * 0):
        stream = LatentStream(model, CFG)
        stream.start(ctx, seed=0)
        stream.edit_chunk(first)
        outs.append(stream.edit_chunk(srcs[1]))
    assert (outs[0] - outs[1]).abs().max() > 1e-3


def test_same_seed_same_output_and_reset(model):
    srcs, ctx = sources([3, 3], 1), context(1)
    stream = LatentStream(model, CFG)
    stream.start(ctx, seed=3)
    first = [stream.edit_chunk(s) for s in srcs]
    stream.reset()
    again = [stream.edit_chunk(s) for s in srcs]
    stream.start(ctx, seed=4)
    other = stream.edit_chunk(srcs[0])
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.allclose(first[0], other)


def test_set_context_changes_following_chunks(model):
    srcs = sources([3, 3], 1)
    a, b = LatentStream(model, CFG), LatentStream(model, CFG)
    a.start(context(1, seed=1), seed=0)
    b.start(context(1, seed=1), seed=0)
    assert torch.equal(a.edit_chunk(srcs[0]), b.edit_chunk(srcs[0]))
    b.set_context(context(1, seed=2))
    assert not torch.allclose(a.edit_chunk(srcs[1]), b.edit_chunk(srcs[1]))


def test_warped_schedule_runs_and_differs(model):
    srcs, ctx = sources([3], 1), context(1)
    outs = []
    for warp in (False, True):
        stream = LatentStream(model, CFG, SamplerConfig(warp=warp), record_timings=True)
        stream.start(ctx, seed=0)
        outs.append(stream.edit_chunk(srcs[0]))
        assert len(stream.timings) == 1 and len(stream.timings[0].step_seconds) == 4
    assert not torch.allclose(*outs)


def test_bad_input_is_a_clear_error(model):
    stream = LatentStream(model, CFG)
    with pytest.raises(InputError, match="start"):
        stream.edit_chunk(sources([3], 1)[0])
    stream.start(context(2), seed=0)
    with pytest.raises(InputError, match=r"\[2, 16, 1..3, 8, 14\]"):
        stream.edit_chunk(sources([4], 2)[0])
    with pytest.raises(InputError, match=r"\[2, 16, 1..3, 8, 14\]"):
        stream.edit_chunk(sources([3], 1)[0])
    with pytest.raises(InputError, match="instruction context"):
        stream.set_context(context(1))


def test_deferred_refresh_gives_the_same_chunks_and_history(model):
    """Deferring each chunk's refresh forward to the start of the next chunk computes the
    same things in the same order: same outputs, and after refresh_pending() the same cache;
    a new instruction mid-stream first refreshes the finished chunk under the old one."""
    runs = {}
    for defer in (False, True):
        stream = LatentStream(model, CFG, SamplerConfig(context_noise=100.0), window_frames=9, defer_refresh=defer)
        stream.start(context(1), seed=3)
        outs = [stream.edit_chunk(s) for s in sources([3, 3], 1)]
        stream.set_context(context(1, seed=9))
        outs += [stream.edit_chunk(s) for s in sources([3, 3, 2], 1, seed=8)]
        stream.refresh_pending()
        runs[defer] = (outs, stream._kv.keys.clone(), stream._kv.values.clone(), stream.frames_in_window)
    for a, b in zip(runs[False][0], runs[True][0]):
        assert torch.equal(a, b)
    assert torch.equal(runs[False][1], runs[True][1]) and torch.equal(runs[False][2], runs[True][2])
    assert runs[False][3] == runs[True][3] == 9


def test_a_new_stream_takes_the_buffers_of_an_ended_one(model):
    """KV and cross-attention buffers (and the CUDA graphs captured over them) are pooled
    per model: a stream that starts after another has ended reuses its buffers, the
    instruction is copied into them in place, and the results do not depend on it."""
    import gc

    first = LatentStream(model, CFG, SamplerConfig(), window_frames=6)
    first.start(context(1), seed=3)
    expected = [first.edit_chunk(s) for s in sources([3, 3, 3], 1)]
    keys_ptr = first._kv.keys.data_ptr()
    cross = first._cross.get()[0][0]
    del first
    gc.collect()
    second = LatentStream(model, CFG, SamplerConfig(), window_frames=6)
    second.start(context(1), seed=3)
    assert second._kv.keys.data_ptr() == keys_ptr and second._cross.get()[0][0] is cross
    got = [second.edit_chunk(s) for s in sources([3, 3, 3], 1)]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
    other = LatentStream(model, CFG, SamplerConfig(), window_frames=6)  # while `second` lives
    other.start(context(1), seed=3)
    assert other._kv.keys.data_ptr() != keys_ptr


def test_idle_buffers_of_another_shape_are_dropped_when_memory_is_short(model, monkeypatch):
    """A stream of another window (or with the mask cache) that finds no idle buffers of
    its own frees the idle ones before allocating when the device lacks room for both
    (peak memory stays one stream's worth). Mask-cache streams pool their buffers too."""
    import gc

    from liveedit.engine import stream as stream_mod
    from liveedit.engine.config import MaskCacheConfig

    def run_and_end(**kw):
        stream = LatentStream(model, CFG, SamplerConfig(), **kw)
        stream.start(context(1), seed=3)
        out = [stream.edit_chunk(s) for s in sources([3, 3, 3], 1)]
        ptr = stream._kv.keys.data_ptr()
        del stream
        gc.collect()
        return out, ptr

    masked = dict(window_frames=6, mask_cache=MaskCacheConfig(keep_ratio=0.5))
    first, ptr = run_and_end(**masked)
    again, ptr_again = run_and_end(**masked)
    assert ptr_again == ptr and all(torch.equal(a, b) for a, b in zip(first, again))
    run_and_end(window_frames=9)  # room enough (the CPU): both sets stay pooled
    pooled = {(key[1], key[-1] is not None) for key in stream_mod._IDLE_BUFFERS[model]}
    assert {(6, True), (9, False)} <= pooled
    monkeypatch.setattr(stream_mod, "_free_bytes", lambda device: 0)
    run_and_end(window_frames=12)
    assert [key[1] for key in stream_mod._IDLE_BUFFERS[model]] == [12]  # the others went first


@torch.no_grad()
def test_refresh_pass_writes_the_keys_a_full_forward_writes(model):
    """A refresh forward (kv_only) stops after the last block's K/V projections; the cache
    must hold exactly what a full forward of the same chunk writes."""
    from liveedit.engine.cache import KVCache

    srcs, ctx = sources([3, 3], 1), context(1)
    caches = []
    for kv_only in (False, True):
        kv = KVCache(num_layers=CFG.num_layers, batch_size=1, tokens_per_frame=CFG.tokens_per_frame,
                     num_heads=CFG.num_heads, head_dim=CFG.head_dim, rope=model.rope, window_frames=6)
        context_kv = model.context_kv(ctx)
        for src in srcs:
            kv.begin_chunk(3)
            out = model.forward_chunk(src, src, torch.zeros(1, 3), kv, context_kv, kv_only=kv_only)
            assert (out is None) == kv_only
            kv.end_chunk()
        caches.append(kv)
    assert torch.equal(caches[0].keys, caches[1].keys) and torch.equal(caches[0].values, caches[1].values)
