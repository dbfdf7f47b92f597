# LiveEdit: Edit selection. Installed by `liveedit resolve install`; runs inside DaVinci Resolve's
# own Python (standard library only). The installer fills in LIBRARY below.
import sys

LIBRARY = None  # set by liveedit resolve install: the folder holding liveedit_resolve/

if LIBRARY is None:
    raise SystemExit("This LiveEdit script was not installed; run: liveedit resolve install")
if LIBRARY not in sys.path:
    sys.path.insert(0, LIBRARY)

from liveedit_resolve.entry import run  # noqa: E402

run("edit_selection", globals())
