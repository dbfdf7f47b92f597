"""Transformer state dicts: the layouts weights come in, turned into the one the model loads.

Pure functions over ``{name: tensor}`` dicts; reading files is sidecar/weight_files.py and
the strict load into the model is engine/loading.py.
Accepted inputs (../shared/spec/liveedit-model.md §7, backbone-and-peers.md §B4):
- the released ``.pt`` dict ``{"generator", "generator_ema", "critic"}`` of Self-Forcing /
  LiveEdit, names ``model.<wan name>``, possibly with FSDP ``_fsdp_wrapped_module.`` segments;
- a plain state dict with Wan names (with or without ``model.``);
- Wan2.1's ``diffusion_pytorch_model.safetensors`` (16 input channels: widened here);
- the same weights in diffusers' ``WanTransformer3DModel`` names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from liveedit.errors import CheckpointError

RELEASED_KEYS = ("generator", "generator_ema", "critic")
FSDP_MARKER = "_fsdp_wrapped_module."
EXPECTED_FORMATS = (
    "a LiveEdit/Self-Forcing .pt (generator / generator_ema), a Wan2.1 diffusion_pytorch_model.safetensors, "
    "or a slim LiveEdit .safetensors written by `liveedit weights convert`"
)

# Original Wan name → diffusers name, for keys at the top level and inside blocks.N.
_TOP_NAMES = [
    ("patch_embedding", "patch_embedding"),
    ("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
    ("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
    ("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
    ("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
    ("time_projection.1", "condition_embedder.time_proj"),
    ("head.head", "proj_out"),
    ("head.modulation", "scale_shift_table"),
]
_BLOCK_NAMES = [
    *[(f"{wan}.{a}", f"{dif}.{b}") for wan, dif in (("self_attn", "attn1"), ("cross_attn", "attn2"))
      for a, b in (("q", "to_q"), ("k", "to_k"), ("v", "to_v"), ("o", "to_out.0"), ("norm_q", "norm_q"), ("norm_k", "norm_k"))],
    # Diffusers numbers norms in call order: Wan's cross-attention norm3 is its norm2.
    ("norm3", "norm2"),
    ("norm2", "norm3"),
    ("ffn.0", "ffn.net.0.proj"),
    ("ffn.2", "ffn.net.2"),
    ("modulation", "scale_shift_table"),
]
_BLOCK = re.compile(r"^(blocks\.\d+)\.(.+)$")


# --------------------------------------------------------------------------- released .pt
def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def select_generator(obj, use_ema: bool = False) -> dict[str, torch.Tensor]:
    """The generator's weights, with Wan names, from a loaded ``.pt`` object.

    The released dict holds ``generator`` (used by default), ``generator_ema`` (with
    ``use_ema``) and ``critic`` (never a generator). A plain state dict is taken as is.
    FSDP segments are repaired and the ``model.`` prefix stripped."""
    if isinstance(obj, Mapping) and any(k in obj for k in (*RELEASED_KEYS, "model")):
        present = sorted(k for k in obj if isinstance(k, str))
        wanted = "generator_ema" if use_ema else "generator"
        if wanted in obj:
            chosen = obj[wanted]
        elif not use_ema and "generator_ema" not in obj and _is_state_dict(obj.get("model")):
            chosen = obj["model"]  # training checkpoints of the first stages
        else:
            other = "without --use-ema" if use_ema else "with --use-ema to take 'generator_ema'"
            hint = f"; run {other}" if ("generator" if use_ema else "generator_ema") in obj else ""
            raise CheckpointError(
                f"the checkpoint has no {wanted!r} weights (it holds {', '.join(present)}){hint}. "
                f"Expected {EXPECTED_FORMATS}."
            )
        if not _is_state_dict(chosen):
            raise CheckpointError(f"the checkpoint's {wanted!r} entry is not a state dict of tensors. Expected {EXPECTED_FORMATS}.")
    elif _is_state_dict(obj):
        chosen = obj
    else:
        raise CheckpointError(f"the checkpoint is neither a released LiveEdit dict nor a state dict. Expected {EXPECTED_FORMATS}.")
    return strip_model_prefix(repair_fsdp_names(chosen))


def repair_fsdp_names(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Names written from an FSDP module's parameters: ``…_fsdp_wrapped_module.<name>``
    becomes ``model.<name>`` (the suffix after the last marker), as LiveEdit's loader does."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        new = "model." + key.rsplit(FSDP_MARKER, 1)[1] if FSDP_MARKER in key else key
        if new in out:
            raise CheckpointError(
                f"two checkpoint entries map to {new!r} after removing FSDP wrapper names (one is {key!r}); "
                "the file was saved from a nested FSDP module; save it with a FULL_STATE_DICT instead"
            )
        out[new] = value
    return out


def strip_model_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop leading ``model.`` / ``diffusion_model.`` segments (training wrapper, ComfyUI)."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(("model.", "diffusion_model.")):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


# --------------------------------------------------------------------------- Wan base, diffusers
def widen_wan_base(state_dict: Mapping[str, torch.Tensor], in_channels: int = 32) -> dict[str, torch.Tensor]:
    """Wan2.1's 16-channel patch embedding → LiveEdit's 32: channels 0–15 keep the noisy-latent
    weights, the source channels start at zero, the bias is kept (as LiveEdit's
    ``_expand_input_layer``). A state dict that is already wide is returned unchanged."""
    weight = state_dict.get("patch_embedding.weight")
    if weight is None:
        raise CheckpointError(f"no patch_embedding.weight in the weights. Expected {EXPECTED_FORMATS}.")
    if weight.shape[1] == in_channels:
        return dict(state_dict)
    if weight.shape[1] != in_channels // 2:
        raise CheckpointError(
            f"patch_embedding.weight has {weight.shape[1]} input channels; expected {in_channels // 2} "
            f"(Wan2.1 base) or {in_channels} (LiveEdit)"
        )
    wide = torch.zeros(weight.shape[0], in_channels, *weight.shape[2:], dtype=weight.dtype)
    wide[:, : weight.shape[1]] = weight
    out = dict(state_dict)
    out["patch_embedding.weight"] = wide
    return out


def _rename(state_dict: Mapping[str, torch.Tensor], forward: bool) -> dict[str, torch.Tensor]:
    def convert(name: str, table) -> str | None:
        for wan, dif in table:
            src, dst = (wan, dif) if forward else (dif, wan)
            if name == src or name.startswith(src + "."):
                return dst + name[len(src):]
        return None

    out = {}
    for key, value in state_dict.items():
        match = _BLOCK.match(key)
        inner = convert(match[2], _BLOCK_NAMES) if match else None
        new = f"{match[1]}.{inner}" if inner else convert(key, _TOP_NAMES)
        if new is None:
            naming = "Wan" if forward else "diffusers"
            raise CheckpointError(f"{key!r} is not a {naming} transformer weight name; cannot convert it")
        out[new] = value
    return out


def to_diffusers(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan names → diffusers ``WanTransformer3DModel`` names."""
    return _rename(state_dict, forward=True)


def from_diffusers(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Diffusers ``WanTransformer3DModel`` names → Wan names."""
    return _rename(state_dict, forward=False)


def is_diffusers_naming(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("condition_embedder.", "proj_out.")) for k in state_dict)


def canonical_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Any accepted layout (after :func:`select_generator` for ``.pt`` files) → Wan names and
    a 32-channel patch embedding, ready for ``loading.load_transformer_weights``."""
    sd = strip_model_prefix(state_dict)
    if is_diffusers_naming(sd):
        sd = from_diffusers(sd)
    return widen_wan_base(sd)
