"""The render queue: jobs made of regions, persisted in SQLite so that a crash or a restart
loses nothing.

- A job is a list of regions (a source range of one media file plus an instruction) and an
  output folder. Regions render one at a time, in submission order, through a
  `RegionExecutor`; the local one calls `render_region` on the GPU worker, a distributed one
  can replace it later without clients noticing.
- State lives in SQLite (WAL mode). Exactly one `RenderQueue` per database runs jobs: an
  exclusive lock file next to the database keeps a second sidecar from running them twice.
- On start, regions that were running when the process died go back to "queued" and render
  again; finished regions are never redone. A region is recorded as done only after the
  executor returned a segment that was moved into place and reported its frame count, and the
  queue checked that the file exists, lies inside the output folder and has a plausible
  frame count. A partial file is therefore never presented as a finished output.
- Progress (frames, fps, ETA) is kept in memory and pushed to watchers as `Job` snapshots;
  only state changes are written to disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable, Protocol

from liveedit.errors import InputError, LiveEditError
from liveedit.sidecar.validation import check_instruction, check_seed

log = logging.getLogger(__name__)

FORMATS = ("prores", "h264", "png")
MAX_REGIONS_PER_JOB = 1000
MAX_LABEL_CHARS = 200
SCHEMA_VERSION = 1

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED_STATES = frozenset({DONE, FAILED, CANCELLED})


class JobSpecError(LiveEditError):
    """A submitted job cannot be rendered as given (missing media, bad range, ...)."""


class JobNotFoundError(LiveEditError):
    """No job with that id in this queue."""


class QueueBusyError(LiveEditError):
    """Another process already runs the jobs of this database."""


class QueueClosedError(LiveEditError):
    """The queue was closed; start the sidecar again."""


class RegionCancelled(LiveEditError):
    """Raised inside an executor when the region's cancel event is set."""


class OutputCheckError(LiveEditError):
    """An executor reported an output that is missing, misplaced or of the wrong length."""


# --------------------------------------------------------------------------- job specs


@dataclass(frozen=True)
class RecordStart:
    """Where the region starts on the editor's timeline (for OTIO write-back)."""

    frame: int
    rate: Fraction


@dataclass(frozen=True)
class RegionSpec:
    media: Path
    first_frame: int
    frame_count: int
    instruction: str
    seed: int = 0
    handles: int = 0
    record_start: RecordStart | None = None
    # Output file name without extension, relative to the job's output folder. Default:
    # derived from the media name, the frame range and the job id.
    name: str | None = None

    def to_dict(self) -> dict:
        d = {
            "media": str(self.media),
            "first_frame": self.first_frame,
            "frame_count": self.frame_count,
            "instruction": self.instruction,
            "seed": self.seed,
            "handles": self.handles,
        }
        if self.record_start is not None:
            rate = self.record_start.rate
            d["record_start"] = {"frame": self.record_start.frame, "rate": [rate.numerator, rate.denominator]}
        if self.name is not None:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, data: object, where: str = "region") -> "RegionSpec":
        if not isinstance(data, dict):
            raise JobSpecError(f"{where} must be an object with media, first_frame, frame_count, instruction")
        _reject_unknown(data, {"media", "first_frame", "frame_count", "instruction", "seed", "handles",
                               "record_start", "name"}, where)
        record = data.get("record_start")
        if record is not None:
            if not isinstance(record, dict) or set(record) != {"frame", "rate"}:
                raise JobSpecError(f'{where}.record_start must be {{"frame": int, "rate": [num, den]}}')
            rate = record["rate"]
            if (not isinstance(rate, list) or len(rate) != 2 or not all(_is_int(x) for x in rate)
                    or rate[0] <= 0 or rate[1] <= 0):
                raise JobSpecError(
                    f"{where}.record_start.rate must be two positive integers [num, den], "
                    f"e.g. [24000, 1001] for 23.976 fps; got {rate!r}")
            record = RecordStart(_int(record, "frame", f"{where}.record_start"), Fraction(rate[0], rate[1]))
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise JobSpecError(f"{where}.name must be a file name (text)")
        return cls(
            media=Path(_str(data, "media", where)),
            first_frame=_int(data, "first_frame", where),
            frame_count=_int(data, "frame_count", where),
            instruction=_str(data, "instruction", where),
            seed=_int(data, "seed", where, default=0),
            handles=_int(data, "handles", where, default=0),
            record_start=record,
            name=name,
        )


