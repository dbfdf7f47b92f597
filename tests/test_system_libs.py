"""`liveedit preview` on a plain Linux X11 desktop: the system libraries Qt's xcb platform
plugin loads are all known (read from the installed PySide6's ELF headers, so a PySide6
upgrade that needs one more fails here, not on a user's screen), a missing one is named with
the exact install command before Qt starts, and the set-up installs them only where the
preview is wanted."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from liveedit.errors import InputError
from liveedit.ui import system_libs

ROOT = Path(__file__).resolve().parent.parent


def elf_needed(path: Path) -> list[str]:
    """The DT_NEEDED entries of a 64-bit little-endian ELF file (what `readelf -d` lists)."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path} is not a 64-bit LE ELF file"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed = []
    for _name, kind, _flags, _addr, offset, size, link, _info, _align, _entsize in sections:
        if kind != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link][4]
        for pos in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == 0:
                break
            if tag == 1:  # DT_NEEDED
                end = data.index(b"\0", strtab + value)
                needed.append(data[strtab + value:end].decode())
    return needed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the xcb plugin exists on Linux only")
def test_every_system_library_of_the_xcb_plugin_is_known():
    import PySide6
    import shiboken6

    root = Path(PySide6.__file__).parent
    shipped_dirs = [root / "Qt" / "lib", root, Path(shiboken6.__file__).parent]
    start = [root / "Qt" / "plugins" / "platforms" / "libqxcb.so",
             *sorted((root / "Qt" / "plugins" / "xcbglintegrations").glob("*.so")),
             *(next(root.glob(f"{m}.*so")) for m in ("QtCore", "QtGui", "QtWidgets"))]
    seen, external, todo = set(), set(), list(start)
    while todo:
        lib = todo.pop()
        if lib in seen:
            continue
        seen.add(lib)
        for name in elf_needed(lib):
            shipped = next((d / name for d in shipped_dirs if (d / name).exists()), None)
            if shipped is not None:
                todo.append(shipped)
            else:
                external.add(name)
    assert "libxcb-cursor.so.0" in external and "libxcb-icccm.so.4" in external  # the reading is real
    unknown = sorted(external - set(system_libs.XCB_LIBRARIES) - system_libs.BASE_LIBRARIES)
    assert not unknown, f"Qt's xcb plugin needs {unknown}: add them with their Debian packages to ui/system_libs.py"


