"""Edited frames at the source's size and precision: the one place the sidecar decides how
the model's edited picture becomes a frame of the source's size and bit depth.

Everything that edits media builds its editor here: `liveedit edit` and `liveedit render`
(render_region, also what the job queue's executors run), preview sessions and live edit
streams (the GPU worker's editor factories), and takes for the OpenFX plugin. The detail
modes are engine/config.py's; the arithmetic is engine/detail.py's (float RGB on
the model's device). What is decided here is the media side:

- which precision a source is read at: 10/12-bit media as uint16 RGB (the reader converts
  every pixel format it accepts, 4:2:0/4:2:2/4:4:4, full or limited range, to full-range
  RGB), 8-bit media as uint8; with detail "off" always uint8, as before. Takes push the
  host's frames at the host's precision (sidecar/takes/pixels.py) into editors from
  :func:`editor_factory` with the sidecar's detail setting;
- delivered frames have the type they were pushed with (uint8, uint16, or float32 from a
  host), and go through the existing segment writer, which takes uint8 and uint16 RGB;
- the change mask of "masked" as a video beside the segment (``--save-masks``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from liveedit.engine.config import DetailConfig

CHANGE_MASK_SUFFIX = ".change.mov"


def read_dtype(info, detail: DetailConfig | None = None) -> type:
    """The type to read ``info``'s frames as (a media.read.MediaInfo): uint16 for more than
    8 bits per component when the edit is delivered at the source's precision."""
    detail = detail or DetailConfig()
    return np.uint16 if detail.delivers and int(getattr(info, "bit_depth", 8)) > 8 else np.uint8


def make_editor(models, *, instruction: str, seed: int = 0, detail: DetailConfig | None = None,
                keep_masks: bool = False, **editor_options):
    """A StreamingEditor whose frames come back at the size and type they were pushed with
    (uint8, uint16 or float32 RGB [H, W, 3]), delivered with ``detail`` (default "transfer");
    "off" hands out the model picture scaled up, as uint8. ``keep_masks`` (masked only) keeps
    each frame's change mask for :func:`take_change_masks`. ``editor_options`` are
    StreamingEditor's (sampler, mask_cache, preview_vae, on_frames, ...)."""
    from liveedit.engine.detail import SourceDetail
    from liveedit.engine.editor import StreamingEditor

    detail = detail or DetailConfig()
    delivery = SourceDetail(detail, keep_masks=keep_masks and detail.mode == "masked") if detail.delivers else None
    return StreamingEditor(models, instruction=instruction, seed=seed, delivery=delivery, **editor_options)


def editor_factory(detail: DetailConfig | None = None, **editor_options) -> Callable:
    """(models, instruction, seed) -> editor, for the GPU worker (sidecar/worker.py)."""
    detail = detail or DetailConfig()

    def factory(models, instruction: str, seed: int):
        return make_editor(models, instruction=instruction, seed=seed, detail=detail, **editor_options)

    factory.detail = detail
    return factory


def take_change_masks(editor) -> list[np.ndarray]:
    """The change masks (uint8 [H, W], 255 = the edit applies in full) of the frames the
    editor handed out since the last call; empty unless made with keep_masks and "masked"."""
    delivery = getattr(editor, "delivery", None)
    return delivery.take_masks() if delivery is not None and delivery.keep_masks else []


def change_mask_path(segment_path: str | os.PathLike) -> Path:
    """``<segment name>.change.mov`` next to the segment (a .mov, or a PNG folder)."""
    segment = Path(segment_path)
    stem = segment.name[: -len(segment.suffix)] if segment.suffix.lower() in (".mov", ".mp4") else segment.name
    return segment.with_name(stem + CHANGE_MASK_SUFFIX)


def open_change_mask_writer(path: Path, *, info, start_timecode: str | None, sources=()):
    """An H.264 segment writer for change masks at the source's size, rate and timecode
    (frames from :func:`mask_frame`); temporary name until closed, like every segment."""
    from liveedit.sidecar.media.read import ColorTags
    from liveedit.sidecar.media.write import SegmentWriter

    # A mask is our own picture, not the source's: tagged explicitly (limited range, the usual
    # matrix for its size) so every reader takes black as 0, whatever the source carried.
    color = ColorTags().resolved(info.width, info.height)
    return SegmentWriter(path, rate=info.frame_rate, format="h264", width=info.width, height=info.height,
                         start_timecode=start_timecode, rotation=info.rotation, sources=sources, color=color)


def mask_frame(mask: np.ndarray) -> np.ndarray:
    """A change mask [H, W] as the grey RGB frame the writer takes."""
    return np.repeat(mask[:, :, None], 3, axis=2)
