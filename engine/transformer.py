"""LiveEdit's transformer: Wan2.1's DiT with a 32-channel input (noisy latent and clean
source latent side by side on the channel axis) and one timestep per latent frame.

Parameter names are Wan's originals (``blocks.N.self_attn.q``, ``head.modulation``...), so
released Self-Forcing / LiveEdit checkpoints load strictly once ``model.`` is stripped
(engine/checkpoint.py). Shapes and facts: ../shared/spec/liveedit-model.md §1 and
backbone-and-peers.md §A1–A2.

Precision: weights and the residual stream are in the model dtype (bf16 in production).
The per-frame modulation vectors (time embedding, projection, the added ``modulation``
tables), every LayerNorm/RMSNorm, the modulated-norm arithmetic, the gated residual adds
and RoPE run in fp32. They are elementwise or tiny ([B, F, 6, C]), so fp32 costs almost
nothing next to the GEMMs, and it keeps the per-frame timestep signal (t = 250 vs t = 0
is what tells the model a frame is history) from being rounded away. The distilled
checkpoint was trained by Self-Forcing code that ran these in bf16; fp32 is within bf16
rounding of that and is what Wan and diffusers use.
"""

from __future__ import annotations

import contextvars
import functools
import math
import types
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from liveedit.engine.attention import attention
from liveedit.engine.config import LATENT_CHANNELS, TransformerConfig
from liveedit.errors import InputError

# A cache hook: takes this chunk's (rotated) keys and values, returns all keys and values
# the chunk may attend to (history + itself).
KVStore = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# --------------------------------------------------------------------------- fusion
# The elementwise work around the GEMMs (fp32 norms, modulation, gated residuals, RoPE)
# is ~40% of an eager forward at 480x832 (docs/benchmarks.md). With compilation on, each
# of these small functions becomes one or two fused kernels; off (the default, and on
# CPU tests), they run eagerly with identical arithmetic. The switch is the model's own
# (LiveEditTransformer.fuse_elementwise, set from SpeedOptions); the model holds it in
# this context variable for the length of its forward, so the layers need no argument.
_fused: contextvars.ContextVar[bool] = contextvars.ContextVar("liveedit_fuse_elementwise", default=False)


# Shapes per fused function that get kernels of their own (static shapes: the fastest
# code); shapes seen after these share one kernel with a dynamic token count. A stream
# uses one or two shapes per function; the mask cache's bucketed pruned steps bring a new
# token count per bucket, which would otherwise recompile (seconds each, mid-stream) and
# run into dynamo's recompile limit.
_STATIC_SHAPES = 4


def _fusable(fn):
    compiled = None
    dynamic = None
    static: set[tuple] = set()

    @functools.wraps(fn)
    def run(*args):
        nonlocal compiled, dynamic
        if not _fused.get():
            return fn(*args)
        shapes = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        if shapes in static or len(static) < _STATIC_SHAPES:
            static.add(shapes)
            if compiled is None:
                compiled = torch.compile(fn, fullgraph=True, dynamic=False)
            return compiled(*args)
        if dynamic is None:
            # A copy of fn's code object: dynamo keeps its compiled entries (and its
            # recompile count) per code object, so this copy's dynamic kernel stays apart
            # from the static ones.
            twin = types.FunctionType(fn.__code__.replace(co_name=f"{fn.__name__}_dynamic"), fn.__globals__,
                                      f"{fn.__name__}_dynamic", fn.__defaults__, fn.__closure__)
            dynamic = torch.compile(twin, fullgraph=True, dynamic=True)
        return dynamic(*args)

    return run