@dataclass(frozen=True)
class MaskCacheSpec:
    """The mask cache settings a job can ask for; the rest of MaskCacheConfig stays the reference's."""

    keep_ratio: float
    pruned_sublayers: tuple[str, ...]
    rule: str = "reference"  # which tokens: the release's rule or our fixed count (engine/mask_cache.py)

    def to_dict(self) -> dict:
        data = {"keep_ratio": self.keep_ratio, "pruned_sublayers": list(self.pruned_sublayers)}
        if self.rule != "reference":  # absent = the default, so earlier jobs' settings read the same
            data["rule"] = self.rule
        return data

    @classmethod
    def from_dict(cls, data: object, where: str = "mask_cache") -> "MaskCacheSpec":
        """Absent keys take MaskCacheConfig's defaults; its own checks decide what is valid."""
        from liveedit.engine.mask_cache import MaskCacheConfig

        if not isinstance(data, dict):
            raise JobSpecError(f'{where} must be an object like {{"keep_ratio": 0.3}}, or null for no mask cache')
        _reject_unknown(data, {"keep_ratio", "pruned_sublayers", "rule"}, where)
        kwargs = {}
        if "keep_ratio" in data:
            ratio = data["keep_ratio"]
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
                raise JobSpecError(f"{where}.keep_ratio must be a number from 0 to 1; got {ratio!r}")
            kwargs["keep_ratio"] = float(ratio)
        if "pruned_sublayers" in data:
            layers = data["pruned_sublayers"]
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise JobSpecError(f'{where}.pruned_sublayers must be a list like ["self_attn", "ffn"]; got {layers!r}')
            kwargs["pruned_sublayers"] = tuple(layers)
        if "rule" in data:
            kwargs["rule"] = data["rule"]
        try:
            config = MaskCacheConfig(**kwargs)
        except InputError as exc:
            raise JobSpecError(f"{where}: {exc}") from None
        return cls(config.keep_ratio, config.pruned_sublayers, config.rule)


@dataclass(frozen=True)
class RenderSettings:
    """How every region of a job is rendered, beyond what the region says: the choices of
    `liveedit edit --warped-steps --mask-cache --save-masks`."""

    warped_steps: bool = False
    mask_cache: MaskCacheSpec | None = None
    save_masks: bool = False

    def sampler_config(self):
        from liveedit.engine.sampler import SamplerConfig

        return SamplerConfig(warp=self.warped_steps)

    def mask_cache_config(self):
        if self.mask_cache is None:
            return None
        from liveedit.engine.mask_cache import MaskCacheConfig

        return MaskCacheConfig(keep_ratio=self.mask_cache.keep_ratio,
                               pruned_sublayers=self.mask_cache.pruned_sublayers, rule=self.mask_cache.rule)

    def to_dict(self) -> dict:
        """The job-level JSON fields (merged into JobSpec's)."""
        return {"sampler": {"warped_steps": self.warped_steps},
                "mask_cache": self.mask_cache.to_dict() if self.mask_cache else None,
                "save_masks": self.save_masks}

    @classmethod
    def from_dict(cls, data: dict) -> "RenderSettings":
        sampler = data.get("sampler") or {}
        if not isinstance(sampler, dict):
            raise JobSpecError('sampler must be an object like {"warped_steps": true}')
        _reject_unknown(sampler, {"warped_steps"}, "sampler")
        warped = sampler.get("warped_steps", False)
        save_masks = data.get("save_masks", False)
        for key, value in (("sampler.warped_steps", warped), ("save_masks", save_masks)):
            if not isinstance(value, bool):
                raise JobSpecError(f"{key} must be true or false; got {value!r}")
        mask_cache = data.get("mask_cache")
        return cls(warped, None if mask_cache is None else MaskCacheSpec.from_dict(mask_cache), save_masks)


@dataclass(frozen=True)
class JobSpec:
    regions: tuple[RegionSpec, ...]
    output_dir: Path
    format: str = "prores"
    label: str = ""
    settings: RenderSettings = RenderSettings()

    def to_dict(self) -> dict:
        return {
            "regions": [r.to_dict() for r in self.regions],
            "output_dir": str(self.output_dir),
            "format": self.format,
            "label": self.label,
            **self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: object) -> "JobSpec":
        """Parse the wire form (bridge JSON, gRPC). Paths must be absolute: the sidecar's
        working folder means nothing to a client."""
        if not isinstance(data, dict):
            raise JobSpecError("a job must be an object with regions, output_dir and format")
        _reject_unknown(data, {"regions", "output_dir", "format", "label", "sampler", "mask_cache",
                               "save_masks"}, "job")
        regions = data.get("regions")
        if not isinstance(regions, list):
            raise JobSpecError("job.regions must be a list of regions")
        if len(regions) > MAX_REGIONS_PER_JOB:
            raise JobSpecError(f"a job holds at most {MAX_REGIONS_PER_JOB} regions; got {len(regions)}: split it")
        parsed = tuple(RegionSpec.from_dict(r, f"regions[{i}]") for i, r in enumerate(regions))
        for i, region in enumerate(parsed):
            if not region.media.is_absolute():
                raise JobSpecError(f"regions[{i}].media must be an absolute path; got {str(region.media)!r}")
        output_dir = Path(_str(data, "output_dir", "job"))
        if not output_dir.is_absolute():
            raise JobSpecError(f"output_dir must be an absolute path; got {str(output_dir)!r}")
        label = data.get("label") or ""
        if not isinstance(label, str):
            raise JobSpecError("label must be text")
        return cls(parsed, output_dir, data.get("format", "prores"), label, RenderSettings.from_dict(data))


