"""StreamingEditor on the tiny preset (random weights): frame bookkeeping, picture
mapping, determinism and streaming behaviour. Random weights edit nothing, so these tests
check the plumbing, not edit quality."""

from __future__ import annotations

import numpy as np
import pytest

from liveedit.engine.editor import EditorModels, StreamingEditor
from liveedit.errors import InputError
from liveedit.engine.presets import get_preset


@pytest.fixture(scope="module")
def models():
    return EditorModels.random(get_preset("tiny"), seed=0)


def clip(n: int, h: int = 50, w: int = 90, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_random_models_say_so(models):
    assert models.random_weights
    assert "RANDOM" in models.description


@pytest.mark.parametrize("n", [1, 8, 9, 10, 21, 22, 100])
def test_frame_count_and_size_preserved(models, n):
    editor = StreamingEditor(models, instruction="make the fur snowy white", seed=3)
    out = list(editor.edit(clip(n)))
    assert len(out) == n
    assert all(f.shape == (50, 90, 3) and f.dtype == np.uint8 for f in out)
    assert editor.frames_in == editor.frames_out == n
    assert sum(s.source_frames for s in editor.stats) == n


def test_order_preserved_chunk_by_chunk(models):
    """Each chunk's output must line up with its own input frames: a stream cut into the
    same chunks must give the same frames whether fed all at once or chunk by chunk."""
    frames = clip(21, seed=5)
    whole = list(StreamingEditor(models, instruction="x", seed=1).edit(frames))
    editor = StreamingEditor(models, instruction="x", seed=1)
    pieces = []
    for i, f in enumerate(frames):
        got = editor.push(f)
        if i + 1 in (9, 21):
            assert len(got) == (9 if i + 1 == 9 else 12)
        else:
            assert got == []
        pieces.extend(got)
    assert editor.finish() == []
    assert all(np.array_equal(a, b) for a, b in zip(whole, pieces))


def test_same_seed_same_output_different_seed_differs(models):
    frames = clip(12)
    a = list(StreamingEditor(models, instruction="make it snowy", seed=7).edit(frames))
    b = list(StreamingEditor(models, instruction="make it snowy", seed=7).edit(frames))
    c = list(StreamingEditor(models, instruction="make it snowy", seed=8).edit(frames))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))


def test_first_edited_frame_before_last_source_frame(models):
    editor = StreamingEditor(models, instruction="x", seed=0)
    frames = clip(30)
    first_out_at = None
    for i, f in enumerate(frames):
        if editor.push(f) and first_out_at is None:
            first_out_at = i
    editor.finish()
    assert first_out_at == 8  # the 9th frame completes the first chunk
    assert first_out_at < len(frames) - 1


def test_reset_reproduces_and_new_instruction_changes_output(models):
    frames = clip(9)
    editor = StreamingEditor(models, instruction="make it snowy", seed=2)
    first = list(editor.edit(frames))
    editor.reset()
    again = list(editor.edit(frames))
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    editor.reset(instruction="make it a sunset")
    other = list(editor.edit(frames))
    assert any(not np.array_equal(x, y) for x, y in zip(first, other))


def test_set_instruction_mid_stream_keeps_history(models):
    frames = clip(21)
    a = StreamingEditor(models, instruction="make it snowy", seed=4)
    b = StreamingEditor(models, instruction="make it snowy", seed=4)
    out_a = [f for fr in frames[:9] for f in a.push(fr)]
    out_b = [f for fr in frames[:9] for f in b.push(fr)]
    assert all(np.array_equal(x, y) for x, y in zip(out_a, out_b))
    b.set_instruction("make it a sunset")
    rest_a = [f for fr in frames[9:] for f in a.push(fr)]
    rest_b = [f for fr in frames[9:] for f in b.push(fr)]
    assert len(rest_a) == len(rest_b) == 12
    assert any(not np.array_equal(x, y) for x, y in zip(rest_a, rest_b))
    assert b.frames_in == 21  # the stream went on; nothing was restarted


