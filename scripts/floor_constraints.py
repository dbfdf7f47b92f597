"""Prints a pip constraints file that holds every direct dependency of pyproject.toml at its
floor: `name>=X` becomes `name==X`, pins stay pins, and the extras named on the command line
are included. scripts/test-floors installs the project under it, so CI proves that the
floors in pyproject.toml are versions the code works with (what `uv pip install
--resolution lowest-direct` does, with pip, which finds the CPU build of torch on CI's disk).

    python scripts/floor_constraints.py [EXTRA ...] > floors.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*(?:;.*)?$")


def floor(requirement: str) -> str | None:
    """`name==lowest` for a requirement with a floor or a pin, None for one without."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise ValueError(f"cannot read the requirement {requirement!r} in {PYPROJECT}")
    name, spec = match.groups()
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op, version = re.match(r"(==|>=|~=|<=|<|>|!=)\s*(\S+)", clause).groups()
        if op in ("==", ">=", "~="):
            return f"{name}=={version}"
    return None


def constraints(extras: list[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    lines = {}
    for requirement in requirements:
        pinned = floor(requirement)
        if pinned is not None:
            lines.setdefault(pinned.split("==")[0].lower(), pinned)
    return sorted(lines.values(), key=str.lower)


if __name__ == "__main__":
    print("\n".join(constraints(sys.argv[1:])))
