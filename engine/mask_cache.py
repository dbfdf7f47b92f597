"""LiveEdit's AR-oriented mask cache ("internal token pruning"), as a stream option. Its
settings are ``MaskCacheConfig`` in engine/config.py.

What it does (facts: ../shared/spec/liveedit-model.md §4). When a chunk is finished, the
places where the edit changed the picture most (its x0 latent vs its source latent) pick
the tokens the *next* chunk computes at its pruned denoising steps (1 and 2 of 4 by
default). At those steps every other token reuses the output its block's sub-layer gave
at the last full step of the same chunk (step 0): the reference's ``prev_step`` fill. Only
self-attention is pruned by default; the FFN can be added. Chunk 0 of a stream, every
full step and the clean refresh pass compute every token.

Two token rules (``MaskCacheConfig.rule``):

``"reference"`` (the default): the released code's rule, step for step
(pipeline/causal_inference.py and wan/modules/causal_model.py of the release):
  1. importance = squared difference x0 − source, averaged over the 16 channels, then
     min–max normalised over the whole chunk: (d − min) / (max − min + 1e-8);
  2. per latent frame, n = H·W latent pixels, keep = max(1, int(n · keep_ratio)); the
     threshold is the (n − keep + 1)-th smallest importance (torch.kthvalue) and every
     pixel at or above it is kept, so ties may keep more;
  3. each frame's kept pixels, in raster order, are cut to the smallest count over the
     chunk's frames, lowest index first;
  4. the pixel mask is 2x2 average-pooled; a token is kept when more than half of its
     four pixels are (pooled > 0.5, i.e. at least 3);
  5. each frame's kept tokens are cut to the smallest count over the frames, lowest
     index first (a bias toward the top of the picture, as released).
  So every frame keeps the same, data-dependent number of tokens K' <= int(0.3·n)/4 +
  a little (at 480x832 at most ~468 of 1560, usually fewer). Reading K' costs one host
  synchronisation per chunk. Where this differs from the release, on purpose: the
  release used batch element 0's mask for every sample, here each element keeps its own
  tokens (normalised over its own chunk), cut to the smallest count over the batch too;
  and the mask belongs to one stream (cleared by its start/reset), not to the process.

  CUDA graphs need fixed shapes, so by default K' is rounded up to a bucket
  (``bucket`` tokens per frame, 32): the pruned step gathers K'_b >= K' rows per frame,
  all real rows first and then copies of a real token as padding. Padded rows go through
  the same per-row arithmetic (norms, projections, RoPE, attention on CUDA) and are
  discarded: their outputs are scattered to a spare row, and attention sees only the real
  keys (on CUDA the key count is a device tensor turned into a key mask, which is within
  rounding of the unpadded attention but not bitwise; on the CPU, where no graphs are
  recorded, keys and query rows are sliced on the host, because its kernels switch
  algorithms for a few leftover rows). On the CPU the
  result is bitwise equal to ``bucket=0`` (tests; from 12 real rows up, below which the
  CPU's GEMM itself changes kernels); on CUDA `liveedit bench --what check-mask-buckets`
  measures it. ``bucket=0`` computes exactly K' rows and runs pruned steps eagerly.

``"fixed"`` (this project's first rule, an option): every frame keeps exactly
K = round(keep_ratio · T) tokens (at least 1 when keep_ratio > 0), the K best by
    (fraction of the token's pixels among the frame's top round(keep_ratio·H·W)) +
    0.2 · (its mean importance),
so tokens passing the reference's "> 0.5 of the patch" test always rank first and
importance breaks ties. Fixed shapes, no host synchronisation; it computes up to
468/K' times more queries than the reference at its pruned steps.

Chunk k uses chunk k−1's mask frame by frame (no motion compensation, as released); a
chunk longer than the previous one computes every token.

KV cache: a pruned step writes the kept tokens' keys/values (RoPE'd at their own
positions) at the start of the chunk's own slots and attends over [history + kept
keys]. Attention does not care about key order, and the chunk's slots are scratch until
the next full step and the refresh pass rewrite them whole, so history is never touched
and the cache's frame bookkeeping (eviction, sinks) is exactly that of a run without the
mask cache. (The released code shrank its cache indices at pruned steps and evicted
non-frame-aligned history in rolling-window mode.)
"""

