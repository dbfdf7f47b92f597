"""The instruction encoder: umT5-XXL's encoder (transformers' `UMT5EncoderModel`).

LiveEdit encodes the edit instruction the way Wan does (spec liveedit-model.md §6):
whitespace-cleaned text, special tokens added, at most 512 tokens, the encoder's last
hidden state kept for the real tokens and the rows past them set to zero, so the
context is always [1, 512, 4096]. The padded rows are not masked later (the
transformer attends to all 512), so zeros there are part of the numerics.

We run the encoder on the real tokens only. With T5's relative position bias and the
padding masked out, the real tokens' states are the same as in Wan's padded run; the
zero rows are then added. tests/test_text.py checks this against a padded, masked run.

The 11 GB encoder must not sit on the GPU while a stream runs: `encode` moves it to
the compute device, encodes, and `offload()`s it back to the CPU. Results are cached
per instruction, so re-starting a stream with the same words costs nothing.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

import torch
from transformers import UMT5Config, UMT5EncoderModel

from liveedit.engine.config import TextEncoderConfig
from liveedit.errors import CheckpointError, InputError

log = logging.getLogger(__name__)

PAD_ID, EOS_ID, UNK_ID = 0, 1, 2  # umT5's special token ids; the byte tokenizer reuses them


def umt5_config(config: TextEncoderConfig) -> UMT5Config:
    """transformers' configuration of the umT5 encoder of ``config``'s shape."""
    return UMT5Config(
        vocab_size=config.vocab_size,
        d_model=config.d_model,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        relative_attention_num_buckets=config.relative_attention_num_buckets,
        relative_attention_max_distance=config.relative_attention_max_distance,
        feed_forward_proj="gated-gelu",  # Wan's tanh-GELU gate = transformers' gelu_new
        layer_norm_epsilon=1e-6,
        dropout_rate=0.0,
        is_encoder_decoder=False,
        use_cache=False,
    )


# -- tokenizers ----------------------------------------------------------------------
class Tokenizer(Protocol):
    def __call__(self, text: str) -> list[int]:
        """Token ids of `text` with the end-of-sequence token, untruncated."""


class ByteTokenizer:
    """Deterministic stand-in for the tiny preset: one token per UTF-8 byte, then EOS."""

    def __call__(self, text: str) -> list[int]:
        return [b + 3 for b in text.encode("utf-8")] + [EOS_ID]


class HubTokenizer:
    """The real `google/umt5-xxl` tokenizer, read from a local folder (never the network)."""

    def __init__(self, folder: str):
        from transformers import AutoTokenizer

        try:
            self._tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot read the umT5 tokenizer from {folder}: {exc}. "
                "Run `liveedit weights fetch`, or give --weights DIR holding google/umt5-xxl/."
            ) from exc

    def __call__(self, text: str) -> list[int]:
        return list(self._tok(text, add_special_tokens=True)["input_ids"])


def clean_instruction(text: str) -> str:
    """Wan's 'whitespace' cleaning: HTML entities undone, runs of whitespace collapsed.
    (Wan also runs ftfy's mojibake repair; typed instructions do not need it.)"""
    text = html.unescape(html.unescape(text))
    return re.sub(r"\s+", " ", text).strip()


# -- Wan's original checkpoint names ---------------------------------------------------
_WAN_BLOCK_NAMES = {
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm1.weight": "layer.0.layer_norm.weight",
    # Wan computes fc1(x) * gelu(gate(x)); transformers gelu(wi_0(x)) * wi_1(x).
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
}


def wan_t5_to_transformers(state_dict: dict[str, torch.Tensor], source: str = "the T5 file") -> dict[str, torch.Tensor]:
    """Rename Wan's `models_t5_umt5-xxl-enc-bf16.pth` keys (`wan/modules/t5.py`, T5Encoder
    with per-layer position embeddings) to `UMT5EncoderModel` keys. Unknown keys raise
    CheckpointError rather than being dropped silently."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state_dict.items():
        if key == "token_embedding.weight":
            # The embedding is tied: UMT5EncoderModel names it twice.
            out["shared.weight"] = value
            out["encoder.embed_tokens.weight"] = value
        elif key == "norm.weight":
            out["encoder.final_layer_norm.weight"] = value
        elif (m := re.fullmatch(r"blocks\.(\d+)\.(.+)", key)) and m[2] in _WAN_BLOCK_NAMES:
            out[f"encoder.block.{m[1]}.{_WAN_BLOCK_NAMES[m[2]]}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(
            f"{source} has {len(unknown)} names that are not part of Wan's umT5 encoder "
            f"(e.g. {unknown[:3]}); expected models_t5_umt5-xxl-enc-bf16.pth from Wan-AI/Wan2.1-T2V-1.3B"
        )
    return out


def build_umt5(config: TextEncoderConfig) -> UMT5EncoderModel:
    return UMT5EncoderModel(umt5_config(config)).eval().requires_grad_(False)


# -- the encoder -----------------------------------------------------------------------
@dataclass(frozen=True)
class TextEncodeStats:
    tokens: int  # tokens used, EOS included (<= text_len)
    tokens_requested: int  # before truncation
    truncated: bool
    cached: bool
    seconds: float
    warning: str | None = None


class TextEncoder:
    """Tokenizer + umT5 encoder; `encode(instruction) -> [1, text_len, d_model]`."""

    def __init__(
        self,
        config: TextEncoderConfig,
        model: UMT5EncoderModel,
        tokenizer: Tokenizer | Callable[[str], list[int]],
        *,
        device: torch.device | str = "cpu",
        offload_after_encode: bool = True,
        cache_size: int = 32,
    ):
        self.config = config
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.offload_after_encode = offload_after_encode
        self.cache_size = cache_size
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.last_stats: TextEncodeStats | None = None

    @classmethod
    def random(cls, config: TextEncoderConfig, *, seed: int = 0, tokenizer: Tokenizer | None = None) -> "TextEncoder":
        """Random weights of the config's shapes (the byte tokenizer unless one is given)."""
        torch.manual_seed(seed)
        if tokenizer is None:
            if config.tokenizer != "bytes":
                raise InputError(
                    f"a random {config.d_model}-wide umT5 encoder needs a tokenizer: pass one, "
                    "or use the tiny preset, whose tokenizer needs no files"
                )
            tokenizer = ByteTokenizer()
        return cls(config, build_umt5(config), tokenizer)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "TextEncoder":
        """Set the device encoding runs on and the weights' dtype. With offloading on,
        the weights stay on the CPU between encodes and visit `device` only to encode."""
        if dtype is not None:
            self.model.to(dtype=dtype)
        if device is not None:
            self.device = torch.device(device)
            if not self.offload_after_encode:
                self.model.to(self.device)
        self._cache.clear()  # cached embeddings were made at the old dtype
        return self

    def offload(self) -> None:
        """Move the encoder's weights to the CPU and give the GPU memory back."""
        self.model.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def clear_cache(self) -> None:
        self._cache.clear()

    def tokenize(self, instruction: str) -> tuple[list[int], int]:
        """(ids truncated to text_len with EOS kept last, untruncated count)."""
        if not isinstance(instruction, str):
            raise InputError(f"the instruction must be text, got {type(instruction).__name__}")
        text = clean_instruction(instruction)
        if not text:
            raise InputError("the instruction is empty; describe the edit, e.g. 'make the sky stormy'")
        ids = list(self.tokenizer(text))
        requested = len(ids)
        limit = self.config.text_len
        if requested > limit:
            ids = ids[: limit - 1] + [EOS_ID]  # what the tokenizer's own truncation does
        return ids, requested

    @torch.no_grad()
    def encode(self, instruction: str) -> torch.Tensor:
        start = time.perf_counter()
        ids, requested = self.tokenize(instruction)
        key = clean_instruction(instruction)
        truncated = requested > len(ids)
        warning = None
        if truncated:
            warning = (
                f"the instruction is {requested} tokens long; only the first {self.config.text_len} "
                "are used (the model's text length). Shorten it to keep the end."
            )
        if key in self._cache:
            self._cache.move_to_end(key)
            context = self._cache[key].to(self.device, copy=True)
            self.last_stats = TextEncodeStats(
                len(ids), requested, truncated, True, time.perf_counter() - start, warning
            )
            return context

        if truncated:
            log.warning(warning)
        self.model.to(self.device)
        try:
            input_ids = torch.tensor([ids], device=self.device)
            hidden = self.model(input_ids=input_ids).last_hidden_state  # [1, L, d]
        finally:
            if self.offload_after_encode and self.device.type != "cpu":
                self.offload()
        context = hidden.new_zeros(1, self.config.text_len, self.config.d_model)
        context[:, : len(ids)] = hidden

        self._cache[key] = context.detach().to("cpu", copy=True)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self.last_stats = TextEncodeStats(len(ids), requested, truncated, False, time.perf_counter() - start, warning)
        return context

