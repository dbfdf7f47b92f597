"""Edited segments back into timelines: Resolve-shaped OTIO, plus CMX 3600 EDL and FCP 7 XML.

The original timeline stays untouched; each edited segment goes on a video track named
"LiveEdit" above the others, at the record time of the region it replaces, and carries
its provenance under ``metadata["liveedit"]``. The shape follows what Resolve itself
writes and what its importer accepts (``shared/spec/nle-exports.md`` §1.9,
``nle-integration.md`` §4.5): Clip.2 with a ``DEFAULT_MEDIA`` reference, bare absolute
paths, an ``available_range`` at the media rate starting at the media's timecode,
source ranges at the timeline rate counted from the timecode origin, exact NTSC rates,
``Resolve_OTIO`` metadata on the timeline and tracks, Marker.2 with upper-case colours.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from liveedit.sidecar.timeline.placement import LIVEEDIT_TRACK, Region, timeline_rate, video_tracks
from liveedit.sidecar.timeline.readers import TimelineError, media_path_from_url
from liveedit.sidecar.timeline.timebase import exact_rate, seconds

PROVENANCE_SCHEMA = 1
DEFAULT_MEDIA = "DEFAULT_MEDIA"
RESOLVE = "Resolve_OTIO"
_MARKER_COLORS = {
    getattr(otio.schema.MarkerColor, name) for name in dir(otio.schema.MarkerColor) if name.isupper()
}
# Pin what Resolve reads: Marker.2 with a colour string (OTIO main moved to Marker.3).
TARGET_SCHEMA_VERSIONS = {"Marker": 2, "Clip": 2}


@dataclass(frozen=True)
class EditedSegment:
    """A rendered file and which part of it replaces which region."""

    region: Region
    media_path: str  # absolute path of the rendered file
    timecode_start: int  # the file's first frame as a timecode frame count at region.media_rate
    frame_count: int  # frames in the file (region plus handles)
    provenance: dict


def provenance(
    region: Region,
    *,
    seed: int,
    model: str,
    checkpoint_hash: str | None,
    random_weights: bool,
    sampler: dict,
    job_id: str,
    settings_key: str,
    handles: tuple[int, int],
    created: datetime | None = None,
    detail: dict | None = None,
) -> dict:
    """What made this segment, enough to reproduce it (plain JSON types only). ``detail``:
    how the edit was delivered at the source's size and precision ({"mode": ...}, plus the
    mask's threshold and softness when "masked"); None for renders that predate it."""
    prov = {
        "schema_version": PROVENANCE_SCHEMA,
        "job_id": job_id,
        "instruction": region.instruction,
        "seed": seed,
        "model": model,
        "checkpoint_hash": checkpoint_hash,
        "random_weights": random_weights,
        "sampler": dict(sampler),
        "settings_key": settings_key,
        "source": {
            "media": region.media_path,
            "first_frame": region.first_frame,
            "frame_count": region.frame_count,
            "rate": [region.media_rate.numerator, region.media_rate.denominator],
            "timecode": region.source_timecode,
            "handles": list(handles),
        },
        "record": {
            "track": region.track,
            "clip": region.clip_name,
            "start_frame": region.record_start,
            "frame_count": region.record_frames,
            "timecode": region.record_timecode,
            "marker_id": region.marker_id,
        },
        "created": (created or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
    }
    if detail is not None:
        prov["detail"] = dict(detail)
    return prov


def _rt(value: Fraction | int, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(value), float(rate))


def region_clip(region: Region, media_path: str | Path, timecode_start: int, frame_count: int, *,
                name: str | None = None, metadata: dict | None = None) -> otio.schema.Clip:
    """A Clip.2 that shows ``region`` from ``media_path`` (the source, or a segment rendered
    from it), in the shape Resolve reads: a bare absolute path, the file's available range at
    the media rate from its first timecode frame, and the region's TC-absolute source range at
    the timeline rate. A segment carries the source timecode, so the same source range lands on
    the edited twin of the same frame."""
    available = otio.opentime.TimeRange(_rt(timecode_start, region.media_rate), _rt(frame_count, region.media_rate))
    if Path(media_path).is_dir():  # a PNG segment: numbered frames, as an editor's image sequence
        reference = image_sequence_reference(Path(media_path), timecode_start, region.media_rate, available)
    else:
        reference = otio.schema.ExternalReference(
            target_url=str(Path(media_path).resolve()),  # a bare path: Resolve rejects file:// URLs
            available_range=available,
        )
    reference.name = Path(media_path).name
    return otio.schema.Clip(
        name=name or region.clip_name,
        media_reference=reference,
        source_range=otio.opentime.TimeRange(
            _rt(region.source_start, region.timeline_rate), _rt(region.record_frames, region.timeline_rate)
        ),
        metadata=metadata or {},
    )


PNG_DIGITS = 7  # SegmentWriter names PNG frames <folder>/<folder>.<timecode frame, 7 digits>.png


def image_sequence_reference(folder: Path, first_number: int, rate: Fraction,
                             available: otio.opentime.TimeRange) -> otio.schema.ImageSequenceReference:
    """The frames SegmentWriter writes for a PNG segment, numbered from the timecode frame of
    the first one."""
    folder = folder.resolve()
    return otio.schema.ImageSequenceReference(
        target_url_base=f"{folder}{os.sep}", name_prefix=f"{folder.name}.", name_suffix=".png",
        start_frame=first_number, frame_step=1, rate=float(rate), frame_zero_padding=PNG_DIGITS,
        available_range=available)


def reference_path(ref) -> Path | None:
    """The file (or, for an image sequence, the folder) a media reference names; None for others."""
    if isinstance(ref, otio.schema.ExternalReference):
        return Path(ref.target_url)
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return Path(ref.target_url_base.rstrip("/\\"))
    return None


def segment_clip(segment: EditedSegment) -> otio.schema.Clip:
    """The clip that shows the edited region from the rendered file."""
    region = segment.region
    return region_clip(region, segment.media_path, segment.timecode_start, segment.frame_count,
                       name=f"{region.clip_name} LiveEdit", metadata={RESOLVE: {}, "liveedit": segment.provenance})


def source_timeline(region: Region) -> otio.schema.Timeline:
    """A one-clip timeline for a region that came without one (a job region): its source clip
    on "Video 1" at the region's record start."""
    rate = region.timeline_rate
    timeline = otio.schema.Timeline(name=region.clip_name, global_start_time=_rt(region.timeline_start, rate))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    if region.record_start:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=_rt(region.record_start, rate))))
    track.append(region_clip(region, region.media_path, region.media_timecode_start, region.media_frame_count))
    timeline.tracks.append(track)
    return timeline


