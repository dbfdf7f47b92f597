#!/usr/bin/env bash
# Source on a GPU box that has torch but no internet and no install of this project:
# installs carried pure-Python wheels (.whl/) into /tmp/site and maps the repo's folders
# into the liveedit namespace under /tmp/lv, the way pyproject.toml maps them.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -d "$root/.whl" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$root"/.whl/*.whl || return 1
fi
rm -rf /tmp/lv && mkdir -p /tmp/lv/liveedit
cp -r "$root"/liveedit/. /tmp/lv/liveedit/
for d in engine sidecar protos clients ui; do ln -s "$root/$d" "/tmp/lv/liveedit/$d"; done
export PYTHONPATH=/tmp/lv:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
# Run from outside the checkout: python -m puts the cwd first on sys.path, and the
# checkout's own liveedit/ folder would shadow the mapped namespace.
liveedit() { (cd /tmp && python3 -m liveedit "$@"); }
