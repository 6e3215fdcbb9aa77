"""Validation of every frame before it reaches the lake (SPEC D5).

Why strict: a single shuffled file, a NaN price or a timestamp read in the
wrong unit silently corrupts every feature, label and backtest downstream.
So ingest refuses bad input with a message naming the file, the first bad
row (1-based, in file order) and the column, and saying what to do — and the
lake is left exactly as it was.  Gaps are not errors (exchanges halt; Binance
days go missing) but are reported so users can see them in ``data status``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import polars as pl

from hydraquant.data.schema import SCHEMAS, schema_for
from hydraquant.errors import DataError
from hydraquant.timeframes import interval_us

# Plausible timestamp range: a ms value read as us lands in 1970, a us value
# read as ms lands tens of thousands of years ahead.
_EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)
_LATEST_SLACK_DAYS = 2

STRICTLY_INCREASING = frozenset(
    {"klines", "markPriceKlines", "premiumIndexKlines", "bars", "funding", "open_interest"}
)


@dataclass(frozen=True)
class Gap:
    after: datetime
    before: datetime
    missing_bars: int


@dataclass
class ValidationReport:
    rows: int
    first: datetime | None
    last: datetime | None
    gaps: list[Gap] = field(default_factory=list)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)


def _first_true(mask: np.ndarray) -> int | None:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else None


def validate(
    frame: pl.DataFrame,
    kind: str,
    *,
    source: str,
    interval: str | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Check ``frame`` (already conformed to ``kind``'s schema, in file order).

    Raises :class:`DataError` on the first problem; returns a report with
    gaps (for interval kinds) otherwise.
    """
    schema = schema_for(kind)
    n = frame.height

    def fail(message: str, row: int | None, column: str | None, hint: str) -> None:
        raise DataError(message, file=source, row=None if row is None else row + 1, column=column, hint=hint)

    for col in schema.required:
        if col not in frame.columns:
            fail(f"required column '{col}' is missing", None, col, f"{kind} needs {', '.join(schema.required)}; "
                 "map source columns with --map SOURCE=NAME")
        nulls = frame.get_column(col).is_null().to_numpy()
        row = _first_true(nulls)
        if row is not None:
            fail(f"empty value in required column '{col}'", row, col,
                 "fix or drop that row in the source file, then import again")
    if n == 0:
        return ValidationReport(0, None, None)
    if schema.any_of:
        present = np.zeros(n, dtype=bool)
        for col in schema.any_of:
            if col in frame.columns:
                present |= ~frame.get_column(col).is_null().to_numpy()
        row = _first_true(~present)
        if row is not None:
            fail(f"no value in any of {', '.join(schema.any_of)}", row, schema.any_of[0],
                 f"{kind} rows need at least one of these columns; check the column mapping")

    ts = frame.get_column("ts")
    ts_us = ts.dt.epoch("us").to_numpy()
    now = now or datetime.now(timezone.utc)
    lo = int(_EARLIEST.timestamp() * 1_000_000)
    hi = int((now.timestamp() + _LATEST_SLACK_DAYS * 86400) * 1_000_000)
    row = _first_true((ts_us < lo) | (ts_us > hi))
    if row is not None:
        bad = ts.slice(row, 1).cast(pl.Int64).cast(pl.Utf8)[0] + " us since epoch"
        fail(f"timestamp {bad} is outside {_EARLIEST.date()}..today: the time unit is probably wrong "
             "(seconds/milliseconds/microseconds)", row, "ts",
             "check the file's timestamp unit; Binance spot files use microseconds from 2025-01-01")

    # numeric sanity: NaN/inf, then non-positive prices/sizes
    for col, dtype in schema.columns.items():
        if col not in frame.columns or not dtype.is_float():
            continue
        values = frame.get_column(col).to_numpy()
        present = ~frame.get_column(col).is_null().to_numpy()
        bad = present & ~np.isfinite(np.where(present, values, 0.0))
        row = _first_true(bad)
        if row is not None:
            fail(f"{values[row]} (NaN or infinite) in column '{col}'", row, col,
                 "remove or repair the row in the source file")
    for col in schema.price_columns:
        if col in frame.columns:
            v = frame.get_column(col).to_numpy()
            row = _first_true(np.nan_to_num(v, nan=1.0) <= 0)
            if row is not None:
                fail(f"non-positive price {v[row]} in column '{col}'", row, col,
                     "prices must be > 0; check the column mapping and the price scale")
    for col in schema.size_columns:
        if col in frame.columns:
            v = frame.get_column(col).to_numpy()
            strict = kind in ("aggTrades", "trades")
            bad = (v <= 0) if strict else (v < 0)
            row = _first_true(np.nan_to_num(bad, nan=False).astype(bool))
            if row is not None:
                fail(f"{'non-positive' if strict else 'negative'} size {v[row]} in column '{col}'", row, col,
                     "sizes must be positive; check the column mapping (price vs quantity)")

    if schema.ohlc:
        o, h, l, c = (frame.get_column(k).to_numpy() for k in ("open", "high", "low", "close"))
        bad = (h < l) | (h < np.maximum(o, c)) | (l > np.minimum(o, c))
        row = _first_true(bad)
        if row is not None:
            col = "high" if h[row] < l[row] or h[row] < max(o[row], c[row]) else "low"
            fail(f"inconsistent OHLC (open={o[row]}, high={h[row]}, low={l[row]}, close={c[row]})", row, col,
                 "high must be >= open, close, low and low <= open, close; check the column order")

    # ordering and duplicates
    diffs = np.diff(ts_us)
    row = _first_true(diffs < 0)
    if row is not None:
        fail(f"timestamps go backwards ({ts[row]} then {ts[row + 1]}): rows are not in time order",
             row + 1, "ts", "sort the file by time (or pass --repair sort) and import again")
    key = [k for k in schema.key if k in frame.columns and frame.get_column(k).null_count() < n]
    if kind == "trades" and "trade_id" not in key:
        key = ["ts", "price", "qty", "is_buyer_maker"]
    if kind in STRICTLY_INCREASING:
        row = _first_true(diffs == 0)
        if row is not None:
            fail(f"duplicate timestamp {ts[row + 1]}", row + 1, "ts",
                 "remove the duplicated rows (or pass --repair dedupe) and import again")
    elif key:
        dup = frame.select(pl.struct(key).is_duplicated()).to_series().to_numpy()
        if dup.any():
            # report the second occurrence
            first_seen = frame.select(pl.struct(key).is_first_distinct()).to_series().to_numpy()
            row = _first_true(dup & ~first_seen)
            fail(f"duplicated row (same {', '.join(key)})", row, key[0],
                 "remove the duplicated rows (or pass --repair dedupe) and import again")

    gaps: list[Gap] = []
    if interval and n > 1:
        step = interval_us(interval)
        idx = np.flatnonzero(diffs > step)
        for i in idx:
            gaps.append(Gap(ts[int(i)], ts[int(i) + 1], int(diffs[i] // step) - 1))
    return ValidationReport(n, ts[0], ts[-1], gaps)


def repair(frame: pl.DataFrame, kind: str, actions: set[str]) -> pl.DataFrame:
    """Explicit, opt-in repairs: ``sort`` (by ts) and ``dedupe`` (drop repeated keys).

    Never applied silently: the user asks for them with ``--repair``.
    """
    unknown = actions - {"sort", "dedupe"}
    if unknown:
        raise DataError(f"unknown repair action(s) {sorted(unknown)}", hint="use --repair sort and/or --repair dedupe")
    if "sort" in actions:
        frame = frame.sort("ts", maintain_order=True)
    if "dedupe" in actions:
        schema = SCHEMAS[kind]
        key = [k for k in schema.key if k in frame.columns and frame.get_column(k).null_count() < frame.height]
        if kind in STRICTLY_INCREASING:
            key = ["ts"]
        frame = frame.unique(subset=key or None, keep="first", maintain_order=True)
    return frame
