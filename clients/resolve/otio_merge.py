"""Our OTIO with provenance, written from Resolve (standard library only).

Resolve exports the timeline (``Timeline.Export(path, EXPORT_OTIO, EXPORT_NONE)``) after
our edits were placed on it; the sidecar wrote one small .otio per rendered segment whose
"LiveEdit" track holds the segment's Clip.2 with its provenance under
``metadata["liveedit"]``. Here we attach that provenance to the placed clips in
Resolve's export (and add any segment that is not on the timeline on a new "LiveEdit"
track, with gaps so that each sits at its record frame). The JSON is OTIO's plain serialisation, so no
opentimelineio is needed inside Resolve.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import ResolveScriptError

TRACK_NAME = "LiveEdit"


def _time(value, rate) -> dict:
    return {"OTIO_SCHEMA": "RationalTime.1", "rate": float(rate), "value": float(value)}


def _gap(frames: int, rate) -> dict:
    return {
        "OTIO_SCHEMA": "Gap.1", "metadata": {}, "name": "",
        "source_range": {"OTIO_SCHEMA": "TimeRange.1", "duration": _time(frames, rate), "start_time": _time(0, rate)},
        "effects": [], "markers": [], "enabled": True,
    }


def segment_clip(segment_otio: str | Path) -> dict:
    """The edited clip (with provenance) from the OTIO the sidecar wrote for one segment."""
    try:
        document = json.loads(Path(segment_otio).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResolveScriptError(f"cannot read the segment's OTIO {segment_otio} ({exc}); render the region again") from None
    for track in document.get("tracks", {}).get("children", []):
        if track.get("name") == TRACK_NAME:
            for child in track.get("children", []):
                if str(child.get("OTIO_SCHEMA", "")).startswith("Clip.") and "liveedit" in (child.get("metadata") or {}):
                    return child
    raise ResolveScriptError(f"{segment_otio} holds no LiveEdit clip; render the region again")


def _timeline_rate(document: dict) -> float:
    start = document.get("global_start_time")
    if start and start.get("rate"):
        return float(start["rate"])
    raise ResolveScriptError("the exported timeline has no global_start_time, so its frame rate is unknown; "
                             "export it again from Resolve as OpenTimelineIO")


def _media_path(clip: dict) -> str | None:
    refs = clip.get("media_references") or {}
    ref = refs.get(clip.get("active_media_reference_key") or "DEFAULT_MEDIA") or clip.get("media_reference") or {}
    return ref.get("target_url")


def _frames(item: dict, rate: float) -> int:
    duration = (item.get("source_range") or {}).get("duration") or {}
    return round(float(duration.get("value", 0)) * rate / float(duration.get("rate") or rate))


def _placed_clips(track: dict, rate: float):
    """(record frame, index, clip) for the clips of a track; transitions take no time."""
    cursor = 0
    for index, child in enumerate(track.get("children", [])):
        schema = str(child.get("OTIO_SCHEMA", ""))
        if schema.startswith("Transition."):
            continue
        if schema.startswith("Clip."):
            yield cursor, index, child
        cursor += _frames(child, rate)


def with_edits(exported: dict, segments: list[tuple[int, str | Path]]) -> dict:
    """A copy of Resolve's export where each segment (record frame from the timeline
    start, segment .otio) carries its provenance: the clip Resolve exported for our
    placement (same file, same record frame) is replaced by the sidecar's clip; segments
    not on the timeline go on a new "LiveEdit" track above the other video tracks."""
    document = json.loads(json.dumps(exported))
    rate = _timeline_rate(document)
    tracks = document["tracks"]["children"]
    missing = []
    for record_start, path in sorted(segments, key=lambda s: s[0]):
        clip = segment_clip(path)
        target = _media_path(clip)
        for track in (t for t in tracks if t.get("kind") == "Video"):
            hit = next((i for at, i, c in _placed_clips(track, rate) if at == record_start and _media_path(c) == target), None)
            if hit is not None:
                # Resolve's own source range and name stay; the provenance comes from the sidecar.
                placed = track["children"][hit]
                placed.setdefault("metadata", {})["liveedit"] = clip["metadata"]["liveedit"]
                break
        else:
            missing.append((record_start, clip))
    if missing:
        names = {t.get("name") for t in tracks}
        name, n = TRACK_NAME, 2
        while name in names:  # an earlier round's track: keep it, add ours beside it
            name, n = f"{TRACK_NAME} {n}", n + 1
        children, cursor = [], 0
        for record_start, clip in missing:
            if record_start < cursor:
                raise ResolveScriptError(f"two edits overlap at timeline frame {record_start}; render them separately")
            if record_start > cursor:
                children.append(_gap(record_start - cursor, rate))
            children.append(clip)
            cursor = record_start + _frames(clip, rate)
        track = {
            "OTIO_SCHEMA": "Track.1", "metadata": {"Resolve_OTIO": {"Locked": False}}, "name": name,
            "source_range": None, "effects": [], "markers": [], "enabled": True, "children": children, "kind": "Video",
        }
        last_video = max((i for i, t in enumerate(tracks) if t.get("kind") == "Video"), default=-1)
        tracks.insert(last_video + 1, track)  # Resolve lists all video tracks (bottom-up) before audio
    return document


def write_json_atomically(document: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=4)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; this is an ordinary output file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
