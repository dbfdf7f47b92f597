"""`liveedit edit --sidecar` and `liveedit render --sidecar` against a real sidecar (in this
process, tiny model with random weights, real render queue): the same clip and .otio as the
in-process path, the updated timeline written by the command from the job's results, and
clear one-line errors when no sidecar runs or it refuses the job."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from liveedit.cli import build_parser, main
from liveedit.sidecar.media.read import probe, read_frames
from media_fixtures import ffprobe_frame_count

pytestmark = pytest.mark.slow

RATE = 24
TC_START = 86400  # 01:00:00:00 at 24


def _clip_file(path: Path, frames: int, rate: str = str(RATE)) -> Path:
    """A tiny timecoded MJPEG clip (every frame a keyframe; a damaged frame fails to decode)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size=64x48:rate={rate}", "-frames:v",
         str(frames), "-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-timecode", "01:00:00:00", str(path)],
        check=True)
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)  # what `--model tiny` builds in-process


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("scli")
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVEEDIT_CONFIG_DIR", str(root / "cfg"))
    mp.setenv("LIVEEDIT_RUNTIME_DIR", str(root / "run"))
    yield root
    mp.undo()


def _start_sidecar(models, socket: Path | None, jobs_db: Path | None, port: int | None = None):
    from liveedit.sidecar.jobs import LocalExecutor, RenderQueue
    from liveedit.sidecar.api.server import ServerOptions, Sidecar
    from server_fakes import ServerThread

    sidecar = Sidecar(models, ServerOptions(socket_path=socket, port=port))
    if jobs_db is not None:  # as `liveedit serve` wires it
        sidecar.render_queue = RenderQueue(jobs_db, LocalExecutor(worker=sidecar.worker))
    return ServerThread(sidecar)


@pytest.fixture(scope="module")
def sidecar(tiny_models, root):
    server = _start_sidecar(tiny_models, root / "s.sock", root / "jobs.sqlite")
    yield server
    server.stop()


def _plain(value):
    """OTIO metadata containers → plain dicts and lists, so they compare by value."""
    if hasattr(value, "keys"):
        return {k: _plain(value[k]) for k in value.keys()}
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return value
    return [_plain(v) for v in value]


def _liveedit_clip(otio_path: Path) -> otio.schema.Clip:
    timeline = otio.adapters.read_from_file(str(otio_path))
    (track,) = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    (clip,) = list(track.find_clips())
    return clip


def test_edit_on_the_sidecar_matches_the_in_process_edit(sidecar, root, tmp_path, capsys):
    source = _clip_file(tmp_path / "shot.mov", 12, rate="24000/1001")
    before = _sha(source)
    common = [str(source), "-p", "make the fur snowy white", "-o", None, "--start", "2", "--frames", "9",
              "--format", "h264", "--model", "tiny", "--seed", "3"]

    here = tmp_path / "here"
    common[4] = str(here)
    assert main(["edit", *common]) == 0
    capsys.readouterr()

    there = tmp_path / "there"
    common[4] = str(there)
    assert main(["edit", *common, "--sidecar", sidecar.address]) == 0
    printed = capsys.readouterr()
    assert "--model ignored with --sidecar" in printed.err  # a model option the user passed has no effect
    assert "edited 9 frames of" in printed.out and "RANDOM" in printed.out
    (mov_here,), (mov_there,) = list(here.glob("*.mov")), list(there.glob("*.mov"))
    assert f"-> {mov_there.resolve()}" in printed.out

    a, b = probe(mov_here), probe(mov_there)
    assert (b.frame_count, b.frame_rate, b.start_timecode, b.width, b.height) == \
        (a.frame_count, a.frame_rate, a.start_timecode, a.width, a.height)
    assert b.start_timecode == "01:00:00:02" and ffprobe_frame_count(mov_there) == 9
    # Same random weights (seed 0) and seed on both sides: the same pixels.
    for x, y in zip(read_frames(mov_here, 0, 9), read_frames(mov_there, 0, 9), strict=True):
        np.testing.assert_array_equal(x, y)

    clip_here = _liveedit_clip(next(here.glob("*.otio")))
    otio_there = next(there.glob("*.otio"))
    assert f"timeline: {otio_there.resolve()}" in printed.out
    clip_there = _liveedit_clip(otio_there)
    assert Path(clip_there.media_reference.target_url) == mov_there.resolve()
    assert clip_there.source_range == clip_here.source_range
    assert clip_there.media_reference.available_range == clip_here.media_reference.available_range
    prov_here, prov_there = (_plain(c.metadata["liveedit"]) for c in (clip_here, clip_there))
    for key in ("instruction", "seed", "model", "settings_key", "source"):
        assert prov_there[key] == prov_here[key], key
    assert _sha(source) == before


