"""Model presets: which transformer, VAE and text encoder shapes go together, and the
picture size the model works at. Plain data like the configs it names (engine/config.py):
importing it loads no torch. Weights are loaded elsewhere (engine/loading.py)."""

from __future__ import annotations

from dataclasses import dataclass

from liveedit.engine.config import (
    TEXT_ENCODER_PRESETS,
    TRANSFORMER_PRESETS,
    VAE_PRESETS,
    VAE_SPATIAL_STRIDE,
    TextEncoderConfig,
    TransformerConfig,
)
from liveedit.errors import InputError


@dataclass(frozen=True)
class Preset:
    name: str
    transformer: TransformerConfig
    vae: dict
    text_encoder: TextEncoderConfig
    # True for presets that exist only to exercise code paths: no released weights fit them.
    random_only: bool = False

    @property
    def height(self) -> int:
        """Model picture height in pixels (480 for the released model)."""
        return self.transformer.latent_height * VAE_SPATIAL_STRIDE

    @property
    def width(self) -> int:
        return self.transformer.latent_width * VAE_SPATIAL_STRIDE


PRESETS: dict[str, Preset] = {
    "liveedit-1.3b": Preset(
        name="liveedit-1.3b",
        transformer=TRANSFORMER_PRESETS["liveedit-1.3b"],
        vae=VAE_PRESETS["liveedit-1.3b"],
        text_encoder=TEXT_ENCODER_PRESETS["liveedit-1.3b"],
    ),
    "tiny": Preset(
        name="tiny",
        transformer=TRANSFORMER_PRESETS["tiny"],
        vae=VAE_PRESETS["tiny"],
        text_encoder=TEXT_ENCODER_PRESETS["tiny"],
        random_only=True,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(
            f"unknown model preset {name!r}; choose one of {', '.join(sorted(PRESETS))}"
        ) from None
