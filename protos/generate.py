"""Generates the Python modules of the gRPC contract from protos/liveedit/v1/*.proto.

Layout: the .proto files import each other as "liveedit/v1/x.proto" (their gRPC names stay
`liveedit.v1.*`, which reflection and other languages see), and the generated modules sit
next to them in protos/liveedit/v1/. protoc writes imports as `from liveedit.v1 import ...`;
we rewrite them to `from liveedit.protos.liveedit.v1 import ...`, where the package is
installed, so nothing has to be put on sys.path.

Run `python scripts/gen_protos.py` after editing a .proto and commit the results;
tests/test_server_protos.py fails when the committed modules are out of date.
Needs grpcio-tools (a dev dependency).
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent  # protos/: holds liveedit/v1/*.proto
PROTO_PACKAGE = "liveedit/v1"
PYTHON_PACKAGE = "liveedit.protos.liveedit.v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PROTO_PACKAGE).glob("*.proto"))


def generate(out_root: Path = PROTO_ROOT) -> list[Path]:
    """Writes the generated modules under out_root/liveedit/v1/ and returns their paths."""
    from grpc_tools import protoc  # dev dependency, imported only when generating

    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        written = []
        target = out_root / PROTO_PACKAGE
        target.mkdir(parents=True, exist_ok=True)
        for src in sorted((Path(tmp) / PROTO_PACKAGE).iterdir()):
            if not src.name.endswith(GENERATED_SUFFIXES):
                continue
            dest = target / src.name
            dest.write_text(_fix_imports(src.read_text()))
            written.append(dest)
    return written


def _fix_imports(source: str) -> str:
    return re.sub(r"^from liveedit\.v1 import", f"from {PYTHON_PACKAGE} import", source, flags=re.M)


def generated_files(root: Path = PROTO_ROOT) -> list[Path]:
    return sorted(p for p in (root / PROTO_PACKAGE).iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> int:
    for path in generate():
        print(path.relative_to(PROTO_ROOT.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
