"""Render one region: source frames → StreamingEditor → a new segment file + its OTIO.

Frames stream one at a time from the decoder through the editor into the segment
writer, so memory holds at most one chunk, never the clip. The segment covers the
region plus handles (clamped to the media), carries the source timecode of its first
frame, and is written under a temporary name until it is complete. Its OTIO (the
source clip with the edit on a "LiveEdit" track above) is written next to it and is
also the record that lets a rerun with the same settings skip the work.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from uuid import uuid4

import opentimelineio as otio

from liveedit.errors import InputError, Kind, LiveEditError
from liveedit.sidecar.intake import timeline_region
from liveedit.sidecar.jobs.spec import RegionSpec
from liveedit.sidecar.media import SegmentWriter, clamp_handles, probe, read_frames
from liveedit.sidecar.media.mask_video import (MAX_MASK_CHUNKS, Placement, chunks_for_frames, mask_video_path,
                                               write_mask_video)
from liveedit.sidecar.naming import (confined_path, mask_cache_settings, model_identity, sampler_settings,
                                     segment_name, settings_key)
from liveedit.sidecar.timeline import Region, writeback
from liveedit.sidecar.timeline.timebase import same_rate
from liveedit.sidecar.validation import check_instruction

FORMATS = {"prores": ".mov", "h264": ".mov", "png": ""}  # png: a folder of numbered frames
Progress = Callable[[int, int], None]


class RenderError(LiveEditError):
    """A region could not be rendered; the message names the file and frame at fault."""

    kind = Kind.FAILED_PRECONDITION


class RenderCancelled(RenderError):
    """The caller's cancel event was set; nothing was left behind."""

    kind = Kind.CANCELLED


@dataclass(frozen=True)
class RenderedSegment:
    path: Path  # the segment file (or PNG folder), in its final place
    otio_path: Path  # the segment's own timeline: source clip + the edit above it
    frame_count: int  # frames in the segment, handles included
    first_frame: int  # media frame the segment starts at (region start minus the first handle)
    handles: tuple[int, int]  # frames before and after the region actually included
    timecode_start: int  # segment's first frame as a timecode frame count at the media rate
    settings_key: str
    skipped: bool  # True: an earlier render with the same settings was reused
    segment: writeback.EditedSegment
    masks_path: Path | None = None  # the mask cache's token masks as video (save_masks)
    reused_token_fraction: float | None = None  # mask cache: share of tokens reused on pruned steps


# -- the render -----------------------------------------------------------------------


