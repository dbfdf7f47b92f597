"""Reading and changing Resolve's timeline: plain functions that take the Resolve API
objects (standard library only), so a strict fake can drive them in tests.

Traps this module works around (shared/spec/nle-integration.md §1.6):
- ``hasattr``/``getattr`` on Resolve objects fabricate callables for any name, so
  optional methods (``Timeline.GetSelectedClips``, 21.0.4+) are probed with ``dir()``.
- Track indices are 1-based; ``GetEnd()`` and ``endFrame`` are exclusive.
- ``AppendToTimeline`` never overwrites: a clip that overlaps one already on the track
  is silently dropped. We look at the target track first and never ask for an occupied
  range; afterwards we check the clip really landed.
- ``ImportMedia`` imports into the *current* media pool folder only, and returns
  nothing useful on failure.
- ``GetCurrentVideoItem`` is briefly ``None`` after an edit; we retry.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from fractions import Fraction

from .errors import ResolveScriptError
from .mapping import ItemTiming, TimelineTiming, exact, parse_rate, timecode_to_frame

LIVEEDIT_TRACK = "LiveEdit"  # our output tracks: "LiveEdit", "LiveEdit 2", ...
LIVEEDIT_BIN = "LiveEdit"
JOB_MARKER_PREFIX = "liveedit-job:"  # customData of the markers we add
_DEFAULT_MARKER_NAME = re.compile(r"^Marker \d+$")
_LIVEEDIT_TRACK_NAME = re.compile(rf"^{LIVEEDIT_TRACK}( \d+)?$")


def has_method(obj, name: str) -> bool:
    """Whether a Resolve object really offers ``name`` (``hasattr`` always says yes)."""
    try:
        return name in dir(obj)
    except Exception:  # some bridges fail dir(); then assume not
        return False


def as_list(value) -> list:
    """Resolve returns lists, or dicts keyed 1..n (older builds, Lua-style tables)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return list(value)


# -- where we are -----------------------------------------------------------------------


@dataclass
class Session:
    resolve: object
    project: object
    timeline: object
    media_pool: object
    timing: TimelineTiming


def current_session(resolve) -> Session:
    if resolve is None:
        raise ResolveScriptError("could not reach DaVinci Resolve; run this from Workspace > Scripts inside Resolve Studio")
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise ResolveScriptError("no project is open; open a project and a timeline first")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise ResolveScriptError("no timeline is open; open the timeline with the clips to edit")
    return Session(resolve, project, timeline, project.GetMediaPool(), timeline_timing(timeline))


def timeline_timing(timeline) -> TimelineTiming:
    rate = parse_rate(timeline.GetSetting("timelineFrameRate"))
    drop = str(timeline.GetSetting("timelineDropFrameTimecode")).strip().lower() in ("1", "true")
    start_timecode = timeline.GetStartTimecode() or ""
    start = timeline.GetStartFrame()
    if start is None:
        start = timecode_to_frame(start_timecode, rate, drop) if start_timecode else 0
    return TimelineTiming(rate=rate, start_frame=int(start), start_timecode=start_timecode, drop_frame=drop)


def item_timing(item, track_index: int | None = None) -> ItemTiming:
    """Everything the mapping needs from one timeline item and its media pool clip."""
    if track_index is None:
        _, track_index = item.GetTrackTypeAndIndex()
    pool_item = item.GetMediaPoolItem()
    props = {}
    if pool_item is not None:
        props = pool_item.GetClipProperty() or {}
    try:
        left = item.GetLeftOffset(True)  # subframe precision: 50 fps media on 25 can start mid-frame
    except TypeError:
        left = item.GetLeftOffset()
    frames = props.get("Frames")
    return ItemTiming(
        name=item.GetName() or "",
        track_index=int(track_index),
        start=int(item.GetStart()),
        end=int(item.GetEnd()),
        left_offset=exact(left or 0),
        media_path=props.get("File Path") or "",
        # No pool item (generators, titles): no media and no rate; source_range refuses them.
        media_rate=parse_rate(props["FPS"]) if props.get("FPS") else Fraction(1),
        media_start_timecode=props.get("Start TC") or "",
        media_first_frame=int(props.get("Start") or 0),
        media_frames=int(frames) if str(frames or "").strip().isdigit() else None,
        source_start_frame=_int_or_none(item.GetSourceStartFrame()),
        source_end_frame=_int_or_none(item.GetSourceEndFrame()),
    )


def _int_or_none(value):
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def is_liveedit_track(timeline, index: int) -> bool:
    return bool(_LIVEEDIT_TRACK_NAME.match(timeline.GetTrackName("video", index) or ""))


def video_items(timeline, *, include_liveedit: bool = False) -> list[tuple[int, object]]:
    """(track index, item) for every video item, bottom track first."""
    out = []
    for index in range(1, int(timeline.GetTrackCount("video")) + 1):
        if not include_liveedit and is_liveedit_track(timeline, index):
            continue
        for item in as_list(timeline.GetItemListInTrack("video", index)):
            out.append((index, item))
    return out


