"""`LatentStream`: LiveEdit's chunk loop over the KV cache (Self-Forcing's causal inference).

Per chunk of 1–3 latent frames: start from noise, run the denoising steps (each forward
writes the chunk's noisy K/V into the chunk's cache slots and attends over history plus
the chunk), keep the last x0 prediction, then run one clean refresh forward at
t = context_noise that rewrites the chunk's slots with clean K/V for later chunks (its
output is discarded). The source latent is concatenated, never noised, at every forward.

Noise: the released code draws one noise tensor per video from the seed; an unbounded
stream cannot, so each chunk draws its starting noise and every re-noising from the
stream's own generator. Same seed, same chunks, same device → identical output.
"""

from __future__ import annotations

import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import torch

from liveedit.engine.cache import CrossAttentionCache, KVCache
from liveedit.errors import InputError
from liveedit.engine.config import LATENT_CHANNELS, MaskCacheConfig, SamplerConfig, TransformerConfig
from liveedit.engine.mask_cache import MaskCache
from liveedit.engine.sampler import add_noise, flow_to_x0, initial_noise
from liveedit.engine.transformer import LiveEditTransformer


class _ChunkGraph:
    """One forward of a chunk at fixed cache slots, captured as a CUDA graph.

    Once the window is full, every chunk sits in the same slots with the same shapes, so
    its five forwards (four steps and the refresh; the timestep is a tensor input) can
    replay one graph: ~30 ms of launch gaps per chunk at 480x832 go away. Inputs are
    copied into static buffers; the output buffer is overwritten by the next replay."""

    def __init__(self, model, x, source, t, kv, context_kv, rope, pool, kv_only=False, reuse=None):
        self.x, self.source, self.t = x.clone(), source.clone(), t.clone()
        self.rope = tuple(r.clone() for r in rope)  # positions move on every chunk: an input
        run = lambda: model.forward_chunk(self.x, self.source, self.t, kv, context_kv, reuse,  # noqa: E731
                                          self.rope, kv_only)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up off the capture stream, as torch asks
            run()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, pool=pool):
            self.out = run()

    def __call__(self, x, source, t, rope) -> torch.Tensor:
        self.x.copy_(x)
        self.source.copy_(source)
        self.t.copy_(t)
        for held, new in zip(self.rope, rope):
            held.copy_(new)
        self.graph.replay()
        return self.out


@dataclass
class _StreamBuffers:
    """A stream's KV cache and cross-attention buffers, and the CUDA graphs captured over
    them. Pooled per model: when a stream ends, the next stream of the same shape takes the
    same buffers and replays the graphs from its first chunk (a fresh stream's first chunks
    are launch-bound otherwise: ~170 ms of GPU work, ~330 ms of launches at 480x832)."""

    key: tuple
    kv: KVCache
    cross: CrossAttentionCache = field(default_factory=CrossAttentionCache)
    graphs: dict = field(default_factory=dict)
    seen_slots: set = field(default_factory=set)
    graph_pool: object = None
    mask_state: dict = field(default_factory=dict)  # the mask cache's buffers that graphs read


# model -> {buffer key: idle buffers}; weak, so a model's buffers and graphs go with it.
_IDLE_BUFFERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_MAX_IDLE_PER_KEY = 1  # a full-window KV cache is 6 GB at 480x832


def _free_bytes(device: torch.device) -> float:
    """Memory a new allocation can still get on ``device``: free on the card plus what the
    caching allocator holds unused (unbounded on the CPU)."""
    if device.type != "cuda":
        return float("inf")
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


# Head room kept free beside a new stream's KV cache: its graphs' and activations' memory.
_HEADROOM_BYTES = 4 * 2**30


def release_idle_buffers(model) -> None:
    """Drop every idle stream buffer (and graph) pooled for ``model``."""
    _IDLE_BUFFERS.pop(model, None)


def _return_buffers(model_ref, buffers: _StreamBuffers) -> None:
    model = model_ref()
    if model is None:
        return
    idle = _IDLE_BUFFERS.setdefault(model, {}).setdefault(buffers.key, [])
    if len(idle) < _MAX_IDLE_PER_KEY:
        idle.append(buffers)


