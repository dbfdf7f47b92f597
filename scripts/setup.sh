#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtualenv in .venv with everything
# LiveEdit needs. Sourced by scripts/liveedit and scripts/test.
#   LIVEEDIT_TORCH   torch requirement to install (default torch==2.13.0; on a
#                    CUDA workstation pick the build for your driver, e.g.
#                    LIVEEDIT_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130")
#   LIVEEDIT_EXTRAS  pip extras (default "ui"; the tests use "dev")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="${LIVEEDIT_EXTRAS:-ui}"
stamp="$venv/.liveedit-installed-$extras"
if [ ! -x "$venv/bin/python" ]; then
    echo "liveedit setup: creating $venv" >&2
    python3 -m venv "$venv"
fi
# Re-install only when the project metadata changed since the last set-up.
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "liveedit setup: installing dependencies (extras: $extras)" >&2
    "$venv/bin/python" -m pip install -q --upgrade pip
    if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install -q ${LIVEEDIT_TORCH:-torch==2.13.0}
    fi
    "$venv/bin/python" -m pip install -q -e "$root[$extras]"
    touch "$stamp"
fi
