"""The job model: what a render job asks for (regions of source media, an output folder, a
format and the render settings), its wire/storage form as plain JSON and the checks a job
passes before it is queued; and the snapshots clients see of a job as it renders.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from liveedit.engine.config import DetailConfig, SamplerConfig
from liveedit.errors import InputError, Kind, LiveEditError
from liveedit.sidecar.naming import OutputNameError, confined_path
from liveedit.sidecar.outputs import OutputFolderError, check_output_dir, check_path_length, cut
from liveedit.sidecar.validation import check_instruction, check_seed

# engine/mask_cache.py imports torch: the job model loads without it and imports it only for a
# job that uses the mask cache.
if TYPE_CHECKING:
    from liveedit.engine.mask_cache import MaskCacheConfig

FORMATS = ("prores", "h264", "png")
MAX_REGIONS_PER_JOB = 1000
MAX_LABEL_CHARS = 200

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED_STATES = frozenset({DONE, FAILED, CANCELLED})


class JobSpecError(LiveEditError):
    """A submitted job cannot be rendered as given (missing media, bad range, ...)."""

    kind = Kind.INVALID_JOB


# --------------------------------------------------------------------------- job specs


@dataclass(frozen=True)
class RecordStart:
    """Where the region starts on the editor's timeline (for OTIO write-back)."""

    frame: int
    rate: Fraction

    @classmethod
    def of(cls, frame: int, rate: object, where: str) -> "RecordStart":
        """From the wire's frame and [numerator, denominator] rate, checked."""
        if not (isinstance(rate, (list, tuple)) and len(rate) == 2 and all(_is_int(x) and x > 0 for x in rate)):
            raise JobSpecError(f"{where}.rate must be two positive integers [num, den], e.g. [24000, 1001] "
                               f"for 23.976 fps; got {rate!r}")
        return cls(frame, Fraction(rate[0], rate[1]))


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
            record = RecordStart.of(_int(record, "frame", f"{where}.record_start"), record["rate"],
                                    f"{where}.record_start")
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
class RenderSettings:
    """How every region of a job is rendered, beyond what the region says: the choices of
    `liveedit edit --warped-steps --mask-cache --save-masks --detail`."""

    warped_steps: bool = False
    # The engine's own config, the one form of the mask cache setting from the command line or
    # the wire to the render; a job sets keep_ratio and pruned_sublayers, the rest stays the
    # reference's. None: off.
    mask_cache: MaskCacheConfig | None = None
    save_masks: bool = False
    detail: DetailConfig = DetailConfig()  # delivery at the source's size and precision

    def sampler_config(self):
        return SamplerConfig(warp=self.warped_steps)

    def to_dict(self) -> dict:
        """The job-level JSON fields (merged into JobSpec's)."""
        mask_cache = self.mask_cache and {"keep_ratio": self.mask_cache.keep_ratio,
                                          "pruned_sublayers": list(self.mask_cache.pruned_sublayers)}
        if mask_cache and self.mask_cache.rule != "reference":  # absent = the default: earlier jobs read the same
            mask_cache["rule"] = self.mask_cache.rule
        return {"sampler": {"warped_steps": self.warped_steps}, "mask_cache": mask_cache,
                "save_masks": self.save_masks, "detail": self.detail.to_dict()}

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
        try:  # absent or null: the default ("transfer")
            detail = DetailConfig.from_dict(data.get("detail"))
        except InputError as exc:
            raise JobSpecError(str(exc)) from None
        return cls(warped, None if mask_cache is None else mask_cache_config(mask_cache), save_masks, detail)

    @property
    def has_masks_to_save(self) -> bool:
        """save_masks has something to save: the mask cache's token masks or the change mask."""
        return self.mask_cache is not None or self.detail.mode == "masked"


