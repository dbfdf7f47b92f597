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
import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable
from uuid import uuid4

import opentimelineio as otio

from liveedit.errors import LiveEditError
from liveedit.sidecar import otio_io
from liveedit.sidecar.timeline import Region, exact_rate

FORMATS = {"prores": ".mov", "h264": ".mov", "png": ""}  # png: a folder of numbered frames
Progress = Callable[[int, int], None]


class RenderError(LiveEditError):
    """A region could not be rendered; the message names the file and frame at fault."""


class RenderCancelled(RenderError):
    """The caller's cancel event was set; nothing was left behind."""


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
    segment: otio_io.EditedSegment
    masks_path: Path | None = None  # the mask cache's token masks as video (save_masks)
    reused_token_fraction: float | None = None  # mask cache: share of tokens reused on pruned steps
    change_masks_path: Path | None = None  # detail "masked": its change mask as video (save_masks)


# -- identity of a render ------------------------------------------------------------


def _sampler_dict(sampler) -> dict:
    if sampler is None:
        from liveedit.engine.sampler import SamplerConfig

        sampler = SamplerConfig()
    if dataclasses.is_dataclass(sampler):
        sampler = dataclasses.asdict(sampler)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dict(sampler).items()}


def model_identity(models) -> str:
    """Names the weights: preset plus checkpoint hash, or "random" for random weights."""
    preset = getattr(getattr(models, "preset", None), "name", None) or "model"
    if getattr(models, "random_weights", False):
        return f"{preset}:random"
    return f"{preset}:{getattr(models, 'checkpoint_hash', None) or 'unhashed'}"


def mask_cache_settings(mask_cache) -> dict | None:
    """The mask cache settings that decide pixels (save_masks only adds a file)."""
    if mask_cache is None:
        return None
    settings = _sampler_dict(mask_cache)
    settings.pop("save_masks", None)
    return settings


def detail_settings(detail) -> dict:
    """The detail delivery settings that decide pixels, as the provenance records them."""
    from liveedit.engine.detail_config import DetailConfig

    return (detail or DetailConfig()).pixel_settings()


def settings_key(region: Region, model: str, seed: int, sampler=None, *, handles: int = 0, format: str = "prores",
                 mask_cache=None, detail=None) -> str:
    """A short, deterministic hash of everything that decides the pixels of a segment:
    the same key means the same render, so finished regions are recognised and skipped.
    The source file's size and modification time are in it, so a replaced source re-renders.
    ``detail`` (a DetailConfig; None = the default, "transfer") is in it unless it is "off":
    renders made before detail delivery existed scaled the model picture up, which is "off"."""
    try:
        stat = os.stat(region.media_path)
        source = [str(Path(region.media_path).resolve()), stat.st_size, stat.st_mtime_ns]
    except OSError:
        source = [region.media_path, None, None]
    payload = {
        "source": source,
        "first_frame": region.first_frame,
        "frame_count": region.frame_count,
        "instruction": region.instruction,
        "model": model,
        "seed": int(seed),
        "sampler": _sampler_dict(sampler),
        "handles": int(handles),
        "format": format,
    }
    if mask_cache is not None:  # only when on, so keys of renders without it stay as they were
        payload["mask_cache"] = mask_cache_settings(mask_cache)
    detail = detail_settings(detail)
    if detail["mode"] != "off":
        payload["detail"] = detail
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def segment_name(region: Region, key: str) -> str:
    """<clip>_<first>-<last>_<key>: readable in a bin, unique per settings."""
    clip = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(region.clip_name or Path(region.media_path).stem).stem).strip("._") or "clip"
    last = region.first_frame + region.frame_count - 1
    return f"{clip[:60]}_{region.first_frame:06d}-{last:06d}_{key}"


def confined_path(output_dir: str | Path, name: str) -> Path:
    """``output_dir/name``, refusing anything that would land outside ``output_dir``
    (``..``, absolute names, symlinks pointing elsewhere)."""
    root = Path(output_dir).resolve()
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise RenderError(f"output name {name!r} must be a plain name inside {root}, without '..' or a leading '/'")
    candidate = (root / name).resolve()
    if candidate != root and root not in candidate.parents:
        raise RenderError(f"output {root / name} resolves to {candidate}, outside the output folder {root}; remove the symlink")
    return candidate


