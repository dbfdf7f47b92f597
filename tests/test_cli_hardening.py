"""What a new user of `liveedit edit` / `render` / `bench` / `status` hits first (issue 15,
points 1, 2, 4, 15, 18-22, 24): every bad argument is refused in one line before any model
loads or any folder is made, interruptions leave no hidden partial file, and the .otio
looks like an editor's own export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from liveedit.cli import build_parser, main


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model is the expensive step: these checks must all come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr("liveedit.commands.edit.load_models", refuse)
    monkeypatch.setattr("liveedit.commands.render.load_models", refuse)


def _edit(source, out, *extra) -> list[str]:
    return ["edit", str(source), "-p", "make it snowy", "-o", str(out), "--model", "tiny", *extra]


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


# -- 19: the instruction and every other argument before the model and the folder -----------


@pytest.mark.parametrize("instruction", ["", "   "])
def test_empty_instruction_is_refused_before_the_model_loads(media_clips, tmp_path, capsys, no_model, instruction):
    out = tmp_path / "new" / "folder"
    assert main(["edit", str(media_clips["pal"]), "-p", instruction, "-o", str(out), "--model", "tiny"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "instruction" in line and "-p" in line
    assert not (tmp_path / "new").exists()  # no folder made for an edit that never ran


def test_early_failures_leave_no_output_folder(media_clips, tmp_path, capsys, no_model):
    out = tmp_path / "new"
    assert main(_edit(tmp_path / "missing.mov", out)) == 1
    assert main(_edit(media_clips["pal"], out, "--start", "500")) == 1
    assert main(_edit(media_clips["pal"], out, "--save-masks")) == 1  # needs --mask-cache
    assert main(_edit(media_clips["pal"], out, "--model", "no-such-model")) == 1
    capsys.readouterr()
    assert not out.exists()


def test_no_sidecar_running_leaves_no_output_folder(media_clips, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    out = tmp_path / "new"
    assert main(_edit(media_clips["pal"], out, "--sidecar=unix:" + str(tmp_path / "none.sock"))) == 1
    assert "liveedit serve" in capsys.readouterr().err
    assert not out.exists()


def test_render_with_empty_prompt_is_refused_before_anything(tmp_path, capsys, no_model):
    timeline = tmp_path / "t.otio"
    otio.adapters.write_to_file(otio.schema.Timeline(name="t"), str(timeline))
    out = tmp_path / "new"
    assert main(["render", str(timeline), "-p", " ", "-o", str(out), "--model", "tiny"]) == 1
    assert "-p" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


# -- 18: an output folder that cannot be made or written --------------------------------------


def test_output_folder_under_a_file_is_named(media_clips, tmp_path, capsys, no_model):
    (tmp_path / "afile").write_text("x")
    assert main(_edit(media_clips["pal"], tmp_path / "afile" / "sub")) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert str(tmp_path / "afile" / "sub") in line or str(tmp_path / "afile") in line


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_unwritable_output_folder_is_found_before_the_model(media_clips, tmp_path, capsys, no_model):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores modes; make the folder a file-system boundary instead
            pytest.skip("running as root: modes do not stop writes")
        assert main(_edit(media_clips["pal"], ro)) == 1
        assert str(ro) in _one_line_error(capsys.readouterr().err)
        assert main(_edit(media_clips["pal"], ro / "sub")) == 1
        assert str(ro) in _one_line_error(capsys.readouterr().err)
    finally:
        ro.chmod(0o700)


def test_unwritable_output_folder_check_itself(tmp_path, monkeypatch):
    """The check behind the two cases above, with os.access saying no (root ignores modes)."""
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.outputs import check_output_dir

    real_access = os.access
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == blocked else real_access(p, mode, **kw))
    with pytest.raises(LiveEditError, match="blocked"):
        check_output_dir(blocked / "sub" / "deeper")
    assert not (blocked / "sub").exists()
    check_output_dir(tmp_path / "fine" / "sub")  # only checks: makes nothing
    assert not (tmp_path / "fine").exists()


# -- 1: path names the file system cannot hold --------------------------------------------------


@pytest.mark.parametrize("what", ["input", "output"])
@pytest.mark.parametrize("length", ["name", "path"])
def test_overlong_paths_are_one_line_errors(media_clips, tmp_path, capsys, no_model, what, length):
    long = tmp_path / ("n" * 300 + ".mov") if length == "name" else Path("/" + "/".join(["d" * 200] * 30))
    if what == "input":
        argv = _edit(long, tmp_path / "out")
    else:
        argv = _edit(media_clips["pal"], long)
    assert main(argv) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "too long" in line
    assert len(line) < 1000  # the path is cut, not echoed whole


# -- 21: the error names what the user typed -----------------------------------------------------


def test_start_past_the_end_names_what_was_typed(media_clips, tmp_path, capsys, no_model):
    assert main(_edit(media_clips["pal"], tmp_path, "--start", "500")) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "--start 500" in line and "-380" not in line and "--frames" not in line
    assert "0-19" in line or "0–19" in line
    assert main(_edit(media_clips["pal"], tmp_path, "--start", "5", "--frames", "40")) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "--start 5 --frames 40" in line
    assert main(_edit(media_clips["pal"], tmp_path, "--frames", "0")) == 1
    assert "--frames 0" in _one_line_error(capsys.readouterr().err)


# -- 2: a truly variable frame rate --------------------------------------------------------------


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory):
    """The issue's clip: 30 fps test pattern whose timestamps wobble by up to 26 ms."""
    path = tmp_path_factory.mktemp("vfr") / "vfr.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=30:duration=1",
         "-vf", r"settb=1/90000,setpts='PTS+1170*mod(N\,3)'", "-fps_mode", "vfr", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-video_track_timescale", "90000", str(path)], check=True)
    return path