def mask_cache_config(data: object, where: str = "mask_cache") -> MaskCacheConfig:
    """The JSON form of the mask cache setting → the engine's config. Absent keys keep
    MaskCacheConfig's defaults; its own checks decide what is valid."""
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
        return MaskCacheConfig(**kwargs)
    except InputError as exc:
        raise JobSpecError(f"{where}: {exc}") from None


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
        """Parse the JSON form: the bridge's job body, and what the queue stores."""
        if not isinstance(data, dict):
            raise JobSpecError("a job must be an object with regions, output_dir and format")
        _reject_unknown(data, {"regions", "output_dir", "format", "label", "sampler", "mask_cache",
                               "save_masks", "detail"}, "job")
        regions = data.get("regions")
        if not isinstance(regions, list):
            raise JobSpecError("job.regions must be a list of regions")
        check_region_count(len(regions))
        parsed = tuple(RegionSpec.from_dict(r, f"regions[{i}]") for i, r in enumerate(regions))
        label = data.get("label") or ""
        if not isinstance(label, str):
            raise JobSpecError("label must be text")
        return check_wire_paths(cls(parsed, Path(_str(data, "output_dir", "job")), data.get("format", "prores"),
                                    label, RenderSettings.from_dict(data)))


def check_region_count(count: int) -> None:
    if count > MAX_REGIONS_PER_JOB:
        raise JobSpecError(f"a job holds at most {MAX_REGIONS_PER_JOB} regions; got {count}: split it")


def check_wire_paths(spec: JobSpec) -> JobSpec:
    """A job from a client (JSON or gRPC) names absolute paths: the sidecar's working folder
    means nothing to a client."""
    for i, region in enumerate(spec.regions):
        _check_length(region.media, f"regions[{i}].media")
        if not region.media.is_absolute():
            raise JobSpecError(f"regions[{i}].media must be an absolute path; got {cut(region.media)!r}")
    _check_length(spec.output_dir, "output_dir")
    if not spec.output_dir.is_absolute():
        raise JobSpecError(f"output_dir must be an absolute path; got {cut(spec.output_dir)!r}")
    return spec


def _check_length(path: Path, where: str) -> None:
    try:
        check_path_length(path, where)
    except InputError as exc:
        raise JobSpecError(str(exc)) from None


def validate_spec(spec: JobSpec) -> JobSpec:
    """Check a job before it is queued; return it with paths made absolute and resolved.
    Creates nothing: the queue makes the output folder once the job is accepted."""
    if not spec.regions:
        raise JobSpecError("the job has no regions: give at least one source range to edit")
    if spec.format not in FORMATS:
        raise JobSpecError(f"format {spec.format!r} is not supported; use one of {', '.join(FORMATS)}")
    if len(spec.label) > MAX_LABEL_CHARS:
        raise JobSpecError(f"label is longer than {MAX_LABEL_CHARS} characters; shorten it")
    if spec.settings.save_masks and not spec.settings.has_masks_to_save:
        raise JobSpecError("save_masks writes what the mask cache reused or the change mask of masked detail; "
                           'set mask_cache too, or detail {"mode": "masked"} (or drop save_masks)')
    output_dir = Path(spec.output_dir).expanduser()
    _check_length(output_dir, "output_dir")
    regions = []
    for i, region in enumerate(spec.regions):
        where = f"regions[{i}]"
        media = Path(region.media).expanduser()
        _check_length(media, f"{where}.media")
        if not media.is_file():
            raise JobSpecError(f"{where}.media {cut(media)!r} does not exist or is not a file; check the path")
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
            try:  # raises if it escapes the folder
                confined_path(output_dir, region.name, f"{where}.name")
            except OutputNameError as exc:
                raise JobSpecError(str(exc)) from None
        regions.append(replace(region, media=media.resolve(), instruction=instruction))
    try:  # last: the cheap checks above answer first
        check_output_dir(output_dir, "output_dir")
    except OutputFolderError as exc:
        raise JobSpecError(str(exc)) from None
    return replace(spec, regions=tuple(regions), output_dir=output_dir.resolve())



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


