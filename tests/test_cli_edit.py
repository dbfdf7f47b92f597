"""`liveedit edit` end to end with the tiny model (random weights): a playable file with
the source's frame count, rate, duration and start timecode, an .otio next to it, and
the source left untouched."""

from __future__ import annotations

import hashlib
from fractions import Fraction

import opentimelineio as otio
import pytest

from liveedit.cli import main
from liveedit.sidecar.media.read import probe
from media_fixtures import ffprobe, ffprobe_frame_count


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("clip", ["ntsc_film", "ntsc_df"])
def test_edit_writes_a_playable_clip_and_otio(media_clips, tmp_path, capsys, clip):
    source = media_clips[clip]
    before = _sha(source)
    src = probe(source)
    assert main(["edit", str(source), "-p", "make the fur snowy white", "-o", str(tmp_path),
                 "--model", "tiny", "--format", "h264"]) == 0
    out = capsys.readouterr()
    assert "RANDOM" in out.out + out.err

    movs = list(tmp_path.glob("*.mov"))
    assert len(movs) == 1
    edited = probe(movs[0])
    assert ffprobe_frame_count(movs[0]) == src.frame_count
    assert edited.frame_count == src.frame_count
    assert edited.frame_rate == src.frame_rate
    assert Fraction(edited.frame_count) / edited.frame_rate == Fraction(src.frame_count) / src.frame_rate
    assert (edited.width, edited.height) == (src.width, src.height)
    assert edited.start_timecode == src.start_timecode
    stream = ffprobe(movs[0])["streams"][0]
    assert stream["codec_name"] == "h264"

    timeline = otio.adapters.read_from_file(str(next(tmp_path.glob("*.otio"))))
    liveedit_tracks = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    assert len(liveedit_tracks) == 1
    clips = list(liveedit_tracks[0].find_clips())
    assert clips and clips[0].media_reference.target_url.endswith(movs[0].name)
    assert clips[0].metadata["liveedit"]["instruction"] == "make the fur snowy white"
    assert _sha(source) == before  # the source is never modified


def test_edit_reports_bad_input_without_traceback(media_clips, tmp_path, capsys):
    assert main(["edit", str(tmp_path / "missing.mov"), "-p", "x", "-o", str(tmp_path), "--model", "tiny"]) == 1
    assert "missing.mov" in capsys.readouterr().err
    source = media_clips["pal"]
    assert main(["edit", str(source), "-p", "x", "-o", str(tmp_path), "--model", "tiny", "--start", "500"]) == 1
    assert "--start 500" in capsys.readouterr().err
    # The sidecar's instruction check, in its words, before a model loads (so on --sidecar too).
    assert main(["edit", str(source), "-p", "  ", "-o", str(tmp_path / "out"), "--model", "tiny"]) == 1
    assert "-p/--instruction is empty: say what the edit should do" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
