"""End to end with the real tiny model (random weights, CPU): the server's output equals a
direct StreamingEditor run, over a Unix socket (shared memory) and over TCP with the token;
preview seeks; `liveedit serve` + `liveedit status` as processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from liveedit.clients.python import LiveEditClient
from liveedit.sidecar.api.server import ServerOptions, Sidecar
from preview_media import write_clip
from server_fakes import ServerThread, make_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVEEDIT_CONFIG_DIR", str(root / "cfg"))
    mp.setenv("LIVEEDIT_RUNTIME_DIR", str(root / "run"))
    yield root
    mp.undo()


def direct_edit(models, frames, instruction, seed):
    from liveedit.engine.editor import StreamingEditor

    return list(StreamingEditor(models, instruction=instruction, seed=seed).edit(frames))


def test_unix_socket_and_tcp_streams_match_a_direct_edit(models, dirs):
    frames = make_clip(10)
    expected = direct_edit(models, frames, "make it snowy", 3)
    for options in (ServerOptions(), ServerOptions(port=0)):
        server = ServerThread(Sidecar(models, options))
        try:
            if options.port is None:
                client = LiveEditClient.connect()
            else:
                client = LiveEditClient.connect(address=server.address)  # token from the config folder
            with client:
                info = client.info()
                assert info.model_preset == "tiny" and info.random_weights
                stats = []
                out = list(client.edit_stream(frames, "make it snowy", seed=3, chunk_stats=stats))
            assert len(out) == len(frames)
            for got, want in zip(out, expected):
                np.testing.assert_array_equal(got, want)
            assert [s.source_frames for s in stats] == [9, 1]
            assert all(s.transformer_seconds > 0 for s in stats)
        finally:
            server.stop()


def test_preview_seek_with_the_tiny_model(models, dirs):
    clip = write_clip(dirs / "clip.mov", 12)
    server = ServerThread(Sidecar(models, ServerOptions()))
    try:
        with LiveEditClient.connect() as client, client.open_preview(clip, "make it snowy") as preview:
            assert preview.session.random_weights
            frames = list(preview.seek(4))
            assert [f.frame for f in frames] == list(range(9))
            assert frames[4].image.shape == (24, 32, 3)
            assert all(f.cached for f in preview.seek(8))
    finally:
        server.stop()


def test_serve_and_status_commands(dirs):
    env = dict(os.environ, LIVEEDIT_CONFIG_DIR=str(dirs / "cfg2"), LIVEEDIT_RUNTIME_DIR=str(dirs / "run2"))
    cli = [sys.executable, "-m", "liveedit"]
    down = subprocess.run(cli + ["status", "--timeout", "0.5"], env=env, capture_output=True, text=True)
    assert down.returncode == 1 and "liveedit serve" in down.stderr
    server = subprocess.Popen(cli + ["serve", "--model", "tiny", "--device", "cpu", "--no-jobs"], env=env,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            up = subprocess.run(cli + ["status", "--timeout", "1"], env=env, capture_output=True, text=True)
            if up.returncode == 0:
                break
            assert server.poll() is None, server.stderr.read()
        assert up.returncode == 0, up.stderr
        assert "RANDOM" in up.stdout and "tiny" in up.stdout and "no render queue" in up.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "stopping" in err
    assert not (dirs / "run2" / "sidecar.sock").exists()
