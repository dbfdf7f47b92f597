"""The mask cache from the user's side: token masks → frames aligned to the source
(pure function, no model), and `liveedit edit --mask-cache --save-masks` with the tiny
model writing the mask video, a different settings key and the keep ratio in the OTIO."""

from __future__ import annotations

import json

import av
import numpy as np
import opentimelineio as otio
import pytest

from liveedit.cli import build_parser, main
from liveedit.engine.config import DEFAULT_KEEP_RATIO, MaskCacheConfig
from liveedit.sidecar.media.mask_video import (
    MaskVideoError,
    Placement,
    chunks_for_frames,
    mask_frames,
    mask_video_path,
)
from liveedit.sidecar.media.read import probe


def _one_hot_chunks(latents_per_chunk, grid=(3, 3)):
    """Chunks of token masks where latent frame n (counted over the stream) lights
    only token n, so every output frame says which latent frame it came from."""
    chunks, n = [], 0
    for count in latents_per_chunk:
        chunk = np.zeros((count, *grid), dtype=np.uint8)
        for i in range(count):
            chunk[i].flat[n] = 255
            n += 1
        chunks.append(chunk)
    return chunks


def _lit_token(frame, grid=(3, 3)):
    """Which token a frame from _one_hot_chunks lights (source = model picture, 1 px per token)."""
    lit = np.flatnonzero(frame[:, :, 0].reshape(grid) == 255)
    assert len(lit) == 1
    return int(lit[0])


def test_frames_follow_latent_frames_first_chunk_9_then_12_and_partial_tail():
    chunks = _one_hot_chunks([3, 3, 3])  # the last chunk is padded: only 5 of its 12 frames are real
    frames = list(mask_frames(chunks, frame_count=9 + 12 + 5, source_size=(3, 3), model_size=(3, 3),
                              placement=(0, 0, 3, 3)))
    assert len(frames) == 26
    assert all(f.shape == (3, 3, 3) and f.dtype == np.uint8 for f in frames)
    latent_of_frame = [_lit_token(f) for f in frames]
    # latent 0 → 1 frame, every later latent → 4 frames; the tail stops mid-latent 7
    assert latent_of_frame == [0] + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [6] * 4 + [7]
    assert latent_of_frame[:9] == [0, 1, 1, 1, 1, 2, 2, 2, 2]  # chunk 0: 9 frames


def test_first_chunk_shorter_than_9_frames():
    frames = list(mask_frames(_one_hot_chunks([2]), frame_count=5, source_size=(3, 3), model_size=(3, 3),
                              placement=(0, 0, 3, 3)))
    assert [_lit_token(f) for f in frames] == [0, 1, 1, 1, 1]


def test_letterbox_is_cropped_and_tokens_scaled_nearest():
    # Model picture 32x64 = 2x4 tokens of 16 px; a square source sits at columns 16..47
    # (tokens 1 and 2); at 16x16 each source pixel is 2x2 model pixels.
    mask = np.array([[[0, 255, 0, 255],
                      [255, 0, 255, 0]]], dtype=np.uint8)
    (frame,) = mask_frames([mask], frame_count=1, source_size=(16, 16), model_size=(32, 64),
                           placement=Placement(top=0, left=16, height=32, width=32))
    expected = np.zeros((16, 16), dtype=np.uint8)
    expected[:8, :8] = 255  # token (0, 1)
    expected[8:, 8:] = 255  # token (1, 2)
    assert np.array_equal(frame[:, :, 0], expected)
    assert np.array_equal(frame[:, :, 0], frame[:, :, 1]) and np.array_equal(frame[:, :, 1], frame[:, :, 2])


def test_upscale_to_a_size_that_does_not_divide_evenly():
    # 3 tokens across a 48-px model picture fully used by a 5-px-wide source: pixel
    # centres 4.8, 14.4, 24, 33.6, 43.2 fall in tokens 0, 0, 1, 2, 2.
    mask = np.array([[[255, 0, 255]]], dtype=np.uint8)
    (frame,) = mask_frames([mask], frame_count=1, source_size=(1, 5), model_size=(16, 48), placement=(0, 0, 16, 48))
    assert frame[0, :, 0].tolist() == [255, 255, 0, 255, 255]


def test_torch_masks_and_any_nonzero_count_as_computed():
    torch = pytest.importorskip("torch")
    mask = torch.tensor([[[0, 1], [7, 0]]], dtype=torch.uint8)
    (frame,) = mask_frames([mask], frame_count=1, source_size=(2, 2), model_size=(2, 2), placement=(0, 0, 2, 2))
    assert frame[:, :, 0].tolist() == [[0, 255], [255, 0]]


def test_too_few_masks_and_bad_placement_are_refused():
    with pytest.raises(MaskVideoError, match="cover 9 frames but the segment has 10"):
        list(mask_frames(_one_hot_chunks([3]), frame_count=10, source_size=(3, 3), model_size=(3, 3),
                         placement=(0, 0, 3, 3)))
    with pytest.raises(MaskVideoError, match="outside"):
        list(mask_frames(_one_hot_chunks([3]), frame_count=9, source_size=(3, 3), model_size=(3, 3),
                         placement=(0, 1, 3, 3)))


