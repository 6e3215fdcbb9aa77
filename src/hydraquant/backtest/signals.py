"""External signals: read a user's table of predictions and line it up with lake bars.

Why this module exists: users must be able to backtest signals made anywhere
(a notebook, another platform, a vendor) with exactly the policy, costs and
engine that our own models get.  The contract is deliberately small:

* ``ts``: the bar OPEN time of the bar at whose CLOSE the signal is known.  A
  signal stamped ``12:00`` on 1m bars is acted on by the engine at the next
  open, ``12:01``.  Accepted as ISO-8601 text (``Z``/offsets converted to UTC,
  naive = UTC), a datetime column, or integer epoch seconds/milliseconds/
  microseconds/nanoseconds (the unit is detected from the magnitude and logged).
* ``symbol``.
* either ``side`` (+1 long, -1 short, 0 flat; ``long``/``short``/``flat`` text
  too) or class probabilities: ``p_long``/``p_short`` [/``p_flat``], or
  ``p_<class>`` columns plus a ``signal_classes`` mapping such as
  ``{"long": 2, "short": 0, "flat": 1}`` (the predictor's manifest key).
* optional model outputs the policy can use: ``p_exit``, ``p_score``, ``adx``,
  ``regime``, ``risk_mult``, ``funding_rate``.

Every error names the file, the 1-based data row (header excluded) and the
column, so a bad line can be found and fixed in seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from hydraquant.backtest.config import BacktestConfig  # noqa: F401 - re-exported for callers
from hydraquant.backtest.engine import MarketData, market_from_frame
from hydraquant.errors import DataError, HydraError
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

ROW = "_row"  # 1-based data row of the source file, kept for error messages
TS_DTYPE = pl.Datetime("us", "UTC")
CLASS_KEYS = ("long", "short", "flat")
EXTRA_COLUMNS = ("adx", "regime", "p_exit", "p_score", "risk_mult", "funding_rate")
_UNIT_BOUNDS = (  # epoch magnitude ranges covering ~1973-2286 in each unit
    ("s", 1e8, 1e11, 1_000_000),
    ("ms", 1e11, 1e14, 1_000),
    ("us", 1e14, 1e17, 1),
    ("ns", 1e17, 1e20, None),
)
_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M%:z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d",
)
_SIDE_WORDS = {"long": 1.0, "buy": 1.0, "short": -1.0, "sell": -1.0, "flat": 0.0, "none": 0.0}


class SignalError(DataError):
    """A signals table is malformed or does not fit the bars."""


# --------------------------------------------------------------------------- reading


def read_signals(
    path: str | Path, *, signal_classes: Mapping[str, Any] | None = None
) -> pl.DataFrame:
    """Read and validate a CSV or Parquet signals file.

    Returns ``ts`` (UTC microseconds), ``symbol``, then either ``side`` or the
    probability columns as given, the optional extras, and ``_row`` (source row)
    -- sorted by (symbol, ts).  Nothing is mapped yet: that is
    :func:`signals_to_market`'s job, so the same checks serve model outputs.
    """
    path = Path(path)
    frame = _read_table(path)
    return validate_signals(frame, source=str(path), signal_classes=signal_classes)


def _read_table(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise SignalError(
            "signals file not found", file=str(path), hint="pass an existing .csv or .parquet file"
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(
                path, infer_schema_length=None, schema_overrides={"symbol": pl.String}
            )
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SignalError(
            f"cannot read signals: {exc}",
            file=str(path),
            hint="check that the file is a valid CSV (with a header) or Parquet table",
        ) from None
    raise SignalError(
        f"unsupported signals format '{suffix}'", file=str(path), hint="use a .csv or .parquet file"
    )


def validate_signals(
    frame: pl.DataFrame,
    *,
    source: str = "<signals>",
    signal_classes: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Check and normalise an in-memory signals table (see :func:`read_signals`)."""
    if ROW not in frame.columns:
        frame = frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    for col in ("ts", "symbol"):
        if col not in frame.columns:
            raise SignalError(
                f"missing required column '{col}'",
                file=source,
                column=col,
                hint="a signals table needs ts, symbol and side or p_long/p_short columns",
            )
    mode = _signal_mode(frame, source, signal_classes)
    frame = frame.with_columns(_parse_ts(frame, source), _parse_symbol(frame, source))
    if mode == "side":
        frame = frame.with_columns(_parse_side(frame, source))
        value_cols: list[str] = ["side"]
    else:
        value_cols = _probability_columns(frame, signal_classes, source=source)
        frame = frame.with_columns(
            _check_probability(frame, c, source, allow_missing=False) for c in value_cols
        )
    checked = [
        _check_probability(frame, c, source, allow_missing=True)
        for c in ("p_exit", "p_score")
        if c in frame.columns
    ]
    checked += [
        _check_probability(frame, c, source, allow_missing=True, unit_range=False)
        for c in ("adx", "regime", "risk_mult", "funding_rate")
        if c in frame.columns
    ]
    extras = [c for c in EXTRA_COLUMNS if c in frame.columns]
    frame = frame.with_columns(*checked)
    _check_duplicates(frame, source)
    return frame.select("ts", "symbol", *value_cols, *extras, ROW).sort(["symbol", "ts"])


