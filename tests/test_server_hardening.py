"""The sidecar under input it never saw and under load (issue 15, points 1, 3, 6-9): long paths
and ids answer INVALID_ARGUMENT / NOT_FOUND with cut messages, a socket path never deletes an
ordinary file, a second server stops before loading a model, a rejected job makes no folder,
and the limits (edit streams, ListJobs pages, DeleteJob, retention, WebSocket connections,
out-of-memory, request ids) hold."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from pathlib import Path

import grpc
import pytest

from liveedit.clients.python import LiveEditClient, ServerError
from liveedit.protos.liveedit.v1 import render_pb2, render_pb2_grpc
from liveedit.sidecar.api.server import ModelCard, ServerOptions, Sidecar
from liveedit.sidecar.jobs import RegionResult, RenderQueue
from preview_media import write_clip
from server_fakes import InvertEditor, ServerThread

CODE = grpc.StatusCode
CARD = ModelCard(preset="fake", random_weights=True, description="fake editor with RANDOM weights")


class FakeRegionExecutor:
    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()

    def run(self, task, progress, cancel):
        while not self.gate.wait(0.02):
            progress(0, task.region.frame_count)
        progress(task.region.frame_count, task.region.frame_count)
        out = task.output_stem.with_suffix(".mov")
        out.write_bytes(b"segment")
        return RegionResult(output=out, frame_count=task.region.frame_count)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hardening")
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVEEDIT_CONFIG_DIR", str(root / "cfg"))
    mp.setenv("LIVEEDIT_RUNTIME_DIR", str(root / "run"))
    executor = FakeRegionExecutor()
    queue = RenderQueue(root / "jobs.sqlite", executor)
    sidecar = Sidecar(None, ServerOptions(max_edit_streams=1), editor_factory=InvertEditor, card=CARD,
                      render_queue=queue)
    server = ServerThread(sidecar)
    clip = write_clip(root / "clip.mov", 20)
    client = LiveEditClient.connect()
    yield {"server": server, "client": client, "clip": clip, "root": root, "executor": executor, "queue": queue}
    client.close()
    server.stop()
    mp.undo()


def _stub(env):
    return render_pb2_grpc.RenderStub(env["client"].channel)


def _code(fn):
    try:
        result = fn()
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    return CODE.OK, ""


def _region(env, **kw):
    fields = dict(media_path=str(env["clip"]), first_frame=0, frame_count=3, instruction="snow")
    fields.update(kw)
    return render_pb2.RenderRegion(**fields)


# -- 1 and 3: long values --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["media", "output"])
def test_overlong_paths_answer_invalid_argument(env, caplog, where):
    long = "/" + "/".join(["d" * 200] * 30)  # 6,000 characters
    name = str(env["root"] / ("n" * 300 + ".mov"))
    for path in (long, name):
        request = render_pb2.SubmitJobRequest(
            regions=[_region(env, media_path=path if where == "media" else str(env["clip"]))],
            output_dir=path if where == "output" else str(env["root"] / "out"))
        with caplog.at_level(logging.DEBUG):
            code, details = _code(lambda: _stub(env).SubmitJob(request))
        assert code == CODE.INVALID_ARGUMENT, details
        assert "too long" in details and len(details) < 1000
        assert all(len(r.getMessage()) < 2000 for r in caplog.records)


def test_huge_job_ids_answer_not_found_with_the_id_cut(env):
    huge = "x" * 100_000
    stub = _stub(env)
    for call in (lambda: stub.GetJob(render_pb2.GetJobRequest(job_id=huge)),
                 lambda: stub.CancelJob(render_pb2.CancelJobRequest(job_id=huge)),
                 lambda: stub.WatchJob(render_pb2.WatchJobRequest(job_id=huge))):
        code, details = _code(call)
        assert code == CODE.NOT_FOUND, (code, details[:200])
        assert len(details) < 500


def test_bridge_overlong_paths_answer_400(env):
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.api.bridge import http_status_for
    from liveedit.sidecar.api.convert import job_spec_from_json

    long = "/" + "/".join(["d" * 200] * 30)
    with pytest.raises(LiveEditError) as caught:
        env["queue"].submit(job_spec_from_json({"regions": [{"media": str(env["clip"]), "first_frame": 0,
                                                            "frame_count": 3, "instruction": "x"}],
                                               "output_dir": long}))
    assert http_status_for(caught.value)[0] == 400
    assert len(str(caught.value)) < 1000


def test_log_values_are_cut():
    from liveedit.sidecar.outputs import cut

    assert cut("x" * 10) == "x" * 10
    short = cut("y" * 100_000)
    assert len(short) < 300 and "100000 characters" in short


# -- 8: a rejected job makes no folder ----------------------------------------------------------


def test_a_rejected_job_creates_no_output_folder(env):
    out = env["root"] / "never" / "made"
    request = render_pb2.SubmitJobRequest(regions=[_region(env, instruction="")], output_dir=str(out))
    code, _ = _code(lambda: _stub(env).SubmitJob(request))
    assert code == CODE.INVALID_ARGUMENT
    request = render_pb2.SubmitJobRequest(regions=[_region(env, media_path=str(env["root"] / "missing.mov"))],
                                          output_dir=str(out))
    code, _ = _code(lambda: _stub(env).SubmitJob(request))
    assert code in (CODE.INVALID_ARGUMENT, CODE.NOT_FOUND)
    assert not (env["root"] / "never").exists()


def test_no_process_wide_umask_in_the_sidecar():
    """os.umask changes the mode of every thread's new files: the sidecar sets modes per file."""
    import liveedit.sidecar

    root = Path(liveedit.sidecar.__file__).parent
    users = [p for p in root.rglob("*.py") if "os.umask(" in p.read_text()]
    assert users == []