def _rt(v):
    return otio.opentime.RationalTime(v, RATE)


def _range(start, duration):
    return otio.opentime.TimeRange(_rt(start), _rt(duration))


def _timeline(folder: Path) -> Path:
    """V1: a.mov (media 5..16) at record 0, a 3-frame gap, b.mov (media 20..25) at record 15,
    c.mov (damaged around frame 16; media 10..21) at record 21. Green markers: 4 frames on a at
    media 8, point markers on b and c (the whole clip); a blue one that is not rendered."""
    media = folder / "media"
    media.mkdir()
    a, b, c = (_clip_file(media / f"{n}.mov", 30) for n in "abc")
    with open(c, "r+b") as f:  # zeros over the middle: decoding fails there
        f.seek(c.stat().st_size // 2)
        f.write(b"\0" * 3000)
    clips = []
    for path, first, frames in ((a, 5, 12), (b, 20, 6), (c, 10, 12)):
        ref = otio.schema.ExternalReference(target_url=str(path), available_range=_range(TC_START, 30))
        clips.append(otio.schema.Clip(name=path.name, media_reference=ref, source_range=_range(TC_START + first, frames)))

    def marker(at, frames, note, color="GREEN"):
        return otio.schema.Marker(name="m", marked_range=_range(TC_START + at, frames), color=color,
                                  metadata={"Resolve_OTIO": {"Keywords": [], "Note": note}})

    clips[0].markers.extend([marker(8, 4, "make it snowy"), marker(5, 2, "not this one", "BLUE")])
    clips[1].markers.append(marker(20, 1, "make it red"))
    clips[2].markers.append(marker(12, 1, "make it night"))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video, metadata={"Resolve_OTIO": {"Locked": False}})
    track.extend([clips[0], otio.schema.Gap(source_range=_range(0, 3)), clips[1], clips[2]])
    timeline = otio.schema.Timeline(global_start_time=_rt(TC_START), metadata={"Resolve_OTIO": {"Resolve OTIO Meta Version": "1.0"}})
    timeline.tracks.append(track)
    path = folder / "show.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def _timecode(path: Path) -> str:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream_tags=timecode",
                          "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_render_on_the_sidecar_writes_the_updated_timeline(sidecar, tmp_path, capsys):
    timeline = _timeline(tmp_path)
    sources = {p: p.read_bytes() for p in (tmp_path / "media").iterdir()}
    out = tmp_path / "out"

    # c's damaged frames fail its region on the sidecar; a and b still land on the timeline.
    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--format", "h264",
                 "--sidecar", sidecar.address]) == 1
    printed = capsys.readouterr()
    assert "RANDOM" in printed.out and f"sidecar at {sidecar.address}" in printed.out
    assert "--model" not in printed.err  # no model option was passed, so none is reported ignored
    assert "FAILED" in printed.err and "c.mov" in printed.err and "damaged" in printed.err
    assert "1 region(s) failed, 2 done" in printed.err
    assert printed.out.count(": rendered: ") == 2

    edited = otio.adapters.read_from_file(str(out / "show_liveedit.otio"))
    (live,) = [t for t in edited.tracks if t.name == "LiveEdit"]
    got = {}
    for clip in live.find_clips():
        prov = clip.metadata["liveedit"]
        got[prov["instruction"]] = (clip.range_in_parent().start_time.value, clip.range_in_parent().duration.value,
                                    prov["source"]["first_frame"], prov["source"]["frame_count"],
                                    prov["record"]["clip"], Path(clip.media_reference.target_url))
    # a: marker at media 8..11 → record 3..7; b: point marker → all of b (media 20..25) at record 15.
    assert {k: v[:5] for k, v in got.items()} == {"make it snowy": (3, 4, 8, 4, "a.mov"),
                                                  "make it red": (15, 6, 20, 6, "b.mov")}
    seg_a, seg_b = got["make it snowy"][5], got["make it red"][5]
    assert seg_a.parent == out.resolve() and seg_b.parent == out.resolve()
    # 2 handles each side: a's segment holds media 6..13 stamped 01:00:00:06; b's 18..27.
    assert (ffprobe_frame_count(seg_a), _timecode(seg_a)) == (8, "01:00:00:06")
    assert (ffprobe_frame_count(seg_b), _timecode(seg_b)) == (10, "01:00:00:18")
    # The segment clips point at the first frame of the region inside the handles.
    clip_a = next(c for c in live.find_clips() if c.metadata["liveedit"]["instruction"] == "make it snowy")
    assert clip_a.media_reference.available_range.start_time.value == TC_START + 6
    assert clip_a.source_range.start_time.value == TC_START + 8
    assert edited.tracks[0].name == "Video 1" and len(list(edited.tracks[0].find_clips())) == 3  # original kept
    assert (out / "show_liveedit.edl").is_file() and (out / "show_liveedit.xml").is_file()
    assert {p: p.read_bytes() for p in sources} == sources  # sources untouched