@dataclass
class ChunkTimings:
    """Wall seconds of one chunk's forwards (measured only with ``record_timings``)."""

    frames: int
    step_seconds: list[float] = field(default_factory=list)
    refresh_seconds: float = 0.0


class LatentStream:
    def __init__(
        self,
        model: LiveEditTransformer,
        transformer_config: TransformerConfig,
        sampler_config: SamplerConfig | None = None,
        *,
        device=None,
        dtype: torch.dtype | None = None,
        window_frames: int | None = None,
        sink_frames: int | None = None,
        record_timings: bool = False,
        defer_refresh: bool = False,
        mask_cache: MaskCacheConfig | None = None,
        cuda_graphs: bool = False,  # SpeedOptions.cuda_graphs: replay steady-state chunks (see _ChunkGraph)
    ):
        param = next(model.parameters())
        self.model = model
        self.config = transformer_config
        self.sampler = sampler_config or SamplerConfig()
        self.device = torch.device(device) if device is not None else param.device
        self.dtype = dtype or param.dtype
        self.window_frames = window_frames or transformer_config.window_frames
        self.sink_frames = transformer_config.sink_frames if sink_frames is None else sink_frames
        self.record_timings = record_timings
        self.cuda_graphs = cuda_graphs
        # Deferred refresh: edit_chunk returns as soon as the chunk is denoised and runs its
        # clean refresh forward at the start of the next chunk (the same computations in
        # the same order, so the same output), which takes one forward off the latency of
        # every chunk and skips the refresh after a stream's last chunk, which nothing reads.
        self.defer_refresh = defer_refresh
        self._pending: tuple | None = None  # (x0, source, rope) of the chunk awaiting its refresh
        # Bounded so an hours-long stream with timings on does not grow without end.
        self.timings: deque[ChunkTimings] = deque(maxlen=4096)
        self.last_reused_fraction: float | None = None  # None: no mask cache, every token computed
        # Off by default; MaskCacheConfig() gives the reference's settings (engine/mask_cache.py).
        self._mask = MaskCache(mask_cache, transformer_config, len(self.sampler.timesteps)) if mask_cache else None
        self._buffers: _StreamBuffers | None = None
        self._release = None  # returns the buffers to the model's pool (weakref.finalize)
        self._cross = CrossAttentionCache()
        self._graphs: dict[tuple, _ChunkGraph] = {}
        self._seen_slots: set[tuple] = set()
        self._kv: KVCache | None = None
        self._seed: int | None = None
        self._generator: torch.Generator | None = None

    # -- stream control --------------------------------------------------------------------
    @torch.no_grad()
    def start(self, context: torch.Tensor, seed: int) -> None:
        """Begin a stream for one instruction: caches emptied, noise generator seeded.
        ``context`` is the instruction embedding ``[B, text_len, text_dim]``; B is the
        stream's batch size."""
        if context.ndim != 3 or context.shape[0] < 1:
            raise InputError(
                f"instruction context must be [batch, tokens, {self.config.text_dim}], got {list(context.shape)}"
            )
        context = context.to(self.device)
        batch = context.shape[0]
        mask_config = self._mask.config if self._mask is not None else None
        key = (batch, self.window_frames, self.sink_frames, self.config.chunk_frames, self.device, self.dtype, mask_config)
        if self._buffers is None or self._buffers.key != key:
            self._take_buffers(key)
        self._seed = int(seed)
        self.reset()
        self.set_context(context)

    @torch.no_grad()
    def set_context(self, context: torch.Tensor) -> None:
        """New instruction from the next chunk on; history K/V stay (they were computed
        under the old instruction, as a live prompt switch without re-caching)."""
        if self._kv is None:
            raise InputError("call start(context, seed) before set_context")
        if context.ndim != 3 or context.shape[0] != self._kv.batch_size:
            raise InputError(
                f"instruction context must be [{self._kv.batch_size}, tokens, {self.config.text_dim}] "
                f"for this stream, got {list(context.shape)}"
            )
        self.refresh_pending()  # the finished chunk's clean K/V belong to the old instruction
        if self._cross.fill(self.model.context_kv(context.to(self.device))):
            self._graphs.clear()  # new cross-attention buffers: graphs read the old ones

    def reset(self) -> None:
        """Back to the start of the stream: no history, generator re-seeded, same instruction."""
        if self._kv is None:
            raise InputError("call start(context, seed) before reset")
        self._kv.reset()
        self._pending = None
        if self._mask is not None:
            self._mask.reset()
            self.last_reused_fraction = None
        self._generator = torch.Generator(device=self.device).manual_seed(self._seed)
        self.timings.clear()

    def _take_buffers(self, key: tuple) -> None:
        """Buffers of this shape from the model's pool, or new ones; the old ones go back."""
        if self._release is not None:
            self._release()  # runs _return_buffers once
        self._kv = self._buffers = None
        pool = _IDLE_BUFFERS.get(self.model, {})
        idle = pool.get(key)
        if idle:
            buffers = idle.pop()
        else:
            batch, window, sinks, chunk, device, dtype, _ = key
            cfg = self.config
            settings = dict(num_layers=cfg.num_layers, batch_size=batch, tokens_per_frame=cfg.tokens_per_frame,
                            num_heads=cfg.num_heads, head_dim=cfg.head_dim, rope=self.model.rope,
                            window_frames=window, sink_frames=sinks, max_chunk_frames=chunk, device=device,
                            dtype=dtype)
            # Idle buffers of other shapes or settings (6 GB of KV cache each at 480x832)
            # stay pooled while the card has room for a new set beside them; on a smaller
            # card they go first, so peak memory stays one stream's worth.
            if _free_bytes(device) < KVCache.size_bytes(**settings) + _HEADROOM_BYTES:
                pool.clear()
            kv = KVCache(**settings)
            buffers = _StreamBuffers(key, kv)
        self._buffers = buffers
        self._kv, self._cross = buffers.kv, buffers.cross
        self._graphs, self._seen_slots = buffers.graphs, buffers.seen_slots
        if self._mask is not None:
            self._mask.use_buffers(buffers.mask_state)
        self._release = weakref.finalize(self, _return_buffers, weakref.ref(self.model), buffers)

    @property
    def frames_in_window(self) -> int:
        pending = self._pending[0].shape[2] if self._pending is not None else 0
        return (self._kv.frames + pending) if self._kv else 0

    def token_masks(self, batch_index: int = 0) -> list[torch.Tensor]:
        """Mask cache with ``save_masks``: per chunk so far, uint8 ``[F, h, w]`` over the
        token grid, 255 where a token was computed at the pruned steps, 0 where reused."""
        if self._mask is None:
            raise InputError("this stream runs without a mask cache; pass mask_cache=MaskCacheConfig(save_masks=True)")
        return self._mask.token_masks(batch_index)

    # -- the loop --------------------------------------------------------------------------
    @torch.no_grad()
    def edit_chunk(self, source_latents: torch.Tensor) -> torch.Tensor:
        """Edit one chunk: source latents ``[B, 16, f, h, w]`` (f in 1..chunk_frames) →
        the edited x0 latents, same shape, in the stream's dtype."""
        source = self._check_source(source_latents)
        batch, _, frames = source.shape[:3]
        self.refresh_pending()
        sampler, gen, kv = self.sampler, self._generator, self._kv
        context_kv = self._cross.get()
        clock = _Clock(self.device, enabled=self.record_timings)
        timings = ChunkTimings(frames=frames)

        position = kv.begin_chunk(frames)
        rope = self.model.chunk_rope(position, frames, self.device)
        mask = self._mask
        if mask is not None:
            mask.begin_chunk(kv, frames)
        x = initial_noise(source.shape, gen, self.device, self.dtype)
        steps = sampler.timesteps
        for i, t in enumerate(steps):
            reuse = mask.reuse_for_step(i) if mask is not None else None
            flow = self._forward(x, source, torch.full((batch, frames), t, device=self.device), kv, context_kv, rope, reuse)
            x0 = flow_to_x0(x, flow, sampler.sigma(t))
            if i + 1 < len(steps):
                x = add_noise(x0, sampler.sigma(steps[i + 1]), gen)
            timings.step_seconds.append(clock.lap())

        if mask is not None:
            mask.end_chunk(x0, source)  # picks the next chunk's tokens
            self.last_reused_fraction = mask.last_reused_fraction
        if self.record_timings:
            self.timings.append(timings)
        self._pending = (x0, source, rope)
        if not self.defer_refresh:
            self.refresh_pending()
        return x0

    @torch.no_grad()
    def refresh_pending(self) -> None:
        """Run the last chunk's clean refresh forward if it has not run yet: rewrite the
        chunk's slots with the K/V of its final x0, at t = context_noise, and make them
        history. A no-op when nothing is pending."""
        if self._pending is None:
            return
        x0, source, rope = self._pending
        self._pending = None
        kv, sampler = self._kv, self.sampler
        clock = _Clock(self.device, enabled=self.record_timings)
        context_t = sampler.context_noise
        clean = add_noise(x0, sampler.sigma(context_t), self._generator) if context_t > 0 else x0
        t = torch.full((x0.shape[0], x0.shape[2]), context_t, device=self.device)
        self._forward(clean, source, t, kv, self._cross.get(), rope, kv_only=True)
        self._seen_slots.add((kv.chunk_start, kv.chunk_frames))
        kv.end_chunk()
        if self.record_timings and self.timings:
            self.timings[-1].refresh_seconds = clock.lap()

    def _forward(self, x, source, t, kv, context_kv, rope, reuse=None, kv_only=False) -> torch.Tensor | None:
        """forward_chunk, replayed from a CUDA graph when the chunk's slots were already
        used by an earlier chunk (steady state: the window is full) and graphs are on.

        With the mask cache, a forward is one of three kinds, each its own graph: plain,
        "record" (a full step that keeps its sub-layer outputs) and "prune" (kept tokens
        only, one graph per bucket of kept tokens per frame; unbucketed pruned steps run
        eagerly). Their shapes are fixed per graph, and what
        they share lives in buffers held for the stream's life (MaskCache.saved, the kept
        indices), so replays read and write the same memory as the capture did."""
        slots = (kv.chunk_start, kv.chunk_frames)
        kind = None if reuse is None else reuse[0].graph_kind
        if not (self.cuda_graphs and x.is_cuda and slots in self._seen_slots) or (reuse is not None and kind is None):
            return self.model.forward_chunk(x, source, t, kv, context_kv, reuse, rope, kv_only)
        key = (*slots, kv_only, kind)
        graph = self._graphs.get(key)
        if graph is None:
            if self._buffers.graph_pool is None:
                self._buffers.graph_pool = torch.cuda.graph_pool_handle()
            graph = self._graphs[key] = _ChunkGraph(self.model, x, source, t, kv, context_kv, rope,
                                                    self._buffers.graph_pool, kv_only, reuse)
        return graph(x, source, t, rope)

    def _check_source(self, source: torch.Tensor) -> torch.Tensor:
        if self._kv is None or self._generator is None:
            raise InputError("call start(context, seed) before edit_chunk")
        cfg = self.config
        expected = (self._kv.batch_size, LATENT_CHANNELS, cfg.latent_height, cfg.latent_width)
        if (
            source.ndim != 5
            or (source.shape[0], source.shape[1], source.shape[3], source.shape[4]) != expected
            or not 1 <= source.shape[2] <= cfg.chunk_frames
        ):
            raise InputError(
                f"source latents must be [{expected[0]}, {LATENT_CHANNELS}, 1..{cfg.chunk_frames}, "
                f"{cfg.latent_height}, {cfg.latent_width}] for this stream, got {list(source.shape)}"
            )
        return source.to(device=self.device, dtype=self.dtype)


class _Clock:
    """Lap timer that waits for the GPU, so a lap is the forward's real duration; a no-op
    unless enabled (syncing every step would stall the launch queue)."""

    def __init__(self, device: torch.device, enabled: bool):
        self.enabled = enabled
        self.sync = torch.cuda.synchronize if (enabled and device.type == "cuda") else (lambda: None)
        self.last = time.perf_counter()

    def lap(self) -> float:
        if not self.enabled:
            return 0.0
        self.sync()
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed
