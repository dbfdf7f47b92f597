"""What must not load torch: the CLI's parser (`liveedit --help` / `--version` answer at
once), the engine's configs and presets, and the module clients share with the sidecar.
Each check runs in a fresh interpreter and reads its `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from liveedit import __version__

HEAVY = ("torch", "diffusers", "transformers")


def fresh_python(code: str) -> tuple[dict, subprocess.CompletedProcess]:
    """Run ``code`` in a new interpreter; it ends by printing which HEAVY modules it loaded."""
    tail = f"\nimport json, sys\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
    done = subprocess.run([sys.executable, "-c", code + tail], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1]), done


@pytest.mark.parametrize("argv, shows", [(["--help"], "usage: liveedit"), (["--version"], f"liveedit {__version__}")])
def test_help_and_version_do_not_import_torch(argv, shows):
    loaded, done = fresh_python(
        "from liveedit.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n")
    assert shows in done.stdout
    assert "bench" in done.stdout or argv == ["--version"]  # every command registered, bench included
    assert loaded == []


def test_configs_and_presets_do_not_import_torch():
    loaded, done = fresh_python(
        "from liveedit.engine.config import MaskCacheConfig, SamplerConfig, SpeedOptions\n"
        "from liveedit.engine.presets import get_preset\n"
        "preset = get_preset('liveedit-1.3b')\n"
        "assert (preset.height, preset.width) == (480, 832)\n"
        "assert SamplerConfig().timesteps == (1000.0, 750.0, 500.0, 250.0)\n"
        "assert MaskCacheConfig(keep_ratio=0.5, pruned_sublayers=('ffn', 'ffn')).pruned_sublayers == ('ffn',)\n"
        "assert SpeedOptions.for_device('cuda:1') == SpeedOptions() and SpeedOptions.for_device('cpu') == SpeedOptions.plain()\n")
    assert loaded == []


def test_client_transport_does_not_import_torch():
    loaded, _ = fresh_python("import liveedit.clients.transport\nimport liveedit.clients.python\n")
    assert loaded == []
