"""`liveedit resolve install/uninstall/check`: the right folders per OS (temporary home,
faked platform), an installed copy that runs on the standard library alone, and a
self-test that names each missing prerequisite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from liveedit.clients.resolve import install as setup
from liveedit.clients.resolve.entry import PROBE_FILE
from fake_resolve import FakeResolve

MENU = ["LiveEdit - Edit selection.py", "LiveEdit - Live preview.py", "LiveEdit - Render marked regions.py"]


def _machine(tmp_path, platform, **env):
    return setup.Machine(platform=platform, home=tmp_path / "home", env=env)


@pytest.mark.parametrize("platform, per_user, all_users", [
    ("linux", "home/.local/share/DaVinciResolve/Fusion/Scripts/Utility", "/opt/resolve/Fusion/Scripts/Utility"),
    ("darwin", "home/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility",
     "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"),
    ("win32", "AppData/Roaming/Blackmagic Design/DaVinci Resolve/Support/Fusion/Scripts/Utility",
     "ProgramData/Blackmagic Design/DaVinci Resolve/Fusion/Scripts/Utility"),
])
def test_install_writes_the_right_folder_for_each_os(tmp_path, platform, per_user, all_users):
    env = {"APPDATA": str(tmp_path / "AppData" / "Roaming"), "PROGRAMDATA": str(tmp_path / "ProgramData")}
    machine = _machine(tmp_path, platform, **env)
    expected_all = Path(all_users) if all_users.startswith("/") else tmp_path / all_users
    assert setup.menu_folder(machine, all_users=True) == expected_all
    assert setup.menu_folder(machine, category="Edit").name == "Edit"
    written = setup.install(machine, start_command="liveedit serve", liveedit_command=["/venv/python", "-m", "liveedit"])
    folder = tmp_path / per_user
    assert sorted(p.name for p in folder.iterdir()) == MENU
    library = {"linux": tmp_path / "home/.config/liveedit/resolve",
               "darwin": tmp_path / "home/Library/Application Support/LiveEdit/resolve",
               "win32": tmp_path / "AppData/Roaming/LiveEdit/resolve"}[platform]
    assert f"LIBRARY = {str(library)!r}" in (folder / MENU[0]).read_text()
    settings = json.loads((library / "liveedit_resolve" / "settings.json").read_text())
    assert settings["config_dir"] == str(library.parent) and settings["start_command"] == "liveedit serve"
    assert settings["liveedit_command"] == ["/venv/python", "-m", "liveedit"]
    assert "install.py" not in {p.name for p in written}  # the installer stays out of Resolve


def test_the_installed_copy_runs_on_the_standard_library_alone(tmp_path):
    machine = _machine(tmp_path, "linux")
    setup.install(machine)
    library = setup.library_dir(machine)
    script = tmp_path / "home/.local/share/DaVinciResolve/Fusion/Scripts/Utility" / MENU[0]
    code = (
        "import sys, importlib.util\n"
        f"sys.path.insert(0, {str(library)!r})\n"
        "assert importlib.util.find_spec('liveedit') is None, 'liveedit must not be importable here'\n"
        "import liveedit_resolve.entry, liveedit_resolve.actions, liveedit_resolve.mapping as m\n"
        "from liveedit_resolve.errors import ResolveScriptError\n"
        "assert ResolveScriptError.__mro__[1] is Exception\n"
        "from fractions import Fraction\n"
        "print(m.timecode_to_frame('01:00:00;00', Fraction(30000, 1001)))\n"
        f"compile(open({str(script)!r}).read(), 'menu', 'exec')\n"
    )
    # -S -I: no site-packages, no user site, no PYTHONPATH: what Resolve's own Python has.
    result = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "107892"


def test_uninstall_removes_only_our_files(tmp_path):
    machine = _machine(tmp_path, "linux")
    setup.install(machine)
    folder = setup.menu_folder(machine)
    other = folder / "Someone else's script.py"
    other.write_text("print('hi')\n")
    removed = setup.uninstall(machine)
    assert sorted(p.name for p in removed) == sorted(MENU + ["liveedit_resolve"])
    assert [p.name for p in folder.iterdir()] == [other.name]
    assert setup.uninstall(machine) == []


def _by_name(checks):
    return {c.name: c for c in checks}


def test_self_test_names_each_missing_prerequisite(tmp_path, monkeypatch):
    machine = _machine(tmp_path, "darwin")
    checks = _by_name(setup.self_test(machine, connect=lambda m: None, exists=lambda p: False))
    assert not checks["scripts"].ok and "liveedit resolve install" in checks["scripts"].message
    assert not checks["DaVinci Resolve"].ok and "/Applications/DaVinci Resolve" in checks["DaVinci Resolve"].message
    assert not checks["external scripting"].ok and "External scripting using' to Local" in checks["external scripting"].message
    assert not checks["Studio edition"].ok and "needs DaVinci Resolve Studio" in checks["Studio edition"].message
    assert not checks["Python for Resolve"].ok and "PYTHON3HOME" in checks["Python for Resolve"].message
    assert not checks["sidecar"].ok and "liveedit serve" in checks["sidecar"].message
    assert all(check.line().startswith("MISSING") for check in checks.values())

    # The free edition answering over external scripting is named as such.
    free = _by_name(setup.self_test(machine, connect=lambda m: FakeResolve(product="DaVinci Resolve"),
                                    exists=lambda p: False))
    assert free["external scripting"].ok
    assert not free["Studio edition"].ok and "free edition" in free["Studio edition"].message


def test_self_test_passes_what_is_there(tmp_path):
    machine = _machine(tmp_path, "linux")
    setup.install(machine)
    config = machine.config_dir()
    # A LiveEdit menu script ran inside Resolve Studio once and left its note.
    (config / PROBE_FILE).write_text(json.dumps({"python": "3.11.9", "product": "DaVinci Resolve Studio", "ran": "now"}))
    checks = _by_name(setup.self_test(machine, connect=lambda m: None, exists=lambda p: str(p) == "/opt/resolve/bin/resolve"))
    assert checks["scripts"].ok and checks["DaVinci Resolve"].ok
    assert checks["Studio edition"].ok and checks["Python for Resolve"].ok and "3.11.9" in checks["Python for Resolve"].message
    assert not checks["external scripting"].ok and not checks["sidecar"].ok


def test_cli_install_and_check(tmp_path, monkeypatch, capsys):
    from liveedit.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LIVEEDIT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(setup, "connect_to_resolve", lambda machine: None)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["resolve", "install"]) == 1  # installed, but prerequisites are missing: like `check`
    out = capsys.readouterr().out
    assert "DaVinciResolve/Fusion/Scripts/Utility" in out and "MISSING  sidecar" in out
    assert "the scripts are installed, but" in out and "sidecar" in out.splitlines()[-1]
    assert (tmp_path / "home/.local/share/DaVinciResolve/Fusion/Scripts/Utility/LiveEdit - Live preview.py").is_file()
    assert main(["resolve", "check"]) == 1  # something is missing: say so in the exit code
    # With every prerequisite there, both exit 0.
    monkeypatch.setattr(setup, "self_test", lambda machine, **kw: [setup.Check("scripts", True, "in place")])
    assert main(["resolve", "install"]) == 0 and main(["resolve", "check"]) == 0
    assert main(["resolve", "uninstall"]) == 0


def test_the_start_command_the_scripts_show_is_one_serve_accepts():
    import shlex

    from liveedit.cli import build_parser

    words = shlex.split(setup.DEFAULT_START_COMMAND)
    assert words[0] == "liveedit"
    args = build_parser().parse_args(words[1:])  # argparse exits on an option serve does not take
    assert args.command == "serve" and not args.no_bridge


def test_the_docs_put_settings_json_where_install_writes_it(tmp_path):
    machine = _machine(tmp_path, "linux")
    setup.install(machine)
    written = machine.config_dir() / "resolve" / "liveedit_resolve" / "settings.json"
    assert json.loads(written.read_text())["start_command"]
    assert not (machine.config_dir() / "resolve" / "settings.json").exists()
    docs = (Path(__file__).resolve().parent.parent / "docs" / "resolve.md").read_text()
    assert "~/.config/liveedit/resolve/liveedit_resolve/settings.json" in docs
