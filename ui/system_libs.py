"""The system libraries the preview window needs on a Linux X11 desktop, and the Debian /
Ubuntu packages that hold them. Imports no Qt: `scripts/setup.sh` and `liveedit preview`
ask it before Qt starts.

PySide6's wheel ships Qt itself but not the X11, xcb, OpenGL, font and GLib libraries that
Qt's xcb platform plugin (and the Qt libraries it pulls in) link against. When one is
missing, Qt aborts with "Could not load the Qt platform plugin xcb" and names only the first
(typically libxcb-cursor0), so a user installs them one failed start at a time. This table
is every library that plugin's dependency closure needs from the system
(tests/test_system_libs.py reads the ELF headers of the installed PySide6 to keep it whole).

`python -m liveedit.ui.system_libs` prints the packages still missing, space-separated.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Iterable

# soname -> Debian package (bookworm names; newer releases map them by Provides:).
XCB_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
}
# Part of every Linux system (the C and C++ runtimes), never missing where Python runs.
BASE_LIBRARIES = frozenset({
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libgcc_s.so.1", "libstdc++.so.6",
    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
})


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_libraries(loads: Callable[[str], bool] | None = None) -> list[str]:
    """The sonames of XCB_LIBRARIES the dynamic loader cannot find."""
    loads = loads or _loads
    return [soname for soname in XCB_LIBRARIES if not loads(soname)]


def packages_for(sonames: Iterable[str]) -> list[str]:
    return sorted({XCB_LIBRARIES[s] for s in sonames})


def uses_xcb(platform: str = sys.platform, env: dict | None = None) -> bool:
    """Whether Qt will start its X11 (xcb) platform plugin: Linux, and neither another
    platform asked for (QT_QPA_PLATFORM) nor a Wayland session Qt would prefer."""
    env = os.environ if env is None else env
    if not platform.startswith("linux"):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if chosen:
        return chosen == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def install_hint(packages: list[str]) -> str:
    return (f"the preview window needs system libraries that are missing ({', '.join(packages)}); "
            f"install them with: sudo apt-get install {' '.join(packages)} "
            "(on other distributions, the packages that provide "
            f"{', '.join(s for s in XCB_LIBRARIES if XCB_LIBRARIES[s] in packages)})")


if __name__ == "__main__":
    print(" ".join(packages_for(missing_libraries())))
