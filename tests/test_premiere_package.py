"""`liveedit premiere package`: the .ccx is a zip with manifest.json at its root, only the
plugin's runtime files, the bridge port in the network permission, written atomically."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from liveedit.commands.premiere import PackageError, build_ccx

PANEL = Path(__file__).resolve().parent.parent / "clients" / "premiere"


def test_the_ccx_holds_the_plugin_with_the_manifest_at_the_root(tmp_path):
    out = build_ccx(PANEL, tmp_path / "panel.ccx", port=50123)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "index.html", "index.js", "src/panel.js", "src/timemap.js", "src/premiere.js"} <= names
    assert not any(n.startswith(("node_modules", "test/")) or n.endswith(("package.json", "jsconfig.json"))
                   for n in names)
    assert manifest["manifestVersion"] == 5 and manifest["host"][0]["app"] == "premierepro"
    assert manifest["host"][0]["minVersion"] == "25.6.0"
    assert manifest["requiredPermissions"]["network"]["domains"] == ["http://127.0.0.1:50123", "ws://127.0.0.1:50123"]
    assert [e["type"] for e in manifest["entrypoints"]] == ["panel"]
    # The source manifest keeps the default port; packaging never edits the plugin folder.
    source = json.loads((PANEL / "manifest.json").read_text())
    assert source["requiredPermissions"]["network"]["domains"] == ["http://127.0.0.1:47311", "ws://127.0.0.1:47311"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.ccx"]  # no temp file left


def test_bad_packaging_requests_say_what_to_fix(tmp_path):
    with pytest.raises(PackageError, match="should end in .ccx"):
        build_ccx(PANEL, tmp_path / "panel.zip")
    with pytest.raises(PackageError, match="not a TCP port"):
        build_ccx(PANEL, tmp_path / "panel.ccx", port=70000)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"manifestVersion": 4}')
    with pytest.raises(PackageError, match="manifestVersion must be 5"):
        build_ccx(broken, tmp_path / "x.ccx")
    with pytest.raises(PackageError, match="does not exist"):
        build_ccx(tmp_path / "nowhere", tmp_path / "x.ccx")


def test_the_command_prints_how_to_load_it(tmp_path):
    run = subprocess.run([sys.executable, "-m", "liveedit", "premiere", "package", "-o", str(tmp_path / "p.ccx")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "p.ccx").is_file()
    assert "UXP Developer Tool" in run.stdout and "Developer Mode" in run.stdout and "liveedit serve" in run.stdout


def _package(tmp_path, *extra):
    import os

    env = {**os.environ, "LIVEEDIT_CONFIG_DIR": str(tmp_path / "config")}
    run = subprocess.run([sys.executable, "-m", "liveedit", "premiere", "package", "-o", str(tmp_path / "p.ccx"), *extra],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(tmp_path / "p.ccx") as zf:
        return json.loads(zf.read("manifest.json"))["requiredPermissions"]["network"]["domains"], run.stdout


def test_the_package_reaches_the_running_sidecars_port(tmp_path):
    """`liveedit serve --bridge-port 50999` writes bridge.json; packaging without --port uses it."""
    domains, out = _package(tmp_path)
    assert domains == ["http://127.0.0.1:47311", "ws://127.0.0.1:47311"] and "default port" in out
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bridge.json").write_text('{"port": 50999}')
    domains, out = _package(tmp_path)
    assert domains == ["http://127.0.0.1:50999", "ws://127.0.0.1:50999"] and "running sidecar" in out
    domains, _ = _package(tmp_path, "--port", "50123")  # an explicit port wins
    assert domains == ["http://127.0.0.1:50123", "ws://127.0.0.1:50123"]
