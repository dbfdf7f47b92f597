"""The render queue end to end with the real tiny model (random weights) on a generated clip:
the local executor on the GPU worker, `render_region`, a playable segment with the region's
frames plus handles, its OTIO, and the source untouched."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import opentimelineio as otio
import pytest

from liveedit.sidecar.jobs import DONE, JobSpec, LocalExecutor, RegionSpec, RenderQueue
from media_fixtures import ffprobe_frame_count

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    return EditorModels.random(get_preset("tiny"), seed=0)


def test_a_job_renders_with_the_tiny_model_on_the_gpu_worker(media_clips, tmp_path, tiny_models):
    import asyncio

    from liveedit.sidecar.worker import GpuWorker

    source = media_clips["ntsc_film"]  # 30 frames at 24000/1001, timecode 01:00:00:00
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    worker = GpuWorker(tiny_models)
    spec = JobSpec(
        regions=(RegionSpec(media=source, first_frame=4, frame_count=10, instruction="make the fur snowy white",
                            seed=1, handles=2),),
        output_dir=tmp_path / "renders", format="h264", label="e2e")
    try:
        with RenderQueue(tmp_path / "jobs.db", LocalExecutor(worker=worker)) as queue:
            job = queue.submit(spec)
            deadline = time.monotonic() + 240
            while not (job := queue.get(job.id)).finished:
                assert time.monotonic() < deadline, job
                time.sleep(0.1)
    finally:
        asyncio.run(worker.close())
    region = job.regions[0]
    assert job.state == DONE, region.error
    output, otio_path = Path(region.output), Path(region.otio)
    assert output.parent == (tmp_path / "renders").resolve() and output.is_file()
    assert region.frame_count == region.frames_done == 14  # 10 frames + 2 handles each side
    assert ffprobe_frame_count(output) == 14  # counted by ffmpeg, not by us
    timeline = otio.adapters.read_from_file(str(otio_path))
    assert any(track.name == "LiveEdit" for track in timeline.video_tracks())
    assert region.fps and region.fps > 0 and region.eta_seconds == 0
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
