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
from fractions import Fraction
from pathlib import Path
from typing import Callable
from uuid import uuid4

import opentimelineio as otio

from liveedit.engine.config import DetailConfig
from liveedit.errors import InputError, Kind, LiveEditError
from liveedit.sidecar import delivery
from liveedit.sidecar.intake import timeline_region
from liveedit.sidecar.jobs.spec import RegionSpec
from liveedit.sidecar.media import SegmentWriter, clamp_handles, probe, read_frames
from liveedit.sidecar.media.overlap import BackgroundWriter, PrefetchedFrames
from liveedit.sidecar.media.mask_video import (MAX_MASK_CHUNKS, Placement, chunks_for_frames, mask_video_path,
                                               write_mask_video)
from liveedit.sidecar.naming import (confined_path, detail_settings, mask_cache_settings, model_identity,
                                     sampler_settings, segment_name, settings_key)
from liveedit.sidecar.timeline import Region, writeback
from liveedit.sidecar.timeline.timebase import STANDARD_RATES, is_drop_frame_rate, same_rate, timecode_to_frame
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
    change_masks_path: Path | None = None  # detail "masked": its change mask as video (save_masks)


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
    detail: DetailConfig | None = None,
    conform_rate: Fraction | None = None,
) -> RenderedSegment:
    """Edit ``region``'s source frames with ``models`` and write the segment (plus
    handles) and its OTIO into ``output_dir``. ``timeline`` is the editor's timeline
    the region came from; without it the OTIO holds just the source clip and the edit.
    A finished segment with the same settings is reused unless ``force``.
    ``mask_cache`` (a MaskCacheConfig) turns on token pruning; ``save_masks`` also writes
    its token masks as ``<segment name>.masks.mov`` (sidecar/media/mask_video.py).
    ``detail`` (default "transfer") says how the edited picture is delivered at the source's
    size and bit depth (sidecar/delivery.py); with "masked", ``save_masks`` also writes the
    change mask as ``<segment name>.change.mov``.
    A variable-frame-rate source is refused unless ``conform_rate`` (check_constant_rate).
    Everything is checked before a frame is decoded."""
    detail = detail or DetailConfig()
    if format not in FORMATS:
        raise RenderError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    if handles < 0:
        raise RenderError(f"handles must be 0 or more frames, not {handles}")
    if save_masks and mask_cache is None and detail.mode != "masked":
        raise RenderError("saving masks needs the mask cache (--mask-cache) or masked detail (--detail masked); "
                          "turn one on or drop --save-masks")
    try:  # the same check, in the same words, as a job's or a preview's instruction
        check_instruction(region.instruction)
    except InputError as exc:
        raise RenderError(f"{region.describe()}: {exc}") from None
    media = region.media_path
    info = check_constant_rate(probe(media), conform_rate)
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
    key = settings_key(region, model, seed, sampler, handles=handles, format=format, mask_cache=mask_cache,
                       detail=detail)
    stem = confined_path(output_dir, name or segment_name(region, key))
    output = stem.with_name(stem.name + FORMATS[format])
    otio_path = stem.with_name(stem.name + ".otio")
    masks_path = mask_video_path(output) if save_masks and mask_cache is not None else None
    change_path = delivery.change_mask_path(output) if save_masks and detail.mode == "masked" else None
    if masks_path is not None and chunks_for_frames(count) > MAX_MASK_CHUNKS:
        raise RenderError(
            f"{region.describe()} is {count} frames, {chunks_for_frames(count)} chunks; token masks are kept for at "
            f"most {MAX_MASK_CHUNKS} chunks, so split the region or render without --save-masks"
        )
    job_id = job_id or uuid4().hex[:12]

    def finished(skipped: bool, prov: dict, reused: float | None = None) -> RenderedSegment:
        edited = writeback.EditedSegment(region, str(output), tc_start, count, prov)
        return RenderedSegment(output, otio_path, count, first, (before, after), tc_start, key, skipped, edited,
                               masks_path, reused, change_path)

    # Asked-for masks missing: render again.
    if not force and all(path is None or path.exists() for path in (masks_path, change_path)):
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
        detail=detail_settings(detail),
    )
    editor = _edit_frames(region, models, info, first, count, output, format, seed, sampler, tc_start, progress, cancel,
                          mask_cache, masks_path, detail, change_path)
    result = finished(False, prov, reused_token_fraction(editor.stats))
    segment_timeline = writeback.edited_timeline(timeline or writeback.source_timeline(region), [result.segment])
    writeback.write_otio(segment_timeline, otio_path)
    return result