def edited_timeline(original: otio.schema.Timeline, segments: list[EditedSegment]) -> otio.schema.Timeline:
    """A copy of ``original`` with the segments on the "LiveEdit" video track (created
    above the other video tracks, or reused). A new segment replaces an older one it
    overlaps; everything else on the timeline is left as it was."""
    timeline = original.deepcopy()
    rate = timeline_rate(timeline)
    resolve_shape(timeline)
    track = next((t for t in video_tracks(timeline) if t.name == LIVEEDIT_TRACK), None)
    placed: list[tuple[int, otio.schema.Clip]] = []
    if track is None:
        track = otio.schema.Track(name=LIVEEDIT_TRACK, kind=otio.schema.TrackKind.Video, metadata={RESOLVE: {"Locked": False}})
        # Resolve lists every video track (bottom-up) before the audio tracks.
        last_video = max((i for i, t in enumerate(timeline.tracks) if t in video_tracks(timeline)), default=-1)
        timeline.tracks.insert(last_video + 1, track)
    else:
        for item in track:
            if isinstance(item, otio.schema.Clip):
                start = round(seconds(item.range_in_parent().start_time) * rate)
                placed.append((start, item.deepcopy()))
    for segment in segments:
        new = segment_clip(segment)
        start, end = segment.region.record_start, segment.region.record_start + segment.region.record_frames
        placed = [
            (s, c) for s, c in placed if s + round(seconds(c.trimmed_range().duration) * rate) <= start or s >= end
        ]
        placed.append((start, new))
    placed.sort(key=lambda item: item[0])
    while len(track):
        track.pop()
    cursor = 0
    for start, clip in placed:
        if start > cursor:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=_rt(start - cursor, rate))))
        track.append(clip)
        cursor = start + round(seconds(clip.trimmed_range().duration) * rate)
    return timeline


