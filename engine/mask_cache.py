"""LiveEdit's AR-oriented mask cache ("internal token pruning"), as a stream option. Its
settings are ``MaskCacheConfig`` in engine/config.py.

What it does (facts: ../shared/spec/liveedit-model.md §4). When a chunk is finished, the
places where the edit changed the picture most (its x0 latent vs its source latent) pick
the tokens the *next* chunk computes at its pruned denoising steps (1 and 2 of 4 by
default). At those steps every other token reuses the output its block's sub-layer gave
at the last full step of the same chunk (step 0): the reference's ``prev_step`` fill. Only
self-attention is pruned by default; the FFN can be added. Chunk 0 of a stream, every
full step and the clean refresh pass compute every token.

The token rule, exactly (per batch element, per latent frame; T tokens per frame):
  1. importance = squared difference x0 − source, averaged over the 16 channels, then
     min–max normalised over the whole chunk (so it lies in [0, 1]);
  2. the frame's top ``round(keep_ratio · H·W)`` latent pixels by importance are "hot";
  3. each token (a 2x2 patch of latent pixels) scores
         (fraction of its pixels that are hot) + 0.2 · (its mean importance),
     so tokens passing the reference's "> 0.5 of the patch is hot" rule always rank first
     (fractions step by 0.25 and the second term stays below 0.25), and importance breaks
     the remaining ties;
  4. the frame keeps exactly K = round(keep_ratio · T) tokens (at least 1 when
     keep_ratio > 0): the K best scores (torch.topk), in raster order.
Differences from the released code, on purpose: the reference kept a data-dependent
number of tokens (those passing > 0.5, at most K) and then truncated every frame to the
smallest count by lowest index, which favours the top of the picture; batch element 0's
mask was used for every sample; and the mask survived from one video to the next. Here
each frame keeps exactly K tokens chosen by score (fixed shapes, so no host
synchronisation and CUDA graphs / torch.compile see one shape), every batch element
gathers its own indices ``[B, F·K]``, and the state belongs to one stream and is cleared
by its start/reset. Chunk k uses chunk k−1's mask frame by frame (no motion
compensation, as released); a chunk longer than the previous one computes every token.

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


def select_tokens(
    edited: torch.Tensor, source: torch.Tensor, keep_ratio: float, patch: tuple[int, int] = (2, 2)
) -> torch.Tensor:
    """The tokens worth computing next chunk: edited x0 and source latents ``[B, C, F, H, W]``
    → indices ``[B, F, K]`` (int64, ascending) into each frame's ``(H/ph)·(W/pw)`` tokens
    in raster order. The rule is in the module docstring. Tensor ops only, no host sync."""
    if edited.shape != source.shape or edited.ndim != 5:
        raise InputError(f"edited and source latents must be [B, C, F, H, W] of one shape, got "
                         f"{list(edited.shape)} and {list(source.shape)}")
    batch, _, frames, height, width = edited.shape
    ph, pw = patch
    if height % ph or width % pw:
        raise InputError(f"latent size {height}x{width} is not a multiple of the patch {ph}x{pw}")
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
        kept = None
        if previous is not None and previous.shape[1] >= frames and previous.shape[0] == kv_cache.batch_size:
            offsets = torch.arange(frames, device=previous.device).view(1, frames, 1) * self.tokens_per_frame
            kept = (previous[:, :frames] + offsets).flatten(1)  # [B, frames·K] chunk token indices
            key = (tuple(kept.shape), kept.device)
            if key not in self._kept_buffers:
                self._kept_buffers[key] = torch.empty_like(kept)
            kept = self._kept_buffers[key].copy_(kept)
        self._chunk = _ChunkPlan(self, kv_cache, kept)
        # Share of the chunk's tokens whose pruned sub-layers reuse step outputs.
        self.last_reused_fraction = 0.0 if kept is None else 1.0 - self.kept_per_frame / self.tokens_per_frame
        if self.config.save_masks:
            self.masks.append(self._token_mask(previous if kept is not None else None, kv_cache, frames))

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
        self._previous = select_tokens(edited, source, self.config.keep_ratio, self.patch)
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
    """One chunk's kept token indices and the sub-layer outputs of its last full step."""

    def __init__(self, cache: MaskCache, kv_cache, kept: torch.Tensor | None):
        self.sublayers = cache.config.pruned_sublayers
        self.kv = kv_cache
        self.kept = kept  # [B, Kt] or None (compute everything)
        self.saved = cache.saved

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        return x.gather(1, self.kept.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    def scatter_into(self, full: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
        return full.scatter(1, self.kept.unsqueeze(-1).expand(-1, -1, full.shape[-1]), part)

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

    def self_attn(self, module, h, rope, store, mask):
        if "self_attn" not in self.chunk.sublayers:
            return module(h, rope, store, mask)
        if not self.pruning:
            return self._record("self_attn", module(h, rope, store, mask))
        chunk = self.chunk
        return self._fill("self_attn", lambda: module(
            chunk.gather(h), chunk.kept_rope(rope), partial(chunk.store_kept, self.layer), None
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