def render_job_region(spec: RegionSpec, models, output_dir: str | Path, **options) -> RenderedSegment:
    """Render a job's region (or `liveedit edit`'s clip), placed on a timeline as its record
    start says (`intake.timeline_region`); ``options`` are render_region's."""
    info = check_constant_rate(probe(spec.media), options.get("conform_rate"))
    return render_region(timeline_region(spec, info), models, output_dir, **options)


def check_constant_rate(info, conform_rate: Fraction | None = None):
    """`info` for a clip of constant frame rate. A truly variable-rate clip is refused with the
    command that conforms it, unless `conform_rate` is given: then its frames are taken in
    order as if evenly spaced at that rate (an editor's "conform"), and `info` says so."""
    if not info.variable_frame_rate:
        return info
    if conform_rate is None:
        rate = nearest_standard_rate(info.frame_rate)
        text = f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else str(rate.numerator)
        conformed = info.path.with_name(f"{info.path.stem}_cfr.mov")
        raise RenderError(
            f"{info.path} has a variable frame rate (about {float(info.frame_rate):.3f} fps), which edits and "
            f"timelines cannot place frame for frame; make a constant-rate copy first: ffmpeg -i \"{info.path}\" "
            f"-fps_mode cfr -r {text} -c:v prores_ks -profile:v 3 -c:a pcm_s16le \"{conformed}\" "
            f"(or, with liveedit edit, --conform-rate {text} edits its frames as evenly spaced at that rate)")
    rate = Fraction(conform_rate)
    start = timecode_to_frame(info.start_timecode, rate) if info.start_timecode else 0
    return dataclasses.replace(info, frame_rate=rate, variable_frame_rate=False,
                               duration=Fraction(info.frame_count) / rate, start_timecode_frame=start,
                               drop_frame=info.drop_frame and is_drop_frame_rate(rate))


def nearest_standard_rate(rate: Fraction) -> Fraction:
    return min(STANDARD_RATES, key=lambda r: abs(float(r) - float(rate)))


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
            and writeback.reference_path(ref) == output
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
                 mask_cache=None, masks_path=None, detail=None, change_path=None):
    if masks_path is not None:
        mask_cache = dataclasses.replace(mask_cache, save_masks=True)
    editor = delivery.make_editor(models, instruction=region.instruction, seed=seed, detail=detail,
                                  keep_masks=change_path is not None, sampler=sampler, mask_cache=mask_cache)
    # Decoding, editing and encoding overlap (media/overlap.py): each on its own thread.
    writer = BackgroundWriter(open_segment_writer(output, format=format, info=info, first=first, count=count,
                                                  start_timecode=info.timecode_of(first)))
    writers = [writer]
    change_writer = None
    frames = None
    written = 0
    reading = first

    def deliver(edited) -> None:
        nonlocal written
        for frame in edited:
            writer.write(frame)
            written += 1
            if progress:  # frames edited and handed to the encoder; close() waits for the rest
                progress(written, count)
        if change_writer is not None:
            for mask in delivery.take_change_masks(editor):
                change_writer.write(delivery.mask_frame(mask))

    try:
        if change_path is not None:
            change_writer = BackgroundWriter(delivery.open_change_mask_writer(
                change_path, info=info, start_timecode=info.timecode_of(first), sources=[info.path]))
            writers.append(change_writer)
        frames = PrefetchedFrames(read_frames(region.media_path, first, count, dtype=delivery.read_dtype(info, detail)))
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
            deliver(editor.push(frame))
        if reading - first != count:
            raise RenderError(f"{region.media_path}: frame {reading} could not be read (the file ends early); the file may be truncated")
        deliver(editor.finish())
        if written != count:
            raise RenderError(f"the editor returned {written} frames for {count} source frames of {region.media_path}")
        if masks_path is not None:
            _write_masks(editor, masks_path, info, first, count, models)
        if change_writer is not None:
            change_writer.close()
        writer.close()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    finally:
        if frames is not None:
            frames.close()
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
