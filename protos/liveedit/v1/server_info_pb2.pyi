from liveedit.protos.liveedit.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfoResponse(_message.Message):
    __slots__ = ("version", "model_preset", "random_weights", "model_description", "checkpoint_hash", "device", "device_name", "gpu_memory_total_bytes", "gpu_memory_free_bytes", "capabilities", "model_width", "model_height", "preview_quality", "render_executor", "render_workers")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_PRESET_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_HASH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MODEL_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_QUALITY_FIELD_NUMBER: _ClassVar[int]
    RENDER_EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    RENDER_WORKERS_FIELD_NUMBER: _ClassVar[int]
    version: str
    model_preset: str
    random_weights: bool
    model_description: str
    checkpoint_hash: str
    device: str
    device_name: str
    gpu_memory_total_bytes: int
    gpu_memory_free_bytes: int
    capabilities: Capabilities
    model_width: int
    model_height: int
    preview_quality: str
    render_executor: str
    render_workers: _containers.RepeatedCompositeFieldContainer[RenderWorker]
    def __init__(self, version: _Optional[str] = ..., model_preset: _Optional[str] = ..., random_weights: _Optional[bool] = ..., model_description: _Optional[str] = ..., checkpoint_hash: _Optional[str] = ..., device: _Optional[str] = ..., device_name: _Optional[str] = ..., gpu_memory_total_bytes: _Optional[int] = ..., gpu_memory_free_bytes: _Optional[int] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., model_width: _Optional[int] = ..., model_height: _Optional[int] = ..., preview_quality: _Optional[str] = ..., render_executor: _Optional[str] = ..., render_workers: _Optional[_Iterable[_Union[RenderWorker, _Mapping]]] = ...) -> None: ...

class RenderWorker(_message.Message):
    __slots__ = ("index", "state", "host", "node_ip", "pid", "gpu_ids", "device", "device_name", "job_id", "region_index", "frames_done", "frame_count", "error", "regions_done")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    NODE_IP_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_INDEX_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REGIONS_DONE_FIELD_NUMBER: _ClassVar[int]
    index: int
    state: str
    host: str
    node_ip: str
    pid: int
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    device: str
    device_name: str
    job_id: str
    region_index: int
    frames_done: int
    frame_count: int
    error: str
    regions_done: int
    def __init__(self, index: _Optional[int] = ..., state: _Optional[str] = ..., host: _Optional[str] = ..., node_ip: _Optional[str] = ..., pid: _Optional[int] = ..., gpu_ids: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ..., device_name: _Optional[str] = ..., job_id: _Optional[str] = ..., region_index: _Optional[int] = ..., frames_done: _Optional[int] = ..., frame_count: _Optional[int] = ..., error: _Optional[str] = ..., regions_done: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("shared_memory", "pixel_formats", "max_message_bytes", "max_instruction_chars", "first_chunk_frames", "chunk_frames")
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMATS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_INSTRUCTION_CHARS_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_FRAMES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FRAMES_FIELD_NUMBER: _ClassVar[int]
    shared_memory: bool
    pixel_formats: _containers.RepeatedScalarFieldContainer[_common_pb2.PixelFormat]
    max_message_bytes: int
    max_instruction_chars: int
    first_chunk_frames: int
    chunk_frames: int
    def __init__(self, shared_memory: _Optional[bool] = ..., pixel_formats: _Optional[_Iterable[_Union[_common_pb2.PixelFormat, str]]] = ..., max_message_bytes: _Optional[int] = ..., max_instruction_chars: _Optional[int] = ..., first_chunk_frames: _Optional[int] = ..., chunk_frames: _Optional[int] = ...) -> None: ...