def validate_spec(spec: JobSpec) -> JobSpec:
    """Check a job before it is queued; return it with paths made absolute and resolved.
    Creates the output folder when it does not exist yet."""
    if not spec.regions:
        raise JobSpecError("the job has no regions: give at least one source range to edit")
    if spec.format not in FORMATS:
        raise JobSpecError(f"format {spec.format!r} is not supported; use one of {', '.join(FORMATS)}")
    if len(spec.label) > MAX_LABEL_CHARS:
        raise JobSpecError(f"label is longer than {MAX_LABEL_CHARS} characters; shorten it")
    if spec.settings.save_masks and spec.settings.mask_cache is None:
        raise JobSpecError("save_masks writes what the mask cache reused; set mask_cache too (or drop save_masks)")
    output_dir = _prepare_output_dir(Path(spec.output_dir))
    regions = []
    for i, region in enumerate(spec.regions):
        where = f"regions[{i}]"
        media = Path(region.media).expanduser()
        if not media.is_file():
            raise JobSpecError(f"{where}.media {str(media)!r} does not exist or is not a file; check the path")
        if region.first_frame < 0:
            raise JobSpecError(f"{where}.first_frame is {region.first_frame}; frames count from 0")
        if region.frame_count < 1:
            raise JobSpecError(f"{where}.frame_count is {region.frame_count}; a region needs at least one frame")
        if region.handles < 0:
            raise JobSpecError(f"{where}.handles is {region.handles}; use 0 or more extra frames per side")
        try:  # the same checks, in the same words, as the gRPC server's
            instruction = check_instruction(region.instruction, f"{where}.instruction")
            check_seed(region.seed, f"{where}.seed")
        except InputError as exc:
            raise JobSpecError(str(exc)) from None
        if region.name is not None:
            _output_stem(output_dir, region.name, where)  # raises if it escapes the folder
        regions.append(replace(region, media=media.resolve(), instruction=instruction))
    return replace(spec, regions=tuple(regions), output_dir=output_dir)


def _prepare_output_dir(path: Path) -> Path:
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise JobSpecError(f"output_dir {str(path)!r} is a file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JobSpecError(f"output_dir {str(path)!r} cannot be created ({exc.strerror}); "
                           "choose a folder you can write to") from exc
    if not os.access(path, os.W_OK):
        raise JobSpecError(f"output_dir {str(path)!r} is not writable; choose a folder you can write to")
    return path.resolve()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _output_stem(output_dir: Path, name: str, where: str) -> Path:
    """The output path (without extension) for a region name; it must stay inside output_dir."""
    if not name.strip() or Path(name).is_absolute() or "\\" in name or ":" in name:
        raise JobSpecError(f"{where}.name {name!r} must be a relative file name inside output_dir")
    stem = (output_dir / name).resolve()
    if stem == output_dir or not stem.is_relative_to(output_dir):
        raise JobSpecError(f"{where}.name {name!r} points outside output_dir {str(output_dir)!r}; "
                           "outputs must stay inside the output folder")
    return stem


def _default_stem(output_dir: Path, job_id: str, index: int, region: RegionSpec) -> Path:
    last = region.first_frame + region.frame_count - 1
    media = _UNSAFE.sub("_", region.media.stem)[:80] or "clip"
    return output_dir / f"{media}_f{region.first_frame}-{last}_liveedit-{job_id[:8]}-r{index}"


