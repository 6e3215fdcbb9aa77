"""Shared fixtures. Real market data lives in ../shared/data/real (never committed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("HYDRAQUANT_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Root of the real-data folder; skips the test with a reason when it is absent."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real market data not found at {REAL_DATA} (set HYDRAQUANT_REAL_DATA)")
    return REAL_DATA


def real_file(relative: str) -> Path:
    """Path of one real data file, skipping the calling test if it is missing."""
    path = REAL_DATA / relative
    if not path.exists():
        pytest.skip(f"real data file missing: {path}")
    return path
