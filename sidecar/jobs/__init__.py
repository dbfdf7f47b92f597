"""The render queue: jobs of regions, persisted so that a crash or a restart loses nothing.

- `spec`: the job model (regions, output folder, format, render settings), its JSON form
  and the checks a job passes before it is queued; the snapshots clients see.
- `queue`: `RenderQueue`, the SQLite store, the one-process lock and the watchers.
- `executor`: the `RegionExecutor` seam the queue renders through, and `LocalExecutor`.
"""

from liveedit.sidecar.jobs.executor import (
    BATCH_PRIORITY,
    LocalExecutor,
    ProgressCallback,
    RegionCancelled,
    RegionExecutor,
    RegionResult,
    RegionTask,
    result_from_segment,
)
from liveedit.sidecar.jobs.queue import (
    JobBusyError,
    JobNotFoundError,
    JobsDatabaseError,
    OutputCheckError,
    QueueBusyError,
    QueueClosedError,
    RenderQueue,
    acquire_queue_lock,
)
from liveedit.sidecar.jobs.spec import (
    CANCELLED,
    DONE,
    FAILED,
    FINISHED_STATES,
    FORMATS,
    QUEUED,
    RUNNING,
    Job,
    JobSpec,
    JobSpecError,
    RecordStart,
    RegionSpec,
    RegionStatus,
    RenderSettings,
    mask_cache_config,
    validate_spec,
)

__all__ = [
    "BATCH_PRIORITY", "CANCELLED", "DONE", "FAILED", "FINISHED_STATES", "FORMATS", "QUEUED", "RUNNING",
    "Job", "JobBusyError", "JobNotFoundError", "JobSpec", "JobSpecError", "JobsDatabaseError", "LocalExecutor", "OutputCheckError",
    "ProgressCallback", "QueueBusyError", "QueueClosedError", "RecordStart", "RegionCancelled", "RegionExecutor",
    "RegionResult", "RegionSpec", "RegionStatus", "RegionTask", "RenderQueue", "RenderSettings",
    "acquire_queue_lock", "mask_cache_config", "result_from_segment", "validate_spec",
]