# -- regions from the job queue -------------------------------------------------------


def as_region(region, info) -> Region:
    """render_region takes a timeline Region, or a job queue RegionSpec (media,
    first_frame, frame_count, instruction, record_start) which knows no timeline."""
    if isinstance(region, Region):
        return region
    rate = Fraction(info.frame_rate)
    record = getattr(region, "record_start", None)
    timeline_rate = Fraction(record.rate) if record is not None else rate
    record_frame = record.frame if record is not None else 0
    first = int(region.first_frame)
    return Region(
        media_path=str(region.media),
        first_frame=first,
        frame_count=int(region.frame_count),
        media_rate=rate,
        record_start=record_frame,
        record_frames=round(Fraction(int(region.frame_count)) / rate * timeline_rate),
        timeline_rate=timeline_rate,
        timeline_start=0,
        track="Video 1",
        clip_name=Path(str(region.media)).stem,
        instruction=region.instruction,
        media_timecode_start=info.start_timecode_frame,
        media_frame_count=info.frame_count,
        source_start=Fraction(info.start_timecode_frame + first) / rate * timeline_rate,
    )


# -- the render -----------------------------------------------------------------------


def render_region(
    region,
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
    detail=None,
) -> RenderedSegment:
    """Edit ``region``'s source frames with ``models`` and write the segment (plus
    handles) and its OTIO into ``output_dir``. ``timeline`` is the editor's timeline
    the region came from; without it the OTIO holds just the source clip and the edit.
    A finished segment with the same settings is reused unless ``force``.
    ``mask_cache`` (a MaskCacheConfig) turns on token pruning; ``save_masks`` also writes
    its token masks as ``<segment name>.masks.mov`` (sidecar/mask_video.py).
    ``detail`` (a DetailConfig, default "transfer") says how the edited picture is delivered
    at the source's size and bit depth (sidecar/delivery.py); with "masked", ``save_masks``
    also writes the change mask as ``<segment name>.change.mov``."""
    from liveedit.engine.detail_config import DetailConfig
    from liveedit.sidecar.delivery import change_mask_path
    from liveedit.sidecar.mask_video import MAX_MASK_CHUNKS, chunks_for_frames, mask_video_path
    from liveedit.sidecar.media import clamp_handles, probe

    detail = detail or DetailConfig()
    if format not in FORMATS:
        raise RenderError(f"unknown output format {format!r}; choose one of {', '.join(FORMATS)}")
    if handles < 0:
        raise RenderError(f"handles must be 0 or more frames, not {handles}")
    if save_masks and mask_cache is None and detail.mode != "masked":
        raise RenderError("saving masks needs the mask cache (--mask-cache) or masked detail (--detail masked); "
                          "turn one on or drop --save-masks")
    media = getattr(region, "media_path", None) or str(getattr(region, "media"))
    info = probe(media)
    region = as_region(region, info)
    if exact_rate(float(info.frame_rate)) != region.media_rate:
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
    change_path = change_mask_path(output) if save_masks and detail.mode == "masked" else None
    if masks_path is not None and chunks_for_frames(count) > MAX_MASK_CHUNKS:
        raise RenderError(
            f"{region.describe()} is {count} frames, {chunks_for_frames(count)} chunks; token masks are kept for at "
            f"most {MAX_MASK_CHUNKS} chunks, so split the region or render without --save-masks"
        )
    job_id = job_id or uuid4().hex[:12]

    def finished(skipped: bool, prov: dict, reused: float | None = None) -> RenderedSegment:
        edited = otio_io.EditedSegment(region, str(output), tc_start, count, prov)
        return RenderedSegment(output, otio_path, count, first, (before, after), tc_start, key, skipped, edited,
                               masks_path, reused, change_path)

    # Asked-for masks missing: render again.
    if not force and all(path is None or path.exists() for path in (masks_path, change_path)):
        previous = _previous_render(otio_path, output, key, count)
        if previous is not None:
            return finished(True, previous)

    sampler_settings = _sampler_dict(sampler)
    if mask_cache is not None:
        sampler_settings["mask_cache"] = mask_cache_settings(mask_cache)
    prov = otio_io.provenance(
        region,
        seed=seed,
        model=model,
        checkpoint_hash=getattr(models, "checkpoint_hash", None),
        random_weights=bool(getattr(models, "random_weights", False)),
        sampler=sampler_settings,
        job_id=job_id,
        settings_key=key,
        handles=(before, after),
        detail=detail_settings(detail),
    )
    editor = _edit_frames(region, models, info, first, count, output, format, seed, sampler, tc_start, progress, cancel,
                          mask_cache, masks_path, detail, change_path)
    result = finished(False, prov, reused_token_fraction(editor.stats))
    segment_timeline = otio_io.edited_timeline(timeline or _source_timeline(region, info), [result.segment])
    otio_io.write_otio(segment_timeline, otio_path)
    return result


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
                 mask_cache=None, masks_path=None, detail=None, change_path=None):
    from liveedit.sidecar import delivery
    from liveedit.sidecar.media import read_frames

    if masks_path is not None:
        mask_cache = dataclasses.replace(mask_cache, save_masks=True)
    editor = delivery.make_editor(models, instruction=region.instruction, seed=seed, detail=detail,
                                  keep_masks=change_path is not None, sampler=_sampler_config(sampler),
                                  mask_cache=mask_cache)
    writer = open_segment_writer(output, format=format, info=info, first=first, count=count,
                                 start_timecode=info.timecode_of(first))
    writers = [writer]
    change_writer = None
    written = 0
    reading = first

    def deliver(edited) -> None:
        nonlocal written
        for frame in edited:
            writer.write(frame)
            written += 1
            if progress:
                progress(written, count)
        if change_writer is not None:
            for mask in delivery.take_change_masks(editor):
                change_writer.write(delivery.mask_frame(mask))

    try:
        if change_path is not None:
            change_writer = delivery.open_change_mask_writer(change_path, info=info, start_timecode=info.timecode_of(first),
                                                             sources=[info.path])
            writers.append(change_writer)
        frames = read_frames(region.media_path, first, count, dtype=delivery.read_dtype(info, detail))
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
    return editor


