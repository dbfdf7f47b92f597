"""Reading source media with PyAV: what a clip is (probe) and its exact frames.

Frame numbers are 0-based from the first frame the clip presents, in
presentation order. They come from the packets' presentation timestamps, not
from the container's estimates or from approximate seeking: probe() scans the
packets once (cheap, no decoding) and read_frames() seeks to the keyframe before
the wanted frame, decodes forward and picks frames by timestamp.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, NamedTuple

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.timeline.timebase import (
    TimecodeError,
    exact_rate,
    frame_to_timecode,
    is_drop_frame_timecode,
    timecode_to_frame,
)


class MediaError(LiveEditError):
    """A media file that cannot be read or written as asked; the message names the file."""

    kind = Kind.FAILED_PRECONDITION


# ffmpeg's names for the colour tags (what ffprobe prints and `-color_*` accepts),
# by the integer values of AVColorPrimaries / AVColorTransferCharacteristic /
# AVColorSpace / AVColorRange. 2 is "unspecified" everywhere and maps to None.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213"}
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
MATRICES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
            8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
            13: "chroma-derived-c", 14: "ictcp"}
RANGES = {1: "tv", 2: "pc"}

# Which Y'CbCr<->RGB matrix swscale uses for each matrix tag.
SWSCALE_MATRIX = {"bt709": Colorspace.ITU709, "bt470bg": Colorspace.ITU601,
                  "smpte170m": Colorspace.ITU601, "smpte240m": Colorspace.SMPTE240M,
                  "fcc": Colorspace.FCC, "bt2020nc": Colorspace.BT2020, "bt2020c": Colorspace.BT2020}

@dataclass(frozen=True)
class ColorTags:
    """Colour description of Y'CbCr media, in ffmpeg's names; None = untagged."""

    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None
    range: str | None = None  # "tv" (limited, 16-235) or "pc" (full, 0-255)

    def resolved(self, width: int, height: int) -> "ColorTags":
        """The matrix and range players assume for untagged video: BT.709 for HD
        and larger, BT.601 for SD; limited range. Primaries/transfer stay as tagged."""
        matrix = self.matrix or ("bt709" if width >= 1280 or height > 576 else "smpte170m")
        return ColorTags(self.primaries, self.transfer, matrix, self.range or "tv")


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    layout: str
    codec: str
    sample_format: str


@dataclass(frozen=True)
class MediaInfo:
    path: Path
    width: int
    height: int
    frame_rate: Fraction  # exact, e.g. Fraction(24000, 1001); the average rate when variable
    frame_count: int
    duration: Fraction  # seconds
    codec: str
    pixel_format: str
    bit_depth: int
    color: ColorTags
    rotation: int  # degrees counter-clockwise to display upright: 0, 90, 180 or 270
    start_timecode: str | None  # as stored, e.g. "01:00:00:00" or "00:59:59;28"
    start_timecode_frame: int  # that timecode as a frame number at frame_rate; 0 without one
    drop_frame: bool  # timecode counts drop-frame (only ever at 29.97 / 59.94)
    audio: AudioInfo | None
    variable_frame_rate: bool

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    def timecode_of(self, frame: int) -> str:
        """Timecode label of 0-based `frame` of this media."""
        return frame_to_timecode(self.start_timecode_frame + frame, self.frame_rate, self.drop_frame)


class _Index(NamedTuple):
    """What read_frames needs beyond MediaInfo: presentation timestamps in order."""

    info: MediaInfo
    time_base: Fraction
    pts: tuple[int, ...] | None  # None: the stream has no timestamps; frames are counted instead


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe a clip exactly. Raises MediaError for missing, broken or truncated files."""
    return _index(path).info


