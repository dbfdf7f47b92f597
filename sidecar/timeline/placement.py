"""Timelines from editors → exact source frames, and the regions to edit.

Given an editor's timeline as OTIO (timeline/readers.py reads the files), we answer one
question exactly: *which frames of which media file sit under this stretch of the
timeline?* Facts the mapping rests on
(``shared/spec/nle-exports.md``):

- A clip's ``source_range`` is at the clip's rate (the timeline rate for Resolve) and
  counts from the media's **timecode origin** (86400 at 24 fps for media stamped
  01:00:00:00), not from the file's first frame.
- A reference's ``available_range`` is at the **media** rate and starts at the media's
  first timecode frame. A subclip's available range can start later than the file, so a
  probe of the real file (``media_info``) wins when we have one.
- Different media and timeline rates play in real time (50 fps media on a 25 fps
  timeline shows two media frames per timeline frame), so we map through seconds with
  ``Fraction`` arithmetic and never through floats.

Time on the timeline is counted in timeline frames from the timeline start (OTIO's
``tracks`` space); ``global_start_time`` is kept beside it for timecodes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import opentimelineio as otio

from liveedit.errors import InputError
from liveedit.sidecar.timeline.readers import TimelineError, media_path_from_url
from liveedit.sidecar.timeline.timebase import TimecodeError, exact_rate, seconds, timecode, timecode_to_frame
from liveedit.sidecar.validation import check_instruction

LIVEEDIT_TRACK = "LiveEdit"  # our own output track: never a source for new edits
_DEFAULT_MARKER_NAME = re.compile(r"^Marker \d+$")  # Resolve's and Premiere's automatic names


# -- where every clip sits ------------------------------------------------------------


@dataclass(frozen=True)
class MediaTiming:
    """What a probe of the media file says (authoritative over the timeline's copy)."""

    rate: Fraction
    timecode_start: int  # first frame's timecode as a frame count at ``rate``
    frame_count: int | None = None


MediaInfo = Callable[[str], MediaTiming]


@dataclass(frozen=True)
class ClipPlacement:
    """One video clip as it appears on the timeline (inside compound clips too)."""

    clip: otio.schema.Clip
    track: str
    track_index: int  # 1-based among the timeline's top-level video tracks (V1 = 1)
    record_start: Fraction  # timeline frames from the timeline start
    record_frames: Fraction
    source_seconds: Fraction  # TC-absolute source position (seconds) at record_start
    timeline_rate: Fraction
    timeline_start: Fraction  # global_start_time in timeline frames
    retime: str | None = None  # why the clip cannot be mapped frame for frame, if it can't

    @property
    def record_end(self) -> Fraction:
        return self.record_start + self.record_frames

    def record_timecode(self, frame: Fraction | int | None = None) -> str:
        frame = self.record_start if frame is None else frame
        return timecode(self.timeline_start + frame, self.timeline_rate)

    def where(self) -> str:
        return f"clip {self.clip.name!r} on {self.track} at {self.record_timecode()}"


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    if timeline.global_start_time is not None:
        return exact_rate(timeline.global_start_time.rate)
    for clip in timeline.find_clips():
        return exact_rate(clip.trimmed_range().duration.rate)
    raise TimelineError("the timeline has no clips and no start time, so its frame rate is unknown")


def timeline_start(timeline: otio.schema.Timeline) -> Fraction:
    if timeline.global_start_time is None:
        return Fraction(0)
    return seconds(timeline.global_start_time) * timeline_rate(timeline)


def video_tracks(timeline: otio.schema.Timeline) -> list[otio.schema.Track]:
    return [t for t in timeline.tracks if isinstance(t, otio.schema.Track) and t.kind == otio.schema.TrackKind.Video]


def clip_placements(timeline: otio.schema.Timeline, *, include_disabled: bool = False) -> list[ClipPlacement]:
    """Every video clip with its exact record range, bottom track first."""
    rate = timeline_rate(timeline)
    start = timeline_start(timeline)
    out: list[ClipPlacement] = []
    for index, track in enumerate(video_tracks(timeline), start=1):
        if not include_disabled and not track.enabled:
            continue
        for clip in _clips_in(track, include_disabled):
            placement = _place(clip, timeline.tracks, track, index, rate, start)
            if placement is not None:
                out.append(placement)
    return out


def _clips_in(composition: otio.core.Composition, include_disabled: bool) -> Iterator[otio.schema.Clip]:
    for child in composition:
        if not include_disabled and not getattr(child, "enabled", True):
            continue
        if isinstance(child, otio.schema.Clip):
            yield child
        elif isinstance(child, otio.schema.Stack):  # a compound clip: its video tracks
            for inner in child:
                if isinstance(inner, otio.schema.Track) and inner.kind == otio.schema.TrackKind.Video:
                    yield from _clips_in(inner, include_disabled)


def _place(clip, tracks, track, index, rate, start) -> ClipPlacement | None:
    record = clip.transformed_time_range(clip.trimmed_range(), tracks)
    rec_start = seconds(record.start_time) * rate
    rec_end = rec_start + seconds(record.duration) * rate
    # Inside a compound clip, only what the compound's own trim shows is on the timeline.
    parent = clip.parent()
    while parent is not None and parent is not tracks:
        if isinstance(parent, otio.schema.Stack) and parent.parent() is not None:
            visible = parent.transformed_time_range(parent.trimmed_range(), tracks)
            rec_start = max(rec_start, seconds(visible.start_time) * rate)
            rec_end = min(rec_end, seconds(visible.end_time_exclusive()) * rate)
        parent = parent.parent()
    if rec_end <= rec_start:
        return None
    clip_record_start = seconds(record.start_time) * rate
    source = seconds(clip.trimmed_range().start_time) + (rec_start - clip_record_start) / rate
    return ClipPlacement(
        clip=clip,
        track=track.name or f"Video {index}",
        track_index=index,
        record_start=rec_start,
        record_frames=rec_end - rec_start,
        source_seconds=source,
        timeline_rate=rate,
        timeline_start=start,
        retime=_retime_reason(clip),
    )


_PPRO_TICKS_PER_SECOND = 254_016_000_000


def _retime_reason(clip: otio.schema.Clip) -> str | None:
    """Speed changes, time warps and freeze frames: we cannot yet say which source frame
    shows on which timeline frame, so such clips are refused rather than guessed."""
    for effect in clip.effects:
        if isinstance(effect, otio.schema.FreezeFrame):
            return "it has a freeze frame"
        if isinstance(effect, otio.schema.LinearTimeWarp):
            if effect.time_scalar != 1.0:
                return f"it is retimed to {effect.time_scalar * 100:.4g}% speed"
        elif isinstance(effect, otio.schema.TimeEffect):
            return f"it has a time effect ({effect.effect_name or type(effect).__name__})"
        fcp = effect.metadata.get("fcp_xml") if effect.metadata else None
        if fcp is not None and str(fcp.get("effectid", "")).lower() == "timeremap":
            speed = _fcp_parameter(fcp, "speed")
            # Resolve 19.1 writes a degenerate Time Remap with speed 0 on every clip
            # (nle-exports.md §2), so only a real, different speed counts.
            if speed not in (None, 0.0, 100.0):
                return f"it has a Time Remap at {speed:g}% speed"
    # Premiere's FCP XML: for a retimed clip <in> is in the warped domain while
    # pproTicksIn holds the true source position (nle-exports.md §3.1).
    fcp = clip.metadata.get("fcp_xml") if clip.metadata else None
    ref = clip.media_reference
    ticks = fcp.get("pproTicksIn") if fcp is not None else None
    if ticks is not None and ref is not None and ref.available_range is not None:
        true_in = Fraction(int(ticks), _PPRO_TICKS_PER_SECOND)
        written_in = seconds(clip.source_range.start_time) - seconds(ref.available_range.start_time)
        media_rate = exact_rate(ref.available_range.start_time.rate)
        if abs(true_in - written_in) * media_rate >= 1:
            return "Premiere's source ticks disagree with its in-point (a speed change)"
    return None


def _fcp_parameter(fcp, parameter_id: str) -> float | None:
    params = fcp.get("parameter")
    params = params if isinstance(params, list) else [params] if params else []
    for param in params:
        if param and str(param.get("parameterid", "")).lower() == parameter_id:
            try:
                return float(param.get("value"))
            except (TypeError, ValueError):
                return None
    return None


# -- regions --------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A run of source frames to edit, and where it sits on the timeline."""

    media_path: str
    first_frame: int  # 0-based frame index into the media file (timecode origin subtracted)
    frame_count: int  # media frames, at media_rate
    media_rate: Fraction
    record_start: int  # timeline frames from the timeline start
    record_frames: int  # timeline frames covered
    timeline_rate: Fraction
    timeline_start: int  # global_start_time in timeline frames (01:00:00:00 → 86400 at 24)
    track: str
    clip_name: str
    instruction: str
    marker_id: str | None = None
    media_timecode_start: int = 0  # the media's first frame as a timecode frame count at media_rate
    media_frame_count: int | None = None  # frames in the media, when known
    # TC-absolute source position at record_start, in timeline frames: what Resolve
    # writes as source_range.start_time (can be fractional when the rates differ).
    source_start: Fraction = Fraction(0)
    track_index: int = 1

    @property
    def record_timecode(self) -> str:
        return timecode(self.timeline_start + self.record_start, self.timeline_rate)

    @property
    def source_timecode(self) -> str:
        return timecode(self.media_timecode_start + self.first_frame, self.media_rate)

    def describe(self) -> str:
        return (
            f"{self.clip_name!r} on {self.track} at {self.record_timecode}: media frames "
            f"{self.first_frame}–{self.first_frame + self.frame_count - 1} of {Path(self.media_path).name}"
        )


def region_for(
    placement: ClipPlacement,
    record_start: Fraction | int,
    record_end: Fraction | int,
    instruction: str,
    *,
    marker_id: str | None = None,
    media_info: MediaInfo | None = None,
) -> Region:
    """Map the record frames [record_start, record_end) of one clip to media frames."""
    where = f"clip {placement.clip.name!r} on {placement.track} at {placement.record_timecode(record_start)}"
    if placement.retime:
        raise TimelineError(
            f"{where} cannot be edited because {placement.retime}; render the retimed clip to a "
            f"new file first (or remove the speed change) and mark that instead"
        )
    try:  # the same check, in the same words, as a job's instruction
        instruction = check_instruction(instruction or "", f"{where}: the instruction")
    except InputError as exc:
        raise TimelineError(f"{exc} (write it in the marker's note, or pass -p)") from None
    record_start = max(Fraction(record_start), placement.record_start)
    record_end = min(Fraction(record_end), placement.record_end)
    if record_end <= record_start:
        raise TimelineError(f"{where}: the region does not overlap the clip")
    path, media_rate, tc_start, media_frames = _media_of(placement, where, media_info)
    rate = placement.timeline_rate
    t0 = placement.source_seconds + (record_start - placement.record_start) / rate
    t1 = t0 + (record_end - record_start) / rate
    origin = Fraction(tc_start) / media_rate
    # The media frames on screen over [t0, t1): the one showing at t0 through the one
    # still showing just before t1. Exact when the rates divide (50 on 25).
    first = math.floor((t0 - origin) * media_rate)
    end = math.ceil((t1 - origin) * media_rate)
    if first < 0 or (media_frames is not None and end > media_frames):
        have = f"0–{media_frames - 1}" if media_frames is not None else "from 0"
        raise TimelineError(
            f"{where} needs media frames {first}–{end - 1} of {path}, but the media has frames {have}; "
            f"the timeline and the file disagree (relinked or re-exported media?)"
        )
    return Region(
        media_path=path,
        first_frame=first,
        frame_count=end - first,
        media_rate=media_rate,
        record_start=round(record_start),
        record_frames=round(record_end) - round(record_start),
        timeline_rate=rate,
        timeline_start=round(placement.timeline_start),
        track=placement.track,
        track_index=placement.track_index,
        clip_name=placement.clip.name,
        instruction=instruction,
        marker_id=marker_id,
        media_timecode_start=tc_start,
        media_frame_count=media_frames,
        source_start=t0 * rate,
    )


def _media_of(placement: ClipPlacement, where: str, media_info: MediaInfo | None):
    ref = placement.clip.media_reference
    if isinstance(ref, otio.schema.ExternalReference):
        path = media_path_from_url(ref.target_url)
    elif isinstance(ref, otio.schema.ImageSequenceReference):
        # An ffmpeg-style pattern; frame indices count from the sequence's first file.
        digits = f"%0{ref.frame_zero_padding}d" if ref.frame_zero_padding else "%d"
        path = str(Path(media_path_from_url(ref.target_url_base)) / f"{ref.name_prefix}{digits}{ref.name_suffix}")
    elif isinstance(ref, otio.schema.GeneratorReference):
        raise TimelineError(f"{where} is a generator ({ref.generator_kind or ref.name}); there is no media to edit")
    else:
        raise TimelineError(f"{where} has no media file (missing or offline reference); relink it in the editor")
    if media_info is not None:  # a probe of the real file beats the timeline's copy
        info = media_info(path)
        return path, info.rate, info.timecode_start, info.frame_count
    available = ref.available_range
    if available is None:
        raise TimelineError(
            f"{where}: the timeline does not say where {path} starts (no available_range) and the file "
            f"cannot be probed here; make the media reachable at that path"
        )
    media_rate = exact_rate(available.start_time.rate)
    tc_start = math.floor(seconds(available.start_time) * media_rate)
    frames = math.floor(seconds(available.end_time_exclusive()) * media_rate) - tc_start
    return path, media_rate, tc_start, frames


# -- finding what to edit -------------------------------------------------------------


def _visible(placements: list[ClipPlacement], start: Fraction, end: Fraction) -> list[tuple[ClipPlacement, Fraction, Fraction]]:
    """Split [start, end) by the clip that shows there (the topmost video track wins)."""
    candidates = [p for p in placements if p.track != LIVEEDIT_TRACK and p.record_start < end and p.record_end > start]
    cuts = sorted({start, end} | {t for p in candidates for t in (p.record_start, p.record_end) if start < t < end})
    pieces: list[tuple[ClipPlacement, Fraction, Fraction]] = []
    for a, b in zip(cuts, cuts[1:]):
        over = [p for p in candidates if p.record_start <= a and p.record_end >= b]
        if not over:
            continue  # a gap: nothing to edit there
        top = max(over, key=lambda p: p.track_index)
        if pieces and pieces[-1][0] is top and pieces[-1][2] == a:
            pieces[-1] = (top, pieces[-1][1], b)
        else:
            pieces.append((top, a, b))
    return pieces


def marker_instruction(marker: otio.schema.Marker) -> str:
    """Resolve keeps the marker's note in ``Resolve_OTIO.Note``, FCP XML in a comment;
    a name the user typed also works, but not an automatic "Marker 12"."""
    resolve = marker.metadata.get("Resolve_OTIO") or {}
    fcp = marker.metadata.get("fcp_xml") or {}
    for text in (resolve.get("Note"), getattr(marker, "comment", None), fcp.get("comment")):
        if text and str(text).strip():
            return str(text).strip()
    name = (marker.name or "").strip()
    return "" if _DEFAULT_MARKER_NAME.match(name) else name


@dataclass(frozen=True)
class FoundMarker:
    marker: otio.schema.Marker
    marker_id: str
    record_start: Fraction  # timeline frames from the timeline start
    record_frames: Fraction
    track: str | None  # None: a timeline marker; else the track it belongs to
    placement: ClipPlacement | None = None  # set for clip markers

    @property
    def color(self) -> str:
        return (self.marker.color or "").upper()

    @property
    def instruction(self) -> str:
        return marker_instruction(self.marker)


def find_markers(timeline: otio.schema.Timeline) -> list[FoundMarker]:
    """Timeline, track and clip markers, with their record ranges."""
    rate = timeline_rate(timeline)
    start = timeline_start(timeline)
    duration = seconds(timeline.duration()) * rate if len(timeline.tracks) else Fraction(0)
    found: list[FoundMarker] = []
    for n, marker in enumerate(timeline.tracks.markers):
        at = seconds(marker.marked_range.start_time) * rate
        # Resolve's timeline-marker frame space is unverified (nle-exports.md §1.5): if a
        # marker only lands on the timeline once global_start_time is taken off, it is absolute.
        if start and at >= duration and 0 <= at - start < duration:
            at -= start
        frames = seconds(marker.marked_range.duration) * rate
        found.append(FoundMarker(marker, f"timeline#{n}", at, frames, None))
    for track in video_tracks(timeline):
        for n, marker in enumerate(track.markers):
            at = seconds(marker.marked_range.start_time) * rate
            frames = seconds(marker.marked_range.duration) * rate
            found.append(FoundMarker(marker, f"{track.name}#{n}", at, frames, track.name))
    for placement in clip_placements(timeline):
        for n, marker in enumerate(placement.clip.markers):
            # Clip markers live in the clip's source-frame space (same numbering as source_range).
            offset = (seconds(marker.marked_range.start_time) - placement.source_seconds) * placement.timeline_rate
            at = placement.record_start + offset
            frames = seconds(marker.marked_range.duration) * placement.timeline_rate
            marker_id = f"{placement.track}/{placement.clip.name}@{round(placement.record_start)}#{n}"
            found.append(FoundMarker(marker, marker_id, at, frames, placement.track, placement))
    return found


def regions_from_markers(
    timeline: otio.schema.Timeline,
    color: str,
    *,
    media_info: MediaInfo | None = None,
    on_refused: Callable[[TimelineError], None] | None = None,
) -> list[Region]:
    """One region per marker of ``color`` (per clip under it). A marker longer than one
    frame marks exactly its frames; a point marker (0 or 1 frame, Resolve's default)
    marks the whole clip it sits on."""
    wanted = color.strip().upper().removeprefix("RESOLVECOLOR")
    placements = clip_placements(timeline)
    regions: list[Region] = []
    for found in find_markers(timeline):
        if found.color != wanted:
            continue
        try:
            regions.extend(_regions_for_marker(found, placements, media_info))
        except TimelineError as exc:
            if on_refused is None:
                raise
            on_refused(exc)
    return regions


def _regions_for_marker(found: FoundMarker, placements, media_info) -> list[Region]:
    instruction = found.instruction
    at = round(found.record_start)
    point = found.record_frames <= 1
    if found.placement is not None:
        pieces = [(found.placement, found.placement.record_start, found.placement.record_end)]
        if not point:
            pieces = [(found.placement, Fraction(at), Fraction(at) + round(found.record_frames))]
    else:
        pool = placements if found.track is None else [p for p in placements if p.track == found.track]
        if point:
            pieces = [(p, p.record_start, p.record_end) for p, _, _ in _visible(pool, Fraction(at), Fraction(at + 1))]
        else:
            pieces = _visible(pool, Fraction(at), Fraction(at) + round(found.record_frames))
    if not pieces:
        raise TimelineError(
            f"marker {found.marker.name!r} (timeline frame {at}) is over no video clip; move it onto the clip to edit"
        )
    if not instruction:
        p = pieces[0][0]
        raise TimelineError(
            f"marker {found.marker.name!r} at {p.record_timecode(Fraction(at))} has no instruction; "
            f"write the edit you want in the marker's note (or name)"
        )
    return [region_for(p, a, b, instruction, marker_id=found.marker_id, media_info=media_info) for p, a, b in pieces]


def regions_for_range(
    timeline: otio.schema.Timeline,
    instruction: str,
    record_range: tuple[int, int] | None = None,
    *,
    media_info: MediaInfo | None = None,
    on_refused: Callable[[TimelineError], None] | None = None,
) -> list[Region]:
    """Regions for an in/out range (timeline frames from the timeline start, out
    exclusive) or, with no range, the whole timeline: one region per visible clip."""
    placements = clip_placements(timeline)
    if record_range is None:
        start, end = Fraction(0), max((p.record_end for p in placements), default=Fraction(0))
    else:
        start, end = Fraction(record_range[0]), Fraction(record_range[1])
        if end <= start:
            raise TimelineError(f"the out point ({record_range[1]}) must come after the in point ({record_range[0]})")
    pieces = _visible(placements, start, end)
    if not pieces:
        raise TimelineError("there is no video clip in the chosen range; check the in and out points")
    regions: list[Region] = []
    for p, a, b in pieces:
        try:
            regions.append(region_for(p, a, b, instruction, media_info=media_info))
        except TimelineError as exc:
            if on_refused is None:
                raise
            on_refused(exc)
    return regions


def record_frame_from_timecode(timeline: otio.schema.Timeline, text: str) -> int:
    """An absolute record timecode (as the editor shows it) → frames from the timeline start."""
    rate = timeline_rate(timeline)
    try:
        absolute = timecode_to_frame(text, rate)
    except TimecodeError as exc:
        raise TimelineError(f"{exc} (a record timecode like 01:00:10:00 at {float(rate):g} fps)") from None
    return round(absolute - timeline_start(timeline))