def render_region(
    region: Region,
    models,
    output_dir: str | Path,
    *,
    format: str = "prores",
    handles: int = 0,
    seed: int = 0,
    sampler=None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    name: str | None = None,
    timeline: otio.schema.Timeline | None = None,
    job_id: str | None = None,
    force: bool = False,
    mask_cache=None,
    save_masks: bool = False,
) -> RenderedSegment:
    """Edit ``region``'s source frames with ``models`` and write the segment (plus
    handles) and its OTIO into ``output_dir``. ``timeline`` is the editor's timeline
    the region came from; without it the OTIO holds just the source clip and the edit.
    A finished segment with the same settings is reused unless ``force``.
    ``mask_cache`` (a MaskCacheConfig) turns on token pruning; ``save_masks`` also writes
    its token masks as ``<segment name>.masks.mov`` (sidecar/media/mask_video.py).
    Everything is checked before a frame is decoded."""
    if format not in FORMATS:
        raise RenderError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    if handles < 0:
        raise RenderError(f"handles must be 0 or more frames, not {handles}")
    if save_masks and mask_cache is None:
        raise RenderError("saving token masks needs the mask cache; turn it on (--mask-cache) or drop --save-masks")
    try:  # the same check, in the same words, as a job's or a preview's instruction
        check_instruction(region.instruction)
    except InputError as exc:
        raise RenderError(f"{region.describe()}: {exc}") from None
    media = region.media_path
    info = probe(media)
    if not same_rate(info.frame_rate, region.media_rate):
        raise RenderError(
            f"{media} plays at {float(info.frame_rate):g} fps but the timeline says {float(region.media_rate):g}; "
            f"relink the clip or re-export the timeline"
        )
    end = region.first_frame + region.frame_count
    if region.first_frame < 0 or region.frame_count <= 0 or end > info.frame_count:
        raise RenderError(
            f"{media} has frames 0–{info.frame_count - 1}; the region asks for {region.first_frame}–{end - 1}"
        )
    span = clamp_handles(region.first_frame, region.frame_count, handles, info.frame_count)
    before, after, first, count = span.head, span.tail, span.first_frame, span.frame_count
    tc_start = region.media_timecode_start + first

    model = model_identity(models)
    key = settings_key(region, model, seed, sampler, handles=handles, format=format, mask_cache=mask_cache)
    stem = confined_path(output_dir, name or segment_name(region, key))
    output = stem.with_name(stem.name + FORMATS[format])
    otio_path = stem.with_name(stem.name + ".otio")
    masks_path = mask_video_path(output) if save_masks else None
    if save_masks and chunks_for_frames(count) > MAX_MASK_CHUNKS:
        raise RenderError(
            f"{region.describe()} is {count} frames, {chunks_for_frames(count)} chunks; token masks are kept for at "
            f"most {MAX_MASK_CHUNKS} chunks, so split the region or render without --save-masks"
        )
    job_id = job_id or uuid4().hex[:12]

    def finished(skipped: bool, prov: dict, reused: float | None = None) -> RenderedSegment:
        edited = writeback.EditedSegment(region, str(output), tc_start, count, prov)
        return RenderedSegment(output, otio_path, count, first, (before, after), tc_start, key, skipped, edited,
                               masks_path, reused)

    if not force and (masks_path is None or masks_path.exists()):  # asked-for masks missing: render again
        previous = _previous_render(otio_path, output, key, count)
        if previous is not None:
            return finished(True, previous)

    recorded = sampler_settings(sampler)
    if mask_cache is not None:
        recorded["mask_cache"] = mask_cache_settings(mask_cache)
    prov = writeback.provenance(
        region,
        seed=seed,
        model=model,
        checkpoint_hash=getattr(models, "checkpoint_hash", None),
        random_weights=bool(getattr(models, "random_weights", False)),
        sampler=recorded,
        job_id=job_id,
        settings_key=key,
        handles=(before, after),
    )
    editor = _edit_frames(region, models, info, first, count, output, format, seed, sampler, tc_start, progress, cancel,
                          mask_cache, masks_path)
    result = finished(False, prov, reused_token_fraction(editor.stats))
    segment_timeline = writeback.edited_timeline(timeline or writeback.source_timeline(region), [result.segment])
    writeback.write_otio(segment_timeline, otio_path)
    return result


def render_job_region(spec: RegionSpec, models, output_dir: str | Path, **options) -> RenderedSegment:
    """Render a job's region (or `liveedit edit`'s clip), placed on a timeline as its record
    start says (`intake.timeline_region`); ``options`` are render_region's."""
    return render_region(timeline_region(spec, probe(spec.media)), models, output_dir, **options)


def _previous_render(otio_path: Path, output: Path, key: str, count: int) -> dict | None:
    """The provenance of an earlier render with the same settings key, if its files are whole."""
    if not otio_path.is_file() or not output.exists():
        return None
    try:
        timeline = otio.adapters.read_from_file(str(otio_path), adapter_name="otio_json")
    except Exception:
        return None  # unreadable: render again
    for clip in timeline.find_clips():
        prov = clip.metadata.get("liveedit")
        ref = clip.media_reference
        if (
            prov is not None
            and prov.get("settings_key") == key
            and isinstance(ref, otio.schema.ExternalReference)
            and Path(ref.target_url) == output
            and ref.available_range is not None
            and round(ref.available_range.duration.value) == count
        ):
            return json.loads(json.dumps(prov, default=lambda o: dict(o) if hasattr(o, "keys") else list(o)))
    return None


