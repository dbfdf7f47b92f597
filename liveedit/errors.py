"""Errors meant for people (the package root: the engine, sidecar, clients and UI all raise
and catch these). Every layer raises subclasses of LiveEditError whose
message says what was wrong and what to do; the CLI prints them without a
traceback, the sidecar turns them into gRPC statuses."""


class LiveEditError(Exception):
    """Base class: the message must name the file/frame/value at fault and the fix."""


class CheckpointError(LiveEditError):
    """A weights file does not match the model it is loaded into."""


class InputError(LiveEditError):
    """Caller passed something the engine cannot use (wrong shape, empty instruction...)."""