def _reject_unknown(data: dict, known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise JobSpecError(f"{where} has unknown field(s) {', '.join(unknown)}; "
                           f"known fields: {', '.join(sorted(known))}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(data: dict, key: str, where: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if not _is_int(value):
        raise JobSpecError(f"{where}.{key} must be an integer; got {value!r}")
    return value


def _str(data: dict, key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise JobSpecError(f"{where}.{key} must be text; got {value!r}")
    return value


# --------------------------------------------------------------------------- timelines and output names


def media_timing(path: str):
    """A probe of a media file as sidecar/timeline.py wants it: the file itself is
    authoritative over the timeline's copy of its rate, timecode and length."""
    from liveedit.sidecar.media import probe
    from liveedit.sidecar.timeline import MediaTiming, TimelineError

    try:
        info = probe(path)
    except LiveEditError as exc:
        raise TimelineError(str(exc)) from exc
    return MediaTiming(rate=info.frame_rate, timecode_start=info.start_timecode_frame, frame_count=info.frame_count)


def timeline_regions(timeline, *, marker_color: str = "Green", instruction: str | None = None,
                     in_timecode: str | None = None, out_timecode: str | None = None,
                     on_refused: Callable | None = None) -> list:
    """The regions `liveedit render` edits on a timeline: with an instruction, the in/out
    range (record timecodes, out exclusive) or the whole timeline; without, the regions under
    markers of `marker_color`. Regions the timeline cannot give go to `on_refused` (a
    TimelineError each) when given, else raise."""
    from liveedit.sidecar.timeline import (TimelineError, record_frame_from_timecode, regions_for_range,
                                           regions_from_markers)

    if instruction:
        record_range = None
        if in_timecode or out_timecode:
            if not (in_timecode and out_timecode):
                raise TimelineError("give both an in and an out point (or neither, for the whole timeline)")
            record_range = (record_frame_from_timecode(timeline, in_timecode),
                            record_frame_from_timecode(timeline, out_timecode))
        return regions_for_range(timeline, instruction, record_range, media_info=media_timing, on_refused=on_refused)
    return regions_from_markers(timeline, marker_color, media_info=media_timing, on_refused=on_refused)


def model_identity_of(preset: str, random_weights: bool, checkpoint_hash: str | None) -> str:
    """render.model_identity for a model known only by its description (a ServerInfo, a
    ModelCard): the same text, so names and settings keys agree with a local render."""
    from types import SimpleNamespace

    from liveedit.sidecar.render import model_identity

    return model_identity(SimpleNamespace(preset=SimpleNamespace(name=preset), random_weights=random_weights,
                                          checkpoint_hash=checkpoint_hash or None))


def stable_names(regions: Iterable, *, model: str, seed: int, handles: int, format: str,
                 settings: RenderSettings) -> list[str | None]:
    """The output name render_region gives each timeline Region when it picks one itself
    (segment_name + settings_key): a job that sends these finds segments rendered earlier with
    the same settings, by a job or in-process, and skips them. A region that repeats an earlier
    one's name gets None (a job-derived name), since one job never writes one output twice."""
    from liveedit.sidecar.render import segment_name, settings_key

    sampler, mask_cache = settings.sampler_config(), settings.mask_cache_config()
    names: list[str | None] = []
    for region in regions:
        key = settings_key(region, model, seed, sampler, handles=handles, format=format, mask_cache=mask_cache)
        name = segment_name(region, key)
        names.append(None if name in names else name)
    return names


def region_dict(region, *, seed: int, handles: int, name: str | None = None) -> dict:
    """A timeline Region → one region of a job (the wire form), with its place on the timeline
    so the segment's own .otio puts it at the right record time."""
    rate = region.timeline_rate
    data = {"media": str(Path(region.media_path).resolve()), "first_frame": region.first_frame,
            "frame_count": region.frame_count, "instruction": region.instruction, "seed": seed,
            "handles": handles, "record_start": {"frame": region.record_start, "rate": [rate.numerator, rate.denominator]}}
    if name is not None:
        data["name"] = name
    return data


def region_leftovers(output_stem: Path) -> list[Path]:
    """Hidden temporary files and folders a render of `output_stem` leaves behind when its
    process dies, and nothing else: SegmentWriter's `.<file>.<8 hex>.partial[.mov]` and
    `.<folder>.<8 hex>.old` for the segment (`<name>.mov` or the PNG folder `<name>`) and its
    token-mask video (`<name>.masks.mov`), and write_otio's `.<name>.otio.<random>.tmp`."""
    name = re.escape(output_stem.name)
    pattern = re.compile(rf"\.{name}(?:(?:\.mov|\.masks\.mov)?\.[0-9a-f]{{8}}\.(?:partial(?:\.mov)?|old)"
                         rf"|\.otio\.[A-Za-z0-9_]+\.tmp)")
    try:
        entries = list(output_stem.parent.iterdir())
    except OSError:
        return []
    return sorted(p for p in entries if pattern.fullmatch(p.name))


def _remove_leftovers(output_stem: Path) -> None:
    import shutil

    for path in region_leftovers(output_stem):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            log.info("removed %s, left by an interrupted render", path)
        except OSError as exc:  # a leftover is untidy, not harmful: the render goes on
            log.warning("could not remove %s, left by an interrupted render: %s", path, exc)


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class RegionStatus:
    index: int
    state: str
    frames_done: int
    frame_count: int  # frames this region renders (handles included once the executor knows)
    fps: float | None
    eta_seconds: float | None
    output: str | None
    otio: str | None
    error: str | None

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Job:
    """An immutable snapshot of a job, as clients see it."""

    id: str
    state: str
    regions: tuple[RegionStatus, ...]
    created: str
    label: str
    spec: JobSpec

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "state": self.state,
            "regions": [r.to_dict() for r in self.regions],
            "created": self.created,
            "label": self.label,
        }


def job_state(region_states: Iterable[str]) -> str:
    states = list(region_states)
    if RUNNING in states:
        return RUNNING
    if QUEUED in states:
        return QUEUED if all(s == QUEUED for s in states) else RUNNING
    if FAILED in states:
        return FAILED
    if CANCELLED in states:
        return CANCELLED
    return DONE


# --------------------------------------------------------------------------- executors


@dataclass(frozen=True)
class RegionTask:
    """One region to render, as handed to an executor."""

    job_id: str
    index: int
    region: RegionSpec
    output_dir: Path
    output_stem: Path  # absolute, inside output_dir, without extension
    format: str
    settings: RenderSettings = RenderSettings()


@dataclass(frozen=True)
class RegionResult:
    """What an executor reports once the segment is in its final place."""

    output: Path
    frame_count: int  # frames in the written segment, handles included
    otio: Path | None = None


class ProgressCallback(Protocol):
    def __call__(self, frames_done: int, frames_total: int | None = None) -> None: ...


class RegionExecutor(Protocol):
    """Renders one region. Must write its output atomically (temp name, then os.replace) and
    return only once it is in place. Should stop soon after `cancel` is set (raising
    RegionCancelled); `progress` also raises RegionCancelled once cancel is set, so calling it
    often is enough."""

    def run(self, task: RegionTask, progress: ProgressCallback, cancel: threading.Event) -> RegionResult: ...


# --------------------------------------------------------------------------- the queue


@dataclass
class _Region:
    spec: RegionSpec
    output_stem: Path
    state: str = QUEUED
    output: str | None = None
    otio: str | None = None
    error: str | None = None
    frames_done: int = 0
    frames_total: int | None = None
    started: float | None = None
    fps: float | None = None
    eta: float | None = None

    def status(self, index: int) -> RegionStatus:
        return RegionStatus(
            index=index,
            state=self.state,
            frames_done=self.frames_done,
            frame_count=self.frames_total or self.spec.frame_count,
            fps=None if self.fps is None else round(self.fps, 3),
            eta_seconds=None if self.eta is None else round(self.eta, 1),
            output=self.output,
            otio=self.otio,
            error=self.error,
        )


@dataclass
class _Job:
    id: str
    created: str
    spec: JobSpec
    regions: list[_Region] = field(default_factory=list)

    def snapshot(self) -> Job:
        return Job(
            id=self.id,
            state=job_state(r.state for r in self.regions),
            regions=tuple(r.status(i) for i, r in enumerate(self.regions)),
            created=self.created,
            label=self.spec.label,
            spec=self.spec,
        )


@dataclass
class _Running:
    job: _Job
    index: int
    cancel: threading.Event
    by_user: bool = False  # cancelled by a client, not by shutdown


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    spec    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS regions (
    job_id      TEXT NOT NULL REFERENCES jobs(id),
    idx         INTEGER NOT NULL,
    state       TEXT NOT NULL,
    output_stem TEXT NOT NULL,
    output      TEXT,
    otio        TEXT,
    frames      INTEGER,
    error       TEXT,
    PRIMARY KEY (job_id, idx)
);
"""


class RenderQueue:
    """Jobs persisted in `db_path`, rendered one region at a time by `executor` on a
    background thread. Thread-safe; `watch` and `watch_all` are for asyncio callers."""

    def __init__(self, db_path: str | os.PathLike, executor: RegionExecutor, *,
                 autostart: bool = True, clock: Callable[[], float] = time.monotonic):
        self._db_path = Path(db_path)
        self._executor = executor
        self._clock = clock
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, _Job] = {}  # insertion order = submission order
        self._listeners: set[_Listener] = set()
        self._running: _Running | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = _acquire_process_lock(self._db_path)
        try:
            self._db = sqlite3.connect(self._db_path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a recorded "done" survives power loss
            self._db.executescript(_SCHEMA)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise QueueBusyError(f"{self._db_path} was written by a newer LiveEdit (schema {version}); "
                                     "upgrade, or point the sidecar at another jobs database")
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._load()
        except Exception:
            self._lock_file.close()
            raise
        if autostart:
            self.resume()

    # ------------------------------------------------------------------ public API

    def submit(self, spec: JobSpec) -> Job:
        """Validate and queue a job; returns its first snapshot."""
        spec = validate_spec(spec)
        job_id = uuid.uuid4().hex
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        regions = []
        stems: dict[Path, int] = {}
        for i, region in enumerate(spec.regions):
            stem = (_output_stem(spec.output_dir, region.name, f"regions[{i}]") if region.name
                    else _default_stem(spec.output_dir, job_id, i, region))
            if stem in stems:
                raise JobSpecError(f"regions[{stems[stem]}] and regions[{i}] would write the same output "
                                   f"{str(stem)!r}; give them different names")
            if region.media.with_suffix("") == stem or region.media.is_relative_to(stem):
                raise JobSpecError(f"regions[{i}] would write over its source media {str(region.media)!r}; "
                                   "choose another name or output folder")
            stems[stem] = i
            regions.append(_Region(spec=region, output_stem=stem))
        job = _Job(id=job_id, created=created, spec=spec, regions=regions)
        with self._lock:
            self._check_open()
            with self._db:  # one transaction: the job appears whole or not at all
                self._db.execute("BEGIN")
                self._db.execute("INSERT INTO jobs (id, created, spec) VALUES (?, ?, ?)",
                                 (job_id, created, json.dumps(spec.to_dict())))
                self._db.executemany(
                    "INSERT INTO regions (job_id, idx, state, output_stem) VALUES (?, ?, ?, ?)",
                    [(job_id, i, QUEUED, str(r.output_stem)) for i, r in enumerate(regions)])
            self._jobs[job_id] = job
            snapshot = job.snapshot()
            self._publish(snapshot)
            self._wake.notify_all()
        log.info("job %s queued: %d region(s) into %s", job_id, len(regions), spec.output_dir)
        return snapshot

    def get(self, job_id: str) -> Job:
        with self._lock:
            return self._job(job_id).snapshot()

    def list(self) -> list[Job]:
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def cancel(self, job_id: str) -> Job:
        """Cancel the job's queued regions and stop its running one. Finished regions keep
        their outputs. Cancelling a finished job changes nothing."""
        with self._lock:
            job = self._job(job_id)
            for i, region in enumerate(job.regions):
                if region.state == QUEUED:
                    self._set_state(job, i, CANCELLED)
            running = self._running
            if running is not None and running.job is job:
                running.by_user = True
                running.cancel.set()
            snapshot = job.snapshot()
            self._publish(snapshot)
        return snapshot

    def resume(self) -> None:
        """Start rendering queued regions (those left running by a process that died were
        queued again when the database was opened). Does nothing if already started."""
        with self._lock:
            self._check_open()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="liveedit-render-queue", daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Stop rendering (the running region goes back to the queue) and release the database."""
        with self._lock:
            if self._closed:
                return
            self._stopping = True
            if self._running is not None:
                self._running.cancel.set()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("render thread did not stop within %.0f s; its region will render again", timeout)
        with self._lock:
            self._closed = True
            listeners = list(self._listeners)
            self._listeners.clear()
            self._db.close()
            self._lock_file.close()
        for listener in listeners:
            listener.close()

    def __enter__(self) -> "RenderQueue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    async def watch(self, job_id: str) -> AsyncIterator[Job]:
        """Snapshots of one job: the current one first, then one per change, until it finishes.
        A slow reader skips intermediate snapshots, never the last one."""
        listener = _Listener(asyncio.get_running_loop(), job_id)
        with self._lock:
            first = self._job(job_id).snapshot()
            self._check_open()
            self._listeners.add(listener)
        try:
            yield first
            if first.finished:
                return
            async for job in listener:
                yield job
                if job.finished:
                    return
        finally:
            self._remove_listener(listener)

    async def watch_all(self) -> AsyncIterator[Job]:
        """Snapshots of every job: all current jobs first, then one per change, until close()."""
        listener = _Listener(asyncio.get_running_loop(), None)
        with self._lock:
            self._check_open()
            current = [job.snapshot() for job in self._jobs.values()]
            self._listeners.add(listener)
        try:
            for job in current:
                yield job
            async for job in listener:
                yield job
        finally:
            self._remove_listener(listener)

    # ------------------------------------------------------------------ rendering

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping and (claimed := self._claim_next()) is None:
                    self._wake.wait()
                if self._stopping:
                    return
                self._publish(claimed.job.snapshot())
            self._render(claimed)

    def _claim_next(self) -> _Running | None:
        for job in self._jobs.values():
            for i, region in enumerate(job.regions):
                if region.state == QUEUED:
                    region.frames_done, region.frames_total = 0, None
                    region.fps = region.eta = None
                    region.started = self._clock()
                    self._set_state(job, i, RUNNING)
                    self._running = _Running(job, i, threading.Event())
                    return self._running
        return None

    def _render(self, running: _Running) -> None:
        job, index, cancel = running.job, running.index, running.cancel
        region = job.regions[index]
        task = RegionTask(job.id, index, region.spec, job.spec.output_dir, region.output_stem, job.spec.format,
                          job.spec.settings)

        def progress(frames_done: int, frames_total: int | None = None) -> None:
            if cancel.is_set():
                raise RegionCancelled(f"region {index} of job {job.id} was cancelled")
            self._progress(job, region, frames_done, frames_total)

        result = error = None
        try:
            result = self._check_result(task, self._executor.run(task, progress, cancel))
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the region
            error = exc
        with self._lock:
            self._running = None
            if self._closed:
                return
            if result is not None:
                region.output, region.otio = str(result.output), result.otio and str(result.otio)
                region.frames_done = region.frames_total = result.frame_count
                region.eta = 0.0
                self._set_state(job, index, DONE, frames=result.frame_count)
            elif running.by_user:
                self._set_state(job, index, CANCELLED)
            elif self._stopping and not isinstance(error, OutputCheckError):
                self._set_state(job, index, QUEUED)  # shutdown, not the user's cancel: render it next start
            else:
                self._set_state(job, index, FAILED, error=_describe(error))
            self._publish(job.snapshot())
        if error is not None and not cancel.is_set():
            if isinstance(error, LiveEditError):
                log.warning("job %s region %d failed: %s", job.id, index, error)
            else:
                log.error("job %s region %d failed", job.id, index, exc_info=error)

    def _progress(self, job: _Job, region: _Region, frames_done: int, frames_total: int | None) -> None:
        with self._lock:
            now = self._clock()
            region.frames_done = frames_done
            if frames_total:
                region.frames_total = frames_total
            elapsed = now - (region.started or now)
            # Average since the region started: includes warm-up, so it never flatters.
            region.fps = frames_done / elapsed if elapsed > 0 and frames_done > 0 else None
            total = region.frames_total or region.spec.frame_count
            region.eta = max(total - frames_done, 0) / region.fps if region.fps else None
            self._publish(job.snapshot())

    @staticmethod
    def _check_result(task: RegionTask, result: RegionResult) -> RegionResult:
        if not isinstance(result, RegionResult):
            raise OutputCheckError(f"executor returned {type(result).__name__}, not a RegionResult")
        output_dir = task.output_dir
        paths = [("output", Path(result.output))] + ([("otio", Path(result.otio))] if result.otio else [])
        for what, path in paths:
            resolved = path.resolve()
            if not resolved.is_relative_to(output_dir):
                raise OutputCheckError(f"the renderer wrote its {what} to {str(path)!r}, outside the output "
                                       f"folder {str(output_dir)!r}; it was not recorded")
            if not resolved.exists():
                raise OutputCheckError(f"the renderer reported {what} {str(path)!r} but it does not exist; "
                                       "the region will need rendering again")
        low = task.region.frame_count
        high = task.region.frame_count + 2 * task.region.handles
        if not low <= result.frame_count <= high:
            raise OutputCheckError(
                f"the segment {str(result.output)!r} has {result.frame_count} frames; region {task.index} "
                f"needs {low} (up to {high} with handles). It was not recorded as done")
        return replace(result, output=Path(result.output).resolve(),
                       otio=Path(result.otio).resolve() if result.otio else None)

    # ------------------------------------------------------------------ storage

    def _load(self) -> None:
        rows = self._db.execute("SELECT id, created, spec FROM jobs ORDER BY seq").fetchall()
        for job_id, created, spec_json in rows:
            raw = json.loads(spec_json)
            spec = JobSpec.from_dict(raw)
            job = _Job(id=job_id, created=created, spec=spec)
            for idx, state, stem, output, otio, frames, error in self._db.execute(
                    "SELECT idx, state, output_stem, output, otio, frames, error FROM regions "
                    "WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall():
                region = _Region(spec=spec.regions[idx], output_stem=Path(stem), state=state,
                                 output=output, otio=otio, error=error)
                job.regions.append(region)
                if state == RUNNING:
                    # We hold the process lock, so whoever was rendering it died: whatever
                    # it left on disk is partial. Queue it again; never show it as done.
                    log.info("job %s region %d was interrupted; it will render again", job_id, idx)
                    _remove_leftovers(Path(stem))
                    self._set_state(job, idx, QUEUED)
                if state == DONE and frames is not None:
                    region.frames_done = region.frames_total = frames
            self._jobs[job_id] = job

    def _set_state(self, job: _Job, index: int, state: str, *, frames: int | None = None,
                   error: str | None = None) -> None:
        region = job.regions[index]
        region.state, region.error = state, error
        if state != DONE:
            region.output = region.otio = None
        self._db.execute(
            "UPDATE regions SET state = ?, output = ?, otio = ?, frames = ?, error = ? WHERE job_id = ? AND idx = ?",
            (state, region.output, region.otio, frames, error, job.id, index))

    def _job(self, job_id: str) -> _Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id!r} in the render queue; list jobs to see their ids")
        return job

    def _check_open(self) -> None:
        if self._closed or self._stopping:
            raise QueueClosedError("the render queue is shutting down; start the sidecar again")

    # ------------------------------------------------------------------ listeners

    def _publish(self, snapshot: Job) -> None:
        # Under the lock, so watchers see snapshots in the order the changes happened (a stale
        # "running" must never arrive after "done"). offer() only schedules; it never blocks.
        with self._lock:
            for listener in list(self._listeners):
                if not listener.offer(snapshot):
                    self._listeners.discard(listener)

    def _remove_listener(self, listener: "_Listener") -> None:
        with self._lock:
            self._listeners.discard(listener)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, LiveEditError):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); see the sidecar log"