from __future__ import annotations

from collections import deque
from functools import partial

import torch
import torch.nn.functional as F

from liveedit.engine.config import MaskCacheConfig, tokens_kept
from liveedit.errors import InputError

# Step 3's weight on mean importance: below the 0.25 step between "hot" fractions.
_IMPORTANCE_WEIGHT = 0.2


def _latent_shape(edited: torch.Tensor, source: torch.Tensor, patch: tuple[int, int]) -> tuple[int, int, int, int]:
    """(batch, frames, height, width) of two latents [B, C, F, H, W] that a token rule compares."""
    if edited.shape != source.shape or edited.ndim != 5:
        raise InputError(f"edited and source latents must be [B, C, F, H, W] of one shape, got "
                         f"{list(edited.shape)} and {list(source.shape)}")
    batch, _, frames, height, width = edited.shape
    if height % patch[0] or width % patch[1]:
        raise InputError(f"latent size {height}x{width} is not a multiple of the patch {patch[0]}x{patch[1]}")
    return batch, frames, height, width


def select_tokens(
    edited: torch.Tensor, source: torch.Tensor, keep_ratio: float, patch: tuple[int, int] = (2, 2)
) -> torch.Tensor:
    """The tokens worth computing next chunk: edited x0 and source latents ``[B, C, F, H, W]``
    → indices ``[B, F, K]`` (int64, ascending) into each frame's ``(H/ph)·(W/pw)`` tokens
    in raster order. The rule is in the module docstring. Tensor ops only, no host sync."""
    batch, frames, height, width = _latent_shape(edited, source, patch)
    ph, pw = patch
    importance = (edited.float() - source.float()).pow(2).mean(1)  # [B, F, H, W]
    lo = importance.flatten(1).amin(1).view(batch, 1, 1, 1)
    hi = importance.flatten(1).amax(1).view(batch, 1, 1, 1)
    importance = (importance - lo) / (hi - lo).clamp_min(torch.finfo(torch.float32).tiny)

    pixels = importance.flatten(2)  # [B, F, H·W]
    hot_count = round(keep_ratio * height * width)
    hot = torch.zeros_like(pixels).scatter_(2, pixels.topk(hot_count, dim=2).indices, 1.0)

    def pooled(t: torch.Tensor) -> torch.Tensor:  # [B, F, H·W] -> per token mean [B, F, T]
        return F.avg_pool2d(t.view(batch * frames, 1, height, width), (ph, pw)).view(batch, frames, -1)

    score = pooled(hot) + _IMPORTANCE_WEIGHT * pooled(pixels)
    return score.topk(tokens_kept(keep_ratio, score.shape[-1]), dim=2).indices.sort(dim=2).values


def _first(mask: torch.Tensor, count) -> torch.Tensor:
    """Keep only the first ``count`` True entries of ``mask`` along its last axis."""
    return mask & (mask.cumsum(-1) <= count)


