"""The built wheel: what an installed LiveEdit has besides a checkout. It carries the Premiere
panel (so `liveedit premiere package` works from a plain `pip install`), the Resolve menu
scripts and the gRPC contract, and none of the panel's dev tooling; the whole command line
except the preview window works without Qt; the build prints no setuptools warnings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PANEL = ROOT / "clients" / "premiere"
# What a copy of the checkout leaves out: environments, build output and the panel's npm tree.
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "node_modules", "build", "dist", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".hypothesis", "out", ".whl", ".device-out")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from a copy of the checkout, as `pip wheel` builds it, and the build's output."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                          "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (built,) = (tmp / "dist").glob("liveedit_sidecar-*.whl")
    return built, run.stdout + run.stderr


def test_the_wheel_carries_the_premiere_panel_and_the_resolve_scripts(wheel):
    from liveedit.commands.premiere import plugin_members

    with zipfile.ZipFile(wheel[0]) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    panel = {n.removeprefix("liveedit/clients/premiere/") for n in names if n.startswith("liveedit/clients/premiere/")}
    runtime = {"manifest.json"} | {name for _, name in plugin_members(PANEL)}
    assert panel == runtime, f"missing {sorted(runtime - panel)}, extra {sorted(panel - runtime)}"
    menu = {p.name for p in (ROOT / "clients" / "resolve" / "menu").glob("*.py")}
    assert len(menu) == 3 and {f"liveedit/clients/resolve/menu/{m}" for m in menu} <= names
    assert {"liveedit/protos/liveedit/v1/render.proto", "liveedit/protos/liveedit/v1/render_pb2.py"} <= names
    assert not any("node_modules" in n or "/test/" in n or n.endswith(("package.json", "package-lock.json"))
                   for n in names)
    # Licence as an SPDX expression (PEP 639); the two OTIO adapters, not the plugin bundle.
    assert "License-Expression: Apache-2.0" in metadata
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("otio-cmx3600-adapter") for r in requires)
    assert any(r.startswith("otio-fcp-adapter") for r in requires)
    assert not any(r.lower().startswith("opentimelineio-plugins") for r in requires)
    # Qt only for the preview window.
    assert all("extra ==" in r for r in requires if r.lower().startswith("pyside6"))


def test_the_build_prints_no_setuptools_warnings(wheel):
    output = wheel[1]
    assert "SetuptoolsDeprecationWarning" not in output and "check.warn" not in output, output[-3000:]
    assert "is absent from the `packages` configuration" not in output


def test_premiere_package_works_from_the_installed_wheel(wheel, tmp_path):
    """The installed copy (not this checkout) builds the .ccx from its own panel files."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel[0]) as zf:
        zf.extractall(site)
    out = tmp_path / "panel.ccx"
    config = tmp_path / "config"
    code = ("import sys, liveedit; from liveedit.cli import main; "
            "assert liveedit.__file__.startswith(sys.argv[1]), liveedit.__file__; "
            "sys.exit(main(['premiere', 'package', '-o', sys.argv[2]]))")
    env = {**os.environ, "PYTHONPATH": str(site), "LIVEEDIT_CONFIG_DIR": str(config)}
    run = subprocess.run([sys.executable, "-c", code, str(site), str(out)], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "index.html", "index.js", "src/panel.js", "src/bridge.js"} <= names
    assert manifest["id"] == "com.liveedit.premiere"
    assert str(site / "liveedit" / "clients" / "premiere" / "manifest.json") in run.stdout


BLOCK_QT = """
import importlib.abc, sys
class NoQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pytestqt'):
            raise ImportError(f'{name} is not installed (blocked by the test)')
sys.meta_path.insert(0, NoQt())
"""


def test_everything_but_the_preview_window_works_without_qt(tmp_path):
    """A headless server installs no `ui` extra: every module outside liveedit.ui imports, the
    command line builds, and `liveedit preview` says what to install."""
    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"not really a clip")
    code = BLOCK_QT + """
import pkgutil, importlib, liveedit
from liveedit.cli import build_parser, main
names = [m.name for m in pkgutil.walk_packages(liveedit.__path__, 'liveedit.')
         if not m.name.startswith('liveedit.ui')]
for sub in ('engine', 'sidecar', 'protos', 'clients'):
    pkg = importlib.import_module('liveedit.' + sub)
    names += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.')]
for name in sorted(set(names)):
    if '.menu' in name or name.endswith('__main__'):
        continue
    importlib.import_module(name)
assert 'PySide6' not in sys.modules
build_parser()
sys.exit(main(['preview', sys.argv[1]]))
"""
    run = subprocess.run([sys.executable, "-c", code, str(clip)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "LIVEEDIT_CONFIG_DIR": str(tmp_path / "config")})
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "needs PySide6" in run.stderr and "liveedit-sidecar[ui]" in run.stderr