def reused_token_fraction(stats) -> float | None:
    """Share of tokens that reused outputs on the pruned steps, over a stream's chunks
    (weighted by latent frames; the first chunk reuses none). None without the mask cache."""
    measured = [(s.reused_token_fraction, s.latent_frames) for s in stats if s.reused_token_fraction is not None]
    if not measured:
        return None
    return sum(f * n for f, n in measured) / sum(n for _, n in measured)


def _edit_frames(region, models, info, first, count, output, format, seed, sampler, tc_start, progress, cancel,
                 mask_cache=None, masks_path=None):
    from liveedit.engine.editor import StreamingEditor

    if masks_path is not None:
        mask_cache = dataclasses.replace(mask_cache, save_masks=True)
    editor = StreamingEditor(models, instruction=region.instruction, seed=seed, sampler=sampler,
                             mask_cache=mask_cache)
    writer = open_segment_writer(output, format=format, info=info, first=first, count=count,
                                 start_timecode=info.timecode_of(first))
    written = 0
    reading = first
    try:
        frames = read_frames(region.media_path, first, count)
        while True:
            if cancel is not None and cancel.is_set():
                raise RenderCancelled(f"render of {region.describe()} was cancelled")
            try:
                frame = next(frames)
            except StopIteration:
                break
            except LiveEditError as exc:
                raise RenderError(f"{region.media_path}: frame {reading} could not be decoded ({exc}); the file may be damaged") from exc
            except Exception as exc:  # decoder errors come in many types
                raise RenderError(f"{region.media_path}: frame {reading} could not be decoded ({type(exc).__name__}: {exc}); the file may be damaged") from exc
            reading += 1
            for edited in editor.push(frame):
                writer.write(edited)
                written += 1
                if progress:
                    progress(written, count)
        if reading - first != count:
            raise RenderError(f"{region.media_path}: frame {reading} could not be read (the file ends early); the file may be truncated")
        for edited in editor.finish():
            writer.write(edited)
            written += 1
            if progress:
                progress(written, count)
        if written != count:
            raise RenderError(f"the editor returned {written} frames for {count} source frames of {region.media_path}")
        if masks_path is not None:
            _write_masks(editor, masks_path, info, first, count, models)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return editor


def _write_masks(editor, path: Path, info, first: int, count: int, models) -> None:
    """The stream's token masks, aligned to the segment's frames, beside the segment."""
    # The editor keeps its stream and placement private; both are read, never changed.
    masks = editor.token_masks()
    if len(masks) != len(editor.stats):
        raise RenderError(f"the mask cache kept {len(masks)} of {len(editor.stats)} chunks' token masks for {path}; "
                          f"split the region or render without --save-masks")
    p = editor.placement
    write_mask_video(path, masks, frame_count=count, source_size=(info.height, info.width),
                     model_size=(models.preset.height, models.preset.width),
                     placement=Placement(p.top, p.left, p.height, p.width), rate=info.frame_rate,
                     start_timecode=info.timecode_of(first), rotation=info.rotation, sources=[info.path])


# -- the segment writer -----------------------------------------------------------------


def open_segment_writer(path: Path, *, format: str, info, first: int, count: int, start_timecode: str):
    """sidecar/media's atomic segment writer, carrying the source's colour tags,
    rotation and (for movie formats) the source audio under the same frames."""
    audio = (str(info.path), first, count) if FORMATS[format] and info.has_audio else None
    return SegmentWriter(path, rate=info.frame_rate, format=format, width=info.width, height=info.height,
                         start_timecode=start_timecode, color=info.color, audio_from=audio,
                         rotation=info.rotation, sources=[info.path])