def current_frame(session: Session) -> int:
    """The playhead as an absolute timeline frame."""
    return session.timing.frame_of_timecode(session.timeline.GetCurrentTimecode())


def item_under_playhead(session: Session, retries: int = 3, wait_seconds: float = 0.3):
    """The topmost clip under the playhead (not one of ours)."""
    frame = current_frame(session)
    for attempt in range(retries):
        item = session.timeline.GetCurrentVideoItem()
        if item is not None:
            _, index = item.GetTrackTypeAndIndex()
            if not is_liveedit_track(session.timeline, index):
                return item
            break
        if attempt + 1 < retries:
            time.sleep(wait_seconds)  # briefly None after an edit
    under = [(i, it) for i, it in video_items(session.timeline) if it.GetStart() <= frame < it.GetEnd()]
    return max(under, key=lambda pair: pair[0])[1] if under else None


def selected_items(session: Session) -> list:
    """The selected video clips (21.0.4+), else the clip under the playhead."""
    timeline = session.timeline
    if has_method(timeline, "GetSelectedClips"):
        chosen = []
        for item in as_list(timeline.GetSelectedClips()):
            kind, index = item.GetTrackTypeAndIndex()
            if kind == "video" and not is_liveedit_track(timeline, index) and item.GetMediaPoolItem() is not None:
                chosen.append(item)
        if chosen:
            return sorted(chosen, key=lambda it: (it.GetStart(), it.GetTrackTypeAndIndex()[1]))
    item = item_under_playhead(session)
    return [item] if item is not None else []


def mark_in_out(session: Session) -> tuple[int, int] | None:
    """Timeline in/out as absolute frames [in, out) or None. Resolve reports them as
    offsets from the timeline start with the out point inclusive (community reading;
    unverified, docs/resolve.md)."""
    marks = session.timeline.GetMarkInOut() or {}
    video = marks.get("video") or marks.get("all") or {}
    if "in" not in video or "out" not in video:
        return None
    start = session.timing.start_frame
    return start + int(video["in"]), start + int(video["out"]) + 1


@dataclass(frozen=True)
class TimelineMarker:
    frame: int  # absolute timeline frame
    color: str
    duration: int
    name: str
    note: str
    custom_data: str

    @property
    def instruction(self) -> str:
        """The note, or a name the user typed (not Resolve's automatic "Marker 3")."""
        if self.note.strip():
            return self.note.strip()
        name = self.name.strip()
        return "" if _DEFAULT_MARKER_NAME.match(name) else name

    @property
    def ours(self) -> bool:
        return self.custom_data.startswith(JOB_MARKER_PREFIX)


def timeline_markers(session: Session, color: str | None = None) -> list[TimelineMarker]:
    """Timeline markers (frame ids are offsets from the timeline start), ours excluded."""
    found = []
    for frame_id, marker in sorted((session.timeline.GetMarkers() or {}).items()):
        found.append(TimelineMarker(
            frame=session.timing.start_frame + int(round(float(frame_id))),
            color=str(marker.get("color", "")),
            duration=max(1, int(round(float(marker.get("duration") or 1)))),
            name=str(marker.get("name") or ""),
            note=str(marker.get("note") or ""),
            custom_data=str(marker.get("customData") or ""),
        ))
    found = [m for m in found if not m.ours]
    if color:
        found = [m for m in found if m.color.lower() == color.strip().lower()]
    return found


def clips_under(session: Session, start: int, end: int) -> list[tuple[object, int, int]]:
    """Split absolute frames [start, end) by the clip that shows there (topmost video
    track wins, our own tracks ignored): (item, piece start, piece end)."""
    items = [(i, it, int(it.GetStart()), int(it.GetEnd())) for i, it in video_items(session.timeline)]
    items = [entry for entry in items if entry[2] < end and entry[3] > start]
    cuts = sorted({start, end} | {t for _, _, s, e in items for t in (s, e) if start < t < end})
    pieces: list[tuple[object, int, int]] = []
    for a, b in zip(cuts, cuts[1:]):
        over = [entry for entry in items if entry[2] <= a and entry[3] >= b]
        if not over:
            continue  # a gap
        top = max(over, key=lambda entry: entry[0])[1]
        if pieces and pieces[-1][0] is top and pieces[-1][2] == a:
            pieces[-1] = (top, pieces[-1][1], b)
        else:
            pieces.append((top, a, b))
    return pieces


# -- putting results back ---------------------------------------------------------------


def track_is_free(timeline, index: int, start: int, end: int) -> bool:
    for item in as_list(timeline.GetItemListInTrack("video", index)):
        if int(item.GetStart()) < end and int(item.GetEnd()) > start:
            return False
    return True


