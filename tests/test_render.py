"""render_region and `liveedit render` (sidecar/render.py, liveedit/commands/render.py)."""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from liveedit.cli import main
from liveedit.sidecar.naming import OutputNameError, confined_path, segment_name, settings_key
from liveedit.sidecar.render import RenderError
from liveedit.sidecar.timeline import Region

RATE = 24
TC_START = 86400  # media and timeline stamped 01:00:00:00 at 24


def _clip_file(path: Path, frames: int = 30) -> Path:
    """A tiny timecoded clip; MJPEG so a damaged frame fails to decode instead of being concealed."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=64x48:rate={RATE}", "-frames:v", str(frames),
         "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-timecode", "01:00:00:00", str(path)],
        check=True,
    )
    return path


def _damage(path: Path) -> None:
    """Overwrite the middle of the file (frames around 16 of 30) with zeros."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\0" * 3000)


def _rt(v):
    return otio.opentime.RationalTime(v, RATE)


def _range(start, duration):
    return otio.opentime.TimeRange(_rt(start), _rt(duration))


def _clip(path: Path, first: int, frames: int) -> otio.schema.Clip:
    ref = otio.schema.ExternalReference(target_url=str(path), available_range=_range(TC_START, 30))
    return otio.schema.Clip(name=path.name, media_reference=ref, source_range=_range(TC_START + first, frames))


def _marker(at: int, frames: int, note: str, color: str = "GREEN") -> otio.schema.Marker:
    return otio.schema.Marker(name="Marker 1", marked_range=_range(TC_START + at, frames), color=color,
                              metadata={"Resolve_OTIO": {"Keywords": [], "Note": note}})


