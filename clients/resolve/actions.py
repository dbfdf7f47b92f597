"""The three menu actions, as plain functions over the Resolve objects and a bridge
client (standard library only). The UIManager dialogs (dialog.py) only collect the
options and show ``Report.text()``; everything here runs the same under the test fake.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import host, otio_merge
from .bridge_client import BridgeClient, describe_progress
from .errors import ResolveScriptError
from .mapping import SourceRange, source_frame_at, source_range

RANGES = ("clip", "inout", "markers")  # whole clip, timeline in/out, marked regions
PLACEMENTS = ("track", "take")  # a track above (default), or a take of the clip
FORMATS = ("prores", "h264", "png")
Progress = Callable[[str], None]


@dataclass
class EditOptions:
    instruction: str
    seed: int = 0
    range: str = "clip"
    placement: str = "track"
    handles: int = 12
    marker_color: str = "Green"
    format: str = "prores"
    output_dir: str | None = None  # default: a "LiveEdit" folder beside the clip's media

    def check(self) -> "EditOptions":
        if not self.instruction or not self.instruction.strip():
            raise ResolveScriptError("write an instruction, e.g. 'make the fur snowy white'")
        if self.range not in RANGES:
            raise ResolveScriptError(f"range {self.range!r} is not one of {', '.join(RANGES)}")
        if self.placement not in PLACEMENTS:
            raise ResolveScriptError(f"placement {self.placement!r} is not one of {', '.join(PLACEMENTS)}")
        if self.format not in FORMATS:
            raise ResolveScriptError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if int(self.handles) < 0:
            raise ResolveScriptError(f"handles must be 0 or more frames, not {self.handles}")
        if not 0 <= int(self.seed) < 2**63:
            raise ResolveScriptError(f"seed must be a whole number from 0, not {self.seed}")
        return self


@dataclass
class Placement:
    job_id: str
    region: SourceRange
    output: str
    track_index: int | None  # None for a take
    record_frame: int  # absolute timeline frame
    take_index: int | None = None
    marker_frame: int | None = None
    otio: str | None = None  # the segment's OTIO with provenance, written by the sidecar


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    otio: str | None = None

    def text(self) -> str:
        parts = self.lines + [f"Not done: {p}" for p in self.problems]
        return "\n".join(parts) or "Nothing to do."


@dataclass
class _Planned:
    region: SourceRange
    item: object  # the source timeline item
    whole_clip: bool
    instruction: str


# -- Edit selection --------------------------------------------------------------------


def edit_selection(resolve, client: BridgeClient, options: EditOptions, progress: Progress = lambda text: None,
                   *, poll_seconds: float = 0.5) -> Report:
    """Render the selected clips (or the clip under the playhead) and put the results back."""
    options.check()
    session = host.current_session(resolve)
    items = host.selected_items(session)
    if not items:
        raise ResolveScriptError("no clip is selected and none is under the playhead; select clips on the "
                                 "timeline (or park the playhead on one) and run LiveEdit again")
    report = Report()
    planned: list[_Planned] = []
    for item in items:
        try:
            planned.extend(_plan_item(session, item, options))
        except ResolveScriptError as exc:
            report.problems.append(str(exc))
    return _render_and_place(session, client, planned, options, progress, report, poll_seconds)


def _plan_item(session, item, options: EditOptions) -> list[_Planned]:
    timing = host.item_timing(item)
    spans = [(timing.start, timing.end)]
    if options.range == "inout":
        marks = host.mark_in_out(session)
        if marks is None:
            raise ResolveScriptError("the timeline has no in and out points; set them (I and O) or choose 'whole clip'")
        spans = [(max(timing.start, marks[0]), min(timing.end, marks[1]))]
        if spans[0][1] <= spans[0][0]:
            raise ResolveScriptError(f"clip {timing.name!r} is outside the timeline's in/out range")
    elif options.range == "markers":
        spans = []
        for marker in host.timeline_markers(session, options.marker_color):
            if marker.duration <= 1 and timing.start <= marker.frame < timing.end:
                spans.append((timing.start, timing.end))  # a point marker means the whole clip
            elif marker.duration > 1:
                a, b = max(timing.start, marker.frame), min(timing.end, marker.frame + marker.duration)
                if a < b:
                    spans.append((a, b))
        if not spans:
            raise ResolveScriptError(f"clip {timing.name!r} has no {options.marker_color} markers over it")
    return [
        _Planned(source_range(session.timing, timing, a, b), item, (a, b) == (timing.start, timing.end),
                 options.instruction.strip())
        for a, b in sorted(set(spans))
    ]


# -- Render marked regions ---------------------------------------------------------------


def render_marked_regions(resolve, client: BridgeClient, color: str, options: EditOptions | None = None,
                          progress: Progress = lambda text: None, *, poll_seconds: float = 0.5) -> Report:
    """Every timeline marker of ``color`` is a region (a point marker: the clip under it);
    its note (or name) is the instruction. Renders them, places the edits on a LiveEdit
    track, exports the timeline as OTIO and writes ours with the edits and provenance."""
    options = options or EditOptions(instruction="(from markers)")
    options.placement = "track"
    session = host.current_session(resolve)
    markers = host.timeline_markers(session, color)
    if not markers:
        raise ResolveScriptError(f"the timeline has no {color} markers; add markers of that colour over the "
                                 f"frames to edit, with the instruction in the marker's note")
    report = Report()
    planned: list[_Planned] = []
    for marker in markers:
        where = f"{color} marker at {session.timing.timecode(marker.frame)}"
        if not marker.instruction:
            report.problems.append(f"{where} has no instruction; write the edit you want in the marker's note")
            continue
        start, end = marker.frame, marker.frame + marker.duration
        pieces = host.clips_under(session, start, end)
        if marker.duration <= 1:  # a point marker marks the whole clip it sits on
            pieces = [(item, int(item.GetStart()), int(item.GetEnd())) for item, _, _ in pieces]
        if not pieces:
            report.problems.append(f"{where} is over no video clip; move it onto the clip to edit")
            continue
        for item, a, b in pieces:
            try:
                timing = host.item_timing(item)
                whole = (a, b) == (timing.start, timing.end)
                planned.append(_Planned(source_range(session.timing, timing, a, b), item, whole, marker.instruction))
            except ResolveScriptError as exc:
                report.problems.append(f"{where}: {exc}")
    _render_and_place(session, client, planned, options, progress, report, poll_seconds)
    if report.placements:
        _write_otio(session, report)
    return report


def _write_otio(session, report: Report) -> None:
    """Resolve's own OTIO export, and ours beside it with the edits and their provenance."""
    folder = Path(report.placements[0].output).parent
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", session.timeline.GetName() or "timeline").strip("._") or "timeline"
    exported = folder / f"{name}.resolve.otio"
    if not session.timeline.Export(str(exported), session.resolve.EXPORT_OTIO, session.resolve.EXPORT_NONE) \
            or not exported.is_file():
        report.problems.append(f"Resolve did not export the timeline to {exported}; the edits are placed, "
                               f"but no OTIO was written")
        return
    try:
        document = json.loads(exported.read_text(encoding="utf-8"))
        segments = [(p.region.record_start, p.otio) for p in report.placements if p.otio]
        merged = otio_merge.with_edits(document, segments)
        path = otio_merge.write_json_atomically(merged, folder / f"{name}.liveedit.otio")
    except (ValueError, ResolveScriptError) as exc:
        report.problems.append(f"our OTIO was not written: {exc}")
        return
    report.otio = str(path)
    report.lines.append(f"Timeline with the edits and their provenance: {path}")


