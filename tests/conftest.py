"""Shared test fixtures. Reference material in ../shared is read in place, never copied."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from media_fixtures import media_clips  # noqa: F401  (one registration of the clip fixture for every test)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
NLE_EXPORTS = SHARED / "fixtures" / "nle-exports"

# Two CPU cores on CI: keep torch from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - torch is a hard dependency
    pass


@pytest.fixture(scope="session")
def nle_exports() -> Path:
    if not NLE_EXPORTS.is_dir():
        pytest.fail(f"shared fixtures not found at {NLE_EXPORTS}; CI clones shared/ beside the repo")
    return NLE_EXPORTS