def _signal_mode(frame: pl.DataFrame, source: str, classes: Mapping[str, Any] | None) -> str:
    has_side = "side" in frame.columns
    probs = _probability_columns(frame, classes, strict=False)
    if has_side and probs:
        raise SignalError(
            f"both 'side' and probability columns {probs} are present",
            file=source,
            column="side",
            hint="keep either side or the probabilities, not both",
        )
    if has_side:
        return "side"
    if probs:
        _probability_columns(
            frame, classes, source=source
        )  # strict: complain about what is missing
        return "proba"
    present = sorted(
        c for c in frame.columns if c.startswith("p_") and c not in ("p_exit", "p_score")
    )
    hint = "add a 'side' column (+1/-1/0) or p_long and p_short probabilities"
    if present and classes is None:
        hint = f"columns {present} look like class probabilities: give a signal_classes mapping (--classes long=...,short=...)"
    raise SignalError(
        "no signal column: need 'side' or p_long/p_short", file=source, column="side", hint=hint
    )


def _class_column(cls: Any) -> str:
    return f"p_{cls}"


def _probability_columns(
    frame: pl.DataFrame,
    classes: Mapping[str, Any] | None,
    *,
    strict: bool = True,
    source: str = "<signals>",
) -> list[str]:
    """Class probability columns this table uses (long, short, flat order; absent ones skipped)."""
    if classes is None:
        mapping = {k: f"p_{k}" for k in CLASS_KEYS}
    else:
        unknown = set(classes) - set(CLASS_KEYS)
        if unknown:
            raise HydraError(
                f"signal_classes has unknown keys {sorted(unknown)}",
                hint="use long, short and flat, e.g. long=1,short=-1,flat=0",
            )
        mapping = {k: _class_column(v) for k, v in classes.items()}
    present = [mapping[k] for k in CLASS_KEYS if k in mapping and mapping[k] in frame.columns]
    if not strict:
        return present
    wanted = [mapping[k] for k in ("long", "short") if k in mapping]
    if classes is None:
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise SignalError(
                f"missing probability column(s) {missing}",
                file=source,
                column=missing[0],
                hint="give p_long and p_short (p_flat optional), or a signal_classes mapping",
            )
    else:
        missing = [mapping[k] for k in mapping if mapping[k] not in frame.columns]
        if missing or not wanted:
            raise SignalError(
                f"signal_classes {dict(classes)} needs columns {sorted(set(mapping.values()))}; "
                f"missing {missing or 'a long or short class'}",
                file=source,
                column=missing[0] if missing else None,
                hint="check the class names: probability columns are named p_<class>",
            )
    return present


def _first_bad(frame: pl.DataFrame, bad: pl.Series) -> int:
    return int(frame.filter(bad)[ROW][0])