# -- render, wait, place ----------------------------------------------------------------------


def _output_dir(options: EditOptions, region: SourceRange) -> str:
    return os.path.abspath(options.output_dir or os.path.join(os.path.dirname(region.media_path), "LiveEdit"))


def _render_and_place(session, client: BridgeClient, planned: list[_Planned], options: EditOptions,
                      progress: Progress, report: Report, poll_seconds: float) -> Report:
    if not planned:
        if not report.problems:
            report.problems.append("nothing to render")
        return report
    regions = []
    for p in planned:
        r = p.region
        regions.append({
            "media": os.path.abspath(r.media_path), "first_frame": r.first_frame, "frame_count": r.frame_count,
            "instruction": p.instruction, "seed": int(options.seed), "handles": int(options.handles),
            "record_start": {"frame": r.record_start, "rate": [r.timeline_rate.numerator, r.timeline_rate.denominator]},
        })
    label = f"Resolve: {session.timeline.GetName() or 'timeline'}"
    job = client.submit({"regions": regions, "output_dir": _output_dir(options, planned[0].region),
                         "format": options.format, "label": label[:200]})
    names = [f"{p.region.clip_name} at {p.region.record_timecode}" for p in planned]
    progress(f"LiveEdit job {job['id']} queued ({len(planned)} region{'s' if len(planned) != 1 else ''})")
    job = client.wait(job["id"], lambda j: progress(describe_progress(j, names)), poll_seconds=poll_seconds)
    info_random = False
    try:
        info_random = bool(client.info().get("random_weights"))
    except ResolveScriptError:
        pass
    for p, status in zip(planned, job["regions"]):
        if status["state"] != "done" or not status.get("output"):
            report.problems.append(f"{p.region.clip_name} at {p.region.record_timecode}: "
                                   f"{status.get('error') or status['state']}")
            continue
        try:
            placement = _place(session, job["id"], p, status, options, report)
        except ResolveScriptError as exc:
            report.problems.append(f"{p.region.clip_name} at {p.region.record_timecode}: {exc}")
            continue
        placement.otio = status.get("otio")
        report.placements.append(placement)
    if info_random:
        report.lines.append("WARNING: the sidecar runs a model with RANDOM weights: the edits are noise, not real edits")
    return report


