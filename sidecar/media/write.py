"""Writing edited segments: a new file per segment, never a source, never half-written.

A segment plays at its source's exact rate, starts at the source timecode of its
first frame (a QuickTime tmcd track), carries the source's colour tags and either
the source audio for the same frames or, explicitly, none. Frames are pushed one
at a time as the editor yields them; everything goes to a hidden temporary name
in the output folder and is renamed into place only when the segment is complete.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, NamedTuple

import av
import numpy as np
from av.video.reformatter import ColorRange, Interpolation

from liveedit.sidecar.media.read import (
    MATRICES,
    PRIMARIES,
    RANGES,
    SWSCALE_MATRIX,
    TRANSFERS,
    ColorTags,
    MediaError,
    MediaInfo,
    probe,
    read_audio,
)
from liveedit.sidecar.outputs import partial_path
from liveedit.sidecar.timeline.timebase import exact_rate, timecode_to_frame


@dataclass(frozen=True)
class SegmentFormat:
    """How one output format is encoded. Config as data: add a format here."""

    codec: str | None  # None: image sequence
    pixel_format: str
    containers: tuple[str, ...]  # allowed file suffixes, first is the default
    options: dict
    odd_size_pixel_format: str | None = None  # when 4:2:0 cannot hold an odd width/height
    limited_range_only: bool = False  # the codec has no full-range flag: always write video range


SEGMENT_FORMATS = {
    # ProRes 422 HQ, 10-bit: the mezzanine every NLE relinks without complaint.
    "prores": SegmentFormat("prores_ks", "yuv422p10le", (".mov",), {"profile": "3", "vendor": "apl0"},
                            limited_range_only=True),
    # H.264 for previews; 4:4:4 only when the frame size is odd (4:2:0 cannot encode it). A fixed
    # thread count: x264's choices depend on it, and by default it follows the CPUs the process
    # may use, so the same frames gave other bytes on another machine or Ray worker.
    "h264": SegmentFormat("libx264", "yuv420p", (".mp4", ".mov"), {"crf": "18", "preset": "medium", "threads": "8"},
                          odd_size_pixel_format="yuv444p"),
    # Numbered PNGs in a folder (8-bit or 16-bit RGB, as given).
    "png": SegmentFormat(None, "rgb24", ("",), {}),
}

# Audio codec by container: uncompressed in QuickTime, AAC in MP4.
AUDIO_CODECS = {".mov": "pcm_s24le", ".mp4": "aac"}
_SIXTEEN_BIT = {"u8", "u8p", "s16", "s16p"}  # sources where 16-bit PCM loses nothing


class AudioRange(NamedTuple):
    """Source audio to copy: the audio under frames first_frame .. +count of `path`."""

    path: str | os.PathLike
    first_frame: int
    count: int


@dataclass(frozen=True)
class HandleRange:
    """A region widened by handles, clamped to the media."""

    first_frame: int  # first frame of the segment, handle included
    frame_count: int  # frames in the segment, handles included
    head: int  # handle frames actually available before the region
    tail: int  # ... and after it

    @property
    def region_first_frame(self) -> int:
        return self.first_frame + self.head

    @property
    def region_frame_count(self) -> int:
        return self.frame_count - self.head - self.tail


def clamp_handles(first_frame: int, frame_count: int, handles: int, media_frame_count: int) -> HandleRange:
    """The segment for region first_frame .. +frame_count with `handles` frames each
    side, as far as the media goes (a region at frame 3 gets a 3-frame head)."""
    if handles < 0:
        raise MediaError(f"handles must be 0 or more frames, not {handles}")
    if first_frame < 0 or frame_count <= 0 or first_frame + frame_count > media_frame_count:
        raise MediaError(
            f"region frames {first_frame}..{first_frame + frame_count - 1} are outside the media "
            f"(frames 0..{media_frame_count - 1}); check the region"
        )
    head = min(handles, first_frame)
    tail = min(handles, media_frame_count - first_frame - frame_count)
    return HandleRange(first_frame - head, frame_count + head + tail, head, tail)


class SegmentWriter:
    """Incremental, atomic segment writer.

        with SegmentWriter(out, rate=info.frame_rate, start_timecode=info.timecode_of(first),
                           color=info.color, audio_from=(info.path, first, count)) as writer:
            for frame in edited_frames:
                writer.write(frame)       # uint8 or uint16 RGB [H, W, 3]
        # leaving the block closes (renames into place); an exception aborts instead

    `path` is a .mov (ProRes, or H.264), a .mp4 (H.264) or, for PNG, a folder.
    `sources`: input files the output must never replace (audio_from's file is
    always one). An earlier output under the same name is replaced atomically.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        rate: Fraction,
        format: str = "prores",
        width: int | None = None,
        height: int | None = None,
        start_timecode: str | None = None,
        color: ColorTags | None = None,
        audio_from: AudioRange | tuple | None = None,
        rotation: int = 0,
        sources: Iterable[str | os.PathLike] = (),
    ):
        if format not in SEGMENT_FORMATS:
            raise MediaError(f"unknown segment format {format!r}; use one of {', '.join(SEGMENT_FORMATS)}")
        self.path = Path(path)
        self.format = format
        self.rate = _exact_rate(rate)
        self.start_timecode = start_timecode
        self.color = color or ColorTags()
        for table, name in ((PRIMARIES, self.color.primaries), (TRANSFERS, self.color.transfer),
                            (MATRICES, self.color.matrix), (RANGES, self.color.range)):
            _tag_value(table, name)  # unknown names fail here, before any file exists
        self.rotation = rotation
        self.frames_written = 0
        self._spec = SEGMENT_FORMATS[format]
        self._suffix = self.path.suffix.lower() if self._spec.codec else ""
        if self._spec.codec and self._suffix not in self._spec.containers:
            raise MediaError(
                f"{self.path}: {format} segments are written as {' or '.join(self._spec.containers)} files; "
                "change the output name"
            )
        if start_timecode is not None:
            self._first_number = timecode_to_frame(start_timecode, self.rate)  # checks it, too
        else:
            self._first_number = 0
        self._audio = None
        self._audio_range = AudioRange(*audio_from) if audio_from is not None else None
        self._sources = [Path(p) for p in sources]
        if self._audio_range is not None:
            self._sources.append(Path(self._audio_range.path))
            if not self._spec.codec:
                raise MediaError(f"{self.path}: PNG sequences carry no audio; write it with audio_from=None")
        self._refuse_sources()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Hidden, unique, in the destination folder: os.replace is then an atomic rename.
        # Its name carries this process's id and this machine's name: a later run on this
        # machine removes it if this process is killed before it can (outputs.remove_dead_partials);
        # one on another machine sharing the folder leaves it alone.
        self._temp = partial_path(self.path, self._suffix)
        self._container = None
        self.color_note = ""  # what was converted of the source's colour, if anything (output_color)
        self._state = "new"
        if self._audio_range is not None and probe(self._audio_range.path).has_audio:
            self._audio = read_audio(*self._audio_range)
        self._size = None
        if width is not None and height is not None:
            self._open(int(width), int(height))

    # -- public --------------------------------------------------------------

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame (uint8 [H, W, 3], or uint16 for more than 8 bits)."""
        if self._state in ("closed", "aborted"):
            raise MediaError(f"{self.path}: the segment is already {self._state}; start a new writer")
        try:
            frame = self._checked(frame)
            if self._state == "new":
                self._open(frame.shape[1], frame.shape[0])
                self._checked(frame)
            if self._audio is not None and self.frames_written >= self._audio_range.count:
                raise MediaError(
                    f"{self.path}: frame {self.frames_written} is past the {self._audio_range.count} frames "
                    "whose audio is being copied; give audio_from the segment's full frame range"
                )
            if self._spec.codec:
                self._encode_video(frame)
            else:
                self._write_png(frame)
            self.frames_written += 1
            if self._audio is not None:
                self._encode_audio(upto_frames=self.frames_written)
        except av.FFmpegError as error:
            self.abort()
            raise MediaError(f"{self.path}: encoding frame {self.frames_written} failed ({error})") from None
        except Exception:
            self.abort()
            raise

    def close(self) -> Path:
        """Finish the file and move it into place; returns the final path."""
        if self._state == "closed":
            return self.path
        if self._state == "aborted":
            raise MediaError(f"{self.path}: the segment was aborted; nothing was saved")
        try:
            if self.frames_written == 0:
                raise MediaError(f"{self.path}: no frames were written; nothing was saved")
            if self._audio is not None and self.frames_written != self._audio_range.count:
                raise MediaError(
                    f"{self.path}: {self.frames_written} frames were written but audio_from covers "
                    f"{self._audio_range.count}; the segment would go out of sync, so nothing was saved"
                )
            if self._spec.codec:
                if self._audio is not None:
                    self._encode_audio(upto_frames=self.frames_written, final=True)
                    self._mux(self._audio_stream.encode(None))
                self._mux(self._video.encode(None))
                self._container.close()
                self._container = None
            self._refuse_sources()
            self._move_into_place()
        except av.FFmpegError as error:
            self.abort()
            raise MediaError(f"{self.path}: finishing the segment failed ({error}); nothing was saved") from None
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; nothing appears under the final name."""
        if self._state in ("closed", "aborted"):
            return
        self._state = "aborted"
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # already failing: the temp file is removed below anyway
                pass
            self._container = None
        if self._temp.is_dir():
            shutil.rmtree(self._temp, ignore_errors=True)
        else:
            self._temp.unlink(missing_ok=True)

    def __enter__(self) -> "SegmentWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- opening -----------------------------------------------------------

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        self._state = "open"
        if not self._spec.codec:
            os.mkdir(self._temp)
            return
        odd = width % 2 or height % 2
        self._pixel_format = (self._spec.odd_size_pixel_format if odd and self._spec.odd_size_pixel_format
                              else self._spec.pixel_format)
        self._tags, self._file_tags, self.color_note = output_color(self.color, width, height,
                                                                    self._spec.limited_range_only)
        options = {"movflags": "+faststart", "write_tmcd": "1"} if self._suffix == ".mp4" else {}
        try:
            self._container = av.open(str(self._temp), "w", format=self._suffix.lstrip("."), options=options)
            if self.start_timecode:
                # The mov/mp4 muxer turns this into a tmcd track (';' = drop-frame).
                self._container.metadata["timecode"] = self.start_timecode
            if self.color_note:  # what was converted, in the file itself (docs/architecture.md)
                self._container.metadata["comment"] = self.color_note
            video = self._container.add_stream(self._spec.codec, rate=self.rate, options=dict(self._spec.options))
            video.width, video.height, video.pix_fmt = width, height, self._pixel_format
            video.time_base = self._frame_time_base = 1 / self.rate  # the muxer may change the stream's later
            context = video.codec_context
            context.color_primaries = _tag_value(PRIMARIES, self._file_tags.primaries)
            context.color_trc = _tag_value(TRANSFERS, self._file_tags.transfer)
            context.colorspace = _tag_value(MATRICES, self._file_tags.matrix)
            context.color_range = _tag_value(RANGES, self._file_tags.range)
            if self.rotation:
                video.set_display_rotation(self.rotation)
            self._video = video
            if self._audio is not None:
                self._open_audio()
        except av.FFmpegError as error:
            self.abort()
            raise MediaError(f"{self.path}: cannot start writing ({error})") from None

    def _open_audio(self) -> None:
        codec = AUDIO_CODECS[self._suffix]
        if codec == "pcm_s24le" and self._audio.sample_format in _SIXTEEN_BIT:
            codec = "pcm_s16le"
        stream = self._container.add_stream(codec, rate=self._audio.sample_rate, layout=self._audio.layout)
        stream.time_base = Fraction(1, self._audio.sample_rate)
        self._audio_stream = stream
        self._audio_codec = codec
        self._audio_done = 0  # samples handed to the encoder

    # -- video ---------------------------------------------------------------

    def _checked(self, frame) -> np.ndarray:
        frame = np.asarray(frame)
        number = self.frames_written
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype not in (np.uint8, np.uint16):
            raise MediaError(
                f"{self.path}: frame {number} is {frame.dtype} {list(frame.shape)}; segments take "
                "RGB frames as uint8 (or uint16) arrays [height, width, 3]"
            )
        if self._size is not None and (frame.shape[1], frame.shape[0]) != self._size:
            raise MediaError(
                f"{self.path}: frame {number} is {frame.shape[1]}x{frame.shape[0]} but the segment is "
                f"{self._size[0]}x{self._size[1]}; all frames of a segment have one size"
            )
        return np.ascontiguousarray(frame)

    def _encode_video(self, frame: np.ndarray) -> None:
        rgb = av.VideoFrame.from_ndarray(frame, format="rgb24" if frame.dtype == np.uint8 else "rgb48le")
        picture = rgb.reformat(
            format=self._pixel_format,
            dst_colorspace=SWSCALE_MATRIX.get(self._tags.matrix),
            dst_color_range=ColorRange.JPEG if self._tags.range == "pc" else ColorRange.MPEG,
            interpolation=Interpolation.BICUBIC,
        )
        # The encoders copy colour tags from each picture: the source's, or what we converted to.
        picture.colorspace = _tag_value(MATRICES, self._file_tags.matrix)
        picture.color_range = _tag_value(RANGES, self._file_tags.range)
        picture.color_primaries = _tag_value(PRIMARIES, self._file_tags.primaries)
        picture.color_trc = _tag_value(TRANSFERS, self._file_tags.transfer)
        picture.pts = self.frames_written
        picture.time_base = self._frame_time_base
        self._mux(self._video.encode(picture))

    def _write_png(self, frame: np.ndarray) -> None:
        # Numbered by the source timecode's frame number, so the sequence relinks.
        number = self._first_number + self.frames_written
        encoder = av.CodecContext.create("png", "w")
        encoder.width, encoder.height = self._size
        encoder.pix_fmt = "rgb24" if frame.dtype == np.uint8 else "rgb48be"
        picture = av.VideoFrame.from_ndarray(frame, format="rgb24" if frame.dtype == np.uint8 else "rgb48le")
        picture = picture.reformat(format=encoder.pix_fmt)
        data = b"".join(bytes(packet) for packet in [*encoder.encode(picture), *encoder.encode(None)])
        (self._temp / f"{self.path.name}.{number:07d}.png").write_bytes(data)

    # -- audio ---------------------------------------------------------------

    def _encode_audio(self, upto_frames: int, final: bool = False) -> None:
        """Hand the encoder the source audio under the frames written so far."""
        samples = self._audio.samples
        due = min(round(Fraction(upto_frames) / self.rate * self._audio.sample_rate), samples.shape[1])
        chunk = 1024 if self._audio_codec == "aac" else None  # AAC encodes fixed 1024-sample frames
        while self._audio_done < due:
            end = due
            if chunk:
                end = self._audio_done + chunk
                if end > due and not final:
                    break  # wait for more frames to fill a whole AAC frame
                end = min(end, due)
            self._mux(self._audio_stream.encode(self._audio_frame(samples[:, self._audio_done : end])))
            self._audio_done = end

    def _audio_frame(self, block: np.ndarray) -> av.AudioFrame:
        layout = self._audio.layout
        if self._audio_codec == "aac":
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32), format="fltp", layout=layout)
        else:
            bits = 16 if self._audio_codec == "pcm_s16le" else 32  # s24 is carried in the top of s32
            scale = float(2 ** (bits - 1))
            ints = np.clip(np.round(block * scale), -scale, scale - 1).astype(np.int16 if bits == 16 else np.int32)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(ints.T.reshape(1, -1)), format="s16" if bits == 16 else "s32", layout=layout
            )
        frame.sample_rate = self._audio.sample_rate
        frame.pts = self._audio_done
        frame.time_base = Fraction(1, self._audio.sample_rate)
        return frame

    # -- files ---------------------------------------------------------------

    def _mux(self, packets) -> None:
        self._container.mux(packets)

    def _refuse_sources(self) -> None:
        for source in self._sources:
            if _same_file(self.path, source):
                raise MediaError(
                    f"{self.path} is a source of this segment ({source}); sources are never overwritten. "
                    "Choose another output name"
                )

    def _move_into_place(self) -> None:
        if self._temp.is_dir() and self.path.exists():
            # A folder cannot be renamed over a non-empty one: set the old one aside first.
            old = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(self.path, old)
            os.replace(self._temp, self.path)
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            os.replace(self._temp, self.path)


