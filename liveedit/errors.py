"""Errors meant for people (the package root: the engine, sidecar, clients and UI all raise
and catch these). Every layer raises subclasses of LiveEditError whose
message says what was wrong and what to do; the CLI prints them without a
traceback.

Each class declares its `kind`: what sort of failure it is, in words a client can act on.
The sidecar answers with the kind, never the class: one table turns kinds into gRPC status
codes (`sidecar/api/server.py`) and one into HTTP statuses (`sidecar/api/bridge.py`), so both
protocols say the same thing about the same error."""

import errno
from enum import Enum


class Kind(str, Enum):
    """What sort of failure an error is; it decides the gRPC code and the HTTP status."""

    INVALID = "invalid"  # the request itself is wrong (bad value, empty instruction): fix it
    INVALID_JOB = "invalid_job"  # a render job that cannot be rendered as given: fix the job
    NOT_FOUND = "not_found"  # the file, job or session named does not exist
    OUT_OF_RANGE = "out_of_range"  # a frame or position past what exists
    BUSY = "busy"  # another process holds what this one needs: stop it or use another
    UNAVAILABLE = "unavailable"  # shutting down or not running: try again once it is back
    FAILED_PRECONDITION = "failed_precondition"  # cannot be done in the current state (files, weights)
    SUPERSEDED = "superseded"  # a newer request from the same client replaced this one
    CANCELLED = "cancelled"  # the caller cancelled it
    UNIMPLEMENTED = "unimplemented"  # this server does not offer it
    EXHAUSTED = "exhausted"  # a limit of this server is reached (streams, GPU memory): wait or ask for less


class LiveEditError(Exception):
    """Base class: the message must name the file/frame/value at fault and the fix."""

    kind = Kind.FAILED_PRECONDITION


class CheckpointError(LiveEditError):
    """A weights file does not match the model it is loaded into."""

    kind = Kind.FAILED_PRECONDITION


class InputError(LiveEditError):
    """Caller passed something the engine cannot use (wrong shape, empty instruction...)."""

    kind = Kind.INVALID


class ResourceExhaustedError(LiveEditError):
    """A limit of the server is reached: too many edit streams, out of GPU memory."""

    kind = Kind.EXHAUSTED


GPU_MEMORY_ADVICE = ("the GPU ran out of memory: close other programs that use it, run fewer edit streams or "
                     "previews at once (liveedit serve --max-edit-streams), edit smaller frames, or use a GPU "
                     "with more memory")


def known_failure(exc: BaseException) -> LiveEditError | None:
    """A LiveEditError for failures that are not our bug although they are not ours either
    (the GPU out of memory, a path the file system cannot hold); None for anything else."""
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__) or \
            (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()):
        return ResourceExhaustedError(GPU_MEMORY_ADVICE)
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return InputError("a path is too long for the file system; use a shorter file or folder name")
    return None
