from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class PixelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_FORMAT_UNSPECIFIED: _ClassVar[PixelFormat]
    PIXEL_FORMAT_RGB24: _ClassVar[PixelFormat]

class FrameTransport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_TRANSPORT_UNSPECIFIED: _ClassVar[FrameTransport]
    FRAME_TRANSPORT_IN_MESSAGE: _ClassVar[FrameTransport]
    FRAME_TRANSPORT_SHARED_MEMORY: _ClassVar[FrameTransport]
PIXEL_FORMAT_UNSPECIFIED: PixelFormat
PIXEL_FORMAT_RGB24: PixelFormat
FRAME_TRANSPORT_UNSPECIFIED: FrameTransport
FRAME_TRANSPORT_IN_MESSAGE: FrameTransport
FRAME_TRANSPORT_SHARED_MEMORY: FrameTransport

class SharedMemoryRing(_message.Message):
    __slots__ = ("name", "slot_count", "slot_bytes", "header_bytes", "nonce")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SLOT_BYTES_FIELD_NUMBER: _ClassVar[int]
    HEADER_BYTES_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    slot_count: int
    slot_bytes: int
    header_bytes: int
    nonce: bytes
    def __init__(self, name: _Optional[str] = ..., slot_count: _Optional[int] = ..., slot_bytes: _Optional[int] = ..., header_bytes: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class ColorDescription(_message.Message):
    __slots__ = ("primaries", "transfer", "range")
    PRIMARIES_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    primaries: str
    transfer: str
    range: str
    def __init__(self, primaries: _Optional[str] = ..., transfer: _Optional[str] = ..., range: _Optional[str] = ...) -> None: ...

class FramePixels(_message.Message):
    __slots__ = ("data", "slot")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    slot: int
    def __init__(self, data: _Optional[bytes] = ..., slot: _Optional[int] = ...) -> None: ...

class ChunkStatistics(_message.Message):
    __slots__ = ("index", "source_frames", "latent_frames", "encode_seconds", "transformer_seconds", "decode_seconds", "reused_token_fraction", "queued_seconds")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FRAMES_FIELD_NUMBER: _ClassVar[int]
    LATENT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    ENCODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REUSED_TOKEN_FRACTION_FIELD_NUMBER: _ClassVar[int]
    QUEUED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    index: int
    source_frames: int
    latent_frames: int
    encode_seconds: float
    transformer_seconds: float
    decode_seconds: float
    reused_token_fraction: float
    queued_seconds: float
    def __init__(self, index: _Optional[int] = ..., source_frames: _Optional[int] = ..., latent_frames: _Optional[int] = ..., encode_seconds: _Optional[float] = ..., transformer_seconds: _Optional[float] = ..., decode_seconds: _Optional[float] = ..., reused_token_fraction: _Optional[float] = ..., queued_seconds: _Optional[float] = ...) -> None: ...
