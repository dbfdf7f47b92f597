"""Point 16 of issue 15: with the tiny model (random weights) previews at fast quality, which
`liveedit serve --model tiny` picks by default, showed a solid black edit pane. Random weights
give noise, but visible noise, at both qualities."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.mark.parametrize("preview_vae", [False, True], ids=["full", "fast"])
def test_random_weight_edits_are_visible_at_both_qualities(models, preview_vae):
    from liveedit.engine.editor import StreamingEditor
    from liveedit.engine.mask_cache import MaskCacheConfig

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(9)]
    editor = StreamingEditor(models, instruction="make it snowy", seed=0, preview_vae=preview_vae,
                             mask_cache=MaskCacheConfig() if preview_vae else None)
    out = [e for f in frames for e in editor.push(f)] + list(editor.finish())
    edited = np.stack(out)
    assert edited.shape == (9, 48, 64, 3)
    assert edited.max() > 16, "the edit is black"
    assert edited.std() > 1, "the edit is one flat colour"
