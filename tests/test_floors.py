"""The floors in pyproject.toml: what the committed generated gRPC code demands, and the
constraints file scripts/test-floors installs (every direct dependency at its floor). CI runs
that venv (scripts/test-floors, from .ci/run); these checks are the quick part."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "protos" / "liveedit" / "v1"


def floors() -> dict[str, Version]:
    out = {}
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(text)
        for spec in requirement.specifier:
            if spec.operator in (">=", "=="):
                out[requirement.name.lower().replace("_", "-")] = Version(spec.version)
    return out


def test_the_generated_code_runs_on_the_floors():
    """protoc's gencode refuses an older protobuf runtime, and grpc's generated stubs an older
    grpcio (VersionError at import): the floors must be at least what generated them."""
    gencode = {re.search(r"Protobuf Python Version: (\S+)", p.read_text()).group(1)
               for p in GENERATED.glob("*_pb2.py")}
    grpc_generated = {re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", p.read_text()).group(1)
                      for p in GENERATED.glob("*_pb2_grpc.py")}
    assert gencode and grpc_generated
    have = floors()
    assert have["protobuf"] >= max(map(Version, gencode)), (have["protobuf"], gencode)
    for name in ("grpcio", "grpcio-health-checking", "grpcio-reflection"):
        assert have[name] >= max(map(Version, grpc_generated)), (name, have[name], grpc_generated)


def test_torch_floor_has_the_attention_api_we_use():
    assert floors()["torch"] >= Version("2.6")  # sdpa_kernel(..., set_priority=True) in engine/attention.py
    assert "set_priority=True" in (ROOT / "engine" / "attention.py").read_text()


def test_the_floor_constraints_pin_every_direct_dependency_at_its_floor():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "floor_constraints.py"), "dev"], capture_output=True,
                         text=True, timeout=60, check=True)
    pins = dict(line.split("==") for line in run.stdout.split())
    pins = {name.lower().replace("_", "-"): Version(version) for name, version in pins.items()}
    for name, version in floors().items():
        assert pins[name] == version, name
    assert pins["pytest"] == Version("8") and pins["grpcio-tools"] == Version("1.85.1")  # the dev extra's too
    assert "pyside6-essentials" in pins


def test_ci_runs_the_floors():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "scripts/test-floors" in ci and "scripts/test " in ci
