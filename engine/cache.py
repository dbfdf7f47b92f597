"""Attention caches for streaming: self-attention K/V per block (a rolling window of latent
frames) and cross-attention K/V per block (one instruction).

Self-attention cache layout: one preallocated tensor per keys/values,
``[layers, B, window_frames·tokens_per_frame, heads, head_dim]``, in frame slots. A frame's
keys are stored rotated by RoPE at the frame's *absolute* stream position.

Why absolute positions and a ring of slots: attention over the window is dense, so it does
not care where in the buffer a key sits, and RoPE scores depend only on the difference
between query and key positions. Rotating every key at its absolute position therefore
gives exactly the window-relative attention of a cache that renumbers its frames after
each eviction, without touching the kept frames: an eviction only frees slots, and the
newest history frames that sit past the kept count are copied (not re-rotated) into them,
so history plus the chunk always form one prefix of the buffer (what attention reads).
The earlier design moved and re-rotated the whole window on every chunk, ~15 ms of copies
per chunk at 480x832 (docs/benchmarks.md). Positions are unbounded: RoPE's time angles are
computed in float64 for any position, so a stream can run for hours (the released fork
used a 1024-row table and breaks past 1024 latent frames, ~4 min).

Sink frames stay while the rest rolls. To keep their distance to the window what the
renumbering design gives (sinks right before the oldest kept frame), their keys are
re-rotated after each eviction, always from a copy taken before their first move, so the
rounding does not accumulate.

While a stream stays within the window (≤ 21 frames as released), slot = position = frame
index, exactly the released behaviour.
"""

from __future__ import annotations

import torch

from liveedit.errors import InputError
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
        self.window_frames = window_frames
        self.sink_frames = sink_frames
        self.tokens_per_frame = tokens_per_frame
        self.rope = rope
        shape = self._shape(num_layers, batch_size, window_frames, tokens_per_frame, num_heads, head_dim)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.reset()

    @staticmethod
    def _shape(num_layers, batch_size, window_frames, tokens_per_frame, num_heads, head_dim) -> tuple[int, ...]:
        return (num_layers, batch_size, window_frames * tokens_per_frame, num_heads, head_dim)

    @classmethod
    def size_bytes(cls, *, num_layers, batch_size, window_frames, tokens_per_frame, num_heads, head_dim,
                   dtype, **_) -> int:
        """Bytes a cache of these settings allocates (keys and values); takes the
        constructor's keyword arguments."""
        shape = cls._shape(num_layers, batch_size, window_frames, tokens_per_frame, num_heads, head_dim)
        return 2 * torch.Size(shape).numel() * dtype.itemsize

    def reset(self) -> None:
        """Forget every frame (the buffers stay allocated)."""
        # History frames (clean K/V), oldest first, sinks first: (slot, absolute position).
        self.history: list[tuple[int, int]] = []
        self.position = 0  # absolute position of the next chunk's first frame
        self.chunk_start = 0  # slot of the chunk being edited
        self.chunk_frames = 0
        self.evicted_frames = 0  # total over the stream, for stats
        self._sink_keys: torch.Tensor | None = None  # sink keys as first written (see module doc)

    @property
    def frames(self) -> int:
        """History frames held (clean K/V)."""
        return len(self.history)

    @property
    def batch_size(self) -> int:
        return self.keys.shape[1]

    def begin_chunk(self, frames: int) -> int:
        """Reserve slots for a chunk of ``frames`` latent frames right after the history,
        evicting the oldest non-sink frames first if they would not fit. Returns the
        chunk's RoPE position (its first frame's absolute position). Calling it again
        before :meth:`end_chunk` re-reserves the same slots (an abandoned chunk is redone)."""
        if not 1 <= frames <= self.window_frames - self.sink_frames:
            raise InputError(f"a chunk of {frames} latent frames does not fit a {self.window_frames}-frame window")
        overflow = len(self.history) + frames - self.window_frames
        if overflow > 0:
            self._evict(overflow)
        self._compact()
        self.chunk_start, self.chunk_frames = len(self.history), frames
        return self.position

    def _evict(self, count: int) -> None:
        """Drop the ``count`` oldest frames after the sinks (their slots become free)."""
        sinks = min(self.sink_frames, len(self.history))
        count = min(count, len(self.history) - sinks)
        if count <= 0:
            return
        del self.history[sinks : sinks + count]
        self.evicted_frames += count
        if sinks:  # right before the oldest kept frame, or before the chunk if none is kept
            self._place_sinks(self.history[sinks][1] if len(self.history) > sinks else self.position)

    def _place_sinks(self, oldest_kept: int) -> None:
        """Re-rotate the sink frames so that they sit right before position ``oldest_kept``."""
        t, sinks = self.tokens_per_frame, self.sink_frames
        slots = [slot for slot, _ in self.history[:sinks]]
        if slots != list(range(sinks)):  # sinks are the stream's first frames: slots 0…sinks−1
            raise AssertionError(f"sink frames moved: {slots}")
        if self._sink_keys is None:
            self._sink_keys = self.keys[:, :, : sinks * t].clone()  # rotated at positions 0…sinks−1
        shift = oldest_kept - sinks
        self.keys[:, :, : sinks * t] = self.rope.shift_frames(self._sink_keys, -shift)
        self.history[:sinks] = [(slot, shift + slot) for slot in range(sinks)]

    def _compact(self) -> None:
        """Copy history frames that sit at or past slot ``len(history)`` into the free slots
        below it, so history fills one prefix of the buffer and the chunk goes right after."""
        n, t = len(self.history), self.tokens_per_frame
        used = {slot for slot, _ in self.history}
        free = iter(slot for slot in range(n) if slot not in used)
        for i, (slot, position) in enumerate(self.history):
            if slot >= n:
                dest = next(free)
                src, dst = slice(slot * t, (slot + 1) * t), slice(dest * t, (dest + 1) * t)
                self.keys[:, :, dst] = self.keys[:, :, src]
                self.values[:, :, dst] = self.values[:, :, src]
                self.history[i] = (dest, position)

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
        self.history += [(self.chunk_start + i, self.position + i) for i in range(self.chunk_frames)]
        self.position += self.chunk_frames
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
