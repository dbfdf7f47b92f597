"""The gRPC sidecar end to end with a trivial editor: Unix socket and TCP transports, the
token, info, edit streams in order, preview seeks, the render queue, graceful stop."""

from __future__ import annotations

import os
import stat
import threading

import grpc
import numpy as np
import pytest

from liveedit.clients.python import LiveEditClient, ServerError, ServerNotRunningError
from liveedit.sidecar import config
from liveedit.sidecar.api.server import ModelCard, ServerOptions, Sidecar
from preview_media import source_frame, write_clip
from server_fakes import InvertEditor, ServerThread, expected_edit, make_clip

CARD = ModelCard(preset="fake", random_weights=True, description="fake editor with RANDOM weights")


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(tmp_path / "run"))


def start(tmp_path=None, **options) -> ServerThread:
    sidecar = Sidecar(None, ServerOptions(**options), editor_factory=InvertEditor, card=CARD)
    return ServerThread(sidecar)


@pytest.fixture
def uds_server():
    server = start()
    yield server
    server.stop()


def test_unix_socket_is_private_and_streams_every_frame_back_in_order(uds_server):
    path = uds_server.sidecar.socket_path
    assert path == config.default_socket_path()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    frames = make_clip(30)
    with LiveEditClient.connect() as client:
        for shared in (True, False):
            stats = []
            out = list(client.edit_stream(frames, "invert", seed=5, shared_memory=shared, chunk_stats=stats))
            assert len(out) == 30
            for src, got in zip(frames, out):
                np.testing.assert_array_equal(got, expected_edit(src, 5))
            assert [s.source_frames for s in stats] == [9, 12, 9]


def test_tcp_needs_the_token(tmp_path):
    server = start(port=0)
    try:
        address = server.address
        assert address.startswith("127.0.0.1:")
        token_file = config.token_path()
        assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
        frames = make_clip(10)
        with LiveEditClient.connect(address=address) as client:  # token read from the config folder
            assert not client.local
            out = list(client.edit_stream(frames, "invert", seed=1))
            assert len(out) == 10
            np.testing.assert_array_equal(out[9], expected_edit(frames[9], 1))
        for token in ("wrong", None):
            client = LiveEditClient(grpc.insecure_channel(address), token=token, target=address)
            with pytest.raises(ServerError) as err:
                client.info()
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(ServerError) as err:
                list(client.edit_stream(frames[:2], "invert"))
            assert err.value.code == grpc.StatusCode.UNAUTHENTICATED
            client.close()
    finally:
        server.stop()


def test_refuses_non_loopback_hosts():
    sidecar = Sidecar(None, ServerOptions(host="0.0.0.0", port=0), editor_factory=InvertEditor, card=CARD)
    import asyncio

    with pytest.raises(config.ConfigError, match="loopback"):
        asyncio.run(sidecar.start())
    asyncio.run(sidecar.worker.close())


def test_info_says_random_weights_and_capabilities(uds_server):
    with LiveEditClient.connect() as client:
        info = client.info()
    assert info.random_weights and "RANDOM" in info.model_description
    assert info.capabilities.shared_memory and info.capabilities.max_message_bytes >= 32 * 2**20
    assert info.version


def test_no_server_gives_the_command_to_start_one(tmp_path):
    with pytest.raises(ServerNotRunningError, match="liveedit serve"):
        LiveEditClient.connect(tmp_path / "nobody.sock", timeout=0.5)


def test_second_server_on_the_same_socket_is_refused(uds_server):
    import asyncio

    other = Sidecar(None, ServerOptions(), editor_factory=InvertEditor, card=CARD)
    with pytest.raises(config.ConfigError, match="already listening"):
        asyncio.run(other.start())
    asyncio.run(other.worker.close())


def test_preview_over_grpc_returns_the_requested_frame(uds_server, tmp_path):
    clip = write_clip(tmp_path / "clip.mov", 30)
    with LiveEditClient.connect() as client:
        with client.open_preview(clip, "invert", seed=0) as preview:
            assert (preview.session.width, preview.session.height) == (32, 24)
            assert (preview.session.frame_rate_numerator, preview.session.frame_rate_denominator) == (24000, 1001)
            frames = list(preview.seek(12))
            assert [f.frame for f in frames] == list(range(9, 21))
            got = {f.frame: f.image for f in frames}[12]
            np.testing.assert_array_equal(got, expected_edit(source_frame(12), 0))
            assert all(f.cached for f in preview.seek(15))


def test_ten_rapid_seeks_over_grpc_deliver_only_the_last(uds_server, tmp_path):
    clip = write_clip(tmp_path / "clip.mov", 60)
    gate = threading.Event()
    from liveedit.sidecar.worker import Priority

    uds_server.sidecar.worker.submit(lambda m: gate.wait(10), priority=Priority.CONTROL)  # GPU busy
    results: dict[int, object] = {}
    with LiveEditClient.connect() as client:
        preview = client.open_preview(clip, "invert")

        def seek(n):
            try:
                results[n] = [f.frame for f in preview.seek(n * 5)]
            except ServerError as exc:
                results[n] = exc.code

        threads = []
        for n in range(10):
            threads.append(threading.Thread(target=seek, args=(n,)))
            threads[-1].start()
            threading.Event().wait(0.05)  # let each seek reach the server before the next
        gate.set()
        for t in threads:
            t.join(30)
    assert [results[n] for n in range(9)] == [grpc.StatusCode.ABORTED] * 9
    assert results[9] == list(range(45, 54))  # frame 45 opens the second 45-frame segment: 9-frame chunk


def test_graceful_stop_refuses_new_work_and_removes_the_socket():
    server = start()
    path = server.sidecar.socket_path
    with LiveEditClient.connect() as client:
        assert client.info().version
    server.stop(grace=1)
    assert not path.exists()
