"""Model presets: which transformer, VAE and text encoder shapes go together, and the
picture size the model works at. Plain data; weights are loaded elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

from liveedit.errors import InputError
from liveedit.engine.text import TEXT_ENCODER_PRESETS, TextEncoderConfig
from liveedit.engine.transformer import TRANSFORMER_PRESETS, TransformerConfig
from liveedit.engine.vae import VAE_PRESETS

# The Wan VAE compresses 8x in space and 4x in time (first frame alone).
VAE_SPATIAL_STRIDE = 8
VAE_TEMPORAL_STRIDE = 4


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
