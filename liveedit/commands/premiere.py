"""`liveedit premiere package`: build the Premiere Pro panel's installable `.ccx` (a zip of
the UXP plugin folder with manifest.json at its root) and say how to load it."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from liveedit.errors import LiveEditError

# What goes into the plugin: the runtime files only (no dev tooling, tests or node_modules).
PLUGIN_FILES = ("manifest.json", "index.html", "index.js")
PLUGIN_DIRS = ("src", "icons")
DEFAULT_BRIDGE_PORT = 47311


class PackageError(LiveEditError):
    """The panel folder cannot be packaged."""


def register(sub) -> None:
    p = sub.add_parser("premiere", help="Premiere Pro panel (UXP) tools",
                       description="Tools for the LiveEdit panel for Adobe Premiere Pro.")
    tools = p.add_subparsers(dest="premiere_command", metavar="command", required=True)
    pack = tools.add_parser("package", help="build the installable .ccx of the Premiere panel",
                            description="Zip the UXP panel into a .ccx (manifest.json at the root) and print how "
                            "to load it in Premiere.")
    pack.add_argument("--output", "-o", type=Path, default=None,
                      help="the .ccx to write (default: ./liveedit-premiere-<version>.ccx)")
    pack.add_argument("--port", type=int, default=None,
                      help="the sidecar bridge port the panel may reach on 127.0.0.1 (default: the port of the "
                      f"running sidecar, from bridge.json in the config folder, else {DEFAULT_BRIDGE_PORT}; must "
                      "match `liveedit serve --bridge-port`)")
    pack.add_argument("--source", type=Path, default=None, help="the plugin folder (default: clients/premiere)")
    pack.set_defaults(func=run_package)
    pair = tools.add_parser("pair", help="show a one-time code that pairs the panel with the running sidecar",
                            description="Ask the running sidecar for a short one-time code (valid 5 minutes, once) "
                            "and show it; type it into the panel's Settings > Pair. The panel exchanges it for the "
                            "install token over the bridge and keeps the token in Premiere's secure storage.")
    pair.add_argument("--port", type=int, default=None,
                      help="the sidecar's bridge port (default: from bridge.json of the running sidecar)")
    pair.set_defaults(func=run_pair)


def plugin_dir() -> Path:
    import liveedit.clients

    return Path(liveedit.clients.__file__).resolve().parent / "premiere"


def load_manifest(source: Path, port: int) -> dict:
    """The plugin's manifest, checked, with the network permission set to the bridge port."""
    path = source / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise PackageError(f"{path} does not exist; pass --source <the clients/premiere folder>") from None
    except ValueError as exc:
        raise PackageError(f"{path} is not valid JSON ({exc}); fix the file") from None
    if manifest.get("manifestVersion") != 5:
        raise PackageError(f"{path}: manifestVersion must be 5 for Premiere UXP plugins")
    hosts = manifest.get("host")
    hosts = hosts if isinstance(hosts, list) else [hosts]
    if not any(isinstance(h, dict) and h.get("app") == "premierepro" for h in hosts):
        raise PackageError(f"{path}: host must name app 'premierepro'")
    main = manifest.get("main")
    if not main or not (source / main).is_file():
        raise PackageError(f"{path}: main {main!r} is not a file in {source}")
    if not 1 <= port <= 65535:
        raise PackageError(f"--port {port} is not a TCP port (1-65535)")
    # UXP refuses unlisted domains; list the loopback literal only (macOS blocks "localhost").
    manifest.setdefault("requiredPermissions", {})["network"] = {
        "domains": [f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"]}
    return manifest


def plugin_members(source: Path) -> list[tuple[Path, str]]:
    members = []
    for name in PLUGIN_FILES[1:]:
        if not (source / name).is_file():
            raise PackageError(f"{source / name} is missing; the panel folder is incomplete")
        members.append((source / name, name))
    for folder in PLUGIN_DIRS:
        for path in sorted((source / folder).rglob("*")) if (source / folder).is_dir() else []:
            if path.is_file():
                members.append((path, path.relative_to(source).as_posix()))
    return members


def build_ccx(source: Path, output: Path, port: int = DEFAULT_BRIDGE_PORT) -> Path:
    """Write the .ccx atomically (temp name in the same folder, then os.replace)."""
    source = source.resolve()
    manifest = load_manifest(source, port)
    members = plugin_members(source)
    output = output.resolve()
    if output.suffix != ".ccx":
        raise PackageError(f"{output} should end in .ccx, the extension Creative Cloud installs")
    if output.is_relative_to(source):
        raise PackageError(f"{output} is inside the plugin folder {source}; write it elsewhere")
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2) + "\n")
            for path, name in members:
                zf.write(path, name)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return output


def bridge_port() -> tuple[int, str]:
    """The running sidecar's bridge port (bridge.json, which the sidecar removes when it
    stops) and where it came from, else the default port."""
    from liveedit.clients import transport

    try:
        info = transport.read_bridge_info()
    except transport.ConfigError as exc:
        raise PackageError(f"{exc}; or pass --port") from None
    if info is not None:
        return info["port"], f"the running sidecar's port, from {transport.bridge_info_path()}"
    return DEFAULT_BRIDGE_PORT, "the default port; no sidecar is running"


def run_package(args) -> int:
    source = args.source or plugin_dir()
    if args.port is None:
        args.port, why = bridge_port()
    else:
        why = "from --port"
    manifest = load_manifest(source, args.port)
    output = args.output or Path.cwd() / f"liveedit-premiere-{manifest.get('version', '0')}.ccx"
    try:
        written = build_ccx(source, output, args.port)
    except PackageError as exc:
        print(f"liveedit: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {written} (plugin {manifest['id']} {manifest.get('version')}, Premiere "
          f"{manifest['host'][0].get('minVersion')}+; reaches the sidecar on 127.0.0.1:{args.port}, {why})")
    print(f"""
Load it in developer mode (unsigned plugins):
  1. In Premiere Pro: Settings > Plugins > enable "Developer Mode", then restart Premiere.
  2. Open the UXP Developer Tool (install it from the Creative Cloud desktop app), choose
     "Add Plugin" and pick {Path(source).resolve() / 'manifest.json'}, then "Load".
     The panel opens under Window > UXP Plugins > LiveEdit.
  (UDT loads the folder; the .ccx is for installing: double-click it so Creative Cloud
  installs it, or use UnifiedPluginInstallerAgent --install <file.ccx>.)
  3. Start the sidecar with `liveedit serve` (bridge on port {args.port}), run
     `liveedit premiere pair` and type the code it shows into the panel's Settings > Pair.
See docs/premiere.md.""")
    return 0


def run_pair(args) -> int:
    from liveedit.clients import transport
    from liveedit.sidecar.api.pairing import request_code

    port = args.port
    if port is None:
        info = transport.read_bridge_info()
        if info is None:
            raise LiveEditError("no LiveEdit sidecar is running for this user (no bridge.json in "
                                f"{transport.config_dir()}); start it with `liveedit serve`, then run this again")
        port = info["port"]
    token = transport.read_token()
    if not token:
        raise LiveEditError(f"there is no install token at {transport.token_path()} yet; start the sidecar with "
                            "`liveedit serve` (it creates one), then run this again")
    code, ttl = request_code(port, token)
    print(f"""Pairing code:  {code}

In Premiere Pro, open the LiveEdit panel (Window > UXP Plugins > LiveEdit), enter the code under
Settings > Pairing code (port {port}) and press Pair. The code works once, within {ttl // 60} minutes;
run `liveedit premiere pair` again for a new one.""")
    return 0
