"""probe() and read_frames() against clips made by ffmpeg and frames decoded by ffmpeg."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from media_fixtures import ffmpeg_frame, ffprobe, ffprobe_frame_count

from liveedit.errors import LiveEditError
from liveedit.sidecar.media import MediaError, probe, read_audio, read_frames

GOOD_CLIPS = ["ntsc_film", "pal", "ntsc_df", "p50", "audio", "audio_aac", "tenbit", "odd", "vfr", "rotated"]


def reference_rgb(path, n, shape, pix_fmt="rgb24", autorotate=False):
    dtype = np.uint8 if pix_fmt == "rgb24" else np.dtype("<u2")
    return np.frombuffer(ffmpeg_frame(path, n, pix_fmt, autorotate), dtype).reshape(shape)


@pytest.mark.parametrize("name", GOOD_CLIPS)
def test_probe_reports_what_the_clip_was_made_as(media_clips, name):
    recipe = media_clips.recipe(name)
    info = probe(media_clips[name])
    assert (info.width, info.height) == (recipe.width, recipe.height)
    assert info.frame_count == recipe.frames == ffprobe_frame_count(info.path)
    assert info.start_timecode == recipe.timecode
    assert info.has_audio == recipe.audio
    if name != "vfr":
        assert info.frame_rate == recipe.rate and isinstance(info.frame_rate, Fraction)
        assert info.duration == Fraction(recipe.frames) / recipe.rate
    assert info.variable_frame_rate == (name == "vfr")


def test_jittery_millisecond_timestamps_are_still_constant_23976(media_clips):
    # Matroska stores 23.976 as 0, 42, 83, 125 ms...: not variable, and the rate is exact.
    info = probe(media_clips["odd"])
    assert info.frame_rate == Fraction(24000, 1001)
    assert not info.variable_frame_rate


def test_variable_frame_rate_is_flagged_with_its_average_rate(media_clips):
    info = probe(media_clips["vfr"])
    assert info.variable_frame_rate
    # 20 frames over 760 ms of timestamps (plus one mean step): about 24.5 fps, not 25.
    assert abs(float(info.frame_rate) - 19 / 0.775) < 0.01


@pytest.mark.parametrize(
    ("name", "frame", "rate", "drop"),
    [("ntsc_film", 86400, Fraction(24000, 1001), False),
     ("ntsc_df", 107890, Fraction(30000, 1001), True),
     ("p50", 1800000, Fraction(50), False),
     ("pal", 0, Fraction(25), False)],
)
def test_start_timecode_as_a_frame_number(media_clips, name, frame, rate, drop):
    info = probe(media_clips[name])
    assert info.start_timecode_frame == frame
    assert info.drop_frame is drop


def test_drop_frame_clip_crosses_the_hour(media_clips):
    info = probe(media_clips["ntsc_df"])
    assert [info.timecode_of(n) for n in range(4)] == ["00:59:59;28", "00:59:59;29", "01:00:00;00", "01:00:00;01"]


def test_colour_tags_and_untagged_defaults(media_clips):
    tagged = probe(media_clips["ntsc_film"]).color
    assert (tagged.primaries, tagged.transfer, tagged.matrix, tagged.range) == ("bt709", "bt709", "bt709", "tv")
    untagged = probe(media_clips["pal"]).color
    assert untagged.matrix is None and untagged.range is None
    # What players assume for untagged SD (and what ffmpeg uses): BT.601, limited range.
    assert untagged.resolved(64, 48).matrix == "smpte170m"
    assert untagged.resolved(1920, 1080).matrix == "bt709"
    assert untagged.resolved(64, 48).range == "tv"


def test_ten_bit_clip_reports_its_depth(media_clips):
    info = probe(media_clips["tenbit"])
    assert (info.bit_depth, info.pixel_format, info.codec) == (10, "yuv422p10le", "prores")


def test_audio_is_described(media_clips):
    audio = probe(media_clips["audio"]).audio
    assert (audio.sample_rate, audio.channels, audio.codec) == (48000, 2, "pcm_s16le")
    assert probe(media_clips["pal"]).audio is None


def test_rotation_from_the_display_matrix(media_clips):
    path = media_clips["rotated"]
    side_data = ffprobe(path)["streams"][0].get("side_data_list", [])
    assert any(item.get("rotation") in (90, -90) for item in side_data)
    assert probe(path).rotation == 90


# --- exact frames ----------------------------------------------------------

FRAME_CASES = {
    "ntsc_film": [0, 5, 7, 13, 29],  # keyframes every 6 with B-frames: 7 and 13 need a seek and decode forward
    "ntsc_df": [2, 17, 29],
    "p50": [1, 12, 19],
    "pal": [0, 9, 19],  # untagged: BT.601 conversion, as ffmpeg does
    "audio_aac": [0, 11, 29],
    "odd": [0, 6, 11],  # 65x49: odd sizes take swscale's general path
    "vfr": [0, 3, 7, 19],
    "elementary": [0, 4, 11],  # no timestamps: numbered by decoding
}


@pytest.mark.parametrize(("name", "n"), [(name, n) for name, ns in FRAME_CASES.items() for n in ns])
def test_frame_n_is_the_frame_ffmpeg_calls_n(media_clips, name, n):
    path = media_clips[name]
    (frame,) = list(read_frames(path, n, 1))
    info = probe(path)
    assert frame.dtype == np.uint8 and frame.shape == (info.height, info.width, 3)
    assert np.array_equal(frame, reference_rgb(path, n, frame.shape))


def test_a_run_of_frames_across_keyframes_is_in_order(media_clips):
    path = media_clips["ntsc_film"]
    frames = list(read_frames(path, 4, 10))
    assert len(frames) == 10
    for offset, frame in enumerate(frames):
        assert np.array_equal(frame, reference_rgb(path, 4 + offset, frame.shape)), f"frame {4 + offset}"


def test_reading_backwards_after_reading_forwards(media_clips):
    path = media_clips["ntsc_df"]
    late = list(read_frames(path, 25, 2))
    early = list(read_frames(path, 1, 2))
    assert np.array_equal(late[1], reference_rgb(path, 26, late[1].shape))
    assert np.array_equal(early[0], reference_rgb(path, 1, early[0].shape))


def test_ten_bit_frames_keep_their_precision_as_uint16(media_clips):
    path = media_clips["tenbit"]
    (frame,) = list(read_frames(path, 5, 1, dtype=np.uint16))
    assert frame.dtype == np.uint16
    assert np.array_equal(frame, reference_rgb(path, 5, frame.shape, "rgb48le"))
    # More distinct levels than 8 bits can hold: the extra precision is real.
    assert len(np.unique(frame[..., 1])) > 256
    (eight_bit,) = list(read_frames(path, 5, 1))
    assert np.array_equal(eight_bit, reference_rgb(path, 5, frame.shape))


def test_rotation_is_applied_only_when_asked(media_clips):
    path = media_clips["rotated"]
    (stored,) = list(read_frames(path, 3, 1))
    (upright,) = list(read_frames(path, 3, 1, apply_rotation=True))
    assert stored.shape == (48, 64, 3) and upright.shape == (64, 48, 3)
    assert np.array_equal(stored, reference_rgb(path, 3, stored.shape))
    # ffmpeg's own autorotation is the reference for "upright".
    assert np.array_equal(upright, reference_rgb(path, 3, upright.shape, autorotate=True))


def test_audio_under_a_range_of_frames(media_clips):
    path = media_clips["audio"]
    clip = read_audio(path, 5, 10)  # 0.2 s .. 0.6 s at 25 fps
    assert clip.sample_rate == 48000 and clip.samples.shape == (2, 19200)
    t = (np.arange(19200) + 0.2 * 48000) / 48000
    # 16-bit PCM of 0.5*sin(440 Hz) and 0.25*sin(660 Hz), sample-aligned to the video.
    assert np.allclose(clip.samples[0], 0.5 * np.sin(2 * np.pi * 440 * t), atol=1e-3)
    assert np.allclose(clip.samples[1], 0.25 * np.sin(2 * np.pi * 660 * t), atol=1e-3)


# --- bad input -------------------------------------------------------------


def test_out_of_range_frames_are_refused_with_the_valid_range(media_clips):
    path = media_clips["pal"]
    with pytest.raises(MediaError, match=r"frames 0\.\.19.*18\.\.22"):
        read_frames(path, 18, 5)
    with pytest.raises(MediaError):
        read_frames(path, -1, 2)
    assert list(read_frames(path, 3, 0)) == []


def test_truncated_file_is_named_and_explained(media_clips):
    path = media_clips["truncated"]
    with pytest.raises(MediaError, match="truncated") as caught:
        probe(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, LiveEditError)


def test_garbage_missing_and_folder_paths_are_media_errors(media_clips, tmp_path):
    with pytest.raises(MediaError, match="cannot be opened as media"):
        probe(media_clips["garbage"])
    with pytest.raises(MediaError, match="cannot be read"):
        probe(tmp_path / "nope.mov")
    with pytest.raises(MediaError, match="not a file"):
        probe(tmp_path)
    audio_only = tmp_path / "notes.txt"
    audio_only.write_text("hello")
    with pytest.raises(MediaError):
        probe(audio_only)


def test_uint8_or_uint16_only(media_clips):
    with pytest.raises(MediaError, match="uint8 or uint16"):
        read_frames(media_clips["pal"], 0, 1, dtype=np.float32)


def test_reader_opens_media_with_pyav_19s_open(media_clips, monkeypatch):
    """PyAV 19 (the release pip picks on Python 3.12) dropped av.open's metadata_errors
    argument; the reader must still open, probe and decode (this broke the first GPU run)."""
    import av

    from liveedit.sidecar.media import read as media_read

    real_open = av.open

    def open_19(file, *args, **kwargs):
        if "metadata_errors" in kwargs:
            raise TypeError("open() got an unexpected keyword argument 'metadata_errors'")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(media_read.av, "open", open_19)
    media_read._scan.cache_clear()  # probe must open the file, not answer from its cache
    path = media_clips["pal"]
    info = probe(path)
    assert info.frame_count == media_clips.recipe("pal").frames
    frames = list(read_frames(path, 0, 2))
    assert len(frames) == 2 and frames[0].shape == (info.height, info.width, 3)
