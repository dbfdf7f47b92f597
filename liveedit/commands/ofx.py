"""`liveedit ofx build | install | check`: the LiveEdit OpenFX plug-in (clients/ofx, docs/ofx.md).

build    compiles LiveEdit.ofx.bundle with CMake (scripts/build-ofx in a checkout, which also builds
         the test host; --plugin-only or Windows: CMake directly, the plug-in alone)
install  copies the bundle into OFX_PLUGIN_PATH's first folder, --dest, or the OS's OpenFX folder
         (/usr/OFX/Plugins, C:\\Program Files\\Common Files\\OFX\\Plugins, /Library/OFX/Plugins)
check    says what is there and what is missing: build tools, the OpenFX SDK, the built and the
         installed bundle, the sidecar the plug-in would talk to
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from liveedit.errors import LiveEditError

BUNDLE = "LiveEdit.ofx.bundle"
SDK_COMMIT = "3de640d6f645fe6e346acd57e568d8b0a5ae4574"  # clients/ofx/CMakeLists.txt pins the same


class OfxSetupError(LiveEditError):
    """The plug-in cannot be built or installed as asked."""


def register(sub) -> None:
    p = sub.add_parser("ofx", help="build, install and check the LiveEdit OpenFX plug-in (Resolve, Nuke, ...)",
                       description="The LiveEdit OpenFX effect: build the bundle, install it where OpenFX hosts "
                       "look, and check what is missing. See docs/ofx.md.")
    actions = p.add_subparsers(dest="ofx_action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="compile LiveEdit.ofx.bundle (CMake and a C++17 compiler)")
    b.add_argument("--sdk", type=Path, help="OpenFX SDK folder (default: ../shared/third_party/openfx beside "
                   "the checkout, else OFX_SDK_DIR)")
    b.add_argument("--fetch-sdk", action="store_true", help=f"let CMake fetch the pinned OpenFX SDK ({SDK_COMMIT[:10]})")
    b.add_argument("--plugin-only", action="store_true",
                   help="CMake straight to the plug-in (no test host, no libexpat) into build/ofx-plugin")
    b.add_argument("-j", "--jobs", type=int, default=2, help="parallel compile jobs (default 2)")
    b.set_defaults(func=run_build)
    i = actions.add_parser("install", help="copy the bundle where OpenFX hosts find it")
    i.add_argument("--bundle", type=Path, help=f"the {BUNDLE} to install (default: the one built here)")
    i.add_argument("--dest", type=Path, help="plug-in folder (default: OFX_PLUGIN_PATH's first folder, else the "
                   "OS's standard OpenFX folder)")
    i.set_defaults(func=run_install)
    c = actions.add_parser("check", help="report what the plug-in needs and what is missing")
    c.set_defaults(func=run_check)


# -- where things are ---------------------------------------------------------------------------


def checkout_root() -> Path:
    """The repository this liveedit runs from (the C++ sources are not in a wheel)."""
    return Path(__file__).resolve().parents[2]


def ofx_sources() -> Path:
    source = checkout_root() / "clients" / "ofx"
    if not (source / "CMakeLists.txt").is_file() or not (source / "plugin" / "CMakeLists.txt").is_file():
        raise OfxSetupError(f"the plug-in's sources are not here ({source}); build from a clone of the LiveEdit "
                            "repository")
    return source


def standard_plugin_dir(system: str | None = None) -> Path:
    system = system or platform.system()
    if system == "Windows":
        common = os.environ.get("CommonProgramFiles", r"C:\Program Files\Common Files")
        return Path(common) / "OFX" / "Plugins"
    if system == "Darwin":
        return Path("/Library/OFX/Plugins")
    return Path("/usr/OFX/Plugins")


def plugin_search_path() -> list[Path]:
    """Where hosts look: OFX_PLUGIN_PATH's folders first, then the standard folder."""
    folders = [Path(p) for p in os.environ.get("OFX_PLUGIN_PATH", "").split(os.pathsep) if p]
    return [*folders, standard_plugin_dir()]


def arch_folder(system: str | None = None, machine: str | None = None) -> str:
    """The binary's folder inside a bundle (OpenFX packaging rules; clients/ofx/cmake/LiveEditOfx.cmake)."""
    system, machine = system or platform.system(), (machine or platform.machine()).lower()
    if system == "Windows":
        return "Win64"
    if system == "Darwin":
        return "MacOS"
    return {"x86_64": "Linux-x86-64", "amd64": "Linux-x86-64", "aarch64": "Linux-arm64", "arm64": "Linux-arm64"}.get(
        machine, "Linux-x86")