class _Listener:
    """Delivers snapshots from the render thread to one asyncio consumer. Keeps only the
    latest snapshot per job, so a slow consumer cannot make memory grow."""

    def __init__(self, loop: asyncio.AbstractEventLoop, job_id: str | None):
        self._loop = loop
        self._job_id = job_id
        self._pending: dict[str, Job] = {}
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, job: Job) -> bool:
        """Called from any thread. False once the consumer's loop is gone."""
        if self._job_id is not None and job.id != self._job_id:
            return True
        try:
            self._loop.call_soon_threadsafe(self._put, job)
        except RuntimeError:  # loop closed
            return False
        return True

    def close(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._close)
        except RuntimeError:
            pass

    def _put(self, job: Job) -> None:
        self._pending.pop(job.id, None)
        self._pending[job.id] = job
        self._ready.set()

    def _close(self) -> None:
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> "_Listener":
        return self

    async def __anext__(self) -> Job:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        job_id = next(iter(self._pending))
        return self._pending.pop(job_id)


# --------------------------------------------------------------------------- one process per db


class _ProcessLock:
    """An exclusive OS lock on `<db>.lock`; released by the OS if the process dies."""

    def __init__(self, path: Path):
        self._file = open(path, "a+")
        try:
            if os.name == "nt":
                import msvcrt

                msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise QueueBusyError(
                f"another LiveEdit sidecar (pid {holder}) is already running the jobs in "
                f"{path.with_suffix('')}; stop it first, or give this one its own jobs database") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()  # closing the file releases the lock


