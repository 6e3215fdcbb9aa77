"""The leakage guard (SPEC V4): is a feature's value at row t blind to rows after t?

Two experiments per cut point t, on the caller's (real) data:

* prefix: compute on the bars up to t only (side tables cut at bar t's
  close) and demand the same values as on the full data, NaN-equal, at every
  row <= t;
* perturbation: multiply every row after t (prices, volumes, trade counts
  and side values after t's close) by random factors and demand that rows
  <= t do not move.

The prefix test catches full-sample normalisation and centred windows, the
perturbation test catches ``shift(-k)`` style peeking even where a prefix
would only produce NaN.  The pipeline calls :func:`check_features` to refuse
a leaky feature before training; the unit test runs it over every registered
feature.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import numpy as np
import polars as pl

from hydraquant.features.inputs import prepare_bars
from hydraquant.features.registry import (
    FeatureContext,
    FeatureError,
    FeatureSpec,
    _evaluate,
    align_side_input,
    registry,
)
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

RTOL = 1e-9
PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")
VOLUME_COLUMNS = (
    "volume",
    "buy_volume",
    "signed_volume",
    "quote_volume",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
_KEYS = ("ts", "symbol")


def compute_feature(
    spec: FeatureSpec,
    frame: pl.DataFrame,
    interval: str,
    side: Mapping[str, pl.DataFrame] | None = None,
) -> np.ndarray:
    """One feature over a bar frame (one symbol, or long with ``symbol``), sorted by (symbol, ts).

    Mirrors the builder: klines get order-flow columns via ``prepare_bars``,
    side tables are as-of aligned to each bar's close per symbol.
    """
    side = {k: v for k, v in (side or {}).items() if v is not None}
    frame = _sorted(prepare_bars(frame))
    reg = registry() if spec.scope == "panel" else {}
    per_symbol = [spec] if spec.scope == "symbol" else [reg[d] for d in spec.depends_on]
    parts = []
    for (symbol,), bars in frame.group_by(["symbol"], maintain_order=True):
        aligned = {}
        for key, table in side.items():
            sub = (
                table.filter(pl.col("symbol") == symbol).drop("symbol")
                if "symbol" in table.columns
                else table
            )
            aligned[key] = align_side_input(bars, sub, interval)
        ctx = FeatureContext(bars.drop("symbol"), interval, str(symbol), aligned)
        cols = [_evaluate(s, ctx) for s in per_symbol]
        parts.append(pl.DataFrame([bars.get_column("ts"), bars.get_column("symbol"), *cols]))
    out = pl.concat(parts, how="vertical")
    if spec.scope == "symbol":
        return out.get_column(spec.name).to_numpy().astype(np.float64)
    value = spec.func(out)
    series = (
        out.select(value.alias(spec.name)).to_series()
        if isinstance(value, pl.Expr)
        else pl.Series(np.asarray(value))
    )
    return series.cast(pl.Float64).fill_null(float("nan")).to_numpy()


def check_causality(
    spec: FeatureSpec,
    frame: pl.DataFrame,
    interval: str,
    side: Mapping[str, pl.DataFrame] | None = None,
    cuts: Sequence[int] = (),
    *,
    seed: int = 0,
    rtol: float = RTOL,
) -> list[str]:
    """Problems found for ``spec`` on ``frame`` (empty list = causal at these cuts).

    ``cuts`` are counts of distinct timestamps kept in the prefix (for one
    symbol: row counts); default: three points spread over the second half.
    Each problem names the feature, the experiment, the first differing row
    and both values.
    """
    frame = _sorted(frame)
    side = {k: v for k, v in (side or {}).items() if v is not None}
    stamps = frame.get_column("ts").unique().sort()
    if not cuts:
        cuts = [int(stamps.len() * q) for q in (0.55, 0.75, 0.9)]
    rng = np.random.default_rng(seed)
    full = compute_feature(spec, frame, interval, side)
    problems: list[str] = []
    for cut in cuts:
        if not 1 <= cut < stamps.len():
            raise FeatureError(
                f"causality cut {cut} outside 1..{stamps.len() - 1}",
                hint="pick cuts inside the data",
            )
        last_ts = stamps[cut - 1]
        close = last_ts + timedelta(
            microseconds=interval_us(interval)
        )  # side events usable by then
        keep = (frame.get_column("ts") <= last_ts).to_numpy()

        prefix = frame.filter(pl.col("ts") <= last_ts)
        prefix_side = {k: v.filter(pl.col("ts") <= close) for k, v in side.items()}
        got = compute_feature(spec, prefix, interval, prefix_side)
        problems += _compare(spec.name, f"prefix of {cut} timestamps", full[keep], got, rtol)

        perturbed = _perturb_after(frame, last_ts, rng)
        perturbed_side = {k: _perturb_after(v, close, rng) for k, v in side.items()}
        moved = compute_feature(spec, perturbed, interval, perturbed_side)
        problems += _compare(
            spec.name, f"perturbing rows after timestamp #{cut}", full[keep], moved[keep], rtol
        )
    return problems


def check_features(
    names: Iterable[str],
    frame: pl.DataFrame,
    interval: str,
    side: Mapping[str, pl.DataFrame] | None = None,
    cuts: Sequence[int] = (),
) -> dict[str, list[str]]:
    """Run :func:`check_causality` for registered features; only the leaky ones are returned."""
    reg = registry()
    out = {}
    for name in names:
        problems = check_causality(reg[name], frame, interval, side, cuts)
        if problems:
            log.warning("feature %s failed the causality check: %s", name, problems[0])
            out[name] = problems
    return out


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    if "symbol" not in frame.columns:
        frame = frame.with_columns(pl.lit("").alias("symbol"))
    return frame.sort(["symbol", "ts"])


def _compare(name: str, what: str, expected: np.ndarray, got: np.ndarray, rtol: float) -> list[str]:
    if expected.shape != got.shape:
        return [f"{name}: {what}: {got.shape[0]} values for {expected.shape[0]} rows"]
    same_nan = np.isnan(expected) == np.isnan(got)
    both = ~np.isnan(expected) & ~np.isnan(got)
    with np.errstate(invalid="ignore"):
        tol = rtol * np.maximum(np.abs(expected), np.abs(got))
        close = np.where(both, (expected == got) | (np.abs(expected - got) <= tol), True)
    bad = np.flatnonzero(~(same_nan & close))
    if bad.size == 0:
        return []
    i = int(bad[0])
    return [
        (
            f"{name}: {what}: {bad.size} row(s) differ, first at row {i} "
            f"(full data {expected[i]!r}, {'prefix' if 'prefix' in what else 'perturbed'} "
            f"{got[i]!r}) — the value depends on later bars"
        )
    ]


def _perturb_after(frame: pl.DataFrame, after: object, rng: np.random.Generator) -> pl.DataFrame:
    """Multiply every numeric value in rows with ts > ``after`` by a random factor in [0.5, 1.5].

    Prices of a row share one factor and volumes another, so bars stay
    internally consistent (buy volume <= volume); counts are rounded.
    """
    later = (frame.get_column("ts") > after).to_numpy()
    n = frame.height
    factors = {
        "price": np.where(later, rng.uniform(0.5, 1.5, n), 1.0),
        "volume": np.where(later, rng.uniform(0.5, 1.5, n), 1.0),
    }
    exprs = []
    for name, dtype in frame.schema.items():
        if name in _KEYS or not dtype.is_numeric():
            continue
        if name in PRICE_COLUMNS:
            f = factors["price"]
        elif name in VOLUME_COLUMNS:
            f = factors["volume"]
        else:
            f = np.where(later, rng.uniform(0.5, 1.5, n), 1.0)
        scaled = pl.col(name).cast(pl.Float64) * pl.Series(f)
        if dtype.is_integer():
            scaled = scaled.round(0)
        exprs.append(scaled.cast(dtype).alias(name))
    return frame.with_columns(exprs)