def _timeline(tmp_path: Path) -> Path:
    """V1: a.mov (media 5..16) at record 0, a 3-frame gap, b.mov (media 20..25) at record
    15, c.mov (media 10..21) at record 21. Green markers: a 4-frame one on a at media 8
    (record 3), point markers on b and c (the whole clip); a blue one that is ignored."""
    media = tmp_path / "media"
    media.mkdir()
    a, b = _clip_file(media / "a.mov"), _clip_file(media / "b.mov")
    c = _clip_file(media / "c.mov")
    _damage(c)
    clip_a, clip_b, clip_c = _clip(a, 5, 12), _clip(b, 20, 6), _clip(c, 10, 12)
    clip_a.markers.extend([_marker(8, 4, "make it snowy"), _marker(5, 2, "not this one", "BLUE")])
    clip_b.markers.append(_marker(20, 1, "make it red"))
    clip_c.markers.append(_marker(12, 1, "make it night"))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, metadata={"Resolve_OTIO": {"Locked": False}})
    track.extend([clip_a, otio.schema.Gap(source_range=_range(0, 3)), clip_b, clip_c])
    timeline = otio.schema.Timeline(global_start_time=_rt(TC_START),
                                    metadata={"Resolve_OTIO": {"Resolve OTIO Meta Version": "1.0"}})
    timeline.tracks.append(track)
    path = tmp_path / "show.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _frames(path: Path) -> int:
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def _timecode(path: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream_tags=timecode",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.mark.slow
def test_render_command_marked_regions_rerun_and_damaged_media(tmp_path, capsys):
    timeline = _timeline(tmp_path)
    sources = {p: p.read_bytes() for p in (tmp_path / "media").iterdir()}
    out = tmp_path / "out"

    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--model", "tiny"]) == 1  # c failed
    printed = capsys.readouterr()
    said = printed.out + printed.err
    assert said.count("RANDOM") == 1 and "not a real edit" in said  # once per run (issue 15)
    assert "c.mov" in printed.err and "frame 1" in printed.err and "damaged" in printed.err
    assert "2 done" in printed.err

    edited = otio.adapters.read_from_file(str(out / "show_liveedit.otio"))
    live = [t for t in edited.tracks if t.name == "LiveEdit"][0]
    got = {}
    for clip in live.find_clips():
        prov = clip.metadata["liveedit"]
        got[prov["instruction"]] = (
            clip.range_in_parent().start_time.value, clip.range_in_parent().duration.value,
            prov["source"]["first_frame"], prov["source"]["frame_count"], Path(clip.media_reference.target_url),
        )
    # a: marker at media 8..11 → record 3..7; b: point marker → all of b (media 20..25) at record 15.
    assert {k: v[:4] for k, v in got.items()} == {"make it snowy": (3, 4, 8, 4), "make it red": (15, 6, 20, 6)}
    seg_a, seg_b = got["make it snowy"][4], got["make it red"][4]
    assert seg_a.parent == out.resolve() and seg_a.name.startswith("a_000008-000011_")
    # 2 handles each side: a's segment holds media 6..13 stamped 01:00:00:06; b's 18..27.
    assert (_frames(seg_a), _timecode(seg_a)) == (8, "01:00:00:06")
    assert (_frames(seg_b), _timecode(seg_b)) == (10, "01:00:00:18")
    assert edited.tracks[0].name == "Video 1" and len(list(edited.tracks[0].find_clips())) == 3  # original kept
    assert (out / "show_liveedit.edl").is_file() and (out / "show_liveedit.xml").is_file()
    assert {p: p.read_bytes() for p in sources} == sources  # sources untouched
    stamps = {p: p.stat().st_mtime_ns for p in (seg_a, seg_b)}

    # Rerun: the finished regions are recognised and skipped, c fails again.
    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--model", "tiny"]) == 1
    printed = capsys.readouterr()
    assert printed.out.count("skipped (already rendered with these settings)") == 2
    assert {p: p.stat().st_mtime_ns for p in (seg_a, seg_b)} == stamps
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial files left


def _region(media: Path, **changes) -> Region:
    fields = dict(media_path=str(media), first_frame=10, frame_count=20, media_rate=Fraction(24), record_start=0,
                  record_frames=20, timeline_rate=Fraction(24), timeline_start=86400, track="Video 1",
                  clip_name="shot 010.mov", instruction="snow", media_timecode_start=86400)
    fields.update(changes)
    return Region(**fields)


def test_settings_key_is_deterministic_and_covers_the_settings(tmp_path):
    media = tmp_path / "m.mov"
    media.write_bytes(b"x")
    base = settings_key(_region(media), "tiny:random", 0, {"shift": 5.0}, handles=12)
    assert base == settings_key(_region(media), "tiny:random", 0, {"shift": 5.0}, handles=12)
    others = [
        settings_key(_region(media, instruction="rain"), "tiny:random", 0, {"shift": 5.0}, handles=12),
        settings_key(_region(media, first_frame=11), "tiny:random", 0, {"shift": 5.0}, handles=12),
        settings_key(_region(media), "liveedit-1.3b:abc", 0, {"shift": 5.0}, handles=12),
        settings_key(_region(media), "tiny:random", 1, {"shift": 5.0}, handles=12),
        settings_key(_region(media), "tiny:random", 0, {"shift": 3.0}, handles=12),
        settings_key(_region(media), "tiny:random", 0, {"shift": 5.0}, handles=0),
    ]
    assert len({base, *others}) == 7
    media.write_bytes(b"a replaced source")  # a different file under the same name
    assert settings_key(_region(media), "tiny:random", 0, {"shift": 5.0}, handles=12) != base
    assert segment_name(_region(media), base) == f"shot_010_000010-000029_{base}"


def test_output_paths_stay_inside_the_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert confined_path(out, "a_000001") == (out / "a_000001").resolve()
    for name in ("../escape", "/etc/x", "sub/../../x"):
        with pytest.raises(OutputNameError, match="inside|outside"):
            confined_path(out, name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "link")
    with pytest.raises(OutputNameError, match="outside the output folder"):
        confined_path(out, "link/a")


def test_render_region_refuses_bad_requests_before_any_work(tmp_path):
    from liveedit.sidecar.render import render_region

    media = _clip_file(tmp_path / "m.mov", frames=10)
    with pytest.raises(RenderError, match="unknown output format"):
        render_region(_region(media), None, tmp_path / "out", format="avi")
    with pytest.raises(RenderError, match=r"frames 0–9; the region asks for 10–29"):
        render_region(_region(media), None, tmp_path / "out")
    with pytest.raises(RenderError, match="plays at 24 fps but the timeline says 25"):
        render_region(_region(media, first_frame=0, frame_count=5, media_rate=Fraction(25)), None, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_in_process_render_checks_the_instruction_as_the_sidecar_does(tmp_path):
    from liveedit.sidecar.render import render_region

    media = _clip_file(tmp_path / "m.mov", frames=10)
    # The words of sidecar/validation.py, which jobs, previews and edit streams also use.
    with pytest.raises(RenderError, match="instruction is empty: say what the edit should do"):
        render_region(_region(media, first_frame=0, frame_count=5, instruction="  "), None, tmp_path / "out")
    with pytest.raises(RenderError, match="NUL"):
        render_region(_region(media, first_frame=0, frame_count=5, instruction="snow\x00"), None, tmp_path / "out")
    assert not (tmp_path / "out").exists()
