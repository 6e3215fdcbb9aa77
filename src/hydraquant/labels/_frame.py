"""Shared plumbing for labelers: validate one symbol's bars, pull numpy columns, build ``t_end``.

Kept private so every labeler checks its input the same way and states the
same "label known at" convention: ``t_end = ts[j] + interval`` where ``j`` is
the last bar the label looks at (bars are stamped with their OPEN time).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from hydraquant.errors import DataError, HydraError
from hydraquant.timeframes import interval_us

TS_DTYPE = pl.Datetime("us", "UTC")


class LabelError(HydraError):
    """A labeler was given parameters it cannot work with."""


def check_bars(frame: pl.DataFrame, columns: Sequence[str], *, where: str) -> pl.DataFrame:
    """Demand ``ts`` plus ``columns``, one symbol, strictly increasing ts; cast ts to µs UTC."""
    missing = [c for c in ("ts", *columns) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {missing}; have {frame.columns}",
            column=missing[0],
            hint="pass one symbol's bars with ts and the named input columns",
        )
    if "symbol" in frame.columns and frame.height and frame["symbol"].n_unique() > 1:
        raise DataError(
            f"{where}: got {frame['symbol'].n_unique()} symbols in one frame",
            column="symbol",
            hint="label each symbol separately (group_by('symbol') or a loop over partitions)",
        )
    ts = frame["ts"]
    if ts.dtype != TS_DTYPE:
        try:
            ts = ts.cast(TS_DTYPE)
        except Exception as exc:  # polars raises several exception types here
            raise DataError(
                f"{where}: ts has dtype {frame['ts'].dtype}, expected Datetime('us','UTC')",
                column="ts",
                hint="normalise with hydraquant.data.schema.conform first",
            ) from exc
        frame = frame.with_columns(ts)
    if frame.height > 1:
        steps = np.diff(ts.dt.epoch("us").to_numpy())
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            raise DataError(
                f"{where}: ts not strictly increasing",
                row=int(bad[0]) + 1,
                column="ts",
                hint="sort by ts and drop duplicate bars before labelling",
            )
    return frame


def column_f64(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A float64 numpy copy of ``name`` with nulls as NaN."""
    return (
        frame[name]
        .cast(pl.Float64)
        .fill_null(float("nan"))
        .to_numpy()
        .astype(np.float64, copy=False)
    )


def positive_prices(frame: pl.DataFrame, names: Sequence[str], *, where: str) -> list[np.ndarray]:
    """Price columns as float64; a non-finite or non-positive price is a data error (row named)."""
    out = []
    for name in names:
        arr = column_f64(frame, name)
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
        if bad.size:
            raise DataError(
                f"{where}: price must be finite and > 0, got {arr[bad[0]]!r}",
                row=int(bad[0]),
                column=name,
                hint="validate/repair bars (hydraquant.data.validate) before labelling",
            )
        out.append(arr)
    return out


def resolve_interval_us(frame: pl.DataFrame, interval: str | None) -> int:
    """Bar length in µs: parsed from ``interval`` or, if None, the smallest ts step (robust to gaps)."""
    if interval is not None:
        return interval_us(interval)
    if frame.height < 2:
        raise LabelError(
            "cannot infer the bar interval from fewer than 2 bars",
            hint="pass interval='1m' (or the bar size) explicitly",
        )
    return int(np.diff(frame["ts"].dt.epoch("us").to_numpy()).min())


def ts_us(frame: pl.DataFrame) -> np.ndarray:
    return frame["ts"].dt.epoch("us").to_numpy().astype(np.int64, copy=False)


def t_end_series(
    ts: np.ndarray, last_idx: np.ndarray, step_us: int, name: str = "t_end"
) -> pl.Series:
    """``ts[last_idx] + interval`` as Datetime(us, UTC); null where ``last_idx < 0``."""
    valid = last_idx >= 0
    vals = np.zeros(last_idx.shape[0], dtype=np.int64)
    vals[valid] = ts[last_idx[valid]] + step_us
    s = pl.Series(name, vals).cast(TS_DTYPE)
    return s.set(pl.Series(~valid), None) if (~valid).any() else s


def masked(
    name: str, values: np.ndarray, valid: np.ndarray, dtype: pl.DataType | None = None
) -> pl.Series:
    """A Series that is null wherever ``valid`` is False (never a partial-horizon value)."""
    s = pl.Series(name, values)
    if dtype is not None:
        s = s.cast(dtype)
    return s.set(pl.Series(~valid), None) if (~valid).any() else s


def check_horizon(horizon: int, *, name: str = "horizon") -> int:
    if not isinstance(horizon, (int, np.integer)) or isinstance(horizon, bool) or horizon < 1:
        raise LabelError(f"{name} must be a positive number of bars, got {horizon!r}")
    return int(horizon)
