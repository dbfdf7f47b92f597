"""Attention caches for streaming: self-attention K/V per block (a rolling window of latent
frames) and cross-attention K/V per block (one instruction).

Self-attention cache layout: one preallocated tensor per keys/values,
``[layers, B, window_frames·tokens_per_frame, heads, head_dim]``. Frame slot s holds the
keys of one latent frame, already rotated by RoPE at temporal position s.

Window-relative RoPE (the choice, and why): a frame's temporal position is its slot in
the window, never its absolute index, so positions stay below ``window_frames`` and a
stream can run for hours with Wan's 1024-row table (the released fork used absolute
positions and breaks past 1024 latent frames, ~4 min). When a new chunk does not fit,
the oldest non-sink frames are evicted whole; the frames after them move down by the
same number of slots and their keys are re-rotated by −shift in the time pairs.
Rotations compose, so that equals rotating the un-rotated keys at the new position
(exact up to one rounding per eviction; a frame is re-rotated at most
(window − sinks) / chunk times before it leaves). Sink frames never move. Storing keys
un-rotated and rotating the whole window on every forward would avoid even that rounding
but costs an elementwise pass over the cache per forward instead of one per chunk.

While a stream stays within the window (≤ 21 frames as released), slot = absolute frame
index, so this is exactly the released behaviour.
"""

from __future__ import annotations

import torch

from liveedit.engine.errors import InputError
from liveedit.engine.transformer import RotaryEmbedding


class KVCache:
    """Self-attention keys/values of every block for one stream (batch ``B``)."""

    def __init__(
        self,
        *,
        num_layers: int,
        batch_size: int,
        tokens_per_frame: int,
        num_heads: int,
        head_dim: int,
        rope: RotaryEmbedding,
        window_frames: int = 21,
        sink_frames: int = 0,
        max_chunk_frames: int = 3,
        device=None,
        dtype=torch.float32,
    ):
        if not 0 <= sink_frames or window_frames < sink_frames + max_chunk_frames:
            raise InputError(
                f"a KV window of {window_frames} latent frames cannot hold {sink_frames} sink frames plus a "
                f"{max_chunk_frames}-frame chunk; use window_frames >= sink_frames + {max_chunk_frames}"
            )
        if window_frames > rope.max_positions:
            raise InputError(f"window_frames {window_frames} exceeds the {rope.max_positions}-row RoPE table")
        self.window_frames = window_frames
        self.sink_frames = sink_frames
        self.tokens_per_frame = tokens_per_frame
        self.rope = rope
        shape = (num_layers, batch_size, window_frames * tokens_per_frame, num_heads, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.reset()

    def reset(self) -> None:
        """Forget every frame (the buffers stay allocated)."""
        self.frames = 0  # slots holding finished (clean) K/V
        self.chunk_start = 0  # slot of the chunk being edited
        self.chunk_frames = 0
        self.evicted_frames = 0  # total over the stream, for stats

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    def begin_chunk(self, frames: int) -> int:
        """Reserve slots for a chunk of ``frames`` latent frames right after the history,
        evicting the oldest non-sink frames first if they would not fit. Returns the
        chunk's first slot (= its RoPE frame position). Calling it again before
        :meth:`end_chunk` re-reserves the same slots (an abandoned chunk is redone)."""
        if not 1 <= frames <= self.window_frames - self.sink_frames:
            raise InputError(f"a chunk of {frames} latent frames does not fit a {self.window_frames}-frame window")
        overflow = self.frames + frames - self.window_frames
        if overflow > 0:
            self._evict(overflow)
        self.chunk_start, self.chunk_frames = self.frames, frames
        return self.chunk_start

    def _evict(self, count: int) -> None:
        """Drop ``count`` frames after the sinks; move the rest down and re-rotate them."""
        count = min(count, self.frames - self.sink_frames)
        t = self.tokens_per_frame
        keep_from, keep_to = (self.sink_frames + count) * t, self.frames * t
        dest = self.sink_frames * t
        n = keep_to - keep_from
        if n > 0:
            # Work layer by layer: the temporaries stay one layer big.
            for layer in range(self.keys.shape[0]):
                moved_k = self.rope.shift_frames(self.keys[layer, :, keep_from:keep_to], count)
                moved_v = self.values[layer, :, keep_from:keep_to].clone()  # ranges may overlap
                self.keys[layer, :, dest : dest + n] = moved_k
                self.values[layer, :, dest : dest + n] = moved_v
        self.frames -= count
        self.evicted_frames += count

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the current chunk's keys/values ``[B, chunk tokens, H, D]`` of one block
        into its slots (each denoising step overwrites the previous step's) and return
        the keys/values it attends to: history plus the chunk."""
        begin = self.chunk_start * self.tokens_per_frame
        end = begin + k.shape[1]
        if k.shape[1] != self.chunk_frames * self.tokens_per_frame or k.shape[0] != self.batch_size:
            raise InputError(
                f"chunk keys {list(k.shape)} do not match the reserved {self.chunk_frames} frames x "
                f"{self.tokens_per_frame} tokens, batch {self.batch_size}"
            )
        self.keys[layer, :, begin:end] = k
        self.values[layer, :, begin:end] = v
        return self.keys[layer, :, :end], self.values[layer, :, :end]

    def end_chunk(self) -> None:
        """The chunk's slots now hold its final (clean) K/V: they become history."""
        self.frames = self.chunk_start + self.chunk_frames
        self.chunk_frames = 0


class CrossAttentionCache:
    """Cross-attention keys/values of every block for the current instruction. Filled once
    per instruction and reused by every chunk and step."""

    def __init__(self):
        self.kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def fill(self, kv: list[tuple[torch.Tensor, torch.Tensor]]) -> bool:
        """Hold ``kv``. When it matches the buffers held already (same shapes, dtypes and
        devices), copy it into them, so CUDA graphs that read those buffers stay valid, and
        return False; otherwise take the new tensors and return True."""
        same = self.kv is not None and len(self.kv) == len(kv) and all(
            held.shape == new.shape and held.dtype == new.dtype and held.device == new.device
            for pair_held, pair_new in zip(self.kv, kv)
            for held, new in zip(pair_held, pair_new)
        )
        if not same:
            self.kv = kv
            return True
        for (k_held, v_held), (k, v) in zip(self.kv, kv):
            k_held.copy_(k)
            v_held.copy_(v)
        return False

    def get(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.kv is None:
            raise InputError("no instruction is set for this stream; call start(context, seed) first")
        return self.kv

    def clear(self) -> None:
        self.kv = None
