"""Tiny reference clips made with the system ffmpeg, for any test that needs real media.

Use from a test module:

    from media_fixtures import ffmpeg_frame  # the media_clips fixture is registered in conftest.py

    def test_something(media_clips):
        path = media_clips["ntsc_df"]          # generated on first use, then cached
        facts = media_clips.recipe("ntsc_df")  # what the clip is made to be (rate, frames, timecode...)

Clips are kept in pytest's cache folder (.pytest_cache/d/liveedit-media), named by a
hash of the recipe and the ffmpeg version, so they are made once per machine and
regenerated when a recipe changes. Files are written under a temporary name and
moved into place, so parallel test runs can share the folder.

Every clip is built from ffmpeg's testsrc2 pattern, whose frames all differ, so a
frame read at the wrong position never matches the reference by accident.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"

_TAGS_709 = ("-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv")
# Short GOPs with B-frames, so reading frame N usually means seeking to an
# earlier keyframe and decoding through reordered frames.
_H264 = ("-c:v", "libx264", "-preset", "veryfast", "-g", "6", "-bf", "2", "-pix_fmt", "yuv420p")


def _pattern(size: str, rate: str, duration: str | None = None) -> tuple[str, ...]:
    length = f":duration={duration}" if duration else ""
    return ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}{length}")


@dataclass(frozen=True)
class ClipRecipe:
    """An ffmpeg command (everything between `ffmpeg -y` and the output path; for
    clips without audio `-frames:v frames` is added) and the facts the clip is made to have."""

    name: str
    suffix: str
    args: tuple[str, ...]
    rate: Fraction
    frames: int
    width: int = 64
    height: int = 48
    timecode: str | None = None
    audio: bool = False
    description: str = ""
    damage: str | None = None  # "truncate": cut the file short; "garbage": not media at all
    copy_args: tuple[str, ...] = ()  # a second pass `ffmpeg -i first -c copy <copy_args>`


RECIPES: dict[str, ClipRecipe] = {
    r.name: r
    for r in [
        ClipRecipe(
            "ntsc_film", ".mov",
            _pattern("64x48", "24000/1001") + _H264 + _TAGS_709 + ("-timecode", "01:00:00:00"),
            Fraction(24000, 1001), 30, timecode="01:00:00:00",
            description="23.976 H.264 .mov starting at 01:00:00:00, Rec.709 tagged",
        ),
        ClipRecipe(
            "pal", ".mp4", _pattern("64x48", "25") + _H264,
            Fraction(25), 20, description="25 fps H.264 .mp4, no timecode, no colour tags (SD: BT.601 assumed)",
        ),
        ClipRecipe(
            "ntsc_df", ".mov",
            _pattern("64x48", "30000/1001") + _H264 + _TAGS_709 + ("-timecode", "00:59:59;28"),
            Fraction(30000, 1001), 30, timecode="00:59:59;28",
            description="29.97 drop-frame .mov starting at 00:59:59;28 (crosses the hour)",
        ),
        ClipRecipe(
            "p50", ".mov",
            _pattern("64x48", "50") + _H264 + _TAGS_709 + ("-timecode", "10:00:00:00"),
            Fraction(50), 20, timecode="10:00:00:00", description="50 fps .mov (goes on 25 fps timelines)",
        ),
        ClipRecipe(
            "audio", ".mov",
            _pattern("64x48", "25", "1")
            + ("-f", "lavfi", "-i", "aevalsrc=0.5*sin(440*2*PI*t)|0.25*sin(660*2*PI*t):s=48000:d=1")
            + _H264 + _TAGS_709 + ("-c:a", "pcm_s16le", "-timecode", "01:00:00:00"),
            Fraction(25), 25, timecode="01:00:00:00", audio=True,
            description="25 fps .mov with 1 s of stereo 48 kHz PCM (440 Hz left, 660 Hz right)",
        ),
        ClipRecipe(
            "audio_aac", ".mp4",
            _pattern("64x48", "30000/1001", "1.001")
            + ("-f", "lavfi", "-i", "aevalsrc=0.5*sin(440*2*PI*t):s=44100:d=1.001")
            + _H264 + _TAGS_709 + ("-c:a", "aac", "-b:a", "96k"),
            Fraction(30000, 1001), 30, audio=True,
            description="29.97 .mp4 with mono 44.1 kHz AAC (encoder priming, edit lists)",
        ),
        ClipRecipe(
            "tenbit", ".mov",
            # A ramp with more than 256 distinct levels, so 10-bit precision is visible.
            ("-f", "lavfi", "-i",
             "nullsrc=s=64x48:r=24000/1001,format=yuv422p10le,"
             "geq=lum='64+X*14+Y+N*3':cb='512+X*2':cr='512-Y*2'",
             "-c:v", "prores_ks", "-profile:v", "3") + _TAGS_709,
            Fraction(24000, 1001), 8, description="10-bit ProRes 422 HQ with a fine ramp",
        ),
        ClipRecipe(
            "twelvebit_444_full", ".mkv",
            # 12-bit 4:4:4, full range, odd size: every precision and range the reader converts.
            ("-f", "lavfi", "-i",
             "nullsrc=s=65x49:r=25,format=yuv444p12le,"
             "geq=lum='200+X*55+Y*3+N*7':cb='2048+X*20-Y*9':cr='2048-X*11+Y*17'",
             "-c:v", "ffv1", "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
             "-color_range", "pc"),
            Fraction(25), 4, width=65, height=49, description="12-bit 4:4:4 full-range FFV1, odd size",
        ),
        ClipRecipe(
            "tenbit_420", ".mkv",
            ("-f", "lavfi", "-i",
             "nullsrc=s=64x48:r=25,format=yuv420p10le,"
             "geq=lum='64+X*13+Y*2+N*5':cb='512+X*3':cr='512-Y*3'",
             "-c:v", "ffv1") + _TAGS_709,
            Fraction(25), 4, description="10-bit 4:2:0 limited-range FFV1",
        ),
        ClipRecipe(
            "odd", ".mkv",
            _pattern("66x50", "24000/1001") + ("-vf", "scale=65:49", "-c:v", "ffv1", "-pix_fmt", "yuv420p"),
            Fraction(24000, 1001), 12, width=65, height=49,
            description="65x49 FFV1 in Matroska (1 ms timestamps jitter around 23.976)",
        ),
        ClipRecipe(
            "vfr", ".mkv",
            _pattern("64x48", "25")
            + ("-vf", r"settb=1/1000,setpts=N*40+15*eq(mod(N\,4)\,3)", "-fps_mode", "passthrough",
               "-enc_time_base:v", "1:1000") + _H264,
            Fraction(25), 20, description="variable frame rate: every 4th frame 15 ms late",
        ),
        ClipRecipe(
            "rotated", ".mp4", _pattern("64x48", "25") + _H264,
            Fraction(25), 10, copy_args=("-metadata:s:v:0", "rotate=90"),
            description="phone-style clip stored 64x48 with a 90 degree display matrix",
        ),
        ClipRecipe(
            "elementary", ".h264", _pattern("64x48", "25") + _H264 + ("-f", "h264"),
            Fraction(25), 12, description="raw H.264 stream: no container, no timestamps",
        ),
        ClipRecipe(
            "truncated", ".mov",
            _pattern("64x48", "25") + _H264 + ("-movflags", "+faststart"),
            Fraction(25), 30, damage="truncate",
            description="index at the front, cut off after 60% of its bytes (an interrupted copy)",
        ),
        ClipRecipe(
            "garbage", ".mp4", (), Fraction(25), 0, damage="garbage",
            description="random bytes with a video file name",
        ),
    ]
}


def ffmpeg_version() -> str:
    return subprocess.run([FFMPEG, "-version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


class MediaClips:
    """Clip paths by recipe name, generated on first use into `cache_dir`."""

    def __init__(self, cache_dir: str | os.PathLike):
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._version = ffmpeg_version()

    def recipe(self, name: str) -> ClipRecipe:
        return RECIPES[name]

    def __getitem__(self, name: str) -> Path:
        recipe = RECIPES[name]
        key = hashlib.sha1(repr((recipe, self._version)).encode()).hexdigest()[:10]
        path = self.cache_dir / f"{name}-{key}{recipe.suffix}"
        if not path.exists():
            _make(recipe, path)
        return path


def _make(recipe: ClipRecipe, path: Path) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=recipe.suffix)
    os.close(handle)
    try:
        if recipe.damage == "garbage":
            Path(temp).write_bytes(hashlib.sha256(b"not a video").digest() * 64)
        else:
            # -frames:v would end the file as soon as the video is done, cutting
            # the audio short; clips with audio are sized by duration instead.
            limit = () if recipe.audio else ("-frames:v", str(recipe.frames))
            _ffmpeg(*recipe.args, *limit, temp)
            if recipe.copy_args:
                first = temp + ".first" + recipe.suffix
                os.replace(temp, first)
                try:
                    _ffmpeg("-i", first, "-map", "0", "-c", "copy", *recipe.copy_args, temp)
                finally:
                    os.unlink(first)
            if recipe.damage == "truncate":
                data = Path(temp).read_bytes()
                Path(temp).write_bytes(data[: len(data) * 6 // 10])
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def _ffmpeg(*args: str) -> None:
    command = [FFMPEG, "-nostdin", "-v", "error", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")


# --- references from the ffmpeg command line (not PyAV), to compare against ---


def ffmpeg_frame(path: str | os.PathLike, n: int, pix_fmt: str = "rgb24", autorotate: bool = False) -> bytes:
    """Raw bytes of frame `n` (0-based, presentation order) as ffmpeg decodes it."""
    command = [FFMPEG, "-nostdin", "-v", "error"]
    if not autorotate:
        command.append("-noautorotate")
    command += ["-i", str(path), "-map", "0:v:0", "-vf", rf"select=eq(n\,{n})", "-fps_mode", "passthrough",
                "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]
    result = subprocess.run(command, capture_output=True, check=True)
    if not result.stdout:
        raise RuntimeError(f"ffmpeg produced no frame {n} from {path}")
    return result.stdout


def ffprobe(path: str | os.PathLike) -> dict:
    """ffprobe's view of a file: format, streams (with tags and side data)."""
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout)


def ffprobe_frame_count(path: str | os.PathLike, stream: str = "v:0") -> int:
    """Frames counted by decoding (ffprobe -count_frames), independent of our code."""
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-count_frames", "-select_streams", stream,
         "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )
    return int(result.stdout.strip().strip(","))


@pytest.fixture(scope="session")
def media_clips(request) -> MediaClips:
    if not Path(FFMPEG).exists():
        pytest.fail("ffmpeg is needed to generate test clips; install it (apt-get install ffmpeg)")
    return MediaClips(request.config.cache.mkdir("liveedit-media"))