def test_chunk_count_and_names():
    assert [chunks_for_frames(n) for n in (1, 9, 10, 21, 22, 33)] == [1, 1, 2, 2, 3, 3]
    assert mask_video_path("/out/clip_000000-000029_abc.mov").name == "clip_000000-000029_abc.masks.mov"
    assert mask_video_path("/out/clip_000000-000029_abc").name == "clip_000000-000029_abc.masks.mov"  # PNG folder


def test_cli_mask_cache_option_values(tmp_path):
    parser = build_parser()
    base = ["edit", "in.mov", "-p", "x", "-o", str(tmp_path)]
    assert parser.parse_args(base).mask_cache is None
    assert parser.parse_args(base + ["--mask-cache"]).mask_cache == DEFAULT_KEEP_RATIO == MaskCacheConfig().keep_ratio
    assert parser.parse_args(base + ["--mask-cache", "0.5"]).mask_cache == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--mask-cache", "1.5"])
    assert parser.parse_args(["render", "t.otio", "-o", str(tmp_path), "--mask-cache", "0.2",
                              "--save-masks"]).mask_cache == 0.2
    from liveedit.commands._mask_cache import mask_cache_config

    assert mask_cache_config(parser.parse_args(base + ["--mask-cache"])).rule == "reference"
    assert mask_cache_config(parser.parse_args(base + ["--mask-cache", "--mask-rule", "fixed"])).rule == "fixed"


def test_save_masks_without_mask_cache_is_refused(media_clips, tmp_path, capsys):
    assert main(["edit", str(media_clips["ntsc_film"]), "-p", "x", "-o", str(tmp_path), "--model", "tiny",
                 "--save-masks"]) == 1
    assert "--mask-cache" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def _liveedit_clip(otio_path):
    timeline = otio.adapters.read_from_file(str(otio_path))
    (track,) = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    (clip,) = list(track.find_clips())
    return json.loads(json.dumps(clip.metadata["liveedit"], default=lambda o: dict(o) if hasattr(o, "keys") else list(o)))


def test_edit_with_mask_cache_writes_masks_and_its_own_settings_key(media_clips, tmp_path, capsys):
    source = media_clips["ntsc_film"]  # 64x48, 30 frames: chunks of 9, 12 and a 9-frame tail
    src = probe(source)
    common = ["edit", str(source), "-p", "make the fur snowy white", "--model", "tiny", "--format", "h264"]
    assert main(common + ["-o", str(tmp_path / "plain")]) == 0
    out = capsys.readouterr().out
    assert "mask cache" not in out
    # The fixed-count rule, whose count is known: the default (the release's rule) keeps a
    # count that depends on the picture (tests/test_mask_cache.py).
    assert main(common + ["-o", str(tmp_path / "masked"), "--mask-cache", "--mask-rule", "fixed", "--save-masks"]) == 0
    out = capsys.readouterr().out
    # tiny transformer: 28 tokens per frame, 8 kept → 20/28 reused on chunks 1 and 2 (6 of 9 latent frames)
    assert f"mask cache: {20 / 28 * 6 / 9:.0%} of tokens reused on pruned steps" in out

    (plain_otio,) = (tmp_path / "plain").glob("*.otio")
    (masked_otio,) = (tmp_path / "masked").glob("*.otio")
    plain, masked = _liveedit_clip(plain_otio), _liveedit_clip(masked_otio)
    assert plain["settings_key"] != masked["settings_key"]
    assert "mask_cache" not in plain["sampler"]
    assert masked["sampler"]["mask_cache"]["keep_ratio"] == pytest.approx(0.3)
    assert masked["sampler"]["mask_cache"]["pruned_steps"] == [1, 2]

    (segment,) = [p for p in (tmp_path / "masked").glob("*.mov") if not p.name.endswith(".masks.mov")]
    masks = mask_video_path(segment)
    assert masks.is_file() and f"token masks: {masks}" in out
    info = probe(masks)
    assert info.frame_count == src.frame_count
    assert (info.width, info.height) == (src.width, src.height)
    assert info.frame_rate == src.frame_rate
    assert info.start_timecode == src.start_timecode
    with av.open(str(masks)) as container:
        grey = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    assert len(grey) == src.frame_count
    assert all(g.min() > 200 for g in grey[:9])  # chunk 0 computes every token
    # Later chunks keep 8 of 28 tokens; every token shows in the 4:3 source (the
    # pillarbox only trims the outer columns), so each frame has both.
    assert all(g.max() > 200 and g.min() < 50 for g in grey[9:])

    # The same edit again is recognised and skipped; without the mask file it renders again.
    assert main(common + ["-o", str(tmp_path / "masked"), "--mask-cache", "--mask-rule", "fixed", "--save-masks"]) == 0
    assert "already edited" in capsys.readouterr().out
    masks.unlink()
    assert main(common + ["-o", str(tmp_path / "masked"), "--mask-cache", "--mask-rule", "fixed", "--save-masks"]) == 0
    assert "already edited" not in capsys.readouterr().out and masks.is_file()