def _parse_ts(frame: pl.DataFrame, source: str) -> pl.Series:
    raw = frame["ts"]
    if raw.null_count():
        raise SignalError(
            "missing timestamp", file=source, row=_first_bad(frame, raw.is_null()), column="ts"
        )
    dtype = raw.dtype
    if isinstance(dtype, pl.Datetime):
        out = raw.dt.cast_time_unit("us")
        out = (
            out.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else out.dt.convert_time_zone("UTC")
        )
        log.info(
            "signals %s: ts is a datetime column%s",
            source,
            "" if dtype.time_zone else " (naive, read as UTC)",
        )
        return out.alias("ts")
    if dtype == pl.Date:
        return raw.cast(TS_DTYPE).alias("ts")
    if dtype.is_numeric():
        return _parse_epoch(frame, raw.cast(pl.Float64), source)
    if dtype == pl.String:
        text = raw.str.strip_chars()
        if text.str.contains(r"^-?\d+$").all():
            return _parse_epoch(frame, text.cast(pl.Float64), source)
        norm = text.str.replace("T", " ", literal=True).str.replace(r"[Zz]$", "+00:00")
        parsed = pl.select(
            pl.coalesce(
                [pl.lit(norm.str.strptime(TS_DTYPE, f, strict=False)) for f in _TIME_FORMATS]
            )
        ).to_series()
        if parsed.null_count():
            row = _first_bad(frame, parsed.is_null())
            value = raw.filter(parsed.is_null())[0]
            raise SignalError(
                f"cannot parse time {value!r}",
                file=source,
                row=row,
                column="ts",
                hint="use ISO-8601 (2024-01-31T12:00:00Z) or integer epoch milliseconds/microseconds",
            )
        log.info("signals %s: ts parsed as ISO-8601 text (naive times read as UTC)", source)
        return parsed.alias("ts")
    raise SignalError(
        f"unsupported ts type {dtype}",
        file=source,
        column="ts",
        hint="use ISO-8601 text, a datetime column or integer epoch ms/us",
    )


def detect_epoch_unit(values: np.ndarray) -> str:
    """Unit ("s", "ms", "us", "ns") of epoch numbers, from the largest magnitude."""
    top = float(np.nanmax(np.abs(values))) if values.size else 0.0
    for unit, lo, hi, _ in _UNIT_BOUNDS:
        if lo <= top < hi:
            return unit
    raise HydraError(
        f"epoch value {top:.0f} is not a plausible time in s, ms, us or ns",
        hint="use epoch milliseconds or microseconds since 1970-01-01 UTC",
    )


def _parse_epoch(frame: pl.DataFrame, values: pl.Series, source: str) -> pl.Series:
    arr = values.to_numpy()
    bad_num = ~np.isfinite(arr) | (arr != np.round(arr))
    if bad_num.any():
        row = int(frame[ROW][int(np.argmax(bad_num))])
        raise SignalError(
            f"epoch time {arr[bad_num][0]!r} is not an integer",
            file=source,
            row=row,
            column="ts",
            hint="epoch times must be whole milliseconds or microseconds",
        )
    try:
        unit = detect_epoch_unit(arr)
    except HydraError as exc:
        raise SignalError(exc.message, file=source, column="ts", hint=exc.hint) from None
    lo, hi, factor = next((lo, hi, f) for u, lo, hi, f in _UNIT_BOUNDS if u == unit)
    mixed = (np.abs(arr) < lo) | (np.abs(arr) >= hi)
    if mixed.any():
        row = int(frame[ROW][int(np.argmax(mixed))])
        raise SignalError(
            f"epoch time {int(arr[mixed][0])} does not match the detected unit ({unit})",
            file=source,
            row=row,
            column="ts",
            hint="use one epoch unit for the whole column",
        )
    ints = values.cast(pl.Int64)
    us = ints // 1000 if factor is None else ints * factor
    log.info(
        "signals %s: ts read as epoch %s",
        source,
        {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}[unit],
    )
    return us.cast(TS_DTYPE).alias("ts")


def _parse_symbol(frame: pl.DataFrame, source: str) -> pl.Series:
    sym = frame["symbol"].cast(pl.String).str.strip_chars().str.to_uppercase()
    bad = sym.is_null() | (sym == "")
    if bad.any():
        raise SignalError("empty symbol", file=source, row=_first_bad(frame, bad), column="symbol")
    return sym.alias("symbol")