def resolve_shape(timeline: otio.schema.Timeline) -> None:
    """Fill in what Resolve's importer needs and FCP-XML-sourced timelines lack: the
    timeline meta version, ``global_start_time``, track names and ``Resolve_OTIO`` keys,
    bare paths instead of file:// URLs. Values already there are kept."""
    rate = timeline_rate(timeline)
    timeline.metadata.setdefault(RESOLVE, {}).setdefault("Resolve OTIO Meta Version", "1.0")
    if timeline.global_start_time is None:
        timeline.global_start_time = _rt(0, rate)
    counts = {otio.schema.TrackKind.Video: 0, otio.schema.TrackKind.Audio: 0}
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            continue
        counts[track.kind] = counts.get(track.kind, 0) + 1
        if not track.name:
            track.name = f"{track.kind} {counts[track.kind]}"
        keys = track.metadata.setdefault(RESOLVE, {})
        keys.setdefault("Locked", False)
        if track.kind == otio.schema.TrackKind.Audio:
            keys.setdefault("Audio Type", "Stereo")
            keys.setdefault("SoloOn", False)
    for clip in timeline.find_clips():
        sr = clip.source_range
        if sr is not None and exact_rate(sr.start_time.rate) != rate:
            # e.g. a Premiere clip item at 15 on a 30 timeline: same seconds, timeline frames
            clip.source_range = otio.opentime.TimeRange(
                _rt(seconds(sr.start_time) * rate, rate), _rt(seconds(sr.duration) * rate, rate)
            )
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url.startswith("file:"):
            ref.target_url = media_path_from_url(ref.target_url)
        for marker in clip.markers:
            _resolve_marker(marker)
    for marker in timeline.tracks.markers:
        _resolve_marker(marker)


def _resolve_marker(marker: otio.schema.Marker) -> None:
    note = (marker.metadata.get(RESOLVE) or {}).get("Note") or marker.comment or ""
    marker.metadata.setdefault(RESOLVE, {}).setdefault("Keywords", [])
    marker.metadata[RESOLVE]["Note"] = note
    marker.comment = note  # Resolve 21 drops notes given only in `comment`; write both
    marker.color = (marker.color or "RED").upper()
    if marker.marked_range.duration.value < 1:
        rate = marker.marked_range.start_time.rate
        marker.marked_range = otio.opentime.TimeRange(marker.marked_range.start_time, otio.opentime.RationalTime(1, rate))


# -- the Resolve import rules ---------------------------------------------------------


def _is_bare_absolute(path: str) -> bool:
    return path.startswith("/") or bool(re.match(r"^[A-Za-z]:[\\/]", path)) or path.startswith("\\\\")


def _exact(rate: float) -> bool:
    return abs(float(exact_rate(rate)) - rate) < 1e-9


def validate_for_resolve(timeline: otio.schema.Timeline) -> list[str]:
    """Every rule we know Resolve's OTIO import enforces (or that Resolve's own exports
    always satisfy); an empty list means the file should import. Each problem names
    the object and says what is wrong."""
    problems: list[str] = []
    meta = timeline.metadata.get(RESOLVE) or {}
    if meta.get("Resolve OTIO Meta Version") != "1.0":
        problems.append('timeline: metadata Resolve_OTIO["Resolve OTIO Meta Version"] must be "1.0"')
    if timeline.global_start_time is None:
        problems.append("timeline: global_start_time must be set (the start timecode at the timeline rate)")
    try:
        rate = timeline_rate(timeline)
    except TimelineError as exc:
        return problems + [f"timeline: {exc}"]
    if timeline.global_start_time is not None and not _exact(timeline.global_start_time.rate):
        problems.append(f"timeline: rate {timeline.global_start_time.rate} is not exact; write {exact_rate(timeline.global_start_time.rate)}")
    seen_audio = False
    for track in timeline.tracks:
        if not isinstance(track, otio.schema.Track):
            problems.append(f"top-level {type(track).__name__} {track.name!r}: only tracks may sit in the timeline's stack")
            continue
        where = f"track {track.name!r}"
        if track.kind == otio.schema.TrackKind.Audio:
            seen_audio = True
        elif track.kind == otio.schema.TrackKind.Video and seen_audio:
            problems.append(f"{where}: video tracks must all come before the audio tracks")
        if not track.name:
            problems.append(f"track {track.kind}: needs a name (Resolve writes \"Video N\" / \"Audio N\")")
        if "Locked" not in (track.metadata.get(RESOLVE) or {}):
            problems.append(f'{where}: metadata Resolve_OTIO["Locked"] is missing')
        if track.source_range is not None:
            problems.append(f"{where}: source_range must be null on tracks")
        for clip in track.find_clips():
            problems.extend(_clip_problems(clip, track, rate))
    for marker in timeline.tracks.markers:
        problems.extend(_marker_problems(marker, "timeline marker"))
    return problems


