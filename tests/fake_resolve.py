"""A strict fake of DaVinci Resolve's scripting objects, for tests only (fake-host tests).

Strict: an attribute the fake does not define raises AttributeError (the real bridge
would hand back a fabricated callable returning None, which hides typos). Every public
method's name and parameter names are checked against the `fusionscript-stubs` package
(`contract_problems`), with the few newer calls listed in NEWER_THAN_STUBS.

Documented behaviours it reproduces (shared/spec/nle-integration.md §1.6, the
davinci-resolve-mcp limitations ledger): 1-based track indices; `GetEnd()` and
`AppendToTimeline`'s `endFrame` exclusive; `AppendToTimeline` silently dropping a clip
that overlaps one already on the track (the earlier clip wins); `ImportMedia` returning
None when nothing could be imported; `ImportMedia` importing into the current folder;
one timeline marker per frame; `Timeline.GetSelectedClips` only on 21.0.4 and later.
Not reproduced: anything about rendering, grading, Fusion, audio.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Callable

MARKER_COLORS = ("Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky",
                 "Mint", "Lemon", "Sand", "Cocoa", "Cream")
# Calls newer than fusionscript-stubs 21.0.0 (README of 8 May 2026): name -> parameter names.
NEWER_THAN_STUBS = {"Timeline": {"GetSelectedClips": ()}}  # 21.0.4+ (nle-integration.md §0, §1.6)


def _rate_text(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def _tc(frame: int, rate: Fraction, drop: bool = False) -> str:
    from liveedit.clients.resolve.mapping import frame_to_timecode

    return frame_to_timecode(frame, rate, drop)


class Strict:
    """Unknown attributes raise, naming the object, instead of being fabricated."""

    def __getattr__(self, name):
        raise AttributeError(f"fake Resolve {type(self).__name__} has no {name!r} (not in the scripting API)")


# -- media pool ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaFacts:
    """What Resolve's clip properties say about a file."""

    rate: Fraction
    start_timecode: str  # "01:00:00:00"; "00:00:00:00" for files without timecode
    frames: int
    first_frame: int = 0  # a subclip's first frame within the file


class FakeMediaPoolItem(Strict):
    def __init__(self, path: str, facts: MediaFacts, name: str | None = None):
        self._path, self._facts = path, facts
        self._name = name or Path(path).name
        self._id = f"mpi-{id(self):x}"

    def GetName(self):
        return self._name

    def GetUniqueId(self):
        return self._id

    def GetClipProperty(self, propertyName=None):
        f = self._facts
        props = {"File Path": self._path, "FPS": _rate_text(f.rate), "Start TC": f.start_timecode,
                 "Frames": str(f.frames), "Start": str(f.first_frame), "Clip Name": self._name, "Type": "Video"}
        return props if propertyName is None else props.get(propertyName, "")


class FakeFolder(Strict):
    def __init__(self, name: str):
        self._name, self._subfolders, self._clips = name, [], []
        self._id = f"folder-{id(self):x}"

    def GetName(self):
        return self._name

    def GetUniqueId(self):
        return self._id

    def GetSubFolderList(self):
        return list(self._subfolders)

    def GetClipList(self):
        return list(self._clips)