def test_variable_frame_rate_is_refused_with_the_conform_command(vfr_clip, tmp_path, capsys, no_model):
    out = tmp_path / "out"
    assert main(_edit(vfr_clip, out)) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "variable frame rate" in line
    assert "ffmpeg" in line and "--conform-rate" in line
    assert not out.exists()


def test_variable_frame_rate_conformed_on_request(vfr_clip, tmp_path, capsys):
    from liveedit.sidecar.media.read import probe

    assert main(_edit(vfr_clip, tmp_path, "--format", "h264", "--conform-rate", "30000/1001")) == 1 - 1
    out = capsys.readouterr()
    assert "conform" in (out.out + out.err)
    (mov,) = tmp_path.glob("*.mov")
    info = probe(mov)
    assert info.frame_rate == Fraction(30000, 1001) and not info.variable_frame_rate
    assert info.frame_count == probe(vfr_clip).frame_count
    timeline = otio.adapters.read_from_file(str(next(tmp_path.glob("*.otio"))))
    for clip in timeline.find_clips():
        assert clip.source_range.duration.rate == pytest.approx(30000 / 1001)


def test_conform_rate_must_be_a_rate(media_clips, tmp_path, capsys, no_model):
    with pytest.raises(SystemExit) as exited:
        main(_edit(media_clips["pal"], tmp_path, "--conform-rate", "fast"))
    assert exited.value.code == 2
    assert "--conform-rate" in capsys.readouterr().err


# -- 4 and 20: partial files after SIGKILL and SIGTERM ------------------------------------------


def test_leftover_partial_of_a_dead_run_is_cleaned(media_clips, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that belongs to no running process
    assert main(_edit(media_clips["pal"], tmp_path, "--format", "h264", "--frames", "9")) == 0
    capsys.readouterr()
    # What a killed writer leaves: the writer's own temporary name, in the same folder.
    (mov,) = tmp_path.glob("*.mov")
    from liveedit.sidecar.outputs import partial_path

    leftover = partial_path(mov, pid=dead.pid)
    leftover.write_bytes(b"half a file")
    alive = partial_path(mov, pid=os.getpid())  # this process is running: its file stays
    alive.write_bytes(b"being written")
    assert main(_edit(media_clips["pal"], tmp_path, "--format", "h264", "--frames", "9", "--force")) == 0
    capsys.readouterr()
    assert not leftover.exists()
    assert alive.exists()


def test_sigterm_during_edit_leaves_no_partial_file(media_clips, tmp_path, monkeypatch, capsys):
    from liveedit.sidecar.media import write

    real_write = write.SegmentWriter.write

    def write_then_terminate(self, frame):
        real_write(self, frame)
        if self.frames_written == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(write.SegmentWriter, "write", write_then_terminate)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = main(_edit(media_clips["pal"], tmp_path, "--format", "h264"))
    finally:
        assert signal.getsignal(signal.SIGTERM) == previous  # the handler is put back
    assert code == 128 + signal.SIGTERM
    assert "terminated" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert list(tmp_path.glob("*.mov")) == []


# -- 15: the command line itself -----------------------------------------------------------------


def test_verbosity_flags_work_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["-v", "status"]).verbose
    assert parser.parse_args(["status", "-v"]).verbose
    assert parser.parse_args(["status", "--verbose"]).verbose
    assert parser.parse_args(["status", "-q"]).quiet
    assert parser.parse_args(["-q", "status"]).quiet
    assert not parser.parse_args(["status"]).verbose


