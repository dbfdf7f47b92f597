"""The committed generated modules match the .proto files (the CI check that they are in sync)."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveedit.protos import generate


def test_generated_code_is_in_sync_with_protos(tmp_path: Path):
    pytest.importorskip("grpc_tools")
    written = generate.generate(out_root=tmp_path)
    fresh = {p.name: p.read_text() for p in written}
    committed = {p.name: p.read_text() for p in generate.generated_files()}
    assert fresh, "protoc produced nothing"
    assert sorted(fresh) == sorted(committed), "generated file set differs: run scripts/gen_protos.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} are out of date with the .proto files: run python scripts/gen_protos.py"


def test_generated_modules_import_under_the_installed_package():
    from liveedit.protos.liveedit.v1 import edit_pb2, edit_pb2_grpc, server_info_pb2

    start = edit_pb2.EditRequest(start=edit_pb2.EditStart(instruction="x", width=4, height=2))
    assert edit_pb2.EditRequest.FromString(start.SerializeToString()).start.width == 4
    assert edit_pb2.DESCRIPTOR.package == "liveedit.v1"
    assert hasattr(edit_pb2_grpc, "EditStub")
    assert server_info_pb2.DESCRIPTOR.services_by_name["ServerInfo"].full_name == "liveedit.v1.ServerInfo"