class FakeMediaPool(Strict):
    def __init__(self, project: "FakeProject", probe: Callable[[str], MediaFacts] | None):
        self._project, self._probe = project, probe
        self._root = FakeFolder("Master")
        self._current = self._root
        self.append_calls: list[dict] = []  # every clipInfo asked for, in order
        self.dropped: list[dict] = []  # clipInfos Resolve silently did not place

    def GetRootFolder(self):
        return self._root

    def AddSubFolder(self, folder, name):
        sub = FakeFolder(name)
        folder._subfolders.append(sub)
        return sub

    def GetCurrentFolder(self):
        return self._current

    def SetCurrentFolder(self, folder):
        self._current = folder
        return True

    def ImportMedia(self, items):
        imported = []
        for path in items:
            if not isinstance(path, str) or not Path(path).is_file() or self._probe is None:
                continue
            try:
                facts = self._probe(path)
            except Exception:
                continue  # unreadable media: not imported
            clip = FakeMediaPoolItem(path, facts)
            self._current._clips.append(clip)
            imported.append(clip)
        return imported or None  # None when nothing was imported (documented behaviour)

    def AppendToTimeline(self, clipInfo):
        timeline = self._project._current_timeline
        placed = []
        for info in clipInfo:
            self.append_calls.append(dict(info))
            unknown = set(info) - {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"}
            if unknown:
                raise TypeError(f"unknown clipInfo keys {sorted(unknown)}")
            item = timeline._append(info)
            if item is None:
                self.dropped.append(dict(info))
            else:
                placed.append(item)
        return placed


# -- timeline -------------------------------------------------------------------------------


class FakeTimelineItem(Strict):
    def __init__(self, timeline: "FakeTimeline", pool_item: FakeMediaPoolItem | None, track_index: int,
                 start: int, duration: int, left_offset: Fraction, name: str | None = None,
                 speed: Fraction = Fraction(1)):
        self._timeline, self._pool_item, self._track = timeline, pool_item, track_index
        self._start, self._duration, self._left = int(start), int(duration), Fraction(left_offset)
        self._name = name or (pool_item.GetName() if pool_item else "Solid Color")
        self._speed = speed  # what a retime in the UI would set; not readable through the API
        self._takes: list[dict] = []
        self._selected_take = 0
        self._color = ""
        self._id = f"item-{id(self):x}"

    def GetName(self):
        return self._name

    def GetUniqueId(self):
        return self._id

    def GetStart(self, subframe_precision=False):
        return self._start

    def GetEnd(self, subframe_precision=False):
        return self._start + self._duration  # exclusive

    def GetDuration(self, subframe_precision=False):
        return self._duration

    def GetLeftOffset(self, subframe_precision=False):
        return float(self._left) if subframe_precision else math.floor(self._left)

    def _ratio(self) -> Fraction:
        facts = self._pool_item._facts
        return facts.rate / self._timeline._rate

    def GetSourceStartFrame(self):
        if self._pool_item is None:
            return 0
        return self._pool_item._facts.first_frame + math.floor(self._left * self._ratio())

    def GetSourceEndFrame(self):
        if self._pool_item is None:
            return 0
        return self.GetSourceStartFrame() + round(self._duration * self._ratio() * self._speed)

    def GetMediaPoolItem(self):
        return self._pool_item

    def GetTrackTypeAndIndex(self):
        return ["video", self._track]

    def GetClipColor(self):
        return self._color

    def SetClipColor(self, colorName):
        self._color = colorName
        return True

    def AddTake(self, mediaPoolItem, startFrame=None, endFrame=None):
        if not self._takes:
            self._takes.append({"mediaPoolItem": self._pool_item, "startFrame": 0, "endFrame": 0})
        self._takes.append({"mediaPoolItem": mediaPoolItem, "startFrame": startFrame, "endFrame": endFrame})
        return True

    def GetTakesCount(self):
        return len(self._takes)

    def GetTakeByIndex(self, idx):
        return dict(self._takes[idx - 1]) if 1 <= idx <= len(self._takes) else None

    def SelectTakeByIndex(self, idx):
        if not 1 <= idx <= len(self._takes):
            return False
        self._selected_take = idx
        return True

    def GetSelectedTakeIndex(self):
        return self._selected_take


@dataclass
class _Track:
    name: str
    items: list = field(default_factory=list)
    locked: bool = False


class FakeTimeline(Strict):
    def __init__(self, project: "FakeProject", name: str, rate: Fraction, start_timecode: str = "01:00:00:00",
                 drop_frame: bool = False, version: tuple = (21, 0, 4)):
        from liveedit.clients.resolve.mapping import timecode_to_frame

        self._project, self._name, self._rate, self._drop = project, name, Fraction(rate), drop_frame
        self._start_tc = start_timecode
        self._start = timecode_to_frame(start_timecode, self._rate, drop_frame)
        self._tracks: list[_Track] = [_Track("Video 1")]
        self._markers: dict[float, dict] = {}
        self._mark_in_out: dict = {}
        self._playhead = self._start
        self._selection: list = []
        self._selection_api = tuple(version) >= (21, 0, 4)
        self._id = f"timeline-{id(self):x}"

    # 21.0.4 added GetSelectedClips; older builds lack it (and dir() shows that).
    def __dir__(self):
        names = super().__dir__()
        return [n for n in names if n != "GetSelectedClips" or self._selection_api]

    def __getattribute__(self, name):
        if name == "GetSelectedClips" and not object.__getattribute__(self, "_selection_api"):
            raise AttributeError("Timeline.GetSelectedClips needs Resolve 21.0.4 or later")
        return object.__getattribute__(self, name)

    # -- test set-up (not API) --
    def _add_track(self, name: str | None = None, locked: bool = False) -> int:
        self._tracks.append(_Track(name or f"Video {len(self._tracks) + 1}", locked=locked))
        return len(self._tracks)

    def _add_clip(self, track: int, pool_item, record_offset: int, duration: int, left_offset=0, *,
                  speed=Fraction(1), name=None) -> FakeTimelineItem:
        item = FakeTimelineItem(self, pool_item, track, self._start + record_offset, duration, Fraction(left_offset),
                                name=name, speed=Fraction(speed))
        self._tracks[track - 1].items.append(item)
        return item

    def _set_playhead(self, offset: int) -> None:
        self._playhead = self._start + offset

    def _append(self, info: dict):
        pool_item, index = info["mediaPoolItem"], int(info["trackIndex"])
        if not 1 <= index <= len(self._tracks):
            return None  # 1-based; index 0 or past the top: nothing placed
        first, end = int(info["startFrame"]), int(info["endFrame"])  # end exclusive
        ratio = pool_item._facts.rate / self._rate
        duration = round((end - first) / ratio)
        record = int(info.get("recordFrame", self._start))
        for other in self._tracks[index - 1].items:
            if other.GetStart() < record + duration and other.GetEnd() > record:
                return None  # overlap: the earlier clip wins, the new one is silently dropped
        item = FakeTimelineItem(self, pool_item, index, record, duration, Fraction(first) / ratio)
        self._tracks[index - 1].items.append(item)
        return item

    # -- API --
    def GetName(self):
        return self._name

    def GetUniqueId(self):
        return self._id

    def GetStartFrame(self):
        return self._start

    def GetEndFrame(self):
        return max([self._start] + [i.GetEnd() for t in self._tracks for i in t.items])

    def GetStartTimecode(self):
        return self._start_tc

    def GetSetting(self, settingName):
        settings = {"timelineFrameRate": _rate_text(self._rate), "timelineDropFrameTimecode": "1" if self._drop else "0"}
        return settings.get(settingName, "")

    def GetTrackCount(self, trackType):
        return len(self._tracks) if trackType == "video" else 0

    def GetItemListInTrack(self, trackType, index):
        if trackType != "video" or not 1 <= index <= len(self._tracks):
            return None
        return sorted(self._tracks[index - 1].items, key=lambda i: i.GetStart())

    def GetTrackName(self, trackType, trackIndex):
        return self._tracks[trackIndex - 1].name if trackType == "video" and 1 <= trackIndex <= len(self._tracks) else ""

    def SetTrackName(self, trackType, trackIndex, name):
        if trackType != "video" or not 1 <= trackIndex <= len(self._tracks):
            return False
        self._tracks[trackIndex - 1].name = name
        return True

    def GetIsTrackLocked(self, trackType, trackIndex):
        return trackType == "video" and self._tracks[trackIndex - 1].locked

    def AddTrack(self, trackType, subTrackType=None):
        if trackType != "video":
            return False
        self._add_track()
        return True

    def AddMarker(self, frameId, color, name, note, duration, customData=None):
        if frameId in self._markers or color not in MARKER_COLORS or duration < 1:
            return False  # one marker per frame
        self._markers[float(frameId)] = {"color": color, "duration": duration, "note": note, "name": name,
                                         "customData": customData or ""}
        return True

    def GetMarkers(self):
        return {k: dict(v) for k, v in self._markers.items()}

    def GetMarkInOut(self):
        return dict(self._mark_in_out)

    def GetCurrentTimecode(self):
        return _tc(self._playhead, self._rate, self._drop)

    def GetCurrentVideoItem(self):
        under = [i for t in self._tracks for i in t.items if i.GetStart() <= self._playhead < i.GetEnd()]
        return max(under, key=lambda i: i._track) if under else None

    def GetSelectedClips(self):
        return list(self._selection)

    def Export(self, fileName, exportType, exportSubtype):
        if exportType != FakeResolve.EXPORT_OTIO:
            return False
        from liveedit.sidecar.timeline import writeback

        writeback.write_otio(self._to_otio(), fileName)
        return True

    def _to_otio(self):
        """What Resolve's OTIO export of this timeline would hold (nle-exports.md §1)."""
        import opentimelineio as otio

        from liveedit.clients.resolve.mapping import timecode_to_frame
        from liveedit.sidecar.timeline import writeback

        rate = float(self._rate)
        timeline = otio.schema.Timeline(name="", global_start_time=otio.opentime.RationalTime(self._start, rate))
        for t in self._tracks:
            track = otio.schema.Track(name=t.name, kind=otio.schema.TrackKind.Video)
            cursor = self._start
            for item in sorted(t.items, key=lambda i: i.GetStart()):
                if item.GetStart() > cursor:
                    track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                        duration=otio.opentime.RationalTime(item.GetStart() - cursor, rate))))
                facts = item._pool_item._facts
                origin = timecode_to_frame(facts.start_timecode, facts.rate) - facts.first_frame
                ref = otio.schema.ExternalReference(
                    target_url=item._pool_item._path,
                    available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(origin, float(facts.rate)),
                                                            otio.opentime.RationalTime(facts.frames, float(facts.rate))))
                start = Fraction(origin + facts.first_frame) / facts.rate * self._rate + item._left
                track.append(otio.schema.Clip(name=item.GetName(), media_reference=ref, source_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(float(start), rate), otio.opentime.RationalTime(item.GetDuration(), rate))))
                cursor = item.GetEnd()
            timeline.tracks.append(track)
        writeback.resolve_shape(timeline)  # Resolve_OTIO metadata, as Resolve writes it
        return timeline