def test_no_sidecar_running_says_how_to_start_one(root, tmp_path, capsys):
    source = _clip_file(tmp_path / "shot.mov", 3)
    missing = tmp_path / "none.sock"
    assert main(["edit", str(source), "-p", "x", "-o", str(tmp_path / "o"), f"--sidecar=unix:{missing}"]) == 1
    err = capsys.readouterr().err
    assert f"liveedit serve` --socket {missing}" in err and err.count("\n") == 1

    timeline = tmp_path / "t.otio"
    ref = otio.schema.ExternalReference(target_url=str(source), available_range=_range(TC_START, 3))
    clip = otio.schema.Clip(name="shot.mov", media_reference=ref, source_range=_range(TC_START, 3))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(clip)
    tl = otio.schema.Timeline(global_start_time=_rt(TC_START))
    tl.tracks.append(track)
    otio.adapters.write_to_file(tl, str(timeline))
    # No address: the default socket of this (empty) runtime folder.
    assert main(["render", str(timeline), "-o", str(tmp_path / "o"), "-p", "make it red", "--sidecar"]) == 1
    err = capsys.readouterr().err
    assert "no LiveEdit server answers" in err and "start one with `liveedit serve`" in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_a_sidecar_refusing_the_job_is_one_clear_line(tiny_models, root, tmp_path, capsys):
    server = _start_sidecar(tiny_models, root / "nojobs.sock", None)  # like `liveedit serve --no-jobs`
    try:
        source = _clip_file(tmp_path / "shot.mov", 3)
        assert main(["edit", str(source), "-p", "x", "-o", str(tmp_path / "o"), "--sidecar", server.address]) == 1
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert "UNIMPLEMENTED" in err and "restart it without --no-jobs" in err and err.count("\n") == 1


def test_edit_over_tcp_uses_the_install_token(tiny_models, root, tmp_path, capsys):
    from liveedit.sidecar import config

    server = _start_sidecar(tiny_models, None, tmp_path / "tcp-jobs.sqlite", port=0)
    token = config.token_path()
    try:
        source = _clip_file(tmp_path / "shot.mov", 3)
        assert server.address.startswith("127.0.0.1:")
        assert main(["edit", str(source), "-p", "x", "-o", str(tmp_path / "o"), "--format", "h264",
                     "--sidecar", server.address]) == 0
        assert "edited 3 frames" in capsys.readouterr().out
        assert ffprobe_frame_count(next((tmp_path / "o").glob("*.mov"))) == 3

        saved = token.read_text()
        token.write_text("not-the-sidecars-token")  # another install's token: refused, and said why
        try:
            assert main(["edit", str(source), "-p", "x", "-o", str(tmp_path / "o"), "--sidecar", server.address]) == 1
        finally:
            token.write_text(saved)
    finally:
        server.stop()
    err = capsys.readouterr().err
    assert "UNAUTHENTICATED" in err and str(token) in err and err.count("\n") == 1


def test_sidecar_address_is_checked_before_anything_runs(tmp_path, capsys):
    source = _clip_file(tmp_path / "shot.mov", 3)
    # `--sidecar clip.mov`: the file is the input, the sidecar the default one (issue 15).
    args = build_parser().parse_args(["edit", "--sidecar", str(source), "-p", "x", "-o", str(tmp_path)])
    assert args.sidecar == "" and args.input == source
    for bad in ("unix:", "localhost", "127.0.0.1:99999"):
        with pytest.raises(SystemExit):
            main(["edit", str(source), "-p", "x", "-o", str(tmp_path), f"--sidecar={bad}"])
        assert "unix:/path/to/sidecar.sock or 127.0.0.1:PORT" in capsys.readouterr().err


def _provenance(otio_path: Path) -> dict:
    timeline = otio.adapters.read_from_file(str(otio_path))  # held: the clip's metadata lives in it
    (track,) = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    (clip,) = list(track.find_clips())
    return _plain(clip.metadata["liveedit"])