def _clip_problems(clip: otio.schema.Clip, track: otio.schema.Track, rate: Fraction) -> list[str]:
    where = f"clip {clip.name!r} on {track.name!r}"
    problems: list[str] = []
    if clip.active_media_reference_key != DEFAULT_MEDIA or DEFAULT_MEDIA not in clip.media_references():
        problems.append(f"{where}: the media reference must be keyed {DEFAULT_MEDIA} and be the active one")
    sr = clip.source_range
    if sr is None:
        problems.append(f"{where}: source_range must be set")
    else:
        if not _exact(sr.start_time.rate):
            problems.append(f"{where}: source rate {sr.start_time.rate} is not exact; write {exact_rate(sr.start_time.rate)}")
        if exact_rate(sr.start_time.rate) != rate:
            problems.append(f"{where}: source_range is at {sr.start_time.rate} fps; Resolve writes it at the timeline rate {float(rate):g}")
    ref = clip.media_reference
    if isinstance(ref, (otio.schema.ExternalReference, otio.schema.ImageSequenceReference)):
        available = ref.available_range
        url = ref.target_url if isinstance(ref, otio.schema.ExternalReference) else ref.target_url_base
        if not _is_bare_absolute(url):
            problems.append(f"{where}: target_url {url!r} must be a bare absolute path, not a URL or relative path")
        if available is None:
            problems.append(f"{where}: the media reference needs an available_range (media rate, from its first timecode)")
        else:
            if not _exact(available.start_time.rate):
                problems.append(f"{where}: media rate {available.start_time.rate} is not exact; write {exact_rate(available.start_time.rate)}")
            retimed = any(isinstance(e, otio.schema.TimeEffect) for e in clip.effects)
            if sr is not None and not retimed:
                # Source ranges count from the media's timecode origin: a 0-based range on
                # timecoded media is the classic reason ImportTimelineFromFile returns None.
                tolerance = Fraction(1, 2) / rate
                if seconds(sr.start_time) + tolerance < seconds(available.start_time):
                    problems.append(
                        f"{where}: source_range starts at {sr.start_time.value:g}, before the media's first "
                        f"timecode frame {available.start_time.value:g}; source ranges must be timecode-absolute"
                    )
                elif seconds(sr.end_time_exclusive()) > seconds(available.end_time_exclusive()) + tolerance:
                    problems.append(f"{where}: source_range runs past the end of the media's available_range")
    elif ref is None or isinstance(ref, otio.schema.MissingReference):
        problems.append(f"{where}: has no media reference")
    warps = [i for i, e in enumerate(clip.effects) if isinstance(e, otio.schema.LinearTimeWarp)]
    if warps and warps[0] != 0:
        problems.append(f"{where}: the LinearTimeWarp must be the first effect")
    for marker in clip.markers:
        problems.extend(_marker_problems(marker, f"marker on {where}"))
    return problems


def _marker_problems(marker: otio.schema.Marker, where: str) -> list[str]:
    where = f"{where} {marker.name!r}"
    problems = []
    if marker.color not in _MARKER_COLORS:
        problems.append(f"{where}: colour {marker.color!r} must be one of OTIO's upper-case names (e.g. GREEN)")
    if marker.marked_range.duration.value < 1:
        problems.append(f"{where}: duration must be at least 1 frame (Resolve writes point markers as 1 frame)")
    note = (marker.metadata.get(RESOLVE) or {}).get("Note")
    if note is None:
        problems.append(f'{where}: the note must be in metadata Resolve_OTIO["Note"]')
    elif note != marker.comment:
        problems.append(f'{where}: write the note to both Resolve_OTIO["Note"] and comment')
    return problems


