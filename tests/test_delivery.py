"""sidecar/delivery.py: edits delivered at the source's size and bit depth, end to end through
render_region and the command line, for every pixel format the reader accepts (8/10/12-bit,
4:2:0/4:2:2/4:4:4, full and limited range), with an identity stand-in for the model
(tests/identity_editor.py) where exact pixels are checked; and the detail settings travelling
with jobs (wire JSON, gRPC, settings key, provenance)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import opentimelineio as otio
import pytest

from identity_editor import models, stand_in  # noqa: F401 (fixtures the tests name)
from liveedit.cli import main
from liveedit.engine.config import DetailConfig
from liveedit.sidecar.delivery import change_mask_path, editor_factory, make_editor, read_dtype
from liveedit.sidecar.jobs import JobSpec, JobSpecError, RegionSpec, RenderSettings, validate_spec
from liveedit.sidecar.media import probe, read_frames
from liveedit.sidecar.render import render_job_region as render_region  # job regions, as `liveedit edit` renders


def _region(path: Path, count: int) -> RegionSpec:
    return RegionSpec(media=Path(path), first_frame=0, frame_count=count, instruction="make it snowy", seed=0)


def png_frames(folder: Path) -> list[np.ndarray]:
    frames = []
    for path in sorted(folder.glob("*.png")):
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            frames.append(frame.to_ndarray(format="rgb48le" if frame.format.name.startswith("rgb48") else "rgb24"))
    return frames


def _provenance(otio_path: Path) -> dict:
    timeline = otio.adapters.read_from_file(str(otio_path))
    (track,) = [t for t in timeline.video_tracks() if t.name == "LiveEdit"]
    (clip,) = list(track.find_clips())
    return json.loads(json.dumps(clip.metadata["liveedit"], default=lambda o: dict(o) if hasattr(o, "keys") else list(o)))


# -- exact frames through the whole path ----------------------------------------------------------


@pytest.mark.parametrize("clip,bits", [("tenbit", 10), ("tenbit_420", 10), ("twelvebit_444_full", 12), ("odd", 8)],
                         ids=["10bit-422-prores", "10bit-420", "12bit-444-full-range-odd-size", "8bit-420-odd-size"])
def test_an_identity_edit_writes_the_source_frames_exactly(media_clips, tmp_path, models, stand_in, clip, bits):
    """Lossless 16-bit PNG out: the segment's frames are the source's as the reader gives them."""
    path = media_clips[clip]
    info = probe(path)
    assert info.bit_depth == bits
    count = min(info.frame_count, 5)
    source = list(read_frames(path, 0, count, dtype=np.uint16 if bits > 8 else np.uint8))
    modes = ("transfer", "masked") if clip == "tenbit" else ("transfer",)
    for mode in modes:
        result = render_region(_region(path, count), models, tmp_path / mode, format="png", detail=DetailConfig(mode))
        out = png_frames(result.path)
        assert len(out) == count
        for got, want in zip(out, source):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    if bits > 8:
        off = render_region(_region(path, count), models, tmp_path / "off", format="png", detail=DetailConfig("off"))
        assert png_frames(off.path)[0].dtype == np.uint8  # before: the model's 8 bits, scaled up


def test_ten_bit_prores_keeps_the_source_precision_and_the_clip_facts(media_clips, tmp_path, models, stand_in):
    path = media_clips["tenbit"]  # a fine 10-bit ramp
    info = probe(path)
    source = np.stack(list(read_frames(path, 0, info.frame_count, dtype=np.uint16))).astype(int)
    error = {}
    for mode in ("transfer", "off"):
        result = render_region(_region(path, info.frame_count), models, tmp_path / mode, detail=DetailConfig(mode))
        out_info = probe(result.path)
        assert (out_info.frame_count, out_info.frame_rate, out_info.bit_depth) == (info.frame_count, info.frame_rate, 10)
        assert out_info.start_timecode_frame == info.start_timecode_frame
        src, out_color = info.color, out_info.color  # the source's tags are kept (untagged stays untagged)
        assert (out_color.primaries, out_color.transfer, out_color.matrix) == (src.primaries, src.transfer, src.matrix)
        out = np.stack(list(read_frames(result.path, 0, info.frame_count, dtype=np.uint16))).astype(int)
        error[mode] = np.abs(out - source).mean() / 64  # in 10-bit code values
    # ProRes 4:2:2 is lossy (chroma most), but on average within a code value; the 8-bit
    # model picture scaled up is many code values off.
    assert error["transfer"] < 1 and error["off"] > 5 * error["transfer"], error


def test_read_dtype_follows_the_bit_depth_unless_detail_is_off(media_clips):
    assert read_dtype(probe(media_clips["tenbit"])) == np.uint16
    assert read_dtype(probe(media_clips["tenbit"]), DetailConfig("masked")) == np.uint16
    assert read_dtype(probe(media_clips["tenbit"]), DetailConfig("off")) == np.uint8
    assert read_dtype(probe(media_clips["ntsc_film"])) == np.uint8


# -- settings key, provenance, change masks ---------------------------------------------------------


def test_another_detail_mode_renders_again_and_the_otio_records_it(media_clips, tmp_path, models, stand_in):
    path, out = media_clips["ntsc_film"], tmp_path / "out"
    region = _region(path, 9)
    first = render_region(region, models, out, format="h264")
    assert not first.skipped and _provenance(first.otio_path)["detail"] == {"mode": "transfer"}
    assert render_region(region, models, out, format="h264").skipped
    # Threshold and softness decide nothing in "transfer": the same render.
    assert render_region(region, models, out, format="h264", detail=DetailConfig("transfer", 0.3, 2)).skipped
    masked = render_region(region, models, out, format="h264", detail=DetailConfig("masked", 0.08, 3),
                           save_masks=True)
    assert not masked.skipped and masked.settings_key != first.settings_key and masked.path != first.path
    assert _provenance(masked.otio_path)["detail"] == {"mode": "masked", "threshold": 0.08, "softness": 3}
    assert masked.change_masks_path == change_mask_path(masked.path) and masked.masks_path is None
    masks = probe(masked.change_masks_path)
    assert masks.frame_count == 9 and (masks.width, masks.height) == (64, 48)
    assert masks.start_timecode == probe(path).start_timecode
    # The identity model changed nothing: the change mask is black (H.264 may lift it a little).
    assert max(int(f.max()) for f in read_frames(masked.change_masks_path, 0, 9)) < 8
    other = render_region(region, models, out, format="h264", detail=DetailConfig("masked", 0.1, 3))
    assert not other.skipped and other.settings_key != masked.settings_key
    off = render_region(region, models, out, format="h264", detail=DetailConfig("off"))
    assert not off.skipped and len({first.settings_key, masked.settings_key, off.settings_key}) == 3
    # A missing change mask that was asked for is rendered again.
    masked.change_masks_path.unlink()
    again = render_region(region, models, out, format="h264", detail=DetailConfig("masked", 0.08, 3), save_masks=True)
    assert not again.skipped and again.change_masks_path.is_file()


def test_save_masks_needs_the_mask_cache_or_masked_detail(media_clips, tmp_path, models):
    from liveedit.sidecar.render import RenderError

    with pytest.raises(RenderError, match="--detail masked"):
        render_region(_region(media_clips["ntsc_film"], 9), models, tmp_path, save_masks=True)
    assert not list(tmp_path.iterdir())


# -- the editors every path builds ----------------------------------------------------------------


def test_make_editor_and_the_worker_factories_deliver_with_the_detail_asked_for(models):
    from liveedit.sidecar.worker import fast_preview_editor_factory, streaming_editor_factory

    assert make_editor(models, instruction="x").delivery.config == DetailConfig()
    assert make_editor(models, instruction="x", detail=DetailConfig("off")).delivery is None
    masked = editor_factory(DetailConfig("masked", 0.1, 2))(models, "x", 0)
    assert masked.delivery.config == DetailConfig("masked", 0.1, 2)
    assert streaming_editor_factory(models, "x", 0).delivery.config == DetailConfig()
    fast = fast_preview_editor_factory(models, "x", 0, DetailConfig("masked"))
    assert fast.preview_vae and fast.delivery.config.mode == "masked"
    frames = [np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8) for _ in range(2)]
    out = list(make_editor(models, instruction="x").edit(frames))  # the real tiny model
    assert len(out) == 2 and out[0].shape == (30, 50, 3) and out[0].dtype == np.uint8


def test_the_sidecar_gives_previews_edit_streams_and_takes_its_detail_setting(models):
    from liveedit.sidecar.api.server import ServerOptions, Sidecar
    from liveedit.sidecar.takes import TakeSettings, take_service_for

    sidecar = Sidecar(models, ServerOptions(detail=DetailConfig("masked", 0.2, 1)))
    try:
        editor = sidecar.worker.editor_factory(models, "x", 0)
        assert editor.delivery.config == DetailConfig("masked", 0.2, 1)
        assert sidecar.previews.detail == DetailConfig("masked", 0.2, 1)
        takes = take_service_for(sidecar, cache_dir=None)
        assert takes.detail == DetailConfig("masked", 0.2, 1)
        for quality in ("full", "preview"):  # preview-quality takes deliver as fast previews do
            settings = takes._with_detail(TakeSettings("x", quality=quality))
            editor = takes.editor_factory(settings)(models, "x", 0)
            assert editor.delivery.config == DetailConfig("masked", 0.2, 1)
            assert editor.preview_vae == (quality == "preview")
    finally:
        asyncio.run(sidecar.worker.close())


# -- the settings on the wire and on the command line ---------------------------------------------


def test_detail_travels_with_a_job_as_json_and_over_grpc(tmp_path, media_clips):
    from liveedit.clients.python.client import LiveEditClient
    from liveedit.sidecar.api.convert import _settings

    settings = RenderSettings(detail=DetailConfig("masked", 0.07, 5), save_masks=True)
    spec = JobSpec((_region(media_clips["ntsc_film"], 9),), tmp_path, settings=settings)
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).settings == settings
    validate_spec(spec)  # save_masks has the change mask to save
    assert JobSpec.from_dict({"regions": [], "output_dir": str(tmp_path)}).settings.detail == DetailConfig()
    with pytest.raises(JobSpecError, match="softness"):
        JobSpec.from_dict({"regions": [], "output_dir": str(tmp_path), "detail": {"mode": "masked", "softness": -1}})
    with pytest.raises(JobSpecError, match="set mask_cache too"):
        validate_spec(JobSpec(spec.regions, tmp_path, settings=RenderSettings(save_masks=True)))

    sent = []
    client = LiveEditClient.__new__(LiveEditClient)
    client._render = SimpleNamespace(SubmitJob="SubmitJob")
    client._call = lambda method, request: sent.append(request)
    client.submit_job([_region(media_clips["ntsc_film"], 9).to_dict()], tmp_path, settings=settings)
    (request,) = sent
    assert _settings(request) == settings
    plain = type(request)()  # a client that sends no detail: the default
    assert _settings(plain).detail == DetailConfig()
    request.detail.softness = 99
    with pytest.raises(JobSpecError, match="softness"):
        _settings(request)


def test_detail_command_line_options(tmp_path):
    from liveedit.cli import build_parser
    from liveedit.commands._detail import detail_config
    from liveedit.commands.render import render_settings

    parser = build_parser()
    base = ["edit", "in.mov", "-p", "x", "-o", str(tmp_path)]
    assert detail_config(parser.parse_args(base)) == DetailConfig()
    args = parser.parse_args(base + ["--detail", "masked", "--detail-threshold", "0.1", "--detail-softness", "3"])
    assert detail_config(args) == DetailConfig("masked", 0.1, 3)
    assert render_settings(args).detail == DetailConfig("masked", 0.1, 3)
    render = parser.parse_args(["render", "t.otio", "-o", str(tmp_path), "--detail", "off"])
    assert detail_config(render) == DetailConfig("off")
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--detail", "sharp"])


def test_edit_with_masked_detail_writes_the_change_mask(media_clips, tmp_path, capsys):
    source = media_clips["ntsc_film"]
    common = ["edit", str(source), "-p", "make it snowy", "--model", "tiny", "--format", "h264", "--frames", "9"]
    assert main(common + ["-o", str(tmp_path / "a"), "--detail-softness", "2"]) == 1
    assert "--detail masked" in capsys.readouterr().err
    assert main(common + ["-o", str(tmp_path / "b"), "--detail", "masked", "--detail-threshold", "0.1",
                          "--save-masks"]) == 0
    out = capsys.readouterr().out
    (segment,) = [p for p in (tmp_path / "b").glob("*.mov") if not p.name.endswith(".change.mov")]
    assert f"change mask: {change_mask_path(segment)}" in out
    assert probe(change_mask_path(segment)).frame_count == 9
    assert _provenance(next((tmp_path / "b").glob("*.otio")))["detail"]["threshold"] == 0.1
