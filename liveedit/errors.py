"""Errors meant for people (the package root: the engine, sidecar, clients and UI all raise
and catch these). Every layer raises subclasses of LiveEditError whose
message says what was wrong and what to do; the CLI prints them without a
traceback.

Each class declares its `kind`: what sort of failure it is, in words a client can act on.
The sidecar answers with the kind, never the class: one table turns kinds into gRPC status
codes (`sidecar/api/server.py`) and one into HTTP statuses (`sidecar/api/bridge.py`), so both
protocols say the same thing about the same error."""

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


class LiveEditError(Exception):
    """Base class: the message must name the file/frame/value at fault and the fix."""

    kind = Kind.FAILED_PRECONDITION


class CheckpointError(LiveEditError):
    """A weights file does not match the model it is loaded into."""

    kind = Kind.FAILED_PRECONDITION


class InputError(LiveEditError):
    """Caller passed something the engine cannot use (wrong shape, empty instruction...)."""

    kind = Kind.INVALID