def _parse_side(frame: pl.DataFrame, source: str) -> pl.Series:
    raw = frame["side"]
    if raw.dtype == pl.String:
        text = raw.str.strip_chars().str.to_lowercase()
        words = text.replace_strict(_SIDE_WORDS, default=None, return_dtype=pl.Float64)
        side = pl.coalesce(
            pl.lit(words), pl.lit(text.str.strip_prefix("+").cast(pl.Float64, strict=False))
        )
        side = pl.select(side).to_series()
    elif raw.dtype.is_numeric() or raw.dtype == pl.Boolean:
        side = raw.cast(pl.Float64)
    else:
        raise SignalError(
            f"unsupported side type {raw.dtype}",
            file=source,
            column="side",
            hint="use +1 (long), -1 (short) or 0 (flat)",
        )
    bad = side.is_null() | ~side.is_in([-1.0, 0.0, 1.0])
    if bad.fill_null(True).any():
        mask = bad.fill_null(True)
        value = raw.filter(mask)[0]
        raise SignalError(
            f"side {value!r} is not one of -1, 0, +1",
            file=source,
            row=_first_bad(frame, mask),
            column="side",
            hint="use +1 (long), -1 (short) or 0 (flat)",
        )
    return side.cast(pl.Int8).alias("side")


def _check_probability(
    frame: pl.DataFrame, col: str, source: str, *, allow_missing: bool, unit_range: bool = True
) -> pl.Series:
    """The column as Float64 after checking every value is a number (in [0, 1]; NaN only if allowed)."""
    values = frame[col]
    if values.dtype == pl.String:  # e.g. a CSV column with blanks or words
        v = values.str.strip_chars().cast(pl.Float64, strict=False)
        words = v.is_null() & values.is_not_null() & (values.str.strip_chars() != "")
        if words.any():
            raise SignalError(
                f"value {values.filter(words)[0]!r} is not a number",
                file=source,
                row=_first_bad(frame, words),
                column=col,
                hint="use numbers (probabilities in [0, 1])",
            )
    elif values.dtype.is_numeric() or values.dtype == pl.Null:
        v = values.cast(pl.Float64)
    else:
        raise SignalError(
            f"column has type {values.dtype}, expected numbers",
            file=source,
            column=col,
            hint="use numbers (probabilities in [0, 1])",
        )
    missing = (v.is_null() | v.is_nan()).fill_null(True)
    if not allow_missing and missing.any():
        raise SignalError(
            "missing or NaN probability",
            file=source,
            row=_first_bad(frame, missing),
            column=col,
            hint="every signal row needs all its class probabilities; drop rows without a prediction",
        )
    out = ((~missing) & ((v < 0.0) | (v > 1.0))).fill_null(False)
    if unit_range and out.any():
        raise SignalError(
            f"probability {v.filter(out)[0]!r} outside [0, 1]",
            file=source,
            row=_first_bad(frame, out),
            column=col,
            hint="probabilities must lie in [0, 1]",
        )
    return v.alias(col)


def _check_duplicates(frame: pl.DataFrame, source: str, *, what: str = "") -> None:
    dup = frame.select(pl.struct("ts", "symbol").is_duplicated()).to_series()
    if dup.any():
        rows = frame.filter(dup).sort(ROW)
        first = rows.row(0, named=True)
        twin = rows.filter((pl.col("ts") == first["ts"]) & (pl.col("symbol") == first["symbol"]))[
            ROW
        ].to_list()
        raise SignalError(
            f"duplicate signal for ({first['ts']}, {first['symbol']}){what}: rows {twin}",
            file=source,
            row=int(twin[-1]),
            column="ts",
            hint="keep one signal per (ts, symbol)",
        )


# --------------------------------------------------------------------------- market


def load_bars(
    lake: Any,
    symbols: list[str],
    interval: str,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    exchange: str | None = None,
    market: str | None = None,
    *,
    warmup_bars: int = 0,
) -> pl.DataFrame:
    """Lake bars (trade bars, else klines) from ``warmup_bars`` before ``start`` to ``end``.

    Why a warm-up: the ATR that sizes stops needs 14 bars of history; load
    them, build the market, then trim with :func:`trim_market`.
    A real funding series, when the lake has one, is attached as ``funding_rate``
    (latest settlement at or before each bar open; the engine reads it only
    on bars that carry a funding time).
    """
    from hydraquant.pipeline.inputs import load_inputs

    inputs = load_inputs(
        lake,
        list(symbols),
        interval,
        start=start,
        end=end,
        lookback=timedelta(microseconds=interval_us(interval) * warmup_bars),
        exchange=exchange,
        market=market,
    )
    bars = inputs.bars.sort(["symbol", "ts"])
    funding = inputs.side.get("funding")
    if (
        funding is not None
        and "funding_rate" in funding.columns
        and "funding_rate" not in bars.columns
    ):
        rates = funding.select("ts", "symbol", pl.col("funding_rate").cast(pl.Float64)).sort(
            ["symbol", "ts"]
        )
        bars = bars.join_asof(
            rates, on="ts", by="symbol", strategy="backward", check_sortedness=False
        )
    return bars


