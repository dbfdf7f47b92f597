"""One conversion from what clients send to the job model (sidecar/api/convert.py), and one
intake of timelines (sidecar/intake.py): a job reads the same over gRPC and over the bridge's
JSON, and a timeline gives the same regions, with the same names, whichever way it arrives."""

from __future__ import annotations

import asyncio
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from liveedit.engine.mask_cache import MaskCacheConfig
from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.sidecar.api.convert import job_spec_from_json, job_spec_from_request
from liveedit.sidecar.intake import job_region, timeline_region, timeline_regions
from liveedit.sidecar.jobs import JobSpecError, RecordStart, RegionSpec, RenderSettings
from liveedit.sidecar.media import probe
from liveedit.sidecar.naming import stable_names
from liveedit.sidecar.timeline import read_timeline
from test_bridge import AUTH, run_with_bridge

MODEL = "tiny:random"


def test_a_job_reads_the_same_over_grpc_and_json(tmp_path):
    media, out = tmp_path / "a.mov", tmp_path / "out"
    request = render_pb2.SubmitJobRequest(
        regions=[render_pb2.RenderRegion(media_path=str(media), first_frame=4, frame_count=9, instruction="snow",
                                         seed=7, handles=2, name="shots/a",
                                         record_start=render_pb2.RecordStart(frame=86400, rate_numerator=24000,
                                                                             rate_denominator=1001))],
        output_dir=str(out), format=render_pb2.OUTPUT_FORMAT_H264, label="take 2",
        sampler=render_pb2.SamplerSettings(warped_steps=True),
        mask_cache=render_pb2.MaskCacheSettings(keep_ratio=0.5, pruned_sublayers=["self_attn", "ffn"]),
        save_masks=True)
    body = {"regions": [{"media": str(media), "first_frame": 4, "frame_count": 9, "instruction": "snow", "seed": 7,
                         "handles": 2, "name": "shots/a", "record_start": {"frame": 86400, "rate": [24000, 1001]}}],
            "output_dir": str(out), "format": "h264", "label": "take 2", "sampler": {"warped_steps": True},
            "mask_cache": {"keep_ratio": 0.5, "pruned_sublayers": ["self_attn", "ffn"]}, "save_masks": True}
    from_grpc, from_json = job_spec_from_request(request), job_spec_from_json(body)
    assert from_grpc == from_json
    assert from_grpc.regions[0].record_start == RecordStart(86400, Fraction(24000, 1001))
    assert from_grpc.settings == RenderSettings(True, MaskCacheConfig(keep_ratio=0.5, pruned_sublayers=("self_attn", "ffn")),
                                                True)
    # Absent settings mean the same in both: raw steps, no mask cache.
    plain = job_spec_from_request(render_pb2.SubmitJobRequest(regions=request.regions, output_dir=str(out)))
    assert plain.settings == RenderSettings() and plain.format == "prores"


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.regions[0].record_start.CopyFrom(render_pb2.RecordStart(frame=1)), "rate must be two positive"),
    (lambda r: setattr(r.regions[0], "media_path", "clip.mov"), "media must be an absolute path"),
    (lambda r: setattr(r, "output_dir", "renders"), "output_dir must be an absolute path"),
    (lambda r: r.mask_cache.CopyFrom(render_pb2.MaskCacheSettings(keep_ratio=2.0)), "keep_ratio must be in"),
])
def test_grpc_jobs_get_the_json_forms_checks(tmp_path, mutate, message):
    request = render_pb2.SubmitJobRequest(
        regions=[render_pb2.RenderRegion(media_path=str(tmp_path / "a.mov"), first_frame=0, frame_count=3,
                                         instruction="x")], output_dir=str(tmp_path / "out"))
    mutate(request)
    with pytest.raises(JobSpecError, match=message):
        job_spec_from_request(request)


