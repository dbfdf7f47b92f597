"""Mask cache (engine/mask_cache.py): token selection, reuse of step-0 outputs at pruned
steps, per-stream state and frame-aligned KV bookkeeping. Tiny preset, fp32, CPU."""

from __future__ import annotations

import copy

import pytest
import torch

from liveedit.engine import mask_cache as mc
from liveedit.errors import InputError
from liveedit.engine.config import MaskCacheConfig
from liveedit.engine.mask_cache import reference_masks, select_tokens, select_tokens_reference
from liveedit.engine.stream import LatentStream
from tiny_engine import CFG, context, sources, tiny_transformer

GRID = (CFG.latent_height // 2, CFG.latent_width // 2)
T = CFG.tokens_per_frame
K = round(0.3 * T)  # 8
FIXED = dict(rule="fixed")  # the fixed-count rule: exactly K tokens per frame


@pytest.fixture(scope="module")
def model():
    return tiny_transformer()


def run(model, chunks, batch, mask_cache=None, seed=11, **kw):
    stream = LatentStream(model, CFG, mask_cache=mask_cache, **kw)
    stream.start(context(batch), seed=seed)
    return stream, [stream.edit_chunk(s) for s in sources(chunks, batch)]


def edited_in(rect, batch_rects=None, frames=3, height=8, width=14, seed=0):
    """Source latents and an 'edit' that changes only the given latent rectangle
    (rows r0:r1, cols c0:c1) per batch element."""
    rects = batch_rects or [rect]
    g = torch.Generator().manual_seed(seed)
    source = torch.randn(len(rects), 16, frames, height, width, generator=g)
    edited = source.clone()
    for b, (r0, r1, c0, c1) in enumerate(rects):
        edited[b, :, :, r0:r1, c0:c1] += 1.0 + torch.rand(16, frames, r1 - r0, c1 - c0, generator=g)
    return edited, source


def token_set(rect, width_tokens):
    r0, r1, c0, c1 = rect
    return {r * width_tokens + c for r in range(r0 // 2, r1 // 2) for c in range(c0 // 2, c1 // 2)}


# --------------------------------------------------------------------------- config
def test_bad_settings_are_clear_errors(model):
    with pytest.raises(InputError, match="keep_ratio"):
        MaskCacheConfig(keep_ratio=1.5)
    with pytest.raises(InputError, match="step 0"):
        MaskCacheConfig(pruned_steps=(0, 1))
    with pytest.raises(InputError, match="mask_cache=None"):
        MaskCacheConfig(pruned_steps=())
    with pytest.raises(InputError, match="pruned_sublayers"):
        MaskCacheConfig(pruned_sublayers=("cross_attn",))
    with pytest.raises(InputError, match="rule"):
        MaskCacheConfig(rule="ours")
    with pytest.raises(InputError, match="bucket"):
        MaskCacheConfig(bucket=-1)
    assert MaskCacheConfig().rule == "reference"  # the release's selection is the default
    with pytest.raises(InputError, match="4-step"):
        LatentStream(model, CFG, mask_cache=MaskCacheConfig(pruned_steps=(4,)))
    stream = LatentStream(model, CFG)
    with pytest.raises(InputError, match="save_masks"):
        stream.token_masks()
    assert MaskCacheConfig().tokens_kept(1560) == 468  # the reference's at-most count at 480x832


# --------------------------------------------------------------------------- token choice
@pytest.mark.parametrize(
    "rect, size",
    [
        ((4, 8, 6, 10), (8, 14)),  # bottom-middle of the tiny frame: 4 tokens per frame
        ((40, 60, 10, 50), (60, 104)),  # bottom of a 480x832 frame: 200 tokens, K = 468
    ],
)
def test_mask_covers_the_edited_rectangle(rect, size):
    edited, source = edited_in(rect, height=size[0], width=size[1])
    keep = select_tokens(edited, source, 0.3)
    tokens = (size[0] // 2) * (size[1] // 2)
    assert keep.shape == (1, 3, MaskCacheConfig().tokens_kept(tokens))
    for f in range(3):
        kept = set(keep[0, f].tolist())
        assert len(kept) == keep.shape[2]  # exactly K distinct tokens per frame
        assert token_set(rect, size[1] // 2) <= kept, f


def test_mask_stays_inside_a_rectangle_larger_than_k():
    rect = (0, 8, 0, 8)  # 16 tokens changed, K = 8: every kept token is an edited one
    edited, source = edited_in(rect)
    keep = select_tokens(edited, source, 0.3)
    for f in range(3):
        assert set(keep[0, f].tolist()) <= token_set(rect, GRID[1])


def test_batch_elements_get_their_own_masks():
    rects = [(0, 4, 0, 4), (4, 8, 10, 14)]  # top-left vs bottom-right
    edited, source = edited_in(None, batch_rects=rects)
    keep = select_tokens(edited, source, 0.3)
    for b, rect in enumerate(rects):
        for f in range(3):
            assert token_set(rect, GRID[1]) <= set(keep[b, f].tolist())
    assert not torch.equal(keep[0], keep[1])


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("rule", ["reference", "fixed"])
@pytest.mark.parametrize("sublayers", [("self_attn",), ("self_attn", "ffn")])
def test_keep_all_equals_the_uncached_engine_exactly(model, sublayers, rule, monkeypatch):
    """keep_ratio 1.0 gathers every token in order, so the pruned path does the same
    arithmetic on the same shapes as the plain one: bitwise equal, cache included."""
    chunks = [3, 3, 2]
    plain, want = run(model, chunks, batch=2)
    gathers = []
    original = mc._ChunkPlan.gather
    monkeypatch.setattr(mc._ChunkPlan, "gather", lambda plan, x: gathers.append(x.shape) or original(plan, x))
    cached, got = run(model, chunks, batch=2,
                      mask_cache=MaskCacheConfig(keep_ratio=1.0, pruned_sublayers=sublayers, rule=rule))
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert torch.equal(cached._kv.keys, plain._kv.keys) and torch.equal(cached._kv.values, plain._kv.values)
    assert cached.last_reused_fraction == 0.0
    # The pruned path really ran: chunks 1 and 2, steps 1 and 2, every block and sub-layer.
    assert len(gathers) == 2 * 2 * len(model.blocks) * len(sublayers)


class Spy:
    """Records what the mask cache hands back to each block, and what the sub-layer
    modules themselves compute."""

    def __init__(self, model, monkeypatch):
        self.reuse: list[tuple[str, int, bool, torch.Tensor]] = []
        self.module: list[tuple[str, int, torch.Tensor]] = []
        for name in ("self_attn", "ffn"):
            original = getattr(mc._BlockReuse, name)

            def wrapped(reuse, *args, _name=name, _original=original):
                y = _original(reuse, *args)
                self.reuse.append((_name, reuse.layer, reuse.pruning, y))
                return y

            monkeypatch.setattr(mc._BlockReuse, name, wrapped)
        for layer, block in enumerate(model.blocks):
            for name in ("self_attn", "ffn"):
                module = getattr(block, name)
                self._hooks = getattr(self, "_hooks", []) + [
                    module.register_forward_hook(lambda m, a, y, n=name, i=layer: self.module.append((n, i, y)))
                ]

    def close(self):
        for h in self._hooks:
            h.remove()


def test_pruning_every_token_reproduces_step_0_outputs(model, monkeypatch):
    spy = Spy(model, monkeypatch)
    try:
        stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(keep_ratio=0.0, pruned_sublayers=("self_attn", "ffn")))
        stream.start(context(1), seed=0)
        srcs = sources([3, 3], 1)
        stream.edit_chunk(srcs[0])
        assert not spy.reuse  # chunk 0 computes everything, no hooks
        spy.module.clear()
        stream.edit_chunk(srcs[1])
    finally:
        spy.close()
    layers = len(model.blocks)
    recorded = {(n, i): y for n, i, pruning, y in spy.reuse if not pruning}
    pruned = [(n, i, y) for n, i, pruning, y in spy.reuse if pruning]
    assert len(recorded) == 2 * layers and len(pruned) == 2 * 2 * layers  # steps 1 and 2
    for name, layer, y in pruned:
        assert torch.equal(y, recorded[name, layer])
    # Nothing was computed at the pruned steps: modules ran at steps 0, 3 and the refresh only
    # (whose last block stops after its K/V projections: no self-attention or FFN output).
    assert len(spy.module) == 3 * 2 * layers - 2
    assert stream.last_reused_fraction == 1.0


def test_pruned_steps_compute_kept_tokens_and_reuse_the_rest(model, monkeypatch):
    """Two streams in one batch: each element reuses step-0 outputs exactly where its
    own mask says, and its kept tokens are freshly computed from kept tokens only."""
    spy = Spy(model, monkeypatch)
    q_inputs = []
    hook = model.blocks[0].self_attn.q.register_forward_hook(lambda m, a, y: q_inputs.append(a[0].shape))
    try:
        stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(save_masks=True, **FIXED))
        stream.start(context(2), seed=0)
        srcs = sources([3, 3], 2)
        stream.edit_chunk(srcs[0])
        spy.module.clear(), q_inputs.clear()
        stream.edit_chunk(srcs[1])
    finally:
        hook.remove()
        spy.close()
    masks = [stream.token_masks(b)[1].flatten() == 255 for b in range(2)]  # [3·28] per element
    assert not torch.equal(masks[0], masks[1])
    assert all(int(m.sum()) == 3 * K for m in masks)
    # q projection: all tokens at step 0, 3 and refresh; 3·K tokens at steps 1 and 2.
    assert q_inputs == [(2, 3 * T, CFG.dim), (2, 3 * K, CFG.dim), (2, 3 * K, CFG.dim), (2, 3 * T, CFG.dim), (2, 3 * T, CFG.dim)]
    step0 = {i: y for n, i, pruning, y in spy.reuse if n == "self_attn" and not pruning}
    kept_outputs = [(i, y) for n, i, y in spy.module if n == "self_attn" and y.shape[1] == 3 * K]
    pruned = [(i, y) for n, i, pruning, y in spy.reuse if n == "self_attn" and pruning]
    assert len(pruned) == len(kept_outputs) == 2 * len(model.blocks)
    for (layer, y), (same_layer, kept_y) in zip(pruned, kept_outputs):
        assert layer == same_layer
        for b, keep in enumerate(masks):
            assert torch.equal(y[b, ~keep], step0[layer][b, ~keep])
            assert torch.equal(y[b, keep], kept_y[b])  # kept rows in raster order
            assert not torch.allclose(y[b, keep], step0[layer][b, keep])
    assert stream.last_reused_fraction == pytest.approx(1 - K / T)


# --------------------------------------------------------------------------- stream state
def test_masks_saved_per_chunk_come_from_the_previous_chunk(model):
    srcs = sources([3, 3, 2], 1)
    stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(save_masks=True, **FIXED))
    stream.start(context(1), seed=1)
    outs = [stream.edit_chunk(s) for s in srcs]
    masks = stream.token_masks()
    assert [m.shape for m in masks] == [(3, *GRID), (3, *GRID), (2, *GRID)]
    assert all(m.dtype == torch.uint8 for m in masks)
    assert bool((masks[0] == 255).all())
    for k in (1, 2):
        want = torch.zeros(3, T, dtype=torch.uint8).scatter_(1, select_tokens(outs[k - 1], srcs[k - 1], 0.3)[0], 255)
        assert torch.equal(masks[k], want[: masks[k].shape[0]].view(-1, *GRID))


def test_no_state_survives_start_or_reset(model):
    srcs = sources([3, 3], 1)
    config = MaskCacheConfig(save_masks=True, **FIXED)
    stream = LatentStream(model, CFG, mask_cache=config)
    stream.start(context(1), seed=2)
    first = [stream.edit_chunk(s) for s in srcs]
    assert stream.last_reused_fraction == pytest.approx(1 - K / T)

    stream.reset()
    assert stream.last_reused_fraction is None and stream.token_masks() == []
    again = [stream.edit_chunk(stream_src) for stream_src in srcs]
    assert all(torch.equal(a, b) for a, b in zip(first, again))

    # A new stream (other batch size, other seed): its first chunk computes every token and
    # equals a stream without the mask cache.
    stream.start(context(2), seed=3)
    got = stream.edit_chunk(sources([3], 2)[0])
    assert stream.last_reused_fraction == 0.0 and len(stream.token_masks()) == 1
    _, want = run(model, [3], batch=2, seed=3)
    assert torch.equal(got, want[0])
    fresh, fresh_out = run(model, [3, 3], batch=1, seed=2, mask_cache=config)
    assert all(torch.equal(a, b) for a, b in zip(first, fresh_out))


@pytest.mark.parametrize("keep_ratio", [1.0, 0.3])
def test_rolling_window_stays_frame_aligned(model, keep_ratio):
    """Window of 9 frames with 3 sinks, 5 chunks (5 frames evicted in two evictions). After each chunk the
    cache holds exactly what a full clean forward of that chunk's x0 writes on top of
    the previous history, and its bookkeeping equals a run without the mask cache."""
    window = dict(window_frames=9, sink_frames=3)
    chunks = [3, 3, 3, 3, 2]
    plain, _ = run(model, chunks, batch=1, **window)
    stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(keep_ratio=keep_ratio), **window)
    stream.start(context(1), seed=11)
    ctx_kv = stream._cross.get()
    for src in sources(chunks, 1):
        before = copy.deepcopy(stream._kv)
        x0 = stream.edit_chunk(src)
        before.begin_chunk(src.shape[2])
        model.forward_chunk(x0, src, torch.zeros(1, src.shape[2]), before, ctx_kv)
        before.end_chunk()
        used = stream._kv.frames * T
        assert (stream._kv.frames, stream._kv.evicted_frames) == (before.frames, before.evicted_frames)
        assert torch.equal(stream._kv.keys[:, :, :used], before.keys[:, :, :used])
        assert torch.equal(stream._kv.values[:, :, :used], before.values[:, :, :used])
    assert (stream._kv.frames, stream._kv.evicted_frames) == (plain._kv.frames, plain._kv.evicted_frames) == (9, 5)
    if keep_ratio == 1.0:
        assert torch.equal(stream._kv.keys, plain._kv.keys) and torch.equal(stream._kv.values, plain._kv.values)


def test_editor_reports_the_reused_fraction():
    import numpy as np

    from liveedit.engine.editor import EditorModels, StreamingEditor
    from liveedit.engine.presets import get_preset

    models = EditorModels.random(get_preset("tiny"), seed=0)
    editor = StreamingEditor(models, instruction="snow", mask_cache=MaskCacheConfig(**FIXED))
    frames = [np.full((64, 112, 3), i * 10, dtype=np.uint8) for i in range(21)]
    assert len(list(editor.edit(frames))) == 21
    assert [s.reused_token_fraction for s in editor.stats] == [0.0, pytest.approx(1 - K / T)]
    plain = StreamingEditor(models, instruction="snow")
    list(plain.edit(frames[:9]))
    assert plain.stats[0].reused_token_fraction is None


# --------------------------------------------------------------------------- the reference rule
# A hand-worked example of the released selection, keep ratio 0.5 on a 4x6 latent (24
# pixels, 12 kept per frame; 2x3 tokens of 2x2 pixels). Squared change per pixel:
FRAME_0 = [[9, 9, 9, 9, 0, 0],
           [9, 9, 9, 0, 0, 0],
           [5, 5, 0, 0, 5, 5],
           [5, 5, 0, 0, 5, 0]]
FRAME_1 = [[0, 0, 0, 0, 0, 0],
           [0, 0, 8, 8, 8, 8],
           [0, 0, 8, 8, 8, 8],
           [7, 7, 7, 7, 0, 0]]
# Frame 0: the 12th largest value is 5 and 14 pixels are >= 5 (ties keep more); frame 1
# keeps exactly 12. Step 3 cuts frame 0 to its first 12 kept pixels in raster order,
# dropping (3, 1) and (3, 4):
PIXELS_0 = [[1, 1, 1, 1, 0, 0],
            [1, 1, 1, 0, 0, 0],
            [1, 1, 0, 0, 1, 1],
            [1, 0, 0, 0, 0, 0]]
PIXELS_1 = [[0, 0, 0, 0, 0, 0],
            [0, 0, 1, 1, 1, 1],
            [0, 0, 1, 1, 1, 1],
            [1, 1, 1, 1, 0, 0]]
# 2x2 pooling, > 0.5: frame 0 keeps tokens 0 (4/4), 1 (3/4) and 3 (3/4, 4/4 before the
# cut); token 5 has 2/4 (3/4 before the cut): dropped. Frame 1 keeps only token 4 (4/4);
# tokens 1, 2, 3 and 5 have 2/4. Step 5 cuts both frames to 1 token, lowest index first.
TOKENS_0, TOKENS_1 = [1, 1, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0]
SELECTED = [[0], [4]]


def hand_worked_latents():
    change = torch.tensor([FRAME_0, FRAME_1], dtype=torch.float32)  # [F, H, W]
    source = torch.zeros(1, 2, 2, 4, 6)
    edited = change.sqrt().expand(1, 2, 2, 4, 6).clone()  # mean over channels of edited² = change
    return edited, source


def test_reference_rule_on_a_hand_worked_example():
    edited, source = hand_worked_latents()
    pixels, tokens = reference_masks(edited, source, 0.5)
    assert pixels[0].view(2, 4, 6).int().tolist() == [PIXELS_0, PIXELS_1]
    assert tokens[0].int().tolist() == [[1, 0, 0, 0, 0, 0], TOKENS_1]  # TOKENS_0 cut to its lowest one
    assert select_tokens_reference(edited, source, 0.5).tolist() == [SELECTED]
    # Without step 5's cut frame 0 would keep TOKENS_0: check the pooling on its own.
    pooled = torch.nn.functional.avg_pool2d(torch.tensor(PIXELS_0, dtype=torch.float32)[None, None], 2)
    assert (pooled > 0.5).flatten().int().tolist() == TOKENS_0


def test_reference_rule_keeps_at_most_the_fixed_count_and_the_same_count_per_frame():
    edited, source = edited_in((2, 8, 4, 12))  # a 6x8-pixel change: 12 tokens, K = 8
    keep = select_tokens_reference(edited, source, 0.3)
    assert keep.shape[:2] == (1, 3) and 0 < keep.shape[2] <= K
    for f in range(3):
        assert set(keep[0, f].tolist()) <= token_set((2, 8, 4, 12), GRID[1])
        assert keep[0, f].tolist() == sorted(keep[0, f].tolist())


def test_mask_cache_uses_the_reference_rule_by_default(model):
    srcs = sources([3, 3, 3], 1)
    stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(save_masks=True))
    stream.start(context(1), seed=1)
    outs = [stream.edit_chunk(s) for s in srcs]
    for k in (1, 2):
        chosen = select_tokens_reference(outs[k - 1], srcs[k - 1], 0.3)[0]
        want = torch.zeros(3, T, dtype=torch.uint8).scatter_(1, chosen, 255)
        assert torch.equal(stream.token_masks()[k], want.view(-1, *GRID))
    assert stream.last_reused_fraction == pytest.approx(1 - chosen.shape[1] / T)