def write_segment(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    like: MediaInfo,
    *,
    first_frame: int | None = None,
    format: str = "prores",
    start_timecode: str | None = None,
    audio_from: AudioRange | tuple | None = None,
    color: ColorTags | None = None,
    rotation: int | None = None,
) -> Path:
    """Write `frames` as a segment shaped like the source `like` (its exact rate,
    colour tags and display rotation); the start timecode is the source timecode of
    `first_frame` unless given. Returns the final path."""
    if start_timecode is None and first_frame is not None:
        start_timecode = like.timecode_of(first_frame)
    writer = SegmentWriter(
        path,
        rate=like.frame_rate,
        format=format,
        start_timecode=start_timecode,
        color=color or like.color,
        audio_from=audio_from,
        rotation=like.rotation if rotation is None else rotation,
        sources=[like.path],
    )
    with writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def _exact_rate(rate) -> Fraction:
    """The rate to write: given exactly (a float that is not a whole number cannot say which
    rate it means), then snapped by the one rule every rate follows (timeline/timebase.py)."""
    if isinstance(rate, float) and not rate.is_integer():
        raise MediaError(
            f"frame rate {rate} is approximate; give it exactly, e.g. Fraction(24000, 1001) for 23.976"
        )
    try:
        rate = Fraction(rate)
    except (TypeError, ValueError):
        raise MediaError(f"frame rate {rate!r} is not a number; give e.g. Fraction(25) or '24000/1001'") from None
    if rate <= 0:
        raise MediaError(f"frame rate {rate} must be positive")
    return exact_rate(rate)


