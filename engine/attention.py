"""Scaled dot-product attention for the transformer, and the masks it may need.

Layout: q, k, v and the result are ``[B, L, H, D]`` (batch, tokens, heads, head dim), the
layout the projections produce and the KV cache stores, so no copy is needed before a
cache write. torch SDPA wants ``[B, H, L, D]``; we pass transposed views.

Backend choice (see ../shared/spec/backbone-and-peers.md §F): at inference attention is
dense (the chunk is the newest block of the cache), so no mask is needed and the fastest
dense kernel wins. On Hopper that is SDPA's cuDNN backend (~1.8x the flash backend at our
shapes), which torch does not pick by default, so we ask for it and fall back to the
flash / memory-efficient / math kernels. flash-attn is used only when someone asks for it
and it imports; nothing here requires a compiled extension.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from liveedit.engine import fast_attention
from liveedit.errors import InputError

BACKENDS = ("auto", "sdpa", "flash-attn")

_SDPA_PRIORITY = [
    SDPBackend.CUDNN_ATTENTION,
    SDPBackend.FLASH_ATTENTION,
    SDPBackend.EFFICIENT_ATTENTION,
    SDPBackend.MATH,
]

_requested = "auto"
# Set when cuDNN refused a shape once ("No execution plans" on some builds): stop asking.
_cudnn_failed = False


def set_attention_backend(name: str) -> None:
    """Choose the attention kernel: "auto" (SDPA, cuDNN first on Hopper), "sdpa" (torch's
    own choice), or "flash-attn" (the flash-attn package; falls back to SDPA when it is
    not installed or the inputs are not fp16/bf16 CUDA tensors)."""
    global _requested
    if name not in BACKENDS:
        raise InputError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
    _requested = name


def _flash_attn_func():
    try:
        from flash_attn import flash_attn_func  # optional, never a dependency
    except ImportError:
        return None
    return flash_attn_func


def _is_hopper(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] == 9


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, *, fast_ok: bool = False) -> torch.Tensor:
    """softmax(q kᵀ / √D) v over ``[B, L, H, D]`` tensors; ``mask`` is an optional bool
    ``[Lq, Lk]`` tensor, True where a query may see a key, or a KeyLimit (engine/mask_cache.py:
    only the first keys are real). Returns ``[B, Lq, H, D]``. ``fast_ok``: the caller
    (self-attention) accepts FP8 attention when fast numerics are on
    (engine/fast_attention.py); everything else stays on the reference path."""
    global _cudnn_failed
    if mask is not None and not isinstance(mask, torch.Tensor):
        return _attention_key_limit(q, k, v, mask)
    if fast_ok and fast_attention.wanted(q, mask):
        return fast_attention.fp8_attention(q, k, v)
    if _requested == "flash-attn" and mask is None and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16):
        flash = _flash_attn_func()
        if flash is not None:
            return flash(q, k, v)

    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if _requested == "auto" and mask is None and not _cudnn_failed and _is_hopper(q.device):
        try:
            with sdpa_kernel(_SDPA_PRIORITY, set_priority=True):
                return F.scaled_dot_product_attention(qt, kt, vt).transpose(1, 2)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError:  # e.g. "No execution plans" for a shape this cuDNN cannot do
            _cudnn_failed = True
    return F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask).transpose(1, 2)


def _attention_key_limit(q, k, v, limit) -> torch.Tensor:
    """Attention over the first ``limit.host`` keys only; query rows past ``limit.rows`` are
    padding. Off CUDA (no graphs are recorded) keys and queries are sliced on the host:
    exactly the unpadded computation (the CPU kernels switch algorithms for a few leftover
    query rows, so even padded query rows would change the real rows' last bits), and the
    padded rows' outputs are zeros. On CUDA the key count is a device tensor that a graph
    reads at replay, turned into a key mask for SDPA (torch picks its memory-efficient
    kernel for masks: ~1.5x cuDNN's time at these sizes, on 2 of 5 forwards' small query
    sets). cuDNN's ragged attention would take the count directly, but on torch 2.11 it
    breaks CUDA graph capture and took ~57 ms a call (H200, issue 19 probe)."""
    if not q.is_cuda:
        real = attention(q[:, : limit.rows], k[:, : limit.host], v[:, : limit.host])
        return torch.cat([real, real.new_zeros(q.shape[0], q.shape[1] - limit.rows, *q.shape[2:])], 1)
    valid = torch.arange(k.shape[1], device=k.device) < limit.count  # [Lk]
    return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                          attn_mask=valid.view(1, 1, 1, -1)).transpose(1, 2)


def attention_backend(device: torch.device | str | None = None) -> str:
    """One line for stats and benchmarks: which kernel `attention` uses on ``device``."""
    device = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if _requested == "flash-attn" and device.type == "cuda" and _flash_attn_func() is not None:
        import flash_attn

        return f"flash-attn {flash_attn.__version__}"
    if device.type != "cuda":
        return f"torch {torch.__version__} SDPA ({device.type})"
    name = torch.cuda.get_device_name(device)
    if _requested == "auto" and _is_hopper(device) and not _cudnn_failed:
        return f"torch {torch.__version__} SDPA cuDNN first ({name})"
    return f"torch {torch.__version__} SDPA default ({name})"


def block_causal_mask(chunk_frames: list[int], tokens_per_frame: int, device=None) -> torch.Tensor:
    """Bool ``[L, L]`` mask for a sequence made of chunks of the given frame counts: a
    token sees every token up to the end of its own chunk. This is what the KV-cache loop
    computes chunk by chunk; the whole-sequence form is for tests and training."""
    ends = torch.cumsum(torch.tensor(chunk_frames, device=device), 0) * tokens_per_frame
    token_end = torch.repeat_interleave(ends, torch.tensor(chunk_frames, device=device) * tokens_per_frame)
    keys = torch.arange(int(ends[-1]), device=device)
    return keys[None, :] < token_end[:, None]