# -- writing files ----------------------------------------------------------------------


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write next to the target under a temporary name, then rename over it: readers
    never see half a file, and a crash leaves the old file intact. The file gets the
    ordinary mode (0666 less the umask, applied by the system to this file alone: the
    process's umask is never changed, since other threads create files meanwhile)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def otio_text(timeline: otio.schema.Timeline) -> str:
    return otio.adapters.write_to_string(timeline, "otio_json", target_schema_versions=TARGET_SCHEMA_VERSIONS)


def write_otio(timeline: otio.schema.Timeline, path: str | Path) -> Path:
    return atomic_write_text(path, otio_text(timeline))


def _liveedit_only(timeline: otio.schema.Timeline) -> otio.schema.Timeline:
    """EDL carries one video track: the LiveEdit segments, at absolute record timecode."""
    rate = timeline_rate(timeline)
    out = otio.schema.Timeline(name=timeline.name or "LiveEdit", global_start_time=timeline.global_start_time)
    track = otio.schema.Track(name=LIVEEDIT_TRACK, kind=otio.schema.TrackKind.Video)
    # The cmx_3600 writer counts record time from zero; a leading gap of the timeline
    # start makes the record timecodes absolute, as the editor shows them.
    start = round(seconds(timeline.global_start_time) * rate) if timeline.global_start_time else 0
    if start:
        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=_rt(start, rate))))
    for source in video_tracks(timeline):
        if source.name == LIVEEDIT_TRACK:
            for item in source:
                track.append(item.deepcopy())
    out.tracks.append(track)
    return out


def edl_text(timeline: otio.schema.Timeline) -> str:
    rate = timeline_rate(timeline)
    text = otio.adapters.write_to_string(_liveedit_only(timeline), "cmx_3600", rate=float(rate))
    drop = rate in (Fraction(30000, 1001), Fraction(60000, 1001))
    fcm = f"FCM: {'DROP FRAME' if drop else 'NON-DROP FRAME'}"
    lines = text.splitlines()
    lines.insert(1, fcm)  # the adapter leaves out FCM; Avid and Premiere expect it
    return "\n".join(lines) + "\n"


def write_edl(timeline: otio.schema.Timeline, path: str | Path) -> Path:
    return atomic_write_text(path, edl_text(timeline))


def fcp_xml_text(timeline: otio.schema.Timeline) -> str:
    """FCP 7 XML (Premiere's classic interchange) of the whole edited timeline."""
    timeline = timeline.deepcopy()
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ImageSequenceReference):
            # FCP 7 XML names an image sequence by its first file; the fcp_xml writer fails on
            # the reference itself.
            first = ref.target_url_for_image_number(0)
            ref = otio.schema.ExternalReference(target_url=first, available_range=ref.available_range)
            clip.media_reference = ref
        if isinstance(ref, otio.schema.ExternalReference) and _is_bare_absolute(ref.target_url):
            path = ref.target_url
            ref.target_url = Path(path).as_uri() if path.startswith("/") else "file:///" + path.replace("\\", "/")
        elif isinstance(ref, otio.schema.GeneratorReference):
            # The fcp_xml writer fails on generators other than its own slugs (Resolve's
            # Solid Color): leave a gap of the same length so every cut stays in place.
            track, index = clip.parent(), clip.parent().index(clip)
            track[index] = otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=clip.trimmed_range().duration))
    return otio.adapters.write_to_string(timeline, "fcp_xml")


def write_fcp_xml(timeline: otio.schema.Timeline, path: str | Path) -> Path:
    return atomic_write_text(path, fcp_xml_text(timeline))


def write_all(timeline: otio.schema.Timeline, base: str | Path) -> dict[str, Path]:
    """``base``.otio, ``base``.edl and ``base``.xml, each written atomically."""
    base = Path(base)
    return {
        "otio": write_otio(timeline, base.with_suffix(".otio")),
        "edl": write_edl(timeline, base.with_suffix(".edl")),
        "xml": write_fcp_xml(timeline, base.with_suffix(".xml")),
    }
