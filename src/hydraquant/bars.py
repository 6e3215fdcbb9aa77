"""Time bars from trades, and causal resampling to higher timeframes (SPEC B1, B3).

Conventions (DESIGN.md): ``ts`` is the bar OPEN time, ``Datetime("us", "UTC")``;
a bar's values are known at ``ts + interval``.  Long frames are ``ts, symbol,
...`` sorted by (symbol, ts); a frame without ``symbol`` is one symbol.

Buckets are aligned to the Unix epoch (so a 250ms bar always opens on a
multiple of 250ms, a 1h bar on the hour, a 1d bar at 00:00 UTC), except
intervals that are whole weeks, which open on Monday 00:00 UTC like
Binance's ``1w`` klines.

Causality: :func:`resample_bars` drops, by default, the higher bar still open
at the end of the data, and :func:`join_higher_timeframe` lets a lower row see
a higher bar only once that higher bar has closed — the classic multi-timeframe
leak (attaching today's daily close to this morning's 1m rows) cannot happen.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np
import polars as pl

from hydraquant import bars_nb
from hydraquant.data.schema import BAR_COLUMNS, TS
from hydraquant.errors import DataError, HydraError
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

__all__ = [
    "bucket_origin_us",
    "floor_ts",
    "join_higher_timeframe",
    "resample_bars",
    "trades_to_bars",
]

_WEEK_US = 7 * 86_400_000_000
_MONDAY_ORIGIN_US = 4 * 86_400_000_000  # 1970-01-05, the first Monday after the epoch
_TRADE_REQUIRED = ("ts", "price", "qty", "is_buyer_maker")
_MIN_BAR_US = 1_000  # below 1ms a "bar" is a trade; 250ms is the finest the spec asks for

# How resample_bars aggregates each known column of bar and kline frames.
_FIRST = ("open",)
_MAX = ("high",)
_MIN = ("low",)
_LAST = ("close",)
_SUM = (
    "volume",
    "quote_volume",
    "buy_volume",
    "signed_volume",
    "trade_count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
_KNOWN = {*_FIRST, *_MAX, *_MIN, *_LAST, *_SUM, "vwap"}


# --------------------------------------------------------------------------- helpers


def bucket_origin_us(step_us: int) -> int:
    """Alignment origin for buckets of ``step_us``: epoch, or Monday for whole weeks."""
    return _MONDAY_ORIGIN_US if step_us % _WEEK_US == 0 else 0


def floor_ts(expr: pl.Expr, interval: str) -> pl.Expr:
    """Bucket open time of ``expr`` (a UTC us datetime) for ``interval``, as an expression.

    Integer arithmetic rather than ``dt.truncate`` so that every interval,
    including ones polars would align to calendar units, uses the same rule as
    the numba kernel (epoch-aligned, weeks on Monday).
    """
    step = interval_us(interval)
    origin = bucket_origin_us(step)
    ticks = expr.cast(pl.Int64)
    return (((ticks - origin) // step) * step + origin).cast(TS)


def _to_utc_us(frame: pl.DataFrame, column: str = "ts", *, what: str) -> pl.DataFrame:
    """Coerce a datetime column to ``Datetime("us","UTC")``; naive times are taken as UTC."""
    dtype = frame.schema[column]
    if not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"{what}: column '{column}' has dtype {dtype}, expected a UTC datetime",
            column=column,
            hint="parse it first, e.g. "
            "pl.from_epoch(col, time_unit='ms').dt.replace_time_zone('UTC')",
        )
    if dtype == TS:
        return frame
    col = pl.col(column)
    col = col.dt.convert_time_zone("UTC") if dtype.time_zone else col.dt.replace_time_zone("UTC")
    return frame.with_columns(col.dt.cast_time_unit("us"))


def _require(frame: pl.DataFrame, columns: tuple[str, ...], *, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what}: missing column(s) {missing}; got {frame.columns}",
            column=missing[0],
            hint="normalise the input with hydraquant.data.schema.conform first",
        )


def _no_nulls(frame: pl.DataFrame, columns: tuple[str, ...], *, what: str) -> None:
    for name in columns:
        nulls = frame.get_column(name).null_count()
        if nulls:
            row = int(frame.get_column(name).is_null().arg_max())  # type: ignore[arg-type]
            raise DataError(
                f"{what}: {nulls} null value(s) in required column",
                row=row,
                column=name,
                hint="drop or repair those rows (hydraquant.data.validate) before building bars",
            )


def _sorted_by_symbol_ts(frame: pl.DataFrame, has_symbol: bool) -> pl.DataFrame:
    """Return ``frame`` sorted by (symbol, ts), keeping the input order of ties.

    Checks first (linear) and only sorts when needed, because real inputs
    are nearly always already sorted and a sort of millions of rows is the
    most expensive thing the bar builder could do.
    """
    keys = ["symbol", "ts"] if has_symbol else ["ts"]
    if frame.height < 2:
        return frame
    if has_symbol:
        bounds = _segment_bounds(frame)
        symbols = frame.get_column("symbol")
        run_symbols = symbols.gather(pl.Series(bounds[:-1]))
        if bounds.shape[0] - 1 == symbols.n_unique() and run_symbols.is_sorted():
            ts = frame.get_column("ts").cast(pl.Int64).to_numpy()
            if bars_nb.first_unsorted(ts, bounds) < 0:
                return frame
    elif frame.get_column("ts").is_sorted():
        return frame
    log.debug("sorting %d rows by %s", frame.height, keys)
    return frame.sort(keys, maintain_order=True)


def _segment_bounds(frame: pl.DataFrame) -> np.ndarray:
    """Start offsets of each contiguous run of one symbol, plus the total length."""
    n = frame.height
    if "symbol" not in frame.columns or n == 0:
        return np.array([0, n], dtype=np.int64)
    sym = frame.get_column("symbol")
    change = (sym != sym.shift(1)).fill_null(True)
    starts = change.arg_true().to_numpy().astype(np.int64)
    return np.append(starts, np.int64(n))


def _collect(frame: pl.DataFrame | pl.LazyFrame, columns: list[str] | None = None) -> pl.DataFrame:
    if isinstance(frame, pl.LazyFrame):
        if columns is not None:
            names = frame.collect_schema().names()
            frame = frame.select([c for c in columns if c in names])
        return frame.collect()
    return frame


# --------------------------------------------------------------------------- B1


def trades_to_bars(
    trades: pl.DataFrame | pl.LazyFrame,
    interval: str,
    *,
    empty: Literal["drop", "ffill"] = "drop",
) -> pl.DataFrame:
    """Build time bars of ``interval`` (250ms … 1d, or longer) from trades.

    Parameters
    ----------
    trades
        Columns ``ts`` (trade time), ``price``, ``qty``, ``is_buyer_maker``
        (true = the aggressor SOLD), optional ``quote_qty`` (used for
        ``quote_volume`` where not null; ``price*qty`` otherwise) and optional
        ``symbol``.  Sorted by (symbol, ts) is fastest; other orders are sorted
        first (ties keep their input order, which decides open/close).
    interval
        Bar length, e.g. ``"250ms"``, ``"1s"``, ``"1m"``, ``"1d"``.
    empty
        ``"drop"``: intervals without trades get no row (seed 000).
        ``"ffill"``: every interval between a symbol's first and last bar gets a
        row; empty ones carry the previous close as open/high/low/close/vwap
        and zero volumes and trade count.

    Returns
    -------
    Exactly :data:`hydraquant.data.schema.BAR_COLUMNS` (with ``symbol`` after
    ``ts`` when the input has one), sorted by (symbol, ts).  ``ts`` is the bar
    open; ``buy_volume`` is aggressive-buy volume and ``signed_volume`` is
    aggressive buys minus aggressive sells.
    """
    what = f"trades_to_bars({interval!r})"
    if empty not in ("drop", "ffill"):
        raise HydraError(f"{what}: empty={empty!r} is not supported", hint="use 'drop' or 'ffill'")
    step = interval_us(interval)
    if step < _MIN_BAR_US:
        raise HydraError(f"{what}: interval below 1ms", hint="use 250ms or longer")

    frame = _collect(trades, ["ts", "symbol", "price", "qty", "is_buyer_maker", "quote_qty"])
    _require(frame, _TRADE_REQUIRED, what=what)
    has_symbol = "symbol" in frame.columns
    _no_nulls(frame, _TRADE_REQUIRED + (("symbol",) if has_symbol else ()), what=what)
    frame = _to_utc_us(frame, what=what)

    quote = pl.col("price").cast(pl.Float64) * pl.col("qty").cast(pl.Float64)
    if "quote_qty" in frame.columns:
        quote = pl.coalesce(pl.col("quote_qty").cast(pl.Float64), quote)
    keep = ["ts", "symbol"] if has_symbol else ["ts"]
    frame = frame.select(
        *keep,
        pl.col("price").cast(pl.Float64),
        pl.col("qty").cast(pl.Float64),
        pl.col("is_buyer_maker").cast(pl.Boolean),
        quote.alias("_quote"),
    )
    frame = _sorted_by_symbol_ts(frame, has_symbol)

    bounds = _segment_bounds(frame)
    ts = frame.get_column("ts").cast(pl.Int64).to_numpy()
    fill = empty == "ffill"
    origin = bucket_origin_us(step)
    out = bars_nb.build_bars(
        ts,
        frame.get_column("price").to_numpy(),
        frame.get_column("qty").to_numpy(),
        frame.get_column("is_buyer_maker").to_numpy(),
        frame.get_column("_quote").to_numpy(),
        bounds,
        step,
        origin,
        fill,
    )
    bar_ts, seg_id, *values = out
    columns: dict[str, pl.Series] = {"ts": pl.Series("ts", bar_ts).cast(TS)}
    if has_symbol:
        first_rows = pl.Series(bounds[:-1][seg_id])
        columns["symbol"] = frame.get_column("symbol").gather(first_rows)
    for name, arr in zip(list(BAR_COLUMNS)[1:], values, strict=True):
        columns[name] = pl.Series(name, arr, dtype=BAR_COLUMNS[name])
    log.debug("%s: %d trades -> %d bars", what, frame.height, bar_ts.shape[0])
    return pl.DataFrame(columns)


# --------------------------------------------------------------------------- B3


def _infer_interval_us(frame: pl.DataFrame, has_symbol: bool) -> int | None:
    """Smallest positive gap between consecutive bars of one symbol, or None."""
    gaps = pl.col("ts").cast(pl.Int64).diff()
    if has_symbol:
        gaps = gaps.over("symbol")
    value = frame.select(gaps.filter(gaps > 0).min()).item()
    return None if value is None else int(value)


def _null_safe_sum(name: str) -> pl.Expr:
    """Sum that is null when any part is null: a partial total would look complete."""
    col = pl.col(name)
    return pl.when(col.null_count() == 0).then(col.sum()).otherwise(None).alias(name)


def _agg_expr(name: str, present: set[str]) -> pl.Expr:
    col = pl.col(name)
    if name in _FIRST:
        return col.first()
    if name in _MAX:
        return col.max()
    if name in _MIN:
        return col.min()
    if name in _LAST:
        return col.last()
    if name == "vwap":
        weighted = (pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum()
        fallback = pl.col("close").last() if "close" in present else col.last()
        any_null = (col.null_count() > 0) | (pl.col("volume").null_count() > 0)
        return (
            pl.when(any_null)
            .then(None)
            .when(pl.col("volume").sum() > 0)
            .then(weighted)
            .otherwise(fallback)
            .alias("vwap")
        )
    return _null_safe_sum(name)


def resample_bars(
    bars: pl.DataFrame | pl.LazyFrame,
    interval: str,
    *,
    source_interval: str | None = None,
    complete_only: bool = True,
) -> pl.DataFrame:
    """Aggregate lower-timeframe bars (trade bars or klines) to ``interval``.

    Every known column present is aggregated: open first, high max, low min,
    close last, vwap volume-weighted (the last close when the volume is 0),
    and sums for volume, quote_volume, buy_volume, signed_volume, trade_count,
    taker_buy_volume, taker_buy_quote_volume (null when any part is null, so
    a partial total never passes for a full one).  Unknown columns are dropped
    with a warning: they have no meaning at a higher timeframe that this
    function could guess.

    A higher bar opening at H is *complete* once the lower data reach its
    close: ``last lower ts + source_interval >= H + interval``.  With
    ``complete_only`` (default) the incomplete higher bar at the END of each
    symbol's data is dropped, because its values would still change.  Interior
    higher bars with missing lower bars (exchange downtime) are kept: later
    data prove they are over.  A higher bar at the START of the data that the
    lower data join part-way is kept too (its open is the first lower open):
    trim the input to whole higher bars if that matters.

    ``source_interval`` is the lower bars' interval; when omitted it is
    inferred as the smallest gap between consecutive bars, which is exact
    unless every lower bar is separated by gaps — pass it to be sure.

    Returns ``ts, [symbol,] <aggregated columns in input order>`` sorted by
    (symbol, ts), with the input dtypes.
    """
    what = f"resample_bars({interval!r})"
    step = interval_us(interval)
    frame = _collect(bars)
    _require(frame, ("ts",), what=what)
    frame = _to_utc_us(frame, what=what)
    has_symbol = "symbol" in frame.columns
    if "vwap" in frame.columns and "volume" not in frame.columns:
        raise DataError(
            f"{what}: 'vwap' needs 'volume' to be re-weighted",
            column="volume",
            hint="add the volume column or drop vwap",
        )
    value_cols = [c for c in frame.columns if c in _KNOWN]
    dropped = [c for c in frame.columns if c not in _KNOWN and c not in ("ts", "symbol")]
    if dropped:
        log.warning("%s: dropping columns with no known aggregation: %s", what, dropped)
    if not value_cols:
        raise DataError(
            f"{what}: no bar columns to aggregate in {frame.columns}",
            hint=f"expected some of {sorted(_KNOWN)}",
        )

    if source_interval is not None:
        src = interval_us(source_interval)
    else:
        inferred = _infer_interval_us(frame, has_symbol)
        if inferred is None:
            if frame.height and complete_only:
                raise HydraError(
                    f"{what}: cannot infer the source interval from one bar per symbol",
                    hint="pass source_interval='1m' (the lower bars' interval)",
                )
            inferred = step
        src = inferred
        log.debug("%s: inferred source interval %dus", what, src)
    if src > step or step % src:
        raise HydraError(
            f"{what}: {interval!r} is not a whole multiple of the source interval ({src}us)",
            hint="resample to a multiple of the lower bars' interval (1m -> 5m/15m/1h/4h/1d/1w)",
        )

    keys = ["symbol"] if has_symbol else []
    frame = _sorted_by_symbol_ts(frame.select("ts", *keys, *value_cols), has_symbol)
    out = (
        frame.with_columns(floor_ts(pl.col("ts"), interval).alias("_open"))
        .group_by([*keys, "_open"], maintain_order=True)
        .agg(
            *(_agg_expr(c, set(value_cols)) for c in value_cols), pl.col("ts").max().alias("_last")
        )
    )
    if complete_only and out.height:
        closes = pl.col("_open").cast(pl.Int64) + step
        complete = pl.col("_last").cast(pl.Int64) + src >= closes
        is_last = pl.int_range(pl.len()) == pl.len() - 1
        if has_symbol:
            is_last = is_last.over("symbol")
        out = out.filter(complete | ~is_last)
    schema = frame.schema
    return out.select(
        pl.col("_open").alias("ts"),
        *keys,
        *(pl.col(c).cast(schema[c]) for c in value_cols),
    )


def join_higher_timeframe(
    lower: pl.DataFrame,
    higher: pl.DataFrame,
    higher_interval: str,
    *,
    lower_interval: str,
    prefix: str,
) -> pl.DataFrame:
    """Attach higher-timeframe columns to lower rows, causally (SPEC B3).

    A higher bar opened at H closes at ``H + higher_interval``; a lower row
    opened at t is decided at its close ``t + lower_interval``.  The row sees
    the latest higher bar with ``H + higher_interval <= t + lower_interval``
    — an as-of join on close times, per symbol — so e.g. the 15m bar opened
    00:00 first appears on the 1m row opened 00:14 (closing 00:15), never
    earlier.  Rows before the first closed higher bar get nulls.

    Every higher column except ``ts``/``symbol`` is added as ``prefix + name``,
    plus ``prefix + "ts"``: the open time of the attached higher bar, so the
    alignment is auditable.  Lower rows keep their order; both frames need a
    ``symbol`` column, or neither.
    """
    what = f"join_higher_timeframe({higher_interval!r}, prefix={prefix!r})"
    low_step = interval_us(lower_interval)
    high_step = interval_us(higher_interval)
    _require(lower, ("ts",), what=f"{what} lower")
    _require(higher, ("ts",), what=f"{what} higher")
    has_symbol = "symbol" in lower.columns
    if has_symbol != ("symbol" in higher.columns):
        raise HydraError(
            f"{what}: only one of the frames has a 'symbol' column",
            hint="add the symbol to both frames (or drop it from both for one symbol)",
        )
    lower = _to_utc_us(lower, what=f"{what} lower")
    higher = _to_utc_us(higher, what=f"{what} higher")

    carried = [c for c in higher.columns if c not in ("ts", "symbol")]
    renamed = {c: prefix + c for c in ["ts", *carried]}
    clash = [n for n in renamed.values() if n in lower.columns]
    if clash:
        raise HydraError(
            f"{what}: output column(s) {clash} already exist in the lower frame",
            hint="choose another prefix, e.g. 'h4_' or 'd1_'",
        )

    by = ["symbol"] if has_symbol else []
    right = higher.select(
        *by,
        (pl.col("ts").cast(pl.Int64) + high_step).alias("_close"),
        *(pl.col(c).alias(renamed[c]) for c in ["ts", *carried]),
    ).sort([*by, "_close"])
    left = lower.with_row_index("_row").with_columns(
        (pl.col("ts").cast(pl.Int64) + low_step).alias("_close")
    )
    left_sorted = left.sort([*by, "_close"], maintain_order=True)
    joined = left_sorted.join_asof(
        right,
        on="_close",
        by=by or None,
        strategy="backward",
        check_sortedness=False,  # both sides are sorted by (by, _close) just above
    )
    return joined.sort("_row").drop("_row", "_close")
