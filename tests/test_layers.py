"""Imports point down (docs/architecture.md): clients and the UI → protos + clients/transport.py
→ sidecar → engine. Read from the code's own import statements, those inside functions
included, so an import hidden in a function cannot cross a layer unseen."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Folder → the package it is installed as (pyproject.toml's package-dir).
PACKAGES = {"engine": "liveedit.engine", "sidecar": "liveedit.sidecar", "clients": "liveedit.clients",
            "ui": "liveedit.ui", "protos": "liveedit.protos", "liveedit": "liveedit"}
CLI = ("liveedit.cli", "liveedit.commands", "liveedit.__main__")

# What each layer must never import (a module or anything below it).
FORBIDDEN = {
    "engine": ("liveedit.sidecar", "liveedit.clients", "liveedit.ui", "liveedit.protos", *CLI),
    "sidecar": ("liveedit.ui", *CLI),
    "clients": ("liveedit.sidecar", "liveedit.engine", "liveedit.ui", *CLI),
    "ui": ("liveedit.sidecar", "liveedit.engine", *CLI),
}
# The one module of the clients package the sidecar may use: what both sides share.
SIDECAR_MAY_USE_FROM_CLIENTS = ("liveedit.clients.transport",)

# Known exceptions, each with its reason. The preview window shows the source frames itself:
# it plays them at the clip's rate with J/K/L and scrubs through a local frame cache while the
# sidecar's one GPU worker is busy editing, and it shows the clip before a sidecar it had to
# start has loaded its model (minutes); the gRPC preview contract carries edited frames only.
# Its frame numbers must be the sidecar's, so it reads with the sidecar's own media reader,
# not a copy of it; that reader belongs in a layer below both.
EXCEPTIONS = {
    ("ui/source_frames.py", ("liveedit.sidecar.media_read", "liveedit.sidecar.media")),
}


def excused(file: str, module: str) -> bool:
    """An excepted module, or the package it is imported from (`from pkg import module`)."""
    return any(file == f and (within(module, prefixes) or any(p.startswith(module + ".") for p in prefixes))
               for f, prefixes in EXCEPTIONS)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGES[parts[0]], *parts[1:]])


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in ``path`` names, relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            found.add(module)
            # `from liveedit import sidecar` names the module after "import"
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_files(layer: str) -> list[Path]:
    return sorted(p for p in (ROOT / layer).rglob("*.py") if "node_modules" not in p.parts)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_down(layer):
    crossings = []
    for path in layer_files(layer):
        rel = path.relative_to(ROOT).as_posix()
        for module in sorted(imports_of(path)):
            if not within(module, FORBIDDEN[layer]):
                continue
            if excused(rel, module):
                continue
            crossings.append(f"{rel} imports {module}")
        if layer == "sidecar":
            crossings += [f"{rel} imports {m}" for m in sorted(imports_of(path))
                          if within(m, ("liveedit.clients",)) and not within(m, SIDECAR_MAY_USE_FROM_CLIENTS)]
    assert not crossings, "imports that point up or sideways:\n" + "\n".join(crossings)


def test_each_exception_is_still_needed():
    """An exception nobody uses any more must go, or it would quietly allow a new crossing."""
    for file, prefixes in EXCEPTIONS:
        assert any(within(m, prefixes) for m in imports_of(ROOT / file)), f"{file} no longer imports {prefixes}"


def test_the_checker_sees_imports_inside_functions(tmp_path, monkeypatch):
    """The parse itself: relative imports, `from package import module` and imports in
    function bodies all count."""
    folder = tmp_path / "clients" / "python"
    folder.mkdir(parents=True)
    (folder / "x.py").write_text("def f():\n    from liveedit import sidecar\n    from ..transport import FrameRing\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = imports_of(folder / "x.py")
    assert "liveedit.sidecar" in found and "liveedit.clients.transport" in found
    assert within("liveedit.sidecar", FORBIDDEN["clients"])