@_fusable
def _modulated_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm (non-affine, fp32) then per-frame modulation; x ``[B, F, T, C]``."""
    return (F.layer_norm(x.float(), x.shape[-1:], eps=eps) * (1 + scale) + shift).to(x.dtype)


@_fusable
def _residual_modulated_norm(x: torch.Tensor, y: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float):
    """x + y (the cross-attention residual, in the model dtype), then the modulated norm of
    the sum: one pass instead of an eager add plus the norm. Returns (sum, normed)."""
    total = (x.float() + y.float()).to(x.dtype)
    return total, (F.layer_norm(total.float(), total.shape[-1:], eps=eps) * (1 + scale) + shift).to(x.dtype)


@_fusable
def _gated_residual(x: torch.Tensor, y: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """x + y·gate in fp32, per frame; x, y ``[B, F, T, C]``."""
    return (x.float() + y.float() * gate).to(x.dtype)


@_fusable
def _norm_rope(x: torch.Tensor, weight: torch.Tensor, eps: float, cos: torch.Tensor, sin: torch.Tensor, heads: int) -> torch.Tensor:
    """RMSNorm over all heads, then RoPE: the query/key path of self-attention."""
    xf = x.float()
    normed = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight
    return RotaryEmbedding.apply(normed.unflatten(-1, (heads, -1)), cos, sin)


@_fusable
def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over all heads (the cross-attention query path)."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).type_as(x) * weight


@_fusable
def _affine_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x.float(), x.shape[-1:], weight.float(), bias.float(), eps).to(x.dtype)


def _feed_forward(ffn: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """Linear → tanh-GELU → Linear. With fusion on (CUDA only), the GELU runs in the first
    GEMM's epilogue (cuBLASLt's GELU, the tanh form; torch's CPU kernel for the same call
    uses the erf form, hence CUDA only), saving a pass over the 8960-wide hidden layer."""
    up, down = ffn[0], ffn[2]
    if not (_fused.get() and h.is_cuda):
        return ffn(h)
    hidden = torch._addmm_activation(up.bias, h.flatten(0, -2), up.weight.t(), use_gelu=True)
    return down(hidden.unflatten(0, h.shape[:-1]))


# --------------------------------------------------------------------------- RoPE
class RotaryEmbedding:
    """Wan's 3-axis RoPE in real arithmetic. The head dim's D/2 adjacent pairs (2i, 2i+1)
    split into time / height / width groups (22/21/21 for D = 128); each group rotates by
    position × θ^(-2j/d_axis) with its own axis position. Height and width use tables of
    ``max_positions`` rows (Wan's 1024), built in float64 and kept in fp32 (plain tensors,
    not buffers, so ``model.to(bfloat16)`` cannot round them). Time angles are computed in
    float64 for any position, so a stream's frames can sit at unbounded absolute positions
    (engine/cache.py); below 1024 the values equal Wan's table exactly."""

    def __init__(self, head_dim: int, max_positions: int = 1024, theta: float = 10000.0):
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head dim, got {head_dim}")
        spatial = 2 * (head_dim // 6)
        self.axis_dims = (head_dim - 2 * spatial, spatial, spatial)
        self.time_pairs = self.axis_dims[0] // 2
        self.max_positions = max_positions
        # On the CPU explicitly: a model built under `with torch.device("cuda")` must not
        # put these host-side tables on the GPU (frames() mixes them with CPU positions).
        cpu = torch.device("cpu")
        self.inv_freq = [
            1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64, device=cpu) / d) for d in self.axis_dims
        ]
        positions = torch.arange(max_positions, dtype=torch.float64, device=cpu)
        angles = [torch.outer(positions, f) for f in self.inv_freq]
        self._tables = {torch.device("cpu"): ([a.cos().float() for a in angles], [a.sin().float() for a in angles])}

    def _on(self, device: torch.device):
        if device not in self._tables:
            cos, sin = self._tables[torch.device("cpu")]
            self._tables[device] = ([c.to(device) for c in cos], [s.to(device) for s in sin])
        return self._tables[device]

    def frames(self, first_frame: int, num_frames: int, height: int, width: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin ``[num_frames·height·width, D/2]`` (fp32) for tokens in (frame, row,
        column) order, frames at positions ``first_frame …`` (any non-negative position)."""
        if first_frame < 0 or max(height, width) > self.max_positions:
            raise InputError(
                f"RoPE positions frame {first_frame}.., {height}x{width} tokens: frames must be at positions >= 0 "
                f"and the token grid within the {self.max_positions}-row table"
            )
        device = torch.device(device)
        positions = torch.arange(first_frame, first_frame + num_frames, dtype=torch.float64, device="cpu")
        time_angles = torch.outer(positions, self.inv_freq[0])
        time = (time_angles.cos().float().to(device), time_angles.sin().float().to(device))
        out = []
        for t, table in zip(time, self._on(device)):
            h, w = table[1][:height], table[2][:width]
            grid = torch.cat(
                [
                    t[:, None, None, :].expand(num_frames, height, width, -1),
                    h[None, :, None, :].expand(num_frames, height, width, -1),
                    w[None, None, :, :].expand(num_frames, height, width, -1),
                ],
                dim=-1,
            )
            out.append(grid.reshape(num_frames * height * width, -1))
        return out[0], out[1]

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate ``x [B, L, H, D]`` by ``cos/sin [L, D/2]`` (or ``[D/2]`` for every token)."""
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # broadcast over heads
        pairs = x.float().unflatten(-1, (-1, 2))
        x1, x2 = pairs[..., 0], pairs[..., 1]
        return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)

    def shift_frames(self, x: torch.Tensor, shift: int) -> torch.Tensor:
        """Move already-rotated keys ``[B, L, H, D]`` ``shift`` frames earlier in time:
        rotations compose, so rotating the time pairs by −shift gives exactly the keys
        a fresh computation at (position − shift) would give, up to rounding."""
        angle = -shift * self.inv_freq[0]
        cos, sin = angle.cos().float().to(x.device), angle.sin().float().to(x.device)
        n = 2 * self.time_pairs
        return torch.cat([self.apply(x[..., :n], cos, sin), x[..., n:]], dim=-1)


