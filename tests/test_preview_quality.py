"""Fast previews (`liveedit serve --preview-quality fast`): preview seeks use the tiny VAE and
the mask cache, renders on the same server stay full quality, the preview cache keeps the two
qualities apart, ServerInfo says which one is served, and fast without the tiny VAE is refused.
Real tiny model (random weights, CPU)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from liveedit.sidecar.preview import PreviewConfig
from liveedit.sidecar.api.server import ServerOptions, Sidecar
from liveedit.sidecar.worker import PreviewQualityError, choose_preview_quality
from preview_media import source_frame, write_clip

pytestmark = pytest.mark.slow

INSTRUCTION, SEED = "make it snowy", 3
CLIP_FRAMES = 21  # a 9-frame chunk, then a 12-frame one: the mask cache prunes only from chunk 2 on


@pytest.fixture(scope="module")
def models():
    from liveedit.engine.editor import EditorModels
    from liveedit.engine.presets import get_preset

    # Random weights as served: the tiny VAE of EditorModels.random decodes to pictures that depend
    # on the latents (it decoded everything to black once, issue 15 point 16).
    return EditorModels.random(get_preset("tiny"), seed=0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("media") / "clip.mov", CLIP_FRAMES)


@pytest.fixture(scope="module")
def direct(models):
    """The whole clip edited in process: full quality, fast (tiny VAE + mask cache), and the
    tiny VAE alone (to show the mask cache is really on)."""
    from liveedit.engine.config import MaskCacheConfig
    from liveedit.sidecar.delivery import make_editor

    frames = [source_frame(i) for i in range(CLIP_FRAMES)]
    settings = {"full": {}, "fast": dict(preview_vae=True, mask_cache=MaskCacheConfig()),
                "tiny_vae_only": dict(preview_vae=True)}
    return {name: list(make_editor(models, instruction=INSTRUCTION, seed=SEED, **kw).edit(frames))
            for name, kw in settings.items()}


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("LIVEEDIT_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path


def sidecar_of(models, quality: str) -> Sidecar:
    return Sidecar(models, ServerOptions(preview=PreviewConfig(quality=quality)))


def seek(sidecar: Sidecar, clip: Path, frame: int) -> tuple[list[int], list[np.ndarray], bool]:
    async def run():
        session = sidecar.previews.open(clip, INSTRUCTION, SEED)
        out = [o async for o in sidecar.previews.seek(session.id, frame)]
        sidecar.previews.close(session.id)
        return out

    out = asyncio.run(run())
    return [o.frame for o in out], [o.pixels for o in out], all(o.cached for o in out)


def close(*sidecars: Sidecar) -> None:
    for sidecar in sidecars:
        sidecar.previews.close_all()
        asyncio.run(sidecar.worker.close(drain=False))


def assert_frames_equal(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_fast_preview_seeks_use_the_tiny_vae_and_the_mask_cache_and_never_mix_with_full(models, clip, direct):
    chunk = slice(9, 21)  # frame 14 lies in the second chunk, the first the mask cache prunes
    fast_direct, full_direct = direct["fast"][chunk], direct["full"][chunk]
    assert not all(np.array_equal(a, b) for a, b in zip(fast_direct, direct["tiny_vae_only"][chunk]))
    assert not any(np.array_equal(a, b) for a, b in zip(fast_direct, full_direct))

    full, fast = sidecar_of(models, "full"), sidecar_of(models, "fast")
    fast.previews.cache = full.previews.cache  # one cache for both: only the key keeps them apart
    try:
        numbers, frames, cached = seek(full, clip, 14)
        assert numbers == list(range(9, 21)) and not cached
        assert_frames_equal(frames, full_direct)

        numbers, frames, cached = seek(fast, clip, 14)
        assert numbers == list(range(9, 21)) and not cached  # full's chunks are not served as fast
        assert_frames_equal(frames, fast_direct)

        for sidecar, want in ((full, full_direct), (fast, fast_direct)):  # each hits its own entries
            _, frames, cached = seek(sidecar, clip, 14)
            assert cached
            assert_frames_equal(frames, want)
        assert len(full.previews.cache) == 4  # two chunks of each quality, side by side
    finally:
        close(full, fast)


def test_fast_server_reports_its_preview_quality_and_renders_at_full_quality(models, clip, direct, dirs):
    from liveedit.clients.python import LiveEditClient
    from liveedit.commands.serve import _bridge_info
    from liveedit.sidecar.jobs import DONE, JobSpec, LocalExecutor, RegionSpec, RenderQueue
    from server_fakes import ServerThread

    sidecar = sidecar_of(models, "fast")
    sidecar.render_queue = RenderQueue(dirs / "jobs.db", LocalExecutor(worker=sidecar.worker))
    server = ServerThread(sidecar)
    try:
        with LiveEditClient.connect() as client:
            assert client.info().preview_quality == "fast"
            with client.open_preview(clip, INSTRUCTION, seed=SEED) as preview:
                seen = list(preview.seek(4))
        assert [f.frame for f in seen] == list(range(9))
        assert_frames_equal([f.image for f in seen], direct["fast"][:9])
        assert _bridge_info(sidecar)["preview_quality"] == "fast"  # GET /v1/info mirrors ServerInfo

        spec = JobSpec(regions=(RegionSpec(media=clip, first_frame=0, frame_count=CLIP_FRAMES,
                                           instruction=INSTRUCTION, seed=SEED),),
                       output_dir=dirs / "renders", format="png")
        job = sidecar.render_queue.submit(spec)
        deadline = time.monotonic() + 240
        while not (job := sidecar.render_queue.get(job.id)).finished:
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
    finally:
        server.stop()
    assert job.state == DONE, job.regions[0].error
    rendered = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(job.regions[0].output).glob("*.png"))]
    assert_frames_equal(rendered, direct["full"])


def test_quality_choice_and_fast_without_the_tiny_vae_is_refused(models):
    without = dataclasses.replace(models, tiny_vae=None)
    assert choose_preview_quality(models) == "fast"  # default: fast when the tiny VAE is loaded
    assert choose_preview_quality(without) == "full"
    assert choose_preview_quality(models, "full") == "full"
    with pytest.raises(PreviewQualityError, match="taew2_1.pth in the --weights folder"):
        choose_preview_quality(without, "fast")
    with pytest.raises(PreviewQualityError, match="taew2_1.pth in the --weights folder"):
        sidecar_of(without, "fast")
    with pytest.raises(PreviewQualityError, match="unknown preview quality 'best'; use one of full, fast"):
        PreviewConfig(quality="best")


def test_serve_command_picks_and_announces_the_preview_quality(monkeypatch, tmp_path, capsys, dirs):
    from liveedit.cli import main
    from liveedit.commands import serve

    served = []

    async def fake_serve(sidecar, bridge_port, args=None):  # stands in for serving until Ctrl-C
        served.append(sidecar.info.describe().preview_quality)
        await sidecar.worker.close(drain=False)
        return 0

    monkeypatch.setattr(serve, "_serve", fake_serve)
    base = ["serve", "--model", "tiny", "--device", "cpu", "--no-jobs"]
    assert main(base) == 0
    assert main(base + ["--preview-quality", "full"]) == 0
    assert served == ["fast", "full"]
    err = capsys.readouterr().err
    assert "previews at fast quality (tiny preview VAE + mask cache" in err
    assert "previews at full quality" in err

    # released weights without taew2_1.pth: refused before minutes of model loading
    assert main(["serve", "--preview-quality", "fast", "--weights", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"put taew2_1.pth in the --weights folder ({tmp_path})" in err
    assert "--preview-quality full" in err and "Traceback" not in err