# -- project and the root object ----------------------------------------------------------------


class FakeProject(Strict):
    def __init__(self, name: str, probe):
        self._name = name
        self._media_pool = FakeMediaPool(self, probe)
        self._timelines: list[FakeTimeline] = []
        self._current_timeline: FakeTimeline | None = None

    def GetName(self):
        return self._name

    def GetMediaPool(self):
        return self._media_pool

    def GetCurrentTimeline(self):
        return self._current_timeline

    def GetTimelineCount(self):
        return len(self._timelines)

    def GetTimelineByIndex(self, idx):
        return self._timelines[idx - 1] if 1 <= idx <= len(self._timelines) else None


class FakeProjectManager(Strict):
    def __init__(self, project):
        self._project = project

    def GetCurrentProject(self):
        return self._project

    def SaveProject(self):
        return self._project is not None


class FakeResolve(Strict):
    EXPORT_OTIO = 14
    EXPORT_NONE = 0
    EXPORT_EDL = 2

    def __init__(self, *, probe: Callable[[str], MediaFacts] | None = None, product: str = "DaVinci Resolve Studio",
                 version: tuple = (21, 0, 4, 5)):
        self._product, self._version = product, tuple(version)
        self._project = FakeProject("Test project", probe)
        self._manager = FakeProjectManager(self._project)

    def GetProjectManager(self):
        return self._manager

    def GetProductName(self):
        return self._product

    def GetVersion(self):
        return list(self._version) + [""]

    def GetVersionString(self):
        return ".".join(str(v) for v in self._version)

    # -- test set-up --
    def _new_timeline(self, name="Timeline 1", rate=Fraction(24), start_timecode="01:00:00:00",
                      drop_frame=False) -> FakeTimeline:
        timeline = FakeTimeline(self._project, name, rate, start_timecode, drop_frame, version=self._version[:3])
        self._project._timelines.append(timeline)
        self._project._current_timeline = timeline
        return timeline

    def _media(self, path: str, facts: MediaFacts, name: str | None = None) -> FakeMediaPoolItem:
        clip = FakeMediaPoolItem(str(path), facts, name)
        self._project._media_pool._root._clips.append(clip)
        return clip