# --------------------------------------------------------------------------- layers
class RMSNorm(nn.Module):
    """Wan's RMSNorm over the full projection width (all heads together)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def _layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Wan's non-affine LayerNorm (norm1, norm2, head.norm), computed in fp32."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


def _fp32_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x.float(), layer.weight.float(), layer.bias.float())


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

        self._qkv: tuple | None = None  # (weight, bias, the parameters' identity) with fusion on

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v projections. With fusion on, one GEMM over the three weights stacked (at
        4680 tokens: 0.13 ms instead of 3 x 0.064 on an H100); the stacked copy is rebuilt
        whenever the parameters change (loading, .to())."""
        if not _fused.get():
            return self.q(x), self.k(x), self.v(x)
        layers = (self.q, self.k, self.v)
        identity = tuple((m.weight.data_ptr(), m.weight._version, m.bias._version) for m in layers)
        if self._qkv is None or self._qkv[2] != identity:
            self._qkv = (torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers]), identity)
        return F.linear(x, self._qkv[0], self._qkv[1]).chunk(3, dim=-1)

    def forward(self, x, rope: tuple[torch.Tensor, torch.Tensor], store: KVStore | None, mask) -> torch.Tensor:
        q, k, v = self._project(x)
        q = _norm_rope(q, self.norm_q.weight, self.norm_q.eps, *rope, self.num_heads)
        k = _norm_rope(k, self.norm_k.weight, self.norm_k.eps, *rope, self.num_heads)
        v = v.unflatten(-1, (self.num_heads, -1))
        if store is not None:
            k, v = store(k, v)
        return self.o(attention(q, k, v, mask, fast_ok=True).flatten(-2))

    def write_kv(self, x, rope: tuple[torch.Tensor, torch.Tensor], store: KVStore) -> None:
        """Only the keys and values into the cache: all the last block of a refresh pass needs."""
        _, k, v = self._project(x)
        store(_norm_rope(k, self.norm_k.weight, self.norm_k.eps, *rope, self.num_heads), v.unflatten(-1, (self.num_heads, -1)))