def free_liveedit_track(session: Session, start: int, end: int, above: int) -> tuple[int, str | None]:
    """A LiveEdit track above track ``above`` that is empty over [start, end); a new one
    on top when every LiveEdit track is occupied there. Returns (index, note for the user)."""
    timeline = session.timeline
    count = int(timeline.GetTrackCount("video"))
    ours = [i for i in range(above + 1, count + 1) if is_liveedit_track(timeline, i)]
    busy = []
    for index in ours:
        if timeline.GetIsTrackLocked("video", index):
            busy.append(f"{timeline.GetTrackName('video', index)} is locked")
            continue
        if track_is_free(timeline, index, start, end):
            note = None
            if busy:
                note = (f"{'; '.join(busy)} at {session.timing.timecode(start)}, so the edit went on "
                        f"{timeline.GetTrackName('video', index)}")
            return index, note
        busy.append(f"{timeline.GetTrackName('video', index)} is occupied")
    if not timeline.AddTrack("video"):
        raise ResolveScriptError("Resolve refused to add a video track for the edit; unlock the timeline and try again")
    index = int(timeline.GetTrackCount("video"))
    names = {timeline.GetTrackName("video", i) for i in range(1, index)}
    name = LIVEEDIT_TRACK
    n = 2
    while name in names:
        name = f"{LIVEEDIT_TRACK} {n}"
        n += 1
    timeline.SetTrackName("video", index, name)
    note = None
    if busy:
        note = f"{'; '.join(busy)} at {session.timing.timecode(start)}, so the edit went on a new track {name} (V{index})"
    return index, note


def liveedit_bin(media_pool):
    """The "LiveEdit" bin under the media pool's root (created when missing)."""
    root = media_pool.GetRootFolder()
    for folder in as_list(root.GetSubFolderList()):
        if folder.GetName() == LIVEEDIT_BIN:
            return folder
    folder = media_pool.AddSubFolder(root, LIVEEDIT_BIN)
    if folder is None:
        raise ResolveScriptError(f"could not create the {LIVEEDIT_BIN!r} bin in the media pool; is the project read-only?")
    return folder


def import_into_bin(media_pool, path: str):
    """Import one rendered file into the LiveEdit bin; the user's current bin is restored."""
    target = liveedit_bin(media_pool)
    previous = media_pool.GetCurrentFolder()
    media_pool.SetCurrentFolder(target)
    try:
        imported = as_list(media_pool.ImportMedia([path]))
    finally:
        if previous is not None:
            media_pool.SetCurrentFolder(previous)
    if not imported:
        raise ResolveScriptError(f"Resolve could not import {path}; check that the file exists and plays, "
                                 f"then import it into the {LIVEEDIT_BIN!r} bin by hand")
    return imported[0]


def place_on_track(session: Session, pool_item, first: int, end: int, track_index: int, record_frame: int):
    """Append media frames [first, end) of ``pool_item`` at absolute ``record_frame`` on
    video track ``track_index`` (video only), and check that it landed."""
    placed = as_list(session.media_pool.AppendToTimeline([{
        "mediaPoolItem": pool_item,
        "startFrame": first,
        "endFrame": end,  # exclusive
        "mediaType": 1,  # video only: the source keeps its audio
        "trackIndex": track_index,
        "recordFrame": record_frame,
    }]))
    for item in placed:
        kind, index = item.GetTrackTypeAndIndex()
        if kind == "video" and index == track_index and int(item.GetStart()) == record_frame:
            return item
    raise ResolveScriptError(
        f"Resolve did not place {pool_item.GetName()} on V{track_index} at {session.timing.timecode(record_frame)}; "
        f"it is in the {LIVEEDIT_BIN!r} bin, drag it onto a free track above the clip by hand"
    )


def add_as_take(item, pool_item, first: int, end: int) -> int:
    """Add the render as a new take of ``item`` and select it; the original stays take 1."""
    if not item.AddTake(pool_item, first, end):
        raise ResolveScriptError(f"Resolve refused to add the render as a take of {item.GetName()!r}; "
                                 f"choose 'track above' instead")
    index = int(item.GetTakesCount())
    item.SelectTakeByIndex(index)
    return index


def tag_with_marker(session: Session, record_frame: int, frames: int, job_id: str, instruction: str,
                    color: str = "Purple") -> int | None:
    """A timeline marker on the placed edit whose (hidden) custom data holds the job id.
    Resolve allows one marker per frame, so the next free frame of the edit is used when
    the first is taken (e.g. by the region's own marker). Returns the frame id or None."""
    offset = record_frame - session.timing.start_frame
    for frame_id in range(offset, offset + max(1, frames)):
        if session.timeline.AddMarker(frame_id, color, f"LiveEdit {job_id}", instruction, 1,
                                      f"{JOB_MARKER_PREFIX}{job_id}"):
            return frame_id
    return None