# -- 9: limits ------------------------------------------------------------------------------------


def test_list_jobs_pages_and_delete_job(env):
    stub = _stub(env)
    ids = [stub.SubmitJob(render_pb2.SubmitJobRequest(regions=[_region(env)],
                                                      output_dir=str(env["root"] / "pages"))).id
           for _ in range(5)]
    seen, token = [], ""
    while True:
        page = stub.ListJobs(render_pb2.ListJobsRequest(page_size=2, page_token=token))
        assert len(page.jobs) <= 2
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert [i for i in seen if i in ids] == ids
    for job_id in ids:
        while stub.GetJob(render_pb2.GetJobRequest(job_id=job_id)).state in (render_pb2.JOB_STATE_QUEUED,
                                                                          render_pb2.JOB_STATE_RUNNING):
            pass
    stub.DeleteJob(render_pb2.DeleteJobRequest(job_id=ids[0]))
    assert _code(lambda: stub.GetJob(render_pb2.GetJobRequest(job_id=ids[0])))[0] == CODE.NOT_FOUND
    assert _code(lambda: stub.DeleteJob(render_pb2.DeleteJobRequest(job_id=ids[0])))[0] == CODE.NOT_FOUND


def test_a_running_job_cannot_be_deleted(env):
    stub = _stub(env)
    env["executor"].gate.clear()
    try:
        job = stub.SubmitJob(render_pb2.SubmitJobRequest(regions=[_region(env)],
                                                         output_dir=str(env["root"] / "del")))
        code, details = _code(lambda: stub.DeleteJob(render_pb2.DeleteJobRequest(job_id=job.id)))
        assert code == CODE.FAILED_PRECONDITION and "cancel" in details
    finally:
        env["executor"].gate.set()


def test_request_id_makes_a_retried_submit_queue_once(env):
    stub = _stub(env)
    request = render_pb2.SubmitJobRequest(regions=[_region(env)], output_dir=str(env["root"] / "retry"),
                                          request_id="retry-1")
    first = stub.SubmitJob(request)
    again = stub.SubmitJob(request)
    assert first.id == again.id
    other = render_pb2.SubmitJobRequest(regions=[_region(env, frame_count=4)],
                                        output_dir=str(env["root"] / "retry"), request_id="retry-1")
    code, details = _code(lambda: stub.SubmitJob(other))
    assert code == CODE.INVALID_ARGUMENT and "request_id" in details


def test_retention_forgets_finished_jobs(tmp_path):
    from liveedit.sidecar.jobs import DONE, JobSpec, RegionSpec

    clock = [1000.0]
    clip = write_clip(tmp_path / "clip.mov", 5)
    with RenderQueue(tmp_path / "jobs.sqlite", FakeRegionExecutor(), retention_seconds=60,
                     wall_clock=lambda: clock[0]) as queue:
        job = queue.submit(JobSpec(regions=(RegionSpec(media=clip, first_frame=0, frame_count=2,
                                                       instruction="x"),), output_dir=tmp_path / "o"))
        while queue.get(job.id).state != DONE:
            pass
        clock[0] += 61
        queue.expire()
        assert job.id not in [j.id for j in queue.list()]
    with RenderQueue(tmp_path / "jobs.sqlite", FakeRegionExecutor()) as queue:
        assert queue.list() == []  # gone from the database too


