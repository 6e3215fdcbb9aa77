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


def _first_row(frame: pl.DataFrame, condition: pl.Expr) -> int:
    """0-based index of the first row where ``condition`` holds (called only on failure)."""
    return int(frame.select(condition.arg_true().first()).item())


def validate(
    frame: pl.DataFrame,
    kind: str,
    *,
    source: str,
    interval: str | None = None,
    now: datetime | None = None,
    row_offset: int = 0,
) -> ValidationReport:
    """Check ``frame`` (already conformed to ``kind``'s schema, in file order).

    Raises :class:`DataError` on the first problem; returns a report with
    gaps (for interval kinds) otherwise.  Every check is first evaluated as
    one vectorised "is anything wrong?" pass over the columns; the offending
    row is located only when something is, so clean multi-million-row days
    validate in a fraction of a second.  ``row_offset`` (rows of the file
    before this frame) keeps reported rows file-global when a file is
    validated chunk by chunk (see :func:`validate_chunk`).
    """
    schema = schema_for(kind)
    n = frame.height

    def fail(message: str, row: int | None, column: str | None, hint: str) -> None:
        raise DataError(message, file=source, row=None if row is None else row + row_offset + 1, column=column,
                        hint=hint)

    for col in schema.required:
        if col not in frame.columns:
            fail(f"required column '{col}' is missing", None, col, f"{kind} needs {', '.join(schema.required)}; "
                 "map source columns with --map SOURCE=NAME")
    if n == 0:
        return ValidationReport(0, None, None)

    ts_us = pl.col("ts").dt.epoch("us")
    now = now or datetime.now(timezone.utc)
    lo = int(_EARLIEST.timestamp() * 1_000_000)
    hi = int((now.timestamp() + _LATEST_SLACK_DAYS * 86400) * 1_000_000)
    floats = [c for c, t in schema.columns.items() if c in frame.columns and t.is_float()]
    strict_size = kind in ("aggTrades", "trades")
    checks: dict[str, pl.Expr] = {}
    for col in schema.required:
        checks[f"null:{col}"] = pl.col(col).is_null()
    if schema.any_of:
        checks["any_of"] = pl.all_horizontal([pl.col(c).is_null() for c in schema.any_of if c in frame.columns])
    checks["ts_range"] = (ts_us < lo) | (ts_us > hi)
    for col in floats:
        checks[f"finite:{col}"] = pl.col(col).is_not_null() & ~pl.col(col).is_finite()
    for col in schema.price_columns:
        if col in frame.columns:
            checks[f"price:{col}"] = pl.col(col) <= 0
    for col in schema.size_columns:
        if col in frame.columns:
            checks[f"size:{col}"] = (pl.col(col) <= 0) if strict_size else (pl.col(col) < 0)
    if schema.ohlc:
        o, h, l, c = (pl.col(k) for k in ("open", "high", "low", "close"))
        checks["ohlc"] = (h < l) | (h < pl.max_horizontal(o, c)) | (l > pl.min_horizontal(o, c))
    checks["backwards"] = ts_us.diff() < 0
    if kind in STRICTLY_INCREASING:
        checks["dup_ts"] = ts_us.diff() == 0
    anything = frame.select(**{k: v.fill_null(False).any() for k, v in checks.items()}).row(0, named=True)

    for name, bad in anything.items():
        if not bad:
            continue
        row = _first_row(frame, checks[name].fill_null(False))
        what, _, col = name.partition(":")
        value = frame.get_column(col)[row] if col else None
        if what == "null":
            fail(f"empty value in required column '{col}'", row, col,
                 "fix or drop that row in the source file, then import again")
        if name == "any_of":
            fail(f"no value in any of {', '.join(schema.any_of)}", row, schema.any_of[0],
                 f"{kind} rows need at least one of these columns; check the column mapping")
        if name == "ts_range":
            raw = frame.get_column("ts").slice(row, 1).cast(pl.Int64)[0]
            fail(f"timestamp {raw} us since epoch is outside {_EARLIEST.date()}..today: the time unit is probably "
                 "wrong (seconds/milliseconds/microseconds)", row, "ts",
                 "check the file's timestamp unit; Binance spot files use microseconds from 2025-01-01")
        if what == "finite":
            fail(f"{value} (NaN or infinite) in column '{col}'", row, col, "remove or repair the row in the source file")
        if what == "price":
            fail(f"non-positive price {value} in column '{col}'", row, col,
                 "prices must be > 0; check the column mapping and the price scale")
        if what == "size":
            fail(f"{'non-positive' if strict_size else 'negative'} size {value} in column '{col}'", row, col,
                 "sizes must be positive; check the column mapping (price vs quantity)")
        if name == "ohlc":
            o, h, l, c = (frame.get_column(k)[row] for k in ("open", "high", "low", "close"))
            col = "high" if h < l or h < max(o, c) else "low"
            fail(f"inconsistent OHLC (open={o}, high={h}, low={l}, close={c})", row, col,
                 "high must be >= open, close, low and low <= open, close; check the column order")
        if name == "backwards":
            ts = frame.get_column("ts")
            fail(f"timestamps go backwards ({ts[row - 1]} then {ts[row]}): rows are not in time order",
                 row, "ts", "sort the file by time (or pass --repair sort) and import again")
        if name == "dup_ts":
            fail(f"duplicate timestamp {frame.get_column('ts')[row]}", row, "ts",
                 "remove the duplicated rows (or pass --repair dedupe) and import again")

    if kind not in STRICTLY_INCREASING:
        _check_duplicate_keys(frame, kind, schema, fail)

    gaps: list[Gap] = []
    if interval and n > 1:
        step = interval_us(interval)
        diffs = np.diff(frame.get_column("ts").dt.epoch("us").to_numpy())
        idx = np.flatnonzero(diffs > step)
        ts = frame.get_column("ts")
        for i in idx:
            gaps.append(Gap(ts[int(i)], ts[int(i) + 1], int(diffs[i] // step) - 1))
    first, last = frame.get_column("ts")[0], frame.get_column("ts")[-1]
    return ValidationReport(n, first, last, gaps)


def _increasing_key(frame: pl.DataFrame, key: list[str]) -> str | None:
    """A null-free integer key column that strictly increases: it alone proves the keys unique."""
    for col in key:
        if (
            frame.schema[col].is_integer()
            and frame.get_column(col).null_count() == 0
            and frame.select((pl.col(col).diff() > 0).all(ignore_nulls=True)).item()
        ):
            return col
    return None


def _dup_key(frame: pl.DataFrame, kind: str) -> list[str]:
    schema = schema_for(kind)
    n = frame.height
    key = [k for k in schema.key if k in frame.columns and frame.get_column(k).null_count() < n]
    if kind == "trades" and "trade_id" not in key:
        key = ["ts", "price", "qty", "is_buyer_maker"]
    return key


def _check_duplicate_keys(frame: pl.DataFrame, kind: str, schema, fail) -> None:
    """Repeated rows by the kind's key; strictly increasing integer ids prove uniqueness cheaply."""
    key = _dup_key(frame, kind)
    if not key:
        return
    if _increasing_key(frame, key) is not None:
        return
    dup = pl.struct(key).is_duplicated()
    if not frame.select(dup.any()).item():
        return
    row = _first_row(frame, dup & ~pl.struct(key).is_first_distinct())
    fail(f"duplicated row (same {', '.join(key)})", row, key[0],
         "remove the duplicated rows (or pass --repair dedupe) and import again")


# --------------------------------------------------------------------------- chunked validation


@dataclass(frozen=True)
class ChunkCarry:
    """What validating the next chunk of a file must know about the chunks before it.

    ``key_col`` names an integer key column that has strictly increased over
    every row so far (which proves the keys unique without remembering
    them); None once that proof is lost, and the caller must then check the
    keys of the whole file (:func:`check_unique_keys`) before committing.
    """

    rows: int
    first: datetime
    last: datetime
    last_ts_us: int
    key_col: str | None
    last_key: int | None
    gaps: tuple[Gap, ...] = ()
    key_checked: bool = True

    def report(self) -> ValidationReport:
        return ValidationReport(self.rows, self.first, self.last, list(self.gaps))


def validate_chunk(
    frame: pl.DataFrame,
    kind: str,
    *,
    source: str,
    carry: ChunkCarry | None,
    interval: str | None = None,
    now: datetime | None = None,
) -> ChunkCarry | None:
    """Validate the next chunk of a file (rows in file order) given the previous chunks' carry.

    Same checks and messages as :func:`validate` on the whole file, with
    file-global rows: each chunk is validated on its own, then the border
    with the previous chunk is checked (time going backwards, a repeated
    timestamp for strictly increasing kinds, a gap for interval kinds, the
    continuity of the increasing key).  Returns the new carry (None while no
    rows were seen).
    """
    if frame.height == 0:
        return carry
    offset = carry.rows if carry is not None else 0
    report = validate(frame, kind, source=source, interval=interval, now=now, row_offset=offset)
    ts = frame.get_column("ts")
    first_us = int(ts.dt.epoch("us")[0])
    last_us = int(ts.dt.epoch("us")[-1])
    gaps = list(carry.gaps) if carry is not None else []
    if carry is not None:
        where = offset + 1
        if first_us < carry.last_ts_us:
            raise DataError(
                f"timestamps go backwards ({carry.last} then {ts[0]}): rows are not in time order",
                file=source, row=where, column="ts",
                hint="sort the file by time (or pass --repair sort) and import again",
            )
        if kind in STRICTLY_INCREASING and first_us == carry.last_ts_us:
            raise DataError(f"duplicate timestamp {ts[0]}", file=source, row=where, column="ts",
                            hint="remove the duplicated rows (or pass --repair dedupe) and import again")
        if interval:
            step = interval_us(interval)
            if first_us - carry.last_ts_us > step:
                gaps.append(Gap(carry.last, ts[0], (first_us - carry.last_ts_us) // step - 1))
    gaps.extend(report.gaps)
    key_col, last_key, key = None, None, []
    if kind not in STRICTLY_INCREASING:
        key = _dup_key(frame, kind)
        col = _increasing_key(frame, key) if key else None
        if col is not None and (
            carry is None
            or (carry.key_col == col and carry.last_key is not None and int(frame.get_column(col)[0]) > carry.last_key)
        ):
            key_col, last_key = col, int(frame.get_column(col)[-1])
    return ChunkCarry(
        rows=offset + frame.height,
        first=carry.first if carry is not None else ts[0],
        last=ts[-1],
        last_ts_us=last_us,
        key_col=key_col,
        last_key=last_key,
        gaps=tuple(gaps),
        key_checked=not key or key_col is not None,
    )


def check_unique_keys(frame: pl.DataFrame, kind: str, *, source: str) -> None:
    """Whole-file duplicate-key check for chunked input whose keys were not proven unique.

    ``frame`` holds (at least) the key columns of every row, in file order;
    only the keys need to be in memory, not the file.
    """
    if kind in STRICTLY_INCREASING or frame.height == 0:
        return

    def fail(message: str, row: int | None, column: str | None, hint: str) -> None:
        raise DataError(message, file=source, row=None if row is None else row + 1, column=column, hint=hint)

    _check_duplicate_keys(frame, kind, schema_for(kind), fail)


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
