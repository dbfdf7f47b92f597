"""Weights into the engine's modules: state dicts in, loaded modules and EditorModels out.

Nothing here touches a file. The sidecar finds and reads the files (sidecar/weights.py,
sidecar/weight_files.py) and hands each part's state dict over through a `WeightSource`;
the transformer's accepted layouts are engine/checkpoint.py. Every part goes through one
strict load (`load_strict`), so weights that do not fit name what is missing, left over
or mis-shaped, and say what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import torch
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers
from torch import nn

from liveedit.engine.checkpoint import EXPECTED_FORMATS, is_diffusers_naming
from liveedit.engine.config import TAEHV_PRESETS, TAEHVConfig, TextEncoderConfig, TransformerConfig
from liveedit.engine.editor import EditorModels
from liveedit.engine.presets import Preset
from liveedit.engine.taehv import TAEHV, TGrow
from liveedit.engine.text import TextEncoder, Tokenizer, build_umt5, wan_t5_to_transformers
from liveedit.engine.transformer import LiveEditTransformer
from liveedit.engine.vae import build_vae
from liveedit.errors import CheckpointError

StateDict = Mapping[str, torch.Tensor]


# --------------------------------------------------------------------------- strict load
def _listing(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … and {len(items) - limit} more" if len(items) > limit else "")


def state_dict_mismatch(expected: StateDict, given: StateDict) -> list[str]:
    """What keeps ``given`` from loading strictly where ``expected`` is: one phrase each for
    missing, unexpected and mis-shaped names (first few listed). Empty when it fits."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [
        f"{k} (file {list(given[k].shape)}, model {list(expected[k].shape)})"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    return [
        f"{len(names)} {what}: {_listing(names)}"
        for what, names in (("missing", missing), ("unexpected", unexpected), ("with the wrong shape", misshaped))
        if names
    ]


def load_strict(model: nn.Module, state_dict: StateDict, *, what: str, fix: str, assign: bool = False) -> None:
    """Load every weight of ``model`` from ``state_dict``, or raise a CheckpointError
    "<what>: <missing, unexpected, mis-shaped names>. <fix>". ``assign=True`` takes the
    tensors as they are (for a model built on the meta device)."""
    details = state_dict_mismatch(model.state_dict(), state_dict)
    if details:
        raise CheckpointError(f"{what}: {'; '.join(details)}. {fix}")
    model.load_state_dict(state_dict, strict=True, assign=assign)


# --------------------------------------------------------------------------- each part
@dataclass(frozen=True)
class Weights:
    """One part's weights as read: the state dict and where it came from (named in errors)."""

    state: StateDict
    source: str


def load_transformer(config: TransformerConfig, weights: Weights, *, device="cpu", dtype=None,
                     expected_format: str = EXPECTED_FORMATS) -> LiveEditTransformer:
    """The transformer from a state dict with Wan names and a 32-channel patch embedding
    (``checkpoint.canonical_state_dict``), in eval mode."""
    state = weights.state
    hints = []
    if is_diffusers_naming(state):
        hints.append("the names are diffusers' (convert with from_diffusers / canonical_state_dict)")
    if any(k.startswith("model.") for k in state):
        hints.append("names still carry the 'model.' prefix (use select_generator)")
    model = LiveEditTransformer(config)
    load_strict(
        model, state,
        what=f"the weights do not fit {type(model).__name__} (dim {config.dim}, {config.num_layers} layers)",
        fix=(" ".join(h[0].upper() + h[1:] + "." for h in hints) + " " if hints else "")
        + f"Expected {expected_format}, for the same model preset.",
    )
    return model.to(device=device, dtype=dtype).eval()


def load_vae(config: dict, weights: Weights, *, device="cpu", dtype=None):
    """The Wan VAE (diffusers' `AutoencoderKLWan`, eval mode) from a state dict with the
    original Wan names (`Wan2.1_VAE.pth`). The renaming is diffusers' own converter."""
    vae = build_vae(config)
    load_strict(
        vae, convert_wan_vae_to_diffusers(dict(weights.state)),
        what=f"{weights.source} is not a Wan2.1 VAE of this preset",
        fix="Re-download it with `liveedit weights fetch` or check the file given with --weights.",
    )
    return vae.to(device=device, dtype=dtype)


