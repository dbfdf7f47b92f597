"""A render job survives the real server being killed mid-job (SIGKILL, no shutdown code runs)
and restarted on the same jobs database: the finished region is kept as it was, the
interrupted one is never shown as done, renders again and completes with a whole, playable file,
and the killed render's hidden temporary file is gone.
`liveedit serve --model tiny` runs as a subprocess, as a user would start it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liveedit.clients.python import LiveEditClient
from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.sidecar.media.read import probe
from media_fixtures import ffprobe_frame_count

pytestmark = pytest.mark.slow

FIRST = (0, 9)  # first region: one chunk, done before the kill
SECOND = (12, 48)  # second region: 5 chunks, killed after its first one


def _serve(tmp: Path) -> subprocess.Popen:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "cfg"), XDG_RUNTIME_DIR=str(tmp / "run"))
    for override in ("LIVEEDIT_CONFIG_DIR", "LIVEEDIT_RUNTIME_DIR"):  # XDG must decide, as for a user
        env.pop(override, None)
    with open(tmp / "serve.log", "a") as log:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            [sys.executable, "-m", "liveedit", "serve", "--model", "tiny", "--device", "cpu", "--socket",
             str(tmp / "s.sock"), "--jobs-db", str(tmp / "jobs.sqlite"), "--no-bridge"],
            env=env, stdout=subprocess.DEVNULL, stderr=log)


def _connect(server: subprocess.Popen, tmp: Path) -> LiveEditClient:
    from liveedit.clients.python import ServerNotRunningError

    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, (tmp / "serve.log").read_text()
        try:
            return LiveEditClient.connect(tmp / "s.sock", timeout=1)
        except ServerNotRunningError:
            assert time.monotonic() < deadline, "the server did not come up in 120 s"


def _wait_for(client: LiveEditClient, job_id: str, ready, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while not ready(job := client.get_job(job_id)):
        assert time.monotonic() < deadline, f"{what}: {job}"
        time.sleep(0.05)
    return job


def test_a_render_job_survives_the_server_being_killed_mid_job(tmp_path):
    source = tmp_path / "shot.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=24", "-frames:v",
                    "64", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-timecode", "01:00:00:00", str(source)], check=True)
    out = tmp_path / "out"
    regions = [{"media": str(source), "first_frame": first, "frame_count": count, "instruction": "make it snowy",
                "seed": 1} for first, count in (FIRST, SECOND)]

    server = _serve(tmp_path)
    try:
        with _connect(server, tmp_path) as client:
            # ProRes: every frame is muxed as it comes, so the killed render leaves its partial file
            # on disk (an H.264 encoder's lookahead can still hold the first frames in memory).
            job = client.submit_job(regions, out, format="prores", label="crash test")
            job = _wait_for(client, job.id, lambda j: j.regions[0].state == render_pb2.JOB_STATE_DONE
                            and j.regions[1].frames_done > 0, "the second region never started")
        assert job.state == render_pb2.JOB_STATE_RUNNING and job.regions[1].state == render_pb2.JOB_STATE_RUNNING
        assert job.regions[1].frames_done < SECOND[1], "the region finished before the kill; make it longer"
        server.send_signal(signal.SIGKILL)
        assert server.wait(30) == -signal.SIGKILL
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)

    first_output, first_otio = Path(job.regions[0].output), Path(job.regions[0].otio)
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (first_output, first_otio)}
    # What the dead server left: the database says the second region was running, with no output;
    # the only files are the first region's and a hidden partial temp, never a final-named file.
    with sqlite3.connect(tmp_path / "jobs.sqlite") as db:
        rows = db.execute("SELECT idx, state, output FROM regions WHERE job_id = ? ORDER BY idx", (job.id,)).fetchall()
    assert rows == [(0, "done", str(first_output)), (1, "running", None)]
    visible = {p for p in out.iterdir() if not p.name.startswith(".")}
    assert visible == set(kept)
    hidden = [p for p in out.iterdir() if p.name.startswith(".")]
    assert hidden and all(".partial" in p.name for p in hidden), hidden

    server = _serve(tmp_path)
    try:
        with _connect(server, tmp_path) as client:
            job = _wait_for(client, job.id, lambda j: j.state not in (render_pb2.JOB_STATE_QUEUED,
                                                                      render_pb2.JOB_STATE_RUNNING), "never finished")
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0, (tmp_path / "serve.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(30)

    assert job.state == render_pb2.JOB_STATE_DONE, [r.error for r in job.regions]
    assert Path(job.regions[0].output) == first_output
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in kept} == kept  # the finished region was not redone
    second = Path(job.regions[1].output)
    assert second.parent == out.resolve() and second.is_file() and Path(job.regions[1].otio).is_file()
    assert job.regions[1].frames_done == job.regions[1].frame_count == SECOND[1]
    assert ffprobe_frame_count(second) == SECOND[1]  # counted by decoding every frame, not by us
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", str(second), "-f", "null", "-"], capture_output=True, text=True)
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr  # plays through without errors
    info = probe(second)
    assert info.frame_rate == 24 and info.start_timecode == "01:00:00:12"
    assert "interrupted" in (tmp_path / "serve.log").read_text()  # the restart said what it re-queued
    # The killed render's hidden partial file went when its region was queued again: only outputs remain.
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
