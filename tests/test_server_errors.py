"""Bad input never takes the server down and gets a specific status code and message;
a property-based test throws random bytes and random field values at every method."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveedit.clients.python import LiveEditClient, ServerError
from liveedit.protos.liveedit.v1 import (common_pb2, edit_pb2, edit_pb2_grpc, preview_pb2, preview_pb2_grpc,
                                         render_pb2, render_pb2_grpc)
from liveedit.sidecar.jobs import RegionResult, RenderQueue
from liveedit.sidecar.api.server import ModelCard, ServerOptions, Sidecar
from preview_media import write_clip
from server_fakes import InvertEditor, ServerThread, make_clip

CODE = grpc.StatusCode
CARD = ModelCard(preset="fake", random_weights=True, description="fake editor with RANDOM weights")
MAX_MESSAGE = 2 * 2**20  # small, so the oversized-message case stays cheap


class FakeRegionExecutor:
    """Writes a small file per region, reporting progress per frame; waits on `gate`."""

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()

    def run(self, task, progress, cancel):
        for done in range(1, task.region.frame_count + 1):
            while not self.gate.wait(0.02):
                progress(done - 1, task.region.frame_count)  # raises RegionCancelled once cancelled
            progress(done, task.region.frame_count)
        out = task.output_stem.with_suffix(".mov")
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_bytes(b"segment")
        tmp.replace(out)
        return RegionResult(output=out, frame_count=task.region.frame_count)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors")
    mp = pytest.MonkeyPatch()
    mp.setenv("LIVEEDIT_CONFIG_DIR", str(root / "cfg"))
    mp.setenv("LIVEEDIT_RUNTIME_DIR", str(root / "run"))
    executor = FakeRegionExecutor()
    queue = RenderQueue(root / "jobs.sqlite", executor)
    sidecar = Sidecar(None, ServerOptions(max_message_bytes=MAX_MESSAGE), editor_factory=InvertEditor,
                      card=CARD, render_queue=queue)
    server = ServerThread(sidecar)
    clip = write_clip(root / "clip.mov", 20)
    client = LiveEditClient.connect()
    yield {"server": server, "client": client, "clip": clip, "root": root, "executor": executor}
    client.close()
    server.stop()
    mp.undo()


def code_of(fn) -> tuple[grpc.StatusCode, str]:
    try:
        result = fn()
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    except grpc.RpcError as exc:
        return exc.code(), exc.details()
    except ServerError as exc:
        return exc.code, exc.details
    return CODE.OK, ""


def start_msg(**kw):
    fields = dict(instruction="invert", seed=0, width=24, height=16,
                  pixel_format=common_pb2.PIXEL_FORMAT_RGB24)
    fields.update(kw)
    return edit_pb2.EditRequest(start=edit_pb2.EditStart(**fields))


def frame_msg(index, data):
    return edit_pb2.EditRequest(frame=edit_pb2.SourceFrame(index=index, pixels=common_pb2.FramePixels(data=data)))


def edit_call(env, requests):
    stub = edit_pb2_grpc.EditStub(env["client"].channel)
    return code_of(lambda: stub.EditStream(iter(requests), timeout=10))


GOOD = bytes(24 * 16 * 3)


@pytest.mark.parametrize("name,requests,code,words", [
    ("wrong frame size", [start_msg(), frame_msg(0, GOOD[:-3])], CODE.INVALID_ARGUMENT, "bytes"),
    ("frame out of order", [start_msg(), frame_msg(3, GOOD)], CODE.INVALID_ARGUMENT, "in order"),
    ("frames before start", [frame_msg(0, GOOD)], CODE.INVALID_ARGUMENT, "start"),
    ("empty stream", [], CODE.INVALID_ARGUMENT, "start"),
    ("empty instruction", [start_msg(instruction="")], CODE.INVALID_ARGUMENT, "empty"),
    ("100 KB instruction", [start_msg(instruction="x" * 100_000)], CODE.INVALID_ARGUMENT, "limit"),
    ("no pixel format", [start_msg(pixel_format=0)], CODE.INVALID_ARGUMENT, "pixel_format"),
    ("zero size", [start_msg(width=0)], CODE.INVALID_ARGUMENT, "width"),
    ("second start", [start_msg(), start_msg()], CODE.INVALID_ARGUMENT, "second start"),
    ("slot without ring", [start_msg(), edit_pb2.EditRequest(frame=edit_pb2.SourceFrame(
        index=0, pixels=common_pb2.FramePixels(slot=0)))], CODE.INVALID_ARGUMENT, "bytes"),
    ("shared memory without ring", [start_msg(transport=common_pb2.FRAME_TRANSPORT_SHARED_MEMORY)],
     CODE.INVALID_ARGUMENT, "ring"),
    ("oversized message", [start_msg(), frame_msg(0, bytes(MAX_MESSAGE + 1000))], CODE.RESOURCE_EXHAUSTED, ""),
])
def test_bad_edit_streams(env, name, requests, code, words):
    got, details = edit_call(env, requests)
    assert got == code, (name, got, details)
    assert words.lower() in details.lower()


def test_ring_of_another_machine_falls_back_to_in_message(env):
    ring = common_pb2.SharedMemoryRing(name="liveedit_doesnotexist", slot_count=16,
                                       slot_bytes=24 * 16 * 3, header_bytes=64, nonce=bytes(16))
    stub = edit_pb2_grpc.EditStub(env["client"].channel)
    responses = list(stub.EditStream(iter([start_msg(transport=common_pb2.FRAME_TRANSPORT_SHARED_MEMORY,
                                                     ring=ring), frame_msg(0, GOOD),
                                           edit_pb2.EditRequest(end=edit_pb2.EditEnd())]), timeout=10))
    accepted = responses[0].accepted
    assert accepted.transport == common_pb2.FRAME_TRANSPORT_IN_MESSAGE
    assert "cannot open shared memory" in accepted.fallback_reason
    assert [r.WhichOneof("kind") for r in responses] == ["accepted", "frame", "chunk", "finished"]


def test_bad_preview_and_render_requests(env, tmp_path):
    client, clip = env["client"], env["clip"]
    preview = preview_pb2_grpc.PreviewStub(client.channel)
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"\x00garbage" * 50)
    cases = [
        (lambda: client.open_preview(tmp_path / "missing.mov", "invert"), CODE.NOT_FOUND, "does not exist"),
        (lambda: client.open_preview(junk, "invert"), CODE.INVALID_ARGUMENT, "cannot be opened as media"),
        (lambda: client.open_preview(clip, ""), CODE.INVALID_ARGUMENT, "empty"),
        (lambda: client.open_preview(clip, "y" * 100_000), CODE.INVALID_ARGUMENT, "limit"),
        (lambda: client.open_preview("", "invert"), CODE.INVALID_ARGUMENT, "media_path"),
        (lambda: preview.Seek(preview_pb2.SeekRequest(session_id="nope", frame=0)), CODE.NOT_FOUND, "OpenSession"),
        (lambda: preview.CloseSession(preview_pb2.CloseSessionRequest(session_id="nope")), CODE.NOT_FOUND, ""),
        (lambda: client.open_preview(clip, "invert").seek(20), CODE.OUT_OF_RANGE, "outside"),
        (lambda: client.get_job("nope"), CODE.NOT_FOUND, "nope"),
        (lambda: client.cancel_job("nope"), CODE.NOT_FOUND, ""),
        (lambda: client.watch_job("nope"), CODE.NOT_FOUND, ""),
        (lambda: client.submit_job([], tmp_path / "out"), CODE.INVALID_ARGUMENT, "region"),
        # A job naming a missing file is a job that cannot be rendered as given, as over HTTP.
        (lambda: client.submit_job([{"media": str(tmp_path / "missing.mov"), "first_frame": 0, "frame_count": 5,
                                     "instruction": "x"}], tmp_path / "out"), CODE.INVALID_ARGUMENT, "does not exist"),
        (lambda: client.submit_job([{"media": str(clip), "first_frame": 0, "frame_count": 5,
                                     "instruction": ""}], tmp_path / "out"), CODE.INVALID_ARGUMENT, "empty"),
        (lambda: render_pb2_grpc.RenderStub(client.channel).SubmitJob(render_pb2.SubmitJobRequest(
            timeline=render_pb2.TimelineSource(path=str(tmp_path / "x.otio")), output_dir=str(tmp_path))),
         CODE.INVALID_ARGUMENT, "does not exist"),
    ]
    for i, (call, code, words) in enumerate(cases):
        got, details = code_of(call)
        assert got == code, (i, got, details)
        assert words.lower() in details.lower(), (i, details)
    assert client.info().version  # still up


def test_malformed_bytes_get_invalid_argument(env):
    channel = env["client"].channel
    for method in ("/liveedit.v1.Preview/OpenSession", "/liveedit.v1.Render/GetJob",
                   "/liveedit.v1.ServerInfo/GetInfo"):
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        got, details = code_of(lambda: call(b"\xff\xff\xff\xff", timeout=5))
        assert got == CODE.INVALID_ARGUMENT and "malformed" in details, (method, got, details)
    stream = channel.stream_stream("/liveedit.v1.Edit/EditStream", request_serializer=None,
                                   response_deserializer=None)
    got, details = code_of(lambda: stream(iter([b"\x0a\x05\xff"]), timeout=5))
    assert got == CODE.INVALID_ARGUMENT and "malformed" in details


def test_client_that_goes_away_mid_stream_releases_its_gpu_state(env):
    sidecar = env["server"].sidecar
    editors = weakref.WeakSet()
    original_factory = sidecar.worker.editor_factory

    def tracking_factory(models, instruction, seed):
        editor = original_factory(models, instruction, seed)
        editors.add(editor)
        return editor

    sidecar.worker.editor_factory = tracking_factory
    try:
        stub = edit_pb2_grpc.EditStub(env["client"].channel)
        sent_all = threading.Event()

        def requests():
            yield start_msg()
            for i in range(12):
                yield frame_msg(i, GOOD)
            sent_all.set()
            time.sleep(30)  # the client stops sending but keeps the call open

        call = stub.EditStream(requests())
        got = [next(call) for _ in range(3)]  # accepted + first frames
        assert got[0].WhichOneof("kind") == "accepted" and len(editors) == 1
        call.cancel()
        deadline = time.time() + 10
        while time.time() < deadline and (sidecar.edit.active or len(editors)):
            gc.collect()
            time.sleep(0.05)
        assert sidecar.edit.active == 0
        assert len(editors) == 0, "the editor (GPU state) of a cancelled stream is still referenced"
    finally:
        sidecar.worker.editor_factory = original_factory
    assert env["client"].info().version


def test_render_jobs_submit_watch_list_cancel(env, tmp_path):
    client, clip, executor = env["client"], env["clip"], env["executor"]
    region = {"media": str(clip), "first_frame": 2, "frame_count": 5, "instruction": "invert", "seed": 1,
              "record_start": {"frame": 86400, "rate": [24000, 1001]}}
    job = client.submit_job([region], tmp_path / "out", format="png", label="shot 12")
    assert job.label == "shot 12" and len(job.regions) == 1
    states = [j.state for j in client.watch_job(job.id, timeout=20)]
    assert states[-1] == render_pb2.JOB_STATE_DONE
    done = client.get_job(job.id)
    assert done.regions[0].frames_done == 5 and Path(done.regions[0].output).exists()
    assert job.id in [j.id for j in client.list_jobs()]
    executor.gate.clear()
    try:
        slow = client.submit_job([region], tmp_path / "out2")
        cancelled = client.cancel_job(slow.id)
        assert cancelled.id == slow.id
        final = list(client.watch_job(slow.id, timeout=20))[-1]
        assert final.state == render_pb2.JOB_STATE_CANCELLED
    finally:
        executor.gate.set()
    assert clip.read_bytes()[:4]  # source untouched and readable


def test_bad_render_settings_and_timelines_are_invalid_arguments(env, tmp_path):
    import opentimelineio as otio

    clip = env["clip"]
    stub = render_pb2_grpc.RenderStub(env["client"].channel)
    region = render_pb2.RenderRegion(media_path=str(clip), first_frame=0, frame_count=5, instruction="x")

    # A one-clip timeline whose clip is retimed: `liveedit render` refuses that region, so does the server.
    rate = 24
    ref = otio.schema.ExternalReference(target_url=str(clip), available_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(20, rate)))
    retimed = otio.schema.Clip(name="clip.mov", media_reference=ref, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(8, rate)))
    retimed.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(retimed)
    timeline = otio.schema.Timeline()
    timeline.tracks.append(track)
    retimed_path = tmp_path / "retimed.otio"
    otio.adapters.write_to_file(timeline, str(retimed_path))
    not_a_timeline = tmp_path / "notes.otio"
    not_a_timeline.write_text("not a timeline")

    def submit(**kw):
        return lambda: stub.SubmitJob(render_pb2.SubmitJobRequest(output_dir=str(tmp_path / "out"), **kw))

    def source(**kw):
        return render_pb2.TimelineSource(**kw)

    jobs_before = len(env["client"].list_jobs())
    cases = [
        (submit(regions=[region], mask_cache=render_pb2.MaskCacheSettings(keep_ratio=2.0)), "keep_ratio must be in"),
        (submit(regions=[region], mask_cache=render_pb2.MaskCacheSettings(pruned_sublayers=["mlp"])),
         "pruned_sublayers"),
        (submit(regions=[region], save_masks=True), "set mask_cache too"),
        (submit(regions=[render_pb2.RenderRegion(media_path=str(clip), first_frame=0, frame_count=5,
                                                 instruction="x", name="../escape")]), "outside output_dir"),
        (submit(timeline=source(path="show.otio")), "absolute path"),
        (submit(regions=[region], timeline=source(path=str(retimed_path))), "not both"),
        (submit(timeline=source(path=str(not_a_timeline))), str(not_a_timeline)),
        (submit(timeline=source(path=str(retimed_path), instruction="make it red")), "1 region(s) cannot be rendered"),
        (submit(timeline=source(path=str(retimed_path), instruction="x", in_timecode="00:00:00:01")), "both an in"),
        (submit(timeline=source(path=str(retimed_path))), "no Green markers with an instruction"),
    ]
    for i, (call, words) in enumerate(cases):
        got, details = code_of(call)
        assert got == CODE.INVALID_ARGUMENT, (i, got, details)
        assert words.lower() in details.lower(), (i, details)
    got, details = code_of(submit(timeline=source(path=str(retimed_path), instruction="make it red")))
    assert "retim" in details.lower() or "speed" in details.lower(), details  # the timeline's own reason, passed on
    assert len(env["client"].list_jobs()) == jobs_before  # nothing was queued


# -- property-based: random requests never crash the server or answer INTERNAL ----------------

TRIED = {"cases": 0, "codes": {}}
UNARY_METHODS = ["/liveedit.v1.ServerInfo/GetInfo", "/liveedit.v1.Preview/OpenSession",
                 "/liveedit.v1.Preview/CloseSession", "/liveedit.v1.Render/SubmitJob",
                 "/liveedit.v1.Render/GetJob", "/liveedit.v1.Render/CancelJob",
                 "/liveedit.v1.Render/ListJobs"]
STREAM_METHODS = ["/liveedit.v1.Preview/Seek", "/liveedit.v1.Render/WatchJob"]


def _record(code):
    TRIED["cases"] += 1
    TRIED["codes"][code] = TRIED["codes"].get(code, 0) + 1
    assert code != CODE.INTERNAL
    assert code != CODE.UNKNOWN


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(UNARY_METHODS + STREAM_METHODS), payload=st.binary(max_size=300))
def test_random_bytes_to_every_method(env, method, payload):
    channel = env["client"].channel
    if method in STREAM_METHODS:
        call = channel.unary_stream(method, request_serializer=None, response_deserializer=None)
    else:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    code, _ = code_of(lambda: call(payload, timeout=10))
    _record(code)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(instruction=st.text(max_size=50), seed=st.integers(0, 2**64 - 1),
       width=st.integers(0, 2**32 - 1), height=st.integers(0, 2**32 - 1),
       pixel_format=st.integers(0, 5), transport=st.integers(0, 4),
       frames=st.lists(st.tuples(st.integers(0, 2**64 - 1), st.binary(max_size=64)), max_size=3),
       media=st.text(max_size=30), frame=st.integers(0, 2**64 - 1))
def test_random_field_values(env, instruction, seed, width, height, pixel_format, transport, frames,
                             media, frame):
    start = start_msg(instruction=instruction, seed=seed, width=width, height=height,
                      pixel_format=pixel_format, transport=transport)
    code, _ = edit_call(env, [start] + [frame_msg(i, data) for i, data in frames])
    _record(code)
    preview = preview_pb2_grpc.PreviewStub(env["client"].channel)
    code, _ = code_of(lambda: preview.OpenSession(preview_pb2.OpenPreviewRequest(
        media_path=media, instruction=instruction, seed=seed, max_height=width % 10000,
        region_first_frame=frame), timeout=10))
    _record(code)
    code, _ = code_of(lambda: preview.Seek(preview_pb2.SeekRequest(session_id=media, frame=frame), timeout=10))
    _record(code)


def test_property_tests_ran_and_the_server_is_still_up(env):
    # Runs after the two property tests (file order): they tried real cases, the server answers.
    print("property cases tried:", TRIED)
    assert TRIED["cases"] >= 100, TRIED
    assert CODE.INVALID_ARGUMENT in TRIED["codes"]
    info = env["client"].info()
    assert info.random_weights
    frames = make_clip(3)
    assert len(list(env["client"].edit_stream(frames, "invert"))) == 3
