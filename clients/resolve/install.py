"""Installing the Resolve scripts, removing them, and the self-test (runs in our venv,
not in Resolve; never copied into Resolve's folders).

Layout after ``install``:
- ``<Resolve scripts>/<Utility|Edit>/LiveEdit - *.py``: three small menu scripts that put
  the library folder on ``sys.path`` (Resolve lists every .py there as a menu item, so
  nothing else goes there);
- ``<config folder>/resolve/liveedit_resolve/``: the stdlib-only modules of this package
  and ``settings.json`` (config folder, sidecar start command, liveedit command).

Script folders per OS (shared/spec/nle-integration.md §1.3; Windows per-user uses
%APPDATA% once, not the README's doubled "Roaming").
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from liveedit.errors import LiveEditError

from .bridge_client import DEFAULT_START_COMMAND, BridgeClient, default_config_dir
from .entry import PROBE_FILE, SETTINGS_FILE
from .errors import ResolveScriptError

PACKAGE_DIR = Path(__file__).resolve().parent
MENU_DIR = PACKAGE_DIR / "menu"
LIBRARY_PACKAGE = "liveedit_resolve"
# The modules Resolve's Python needs (standard library only; install.py is not one of them).
SCRIPT_MODULES = ("__init__.py", "errors.py", "mapping.py", "bridge_client.py", "host.py", "actions.py",
                  "otio_merge.py", "dialog.py", "entry.py")
CATEGORIES = ("Utility", "Edit")


class InstallError(LiveEditError):
    """The scripts cannot be installed or removed where asked."""


@dataclass
class Machine:
    """The computer as the installer sees it; tests fake the platform and home folder."""

    platform: str = field(default_factory=lambda: sys.platform)
    home: Path = field(default_factory=Path.home)
    env: dict = field(default_factory=lambda: dict(os.environ))

    def config_dir(self) -> Path:
        return default_config_dir(self.platform, self.env, self.home)


def scripts_root(machine: Machine, all_users: bool = False) -> Path:
    """Resolve's Fusion/Scripts folder for this OS, per user or for all users."""
    p, env, home = machine.platform, machine.env, machine.home
    if p == "win32":
        if all_users:
            base = Path(env.get("PROGRAMDATA") or r"C:\ProgramData")
            return base / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        return base / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Fusion" / "Scripts"
    if p == "darwin":
        base = Path("/Library") if all_users else home / "Library"
        return base / "Application Support" / "Blackmagic Design" / "DaVinci Resolve" / "Fusion" / "Scripts"
    if all_users:
        return Path("/opt/resolve/Fusion/Scripts")
    return home / ".local" / "share" / "DaVinciResolve" / "Fusion" / "Scripts"


def menu_folder(machine: Machine, all_users: bool = False, category: str = "Utility") -> Path:
    if category not in CATEGORIES:
        raise InstallError(f"script category {category!r} is not one of {', '.join(CATEGORIES)}")
    return scripts_root(machine, all_users) / category


def library_dir(machine: Machine) -> Path:
    return machine.config_dir() / "resolve"


def menu_scripts() -> list[Path]:
    return sorted(MENU_DIR.glob("LiveEdit - *.py"))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def default_liveedit_command() -> list[str]:
    """How the preview script starts `liveedit` (this venv's interpreter, so PATH does not matter)."""
    return [sys.executable, "-m", "liveedit"]