def test_edit_streams_are_capped(env):
    from liveedit.protos.liveedit.v1 import common_pb2, edit_pb2, edit_pb2_grpc

    stub = edit_pb2_grpc.EditStub(env["client"].channel)
    start = edit_pb2.EditRequest(start=edit_pb2.EditStart(instruction="x", width=8, height=8,
                                                          pixel_format=common_pb2.PIXEL_FORMAT_RGB24))
    hold = threading.Event()

    def requests():
        yield start
        hold.wait(30)
        yield edit_pb2.EditRequest(end=edit_pb2.EditEnd())

    first = stub.EditStream(requests())
    assert next(first).WhichOneof("kind") == "accepted"
    try:
        code, details = _code(lambda: stub.EditStream(iter([start])))
        assert code == CODE.RESOURCE_EXHAUSTED and "1" in details
    finally:
        hold.set()
        list(first)


def test_gpu_out_of_memory_maps_to_resource_exhausted():
    from liveedit.sidecar.api.server import status_for

    class OutOfMemoryError(RuntimeError):
        pass

    OutOfMemoryError.__module__ = "torch"
    code, message = status_for(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert code == CODE.RESOURCE_EXHAUSTED
    assert "memory" in message and ("smaller" in message or "fewer" in message)


def test_websocket_connections_are_capped(tmp_path):
    import aiohttp

    from liveedit.sidecar.api.bridge import start_bridge

    async def scenario():
        with RenderQueue(tmp_path / "jobs.sqlite", FakeRegionExecutor()) as queue:
            bridge = await start_bridge(queue, None, port=0, token="t" * 32, max_websockets=2,
                                        write_port_file=False)
            try:
                async with aiohttp.ClientSession() as session:
                    url = f"{bridge.url}/v1/events?token={'t' * 32}"
                    a = await session.ws_connect(url)
                    b = await session.ws_connect(url)
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await session.ws_connect(url)
                    assert refused.value.status == 429
                    await a.close()
                    c = await session.ws_connect(url)  # a closed one frees its place
                    await b.close()
                    await c.close()
            finally:
                await bridge.close()

    asyncio.run(scenario())


# -- 6 and 7: the socket and the queue lock -------------------------------------------------------


def test_serve_never_deletes_an_ordinary_file_at_the_socket_path(tmp_path):
    from liveedit.errors import LiveEditError
    from liveedit.sidecar.api.server import clear_stale_socket

    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(LiveEditError, match="not a socket"):
        clear_stale_socket(precious)
    assert precious.read_text() == "keep me"


def test_a_stale_socket_is_still_removed(tmp_path):
    import socket

    from liveedit.sidecar.api.server import clear_stale_socket

    path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()  # bound, never listening: what a crashed server leaves
    clear_stale_socket(path)
    assert not path.exists()


def test_second_serve_stops_before_loading_the_model(tmp_path, monkeypatch, capsys):
    from liveedit.cli import main
    from liveedit.sidecar.jobs import RenderQueue as Queue

    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(tmp_path / "run"))

    def refuse(*a, **k):
        raise AssertionError("the model was loaded although another sidecar holds the queue")

    monkeypatch.setattr("liveedit.commands.serve.load_models", refuse)
    db = tmp_path / "jobs.sqlite"
    with Queue(db, FakeRegionExecutor()):
        code = main(["serve", "--model", "tiny", "--jobs-db", str(db), "--no-bridge",
                     "--socket", str(tmp_path / "s.sock")])
    assert code == 1
    assert "another LiveEdit sidecar" in capsys.readouterr().err


def test_second_serve_on_a_live_socket_stops_before_loading_the_model(tmp_path, monkeypatch, capsys):
    import socket

    from liveedit.cli import main

    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(tmp_path / "run"))

    def refuse(*a, **k):
        raise AssertionError("the model was loaded although another server listens on the socket")

    monkeypatch.setattr("liveedit.commands.serve.load_models", refuse)
    path = tmp_path / "s.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        assert main(["serve", "--model", "tiny", "--no-jobs", "--socket", str(path)]) == 1
    finally:
        listener.close()
    assert "already listening" in capsys.readouterr().err
