"""What the Workspace > Scripts menu items call inside Resolve (standard library only).

``run(action, script_globals)``: find the Resolve object, read the settings the installer
wrote next to this package, leave a note that Resolve's Python ran us (the installer's
self-test reads it), then run the action with its dialog and show the outcome.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from . import actions, dialog
from .bridge_client import DEFAULT_START_COMMAND, BridgeClient, default_config_dir
from .errors import ResolveScriptError

SETTINGS_FILE = "settings.json"
PROBE_FILE = "resolve_probe.json"


def load_settings() -> dict:
    try:
        return json.loads((Path(__file__).parent / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _resolve_from(script_globals: dict):
    resolve = script_globals.get("resolve")
    if resolve is None and script_globals.get("bmd") is not None:
        resolve = script_globals["bmd"].scriptapp("Resolve")
    if resolve is None:
        try:
            import DaVinciResolveScript  # noqa: PLC0415 - only exists inside Resolve's environment

            resolve = DaVinciResolveScript.scriptapp("Resolve")
        except ImportError:
            pass
    return resolve


def write_probe(resolve, config_dir: Path) -> None:
    """Proof for `liveedit resolve check` that Resolve found a Python and ran our script."""
    try:
        config_dir.mkdir(parents=True, exist_ok=True)
        note = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
                "product": resolve.GetProductName() if resolve else None,
                "version": resolve.GetVersionString() if resolve else None,
                "ran": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        tmp = config_dir / f".{PROBE_FILE}.tmp"
        tmp.write_text(json.dumps(note, indent=2))
        tmp.replace(config_dir / PROBE_FILE)
    except OSError:
        pass  # a note for diagnostics only


def run(action: str, script_globals: dict) -> None:
    settings = load_settings()
    resolve = _resolve_from(script_globals)
    fusion = script_globals.get("fusion") or (resolve.Fusion() if resolve else None)
    bmd = script_globals.get("bmd")
    config_dir = Path(settings.get("config_dir") or default_config_dir())
    write_probe(resolve, config_dir)
    start_command = settings.get("start_command") or DEFAULT_START_COMMAND
    title = {"edit_selection": "Edit selection", "live_preview": "Live preview",
             "render_marked_regions": "Render marked regions"}[action]
    try:
        if action == "live_preview":
            answer = dialog.ask_instruction(fusion, bmd, title)
            if answer is None:
                return
            BridgeClient.from_config(config_dir, start_command)  # the preview window needs the sidecar too
            actions.live_preview(resolve, settings.get("liveedit_command") or ["liveedit"], answer[0], answer[1])
            return
        if action == "edit_selection":
            options = dialog.ask_edit_options(fusion, bmd, settings)
            if options is None:
                return
        else:
            color = dialog.ask_marker_color(fusion, bmd, settings.get("marker_color", "Green"))
            if color is None:
                return
        client = BridgeClient.from_config(config_dir, start_command)
        progress = dialog.ProgressWindow(fusion, bmd, f"LiveEdit: {title}")
        try:
            if action == "edit_selection":
                report = actions.edit_selection(resolve, client, options, progress.update)
            else:
                options = actions.EditOptions("(from markers)", handles=int(settings.get("handles", 12)),
                                              format=settings.get("format", "prores"),
                                              output_dir=settings.get("output_dir"))
                report = actions.render_marked_regions(resolve, client, color, options, progress.update)
        finally:
            progress.close()
        dialog.show_message(fusion, bmd, f"LiveEdit: {title}", report.text())
    except ResolveScriptError as exc:
        dialog.show_message(fusion, bmd, "LiveEdit", str(exc))
    except Exception:  # a bug: keep the details for the report, do not lose Resolve's session
        log = config_dir / "resolve_errors.log"
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"--- {time.ctime()} {action}\n{traceback.format_exc()}\n")
        dialog.show_message(fusion, bmd, "LiveEdit", f"LiveEdit hit an internal error; details are in {log}. "
                                                     "Please send that file with your report.")