def bundle_binary(bundle: Path) -> Path:
    return bundle / "Contents" / arch_folder() / "LiveEdit.ofx"


def built_bundles() -> list[Path]:
    root = checkout_root() / "build"
    return [b for b in (root / "ofx" / "plugins" / BUNDLE, root / "ofx-plugin" / "plugins" / BUNDLE)
            if bundle_binary(b).is_file()]


def find_sdk(explicit: Path | None = None) -> Path | None:
    candidates = [explicit] if explicit else []
    if os.environ.get("OFX_SDK_DIR"):
        candidates.append(Path(os.environ["OFX_SDK_DIR"]))
    root = checkout_root()
    candidates += [root.parent / "shared" / "third_party" / "openfx", root / "shared" / "third_party" / "openfx"]
    candidates += [p / "shared" / "third_party" / "openfx" for p in root.parents]
    for candidate in candidates:
        if candidate and (candidate / "include" / "ofxCore.h").is_file():
            return candidate.resolve()
    if explicit:
        raise OfxSetupError(f"{explicit} is not an OpenFX SDK (no include/ofxCore.h in it)")
    return None


def _compiler() -> str | None:
    for name in ("c++", "g++", "clang++", "cl"):
        found = shutil.which(name)
        if found:
            return found
    return None


# -- build ----------------------------------------------------------------------------------------


def run_build(args) -> int:
    source = ofx_sources()
    if not shutil.which("cmake") or not _compiler():
        raise OfxSetupError("building needs CMake and a C++17 compiler: on Debian/Ubuntu `apt-get install cmake g++ "
                            "make` (plus libexpat1-dev for the test host), on macOS the Xcode command line tools and "
                            "CMake, on Windows Visual Studio with C++ and CMake")
    sdk = find_sdk(args.sdk)
    if sdk is None and not args.fetch_sdk:
        raise OfxSetupError("no OpenFX SDK found (OFX_SDK_DIR, or ../shared/third_party/openfx beside the checkout); "
                            f"pass --sdk DIR, or --fetch-sdk to let CMake fetch commit {SDK_COMMIT[:10]}")
    env = dict(os.environ)
    if sdk is not None:
        env["OFX_SDK_DIR"] = str(sdk)
    script = checkout_root() / "scripts" / "build-ofx"
    if not args.plugin_only and os.name != "nt" and script.is_file():
        command = [str(script), "-j", str(args.jobs)] + (["--fetch-sdk"] if args.fetch_sdk else [])
        bundle = checkout_root() / "build" / "ofx" / "plugins" / BUNDLE
        _run(command, env)
    else:
        build = checkout_root() / "build" / "ofx-plugin"
        configure = ["cmake", "-S", str(source), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                     "-DLIVEEDIT_OFX_TESTHOST=OFF", f"-DLIVEEDIT_OFX_FETCH_SDK={'ON' if args.fetch_sdk else 'OFF'}"]
        if sdk is not None:
            configure.append(f"-DOFX_SDK_DIR={sdk}")
        _run(configure, env)
        _run(["cmake", "--build", str(build), "--config", "Release", "--target", "liveedit_ofx_plugin",
              "-j", str(args.jobs)], env)
        bundle = build / "plugins" / BUNDLE
    if not bundle_binary(bundle).is_file():
        raise OfxSetupError(f"the build finished but {bundle_binary(bundle)} is missing; see the output above")
    print(f"built {bundle}")
    print("install it with `liveedit ofx install` (or set OFX_PLUGIN_PATH to its folder)")
    return 0


def _run(command: list[str], env: dict) -> None:
    print("$ " + " ".join(command), flush=True)
    result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise OfxSetupError(f"{Path(command[0]).name} failed with exit status {result.returncode}; see the output above")


# -- install --------------------------------------------------------------------------------------


