"""An identity stand-in for the model: the real StreamingEditor (picture mapping, chunking,
8-bit model input, delivery hook) with a VAE that packs each frame into its latent and a
latent stream that edits nothing, so the edited picture is exactly the picture the model
was given. `edit_fn` (optional) changes that picture, as a synthetic edit would."""

from __future__ import annotations

import pytest
import torch

from liveedit.engine.editor import StreamingEditor

GROUP = 4  # pixel frames per latent frame after the first


class PackingVAE:
    """encode: [1, 3, T, h, w] → [1, 3*GROUP, latents, h, w] (a latent holds its frames in
    its channels); decode undoes it: 1 frame for the stream's first latent, then GROUP."""

    def __init__(self):
        self.frames_encoded = 0
        self.latents_decoded = 0

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        groups, start = [], 0
        if self.frames_encoded == 0:
            groups.append(frames[:, :, :1])
            start = 1
        for t in range(start, frames.shape[2], GROUP):
            groups.append(frames[:, :, t : t + GROUP])
        self.frames_encoded += frames.shape[2]
        latents = []
        for g in groups:
            packed = torch.zeros(1, 3 * GROUP, 1, *g.shape[-2:], dtype=g.dtype)
            packed[:, : 3 * g.shape[2], 0] = g.transpose(1, 2).reshape(1, 3 * g.shape[2], *g.shape[-2:])
            latents.append(packed)
        return torch.cat(latents, dim=2)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        out = []
        for i in range(latents.shape[2]):
            n = 1 if self.latents_decoded == 0 else GROUP
            self.latents_decoded += 1
            frames = latents[:, : 3 * n, i].reshape(1, n, 3, *latents.shape[-2:]).transpose(1, 2)
            out.append(frames)
        return torch.cat(out, dim=2)


class IdentityStream:
    last_reused_fraction = None

    def __init__(self, edit_fn=None):
        self.edit_fn = edit_fn

    def start(self, context, seed):
        pass

    def set_context(self, context):
        pass

    def refresh_pending(self):
        pass

    def token_masks(self):
        return []

    def edit_chunk(self, latents: torch.Tensor) -> torch.Tensor:
        if self.edit_fn is None:
            return latents
        # Unpack each latent's frames, edit them as model pictures, pack them again.
        b, c, t, h, w = latents.shape
        frames = latents.reshape(b, GROUP, 3, t, h, w)
        edited = torch.stack([self.edit_fn(frames[:, k]) for k in range(GROUP)], dim=1)
        return edited.reshape(b, c, t, h, w)


class IdentityEditor(StreamingEditor):
    """StreamingEditor whose model hands back the picture it was given (or ``edit_fn`` of it:
    a function of model pictures [B, 3, T, H_model, W_model] in [0, 1])."""

    edit_fn = None

    def __init__(self, models, **kw):
        super().__init__(models, **kw)
        self._stream = IdentityStream(type(self).edit_fn)
        self._vae = PackingVAE()

    def reset(self, instruction=None, seed=None):
        super().reset(instruction=instruction, seed=seed)
        self._vae = PackingVAE()


def editor_with(edit_fn):
    """An IdentityEditor class whose stand-in model applies ``edit_fn`` (for monkeypatching
    liveedit.engine.editor.StreamingEditor where the sidecar builds its editors)."""
    return type("EditingStandIn", (IdentityEditor,), {"edit_fn": staticmethod(edit_fn)})


@pytest.fixture(scope="module")
def models():
    """The tiny preset with random weights: what the editors around the stand-in load."""
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.fixture
def stand_in(monkeypatch):
    """Every StreamingEditor the code under test makes (sidecar/delivery.py makes them all)
    edits nothing: its output is the picture the model was given."""
    monkeypatch.setattr("liveedit.engine.editor.StreamingEditor", IdentityEditor)