def test_bad_frames_are_refused_clearly(models):
    editor = StreamingEditor(models, instruction="x", seed=0)
    with pytest.raises(InputError, match=r"uint8, uint16 or float32"):
        editor.push(np.zeros((50, 90, 3), dtype=np.float64))
    with pytest.raises(InputError, match=r"\[H, W, 3\]"):
        editor.push(np.zeros((50, 90), dtype=np.uint8))
    editor.push(np.zeros((50, 90, 3), dtype=np.uint8))
    with pytest.raises(InputError, match=r"90x50"):
        editor.push(np.zeros((60, 90, 3), dtype=np.uint8))
    with pytest.raises(InputError, match=r"one type per stream"):
        editor.push(np.zeros((50, 90, 3), dtype=np.uint16))
    with pytest.raises(InputError, match="empty"):
        StreamingEditor(models, instruction="   ", seed=0)
    with pytest.raises(InputError, match="frame_mapping"):
        StreamingEditor(models, instruction="x", frame_mapping="crop")


@pytest.mark.parametrize("size", [(50, 90), (112, 64), (64, 112), (33, 200)])
def test_fit_mapping_keeps_the_whole_picture_undistorted(models, size):
    """Fit = scale inside the model picture + edge padding; mapping there and back must
    return the source picture (up to resampling), with the aspect ratio kept."""
    h, w = size
    editor = StreamingEditor(models, instruction="x", seed=0)
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 128)], -1).astype(np.uint8)
    editor._check_frame(frame)
    p = editor.placement
    preset = models.preset
    assert p.height <= preset.height and p.width <= preset.width
    assert abs(p.width / p.height - w / h) < 0.1 * (w / h)  # aspect kept up to pixel rounding
    assert p.height == preset.height or p.width == preset.width  # fills one dimension
    back = editor._from_model(editor._to_model([frame]).float())[0].numpy()
    assert back.shape == frame.shape
    assert np.abs(back.astype(int) - frame.astype(int)).mean() < 12


def test_stretch_mapping_fills_the_model_picture(models):
    editor = StreamingEditor(models, instruction="x", seed=0, frame_mapping="stretch")
    editor._check_frame(clip(1, 33, 200)[0])
    p = editor.placement
    assert (p.top, p.left, p.height, p.width) == (0, 0, models.preset.height, models.preset.width)


def test_preview_vae_streams_the_same_frame_counts(models):
    frames = clip(22)
    editor = StreamingEditor(models, instruction="x", seed=0, preview_vae=True)
    out = list(editor.edit(frames))
    assert len(out) == 22 and out[0].shape == (50, 90, 3)
    full = list(StreamingEditor(models, instruction="x", seed=0).edit(frames))
    assert any(not np.array_equal(a, b) for a, b in zip(out, full))  # really another VAE


def test_frames_are_encoded_as_they_arrive_and_handed_out_per_latent(models):
    """Latency: source frames are encoded in the causal encoder's groups while the chunk
    fills (first frame alone, then 4), and edited frames go to on_frames one latent at a
    time; the frames are the same as without the callback."""
    delivered = []
    editor = StreamingEditor(models, instruction="x", seed=5, on_frames=lambda fs: delivered.append(len(fs)))
    frames = clip(23)
    for i, f in enumerate(frames[:8]):
        assert editor.push(f) == []
        assert editor._vae.frames_encoded == [1, 1, 1, 1, 5, 5, 5, 5][i]
    out = editor.push(frames[8]) + [f for fr in frames[9:] for f in editor.push(fr)] + editor.finish()
    assert delivered == [1, 4, 4, 4, 4, 4, 2]  # chunk 0: 1+4+4; chunk 1: 4+4+4; tail of 2 frames
    plain = list(StreamingEditor(models, instruction="x", seed=5).edit(frames))
    assert len(out) == 23 and all(np.array_equal(a, b) for a, b in zip(out, plain))
