"""--ray on the command line and the workers in the server's description, without a cluster
(test_ray_executor.py runs the real one)."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from liveedit.cli import main
from liveedit.commands._ray import ray_address
from liveedit.commands.status import worker_line
from liveedit.protos.liveedit.v1 import server_info_pb2
from liveedit.sidecar.jobs.ray_executor import WorkerStatus
from liveedit.sidecar.api.servicers import ModelCard, ServerInfoServicer


@pytest.fixture
def without_ray(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))


@pytest.mark.parametrize("command", [["serve", "--ray"], ["serve", "--ray=10.0.0.5:6379"],
                                     ["render", "missing.otio", "-o", "out", "--ray", "auto"]])
def test_without_ray_installed_ray_says_how_to_install_it_before_anything_loads(without_ray, capsys, command):
    assert main(command) == 1
    err = capsys.readouterr().err
    assert "needs Ray, which is not installed here: pip install 'liveedit-sidecar[ray]'" in err
    assert "Traceback" not in err


def test_ray_options_are_checked(capsys):
    assert ray_address("") == "" and ray_address("auto") == "auto" and ray_address("[::1]:6379") == "[::1]:6379"
    for bad in ("clip.mov", "host:", "host:0", "host:99999"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a Ray cluster address"):
            ray_address(bad)
    assert main(["serve", "--ray", "--no-jobs"]) == 1
    assert "cannot go with --no-jobs" in capsys.readouterr().err
    assert main(["serve", "--ray-workers", "2"]) == 1
    assert "--ray-workers goes with --ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--ray", "--ray-workers", "0"])
    assert "must be 1 or more" in capsys.readouterr().err
    assert main(["render", "missing.otio", "-o", "out", "--ray", "--sidecar"]) == 1
    assert "give one" in capsys.readouterr().err


class FakeRayExecutor:
    def describe(self):
        return "ray cluster at 10.0.0.5:6379, 2 GPU worker(s)"

    def workers(self):
        return [WorkerStatus(0, "rendering", host="gpu-a", node_ip="10.0.0.7", pid=4242, gpu_ids=("0",),
                             device="cuda:0", device_name="NVIDIA H200", job_id="0123456789abcdef", region_index=3,
                             frames_done=40, frames_total=81, regions_done=2),
                WorkerStatus(1, "failed", error="worker 1: could not load the models: no weights in /shared/w")]


def test_the_server_lists_the_render_workers_and_status_prints_them():
    info = ServerInfoServicer(ModelCard("tiny", True, "tiny with RANDOM weights"), 2**20)
    assert info.describe().render_executor == "" and not info.describe().render_workers  # no render queue

    from liveedit.sidecar.jobs import LocalExecutor

    info.render_executor = LocalExecutor(models="m")
    assert info.describe().render_executor == "local (cpu)" and not info.describe().render_workers

    info.render_executor = FakeRayExecutor()
    described = info.describe()
    assert described.render_executor == "ray cluster at 10.0.0.5:6379, 2 GPU worker(s)"
    busy, failed = described.render_workers
    assert (busy.host, busy.pid, list(busy.gpu_ids), busy.device_name) == ("gpu-a", 4242, ["0"], "NVIDIA H200")
    assert (busy.job_id, busy.region_index, busy.frames_done, busy.frame_count) == ("0123456789abcdef", 3, 40, 81)
    again = server_info_pb2.ServerInfoResponse.FromString(described.SerializeToString())  # over the wire
    assert worker_line(again.render_workers[0]) == (
        "  worker 0   gpu-a (10.0.0.7) pid 4242, GPU 0 [NVIDIA H200]: rendering job 0123456789ab region 3 "
        "(40/81 frames), 2 region(s) done")
    assert worker_line(again.render_workers[1]) == (
        "  worker 1   ?, GPU - [not loaded yet]: failed - worker 1: could not load the models: no weights in /shared/w")


def test_liveedit_status_lists_the_workers_of_a_running_sidecar(tmp_path, monkeypatch, capsys):
    """The whole way: the queue's executor → the server's GetInfo → `liveedit status`."""
    from liveedit.sidecar.api.server import ServerOptions, Sidecar
    from liveedit.sidecar.jobs import RenderQueue
    from server_fakes import InvertEditor, ServerThread

    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(tmp_path / "run"))
    queue = RenderQueue(tmp_path / "jobs.sqlite", FakeRayExecutor())
    card = ModelCard(preset="fake", random_weights=True, description="fake editor with RANDOM weights")
    server = ServerThread(Sidecar(None, ServerOptions(), editor_factory=InvertEditor, card=card, render_queue=queue))
    try:
        assert main(["status"]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "renders     ray cluster at 10.0.0.5:6379, 2 GPU worker(s)" in out
    assert "worker 0   gpu-a (10.0.0.7) pid 4242, GPU 0 [NVIDIA H200]: rendering job 0123456789ab region 3" in out
    assert "worker 1   ?, GPU - [not loaded yet]: failed - worker 1: could not load the models" in out


def test_a_ray_worker_runs_load_warm_up_and_every_render_on_one_thread(tmp_path, monkeypatch):
    """PyTorch keeps cuDNN's benchmarked convolution plans per thread, and Ray runs a threaded
    actor's calls on any thread of its pool: renders on threads the warm-up never used cost
    2.9 s more per region on an H200. The worker keeps all model work on one thread of its own,
    whichever thread Ray calls it from (the class, run here without Ray)."""
    import threading
    from types import SimpleNamespace

    from liveedit.sidecar.jobs import executor
    from liveedit.sidecar.jobs.executor import RegionResult
    from liveedit.sidecar.jobs.ray_driver import RegionWorker

    seen = {"load": [], "render": [], "callers": []}

    class Spec:
        def load(self):
            seen["load"].append(threading.get_ident())
            return SimpleNamespace(device=SimpleNamespace(type="cpu"))

    def fake_render(task, models, progress, cancel, render=None):
        seen["render"].append(threading.get_ident())
        progress(1, 1)
        return RegionResult(output=task.output_stem.with_suffix(".mov"), frame_count=1)

    monkeypatch.setattr(executor, "render_task", fake_render)
    media = tmp_path / "clip.mov"
    media.write_bytes(b"x")
    worker = RegionWorker(Spec())

    together = threading.Barrier(3)  # all three callers alive at once: distinct thread ids

    def call(i):
        together.wait(timeout=10)
        seen["callers"].append(threading.get_ident())
        task = SimpleNamespace(region=SimpleNamespace(media=str(media)), output_dir=tmp_path,
                               output_stem=tmp_path / f"r{i}", index=i, job_id="j")
        outcome = worker.render(f"k{i}", task)
        assert outcome["outcome"] == "done", outcome

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen["render"]) == 3 and len(set(seen["callers"])) == 3
    assert set(seen["render"]) == set(seen["load"])  # one thread for everything
    assert not set(seen["render"]) & set(seen["callers"])