@pytest.mark.parametrize("sublayers", [("self_attn",), ("self_attn", "ffn")])
def test_bucketed_token_count_is_bitwise_equal_to_the_exact_count(model, sublayers, monkeypatch):
    """Bucketing pads each frame's kept rows up to a multiple of the bucket; the padded rows
    are computed and thrown away and attention sees only the real keys, so the result is
    bitwise the unpadded one. Padded rows must really have been computed. (Keep ratio
    0.6 keeps >= 12 real rows per pruned step: the CPU's GEMM gives row-for-row identical
    results for any row count from 12 up, but below that it switches kernels.)"""
    rows = []  # (rows per frame, rows gathered) of every gather
    original = mc._ChunkPlan.gather
    monkeypatch.setattr(mc._ChunkPlan, "gather", lambda plan, x: rows.append((plan.width, plan.kept.shape[1])) or original(plan, x))
    chunks = [3, 3, 3, 2]
    settings = dict(keep_ratio=0.6, pruned_sublayers=sublayers)
    exact, want = run(model, chunks, batch=1, mask_cache=MaskCacheConfig(bucket=0, **settings))
    exact_rows = list(rows)
    assert min(n for _, n in exact_rows) >= 12
    rows.clear()
    padded, got = run(model, chunks, batch=1, mask_cache=MaskCacheConfig(bucket=7, **settings))
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert torch.equal(padded._kv.keys, exact._kv.keys) and torch.equal(padded._kv.values, exact._kv.values)
    assert len(rows) == len(exact_rows)
    assert all(width % 7 == 0 or width == T for width, _ in rows)
    assert all(p >= e for (_, p), (_, e) in zip(rows, exact_rows))
    assert any(p > e for (_, p), (_, e) in zip(rows, exact_rows)), "nothing was padded"


def test_unbucketed_pruned_steps_have_no_graph_kind(model):
    stream = LatentStream(model, CFG, mask_cache=MaskCacheConfig(bucket=0))
    stream.start(context(1), seed=0)
    for s in sources([3, 3], 1):
        stream.edit_chunk(s)
    plan = mc._ChunkPlan(stream._mask, stream._kv, torch.zeros(1, 3, dtype=torch.long), width=1)
    assert mc._BlockReuse(plan, 0, pruning=True).graph_kind is None
    assert mc._BlockReuse(plan, 0, pruning=False).graph_kind == "record"
    bucketed = LatentStream(model, CFG, mask_cache=MaskCacheConfig())._mask
    plan = mc._ChunkPlan(bucketed, stream._kv, torch.zeros(1, 3, dtype=torch.long), width=32)
    assert mc._BlockReuse(plan, 0, pruning=True).graph_kind == ("prune", 32)