def test_sidecar_flag_does_not_swallow_the_input(tmp_path):
    args = build_parser().parse_args(["edit", "--sidecar", str(tmp_path / "clip.mov"), "-p", "x", "-o", "out"])
    assert args.sidecar == "" and args.input == tmp_path / "clip.mov"
    args = build_parser().parse_args(["render", "--sidecar", "t.otio", "-o", "out"])
    assert args.sidecar == "" and args.timeline == Path("t.otio")
    args = build_parser().parse_args(["edit", "c.mov", "-p", "x", "-o", "out", "--sidecar", "127.0.0.1:5000"])
    assert args.sidecar == "127.0.0.1:5000"
    args = build_parser().parse_args(["edit", "--sidecar=unix:/tmp/s.sock", "c.mov", "-p", "x", "-o", "o"])
    assert args.sidecar == "unix:/tmp/s.sock"


def test_environment_names_the_weights_folder_and_the_sidecar(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVEEDIT_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("LIVEEDIT_SIDECAR", "127.0.0.1:5000")
    args = build_parser().parse_args(["edit", "c.mov", "-p", "x", "-o", "o"])
    assert args.weights == str(tmp_path / "w")
    assert args.sidecar is None  # the variable says where, not whether
    from liveedit.commands.render import resolve_sidecar_address

    assert resolve_sidecar_address("") == "127.0.0.1:5000"
    assert resolve_sidecar_address("unix:/x.sock") == "unix:/x.sock"
    monkeypatch.delenv("LIVEEDIT_SIDECAR")
    assert resolve_sidecar_address("") == ""


def test_status_json_without_a_sidecar(tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert main(["status", "--json", "--socket", str(tmp_path / "none.sock")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["running"] is False and "liveedit serve" in doc["error"]


def test_random_weights_warning_once_and_no_float32_chatter(media_clips, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "liveedit", *_edit(media_clips["pal"], tmp_path, "--format", "h264",
                                                                     "--frames", "9")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    assert text.count("RANDOM") == 1, text
    assert "kept in float32" not in text


# -- 22: bench without a GPU ---------------------------------------------------------------------


def test_bench_without_a_gpu_refuses_unless_asked_for_cpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_models(*a, **k):
        raise AssertionError("bench built models before saying what it does")

    monkeypatch.setattr("liveedit.engine.benchmark.random_models", no_models)
    assert main(["bench"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "--device cpu" in line and "GPU" in line


# -- 24: the .otio like an editor's export -------------------------------------------------------


def test_otio_timeline_starts_at_the_source_timecode(media_clips, tmp_path, capsys):
    assert main(_edit(media_clips["ntsc_film"], tmp_path, "--format", "h264", "--frames", "9")) == 0
    capsys.readouterr()
    timeline = otio.adapters.read_from_file(str(next(tmp_path.glob("*.otio"))))
    start = timeline.global_start_time
    assert start is not None
    assert otio.opentime.to_timecode(start, start.rate) == "01:00:00:00"


def test_png_output_is_an_image_sequence(media_clips, tmp_path, capsys):
    assert main(_edit(media_clips["pal"], tmp_path, "--format", "png", "--frames", "9")) == 0
    capsys.readouterr()
    timeline = otio.adapters.read_from_file(str(next(tmp_path.glob("*.otio"))))
    (track,) = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    (clip,) = list(track.find_clips())
    ref = clip.media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference)
    assert ref.name_suffix == ".png"
    first = Path(ref.target_url_for_image_number(0).removeprefix("file://"))
    assert first.is_file()
    assert ref.number_of_images_in_sequence() == 9


# -- the checks themselves ----------------------------------------------------------------------


def test_path_length_check_names_and_cuts(tmp_path):
    from liveedit.errors import InputError
    from liveedit.sidecar.outputs import check_path_length

    assert check_path_length(tmp_path / "ok.mov", "input") == tmp_path / "ok.mov"
    with pytest.raises(InputError, match="input .* too long") as caught:
        check_path_length(tmp_path / ("n" * 300), "input")
    assert len(str(caught.value)) < 400
    with pytest.raises(InputError, match="too long"):
        check_path_length("/" + "/".join(["d" * 200] * 30), "output folder")


def test_dead_partials_are_removed_and_live_ones_kept(tmp_path):
    from liveedit.sidecar.outputs import partial_path, remove_dead_partials

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    final = tmp_path / "clip.mov"
    gone = partial_path(final, ".mov", pid=dead.pid)
    gone.write_bytes(b"x")
    gone_dir = partial_path(tmp_path / "frames", pid=dead.pid)
    gone_dir.mkdir()
    kept = partial_path(final, ".mov")
    kept.write_bytes(b"x")
    other = tmp_path / ".something.else"
    other.write_bytes(b"x")
    assert sorted(remove_dead_partials(tmp_path).removed) == sorted([gone, gone_dir])
    assert kept.exists() and other.exists() and final.parent.exists()