def _index(path: str | os.PathLike) -> _Index:
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise MediaError(f"media file {path} cannot be read ({error.strerror}); check the path") from None
    if not path.is_file():
        raise MediaError(f"media path {path} is not a file; give the path of a video file")
    # Cached by path and modification stamp: a clip is scanned once per change.
    return _scan(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _scan(path: str, _mtime_ns: int, _size: int) -> _Index:
    container = _open(Path(path))
    with container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream; LiveEdit edits video clips")
        video = container.streams.video[0]
        time_base = Fraction(video.time_base) if video.time_base else None
        packet_pts: list[int | None] = []
        packets_seen = 0
        first_frame = None
        try:
            for packet in container.demux(video):
                if packet.size == 0:
                    continue  # end-of-stream marker
                packets_seen += 1
                if first_frame is None:
                    # Decode only until the first picture: proves the stream
                    # decodes and carries the display matrix.
                    frames = video.decode(packet)
                    first_frame = frames[0] if frames else None
                if not packet.is_discard:
                    packet_pts.append(packet.pts)
            if first_frame is None:
                first_frame = next(iter(video.decode(None)), None)
        except av.FFmpegError as error:
            raise MediaError(
                f"{path} is damaged: reading stopped after {packets_seen} video packets ({error}); "
                "re-export or re-copy the file"
            ) from None
        if first_frame is None:
            raise MediaError(f"{path} contains no decodable video frames; re-export or re-copy the file")
        if video.frames and packets_seen < video.frames:
            raise MediaError(
                f"{path} is truncated: its index lists {video.frames} video frames but only "
                f"{packets_seen} are in the file; re-copy or re-export it"
            )

        if time_base and packet_pts and None not in packet_pts and len(set(packet_pts)) == len(packet_pts):
            pts: tuple[int, ...] | None = tuple(sorted(packet_pts))
            frame_count = len(pts)
            rate, variable = _frame_rate_from_pts(video, pts, time_base, path)
            if variable:
                mean_step = Fraction(pts[-1] - pts[0], max(frame_count - 1, 1)) * time_base
                duration = (pts[-1] - pts[0]) * time_base + mean_step
            else:
                duration = frame_count / rate
        else:
            # Elementary streams and some broken muxes have no usable timestamps:
            # count by decoding (slow but exact) and trust the stream's rate.
            pts = None
            frame_count = _count_by_decoding(Path(path))
            rate = exact_rate(_stream_rate(video, path))
            variable = False
            duration = frame_count / rate

        codec_context = video.codec_context
        pixel_format = codec_context.format.name if codec_context.format else first_frame.format.name
        info = MediaInfo(
            path=Path(path),
            width=first_frame.width,
            height=first_frame.height,
            frame_rate=rate,
            frame_count=frame_count,
            duration=Fraction(duration),
            codec=codec_context.name,
            pixel_format=pixel_format,
            bit_depth=max(component.bits for component in first_frame.format.components),
            color=ColorTags(
                primaries=PRIMARIES.get(int(first_frame.color_primaries)),
                transfer=TRANSFERS.get(int(first_frame.color_trc)),
                matrix=MATRICES.get(int(first_frame.colorspace)),
                range=RANGES.get(int(first_frame.color_range)),
            ),
            rotation=int(round(first_frame.rotation)) % 360 // 90 * 90,
            audio=_audio_info(container),
            variable_frame_rate=variable,
            **_start_timecode(container, video, rate, path),
        )
    return _Index(info, time_base or Fraction(1, 1), pts)


def _open(path: Path) -> av.container.InputContainer:
    try:
        try:
            return av.open(str(path), metadata_errors="replace")
        except TypeError:  # PyAV 19 dropped the argument (it decodes metadata leniently itself)
            return av.open(str(path))
    except av.FFmpegError as error:
        raise MediaError(
            f"{path} cannot be opened as media ({error}); is it a complete video file?"
        ) from None


def _stream_rate(video, path) -> Fraction:
    for rate in (video.average_rate, video.guessed_rate, video.base_rate):
        if rate:
            return Fraction(rate)
    raise MediaError(f"{path} does not say its frame rate and its frames carry no timestamps")


def _frame_rate_from_pts(video, pts, time_base, path) -> tuple[Fraction, bool]:
    """The exact rate, cross-checked against the timestamps, and whether it varies.

    The stream's declared rates are preferred when the timestamps agree with
    them (they are exact, e.g. 24000/1001); containers with coarse clocks (1 ms in
    Matroska) make single deltas jitter, so the check uses the mean step.
    """
    if len(pts) < 2:
        return exact_rate(_stream_rate(video, path)), False
    measured = Fraction(len(pts) - 1) / ((pts[-1] - pts[0]) * time_base)
    rate = None
    for candidate in (video.average_rate, video.guessed_rate, video.base_rate):
        if candidate and abs(float(Fraction(candidate) / measured) - 1) < 5e-3:
            rate = exact_rate(Fraction(candidate))
            break
    if rate is None:
        rate = exact_rate(measured.limit_denominator(1001))
    # Constant rate: every timestamp sits where the rate puts it, within the
    # rounding of the container clock (half a tick) plus 1% of a frame.
    step = 1 / (rate * time_base)  # in ticks
    tolerance = Fraction(1, 2) + step / 100
    variable = any(abs(p - pts[0] - i * step) > tolerance for i, p in enumerate(pts))
    return rate, variable


def _count_by_decoding(path: Path) -> int:
    with _open(path) as container:
        try:
            return sum(1 for _ in container.decode(video=0))
        except av.FFmpegError as error:
            raise MediaError(f"{path} is damaged: decoding failed ({error}); re-export it") from None


def _start_timecode(container, video, rate: Fraction, path) -> dict:
    """The clip's start timecode: a tmcd track, then the video stream, then the file."""
    sources = [s.metadata for s in container.streams if s.type == "data"]
    sources += [video.metadata, container.metadata]
    for metadata in sources:
        timecode = metadata.get("timecode")
        if timecode:
            try:
                frame = timecode_to_frame(timecode, rate)
            except TimecodeError as error:
                raise MediaError(f"{path}: its start timecode cannot be used: {error}") from None
            return {"start_timecode": timecode, "start_timecode_frame": frame,
                    "drop_frame": is_drop_frame_timecode(timecode)}
    return {"start_timecode": None, "start_timecode_frame": 0, "drop_frame": False}


def _audio_info(container) -> AudioInfo | None:
    if not container.streams.audio:
        return None
    audio = container.streams.audio[0].codec_context
    return AudioInfo(
        sample_rate=audio.sample_rate,
        channels=audio.channels,
        layout=audio.layout.name,
        codec=audio.name,
        sample_format=audio.format.name if audio.format else "",
    )


# --- frames ------------------------------------------------------------------


def read_frames(
    path: str | os.PathLike,
    first_frame: int,
    count: int,
    *,
    dtype: type = np.uint8,
    apply_rotation: bool = False,
) -> Iterator[np.ndarray]:
    """Frames first_frame .. first_frame+count-1 as RGB arrays [H, W, 3].

    dtype=np.uint8 gives 8-bit RGB (what the engine takes); dtype=np.uint16 gives
    the full precision of 10/12-bit media (0..65535). Y'CbCr is converted with the
    clip's own matrix and range (ColorTags.resolved for untagged clips).
    apply_rotation turns frames upright by the clip's display matrix.
    """
    index = _index(path)
    info = index.info
    _check_range(info, first_frame, count)
    if count == 0:
        return iter(())
    if np.dtype(dtype) not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise MediaError(f"read_frames gives uint8 or uint16 RGB, not {np.dtype(dtype)}")
    return _frames(index, first_frame, count, np.dtype(dtype), apply_rotation)


def _check_range(info: MediaInfo, first_frame: int, count: int) -> None:
    if first_frame < 0 or count < 0 or first_frame + count > info.frame_count:
        raise MediaError(
            f"{info.path} has frames 0..{info.frame_count - 1}; frames {first_frame}.."
            f"{first_frame + count - 1} were asked for. Check the region against the clip's length"
        )


def _frames(index: _Index, first_frame: int, count: int, dtype, apply_rotation) -> Iterator[np.ndarray]:
    info = index.info
    convert = _rgb_converter(info, dtype)
    rotate = (info.rotation // 90) if apply_rotation else 0
    with _open(info.path) as container:
        video = container.streams.video[0]
        if index.pts is None:
            decoded = ((n, f) for n, f in enumerate(_decode(container, video, info)))
        else:
            decoded = _decode_by_pts(container, video, index, first_frame, count)
        for number, frame in decoded:
            if number < first_frame:
                continue
            if number >= first_frame + count:
                break
            image = convert(frame)
            yield np.ascontiguousarray(np.rot90(image, rotate)) if rotate else image


def _decode(container, video, info: MediaInfo):
    try:
        yield from container.decode(video)
    except av.FFmpegError as error:
        raise MediaError(f"{info.path} is damaged: decoding failed ({error}); re-export it") from None


def _decode_by_pts(container, video, index: _Index, first_frame: int, count: int):
    """(frame number, frame) from the keyframe before first_frame onwards, numbered by pts."""
    wanted = index.pts[first_frame : first_frame + count]
    number_of = {p: first_frame + i for i, p in enumerate(wanted)}
    target = wanted[0]
    # Seeking lands on *a* keyframe near the target, not necessarily before it:
    # if the first picture we get is already past the target, decode from the
    # start of the file instead (exact, just slower).
    attempts = ("seek", "from start") if first_frame > 0 else ("from start",)
    for attempt in attempts:
        if attempt == "seek":
            container.seek(target, backward=True, any_frame=False, stream=video)
        elif first_frame > 0:
            container.seek(index.pts[0], backward=True, any_frame=False, stream=video)
        next_wanted = 0
        for frame in _decode(container, video, index.info):
            if frame.pts is None:
                raise MediaError(f"{index.info.path}: a decoded frame has no timestamp; re-export the clip")
            if attempt == "seek" and next_wanted == 0 and frame.pts > target:
                break  # landed after the target
            if frame.pts < target:
                continue
            if frame.pts != wanted[next_wanted]:
                raise MediaError(
                    f"{index.info.path}: frame {first_frame + next_wanted} could not be decoded "
                    "(the file is damaged there); re-export or re-copy it"
                )
            yield number_of[frame.pts], frame
            next_wanted += 1
            if next_wanted == len(wanted):
                return
        else:
            if attempt == "from start":
                raise MediaError(
                    f"{index.info.path}: frames from {first_frame + next_wanted} on could not be "
                    "decoded (the file ends early or is damaged); re-copy it"
                )


def _rgb_converter(info: MediaInfo, dtype):
    """frame -> RGB array, converting Y'CbCr with the clip's own matrix and range."""
    rgb_format = "rgb24" if dtype == np.uint8 else "rgb48le"
    # Bicubic is the ffmpeg command line's default: chroma of odd-sized frames
    # is then upsampled exactly as ffmpeg (and our reference tests) do it.
    if info.color.matrix == "gbr" or info.pixel_format.startswith(("gbr", "rgb", "bgr")):
        return lambda frame: frame.to_ndarray(format=rgb_format, interpolation=Interpolation.BICUBIC)
    color = info.color.resolved(info.width, info.height)
    matrix = SWSCALE_MATRIX.get(color.matrix, Colorspace.ITU709)
    # yuvj* formats are full range whatever the tag says.
    full = color.range == "pc" or info.pixel_format.startswith("yuvj")
    source_range = ColorRange.JPEG if full else ColorRange.MPEG

    def convert(frame):
        return frame.to_ndarray(
            format=rgb_format,
            interpolation=Interpolation.BICUBIC,
            src_colorspace=matrix,
            src_color_range=source_range,
            dst_color_range=ColorRange.JPEG,
        )

    return convert


# --- audio -------------------------------------------------------------------


class AudioClip(NamedTuple):
    samples: np.ndarray  # float32 [channels, n], -1..1
    sample_rate: int
    layout: str
    sample_format: str  # the source's, so a writer can keep its precision


def frame_times(path: str | os.PathLike, first_frame: int, count: int) -> tuple[Fraction, Fraction]:
    """Start and end (seconds, on the file's clock) of frames first_frame .. +count."""
    index = _index(path)
    info = index.info
    _check_range(info, first_frame, count)
    if index.pts is None:
        return first_frame / info.frame_rate, (first_frame + count) / info.frame_rate
    start = index.pts[first_frame] * index.time_base
    if first_frame + count < len(index.pts):
        return start, index.pts[first_frame + count] * index.time_base
    end = (index.pts[-1] * index.time_base) + (1 / info.frame_rate)
    return start, end


def read_audio(path: str | os.PathLike, first_frame: int, count: int) -> AudioClip:
    """The clip's audio under video frames first_frame .. +count, sample-exact.

    Where the audio stream starts late or ends early the gap is silence, so the
    result always lasts exactly as long as those frames.
    """
    info = probe(path)
    if info.audio is None:
        raise MediaError(f"{info.path} has no audio to copy; write the segment without audio")
    start, end = frame_times(path, first_frame, count)
    rate = info.audio.sample_rate
    length = round((end - start) * rate)
    samples = np.zeros((info.audio.channels, length), np.float32)
    with _open(info.path) as container:
        stream = container.streams.audio[0]
        for attempt in ("seek", "from start") if start > 0 else ("from start",):
            if attempt == "seek":
                container.seek(int(start / Fraction(stream.time_base)), backward=True, any_frame=False, stream=stream)
            elif start > 0:
                container.seek(0, backward=True, any_frame=False, stream=stream)
            if _fill_audio(container, stream, samples, start, rate, info.path, check_start=attempt == "seek"):
                break
    return AudioClip(samples, rate, info.audio.layout, info.audio.sample_format)


def _fill_audio(container, stream, samples, start, rate, path, check_start) -> bool:
    """Decode into `samples` (which begin at `start` seconds); False if the first
    decoded frame already begins after `start` (the seek overshot)."""
    length = samples.shape[1]
    first = True
    try:
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            offset = round((frame.pts * Fraction(frame.time_base) - start) * rate)
            if first and check_start and offset > 0:
                return False
            first = False
            if offset >= length:
                break
            data = _planar_float(frame)
            lo, hi = max(0, -offset), min(data.shape[1], length - offset)
            if hi > lo:
                samples[:, offset + lo : offset + hi] = data[:, lo:hi]
    except av.FFmpegError as error:
        raise MediaError(f"{path}: its audio is damaged ({error}); copy the segment without audio") from None
    return True


def _planar_float(frame) -> np.ndarray:
    """Any decoded audio frame as float32 [channels, samples]."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128) / 128
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    return data.astype(np.float32)
