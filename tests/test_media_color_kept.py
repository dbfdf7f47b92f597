"""Issue 15, point 5: an edit keeps its source's colour tags. A full-range source stays full
range where the codec can say so (H.264); ProRes, which players read as video range, is
converted and the file says so in its metadata. An untagged source stays untagged (converted
with the matrix players assume for it) instead of gaining a matrix tag without primaries or
transfer."""

from __future__ import annotations

import subprocess

import av
import pytest

from liveedit.sidecar.media.read import probe, read_frames
from liveedit.sidecar.media.write import SegmentWriter


@pytest.fixture(scope="module")
def full_range_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("colour") / "full.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
                    "-frames:v", "6", "-c:v", "libx264", "-pix_fmt", "yuvj420p", "-color_range", "pc",
                    "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", str(path)],
                   check=True)
    return path


def _edit(source, out, format):
    info = probe(source)
    with SegmentWriter(out, rate=info.frame_rate, format=format, color=info.color, sources=[source]) as writer:
        for frame in read_frames(source, 0, info.frame_count):
            writer.write(frame)
    return out


def _comment(path) -> str:
    with av.open(str(path)) as container:
        return container.metadata.get("comment", "")


def test_full_range_stays_full_range_in_h264(full_range_clip, tmp_path):
    assert probe(full_range_clip).color.range == "pc"
    out = probe(_edit(full_range_clip, tmp_path / "e.mov", "h264"))
    assert out.color.range == "pc"
    assert (out.color.primaries, out.color.transfer, out.color.matrix) == ("bt709", "bt709", "bt709")


def test_full_range_in_prores_is_converted_and_says_so(full_range_clip, tmp_path):
    out = _edit(full_range_clip, tmp_path / "e.mov", "prores")
    assert probe(out).color.range == "tv"
    note = _comment(out)
    assert "full range" in note and "video range" in note and "ProRes" in note


def test_untagged_source_stays_untagged(media_clips, tmp_path):
    source = media_clips["pal"]  # no colour tags at all
    tags = probe(source).color
    assert (tags.primaries, tags.transfer, tags.matrix) == (None, None, None)
    for format in ("h264", "prores"):
        out = probe(_edit(source, tmp_path / f"{format}.mov", format))
        assert (out.color.primaries, out.color.transfer, out.color.matrix) == (None, None, None), format


def test_tagged_source_keeps_its_tags(media_clips, tmp_path):
    source = media_clips["ntsc_film"]
    out = probe(_edit(source, tmp_path / "e.mov", "prores"))
    src = probe(source).color
    assert (out.color.primaries, out.color.transfer, out.color.matrix) == (src.primaries, src.transfer, src.matrix)
    assert _comment(tmp_path / "e.mov") == ""  # nothing converted, nothing to say
