"""Writing a table to a user-named CSV or Parquet file, atomically.

A half-written export is worse than none (a later job may read it), so the
file is staged next to its target and renamed into place only when complete.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

from hydraquant.errors import HydraError

SUFFIXES = (".csv", ".parquet")


def check_table_file(path: Path) -> None:
    """Refuse an unsupported output name before any work is done."""
    if path.suffix.lower() not in SUFFIXES:
        raise HydraError(f"unsupported output {path}", hint="use a .csv or .parquet file name")


def write_table_file(frame: pl.DataFrame, path: Path) -> None:
    check_table_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if path.suffix.lower() == ".csv":
            frame.write_csv(tmp)
        else:
            frame.write_parquet(tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
