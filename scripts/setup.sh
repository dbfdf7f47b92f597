#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtualenv in .venv with everything
# LiveEdit needs. Sourced by scripts/liveedit and scripts/test.
#   LIVEEDIT_TORCH   torch requirement to install (default torch==2.13.0; on a
#                    CUDA workstation pick the build for your driver, e.g.
#                    LIVEEDIT_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130")
#   LIVEEDIT_EXTRAS  pip extras, comma-separated (default none: no Qt, which a headless
#                    server does not need; scripts/liveedit asks for "ui" when the command
#                    is `preview`, and the tests use "dev")
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="${LIVEEDIT_EXTRAS:-}"
stamp="$venv/.liveedit-installed-${extras:-core}"
source "$root/scripts/pip-quietly.sh"
if [ ! -x "$venv/bin/python" ]; then
    echo "liveedit setup: creating $venv" >&2
    python3 -m venv "$venv"
fi
# Re-install only when the project metadata changed since the last set-up.
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "liveedit setup: installing dependencies (extras: ${extras:-none})" >&2
    pip_quietly "$venv/bin/python" install -q --upgrade pip
    if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
        # shellcheck disable=SC2086
        pip_quietly "$venv/bin/python" install -q ${LIVEEDIT_TORCH:-torch==2.13.0}
    fi
    # setuptools reports every editable install with a "be careful with folders named like
    # your package" notice; it is information, not a problem, so keep the set-up quiet.
    PYTHONWARNINGS="ignore:Editable installation" pip_quietly "$venv/bin/python" install -q -e "$root${extras:+[$extras]}"
    if [[ ",$extras," == *,ui,* ]] && [ "$(uname -s)" = Linux ]; then
        # Qt's X11 platform plugin loads system libraries that PySide6's wheel does not ship.
        read -r -a libs <<<"$("$venv/bin/python" -m liveedit.ui.system_libs)"
        if [ ${#libs[@]} -gt 0 ]; then
            if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
                echo "liveedit setup: installing what the preview window needs: ${libs[*]}" >&2
                apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${libs[@]}" 2>&1 >/dev/null \
                    | { grep -v "^debconf: delaying package configuration" || true; } >&2
            else
                echo "liveedit setup: the preview window needs these system packages; install them with" >&2
                echo "  sudo apt-get install ${libs[*]}" >&2
            fi
        fi
    fi
    touch "$stamp"
fi