def install_bundle(bundle: Path, dest: Path) -> Path:
    """Copy `bundle` to dest/LiveEdit.ofx.bundle, replacing an older copy as one step where the
    file system allows (a host scanning meanwhile sees the old bundle or the new one)."""
    if not bundle_binary(bundle).is_file():
        raise OfxSetupError(f"{bundle} is not a built LiveEdit bundle ({bundle_binary(bundle)} is missing); run "
                            "`liveedit ofx build` first")
    target = dest / BUNDLE
    staging = dest / f".{BUNDLE}.{os.getpid()}.new"
    old = dest / f".{BUNDLE}.{os.getpid()}.old"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(bundle, staging)
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except PermissionError:
        shutil.rmtree(staging, ignore_errors=True)
        raise OfxSetupError(f"no permission to write {dest}; run the install as an administrator (e.g. `sudo`), or "
                            "install into a folder of yours with --dest and add it to OFX_PLUGIN_PATH") from None
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise OfxSetupError(f"cannot install into {dest} ({exc.strerror or exc}); choose another folder with "
                            "--dest") from None
    return target


def run_install(args) -> int:
    if args.bundle is not None:
        bundle = args.bundle
    else:
        built = built_bundles()
        if not built:
            raise OfxSetupError("no built bundle in build/ofx or build/ofx-plugin; run `liveedit ofx build` first")
        bundle = max(built, key=lambda b: bundle_binary(b).stat().st_mtime)
    dest = args.dest or plugin_search_path()[0]
    target = install_bundle(bundle, dest)
    print(f"installed {target}")
    if dest not in plugin_search_path():
        print(f"note: {dest} is not on OFX_PLUGIN_PATH; hosts will not look there unless you add it")
    print("restart the host application (DaVinci Resolve, Nuke, ...) so that it scans its plug-ins again")
    return 0


# -- check ----------------------------------------------------------------------------------------


@dataclass
class Check:
    what: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"[{'ok' if self.ok else 'missing'}] {self.what}: {self.detail}"


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sidecar_check() -> Check:
    from liveedit.clients import transport

    try:
        info = transport.read_bridge_info()
        token = transport.read_token()
    except LiveEditError as exc:
        return Check("sidecar", False, str(exc))
    if info is None or token is None:
        return Check("sidecar", False, f"not running for this user (no bridge.json / token in "
                     f"{transport.config_dir()}); start it with `liveedit serve`")
    port = int(os.environ.get("LIVEEDIT_OFX_PORT") or info["port"])
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/takes/info",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            takes = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        hint = "this sidecar has no take routes: update it" if exc.code == 404 else f"HTTP {exc.code}"
        return Check("sidecar", False, f"127.0.0.1:{port} answered but refused ({hint})")
    except (OSError, ValueError) as exc:
        return Check("sidecar", False, f"not reachable on 127.0.0.1:{port} ({exc}); start it with `liveedit serve`")
    model = "RANDOM weights (--model tiny): the plug-in will show noise, not edits" if takes.get("random_weights") \
        else takes.get("model", "?")
    return Check("sidecar", True, f"running on 127.0.0.1:{port}, {model}")


def checks() -> list[Check]:
    out = [
        Check("cmake", bool(shutil.which("cmake")), shutil.which("cmake") or "not found (needed to build)"),
        Check("C++ compiler", bool(_compiler()), _compiler() or "not found (needed to build)"),
    ]
    try:
        sdk = find_sdk()
    except LiveEditError:
        sdk = None
    out.append(Check("OpenFX SDK", sdk is not None, str(sdk) if sdk else
                     f"not found; `liveedit ofx build --fetch-sdk` fetches commit {SDK_COMMIT[:10]} (needs git)"))
    built = built_bundles()
    out.append(Check("built bundle", bool(built), ", ".join(map(str, built)) if built else
                     "none; run `liveedit ofx build`"))
    installed = [folder / BUNDLE for folder in plugin_search_path() if bundle_binary(folder / BUNDLE).is_file()]
    if installed:
        detail = str(installed[0])
        if built and _file_hash(bundle_binary(installed[0])) != _file_hash(bundle_binary(built[0])):
            detail += " (differs from the one built here: run `liveedit ofx install` again)"
        out.append(Check("installed bundle", True, detail))
    else:
        where = ", ".join(str(p) for p in plugin_search_path())
        out.append(Check("installed bundle", False, f"not in {where}; run `liveedit ofx install`"))
    out.append(_sidecar_check())
    return out


def run_check(args) -> int:
    results = checks()
    for check in results:
        print(check.line())
    missing = [c.what for c in results if not c.ok]
    if missing:
        print(f"missing: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0