class CrossAttention(nn.Module):
    """Attention from video tokens to the instruction's tokens. All text positions are
    attended, padding included, as released (context_lens is None)."""

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def context_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        heads = (self.num_heads, -1)
        return self.norm_k(self.k(context)).unflatten(-1, heads), self.v(context).unflatten(-1, heads)

    def forward(self, x: torch.Tensor, context_kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        q = _rms_norm(self.q(x), self.norm_q.weight, self.norm_q.eps).unflatten(-1, (self.num_heads, -1))
        return self.o(attention(q, *context_kv).flatten(-2))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.eps = cfg.eps
        self.self_attn = SelfAttention(cfg.dim, cfg.num_heads, cfg.eps)
        self.norm3 = nn.LayerNorm(cfg.dim, eps=cfg.eps)  # affine, before cross-attention
        self.cross_attn = CrossAttention(cfg.dim, cfg.num_heads, cfg.eps)
        self.ffn = nn.Sequential(nn.Linear(cfg.dim, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, cfg.dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, cfg.dim) / cfg.dim**0.5)

    def forward(self, x, e0, frames: int, rope, context_kv, store: KVStore | None = None, mask=None, reuse=None):
        """x ``[B, F·T, C]``; e0 ``[B, F, 6, C]`` fp32: one set of six modulation vectors
        per latent frame (shift, scale, gate for self-attention, then for the FFN)."""
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = self._modulation(e0)

        def per_frame(t: torch.Tensor) -> torch.Tensor:  # [B, F·T, C] -> [B, F, T, C]
            return t.unflatten(1, (frames, -1))

        h = _modulated_norm(per_frame(x), scale_sa, shift_sa, self.eps).flatten(1, 2)
        # reuse: the mask cache's hook (engine/mask_cache.py) may compute only some tokens.
        if reuse is None:
            y = self.self_attn(h, rope, store, mask)
        else:
            y = reuse.self_attn(self.self_attn, h, rope, store, mask)
        x = _gated_residual(per_frame(x), per_frame(y), gate_sa).flatten(1, 2)

        h = _affine_norm(x, self.norm3.weight, self.norm3.bias, self.eps)
        x, h = _residual_modulated_norm(per_frame(x), per_frame(self.cross_attn(h, context_kv)), scale_ff, shift_ff, self.eps)
        x, h = x.flatten(1, 2), h.flatten(1, 2)
        y = _feed_forward(self.ffn, h) if reuse is None else reuse.ffn(self.ffn, h)
        return _gated_residual(per_frame(x), per_frame(y), gate_ff).flatten(1, 2)

    def _modulation(self, e0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The six per-frame vectors, each ``[B, F, 1, C]`` (broadcast over a frame's tokens)."""
        return (self.modulation.float().unsqueeze(1) + e0).unsqueeze(3).unbind(2)

    def write_kv(self, x, e0, frames: int, rope, store: KVStore) -> None:
        """The block's keys and values for ``x`` into the cache, nothing else (its output
        would only feed the head, which a refresh pass does not read)."""
        shift_sa, scale_sa = self._modulation(e0)[:2]
        h = _modulated_norm(x.unflatten(1, (frames, -1)), scale_sa, shift_sa, self.eps).flatten(1, 2)
        self.self_attn.write_kv(h, rope, store)


class Head(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.eps = cfg.eps
        self.head = nn.Linear(cfg.dim, cfg.out_channels * math.prod(cfg.patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, cfg.dim) / cfg.dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor, frames: int) -> torch.Tensor:
        """e ``[B, F, C]`` fp32: the time embedding itself (not the 6-way projection)."""
        shift, scale = (self.modulation.float().unsqueeze(1) + e.unsqueeze(2)).unsqueeze(3).unbind(2)
        h = _layer_norm(x.unflatten(1, (frames, -1)), self.eps) * (1 + scale) + shift
        return self.head(h.flatten(1, 2).to(x.dtype))


def timestep_features(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's sinusoidal timestep features: cos first, then sin, base 10000, in float64
    (t reaches 1000, where fp32 arguments would lose ~1e-4 of phase)."""
    half = dim // 2
    t = timesteps.to(torch.float64)
    angles = t[..., None] * torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    return torch.cat([angles.cos(), angles.sin()], dim=-1).float()


# --------------------------------------------------------------------------- model
class LiveEditTransformer(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        cfg = self.config = config
        if cfg.dim % cfg.num_heads:
            raise ValueError(f"dim {cfg.dim} is not a multiple of num_heads {cfg.num_heads}")
        self.patch_embedding = nn.Conv3d(cfg.in_channels, cfg.dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, cfg.dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.dim, cfg.dim))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        self.rope = RotaryEmbedding(cfg.head_dim, cfg.rope_max_positions, cfg.rope_theta)
        # Fuse the elementwise work with torch.compile (a few seconds of compilation per new
        # chunk shape on first use); engine/speed.py switches it.
        self.fuse_elementwise = False

    # -- pieces shared by the whole-clip and the cached forward ---------------------------
    def embed_context(self, context: torch.Tensor) -> torch.Tensor:
        """Instruction embeddings ``[B, L, text_dim]`` → ``[B, L, dim]``."""
        if context.ndim != 3 or context.shape[-1] != self.config.text_dim:
            raise InputError(
                f"instruction context must be [batch, tokens, {self.config.text_dim}], got {list(context.shape)}; "
                "encode the instruction with the text encoder of the same preset"
            )
        return self.text_embedding(context.to(self._dtype))

    def context_kv(self, context: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cross-attention keys and values of every block for one instruction (what the
        cross-attention cache holds)."""
        embedded = self.embed_context(context)
        return [block.cross_attn.context_kv(embedded) for block in self.blocks]

    @property
    def _dtype(self) -> torch.dtype:
        return self.patch_embedding.weight.dtype

    def _embed_video(self, noisy: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        if noisy.ndim != 5 or noisy.shape != source.shape or noisy.shape[1] != LATENT_CHANNELS:
            raise InputError(
                f"noisy and source latents must both be [B, {LATENT_CHANNELS}, F, H, W] of one shape, got "
                f"{list(noisy.shape)} and {list(source.shape)}"
            )
        pt, ph, pw = self.config.patch_size
        _, _, f, h, w = noisy.shape
        if f % pt or h % ph or w % pw:
            raise InputError(f"latent size {f}x{h}x{w} is not a multiple of the patch size {self.config.patch_size}")
        x = self.patch_embedding(torch.cat([noisy, source], dim=1).to(self._dtype))  # noisy first, source second
        return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])

    def _time(self, timesteps: torch.Tensor, batch: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame timesteps → (e ``[B, F, C]``, e0 ``[B, F, 6, C]``), both fp32."""
        t = torch.as_tensor(timesteps, device=self.patch_embedding.weight.device)
        t = t.reshape(-1, 1) if t.ndim == 1 else t
        try:
            t = t.expand(batch, frames)
        except RuntimeError:
            raise InputError(f"timesteps must be a number, [B] or [B, F] = [{batch}, {frames}], got {list(t.shape)}") from None
        feats = timestep_features(t, self.config.freq_dim)
        e = _fp32_linear(self.time_embedding[2], F.silu(_fp32_linear(self.time_embedding[0], feats)))
        e0 = _fp32_linear(self.time_projection[1], F.silu(e)).unflatten(-1, (6, -1))
        return e, e0

    def _unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        pt, ph, pw = self.config.patch_size
        f, h, w = grid
        x = x.reshape(x.shape[0], f, h, w, pt, ph, pw, -1)
        return x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(x.shape[0], -1, f * pt, h * ph, w * pw)

    def _run(self, *args, **kwargs):
        token = _fused.set(self.fuse_elementwise)
        try:
            return self._run_blocks(*args, **kwargs)
        finally:
            _fused.reset(token)

    def _run_blocks(self, noisy, source, timesteps, context_kv, rope, stores=None, mask=None, reuse=None, kv_only=False):
        """``rope``: the cos/sin of the tokens, or the first frame's position (an int).
        ``kv_only``: only fill the caches through ``stores`` and return None (a refresh pass)."""
        x, grid = self._embed_video(noisy, source)
        e, e0 = self._time(timesteps, x.shape[0], grid[0])
        if isinstance(rope, int):
            rope = self.rope.frames(rope, *grid, device=x.device)
        blocks = list(self.blocks)
        last = blocks.pop() if kv_only else None
        for i, block in enumerate(blocks):
            x = block(x, e0, grid[0], rope, context_kv[i], stores[i] if stores else None, mask, reuse[i] if reuse else None)
        if kv_only:
            last.write_kv(x, e0, grid[0], rope, stores[-1])
            return None
        return self._unpatchify(self.head(x, e, grid[0]), grid)

    # -- public forwards -------------------------------------------------------------------
    def forward(
        self,
        noisy: torch.Tensor,
        source: torch.Tensor,
        timesteps: torch.Tensor | float,
        context: torch.Tensor,
        *,
        frame_offset: int = 0,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Whole clip at once (bidirectional unless ``attention_mask`` says otherwise).

        noisy, source ``[B, 16, F, H, W]``; timesteps a number, ``[B]`` or ``[B, F]`` (0…1000);
        context ``[B, L, text_dim]``; frames sit at RoPE positions ``frame_offset …``.
        Returns the flow prediction v = ε − x0, ``[B, 16, F, H, W]`` in the model dtype."""
        return self._run(noisy, source, timesteps, self.context_kv(context), frame_offset, mask=attention_mask)

    def chunk_rope(self, position: int, frames: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """RoPE cos/sin of a chunk of ``frames`` latent frames at stream position ``position``."""
        cfg = self.config
        _, ph, pw = cfg.patch_size
        return self.rope.frames(position, frames, cfg.latent_height // ph, cfg.latent_width // pw, device)

    def forward_chunk(self, noisy, source, timesteps, kv_cache, context_kv, reuse=None, rope=None, kv_only=False):
        """One chunk through the KV cache: the chunk's keys/values go into the slots that
        ``kv_cache.begin_chunk`` reserved, then the chunk attends over history + itself.
        ``context_kv`` is from :meth:`context_kv` (the cross-attention cache); ``reuse``, one
        hook per block from engine/mask_cache.py, or None for a plain forward; ``rope``, the
        chunk's :meth:`chunk_rope` at ``kv_cache.position`` (computed when None).
        ``kv_only``: a clean refresh pass, which only writes keys/values: the last block
        stops after its K/V projections and None is returned (the same cache contents)."""
        frames = noisy.shape[2] // self.config.patch_size[0] if noisy.ndim == 5 else -1
        if frames != kv_cache.chunk_frames:
            raise InputError(f"chunk has {frames} latent frames but the cache reserved {kv_cache.chunk_frames}")
        stores = [lambda k, v, i=i: kv_cache.store(i, k, v) for i in range(len(self.blocks))]
        if rope is None:
            rope = self.chunk_rope(kv_cache.position, frames, noisy.device)
        return self._run(noisy, source, timesteps, context_kv, rope, stores=stores, reuse=reuse, kv_only=kv_only)
