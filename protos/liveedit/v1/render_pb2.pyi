from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_PRORES: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_H264: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_PNG: _ClassVar[OutputFormat]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_DONE: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
OUTPUT_FORMAT_PRORES: OutputFormat
OUTPUT_FORMAT_H264: OutputFormat
OUTPUT_FORMAT_PNG: OutputFormat
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_DONE: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class RecordStart(_message.Message):
    __slots__ = ("frame", "rate_numerator", "rate_denominator")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    RATE_NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    RATE_DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    frame: int
    rate_numerator: int
    rate_denominator: int
    def __init__(self, frame: _Optional[int] = ..., rate_numerator: _Optional[int] = ..., rate_denominator: _Optional[int] = ...) -> None: ...

class RenderRegion(_message.Message):
    __slots__ = ("media_path", "first_frame", "frame_count", "instruction", "seed", "handles", "record_start", "name")
    MEDIA_PATH_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    RECORD_START_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    media_path: str
    first_frame: int
    frame_count: int
    instruction: str
    seed: int
    handles: int
    record_start: RecordStart
    name: str
    def __init__(self, media_path: _Optional[str] = ..., first_frame: _Optional[int] = ..., frame_count: _Optional[int] = ..., instruction: _Optional[str] = ..., seed: _Optional[int] = ..., handles: _Optional[int] = ..., record_start: _Optional[_Union[RecordStart, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class TimelineSource(_message.Message):
    __slots__ = ("path", "marker_color", "instruction", "seed", "in_timecode", "out_timecode", "handles", "edl_rate")
    PATH_FIELD_NUMBER: _ClassVar[int]
    MARKER_COLOR_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    IN_TIMECODE_FIELD_NUMBER: _ClassVar[int]
    OUT_TIMECODE_FIELD_NUMBER: _ClassVar[int]
    HANDLES_FIELD_NUMBER: _ClassVar[int]
    EDL_RATE_FIELD_NUMBER: _ClassVar[int]
    path: str
    marker_color: str
    instruction: str
    seed: int
    in_timecode: str
    out_timecode: str
    handles: int
    edl_rate: float
    def __init__(self, path: _Optional[str] = ..., marker_color: _Optional[str] = ..., instruction: _Optional[str] = ..., seed: _Optional[int] = ..., in_timecode: _Optional[str] = ..., out_timecode: _Optional[str] = ..., handles: _Optional[int] = ..., edl_rate: _Optional[float] = ...) -> None: ...

class SamplerSettings(_message.Message):
    __slots__ = ("warped_steps",)
    WARPED_STEPS_FIELD_NUMBER: _ClassVar[int]
    warped_steps: bool
    def __init__(self, warped_steps: _Optional[bool] = ...) -> None: ...

class MaskCacheSettings(_message.Message):
    __slots__ = ("keep_ratio", "pruned_sublayers")
    KEEP_RATIO_FIELD_NUMBER: _ClassVar[int]
    PRUNED_SUBLAYERS_FIELD_NUMBER: _ClassVar[int]
    keep_ratio: float
    pruned_sublayers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, keep_ratio: _Optional[float] = ..., pruned_sublayers: _Optional[_Iterable[str]] = ...) -> None: ...

class DetailSettings(_message.Message):
    __slots__ = ("mode", "threshold", "softness")
    MODE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SOFTNESS_FIELD_NUMBER: _ClassVar[int]
    mode: str
    threshold: float
    softness: int
    def __init__(self, mode: _Optional[str] = ..., threshold: _Optional[float] = ..., softness: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("regions", "timeline", "output_dir", "format", "label", "sampler", "mask_cache", "save_masks", "detail", "request_id")
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    TIMELINE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    MASK_CACHE_FIELD_NUMBER: _ClassVar[int]
    SAVE_MASKS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    regions: _containers.RepeatedCompositeFieldContainer[RenderRegion]
    timeline: TimelineSource
    output_dir: str
    format: OutputFormat
    label: str
    sampler: SamplerSettings
    mask_cache: MaskCacheSettings
    save_masks: bool
    detail: DetailSettings
    request_id: str
    def __init__(self, regions: _Optional[_Iterable[_Union[RenderRegion, _Mapping]]] = ..., timeline: _Optional[_Union[TimelineSource, _Mapping]] = ..., output_dir: _Optional[str] = ..., format: _Optional[_Union[OutputFormat, str]] = ..., label: _Optional[str] = ..., sampler: _Optional[_Union[SamplerSettings, _Mapping]] = ..., mask_cache: _Optional[_Union[MaskCacheSettings, _Mapping]] = ..., save_masks: _Optional[bool] = ..., detail: _Optional[_Union[DetailSettings, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RegionProgress(_message.Message):
    __slots__ = ("index", "state", "frames_done", "frame_count", "fps", "eta_seconds", "output", "otio", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    OTIO_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: JobState
    frames_done: int
    frame_count: int
    fps: float
    eta_seconds: float
    output: str
    otio: str
    error: str
    def __init__(self, index: _Optional[int] = ..., state: _Optional[_Union[JobState, str]] = ..., frames_done: _Optional[int] = ..., frame_count: _Optional[int] = ..., fps: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., output: _Optional[str] = ..., otio: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "state", "regions", "created", "label")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: JobState
    regions: _containers.RepeatedCompositeFieldContainer[RegionProgress]
    created: str
    label: str
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., regions: _Optional[_Iterable[_Union[RegionProgress, _Mapping]]] = ..., created: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
