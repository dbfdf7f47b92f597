"""Errors answer by kind: every LiveEditError in the code has one, and the gRPC server and the
HTTP bridge say the same thing for each (sidecar/api/server.py, sidecar/api/bridge.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

import grpc
import pytest

from liveedit.errors import Kind, LiveEditError
from liveedit.sidecar.api.bridge import HTTP_STATUS_BY_KIND, http_status_for
from liveedit.sidecar.api.server import GRPC_CODE_BY_KIND, status_for

REPO = Path(__file__).resolve().parent.parent
# Folder -> package, as pyproject.toml maps them.
PACKAGES = {"liveedit": "liveedit", "engine": "liveedit.engine", "sidecar": "liveedit.sidecar",
            "clients": "liveedit.clients", "ui": "liveedit.ui"}
# Not importable as modules: the program entry point, and scripts Resolve runs by file name.
SKIP = {"liveedit.__main__"}
SKIP_UNDER = ("liveedit.clients.resolve.menu",)

# The HTTP status each gRPC code stands for (google.rpc.Code's documented HTTP mapping; 499 is
# its "client closed request" for CANCELLED).
HTTP_OF_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403, grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499, grpc.StatusCode.INTERNAL: 500, grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def _all_modules() -> list[str]:
    names = []
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            if name not in SKIP and not name.startswith(SKIP_UNDER):
                names.append(name)
    return names


def _error_classes() -> list[type]:
    for name in _all_modules():
        importlib.import_module(name)
    found, todo = [], [LiveEditError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("liveedit")]


def test_every_kind_answers_the_same_over_grpc_and_http():
    assert set(GRPC_CODE_BY_KIND) == set(Kind) == set(HTTP_STATUS_BY_KIND)
    for kind in Kind:
        status, code = HTTP_STATUS_BY_KIND[kind]
        assert HTTP_OF_GRPC[GRPC_CODE_BY_KIND[kind]] == status, kind
        assert code and code.islower() and " " not in code, kind


def test_every_error_class_has_a_kind_and_both_protocols_agree_on_it():
    classes = _error_classes()
    names = {cls.__name__ for cls in classes}
    # The walk really reached every layer.
    assert {"InputError", "JobSpecError", "QueueBusyError", "FrameOutOfRangeError", "TimecodeError",
            "ServerError", "InstallError"} <= names
    for cls in classes:
        assert isinstance(cls.kind, Kind), cls
        if cls.__module__.startswith(("liveedit.sidecar", "liveedit.errors")) and cls is not LiveEditError:
            # the server's own errors say what they are rather than inherit it by accident
            assert "kind" in cls.__dict__ or cls.__module__ == "liveedit.sidecar.config", cls
        error = cls.__new__(cls)
        Exception.__init__(error, "what went wrong; what to do")
        code, message = status_for(error)
        status, _ = http_status_for(error)
        assert message == "what went wrong; what to do"
        assert HTTP_OF_GRPC[code] == status, (cls, code, status)


@pytest.mark.parametrize("module, name, grpc_code, http", [
    # Settled: a queue held by another sidecar is that sidecar's, not a broken request.
    ("liveedit.sidecar.jobs", "QueueBusyError", grpc.StatusCode.UNAVAILABLE, (503, "unavailable")),
    # Settled: a frame past the end says so in both, not a generic bad request over HTTP.
    ("liveedit.sidecar.preview", "FrameOutOfRangeError", grpc.StatusCode.OUT_OF_RANGE, (400, "out_of_range")),
    ("liveedit.sidecar.jobs", "JobsDatabaseError", grpc.StatusCode.FAILED_PRECONDITION, (400, "bad_request")),
    ("liveedit.sidecar.jobs", "JobSpecError", grpc.StatusCode.INVALID_ARGUMENT, (400, "invalid_job")),
    ("liveedit.sidecar.preview", "SupersededError", grpc.StatusCode.ABORTED, (409, "superseded")),
    ("liveedit.sidecar.worker", "WorkerClosedError", grpc.StatusCode.UNAVAILABLE, (503, "unavailable")),
    ("liveedit.sidecar.api.servicers", "UnimplementedError", grpc.StatusCode.UNIMPLEMENTED, (501, "unimplemented")),
    ("liveedit.sidecar.jobs", "RegionCancelled", grpc.StatusCode.CANCELLED, (499, "cancelled")),
])
def test_the_settled_answers(module, name, grpc_code, http):
    error = getattr(importlib.import_module(module), name)("message")
    assert status_for(error) == (grpc_code, "message")
    assert http_status_for(error) == http


def test_anything_else_is_internal_and_keeps_its_details_in_the_log():
    code, message = status_for(KeyError("secret detail"))
    assert code == grpc.StatusCode.INTERNAL and "secret detail" not in message