def install(machine: Machine, *, all_users: bool = False, category: str = "Utility",
            start_command: str = DEFAULT_START_COMMAND, liveedit_command: list[str] | None = None) -> list[Path]:
    """Copy the library and the menu scripts; returns the files written."""
    folder = menu_folder(machine, all_users, category)
    library = library_dir(machine)
    written = []
    try:
        for name in SCRIPT_MODULES:
            target = library / LIBRARY_PACKAGE / name
            _write(target, (PACKAGE_DIR / name).read_text(encoding="utf-8"))
            written.append(target)
        settings = {
            "config_dir": str(machine.config_dir()),
            "start_command": start_command,
            "liveedit_command": liveedit_command or default_liveedit_command(),
            "marker_color": "Green", "handles": 12, "format": "prores",
            "installed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        target = library / LIBRARY_PACKAGE / SETTINGS_FILE
        _write(target, json.dumps(settings, indent=2) + "\n")
        written.append(target)
        for script in menu_scripts():
            text = script.read_text(encoding="utf-8")
            marker = "LIBRARY = None"
            if marker not in text:
                raise InstallError(f"{script} lacks its '{marker}' line; the package is damaged, reinstall liveedit")
            target = folder / script.name
            _write(target, text.replace(marker, f"LIBRARY = {str(library)!r}", 1))
            written.append(target)
    except PermissionError as exc:
        where = "an administrator prompt" if machine.platform == "win32" else "sudo"
        raise InstallError(f"cannot write {exc.filename}: permission denied. Installing for all users needs {where}; "
                           f"or install for yourself only (without --all-users)") from None
    return written


def uninstall(machine: Machine, *, all_users: bool = False, category: str = "Utility") -> list[Path]:
    """Remove our menu scripts and our library folder (nothing else); returns what was removed."""
    removed = []
    folder = menu_folder(machine, all_users, category)
    try:
        for script in menu_scripts():
            target = folder / script.name
            if target.exists():
                target.unlink()
                removed.append(target)
        package = library_dir(machine) / LIBRARY_PACKAGE
        if package.is_dir():
            shutil.rmtree(package)
            removed.append(package)
    except PermissionError as exc:
        raise InstallError(f"cannot remove {exc.filename}: permission denied; use sudo / an administrator prompt") from None
    return removed


# -- self-test ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'MISSING'}  {self.name}: {self.message}"


def resolve_install_paths(machine: Machine) -> list[Path]:
    if machine.platform == "win32":
        base = Path(machine.env.get("PROGRAMFILES") or r"C:\Program Files")
        return [base / "Blackmagic Design" / "DaVinci Resolve" / "Resolve.exe"]
    if machine.platform == "darwin":
        return [Path("/Applications/DaVinci Resolve/DaVinci Resolve.app")]
    return [Path("/opt/resolve/bin/resolve"), machine.home / "resolve" / "bin" / "resolve", Path("/home/resolve/bin/resolve")]


def python_candidates(machine: Machine) -> list[Path]:
    """Where Resolve looks for Python 3 for in-app scripts (§1.2)."""
    env = machine.env
    if machine.platform == "win32":
        found = [Path(env[k]) for k in ("FUSION_PYTHON3_HOME", "PYTHONHOME") if env.get(k)]
        local = Path(env.get("LOCALAPPDATA") or machine.home / "AppData" / "Local") / "Programs" / "Python"
        return found + (sorted(local.glob("Python3*")) if local.is_dir() else [])
    if machine.platform == "darwin":
        home = [Path(env["PYTHON3HOME"])] if env.get("PYTHON3HOME") else []
        return home + [Path("/usr/local/bin/python3")]
    return [Path("/opt/resolve/ResolvePython"), Path("/usr/bin/python3"), Path("/usr/local/bin/python3")]


def connect_to_resolve(machine: Machine):
    """External scripting: the running Resolve, or None (not running, not Studio, or the
    preference 'External scripting using' is None)."""
    api = machine.env.get("RESOLVE_SCRIPT_API") or {
        "win32": str(Path(machine.env.get("PROGRAMDATA") or r"C:\ProgramData") / "Blackmagic Design" / "DaVinci Resolve"
                     / "Support" / "Developer" / "Scripting"),
        "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting",
    }.get(machine.platform, "/opt/resolve/Developer/Scripting")
    modules = str(Path(api) / "Modules")
    added = modules not in sys.path
    if added:
        sys.path.append(modules)
    try:
        import DaVinciResolveScript  # noqa: PLC0415

        return DaVinciResolveScript.scriptapp("Resolve")
    except Exception:
        return None
    finally:
        if added and modules in sys.path:
            sys.path.remove(modules)


def self_test(machine: Machine, *, all_users: bool = False, category: str = "Utility",
              connect: Callable[[Machine], object] | None = None,
              exists: Callable[[Path], bool] = Path.exists,
              start_command: str = DEFAULT_START_COMMAND) -> list[Check]:
    """Each prerequisite, and what to do about a missing one."""
    checks = []
    folder = menu_folder(machine, all_users, category)
    missing = [s.name for s in menu_scripts() if not (folder / s.name).is_file()]
    checks.append(Check("scripts", not missing, f"in {folder}" if not missing else
                        f"{', '.join(missing)} not in {folder}; run: liveedit resolve install"))
    installed = any(exists(p) for p in resolve_install_paths(machine))
    checks.append(Check("DaVinci Resolve", installed, "installed" if installed else
                        f"not found at {', '.join(str(p) for p in resolve_install_paths(machine))}; install "
                        "DaVinci Resolve Studio (or ignore this if it lives elsewhere)"))
    probe = None
    try:
        probe = json.loads((machine.config_dir() / PROBE_FILE).read_text())
    except (OSError, ValueError):
        pass
    resolve = (connect or connect_to_resolve)(machine)
    product = None
    if resolve is not None:
        checks.append(Check("external scripting", True, "Resolve answered over external scripting"))
        product = resolve.GetProductName()
    else:
        checks.append(Check("external scripting", False,
                            "Resolve did not answer. Start Resolve Studio and set Preferences > System > General > "
                            "'External scripting using' to Local (only needed for this check and for "
                            "driving Resolve from outside; the menu scripts work without it)"))
        product = (probe or {}).get("product")
    if product:
        studio = "Studio" in product
        checks.append(Check("Studio edition", studio, product if studio else
                            f"{product} is the free edition; Resolve 21.1 and later run Python scripts only in "
                            "Studio (nle-integration.md §1.2). Install DaVinci Resolve Studio"))
    else:
        checks.append(Check("Studio edition", False, "unknown until Resolve answers or runs a LiveEdit script once; "
                            "LiveEdit needs DaVinci Resolve Studio"))
    if probe:
        checks.append(Check("Python for Resolve", True, f"Resolve ran LiveEdit with Python {probe.get('python')} "
                            f"({probe.get('ran')})"))
    else:
        found = [p for p in python_candidates(machine) if exists(p)]
        fix = {"darwin": "install Python 3 from python.org (it provides /usr/local/bin/python3) or set PYTHON3HOME "
                         "with launchctl setenv",
               "win32": "install 64-bit Python 3 from python.org, or set FUSION_PYTHON3_HOME to it"}.get(
            machine.platform, "install python3 (Resolve 21.1+ brings /opt/resolve/ResolvePython)")
        checks.append(Check("Python for Resolve", bool(found),
                            (f"{found[0]} found; open Workspace > Scripts > LiveEdit once to confirm Resolve uses it"
                             if found else f"no Python 3 that Resolve looks for; {fix}")))
    try:
        info = BridgeClient.from_config(machine.config_dir(), start_command).info()
        note = " (RANDOM weights: output is not a real edit)" if info.get("random_weights") else ""
        checks.append(Check("sidecar", True, f"running, model {info.get('model_preset', '?')}{note}"))
    except ResolveScriptError as exc:
        checks.append(Check("sidecar", False, str(exc).replace("\n", " ")))
    return checks
