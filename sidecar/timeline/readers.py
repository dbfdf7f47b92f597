"""Reading what editors export (OTIO JSON, FCP 7 XML, CMX 3600 EDL) into an OTIO ``Timeline``.

Resolve's timeline markers in an EDL are read here too (OTIO's cmx_3600 adapter would make
one-frame clips of them). Facts: ``shared/spec/nle-exports.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import opentimelineio as otio

from liveedit.errors import Kind, LiveEditError


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


_EDL_EVENT = re.compile(
    r"^(?P<num>\d+)\s+\S+\s+\S+\s+\S+\s+(?:\d+\s+)?"
    r"(?P<src_in>\d\d:\d\d:\d\d[:;.]\d\d)\s+(?P<src_out>\d\d:\d\d:\d\d[:;.]\d\d)\s+"
    r"(?P<rec_in>\d\d:\d\d:\d\d[:;.]\d\d)\s+(?P<rec_out>\d\d:\d\d:\d\d[:;.]\d\d)\s*$"
)
_EDL_MARKER = re.compile(r"^(?P<note>.*?)\s*\|C:(?P<color>\S*)\s+\|M:(?P<name>.*?)\s+\|D:(?P<duration>\d+)\s*$")


def read_edl(text: str, *, rate: float) -> otio.schema.Timeline:
    """CMX 3600 EDL. Resolve's timeline-marker events (an event line followed by
    ``|C:ResolveColor… |M:… |D:…``) become timeline markers, which OTIO's cmx_3600
    adapter would otherwise read as one-frame clips; every other event goes through the
    adapter. Marker times are absolute record timecode; ``global_start_time`` is the
    first event's record timecode, as the adapter does."""
    lines = text.splitlines()
    markers: list[tuple[int, str, str, str, int]] = []  # record frame, colour, name, note, duration
    kept: list[str] = []
    i = 0
    while i < len(lines):
        event = _EDL_EVENT.match(lines[i])
        follow = _EDL_MARKER.match(lines[i + 1]) if event and i + 1 < len(lines) else None
        if event and follow:
            record = otio.opentime.from_timecode(event["rec_in"].replace(".", ":"), rate)
            color = follow["color"].removeprefix("ResolveColor").upper() or "RED"
            markers.append(
                (round(record.value), color, follow["name"].strip(), follow["note"].strip(), int(follow["duration"]))
            )
            i += 2
            continue
        kept.append(lines[i])
        i += 1
    has_events = any(_EDL_EVENT.match(line) for line in kept)
    if has_events:
        timeline = otio.adapters.read_from_string("\n".join(kept) + "\n", adapter_name="cmx_3600", rate=rate)
        if timeline.global_start_time is None:
            # The adapter counts record time from the first event and forgets where that
            # was; keep it, or every record timecode would be off by the timeline start.
            first = next(_EDL_EVENT.match(line) for line in kept if _EDL_EVENT.match(line))
            timeline.global_start_time = otio.opentime.from_timecode(first["rec_in"].replace(".", ":"), rate)
    else:
        title = next((line[6:].strip() for line in lines if line.startswith("TITLE:")), "")
        timeline = otio.schema.Timeline(name=title)
        track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
        timeline.tracks.append(track)
    if markers:
        start = timeline.global_start_time
        if not has_events or start is None:
            start = otio.opentime.RationalTime(min(m[0] for m in markers), rate)
            timeline.global_start_time = start
        origin = round(start.rescaled_to(rate).value)
        for record, color, name, note, duration in markers:
            marker = otio.schema.Marker(
                name=name,
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(record - origin, rate), otio.opentime.RationalTime(duration, rate)
                ),
                color=color,
                metadata={"Resolve_OTIO": {"Keywords": [], "Note": note}},
            )
            marker.comment = note
            timeline.tracks.markers.append(marker)
    return timeline


def media_path_from_url(url: str) -> str:
    """Resolve writes bare paths, Premiere and FCP XML write file:// URLs."""
    if url.startswith("file:"):
        return otio.url_utils.filepath_from_url(url)
    return url

