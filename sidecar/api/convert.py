"""The one conversion between what clients send and the job model (`sidecar/jobs/spec.py`).

- gRPC: a SubmitJobRequest becomes a JobSpec directly (no detour through JSON), and a Job
  snapshot becomes a liveedit.v1.Job.
- JSON (the bridge's body): `JobSpec.from_dict` parses it, since the same JSON is what the
  queue stores; a body may carry a "timeline" instead of regions, as SubmitJobRequest may.
- A whole timeline, whichever way it comes, is read by `sidecar/intake.py`, as `liveedit
  render` reads it.
Checks on paths and counts are the job model's (`check_wire_paths`, `check_region_count`); the
full check runs when the queue takes the job (`validate_spec`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from liveedit.errors import InputError
from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.sidecar.intake import TimelineSource, timeline_job_regions
from liveedit.sidecar.jobs.spec import (Job, JobSpec, JobSpecError, RecordStart, RegionSpec, RenderSettings,
                                        check_region_count, check_wire_paths, mask_cache_config)

_JOB_STATES = {"queued": render_pb2.JOB_STATE_QUEUED, "running": render_pb2.JOB_STATE_RUNNING,
               "done": render_pb2.JOB_STATE_DONE, "failed": render_pb2.JOB_STATE_FAILED,
               "cancelled": render_pb2.JOB_STATE_CANCELLED}
_FORMATS = {render_pb2.OUTPUT_FORMAT_UNSPECIFIED: "prores", render_pb2.OUTPUT_FORMAT_PRORES: "prores",
            render_pb2.OUTPUT_FORMAT_H264: "h264", render_pb2.OUTPUT_FORMAT_PNG: "png"}
_TIMELINE_FIELDS = {"path", "marker_color", "instruction", "in_timecode", "out_timecode", "seed", "handles",
                    "edl_rate"}


# -- gRPC ------------------------------------------------------------------------------------


def job_spec_from_request(request: render_pb2.SubmitJobRequest, model: str | None = None) -> JobSpec:
    """SubmitJobRequest → JobSpec. A timeline is read here (file access: call it off the event
    loop); `model` (the loaded model's identity) names its regions as `liveedit render` would."""
    if request.format not in _FORMATS:
        raise InputError(f"unknown output format {request.format}; use PRORES, H264 or PNG")
    settings = _settings(request)
    spec = JobSpec((), Path(request.output_dir), _FORMATS[request.format], request.label, settings)
    if request.HasField("timeline") and request.timeline.path:
        if request.regions:
            raise InputError("send either regions or a timeline, not both")
        t = request.timeline
        source = TimelineSource(Path(t.path), t.marker_color or "Green", t.instruction or None,
                                t.in_timecode or None, t.out_timecode or None, t.seed, t.handles, t.edl_rate or None)
        return check_wire_paths(replace(spec, regions=timeline_job_regions(
            source, format=spec.format, settings=settings, model=model)))
    check_region_count(len(request.regions))
    return check_wire_paths(replace(spec, regions=tuple(_region(r, f"regions[{i}]")
                                                        for i, r in enumerate(request.regions))))


def _region(r: render_pb2.RenderRegion, where: str) -> RegionSpec:
    record = None
    if r.HasField("record_start"):
        rs = r.record_start
        record = RecordStart.of(rs.frame, (rs.rate_numerator, rs.rate_denominator), f"{where}.record_start")
    return RegionSpec(media=Path(r.media_path), first_frame=r.first_frame, frame_count=r.frame_count,
                      instruction=r.instruction, seed=r.seed, handles=r.handles, record_start=record,
                      name=r.name or None)


def _settings(request: render_pb2.SubmitJobRequest) -> RenderSettings:
    mask_cache = None
    if request.HasField("mask_cache"):
        fields: dict = {}
        if request.mask_cache.HasField("keep_ratio"):
            fields["keep_ratio"] = request.mask_cache.keep_ratio
        if request.mask_cache.pruned_sublayers:
            fields["pruned_sublayers"] = list(request.mask_cache.pruned_sublayers)
        mask_cache = mask_cache_config(fields)  # the same checks, in the same words, as the JSON form
    return RenderSettings(warped_steps=request.HasField("sampler") and request.sampler.warped_steps,
                          mask_cache=mask_cache, save_masks=request.save_masks)


def job_message(job: Job) -> render_pb2.Job:
    """A Job snapshot → liveedit.v1.Job."""
    regions = []
    for r in job.regions:
        progress = render_pb2.RegionProgress(
            index=r.index, state=_JOB_STATES.get(r.state, render_pb2.JOB_STATE_UNSPECIFIED),
            frames_done=r.frames_done, frame_count=r.frame_count, fps=r.fps or 0.0,
            output=r.output or "", otio=r.otio or "", error=r.error or "")
        if r.eta_seconds is not None:
            progress.eta_seconds = r.eta_seconds
        regions.append(progress)
    return render_pb2.Job(id=job.id, state=_JOB_STATES.get(job.state, render_pb2.JOB_STATE_UNSPECIFIED),
                          regions=regions, created=job.created, label=job.label or "")


# -- JSON ------------------------------------------------------------------------------------


def job_spec_from_json(data: object, model: str | None = None) -> JobSpec:
    """The bridge's job body → JobSpec: regions, or a "timeline" object with TimelineSource's
    fields instead (read off the event loop, like the gRPC form)."""
    if not isinstance(data, dict) or "timeline" not in data:
        return JobSpec.from_dict(data)
    if data.get("regions"):
        raise JobSpecError("send either regions or a timeline, not both")
    source = _timeline_source(data["timeline"])
    spec = JobSpec.from_dict({**{k: v for k, v in data.items() if k != "timeline"}, "regions": []})
    return check_wire_paths(replace(spec, regions=timeline_job_regions(
        source, format=spec.format, settings=spec.settings, model=model)))


def _timeline_source(data: object) -> TimelineSource:
    if not isinstance(data, dict):
        raise JobSpecError('timeline must be an object like {"path": "/abs/cut.otio", "marker_color": "Green"}')
    unknown = sorted(set(data) - _TIMELINE_FIELDS)
    if unknown:
        raise JobSpecError(f"timeline has unknown field(s) {', '.join(unknown)}; "
                           f"known fields: {', '.join(sorted(_TIMELINE_FIELDS))}")
    types = {"path": str, "marker_color": str, "instruction": str, "in_timecode": str, "out_timecode": str,
             "seed": int, "handles": int, "edl_rate": (int, float)}
    for key, value in data.items():
        if value is not None and (not isinstance(value, types[key]) or isinstance(value, bool)):
            raise JobSpecError(f"timeline.{key} has the wrong type ({value!r}); see the bridge API")
    if "path" not in data:
        raise JobSpecError("timeline.path is missing: give the absolute path of the exported timeline")
    return TimelineSource(Path(data["path"]), data.get("marker_color") or "Green", data.get("instruction") or None,
                          data.get("in_timecode") or None, data.get("out_timecode") or None,
                          data.get("seed", 0), data.get("handles", 0), data.get("edl_rate") or None)