def reference_masks(edited: torch.Tensor, source: torch.Tensor, keep_ratio: float,
                    patch: tuple[int, int] = (2, 2)) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference rule's masks (module docstring, steps 1-5) for latents ``[B, C, F, H, W]``:
    (kept latent pixels ``[B, F, H·W]`` after step 3, kept tokens ``[B, F, T]`` after
    step 5), both bool. Tensor ops only, no host sync."""
    batch, frames, height, width = _latent_shape(edited, source, patch)
    ph, pw = patch
    diff = (edited.float() - source.float()).pow(2).mean(1)  # [B, F, H, W]
    lo = diff.flatten(1).amin(1).view(batch, 1, 1, 1)
    hi = diff.flatten(1).amax(1).view(batch, 1, 1, 1)
    pixels = ((diff - lo) / (hi - lo + 1e-8)).flatten(2)  # [B, F, n]
    n = height * width
    keep = max(1, int(n * keep_ratio))
    if keep >= n:
        hot = torch.ones_like(pixels, dtype=torch.bool)
    else:
        hot = pixels >= pixels.kthvalue(n - keep + 1, dim=2, keepdim=True).values
    hot = _first(hot, hot.sum(2, keepdim=True).amin(1, keepdim=True))  # step 3
    pooled = F.avg_pool2d(hot.float().view(batch * frames, 1, height, width), (ph, pw)).view(batch, frames, -1)
    tokens = pooled > 0.5
    return hot, _first(tokens, tokens.sum(2, keepdim=True).amin(1, keepdim=True))  # step 5


def select_tokens_reference(edited: torch.Tensor, source: torch.Tensor, keep_ratio: float,
                            patch: tuple[int, int] = (2, 2)) -> torch.Tensor:
    """The reference rule: indices ``[B, F, K']`` (int64, ascending) of the kept tokens,
    K' the same for every frame and batch element (the smallest count). Reads K' on the
    host (one synchronisation)."""
    _, tokens = reference_masks(edited, source, keep_ratio, patch)
    count = int(tokens.sum(2).amin())
    tokens = _first(tokens, count)
    order = torch.argsort((~tokens).to(torch.uint8), dim=2, stable=True)  # kept first, in raster order
    return order[:, :, :count]


class KeyLimit:
    """Passed to attention() in place of a mask: only the first ``count`` keys are real
    (the rest are padded rows of a bucketed pruned step). ``host`` is the same number on
    the host and ``rows`` the real query rows, for exact slicing where no CUDA graph is
    recorded (the CPU); ``count`` is a device tensor that a CUDA graph reads at replay."""

    def __init__(self, host: int, rows: int, count: torch.Tensor):
        self.host, self.rows, self.count = host, rows, count


class MaskCache:
    """One stream's mask-cache state: the previous chunk's kept tokens, this chunk's
    reused sub-layer outputs, and (optionally) the masks used so far. Driven by
    LatentStream: :meth:`begin_chunk`, :meth:`reuse_for_step` per denoising step,
    :meth:`end_chunk`; :meth:`reset` when the stream starts over."""

    def __init__(self, config: MaskCacheConfig, transformer_config, num_steps: int):
        if config.pruned_steps and config.pruned_steps[-1] >= num_steps:
            raise InputError(
                f"mask cache pruned_steps {list(config.pruned_steps)} name a step the {num_steps}-step "
                f"schedule does not have; use indices 1..{num_steps - 1}"
            )
        pt, ph, pw = transformer_config.patch_size
        if pt != 1:
            raise InputError(f"the mask cache needs a temporal patch of 1, got {transformer_config.patch_size}")
        self.config = config
        self.patch = (ph, pw)
        self.grid = (transformer_config.latent_height // ph, transformer_config.latent_width // pw)
        self.tokens_per_frame = transformer_config.tokens_per_frame
        self.kept_per_frame = config.tokens_kept(self.tokens_per_frame)
        self.num_layers = transformer_config.num_layers
        self.masks: deque[torch.Tensor] = deque(maxlen=4096)  # bounded: streams run for hours
        self.use_buffers({})
        self.reset()

    def use_buffers(self, state: dict) -> None:
        """Keep the buffers that CUDA graphs read in ``state`` (LatentStream passes the
        pooled buffers' dict, so the next stream of the same shape reuses them with the
        graphs): the kept token indices (copied in per chunk, one buffer per shape) and the
        sub-layer outputs of the last full step, {(sublayer, layer): [B, tokens, C]}."""
        self._kept_buffers: dict[tuple, torch.Tensor] = state.setdefault("kept", {})
        self.saved: dict[tuple[str, int], torch.Tensor] = state.setdefault("saved", {})

    def reset(self) -> None:
        """Forget everything: the next chunk is a stream's first and computes every token."""
        self._previous: torch.Tensor | None = None  # [B, F, K] from the last finished chunk
        self._chunk: _ChunkPlan | None = None
        self.last_reused_fraction: float | None = None
        self.masks.clear()

    def begin_chunk(self, kv_cache, frames: int) -> None:
        previous = self._previous
        plan = None
        if previous is not None and previous.shape[1] >= frames and previous.shape[0] == kv_cache.batch_size:
            plan = self._plan(previous[:, :frames], kv_cache)
        self._chunk = _ChunkPlan(self, kv_cache, *(plan or (None,)))
        # Share of the chunk's tokens whose pruned sub-layers reuse step outputs.
        count = 0 if previous is None else previous.shape[2]
        self.last_reused_fraction = 0.0 if plan is None else 1.0 - count / self.tokens_per_frame
        if self.config.save_masks:
            self.masks.append(self._token_mask(previous if plan is not None else None, kv_cache, frames))

    def _buffer(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """A buffer of ``like``'s shape held for the stream's buffers' life, filled with it
        (CUDA graphs read the same memory at every replay)."""
        key = (name, tuple(like.shape), like.device, like.dtype)
        if key not in self._kept_buffers:
            self._kept_buffers[key] = torch.empty_like(like)
        return self._kept_buffers[key].copy_(like)

    def _plan(self, previous: torch.Tensor, kv_cache) -> tuple:
        """Index buffers for one chunk from the previous chunk's kept tokens ``[B, F, K']``:
        (gather indices, scatter indices or None, KeyLimit or None, rows per frame)."""
        batch, frames, count = previous.shape
        tokens = self.tokens_per_frame
        offsets = torch.arange(frames, device=previous.device).view(1, frames, 1) * tokens
        real = (previous + offsets).flatten(1)  # [B, F·K'] chunk token indices, frame by frame
        bucket = self.config.bucket if self.config.rule == "reference" else 0
        if not bucket:
            return self._buffer("kept", real), None, None, count
        width = min(-(-count // bucket) * bucket, tokens) if count else 0
        pad = frames * (width - count)
        filler = real[:, :1] if count else torch.zeros(batch, 1, dtype=real.dtype, device=real.device)
        gather = torch.cat([real, filler.expand(batch, pad)], 1)
        scatter = torch.cat([real, torch.full((batch, pad), frames * tokens, dtype=real.dtype, device=real.device)], 1)
        begin = kv_cache.chunk_start * kv_cache.tokens_per_frame
        keys = begin + frames * count  # real keys: history + this chunk's kept ones
        count_on_device = self._buffer("keys", torch.tensor([keys]).to(previous.device))
        limit = KeyLimit(keys, frames * count, count_on_device)
        return self._buffer("kept", gather), self._buffer("scatter", scatter), limit, width

    def reuse_for_step(self, step: int) -> list[_BlockReuse] | None:
        """Per-block hooks for denoising step ``step`` (None: a plain full forward)."""
        chunk, steps = self._chunk, self.config.pruned_steps
        if chunk is None or chunk.kept is None:
            return None
        if step in steps:
            pruning = True
        elif any(s > step for s in steps):
            pruning = False  # a full step whose outputs a later pruned step reuses
        else:
            return None  # no pruned step left in this chunk: a plain forward
        return [_BlockReuse(chunk, layer, pruning) for layer in range(self.num_layers)]

    def end_chunk(self, edited: torch.Tensor, source: torch.Tensor) -> None:
        """The chunk is done: pick the next chunk's tokens; drop this chunk's saved outputs."""
        select = select_tokens_reference if self.config.rule == "reference" else select_tokens
        self._previous = select(edited, source, self.config.keep_ratio, self.patch)
        self._chunk = None

    def _token_mask(self, kept_per_frame: torch.Tensor | None, kv_cache, frames: int) -> torch.Tensor:
        """uint8 ``[B, F, h, w]`` on the device: 255 where a token is computed at the
        pruned steps, 0 where it is reused (all 255 for a chunk that prunes nothing)."""
        (h, w), batch, device = self.grid, kv_cache.batch_size, kv_cache.keys.device
        if kept_per_frame is None:
            return torch.full((batch, frames, h, w), 255, dtype=torch.uint8, device=device)
        mask = torch.zeros(batch, frames, h * w, dtype=torch.uint8, device=device)
        return mask.scatter_(2, kept_per_frame[:, :frames], 255).view(batch, frames, h, w)

    def token_masks(self, batch_index: int = 0) -> list[torch.Tensor]:
        """The saved masks of one batch element, oldest first: uint8 ``[F, h, w]`` per chunk
        on the CPU (h, w: the token grid; one token = 2x2 latent pixels = 16x16 pixels)."""
        if not self.config.save_masks:
            raise InputError("token masks are kept only with MaskCacheConfig(save_masks=True)")
        if self.masks and not 0 <= batch_index < self.masks[0].shape[0]:
            raise InputError(f"batch_index {batch_index} is outside this stream's batch of {self.masks[0].shape[0]}")
        return [m[batch_index].cpu() for m in self.masks]


class _ChunkPlan:
    """One chunk's kept token indices and the sub-layer outputs of its last full step.
    With bucketing, ``kept`` holds padded rows too: ``scatter`` sends them to a spare row
    and ``limit`` tells attention how many keys are real."""

    def __init__(self, cache: MaskCache, kv_cache, kept: torch.Tensor | None, scatter=None, limit=None, width=None):
        self.sublayers = cache.config.pruned_sublayers
        self.kv = kv_cache
        self.kept = kept  # [B, Kt] or None (compute everything)
        self.scatter = scatter
        self.limit = limit
        self.width = width  # rows per frame at pruned steps
        self.bucketed = cache.config.rule == "fixed" or bool(cache.config.bucket)  # fixed shapes: graphs
        self.saved = cache.saved

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        return x.gather(1, self.kept.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    def scatter_into(self, full: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        if self.scatter is None:
            return full.scatter(1, self.kept.unsqueeze(-1).expand(-1, -1, full.shape[-1]), part)
        batch, length, channels = full.shape
        out = full.new_empty(batch, length + 1, channels)  # the last row takes the padded rows
        out[:, :length] = full
        out.scatter_(1, self.scatter.unsqueeze(-1).expand(-1, -1, channels), part)
        return out[:, :length]

    def kept_rope(self, rope: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin ``[L, D/2]`` → the kept tokens' own ``[B, Kt, D/2]``. Gathered afresh at
        every call (two small gathers per block): a copy kept between calls would be read
        by a CUDA graph captured over it long after the chunk it belonged to."""
        return rope[0][self.kept], rope[1][self.kept]

    def store_kept(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Kept keys/values go at the start of the chunk's own slots (scratch until the
        next full pass rewrites them); history slots are left alone."""
        kv = self.kv
        begin = kv.chunk_start * kv.tokens_per_frame
        end = begin + k.shape[1]
        kv.keys[layer, :, begin:end] = k
        kv.values[layer, :, begin:end] = v
        return kv.keys[layer, :, :end], kv.values[layer, :, :end]


class _BlockReuse:
    """What one block does at one step: the Block calls :meth:`self_attn` and :meth:`ffn`
    instead of its sub-layers. A full step records their outputs; a pruned step runs them
    on the kept tokens only and fills the rest from the record."""

    def __init__(self, chunk: _ChunkPlan, layer: int, pruning: bool):
        self.chunk, self.layer, self.pruning = chunk, layer, pruning

    @property
    def graph_kind(self):
        """What a CUDA graph of this step is keyed by: "record", ("prune", rows per frame),
        or None when its shapes change from chunk to chunk (run eagerly)."""
        if not self.pruning:
            return "record"
        return ("prune", self.chunk.width) if self.chunk.bucketed else None

    def self_attn(self, module, h, rope, store, mask):
        if "self_attn" not in self.chunk.sublayers:
            return module(h, rope, store, mask)
        if not self.pruning:
            return self._record("self_attn", module(h, rope, store, mask))
        chunk = self.chunk
        return self._fill("self_attn", lambda: module(
            chunk.gather(h), chunk.kept_rope(rope), partial(chunk.store_kept, self.layer), chunk.limit
        ))

    def ffn(self, module, h):
        if "ffn" not in self.chunk.sublayers:
            return module(h)
        if not self.pruning:
            return self._record("ffn", module(h))
        return self._fill("ffn", lambda: module(self.chunk.gather(h)))

    def _record(self, sublayer: str, y: torch.Tensor) -> torch.Tensor:
        self.chunk.saved[sublayer, self.layer] = y
        return y

    def _fill(self, sublayer: str, compute_kept) -> torch.Tensor:
        reused = self.chunk.saved[sublayer, self.layer]
        if self.chunk.kept.shape[1] == 0:  # keep_ratio 0: pure reuse, nothing computed
            return reused
        return self.chunk.scatter_into(reused, compute_kept())
