"""The Premiere panel's JavaScript, from pytest: its own unit tests under Node's test runner,
and a type check of the panel code against the @adobe/premierepro typings (tsc, checkJs,
strict). Both need `npm ci` in clients/premiere (scripts/test runs it)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

PANEL = Path(__file__).resolve().parent.parent / "clients" / "premiere"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; the Premiere panel tests need Node.js 20+ (scripts/test checks it)")
    return path


def test_node_unit_tests_pass():
    node = need("node")
    files = sorted(str(p.relative_to(PANEL)) for p in (PANEL / "test").glob("*.test.js"))
    assert len(files) >= 4, files
    run = subprocess.run([node, "--test", *files], cwd=PANEL, capture_output=True, text=True, timeout=120,
                         env={"PATH": str(Path(node).parent), "LIVEEDIT_SHARED": str(SHARED)})
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    summary = dict(line[2:].split(" ", 1) for line in run.stdout.splitlines() if line.startswith("# "))
    assert int(summary["fail"]) == 0 and int(summary["pass"]) >= 25, summary


def test_panel_code_type_checks_against_the_premiere_typings():
    tsc = PANEL / "node_modules" / ".bin" / "tsc"
    typings = PANEL / "node_modules" / "@adobe" / "premierepro" / "src" / "premierepro.d.ts"
    if not tsc.exists() or not typings.exists():
        pytest.fail("run `npm ci` in clients/premiere first (scripts/test does)")
    run = subprocess.run([need("node"), str(tsc), "-p", "jsconfig.json"], cwd=PANEL, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:]


def test_the_type_check_catches_a_misnamed_premiere_call(tmp_path):
    """The check is real: with the panel's compiler settings, a call the typings lack fails."""
    tsc = PANEL / "node_modules" / ".bin" / "tsc"
    if not tsc.exists():
        pytest.fail("run `npm ci` in clients/premiere first (scripts/test does)")
    (tmp_path / "probe.js").write_text(
        '"use strict";\n/** @param {import("@adobe/premierepro").Sequence} s */\n'
        "async function probe(s) { return s.getPlayheadPosition(); }\nmodule.exports = { probe };\n")
    typings = PANEL / "node_modules" / "@adobe" / "premierepro" / "src" / "premierepro.d.ts"
    (tmp_path / "jsconfig.json").write_text(json.dumps({
        "extends": str(PANEL / "jsconfig.json"),
        "compilerOptions": {"baseUrl": str(tmp_path), "paths": {"@adobe/premierepro": [str(typings)]}},
        "include": ["probe.js"]}))
    run = subprocess.run([need("node"), str(tsc), "-p", str(tmp_path / "jsconfig.json")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "getPlayheadPosition" in run.stdout, run.stdout