def _stat(path: Path) -> tuple[int, int]:
    return path.stat().st_ino, path.stat().st_mtime_ns


def test_edit_on_the_sidecar_sends_its_render_settings_and_a_rerun_is_skipped(sidecar, tmp_path, capsys):
    source = _clip_file(tmp_path / "shot.mov", 12)
    out = tmp_path / "out"
    command = ["edit", str(source), "-p", "make it snowy", "-o", str(out), "--frames", "9", "--format", "h264",
               "--warped-steps", "--mask-cache", "0.5", "--save-masks", "--sidecar", sidecar.address]
    assert main(command) == 0
    printed = capsys.readouterr()
    assert "ignored" not in printed.err  # warped steps and the mask cache now travel with the job
    assert "edited 9 frames of" in printed.out
    (mov,) = [p for p in out.glob("*.mov") if not p.name.endswith(".masks.mov")]
    masks = mov.with_name(mov.stem + ".masks.mov")
    assert f"token masks: {masks.resolve()}" in printed.out and ffprobe_frame_count(masks) == 9
    sampler = _provenance(next(out.glob("*.otio")))["sampler"]
    assert sampler["warp"] is True
    assert sampler["mask_cache"]["keep_ratio"] == 0.5 and sampler["mask_cache"]["pruned_sublayers"] == ["self_attn"]
    files = sorted(out.iterdir())
    before = {p: _stat(p) for p in files}

    assert main(command) == 0  # the same edit again: the sidecar finds the segment and reuses it
    assert f"already edited with these settings: {mov.resolve()}" in capsys.readouterr().out
    assert sorted(out.iterdir()) == files and {p: _stat(p) for p in files} == before
    # The name is the in-process path's own, so it reuses the sidecar's segment too (and vice versa).
    assert main(command[:-2] + ["--model", "tiny"]) == 0
    assert f"already edited with these settings: {mov.resolve()}" in capsys.readouterr().out
    assert {p: _stat(p) for p in files} == before

    other = [a if a != "0.5" else "0.25" for a in command]
    assert main(other) == 0  # another keep ratio: another render, beside the first

    assert "edited 9 frames of" in capsys.readouterr().out
    assert len([p for p in out.glob("*.mov") if not p.name.endswith(".masks.mov")]) == 2


def test_a_whole_timeline_renders_as_one_job_over_grpc(sidecar, tmp_path, capsys):
    from liveedit.clients.python import LiveEditClient
    from liveedit.protos.liveedit.v1 import render_pb2, render_pb2_grpc

    timeline = _timeline(tmp_path)
    out = tmp_path / "out"
    request = render_pb2.SubmitJobRequest(
        timeline=render_pb2.TimelineSource(path=str(timeline), marker_color="green", handles=2),
        output_dir=str(out), format=render_pb2.OUTPUT_FORMAT_H264, label="show")
    with LiveEditClient.connect(address=sidecar.address) as client:
        job = render_pb2_grpc.RenderStub(client.channel).SubmitJob(request)
        job = list(client.watch_job(job.id, timeout=240))[-1]
    # The green markers' regions in timeline order; c's damaged frames fail its region with the reason.
    assert [r.state for r in job.regions] == [render_pb2.JOB_STATE_DONE, render_pb2.JOB_STATE_DONE,
                                              render_pb2.JOB_STATE_FAILED]
    assert "damaged" in job.regions[2].error
    outputs = [Path(r.output) for r in job.regions[:2]]
    assert [(ffprobe_frame_count(p), _timecode(p)) for p in outputs] == [(8, "01:00:00:06"), (10, "01:00:00:18")]
    instructions = [_provenance(Path(r.otio))["instruction"] for r in job.regions[:2]]
    assert instructions == ["make it snowy", "make it red"]
    kept = {p: _stat(p) for p in outputs}

    # `liveedit render` of the same timeline finds the same regions under the same names: nothing re-renders.
    assert main(["render", str(timeline), "-o", str(out), "--handles", "2", "--format", "h264",
                 "--sidecar", sidecar.address]) == 1  # c still fails
    printed = capsys.readouterr()
    assert printed.out.count(": skipped (already rendered with these settings): ") == 2
    assert {p: _stat(p) for p in kept} == kept
    edited = otio.adapters.read_from_file(str(out / "show_liveedit.otio"))
    (live,) = [t for t in edited.tracks if t.name == "LiveEdit"]
    assert {Path(c.media_reference.target_url) for c in live.find_clips()} == set(outputs)
