"""The preview window's logic without widgets: what is open, where the playhead is, which
edits are known, what the statistics say. The window only draws what this class signals and
forwards what the user does, so all of it is testable without pixels.

Playback policy (the model may be slower than real time): while scrubbing, every new position
asks for its edit and the newest request wins; while playing, a running request is allowed to
finish (so edits keep appearing) and the next one asks for wherever the playhead is by then.
Until the playhead's own edit arrives the edit pane shows the newest edit received, labelled
with its frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.ui.sidecar_link import JOB_STATE_NAMES, EditedFrame, SeekDone, SessionRequest, SidecarLink
from liveedit.ui.source_frames import FrameCache, OpenedMedia, SourceFrames

RANDOM_WEIGHTS_LABEL = "RANDOM WEIGHTS — not a real edit"
DEFAULT_INSTRUCTION = "make it look like a snowy winter day"
DEFAULT_MAX_HEIGHT = 540  # preview pictures: enough for a pane, cheap to edit
SHUTTLE_MAX = 8
INFO_REFRESH_MS = 2000


def shuttle(speed: int, key: str) -> int:
    """J/K/L as editors expect: K stops; L plays forward, each further L doubles the speed
    (up to 8x); J the same backwards; pressing against the direction of play starts 1x the
    other way."""
    key = key.lower()
    if key == "k":
        return 0
    direction = 1 if key == "l" else -1
    if speed * direction <= 0:
        return direction
    return direction * min(abs(speed) * 2, SHUTTLE_MAX)


def merge_ranges(frames: list[int]) -> list[tuple[int, int]]:
    """Sorted frame numbers → [(first, end)] runs of consecutive frames."""
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and runs[-1][1] == f:
            runs[-1] = (runs[-1][0], f + 1)
        else:
            runs.append((f, f + 1))
    return runs


def chunk_of(frame: int, region_first: int, segment_frames: int, first_chunk: int = 9,
             chunk: int = 12) -> tuple[int, int]:
    """(first, end) of the chunk the sidecar edits for a seek to `frame` (sidecar/preview.py:
    segments of `segment_frames` from the region start, each a 9-frame chunk then 12s)."""
    offset = frame - region_first
    segment_start = region_first + offset // segment_frames * segment_frames
    inside = frame - segment_start
    if inside < first_chunk:
        return segment_start, segment_start + first_chunk
    first = segment_start + first_chunk + (inside - first_chunk) // chunk * chunk
    return first, first + chunk


@dataclass(frozen=True)
class Statistics:
    edit_fps: float | None = None  # frames per second the model delivered in the last edit
    latency_seconds: float | None = None  # request → the asked-for frame's edit
    cached: bool = False  # that frame came from the sidecar's cache
    gpu_memory: str = "—"
    model: str = "—"
    random_weights: bool = False


@dataclass(frozen=True)
class RenderStatus:
    job_id: str
    state: str  # queued, running, done, failed, cancelled
    frames_done: int
    frame_count: int
    outputs: tuple[str, ...] = ()
    error: str = ""

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


def gpu_memory_text(info) -> str:
    if not info.gpu_memory_total_bytes:
        return f"no GPU ({info.device or 'cpu'})"
    used = info.gpu_memory_total_bytes - info.gpu_memory_free_bytes
    return f"{used / 2**30:.1f} of {info.gpu_memory_total_bytes / 2**30:.1f} GiB used"


class PreviewController(QObject):
    media_opened = Signal(object)  # OpenedMedia
    region_changed = Signal(int, int)  # first frame, frame count
    position_changed = Signal(int, str)  # frame, its timecode
    source_changed = Signal(int, object)  # frame, image
    edited_changed = Signal(int, object)  # frame the image is the edit of, image
    edited_ranges_changed = Signal(object)  # [(first, end)] frames with a known edit
    speed_changed = Signal(int)  # 0 stopped, ±1..8
    stats_changed = Signal(object)  # Statistics
    session_changed = Signal(str, int)  # instruction, seed of the preview now running
    render_changed = Signal(object)  # RenderStatus
    message = Signal(str, str)  # level ("info" or "error"), text
    status = Signal(str)  # connection status for the status bar

    def __init__(self, link: SidecarLink, source: SourceFrames, *, max_height: int = DEFAULT_MAX_HEIGHT,
                 output_dir: Path | None = None, output_format: str = "prores",
                 parent: QObject | None = None):
        super().__init__(parent)
        self.link, self.source = link, source
        self.max_height = max_height
        self.output_dir = output_dir
        self.output_format = output_format
        self.media: OpenedMedia | None = None
        self.region = (0, 0)
        self.frame = 0
        self.instruction = DEFAULT_INSTRUCTION
        self.seed = 0
        self.speed = 0
        self.session = None  # liveedit.v1.PreviewSession of the current generation
        self.generation = 0
        self.edits = FrameCache()
        self.shown_edit: int | None = None
        self.stats = Statistics()
        self.render: RenderStatus | None = None
        self._pending_seek: tuple[int, tuple[int, int]] | None = None  # request id, frames it covers
        self._wanted_region: tuple[int, int] = (0, 0)
        self._wanted_frame: int | None = None
        self._chunking = (9, 12)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._info_timer = QTimer(self)
        self._info_timer.setInterval(INFO_REFRESH_MS)
        self._info_timer.timeout.connect(link.refresh_info)

        link.status.connect(self.status)
        link.connected.connect(self._on_connected)
        link.info.connect(self._on_info)
        link.session_opened.connect(self._on_session)
        link.edited_frame.connect(self._on_edited)
        link.seek_done.connect(self._on_seek_done)
        link.job_changed.connect(self._on_job)
        link.error.connect(self._on_link_error)
        source.opened.connect(self._on_media)
        source.frame_ready.connect(self._on_source_frame)
        source.error.connect(self._on_source_error)

    # -- opening ---------------------------------------------------------------------
    def start(self) -> None:
        self.link.connect_sidecar()

    def open_media(self, path: str | Path, *, start: int = 0, frames: int = 0, instruction: str | None = None,
                   seed: int | None = None, frame: int | None = None) -> None:
        """Opens a clip (region: `frames` frames from `start`, 0 = to the end) and previews it."""
        path = Path(path).expanduser().absolute()
        if instruction is not None:
            self.instruction = instruction
        if seed is not None:
            self.seed = seed
        self.stop()
        self.media, self.session = None, None
        self._wanted_region = (start, frames)
        self._wanted_frame = frame
        self.source.open(path)  # probing happens off the GUI thread → _on_media

    def _on_media(self, media: OpenedMedia) -> None:
        info = media.info
        start, frames = self._wanted_region
        if not 0 <= start < info.frame_count:
            self.message.emit("error", f"--start {start} is outside {info.path.name}, which has frames "
                                       f"0..{info.frame_count - 1}; the whole clip is shown instead")
            start, frames = 0, 0
        count = info.frame_count - start if frames <= 0 else min(frames, info.frame_count - start)
        self.media = media
        self.region = (start, count)
        self.media_opened.emit(media)
        self.region_changed.emit(start, count)
        wanted = self._wanted_frame if self._wanted_frame is not None else start
        self.frame = min(max(wanted, start), start + count - 1)
        self._restart_preview()

    def _restart_preview(self) -> None:
        """A new preview session for the current media, region, instruction and seed."""
        if self.media is None:
            return
        first, count = self.region
        self.session = None
        self.edits.clear()
        self.shown_edit = None
        self._pending_seek = None
        self.edited_ranges_changed.emit([])
        self.generation = self.link.open_session(SessionRequest(
            self.media.info.path, self.instruction, self.seed, first, count, self.max_height))
        self.session_changed.emit(self.instruction, self.seed)
        self.seek(self.frame)

    def set_instruction(self, text: str) -> None:
        if text != self.instruction:
            self.instruction = text
            self._restart_preview()

    def set_seed(self, seed: int) -> None:
        if seed != self.seed:
            self.seed = seed
            self._restart_preview()

    def apply(self, request: dict) -> None:
        """A request from a client (--follow): media, start, frames, instruction, seed, frame."""
        media = request.get("media")
        if media is None and self.media is None:
            self.message.emit("error", "The request names no media and none is open; send \"media\": path")
            return
        same_media = (media is None or (self.media is not None
                                        and Path(media).absolute() == self.media.info.path.absolute()))
        region = (int(request.get("start", self.region[0])), int(request.get("frames", self.region[1])))
        if not same_media or (self.media is not None and region != self.region):
            self.open_media(media or self.media.info.path, start=region[0], frames=region[1],
                            instruction=request.get("instruction"), seed=request.get("seed"),
                            frame=request.get("frame"))
            return
        instruction = request.get("instruction", self.instruction)
        seed = int(request.get("seed", self.seed))
        if (instruction, seed) != (self.instruction, self.seed):
            self.instruction, self.seed = instruction, seed
            self._restart_preview()
        if "frame" in request:
            self.seek(int(request["frame"]))

    # -- the playhead ----------------------------------------------------------------
    def timecode(self, frame: int | None = None) -> str:
        if self.media is None:
            return "--:--:--:--"
        return self.media.info.timecode_of(self.frame if frame is None else frame)

    def seek(self, frame: int, *, scrubbing: bool = True) -> None:
        if self.media is None:
            return
        first, count = self.region
        frame = min(max(int(frame), first), first + count - 1)
        self.frame = frame
        self.position_changed.emit(frame, self.timecode(frame))
        image = self.source.get(frame)
        if image is not None:
            self.source_changed.emit(frame, image)
        else:
            self.source.request(frame)
        self._want_edit(frame, scrubbing)

    def step(self, delta: int) -> None:
        self.stop()
        self.seek(self.frame + delta)

    def _want_edit(self, frame: int, scrubbing: bool) -> None:
        edited = self.edits.get(frame)
        if edited is not None:
            self._show_edit(frame, edited)
            return
        if self._pending_seek is not None:
            covered = self._pending_seek[1]
            if covered[0] <= frame < covered[1] or not scrubbing:
                return  # its answer is on the way / playing: let it finish, then catch up
        self._pending_seek = (self.link.seek(frame), self._covered_by_seek(frame))

    def _covered_by_seek(self, frame: int) -> tuple[int, int]:
        if self.session is None:
            return frame, frame + 1
        return chunk_of(frame, self.session.region_first_frame, self.session.segment_frames, *self._chunking)

    def _show_edit(self, frame: int, image: np.ndarray) -> None:
        self.shown_edit = frame
        self.edited_changed.emit(frame, image)

    # -- playing ---------------------------------------------------------------------
    def play(self, speed: int = 1) -> None:
        if self.media is None or speed == 0:
            self.stop()
            return
        self.speed = max(-SHUTTLE_MAX, min(SHUTTLE_MAX, speed))
        rate = self.media.info.frame_rate
        self._timer.start(max(1, round(1000 / float(rate))))
        self.speed_changed.emit(self.speed)

    def stop(self) -> None:
        self._timer.stop()
        if self.speed:
            self.speed = 0
            self.speed_changed.emit(0)

    def toggle_play(self) -> None:
        self.stop() if self.speed else self.play(1)

    def shuttle(self, key: str) -> None:
        self.play(shuttle(self.speed, key))

    def _tick(self) -> None:
        first, count = self.region
        target = self.frame + self.speed
        if not first <= target < first + count:
            self.seek(min(max(target, first), first + count - 1), scrubbing=False)
            self.stop()
            return
        self.seek(target, scrubbing=False)

    # -- rendering -------------------------------------------------------------------
    def render_region(self) -> None:
        if self.media is None:
            self.message.emit("error", "Open a clip before rendering")
            return
        info = self.media.info
        output_dir = self.output_dir or info.path.parent / "LiveEdit renders"
        first, count = self.region
        regions = [{"media": str(info.path.absolute()), "first_frame": first, "frame_count": count,
                    "instruction": self.instruction, "seed": self.seed}]
        self.link.submit_render(regions, Path(output_dir).absolute(), self.output_format,
                                label=f"preview window: {info.path.name}")
        self.message.emit("info", f"Render of {info.path.name} {self.timecode(first)}–"
                                  f"{self.timecode(first + count - 1)} submitted to the queue")

    def _on_job(self, job: render_pb2.Job) -> None:
        done = sum(r.frames_done for r in job.regions)
        total = sum(r.frame_count for r in job.regions)
        errors = "; ".join(r.error for r in job.regions if r.error)
        self.render = RenderStatus(job.id, JOB_STATE_NAMES.get(job.state, "unknown"), done, total,
                                   tuple(r.output for r in job.regions if r.output), errors)
        self.render_changed.emit(self.render)
        if self.render.state == "done":
            self.message.emit("info", "Render finished: " + ", ".join(self.render.outputs))
        elif self.render.state == "failed":
            self.message.emit("error", f"Render failed: {errors or 'see the sidecar log'}")
        elif self.render.state == "cancelled":
            self.message.emit("info", "Render cancelled")

    # -- sidecar answers -------------------------------------------------------------
    def _on_connected(self, info) -> None:
        first = info.capabilities.first_chunk_frames or 9
        self._chunking = (first, info.capabilities.chunk_frames or 12)
        self._on_info(info)
        self._info_timer.start()

    def _on_info(self, info) -> None:
        self.stats = replace(self.stats, gpu_memory=gpu_memory_text(info),
                             model=RANDOM_WEIGHTS_LABEL if info.random_weights else info.model_description,
                             random_weights=info.random_weights)
        self.stats_changed.emit(self.stats)

    def _on_session(self, generation: int, session) -> None:
        if generation != self.generation:
            return
        self.session = session
        if self._pending_seek is not None:
            self._pending_seek = (self._pending_seek[0], self._covered_by_seek(self.frame))
        if session.random_weights and not self.stats.random_weights:
            self.stats = replace(self.stats, model=RANDOM_WEIGHTS_LABEL, random_weights=True)
            self.stats_changed.emit(self.stats)

    def _on_edited(self, out: EditedFrame) -> None:
        if out.generation != self.generation:
            return  # an older instruction's answer
        image = out.image
        turns = self.media.info.rotation // 90 if self.media is not None else 0
        if turns:  # the sidecar edits stored pixels; show them upright like the source pane
            image = np.ascontiguousarray(np.rot90(image, turns))
        self.edits.put(out.frame, image)
        if out.frame == out.seek_frame:
            self.stats = replace(self.stats, latency_seconds=out.seconds, cached=out.cached)
            self.stats_changed.emit(self.stats)
        if out.frame == self.frame or self.shown_edit != self.frame:
            self._show_edit(out.frame, image)
        self.edited_ranges_changed.emit(merge_ranges(self.edits.frames()))

    def _on_seek_done(self, done: SeekDone) -> None:
        if done.generation != self.generation:
            return
        if self._pending_seek is not None and self._pending_seek[0] == done.request_id:
            self._pending_seek = None
        if done.edited_frames and done.seconds > 0:
            self.stats = replace(self.stats, edit_fps=done.edited_frames / done.seconds)
            self.stats_changed.emit(self.stats)
        if self.edits.get(self.frame) is None:  # the playhead moved on meanwhile: catch up
            self._want_edit(self.frame, scrubbing=True)

    def _on_link_error(self, what: str, text: str) -> None:
        if what in ("seek", "preview"):
            self._pending_seek = None
        prefix = {"connect": "Cannot reach the sidecar", "preview": "The sidecar refused the preview",
                  "seek": "Preview failed", "render": "Render request failed",
                  "info": "Sidecar status unavailable"}.get(what, "Sidecar error")
        self.message.emit("error", f"{prefix}: {text}")

    def _on_source_error(self, text: str) -> None:
        self.message.emit("error", f"Cannot read the media: {text}")

    def _on_source_frame(self, frame: int, image: np.ndarray) -> None:
        if frame == self.frame:
            self.source_changed.emit(frame, image)

    def close(self) -> None:
        self._timer.stop()
        self._info_timer.stop()
        self.link.close()
        self.source.close()


def frame_rate_text(rate: Fraction) -> str:
    return f"{float(rate):.3f}".rstrip("0").rstrip(".") + " fps"