def _marked_timeline(tmp_path: Path, clip: Path) -> Path:
    """One 25 fps clip on V1 at record 0 (media frames 2..17) with a green marker over 4..9."""
    rate = 25.0
    rt = lambda v: otio.opentime.RationalTime(v, rate)  # noqa: E731
    ref = otio.schema.ExternalReference(target_url=str(clip), available_range=otio.opentime.TimeRange(rt(0), rt(20)))
    item = otio.schema.Clip(name="pal", media_reference=ref, source_range=otio.opentime.TimeRange(rt(2), rt(16)))
    item.markers.append(otio.schema.Marker(name="m", marked_range=otio.opentime.TimeRange(rt(4), rt(6)), color="GREEN",
                                           metadata={"Resolve_OTIO": {"Note": "make it snowy"}}))
    track = otio.schema.Track(name="Video 1", kind=otio.schema.TrackKind.Video)
    track.append(item)
    timeline = otio.schema.Timeline(global_start_time=rt(0))
    timeline.tracks.append(track)
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_a_timeline_gives_the_same_regions_and_names_over_grpc_json_and_the_command_line(media_clips, tmp_path):
    path = _marked_timeline(tmp_path, media_clips["pal"])
    out = tmp_path / "out"
    # What `liveedit render --sidecar` sends.
    regions = timeline_regions(read_timeline(path))
    settings = RenderSettings()
    names = stable_names(regions, model=MODEL, seed=3, handles=1, format="prores", settings=settings)
    command_line = tuple(job_region(r, seed=3, handles=1, name=n) for r, n in zip(regions, names))
    from_grpc = job_spec_from_request(render_pb2.SubmitJobRequest(
        timeline=render_pb2.TimelineSource(path=str(path), seed=3, handles=1), output_dir=str(out)), MODEL)
    from_json = job_spec_from_json({"timeline": {"path": str(path), "seed": 3, "handles": 1},
                                    "output_dir": str(out)}, MODEL)
    assert from_grpc.regions == from_json.regions == command_line
    (region,) = command_line
    assert (region.first_frame, region.frame_count, region.instruction) == (4, 6, "make it snowy")
    assert region.name and region.name.startswith("pal_000004-000009_")
    # The job's region placed back on a timeline is the timeline's own region.
    back = timeline_region(region, probe(region.media))
    assert (back.record_start, back.record_frames, back.source_start) == (2, 6, regions[0].source_start)


def test_timeline_jobs_refuse_what_liveedit_render_would_refuse(media_clips, tmp_path):
    path = _marked_timeline(tmp_path, media_clips["pal"])
    cases = [
        ({"path": "cut.otio"}, "absolute path"),
        ({"path": str(tmp_path / "missing.otio")}, "does not exist"),
        ({"path": str(path), "marker_color": "Blue"}, "no Blue markers with an instruction"),
        ({"path": str(path), "instruction": "x", "in_timecode": "00:00:00:01"}, "both an in"),
        ({"path": str(path), "colour": "red"}, "unknown field"),
        ({"path": 7}, "wrong type"),
    ]
    for timeline, message in cases:
        with pytest.raises(JobSpecError, match=message):
            job_spec_from_json({"timeline": timeline, "output_dir": str(tmp_path / "out")}, MODEL)
    with pytest.raises(JobSpecError, match="not both"):
        job_spec_from_json({"timeline": {"path": str(path)}, "output_dir": str(tmp_path / "out"),
                            "regions": [{"media": str(path)}]}, MODEL)


def test_the_bridge_renders_a_timeline_job(media_clips, tmp_path):
    path = _marked_timeline(tmp_path, media_clips["pal"])
    out = tmp_path / "out"

    async def test(session, bridge, queue):
        body = {"timeline": {"path": str(path), "seed": 3}, "output_dir": str(out), "label": "cut"}
        async with session.post("/v1/jobs", json=body, headers=AUTH) as r:
            submitted = (r.status, await r.json())
        async with session.post("/v1/jobs", json={"timeline": {"path": str(tmp_path / "x.otio")},
                                                  "output_dir": str(out)}, headers=AUTH) as r:
            refused = (r.status, await r.json())
        job_id = submitted[1]["job"]["id"]
        for _ in range(500):
            if queue.get(job_id).finished:
                break
            await asyncio.sleep(0.01)
        return submitted, refused, queue.get(job_id)

    submitted, refused, job = run_with_bridge(tmp_path, test, model=MODEL)
    assert submitted[0] == 201 and len(submitted[1]["job"]["regions"]) == 1
    assert job.state == "done" and job.spec.regions[0].instruction == "make it snowy"
    assert Path(job.regions[0].output).name.startswith("pal_000004-000009_")
    assert refused[0] == 400 and refused[1]["error"]["code"] == "invalid_job"
    assert "does not exist" in refused[1]["error"]["message"]


def test_job_regions_and_timeline_regions_convert_both_ways(media_clips):
    clip = media_clips["ntsc_film"]  # 24000/1001, timecode 01:00:00:00
    spec = RegionSpec(media=clip, first_frame=5, frame_count=10, instruction="rain", seed=2, handles=1,
                      record_start=RecordStart(30, Fraction(24000, 1001)))
    region = timeline_region(spec, probe(clip))
    assert (region.media_rate, region.timeline_rate) == (Fraction(24000, 1001), Fraction(24000, 1001))
    assert region.source_start == 86400 + 5 and region.record_start == 30 and region.record_frames == 10
    assert job_region(region, seed=2, handles=1) == spec