def load_text_encoder(config: TextEncoderConfig, weights: Weights, tokenizer: Tokenizer, *, device="cpu",
                      dtype=None, **options) -> TextEncoder:
    """The instruction encoder from Wan's umT5 state dict (`models_t5_umt5-xxl-enc-bf16.pth`).
    The model is built on the meta device and takes the file's tensors as they are (no
    22 GB random init first). ``options`` go to TextEncoder (offloading, cache size)."""
    with torch.device("meta"):
        model = build_umt5(config)
    load_strict(
        model, wan_t5_to_transformers(weights.state, weights.source), assign=True,
        what=f"{weights.source} does not fit this preset's umT5 encoder",
        fix="Re-download with `liveedit weights fetch` or check the --weights folder.",
    )
    return TextEncoder(config, model, tokenizer, **options).to(device=device, dtype=dtype)


def load_tiny_vae(config: TAEHVConfig, weights: Weights, *, device="cpu", dtype=None) -> TAEHV:
    """The tiny preview VAE from a `taew2_1.pth`-style state dict, in eval mode. A TGrow that
    the file trained with more output frames than this model uses (time upscaling switched
    off for a cheaper preview) keeps its last-frame channels, as the reference does."""
    model = TAEHV(config)
    state = dict(weights.state)
    expected = model.state_dict()
    for i, layer in enumerate(model.decoder):
        key = f"decoder.{i}.conv.weight"
        if isinstance(layer, TGrow) and key in state and state[key].shape[0] > expected[key].shape[0]:
            state[key] = state[key][-expected[key].shape[0] :]
    load_strict(
        model, state,
        what=f"{weights.source} is not a taew2_1 tiny VAE",
        fix="Use taew2_1.pth from madebyollin/taehv (Wan 2.1), not taehv/taew2_2/taehv1_5.",
    )
    return model.to(device=device, dtype=dtype).eval()


# --------------------------------------------------------------------------- whole model
class WeightSource(Protocol):
    """Where a model's weights come from (sidecar/weight_files.py reads them from files).
    Each part is asked for only when it is loaded, so no more than one part's tensors need
    to sit in host memory at a time."""

    description: str  # EditorModels.description
    checkpoint_hash: str | None

    def vae(self) -> Weights: ...  # Wan's original names (Wan2.1_VAE.pth)

    def text_encoder(self) -> Weights: ...  # Wan's umT5 names (models_t5_umt5-xxl-enc-bf16.pth)

    def tokenizer(self) -> Tokenizer: ...

    def transformer(self) -> Weights: ...  # Wan names, 32 input channels (checkpoint.canonical_state_dict)

    def tiny_vae(self) -> Weights | None: ...  # taew2_1.pth, optional (fast previews)


def load_editor_models(preset: Preset, source: WeightSource, *, device="cpu", dtype=torch.bfloat16) -> EditorModels:
    """The preset's modules with trained weights, on ``device`` in ``dtype``, one part at a time."""
    vae = load_vae(preset.vae, source.vae(), device=device, dtype=dtype)
    text_encoder = load_text_encoder(preset.text_encoder, source.text_encoder(), source.tokenizer(),
                                     device=device, dtype=dtype)
    transformer = load_transformer(preset.transformer, source.transformer(), device=device, dtype=dtype)
    tiny = source.tiny_vae()
    tiny_vae = None if tiny is None else load_tiny_vae(TAEHV_PRESETS["taew2_1"], tiny, device=device, dtype=dtype)
    return EditorModels(
        preset=preset,
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        description=source.description,
        random_weights=False,
        checkpoint_hash=source.checkpoint_hash,
        tiny_vae=tiny_vae,
    )