def signals_to_market(
    bars: pl.DataFrame,
    signals: pl.DataFrame,
    *,
    interval: str,
    signal_classes: Mapping[str, Any] | None = None,
    extra: pl.DataFrame | None = None,
    align: Literal["exact", "floor"] = "exact",
    source: str = "<signals>",
) -> MarketData:
    """Left-join signals onto bars and build the engine's :class:`MarketData`.

    Bars without a signal get NaN probabilities (no decision).  ``side`` maps to
    p_long/p_short/p_flat = 1/0/0, 0/1/0 or 0/0/1; probabilities map through
    ``signal_classes`` (a missing short class = 0, a missing flat class = NaN,
    i.e. 1 - long - short).  ``atr`` is the causal ATR-14 of the feature
    library, per symbol.  ``align="exact"`` refuses a signal between bar opens
    (naming its row); ``align="floor"`` moves it to the open of the bar that
    contains it -- it is then acted on at that bar's close + one bar, never
    earlier than its own time; when several land in one bar the latest wins.
    Signals outside the bars' time range are dropped (logged); a signal on
    the grid whose bar is missing (a gap) is dropped with a warning.
    """
    from hydraquant.features.registry import build_features

    if align not in ("exact", "floor"):
        raise HydraError(f"unknown align mode {align!r}", hint="use exact or floor")
    if (
        ROW not in signals.columns or signals["ts"].dtype != TS_DTYPE
    ):  # not from read_signals: check it now
        signals = validate_signals(signals, source=source, signal_classes=signal_classes)
    bars = bars.with_columns(pl.col("ts").cast(TS_DTYPE), pl.col("symbol").cast(pl.String)).sort(
        ["symbol", "ts"]
    )
    _check_symbols(bars, signals, source)
    signals = _align(bars, signals, interval, align, source)
    probs = _to_probabilities(signals, signal_classes)
    atr = build_features(bars, ["atr_14"], interval=interval).rename({"atr_14": "atr"})
    frame = bars.select(
        "ts",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        *(["funding_rate"] if "funding_rate" in bars.columns else []),
    )
    frame = frame.join(atr, on=["ts", "symbol"], how="left")
    frame = frame.join(probs, on=["ts", "symbol"], how="left")
    if extra is not None:
        frame = _join_extra(frame, extra)
    n_sig = int(frame["p_long"].is_not_null().sum())
    log.info("signals %s: %d of %d bars carry a signal", source, n_sig, frame.height)
    return market_from_frame(frame, interval=interval)


def _check_symbols(bars: pl.DataFrame, signals: pl.DataFrame, source: str) -> None:
    known = bars["symbol"].unique()
    unknown = signals.filter(~pl.col("symbol").is_in(known.implode()))
    if unknown.height:
        first = unknown.sort(ROW).row(0, named=True)
        raise SignalError(
            f"unknown symbol {first['symbol']!r} (no bars loaded for it)",
            file=source,
            row=int(first[ROW]),
            column="symbol",
            hint=f"bars were loaded for {sorted(known.to_list())}; add the symbol to --symbols "
            "or drop its rows",
        )


