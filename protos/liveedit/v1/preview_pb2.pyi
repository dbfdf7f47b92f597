from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class OpenPreviewRequest(_message.Message):
    __slots__ = ("media_path", "instruction", "seed", "max_height", "region_first_frame", "region_frame_count")
    MEDIA_PATH_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    REGION_FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    REGION_FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    media_path: str
    instruction: str
    seed: int
    max_height: int
    region_first_frame: int
    region_frame_count: int
    def __init__(self, media_path: _Optional[str] = ..., instruction: _Optional[str] = ..., seed: _Optional[int] = ..., max_height: _Optional[int] = ..., region_first_frame: _Optional[int] = ..., region_frame_count: _Optional[int] = ...) -> None: ...

class PreviewSession(_message.Message):
    __slots__ = ("session_id", "region_first_frame", "region_frame_count", "width", "height", "frame_rate_numerator", "frame_rate_denominator", "segment_frames", "random_weights", "model_description")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REGION_FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    REGION_FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    region_first_frame: int
    region_frame_count: int
    width: int
    height: int
    frame_rate_numerator: int
    frame_rate_denominator: int
    segment_frames: int
    random_weights: bool
    model_description: str
    def __init__(self, session_id: _Optional[str] = ..., region_first_frame: _Optional[int] = ..., region_frame_count: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., frame_rate_numerator: _Optional[int] = ..., frame_rate_denominator: _Optional[int] = ..., segment_frames: _Optional[int] = ..., random_weights: _Optional[bool] = ..., model_description: _Optional[str] = ...) -> None: ...

class SeekRequest(_message.Message):
    __slots__ = ("session_id", "frame")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    frame: int
    def __init__(self, session_id: _Optional[str] = ..., frame: _Optional[int] = ...) -> None: ...

class PreviewFrame(_message.Message):
    __slots__ = ("frame", "rgb24", "width", "height", "cached", "seek_frame")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    RGB24_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    SEEK_FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: int
    rgb24: bytes
    width: int
    height: int
    cached: bool
    seek_frame: int
    def __init__(self, frame: _Optional[int] = ..., rgb24: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., cached: _Optional[bool] = ..., seek_frame: _Optional[int] = ...) -> None: ...

class CloseSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class CloseSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