def _write_masks(editor, path: Path, info, first: int, count: int, models) -> None:
    """The stream's token masks, aligned to the segment's frames, beside the segment."""
    from liveedit.sidecar.mask_video import Placement, write_mask_video

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


def _sampler_config(sampler):
    if sampler is None or not isinstance(sampler, dict):
        return sampler
    from liveedit.engine.sampler import SamplerConfig

    return SamplerConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in sampler.items()})


def _source_timeline(region: Region, info) -> otio.schema.Timeline:
    """A one-clip timeline for regions that came without one (the job queue)."""
    rate = region.timeline_rate
    timeline = otio.schema.Timeline(name=region.clip_name, global_start_time=otio.opentime.RationalTime(region.timeline_start, float(rate)))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    if region.record_start:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(region.record_start, float(rate)))))
    media_rate = float(region.media_rate)
    reference = otio.schema.ExternalReference(
        target_url=str(Path(region.media_path).resolve()),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(info.start_timecode_frame, media_rate), otio.opentime.RationalTime(info.frame_count, media_rate)
        ),
    )
    reference.name = Path(region.media_path).name
    track.append(
        otio.schema.Clip(
            name=region.clip_name,
            media_reference=reference,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(float(region.source_start), float(rate)),
                otio.opentime.RationalTime(region.record_frames, float(rate)),
            ),
        )
    )
    timeline.tracks.append(track)
    return timeline


# -- the segment writer -----------------------------------------------------------------


def open_segment_writer(path: Path, *, format: str, info, first: int, count: int, start_timecode: str):
    """sidecar/media's atomic segment writer, carrying the source's colour tags,
    rotation and (for movie formats) the source audio under the same frames."""
    from liveedit.sidecar.media import SegmentWriter

    audio = (str(info.path), first, count) if FORMATS[format] and info.has_audio else None
    return SegmentWriter(path, rate=info.frame_rate, format=format, width=info.width, height=info.height,
                         start_timecode=start_timecode, color=info.color, audio_from=audio,
                         rotation=info.rotation, sources=[info.path])
