"""The mask cache's token masks as a black-and-white video beside the segment.

With the mask cache on, each chunk computes only some tokens at its pruned denoising
steps and reuses the rest (engine/mask_cache.py). Seeing which parts of the picture were
computed tells a user whether the cache followed the edit. The engine keeps one uint8
mask per chunk over the token grid (``[F, h, w]``, 255 = computed, 0 = reused); here
those become frames that line up with the source frames, so the mask video can sit on
the track above the segment:

* time: a latent frame covers 4 source frames, except the stream's very first latent
  frame, which covers 1 (so a first chunk is 9 frames, later chunks 12); the padded
  frames of a partial last chunk are dropped, as the editor drops them;
* space: the token grid spans the model picture; the part of it the source occupies
  (the editor's "fit" placement: the letterbox/pillarbox is cut off) is scaled to the
  source size with nearest neighbour, so token edges stay hard.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from liveedit.errors import Kind, LiveEditError
from liveedit.engine.config import VAE_TEMPORAL_STRIDE

MASK_SUFFIX = ".masks.mov"
# MaskCache keeps at most this many chunks' masks (engine/mask_cache.py, deque maxlen).
MAX_MASK_CHUNKS = 4096


class MaskVideoError(LiveEditError):
    """The token masks do not fit the segment they are meant to describe."""

    kind = Kind.FAILED_PRECONDITION


class Placement(NamedTuple):
    """Where the source picture sits inside the model picture, in model pixels
    (the same fields as the editor's placement, so either can be passed)."""

    top: int
    left: int
    height: int
    width: int


def mask_video_path(segment_path: str | os.PathLike) -> Path:
    """``<segment name>.masks.mov`` next to the segment (a .mov, or a PNG folder)."""
    segment = Path(segment_path)
    stem = segment.name[: -len(segment.suffix)] if segment.suffix.lower() in (".mov", ".mp4") else segment.name
    return segment.with_name(stem + MASK_SUFFIX)


def frames_per_latent(latent_index: int) -> int:
    """Source frames one latent frame stands for: 1 for the stream's first, 4 after."""
    return 1 if latent_index == 0 else VAE_TEMPORAL_STRIDE


def chunks_for_frames(frame_count: int) -> int:
    """Chunks the editor runs for ``frame_count`` source frames (9 first, then 12 each)."""
    first = 1 + VAE_TEMPORAL_STRIDE * 2
    if frame_count <= first:
        return 1
    later = VAE_TEMPORAL_STRIDE * 3
    return 1 + -(-(frame_count - first) // later)


def mask_frames(
    chunk_masks: Iterable,
    *,
    frame_count: int,
    source_size: tuple[int, int],
    model_size: tuple[int, int],
    placement: Placement | Sequence[int],
) -> Iterator[np.ndarray]:
    """Per-chunk token masks (uint8 ``[F, h, w]``, numpy or torch, oldest first) → exactly
    ``frame_count`` RGB uint8 frames ``[H, W, 3]`` of ``source_size`` (H, W): white where
    the token was computed at the pruned steps, black where it was reused.
    ``model_size`` is the model picture (H, W) the token grid spans; ``placement`` the
    source's rectangle inside it."""
    height, width = source_size
    model_h, model_w = model_size
    top, left, fit_h, fit_w = (int(v) for v in placement)
    if frame_count < 1 or height < 1 or width < 1:
        raise MaskVideoError(f"a mask video needs at least one frame of at least 1x1, got {frame_count} of {width}x{height}")
    if top < 0 or left < 0 or fit_h < 1 or fit_w < 1 or top + fit_h > model_h or left + fit_w > model_w:
        raise MaskVideoError(f"placement {tuple(placement)} lies outside the {model_w}x{model_h} model picture")

    rows = cols = None  # source pixel → token index maps, made once the grid size is known
    latent_index = written = 0
    for n, mask in enumerate(chunk_masks):
        mask = mask.numpy() if hasattr(mask, "numpy") else np.asarray(mask)
        if mask.ndim != 3:
            raise MaskVideoError(f"chunk {n}'s token mask must be [frames, rows, columns], got shape {list(mask.shape)}")
        if rows is None:
            rows = _nearest(height, top, fit_h, model_h, mask.shape[1])
            cols = _nearest(width, left, fit_w, model_w, mask.shape[2])
        for latent in mask:
            picture = np.where(latent[rows[:, None], cols[None, :]] != 0, 255, 0).astype(np.uint8)
            frame = np.repeat(picture[:, :, None], 3, axis=2)
            for _ in range(frames_per_latent(latent_index)):
                if written == frame_count:
                    break  # the padded tail of a partial last chunk
                yield frame
                written += 1
            latent_index += 1
    if written != frame_count:
        raise MaskVideoError(
            f"the token masks cover {written} frames but the segment has {frame_count}; "
            f"the masks must come from the stream that rendered this segment"
        )


def _nearest(size: int, start: int, extent: int, model_extent: int, tokens: int) -> np.ndarray:
    """Token index for each of ``size`` source pixels along one axis: the pixel's centre
    mapped into the source's span of the model picture, then onto the token grid."""
    centres = start + (np.arange(size) + 0.5) * extent / size
    model_pixel = np.minimum(np.floor(centres).astype(np.int64), start + extent - 1)
    return model_pixel * tokens // model_extent


def write_mask_video(
    path: str | os.PathLike,
    chunk_masks: Iterable,
    *,
    frame_count: int,
    source_size: tuple[int, int],
    model_size: tuple[int, int],
    placement: Placement | Sequence[int],
    rate: Fraction,
    start_timecode: str | None = None,
    rotation: int = 0,
    sources: Iterable[str | os.PathLike] = (),
) -> Path:
    """Write :func:`mask_frames` as an H.264 .mov at the segment's rate and timecode
    (temporary name, then renamed into place by SegmentWriter)."""
    from liveedit.sidecar.media.write import SegmentWriter

    height, width = source_size
    frames = mask_frames(chunk_masks, frame_count=frame_count, source_size=source_size,
                         model_size=model_size, placement=placement)
    with SegmentWriter(path, rate=rate, format="h264", width=width, height=height,
                       start_timecode=start_timecode, rotation=rotation, sources=sources) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)