def _align(
    bars: pl.DataFrame, signals: pl.DataFrame, interval: str, align: str, source: str
) -> pl.DataFrame:
    step = interval_us(interval)
    phase = int(bars["ts"].dt.epoch("us").min()) % step  # bars open on k * step + phase
    ts_us = pl.col("ts").dt.epoch("us")
    off_grid = (ts_us - phase) % step != 0
    if align == "floor":
        signals = signals.sort(["symbol", "ts", ROW]).with_columns(
            (ts_us - (ts_us - phase) % step).cast(TS_DTYPE).alias("ts")
        )
        before = signals.height
        signals = signals.unique(["symbol", "ts"], keep="last", maintain_order=True)
        if signals.height < before:
            log.info(
                "signals %s: %d signals shared a bar after flooring; the latest was kept",
                source,
                before - signals.height,
            )
    else:
        bad = signals.filter(off_grid)
        if bad.height:
            first = bad.sort(ROW).row(0, named=True)
            raise SignalError(
                f"signal time {first['ts']} is not a {interval} bar open",
                file=source,
                row=int(first[ROW]),
                column="ts",
                hint="stamp signals with the open time of the bar at whose close they are known, "
                "or pass --align floor to move them to the open of the bar containing them",
            )
    span = bars.group_by("symbol").agg(
        pl.col("ts").min().alias("_t0"), pl.col("ts").max().alias("_t1")
    )
    joined = signals.join(span, on="symbol", how="left")
    inside = joined.filter((pl.col("ts") >= pl.col("_t0")) & (pl.col("ts") <= pl.col("_t1"))).drop(
        "_t0", "_t1"
    )
    if inside.height < signals.height:
        log.info(
            "signals %s: %d signals outside the loaded bars' time range were ignored",
            source,
            signals.height - inside.height,
        )
    on_bar = inside.join(bars.select("ts", "symbol"), on=["ts", "symbol"], how="semi")
    if on_bar.height < inside.height:
        gap = inside.join(bars.select("ts", "symbol"), on=["ts", "symbol"], how="anti").sort(ROW)
        log.warning(
            "signals %s: %d signals fall on missing bars (data gaps) and were dropped; first: row %d",
            source,
            gap.height,
            int(gap[ROW][0]),
        )
    return on_bar


def _to_probabilities(signals: pl.DataFrame, classes: Mapping[str, Any] | None) -> pl.DataFrame:
    extras = [c for c in EXTRA_COLUMNS if c in signals.columns]
    if "side" in signals.columns:
        side = pl.col("side")
        cols = [
            (side == 1).cast(pl.Float64).alias("p_long"),
            (side == -1).cast(pl.Float64).alias("p_short"),
            (side == 0).cast(pl.Float64).alias("p_flat"),
        ]
    else:
        mapping = (
            {k: f"p_{k}" for k in CLASS_KEYS}
            if classes is None
            else {k: _class_column(v) for k, v in classes.items()}
        )
        nan = pl.lit(float("nan"), dtype=pl.Float64)
        cols = [
            pl.col(mapping["long"]).cast(pl.Float64).alias("p_long")
            if "long" in mapping
            else pl.lit(0.0).alias("p_long"),
            pl.col(mapping["short"]).cast(pl.Float64).alias("p_short")
            if "short" in mapping
            else pl.lit(0.0).alias("p_short"),
            pl.col(mapping["flat"]).cast(pl.Float64).alias("p_flat")
            if "flat" in mapping and mapping["flat"] in signals.columns
            else nan.alias("p_flat"),
        ]
    return signals.select("ts", "symbol", *cols, *extras)


def _join_extra(frame: pl.DataFrame, extra: pl.DataFrame) -> pl.DataFrame:
    unknown = sorted(set(extra.columns) - {"ts", "symbol", *EXTRA_COLUMNS})
    if unknown:
        raise HydraError(
            f"extra inputs have unknown columns {unknown}",
            hint=f"allowed: ts, symbol, {', '.join(EXTRA_COLUMNS)}",
        )
    cols = [c for c in extra.columns if c not in ("ts", "symbol")]
    extra = extra.with_columns(
        pl.col("ts").cast(TS_DTYPE),
        pl.col("symbol").cast(pl.String),
        *(pl.col(c).cast(pl.Float64) for c in cols),
    )
    if extra.select(pl.struct("ts", "symbol").is_duplicated().any()).item():
        raise HydraError(
            "extra inputs have duplicate (ts, symbol) rows", hint="keep one row per bar"
        )
    frame = frame.drop([c for c in cols if c in frame.columns])
    return frame.join(extra, on=["ts", "symbol"], how="left")


def trim_market(market: MarketData, start: datetime | None) -> MarketData:
    """Drop warm-up bars before ``start`` (their ATR history has already been used)."""
    from hydraquant.backtest.engine import slice_market

    if start is None:
        return market
    t0 = int(pl.Series([start]).cast(TS_DTYPE).dt.epoch("us")[0])
    first = int(np.searchsorted(np.asarray(market.ts), t0, side="left"))
    return slice_market(market, first, len(market.ts)) if first else market


# --------------------------------------------------------------------------- config