def _acquire_process_lock(db_path: Path) -> _ProcessLock:
    return _ProcessLock(db_path.with_name(db_path.name + ".lock"))


# --------------------------------------------------------------------------- local executor


BATCH_PRIORITY = "batch"  # the GPU worker serves preview requests before batch renders


class LocalExecutor:
    """Renders regions on this machine with `liveedit.sidecar.render.render_region`.

    With a `worker` (sidecar/worker.py), the render runs as a batch-priority item on the single
    GPU worker, which owns the models and puts preview frames first. Without one, it runs on
    the queue's thread with `models` (tests, the command line)."""

    def __init__(self, models=None, *, worker=None, render: Callable | None = None):
        if models is None and worker is None:
            raise ValueError("LocalExecutor needs the loaded models or the GPU worker that owns them")
        self._models = models
        self._worker = worker
        self._render = render

    def run(self, task: RegionTask, progress: ProgressCallback, cancel: threading.Event) -> RegionResult:
        render = self._render
        if render is None:
            from liveedit.sidecar.render import render_region as render

        def on_progress(frames_done: int, frames_total: int | None = None) -> None:
            progress(frames_done, frames_total)
            if self._worker is not None:
                # Between chunks: let queued preview work use the GPU before the next chunk.
                self._worker.yield_to_urgent(BATCH_PRIORITY)

        def work(models) -> RegionResult:
            segment = render(
                task.region, models, task.output_dir,
                format=task.format, handles=task.region.handles, seed=task.region.seed,
                progress=on_progress, cancel=cancel,
                name=task.output_stem.relative_to(task.output_dir).as_posix(), job_id=task.job_id,
                sampler=task.settings.sampler_config(), mask_cache=task.settings.mask_cache_config(),
                save_masks=task.settings.save_masks,
            )
            return result_from_segment(segment)

        if self._worker is None:
            return work(self._models)
        future = self._worker.submit(work, priority=BATCH_PRIORITY)
        while True:
            try:
                return future.result(timeout=0.2)
            except concurrent.futures.TimeoutError:
                # Still waiting behind preview work: a cancel must not wait for the GPU.
                if cancel.is_set() and future.cancel():
                    raise RegionCancelled(f"region {task.index} of job {task.job_id} was cancelled") from None


def result_from_segment(segment) -> RegionResult:
    """`render_region`'s RenderedSegment → RegionResult (the frame count it reports is the
    number of frames it wrote and verified)."""
    otio = getattr(segment, "otio_path", None) or getattr(segment, "otio", None)
    return RegionResult(output=Path(segment.path), frame_count=int(segment.frame_count),
                        otio=Path(otio) if otio else None)
