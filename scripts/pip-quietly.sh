# Sourced by scripts/setup.sh and scripts/test-floors: `pip_quietly PYTHON ARGS...` runs
# `PYTHON -m pip ARGS...`, passing its output through except one kind of line. A pip configured
# with local index folders that lack a package says so once per package; that is the machine's
# setting, not a problem, and the set-up prints only its own progress.
pip_quietly() {
    local python="$1"
    shift
    { "$python" -m pip "$@" 2>&1 1>&3 3>&- \
        | { grep -v -E "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" || true; } >&2
    } 3>&1
}
