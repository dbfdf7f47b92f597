"""The one conversion between liveedit.v1 render messages and the job model
(`sidecar/jobs/spec.py`): a SubmitJobRequest becomes a job spec, a Job snapshot becomes a
liveedit.v1.Job.
"""

from __future__ import annotations

from pathlib import Path

from liveedit.errors import InputError
from liveedit.protos.liveedit.v1 import render_pb2
from liveedit.sidecar.preview import MediaNotFoundError


_JOB_STATES = {"queued": render_pb2.JOB_STATE_QUEUED, "running": render_pb2.JOB_STATE_RUNNING,
               "done": render_pb2.JOB_STATE_DONE, "failed": render_pb2.JOB_STATE_FAILED,
               "cancelled": render_pb2.JOB_STATE_CANCELLED}
_FORMATS = {render_pb2.OUTPUT_FORMAT_UNSPECIFIED: "prores", render_pb2.OUTPUT_FORMAT_PRORES: "prores",
            render_pb2.OUTPUT_FORMAT_H264: "h264", render_pb2.OUTPUT_FORMAT_PNG: "png"}


def job_spec_dict(request: render_pb2.SubmitJobRequest, model: str | None = None) -> dict:
    """SubmitJobRequest → the JSON-shaped job spec sidecar/jobs/spec.py (and the bridge) take.
    A timeline is read here (file access: call it off the event loop); `model` (the
    naming.model_identity of the loaded model) names its regions as `liveedit render` would."""
    if request.format not in _FORMATS:
        raise InputError(f"unknown output format {request.format}; use PRORES, H264 or PNG")
    spec = {"output_dir": request.output_dir, "format": _FORMATS[request.format], "label": request.label,
            **_settings_dict(request)}
    if request.HasField("timeline") and request.timeline.path:
        if request.regions:
            raise InputError("send either regions or a timeline, not both")
        spec["regions"] = _timeline_regions(request.timeline, spec, model)
        return spec
    regions = []
    for i, r in enumerate(request.regions):
        media = Path(r.media_path)
        if media.is_absolute() and not media.exists():
            raise MediaNotFoundError(f"regions[{i}].media_path {r.media_path!r} does not exist; check the path")
        region = {"media": r.media_path, "first_frame": r.first_frame, "frame_count": r.frame_count,
                  "instruction": r.instruction, "seed": r.seed, "handles": r.handles}
        if r.HasField("record_start"):
            rs = r.record_start
            if rs.rate_denominator == 0 or rs.rate_numerator == 0:
                raise InputError(f"regions[{i}].record_start needs a rate like 24000/1001")
            region["record_start"] = {"frame": rs.frame, "rate": [rs.rate_numerator, rs.rate_denominator]}
        if r.name:
            region["name"] = r.name
        regions.append(region)
    spec["regions"] = regions
    return spec


def _settings_dict(request: render_pb2.SubmitJobRequest) -> dict:
    """The job-level render settings in the JSON shape of jobs.RenderSettings."""
    settings: dict = {"save_masks": request.save_masks}
    if request.HasField("sampler"):
        settings["sampler"] = {"warped_steps": request.sampler.warped_steps}
    if request.HasField("mask_cache"):
        mask_cache: dict = {}
        if request.mask_cache.HasField("keep_ratio"):
            mask_cache["keep_ratio"] = request.mask_cache.keep_ratio
        if request.mask_cache.pruned_sublayers:
            mask_cache["pruned_sublayers"] = list(request.mask_cache.pruned_sublayers)
        settings["mask_cache"] = mask_cache
    return settings


def _timeline_regions(source: render_pb2.TimelineSource, spec: dict, model: str | None) -> list[dict]:
    """The timeline's regions, found by the same functions as `liveedit render`. All or
    nothing: a region the timeline cannot give refuses the submission, naming every one."""
    from liveedit.sidecar.intake import region_dict, timeline_regions
    from liveedit.sidecar.jobs import JobSpecError, RenderSettings
    from liveedit.sidecar.naming import stable_names
    from liveedit.sidecar.timeline import TimelineError, read_timeline

    path = Path(source.path)
    if not path.is_absolute():
        raise InputError(f"timeline.path must be an absolute path; got {source.path!r}")
    if not path.is_file():
        raise MediaNotFoundError(f"timeline.path {source.path!r} does not exist or is not a file; check the path")
    refused: list[TimelineError] = []
    try:
        timeline = read_timeline(path, edl_rate=source.edl_rate or None)
        regions = timeline_regions(timeline, marker_color=source.marker_color or "Green",
                                   instruction=source.instruction or None, in_timecode=source.in_timecode or None,
                                   out_timecode=source.out_timecode or None, on_refused=refused.append)
    except TimelineError as exc:
        raise JobSpecError(f"timeline {path}: {exc}") from None
    if refused:
        raise JobSpecError(
            f"timeline {path}: {len(refused)} region(s) cannot be rendered: "
            + "; ".join(str(e) for e in refused)
            + ". Fix them in the editor and export again, or send the other regions as SubmitJobRequest.regions")
    if not regions:
        what = ("no video clip in the chosen range" if source.instruction else
                f"no {source.marker_color or 'Green'} markers with an instruction")
        raise JobSpecError(f"timeline {path}: nothing to render ({what})")
    names = [None] * len(regions)
    if model is not None:
        names = stable_names(regions, model=model, seed=source.seed, handles=source.handles, format=spec["format"],
                             settings=RenderSettings.from_dict(spec))
    return [region_dict(r, seed=source.seed, handles=source.handles, name=n) for r, n in zip(regions, names)]


def job_message(job) -> render_pb2.Job:
    """A jobs.Job snapshot → liveedit.v1.Job."""
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