def _place(session, job_id: str, p: _Planned, status: dict, options: EditOptions, report: Report) -> Placement:
    r = p.region
    head = min(int(options.handles), r.first_frame)  # the sidecar clamps handles to the media start
    first, end = head, head + r.frame_count
    pool_item = host.import_into_bin(session.media_pool, status["output"])
    record = session.timing.start_frame + r.record_start
    where = f"{r.clip_name} at {r.record_timecode}"
    placement = Placement(job_id, r, status["output"], None, record)
    if options.placement == "take":
        if p.whole_clip:
            placement.take_index = host.add_as_take(p.item, pool_item, first, end)
            report.lines.append(f"{where}: added as take {placement.take_index} (the original is take 1)")
        else:
            report.lines.append(f"{where}: a take must cover the whole clip, so this part went on a track above")
    if placement.take_index is None:
        index, note = host.free_liveedit_track(session, record, record + r.record_frames, r.track_index)
        host.place_on_track(session, pool_item, first, end, index, record)
        placement.track_index = index
        report.lines.append(f"{where}: placed on V{index} ({session.timeline.GetTrackName('video', index)})")
        if note:
            report.lines.append(f"  note: {note}")
    placement.marker_frame = host.tag_with_marker(session, record, r.record_frames, job_id, p.instruction)
    if placement.marker_frame is None:
        report.problems.append(f"{where}: no free frame for the job marker (job {job_id})")
    return placement


# -- Live preview -----------------------------------------------------------------------------


def preview_command(liveedit_command: list[str], region: SourceRange, instruction: str, seed: int) -> list[str]:
    """`liveedit preview` on the clip's source range, steered through its standard input
    (`--follow -`: one JSON request per line, applied as it arrives)."""
    return [*liveedit_command, "preview", region.media_path,
            "--start", str(region.first_frame), "--frames", str(region.frame_count),
            "-p", instruction, "--seed", str(int(seed)), "--follow", "-"]


def send_follow_request(pipe, request: dict) -> bool:
    """Hand one request to the window now: a line on its standard input, flushed. False when
    the window has gone (closed pipe)."""
    try:
        pipe.write((json.dumps(request) + "\n").encode("utf-8"))
        pipe.flush()
    except (BrokenPipeError, ValueError, OSError):
        return False
    return True


def _launch_window(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdin=subprocess.PIPE)


def live_preview(resolve, liveedit_command: list[str], instruction: str, seed: int = 0, *,
                 launch: Callable[[list[str]], subprocess.Popen] | None = None,
                 poll_seconds: float = 0.1, should_stop: Callable[[], bool] = lambda: False,
                 sleep: Callable[[float], None] = time.sleep) -> list[int]:
    """Open the preview window on the clip under the playhead and move it to the source
    frame under the playhead whenever that changes. Resolve has no playhead event, so we poll
    ``GetCurrentTimecode``; each change goes to the window at once as a line on its standard
    input (``--follow -``), so it follows within the poll interval. Ends when the window
    closes or ``should_stop()``. Returns the frames sent."""
    if not instruction or not instruction.strip():
        raise ResolveScriptError("write an instruction for the preview, e.g. 'make the fur snowy white'")
    session = host.current_session(resolve)
    item = host.item_under_playhead(session)
    if item is None:
        raise ResolveScriptError("no clip is under the playhead; park it on the clip to preview")
    timing = host.item_timing(item)
    region = source_range(session.timing, timing)
    request = {"media": region.media_path, "start": region.first_frame, "frames": region.frame_count,
               "instruction": instruction.strip(), "seed": int(seed), "frame": region.first_frame}
    process = (launch or _launch_window)(preview_command(liveedit_command, region, instruction.strip(), seed))
    sent: list[int] = []
    try:
        while process.poll() is None and not should_stop():
            frame = host.current_frame(session)
            if timing.start <= frame < timing.end:  # off the clip: the window keeps its last frame
                source = source_frame_at(session.timing, timing, frame)
                if not sent or sent[-1] != source:
                    if not send_follow_request(process.stdin, {**request, "frame": source}):
                        break  # the window closed
                    sent.append(source)
            sleep(poll_seconds)
    finally:
        try:
            process.stdin.close()  # the window stops following; it stays open
        except (OSError, ValueError):
            pass
    return sent