# -- the contract check against fusionscript-stubs -------------------------------------------

FAKE_TO_STUB = {
    FakeResolve: "Resolve", FakeProjectManager: "ProjectManager", FakeProject: "Project", FakeMediaPool: "MediaPool",
    FakeFolder: "Folder", FakeMediaPoolItem: "MediaPoolItem", FakeTimeline: "Timeline",
    FakeTimelineItem: "TimelineItem",
}


def stub_file() -> Path:
    dist = metadata.distribution("fusionscript-stubs")
    return Path(dist.locate_file("fusionscript-stubs/fusionscript.pyi"))


def stub_signatures(path: Path | None = None) -> dict[str, dict[str, list[tuple[str, ...]]]]:
    """Class -> method -> parameter-name lists (one per overload), and constants, from the stubs."""
    tree = ast.parse((path or stub_file()).read_text(encoding="utf-8"))
    out: dict[str, dict[str, list[tuple[str, ...]]]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods: dict[str, list[tuple[str, ...]]] = {}
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    names = tuple(a.arg for a in member.args.args[1:])
                    methods.setdefault(member.name, []).append(names)
                elif isinstance(member, ast.AnnAssign) and isinstance(member.target, ast.Name):
                    methods.setdefault(member.target.id, []).append(("<constant>",))
                elif isinstance(member, ast.Assign):
                    for target in member.targets:
                        if isinstance(target, ast.Name):
                            methods.setdefault(target.id, []).append(("<constant>",))
            out[node.name] = methods
    return out


def contract_problems(path: Path | None = None) -> list[str]:
    """Every public method (and constant) of the fake that the stubs do not document with
    the same parameter names."""
    import inspect

    stubs = stub_signatures(path)
    problems = []
    for fake, stub_name in FAKE_TO_STUB.items():
        documented = dict(stubs[stub_name])
        for name, params in NEWER_THAN_STUBS.get(stub_name, {}).items():
            documented.setdefault(name, []).append(tuple(params))
        for name, member in vars(fake).items():
            if name.startswith("_"):
                continue
            if name not in documented:
                problems.append(f"{stub_name}.{name} is not in the scripting API")
                continue
            if not callable(member):
                if ("<constant>",) not in documented[name]:
                    problems.append(f"{stub_name}.{name} is a method in the API, a constant in the fake")
                continue
            params = tuple(p for p in inspect.signature(member).parameters if p != "self")
            if params not in documented[name]:
                problems.append(f"{stub_name}.{name}{params} matches no documented signature {documented[name]}")
    return problems