def output_color(source: ColorTags, width: int, height: int,
                 limited_range_only: bool) -> tuple[ColorTags, ColorTags, str]:
    """How a segment's pixels are converted, how the file is tagged, and what (if anything)
    was converted, in words. The file keeps the source's tags, untagged ones too (converted
    with what players assume for untagged video, so it looks the same); only what the
    encoder cannot carry is converted, and then tagged as converted and said."""
    conversion = source.resolved(width, height)
    tags = source
    notes = []
    if conversion.matrix not in SWSCALE_MATRIX:  # e.g. "ycgco": no converter for it
        notes.append(f"LiveEdit converted the {source.matrix} matrix of the source to BT.709, which the "
                     "encoder supports")
        conversion = ColorTags(conversion.primaries, conversion.transfer, "bt709", conversion.range)
        tags = ColorTags(tags.primaries, tags.transfer, "bt709", tags.range)
    if limited_range_only and conversion.range != "tv":
        # ProRes decoders read every file as video range; full-range pixels would come back
        # with lifted blacks, so convert to video range, tag it, and say so.
        notes.append("LiveEdit converted the full range source (0-255) to video range (16-235): ProRes is "
                     "read as video range by every decoder; use --format h264 or png to keep full range")
        conversion = ColorTags(conversion.primaries, conversion.transfer, conversion.matrix, "tv")
        tags = ColorTags(tags.primaries, tags.transfer, tags.matrix, "tv")
    return conversion, tags, "; ".join(notes)


def _tag_value(table: dict[int, str], name: str | None) -> int:
    if name is None:
        return 2  # unspecified
    for value, known in table.items():
        if known == name:
            return value
    raise MediaError(f"colour tag {name!r} is not one ffmpeg knows; use one of {', '.join(table.values())}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # catches hard links and symlinks
    except OSError:
        pass
    return a.resolve() == b.resolve()
