"""Segments written by SegmentWriter, read back with ffprobe and PyAV."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from liveedit.errors import LiveEditError
from liveedit.sidecar.media import (
    ColorTags,
    MediaError,
    SegmentWriter,
    clamp_handles,
    probe,
    read_audio,
    read_frames,
    write_segment,
)
from media_fixtures import ffprobe, ffprobe_frame_count


def streams(path, kind):
    return [s for s in ffprobe(path)["streams"] if s["codec_type"] == kind]


def leftovers(folder: Path, keep: set[str] = frozenset()) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name not in keep)


def digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_prores_segment_keeps_rate_timecode_colour_and_frames(media_clips, tmp_path):
    source = media_clips["ntsc_film"]
    info = probe(source)
    out = write_segment(read_frames(source, 7, 10), tmp_path / "shot_v001.mov", info, first_frame=7)

    back = probe(out)
    assert (back.frame_count, back.frame_rate) == (10, Fraction(24000, 1001))
    assert ffprobe_frame_count(out) == 10
    assert back.start_timecode == info.timecode_of(7) == "01:00:00:07"
    (video,) = streams(out, "video")
    assert (video["codec_name"], video["profile"], video["pix_fmt"]) == ("prores", "HQ", "yuv422p10le")
    assert video["r_frame_rate"] == "24000/1001"
    assert (video["color_primaries"], video["color_transfer"], video["color_space"], video["color_range"]) == (
        "bt709", "bt709", "bt709", "tv")
    (timecode_track,) = streams(out, "data")  # QuickTime tmcd, what NLEs relink by
    assert timecode_track["tags"]["timecode"] == "01:00:00:07"
    assert streams(out, "audio") == []
    # ProRes 4:2:2 is close but not exact on this saturated, sharp-edged pattern.
    for written, given in zip(read_frames(out, 0, 10), read_frames(source, 7, 10)):
        assert np.abs(written.astype(int) - given).mean() < 6.0


@pytest.mark.parametrize(
    ("name", "first", "timecode"),
    [("ntsc_df", 1, "00:59:59;29"), ("ntsc_df", 3, "01:00:00;01"), ("p50", 5, "10:00:00:05")],
)
def test_start_timecode_is_the_source_timecode_of_the_first_frame(media_clips, tmp_path, name, first, timecode):
    source = media_clips[name]
    info = probe(source)
    out = write_segment(read_frames(source, first, 4), tmp_path / "seg.mov", info, first_frame=first, format="h264")
    back = probe(out)
    assert back.start_timecode == timecode
    assert back.frame_rate == info.frame_rate and back.frame_count == 4
    assert back.drop_frame == info.drop_frame
    assert streams(out, "video")[0]["codec_name"] == "h264"


def test_pcm_audio_is_the_source_audio_sample_for_sample(media_clips, tmp_path):
    source = media_clips["audio"]  # 16-bit PCM at 48 kHz
    info = probe(source)
    out = write_segment(read_frames(source, 5, 10), tmp_path / "seg.mov", info, first_frame=5,
                        audio_from=(source, 5, 10))
    (audio,) = streams(out, "audio")
    assert audio["codec_name"] == "pcm_s16le" and int(audio["sample_rate"]) == 48000
    (video,) = streams(out, "video")
    assert float(audio["duration"]) == pytest.approx(float(video["duration"]), abs=1 / 48000)
    assert np.array_equal(read_audio(out, 0, 10).samples, read_audio(source, 5, 10).samples)


def test_aac_audio_in_mp4_lasts_as_long_as_the_video(media_clips, tmp_path):
    source = media_clips["audio_aac"]
    info = probe(source)
    out = write_segment(read_frames(source, 4, 20), tmp_path / "preview.mp4", info, format="h264",
                        first_frame=4, audio_from=(source, 4, 20))
    (audio,) = streams(out, "audio")
    (video,) = streams(out, "video")
    assert audio["codec_name"] == "aac"
    # AAC works in 1024-sample frames: the durations agree within one of them.
    assert float(audio["duration"]) == pytest.approx(float(video["duration"]), abs=1024 / 44100)
    written = read_audio(out, 0, 20).samples[0]
    original = read_audio(source, 4, 20).samples[0]
    # Lossy, but the same 440 Hz tone at the same phase (not shifted by priming).
    assert np.corrcoef(written[2048:-2048], original[2048:-2048])[0, 1] > 0.99


def test_aac_source_goes_into_mov_as_24_bit_pcm(media_clips, tmp_path):
    source = media_clips["audio_aac"]
    out = write_segment(read_frames(source, 0, 6), tmp_path / "seg.mov", probe(source), first_frame=0,
                        audio_from=(source, 0, 6))
    (audio,) = streams(out, "audio")
    assert audio["codec_name"] == "pcm_s24le"
    assert int(audio["duration_ts"]) == round(6 * Fraction(1001, 30000) * 44100)


def test_audio_can_be_left_out_explicitly(media_clips, tmp_path):
    source = media_clips["audio"]
    out = write_segment(read_frames(source, 0, 3), tmp_path / "silent.mov", probe(source), first_frame=0)
    assert streams(out, "audio") == []


def test_odd_sizes_are_kept(media_clips, tmp_path):
    source = media_clips["odd"]
    info = probe(source)
    for format, name, pixel_format in [("h264", "odd.mp4", "yuv444p"), ("prores", "odd.mov", "yuv422p10le")]:
        out = write_segment(read_frames(source, 0, 3), tmp_path / name, info, first_frame=0, format=format)
        (video,) = streams(out, "video")
        assert (video["width"], video["height"], video["pix_fmt"]) == (65, 49, pixel_format)


def test_ten_bit_frames_stay_ten_bit(media_clips, tmp_path):
    source = media_clips["tenbit"]
    frames = list(read_frames(source, 0, 3, dtype=np.uint16))
    out = write_segment(frames, tmp_path / "deep.mov", probe(source), first_frame=0)
    back = list(read_frames(out, 0, 3, dtype=np.uint16))
    for written, given in zip(back, frames):
        assert np.abs(written.astype(int) - given).mean() < 256  # under one 8-bit step on average
        assert len(np.unique(written[..., 1])) > 256


@pytest.mark.parametrize(
    ("format", "name", "source_range", "written_range", "black_luma"),
    [
        ("prores", "tv.mov", "tv", "tv", 64),  # 10-bit video-range black
        ("prores", "pc.mov", "pc", "tv", 64),  # ProRes has no full-range flag: converted, not mislabelled
        ("h264", "tv.mp4", "tv", "tv", 16),
        ("h264", "pc.mp4", "pc", "pc", 0),  # H.264 says full range in its VUI
    ],
)
def test_colour_range_is_converted_and_tagged_consistently(tmp_path, format, name, source_range, written_range,
                                                           black_luma):
    black = np.zeros((48, 64, 3), np.uint8)
    out = tmp_path / name
    with SegmentWriter(out, rate=Fraction(25), format=format, color=ColorTags("bt709", "bt709", "bt709", source_range)) as writer:
        writer.write(black)
    assert streams(out, "video")[0]["color_range"] == written_range
    with av.open(str(out)) as container:
        picture = next(container.decode(video=0))
        dtype = np.uint16 if format == "prores" else np.uint8
        plane = picture.planes[0]
        rows = np.frombuffer(bytes(plane), dtype).reshape(plane.height, -1)
        luma = rows[:, : plane.width]  # without the line padding
    assert int(np.median(luma)) == black_luma
    assert int(next(read_frames(out, 0, 1)).max()) <= 1  # and it reads back as black: no lifted blacks


@pytest.mark.parametrize("matrix", ["bt709", "smpte170m", "bt2020nc"])
def test_flat_colours_survive_a_round_trip(tmp_path, matrix):
    rng = np.random.default_rng(7)
    colours = rng.integers(0, 256, (8, 3))
    picture = np.repeat(colours[None, :, :], 8, axis=1).repeat(48, axis=0).astype(np.uint8)  # 8 bars of 8 px
    out = tmp_path / "bars.mov"
    with SegmentWriter(out, rate=Fraction(25), color=ColorTags(matrix=matrix)) as writer:
        writer.write(picture)
    assert streams(out, "video")[0]["color_space"] == matrix
    back = next(read_frames(out, 0, 1)).astype(int)
    centres = back[8:40, 2::8][:, :8] - picture[8:40, 2::8][:, :8]
    # Same matrix both ways; what is left is 10-bit 4:2:2 and swscale's rounding.
    assert np.abs(centres).max() <= 4


def test_rotation_is_passed_through(media_clips, tmp_path):
    source = media_clips["rotated"]
    out = write_segment(read_frames(source, 0, 2), tmp_path / "rot.mov", probe(source), first_frame=0)
    assert probe(out).rotation == 90


def test_png_sequence_is_lossless_and_numbered_by_timecode(media_clips, tmp_path):
    source = media_clips["ntsc_film"]
    info = probe(source)
    frames = list(read_frames(source, 2, 3))
    out = write_segment(frames, tmp_path / "shot", info, first_frame=2, format="png")
    names = sorted(os.listdir(out))
    assert names == [f"shot.{86400 + n:07d}.png" for n in (2, 3, 4)]
    for name, given in zip(names, frames):
        with av.open(str(out / name)) as container:
            assert np.array_equal(next(container.decode(video=0)).to_ndarray(format="rgb24"), given)
    deep = np.full((6, 8, 3), 40000, np.uint16)
    with SegmentWriter(tmp_path / "deep", rate=Fraction(24), format="png") as writer:
        writer.write(deep)
    with av.open(str(tmp_path / "deep" / "deep.0000000.png")) as container:
        picture = next(container.decode(video=0))
        assert picture.format.name.startswith("rgb48")
        assert np.array_equal(picture.to_ndarray(format="rgb48le"), deep)


# --- atomicity and sources ---------------------------------------------------


def test_nothing_appears_under_the_final_name_until_close(media_clips, tmp_path):
    source = media_clips["pal"]
    out = tmp_path / "seg.mov"
    writer = SegmentWriter(out, rate=Fraction(25))
    frames = read_frames(source, 0, 3)
    writer.write(next(frames))
    writer.write(next(frames))
    assert not out.exists()
    (partial,) = leftovers(tmp_path)
    assert partial.startswith(".seg.mov.") and "partial" in partial
    writer.write(next(frames))
    assert writer.close() == out
    assert leftovers(tmp_path) == ["seg.mov"]
    assert probe(out).frame_count == 3


def test_a_failure_midway_leaves_nothing(media_clips, tmp_path):
    source = media_clips["pal"]
    out = tmp_path / "seg.mov"
    writer = SegmentWriter(out, rate=Fraction(25))
    for frame in read_frames(source, 0, 3):
        writer.write(frame)
    with pytest.raises(MediaError, match="frame 3 is 32x24"):
        writer.write(np.zeros((24, 32, 3), np.uint8))
    assert leftovers(tmp_path) == []
    with pytest.raises(MediaError, match="aborted"):
        writer.close()

    with pytest.raises(RuntimeError, match="editor crashed"):
        with SegmentWriter(out, rate=Fraction(25), format="h264") as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("editor crashed")
    assert leftovers(tmp_path) == []


def test_a_failed_rerender_keeps_the_previous_take(media_clips, tmp_path):
    source = media_clips["pal"]
    out = write_segment(read_frames(source, 0, 4), tmp_path / "take.mov", probe(source), first_frame=0)
    before = digest(out)
    with pytest.raises(RuntimeError):
        with SegmentWriter(out, rate=Fraction(25)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("cancelled")
    assert digest(out) == before and leftovers(tmp_path) == ["take.mov"]
    # A complete re-render replaces it.
    write_segment(read_frames(source, 4, 2), out, probe(source), first_frame=4)
    assert probe(out).frame_count == 2


def test_png_folder_replacement_is_atomic_too(media_clips, tmp_path):
    source = media_clips["pal"]
    info = probe(source)
    write_segment(read_frames(source, 0, 3), tmp_path / "seq", info, first_frame=0, format="png")
    write_segment(read_frames(source, 5, 2), tmp_path / "seq", info, first_frame=5, format="png")
    assert sorted(os.listdir(tmp_path / "seq")) == ["seq.0000005.png", "seq.0000006.png"]
    assert leftovers(tmp_path) == ["seq"]


def test_writing_over_a_source_is_refused(media_clips, tmp_path):
    source = media_clips["audio"]
    info = probe(source)
    before = digest(source)
    with pytest.raises(MediaError, match="never overwritten"):
        write_segment(read_frames(source, 0, 2), source, info, first_frame=0)
    alias = tmp_path / "alias.mov"
    alias.symlink_to(source)
    with pytest.raises(MediaError, match="never overwritten"):
        SegmentWriter(alias, rate=info.frame_rate, sources=[source])
    copy = tmp_path / "copy.mov"
    copy.write_bytes(Path(source).read_bytes())
    hard = tmp_path / "hard.mov"
    os.link(copy, hard)  # another name for the same file
    with pytest.raises(MediaError, match="never overwritten"):
        SegmentWriter(hard, rate=info.frame_rate, audio_from=(copy, 0, 2))
    assert digest(source) == before == digest(copy)


def test_audio_range_must_match_the_frames_written(media_clips, tmp_path):
    source = media_clips["audio"]
    writer = SegmentWriter(tmp_path / "seg.mov", rate=Fraction(25), audio_from=(source, 0, 10))
    for frame in read_frames(source, 0, 5):
        writer.write(frame)
    with pytest.raises(MediaError, match="5 frames were written but audio_from covers 10"):
        writer.close()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "x.mp4", "format": "prores"}, r"written as \.mov"),
        ({"path": "x.mov", "format": "gif"}, "unknown segment format"),
        ({"path": "x.mov", "rate": 23.976}, "approximate"),
        ({"path": "x.mov", "start_timecode": "01:00:00;00"}, "drop-frame"),  # at 25 fps
        ({"path": "seq", "format": "png", "audio_from": ("a.mov", 0, 1)}, "carry no audio"),
        ({"path": "x.mov", "color": ColorTags(matrix="bt9999")}, "colour tag"),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path, kwargs, message):
    kwargs = {"rate": Fraction(25), **kwargs}
    path = tmp_path / kwargs.pop("path")
    with pytest.raises(LiveEditError, match=message):
        writer = SegmentWriter(path, **kwargs)
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert leftovers(tmp_path) == []


def test_frames_must_be_rgb_arrays(tmp_path):
    writer = SegmentWriter(tmp_path / "x.mov", rate=Fraction(25))
    with pytest.raises(MediaError, match=r"float32 \[48, 64, 3\].*uint8"):
        writer.write(np.zeros((48, 64, 3), np.float32))
    empty = SegmentWriter(tmp_path / "y.mov", rate=Fraction(25))
    with pytest.raises(MediaError, match="no frames were written"):
        empty.close()
    assert leftovers(tmp_path) == []


# --- handles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "count", "handles", "media", "expected"),
    [
        (100, 48, 12, 1000, (88, 72, 12, 12)),
        (3, 10, 12, 1000, (0, 25, 3, 12)),  # clamped at the start of the media
        (990, 8, 12, 1000, (978, 22, 12, 2)),  # ...and at its end
        (0, 30, 0, 30, (0, 30, 0, 0)),
    ],
)
def test_handles_are_clamped_to_the_media(first, count, handles, media, expected):
    segment = clamp_handles(first, count, handles, media)
    assert (segment.first_frame, segment.frame_count, segment.head, segment.tail) == expected
    assert (segment.region_first_frame, segment.region_frame_count) == (first, count)


def test_regions_outside_the_media_are_refused():
    with pytest.raises(MediaError, match="outside the media"):
        clamp_handles(25, 10, 4, 30)
    with pytest.raises(MediaError, match="handles"):
        clamp_handles(0, 10, -1, 30)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_h264_segments_are_the_same_bytes_whatever_cpus_the_process_has(tmp_path):
    """x264's choices depend on its thread count, which by default follows the CPUs the process
    may use: the same frames rendered by a Ray worker pinned to one CPU gave other bytes."""
    import subprocess
    import sys

    script = """
import os, sys
from fractions import Fraction
from pathlib import Path
import numpy as np
from liveedit.sidecar.media import SegmentWriter
if sys.argv[2] == "one":
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
rng = np.random.default_rng(0)
base = rng.integers(0, 256, (240, 416, 3), dtype=np.uint8)
with SegmentWriter(Path(sys.argv[1]), rate=Fraction(24), format="h264", width=416, height=240) as w:
    for i in range(24):
        w.write(np.roll(base, 3 * i, axis=1))
"""
    outputs = []
    for cpus in ("all", "one"):
        out = tmp_path / f"{cpus}.mp4"
        subprocess.run([sys.executable, "-c", script, str(out), cpus], check=True, timeout=120)
        outputs.append(hashlib.sha256(out.read_bytes()).hexdigest())
    assert outputs[0] == outputs[1]