def test_missing_libraries_are_named_with_the_packages_to_install():
    gone = {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libgthread-2.0.so.0"}
    missing = system_libs.missing_libraries(lambda soname: soname not in gone)
    assert sorted(missing) == sorted(gone)
    packages = system_libs.packages_for(missing)
    assert packages == ["libglib2.0-0", "libxcb-icccm4", "libxcb-keysyms1"]
    hint = system_libs.install_hint(packages)
    assert "sudo apt-get install libglib2.0-0 libxcb-icccm4 libxcb-keysyms1" in hint
    assert system_libs.missing_libraries(lambda soname: True) == []


def test_xcb_is_what_qt_starts_on_linux_x11_only():
    assert system_libs.uses_xcb("linux", {"DISPLAY": ":0"})
    assert system_libs.uses_xcb("linux", {"QT_QPA_PLATFORM": "xcb", "WAYLAND_DISPLAY": "wayland-0"})
    assert not system_libs.uses_xcb("linux", {"WAYLAND_DISPLAY": "wayland-0"})
    assert not system_libs.uses_xcb("linux", {"QT_QPA_PLATFORM": "offscreen"})
    assert not system_libs.uses_xcb("darwin", {})
    assert not system_libs.uses_xcb("win32", {})


def test_the_preview_command_names_every_missing_library_before_qt_starts(tmp_path, monkeypatch):
    from liveedit.cli import build_parser

    clip = tmp_path / "clip.mov"
    clip.write_bytes(b"")
    monkeypatch.setattr(system_libs, "uses_xcb", lambda: True)
    monkeypatch.setattr(system_libs, "_loads", lambda soname: soname not in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    args = build_parser().parse_args(["preview", str(clip), "--no-start"])
    with pytest.raises(InputError, match="sudo apt-get install libxcb-icccm4 libxcb-keysyms1"):
        args.func(args)


# -- scripts/setup.sh, with stand-ins for python, pip, apt-get and id -----------------------

FAKE_PYTHON = """#!/usr/bin/env bash
echo "python $*" >>"$FAKE_LOG"
case "$*" in
  "-m liveedit.ui.system_libs") echo "$FAKE_MISSING" ;;
  "-m pip install"*)  # what pip says under a configuration with local index folders
    echo "WARNING: Location 'file:///somewhere/simple/numpy/' is ignored: it is neither a file nor a directory." >&2 ;;
esac
exit 0
"""
FAKE_TOOL = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$FAKE_LOG"
"""


def fake_checkout(tmp_path: Path, *, root_user: bool) -> tuple[Path, dict]:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "liveedit", "pip-quietly.sh"):
        shutil.copy2(ROOT / "scripts" / name, checkout / "scripts" / name)
    (checkout / "pyproject.toml").write_text("")
    venv_bin = checkout / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    tools = tmp_path / "tools"
    tools.mkdir()
    for path, text in ((venv_bin / "python", FAKE_PYTHON), (venv_bin / "liveedit", FAKE_TOOL),
                       (tools / "apt-get", FAKE_TOOL), (tools / "id", f"#!/bin/sh\necho {0 if root_user else 1000}\n"),
                       (tools / "uname", "#!/bin/sh\necho Linux\n")):
        path.write_text(text)
        path.chmod(0o755)
    env = {"PATH": f"{tools}:{os.environ['PATH']}", "HOME": str(tmp_path), "FAKE_LOG": str(tmp_path / "log"),
           "FAKE_MISSING": "libxcb-icccm4 libxcb-keysyms1"}
    return checkout, env


def run_liveedit(checkout: Path, env: dict, *args: str) -> tuple[list[str], str]:
    log = Path(env["FAKE_LOG"])
    log.write_text("")
    run = subprocess.run([str(checkout / "scripts" / "liveedit"), *args], capture_output=True, text=True,
                         env=env, timeout=60)
    assert run.returncode == 0, run.stderr
    return log.read_text().splitlines(), run.stderr


def test_setup_installs_qt_and_its_system_libraries_only_for_the_preview(tmp_path):
    checkout, env = fake_checkout(tmp_path, root_user=True)
    calls, _ = run_liveedit(checkout, env, "-v", "serve", "--model", "tiny")
    install = [c for c in calls if c.startswith("python -m pip install -q -e")]
    assert install == [f"python -m pip install -q -e {checkout}"]  # no extras: a headless server needs no Qt
    assert not any(c.startswith("apt-get") for c in calls)
    assert calls[-1] == "liveedit -v serve --model tiny"

    calls, stderr = run_liveedit(checkout, env, "preview", "clip.mov")
    assert "is ignored: it is neither a file nor a directory" not in stderr  # progress only
    assert f"python -m pip install -q -e {checkout}[ui]" in calls
    assert "apt-get install -y -qq libxcb-icccm4 libxcb-keysyms1" in calls
    assert "installing what the preview window needs: libxcb-icccm4 libxcb-keysyms1" in stderr
    assert calls[-1] == "liveedit preview clip.mov"

    calls, _ = run_liveedit(checkout, env, "preview", "clip.mov")  # set up once, not on every run
    assert calls == ["liveedit preview clip.mov"]


def test_setup_says_what_to_install_when_it_cannot(tmp_path):
    checkout, env = fake_checkout(tmp_path, root_user=False)
    calls, stderr = run_liveedit(checkout, env, "preview", "clip.mov")
    assert not any(c.startswith("apt-get") for c in calls)
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in stderr


def test_the_docs_list_every_package():
    text = (ROOT / "docs" / "preview.md").read_text()
    assert not [p for p in set(system_libs.XCB_LIBRARIES.values()) if f" {p} " not in text.replace("\n", " ")]
