from liveedit.protos.liveedit.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EditRequest(_message.Message):
    __slots__ = ("start", "frame", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: EditStart
    frame: SourceFrame
    end: EditEnd
    def __init__(self, start: _Optional[_Union[EditStart, _Mapping]] = ..., frame: _Optional[_Union[SourceFrame, _Mapping]] = ..., end: _Optional[_Union[EditEnd, _Mapping]] = ...) -> None: ...

class EditStart(_message.Message):
    __slots__ = ("instruction", "seed", "width", "height", "pixel_format", "transport", "ring", "color", "label")
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PIXEL_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    RING_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    instruction: str
    seed: int
    width: int
    height: int
    pixel_format: _common_pb2.PixelFormat
    transport: _common_pb2.FrameTransport
    ring: _common_pb2.SharedMemoryRing
    color: _common_pb2.ColorDescription
    label: str
    def __init__(self, instruction: _Optional[str] = ..., seed: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., pixel_format: _Optional[_Union[_common_pb2.PixelFormat, str]] = ..., transport: _Optional[_Union[_common_pb2.FrameTransport, str]] = ..., ring: _Optional[_Union[_common_pb2.SharedMemoryRing, _Mapping]] = ..., color: _Optional[_Union[_common_pb2.ColorDescription, _Mapping]] = ..., label: _Optional[str] = ...) -> None: ...

class SourceFrame(_message.Message):
    __slots__ = ("index", "pixels")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    index: int
    pixels: _common_pb2.FramePixels
    def __init__(self, index: _Optional[int] = ..., pixels: _Optional[_Union[_common_pb2.FramePixels, _Mapping]] = ...) -> None: ...

class EditEnd(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("accepted", "frame", "chunk", "finished")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    accepted: EditAccepted
    frame: EditedFrame
    chunk: _common_pb2.ChunkStatistics
    finished: EditFinished
    def __init__(self, accepted: _Optional[_Union[EditAccepted, _Mapping]] = ..., frame: _Optional[_Union[EditedFrame, _Mapping]] = ..., chunk: _Optional[_Union[_common_pb2.ChunkStatistics, _Mapping]] = ..., finished: _Optional[_Union[EditFinished, _Mapping]] = ...) -> None: ...

class EditAccepted(_message.Message):
    __slots__ = ("transport", "fallback_reason", "random_weights", "model_description", "color")
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    transport: _common_pb2.FrameTransport
    fallback_reason: str
    random_weights: bool
    model_description: str
    color: _common_pb2.ColorDescription
    def __init__(self, transport: _Optional[_Union[_common_pb2.FrameTransport, str]] = ..., fallback_reason: _Optional[str] = ..., random_weights: _Optional[bool] = ..., model_description: _Optional[str] = ..., color: _Optional[_Union[_common_pb2.ColorDescription, _Mapping]] = ...) -> None: ...

class EditedFrame(_message.Message):
    __slots__ = ("index", "pixels")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    index: int
    pixels: _common_pb2.FramePixels
    def __init__(self, index: _Optional[int] = ..., pixels: _Optional[_Union[_common_pb2.FramePixels, _Mapping]] = ...) -> None: ...

class EditFinished(_message.Message):
    __slots__ = ("frames_in", "frames_out")
    FRAMES_IN_FIELD_NUMBER: _ClassVar[int]
    FRAMES_OUT_FIELD_NUMBER: _ClassVar[int]
    frames_in: int
    frames_out: int
    def __init__(self, frames_in: _Optional[int] = ..., frames_out: _Optional[int] = ...) -> None: ...
