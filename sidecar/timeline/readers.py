"""Reading what editors export (OTIO JSON, FCP 7 XML, CMX 3600 EDL) into an OTIO ``Timeline``.

Resolve's timeline markers in an EDL are read here too (OTIO's cmx_3600 adapter would make
one-frame clips of them). Facts: ``shared/spec/nle-exports.md``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.timeline.timebase import TimecodeError, exact_rate, timecode_to_frame


class TimelineError(LiveEditError):
    """A timeline file cannot be read, or a part of it cannot be mapped to source frames."""

    kind = Kind.INVALID



def read_timeline(path: str | Path, *, edl_rate: float | None = None) -> otio.schema.Timeline:
    """Read an editor's export: .otio/.json (OTIO JSON, also a single clip), .xml (FCP 7
    XML) or .edl (CMX 3600; ``edl_rate`` is required because an EDL does not state it)."""
    path = Path(path)
    if not path.is_file():
        raise TimelineError(f"timeline file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".otio", ".json"):
            result = otio.adapters.read_from_file(str(path), adapter_name="otio_json")
        elif suffix == ".xml":
            result = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
        elif suffix == ".edl":
            if not edl_rate:
                raise TimelineError(
                    f"{path}: an EDL does not state its frame rate; pass the timeline rate (e.g. --edl-rate 25)"
                )
            result = read_edl(path.read_text(encoding="utf-8", errors="replace"), rate=edl_rate)
        else:
            raise TimelineError(f"{path}: unknown timeline format {suffix!r}; use .otio, .json, .xml (FCP 7) or .edl")
    except TimelineError:
        raise
    except Exception as exc:  # adapters raise many types; name the file for the user
        raise TimelineError(f"{path} could not be read as a timeline ({type(exc).__name__}: {exc})") from exc
    if isinstance(result, otio.schema.Clip):
        result = _single_clip_timeline(result)
    if not isinstance(result, otio.schema.Timeline):
        raise TimelineError(f"{path} holds a {type(result).__name__}, not a timeline")
    return result


def _single_clip_timeline(clip: otio.schema.Clip) -> otio.schema.Timeline:
    """AYON-style single-clip exports: put the clip alone on "Video 1" at record 0."""
    rate = clip.source_range.start_time.rate if clip.source_range else 24.0
    timeline = otio.schema.Timeline(name=clip.name, global_start_time=otio.opentime.RationalTime(0, rate))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(clip.deepcopy())
    timeline.tracks.append(track)
    return timeline


_TC = r"\d\d:\d\d:\d\d[:;.,]\d\d"
_EDL_EVENT = re.compile(
    rf"^(?P<num>\d+)\s+\S+\s+\S+\s+\S+\s+(?:\d+\s+)?"
    rf"(?P<src_in>{_TC})\s+(?P<src_out>{_TC})\s+(?P<rec_in>{_TC})\s+(?P<rec_out>{_TC})\s*$"
)
_EDL_MARKER = re.compile(r"^(?P<note>.*?)\s*\|C:(?P<color>\S*)\s+\|M:(?P<name>.*?)\s+\|D:(?P<duration>\d+)\s*$")
_TIMECODE_FIELDS = ("src_in", "src_out", "rec_in", "rec_out")


def read_edl(text: str, *, rate: float | Fraction) -> otio.schema.Timeline:
    """CMX 3600 EDL. Resolve's timeline-marker events (an event line followed by
    ``|C:ResolveColor… |M:… |D:…``) become timeline markers, which OTIO's cmx_3600
    adapter would otherwise read as one-frame clips; every other event goes through the
    adapter. Marker times are absolute record timecode; ``global_start_time`` is the
    first event's record timecode, as the adapter does.

    Every event's timecodes are read by the one timecode parser (timeline/timebase.py): a
    label drop-frame skips is refused, and '.' or ',' mean drop-frame as ';' does (the
    adapter is handed them as ';', which it reads as drop-frame)."""
    rate = exact_rate(rate)
    lines = text.splitlines()
    markers: list[tuple[int, str, str, str, int]] = []  # record frame, colour, name, note, duration
    kept: list[str] = []
    first_event: int | None = None  # record frame of the first event the adapter reads
    i = 0
    while i < len(lines):
        event = _EDL_EVENT.match(lines[i])
        frames = _event_frames(event, rate, i + 1) if event else {}
        follow = _EDL_MARKER.match(lines[i + 1]) if event and i + 1 < len(lines) else None
        if event and follow:
            color = follow["color"].removeprefix("ResolveColor").upper() or "RED"
            markers.append(
                (frames["rec_in"], color, follow["name"].strip(), follow["note"].strip(), int(follow["duration"]))
            )
            i += 2
            continue
        if event and first_event is None:
            first_event = frames["rec_in"]
        kept.append(_with_drop_frame_separators(lines[i], event))
        i += 1
    if first_event is not None:
        timeline = otio.adapters.read_from_string("\n".join(kept) + "\n", adapter_name="cmx_3600", rate=float(rate))
        if timeline.global_start_time is None:
            # The adapter counts record time from the first event and forgets where that
            # was; keep it, or every record timecode would be off by the timeline start.
            timeline.global_start_time = otio.opentime.RationalTime(first_event, float(rate))
    else:
        title = next((line[6:].strip() for line in lines if line.startswith("TITLE:")), "")
        timeline = otio.schema.Timeline(name=title)
        track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
        timeline.tracks.append(track)
    if markers:
        start = timeline.global_start_time
        if first_event is None or start is None:
            start = otio.opentime.RationalTime(min(m[0] for m in markers), float(rate))
            timeline.global_start_time = start
        origin = round(start.rescaled_to(float(rate)).value)
        for record, color, name, note, duration in markers:
            marker = otio.schema.Marker(
                name=name,
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(record - origin, float(rate)),
                    otio.opentime.RationalTime(duration, float(rate)),
                ),
                color=color,
                metadata={"Resolve_OTIO": {"Keywords": [], "Note": note}},
            )
            marker.comment = note
            timeline.tracks.markers.append(marker)
    return timeline


def _event_frames(event: re.Match, rate: Fraction, line_number: int) -> dict[str, int]:
    frames = {}
    for field in _TIMECODE_FIELDS:
        try:
            frames[field] = timecode_to_frame(event[field], rate)
        except TimecodeError as exc:
            raise TimelineError(f"EDL line {line_number}: {exc}") from None
    return frames


def _with_drop_frame_separators(line: str, event: re.Match | None) -> str:
    """An event line with its drop-frame timecodes written with ';', the one separator OTIO's
    parser reads as drop-frame."""
    if event is None:
        return line
    for field in _TIMECODE_FIELDS:
        start, end = event.span(field)
        line = line[:start] + event[field][:8] + event[field][8].replace(".", ";").replace(",", ";") + line[9 + start:]
    return line


def media_path_from_url(url: str) -> str:
    """Resolve writes bare paths, Premiere and FCP XML write file:// URLs."""
    if url.startswith("file:"):
        return otio.url_utils.filepath_from_url(url)
    return url

