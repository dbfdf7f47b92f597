"""Errors the Resolve scripts show to the user (standard library only).

Inside our own environment (tests, ``liveedit resolve``) they subclass LiveEditError like
every other user-facing error; inside Resolve's Python, where liveedit is not installed,
they fall back to Exception so the scripts still run.
"""

try:  # our venv: one error hierarchy for the CLI
    from liveedit.errors import LiveEditError as _Base
except ImportError:  # inside Resolve: the standard library only
    _Base = Exception


class ResolveScriptError(_Base):
    """Something in Resolve or in the user's choices stops the action; the message says what to do."""


class RetimedClipError(ResolveScriptError):
    """A clip with a speed change: we cannot say which source frame shows on which timeline frame."""


class SidecarNotRunningError(ResolveScriptError):
    """The LiveEdit sidecar's bridge cannot be reached."""


class SidecarError(ResolveScriptError):
    """The sidecar answered with an error (bad job, missing media, ...)."""
