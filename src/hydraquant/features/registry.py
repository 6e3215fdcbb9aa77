"""The feature registry: every feature has a name, a group, inputs and a warm-up.

Why a registry: presets list features by name, models carry the ordered list,
and one generic causality test (tests/unit/test_feature_causality.py) runs over
*every* registered feature — a feature that peeks into the future cannot hide.

A feature function receives a :class:`FeatureContext` for ONE symbol (bars
sorted by ts, plus optional side inputs already aligned causally) and returns
one value per bar (``pl.Series``, ``np.ndarray`` or a ``pl.Expr`` evaluated
on the bar frame).  Panel features (scope="panel", cross-sectional ranks)
receive the long multi-symbol frame of already computed features instead.

Shared intermediates (returns, MOI sums, volume-profile levels, ATR...) are
memoised per build in the context (:meth:`FeatureContext.cached`): many
features derive from the same few inputs, and recomputing them per feature
was most of the build time.  The memo lives exactly as long as one symbol's
evaluation inside one :func:`build_features` call — never global — and its
arrays are read-only, so a feature cannot corrupt what its neighbours see.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

T = TypeVar("T")

# Inputs a feature may require. "ohlcv": open/high/low/close/volume;
# "orderflow": signed_volume and buy_volume (trade bars, or klines with
# taker_buy_volume: signed = 2*taker_buy - volume); "trade_count";
# side tables: "funding", "open_interest", "book", "liquidations".
INPUTS = ("ohlcv", "orderflow", "trade_count", "funding", "open_interest", "book", "liquidations")
SIDE_INPUTS = ("funding", "open_interest", "book", "liquidations")


class FeatureError(HydraError):
    """A feature could not be registered or built."""


@dataclass(frozen=True)
class FeatureContext:
    """Everything a per-symbol feature may look at — all of it known at bar close.

    ``bars``: one symbol's bars sorted by ts (ts = bar open), with at least
    ts/open/high/low/close/volume, and when available buy_volume,
    signed_volume, trade_count, vwap, quote_volume.
    ``interval``: the bar interval string, e.g. "250ms" or "1m".
    ``side``: side inputs (funding, open_interest, book, liquidations) as frames
    with a ``ts`` column, each ALREADY as-of joined so row i only holds values
    whose event time is <= the close of bar i (see :func:`align_side_input`).
    ``memo``: intermediates shared by several features of this build (see
    :meth:`cached`); contexts made by :meth:`with_params` share it.
    """

    bars: pl.DataFrame
    interval: str
    symbol: str = ""
    side: Mapping[str, pl.DataFrame] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    memo: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def with_params(self, params: Mapping[str, Any]) -> FeatureContext:
        """The same bars (and the same memo) seen by a feature with ``params``."""
        return dataclasses.replace(self, params=params)

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per context; later calls with ``key`` return the same value.

        ``key`` must name everything the value depends on besides the bars
        (e.g. ``("moi", n_bars)``), never ``self.params`` implicitly.  numpy
        arrays in the value are made read-only: a feature that wants to edit
        one must copy it, so memoisation can never change another feature.
        """
        try:
            return self.memo[key]
        except KeyError:
            pass
        value = compute()
        _freeze(value)
        self.memo[key] = value
        return value

    @property
    def interval_us(self) -> int:
        return interval_us(self.interval)

    def n_bars(self, duration: str) -> int:
        """Number of bars covering ``duration`` (at least 1)."""
        return max(1, round(interval_us(duration) / self.interval_us))

    def col(self, name: str) -> np.ndarray:
        return self.bars.get_column(name).to_numpy()

    def fcol(self, name: str) -> np.ndarray:
        """Column ``name`` as float64 (memoised: integer columns are converted once)."""
        return self.cached(("col", name), lambda: np.asarray(self.col(name), dtype=np.float64))


def _freeze(value: Any) -> None:
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, tuple | list):
        for item in value:
            _freeze(item)
    elif isinstance(value, dict):
        for item in value.values():
            _freeze(item)


FeatureFunc = Callable[[FeatureContext], "pl.Series | np.ndarray | pl.Expr"]
PanelFunc = Callable[[pl.DataFrame], "pl.Series | np.ndarray | pl.Expr"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    group: str
    inputs: tuple[str, ...]
    warmup: int  # rows (bars) before the value is meaningful; NaN there, never back-filled
    func: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    scope: Literal["symbol", "panel"] = "symbol"
    depends_on: tuple[str, ...] = ()  # panel features: per-symbol features they rank
    # time-window features: warm-up as a duration ("5m"), converted per bar interval
    warmup_time: str = ""

    def warmup_bars(self, interval: str) -> int:
        """Warm-up rows on bars of ``interval``: ``warmup`` plus ``warmup_time`` in bars."""
        if not self.warmup_time:
            return self.warmup
        return self.warmup + -(-interval_us(self.warmup_time) // interval_us(interval))


_REGISTRY: dict[str, FeatureSpec] = {}
_SETS: dict[str, tuple[str, ...]] = {}


def feature(
    name: str,
    *,
    group: str,
    inputs: Iterable[str] = ("ohlcv",),
    warmup: int = 0,
    params: Mapping[str, Any] | None = None,
    description: str = "",
    scope: Literal["symbol", "panel"] = "symbol",
    depends_on: Iterable[str] = (),
    warmup_time: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a feature function under ``name``.

    Parametrised families register several names from one function by
    calling ``feature(...)(func)`` in a loop with different ``params``; the
    function then reads ``ctx.params``.
    """
    inputs = tuple(inputs)
    unknown = [i for i in inputs if i not in INPUTS]
    if unknown:
        raise FeatureError(f"feature {name!r}: unknown inputs {unknown}", hint=f"use {INPUTS}")
    if warmup_time:
        interval_us(warmup_time)  # fail at registration, not at build time

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise FeatureError(f"feature {name!r} is registered twice")
        _REGISTRY[name] = FeatureSpec(
            name=name,
            group=group,
            inputs=inputs,
            warmup=int(warmup),
            func=func,
            params=dict(params or {}),
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            scope=scope,
            depends_on=tuple(depends_on),
            warmup_time=warmup_time,
        )
        return func

    return register


def register_set(name: str, features: Iterable[str]) -> None:
    """Name an ordered feature list (e.g. ``hydra_v3`` = seed 000's 28 features)."""
    _SETS[name] = tuple(features)


def registry() -> dict[str, FeatureSpec]:
    _load_builtin_modules()
    return dict(_REGISTRY)


def feature_sets() -> dict[str, tuple[str, ...]]:
    _load_builtin_modules()
    return dict(_SETS)


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in registry().values():
        out.setdefault(spec.group, []).append(spec.name)
    return out


_BUILTIN_MODULES = (
    "orderflow",
    "absorption",
    "volatility",
    "structure",
    "technical",
    "multi_timeframe",
    "calendar",
    "derivatives",
    "cross_section",
    "sets",
)


def _load_builtin_modules() -> None:
    import importlib

    for mod in _BUILTIN_MODULES:
        try:
            importlib.import_module(f"hydraquant.features.{mod}")
        except ModuleNotFoundError as exc:  # a group not written yet
            if exc.name != f"hydraquant.features.{mod}":
                raise


def available_inputs(bars: pl.DataFrame, side: Mapping[str, pl.DataFrame]) -> set[str]:
    have = set()
    cols = set(bars.columns)
    if {"open", "high", "low", "close", "volume"} <= cols:
        have.add("ohlcv")
    if {"signed_volume", "buy_volume"} <= cols:
        have.add("orderflow")
    if "trade_count" in cols:
        have.add("trade_count")
    have.update(k for k, v in side.items() if v is not None and v.height > 0)
    return have


def resolve(names_or_groups: str | Iterable[str], *, have: set[str] | None = None) -> list[str]:
    """Expand set names, group names and feature names into an ordered feature list.

    ``"all"`` means every registered feature whose inputs are available
    (``have``); an explicitly requested feature whose inputs are missing is an
    error that names the missing input.
    """
    reg, sets, grp = registry(), feature_sets(), groups()
    items = [names_or_groups] if isinstance(names_or_groups, str) else list(names_or_groups)
    out: list[str] = []
    for item in items:
        if item == "all":  # every feature once: seed-name aliases duplicate other columns
            chosen = [
                n
                for n, s in reg.items()
                if s.group != "aliases" and (have is None or set(s.inputs) <= have)
            ]
        elif item in sets:
            chosen = list(sets[item])
        elif item in grp:
            chosen = grp[item]
        elif item in reg:
            chosen = [item]
        else:
            raise FeatureError(
                f"unknown feature, group or set {item!r}",
                hint="run `hydraquant features --list` to see every registered name",
            )
        for name in chosen:
            if name not in out:
                out.append(name)
    if have is not None:
        for name in out:
            missing = set(reg[name].inputs) - have
            if missing:
                raise FeatureError(
                    f"feature {name!r} needs input(s) {sorted(missing)} which are not available",
                    hint="ingest them into the lake (funding/open_interest via `hydraquant fetch` "
                    "or `hydraquant import`) or drop the feature from the set",
                )
    return out


def align_side_input(bars: pl.DataFrame, side: pl.DataFrame, interval: str) -> pl.DataFrame:
    """As-of join a side table onto bar CLOSE times (causal).

    Row i receives the latest side row with ``side.ts <= bars.ts[i] + interval``
    — an event is usable once it happened before the bar closed.  Returns a
    frame with one row per bar (same order) and the side table's columns.
    """
    step = pl.duration(microseconds=interval_us(interval))
    left = bars.select(pl.col("ts"), (pl.col("ts") + step).alias("_close"))
    right = side.sort("ts").rename({"ts": "_event_ts"})
    joined = left.join_asof(right, left_on="_close", right_on="_event_ts", strategy="backward")
    return joined.drop("_close")


def _raw(spec: FeatureSpec, ctx: FeatureContext) -> pl.Series:
    """One feature's values named ``spec.name``, length-checked but not yet normalised."""
    value = spec.func(ctx.with_params(spec.params))
    if isinstance(value, pl.Expr):
        # alone in its select: a scalar (full-sample) expression cannot be broadcast silently
        series = ctx.bars.select(value.alias(spec.name)).to_series()
    elif isinstance(value, pl.Series):
        series = value.alias(spec.name)
    else:
        series = pl.Series(spec.name, np.asarray(value))
    if series.len() != ctx.bars.height:
        raise FeatureError(
            f"feature {spec.name!r} returned {series.len()} values for {ctx.bars.height} bars",
            hint="a feature returns one value per bar of its symbol (no aggregates, no filtering)",
        )
    return series


def _normalise(values: pl.DataFrame) -> pl.DataFrame:
    """Numeric columns as Float64 with every missing value NaN (never null), in one select.

    Float64 columns without nulls (most numpy results) are already in that
    form and are left untouched instead of being rewritten column by column.
    """
    todo = [
        c.name
        for c in values.iter_columns()
        if c.dtype.is_numeric() and (c.dtype != pl.Float64 or c.null_count() > 0)
    ]
    if not todo:
        return values
    return values.with_columns(pl.col(todo).cast(pl.Float64).fill_nan(None).fill_null(float("nan")))


def _evaluate(spec: FeatureSpec, ctx: FeatureContext) -> pl.Series:
    """One feature on one symbol's context, normalised (NaN for missing, Float64)."""
    return _normalise(_raw(spec, ctx).to_frame()).to_series()


def evaluate_symbol(specs: Iterable[FeatureSpec], ctx: FeatureContext) -> pl.DataFrame:
    """Several per-symbol features on one context; shared inputs are computed once (memo)."""
    return _normalise(pl.DataFrame([_raw(spec, ctx) for spec in specs]))


def _by_symbol(frame: pl.DataFrame) -> Iterable[tuple[Any, pl.DataFrame]]:
    """(symbol, its bars) of a frame sorted by (symbol, ts); one symbol is not regrouped."""
    if frame.height == 0:
        return []
    symbols = frame.get_column("symbol")
    if symbols.eq_missing(symbols[0]).all():
        return [(symbols[0], frame)]
    return [(key[0], bars) for key, bars in frame.group_by(["symbol"], maintain_order=True)]


def _sort_by_symbol_ts(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort by (symbol, ts) unless a single-symbol frame is already in ts order."""
    symbols = frame.get_column("symbol")
    if frame.height and symbols.eq_missing(symbols[0]).all():
        return frame if frame.get_column("ts").is_sorted() else frame.sort("ts")
    return frame.sort(["symbol", "ts"])


def build_features(
    frame: pl.DataFrame,
    names_or_groups: str | Iterable[str],
    *,
    interval: str,
    side: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Compute features for a long bar frame (``ts, symbol, ...`` or one symbol).

    ``side`` maps input name -> long frame (``ts, symbol, ...``) of side data
    (funding, open_interest, book, liquidations); each is aligned causally per
    symbol with :func:`align_side_input`.  Returns ``ts, symbol`` and the
    features in the resolved order; the order is the contract a model keeps.
    Each symbol's features share one memo (:meth:`FeatureContext.cached`), so
    an input used by several features is computed once per build.
    """
    from hydraquant.features.inputs import prepare_bars  # klines: order flow from taker-buy volume

    side = dict(side or {})
    frame = prepare_bars(frame)
    liq = side.get("liquidations")
    if liq is not None and "cum_long_notional" not in liq.columns and "side" in liq.columns:
        from hydraquant.features.derivatives import prepare_liquidations

        side["liquidations"] = prepare_liquidations(liq)
    has_symbol = "symbol" in frame.columns
    if not has_symbol:
        frame = frame.with_columns(pl.lit("").alias("symbol"))
    frame = _sort_by_symbol_ts(frame)
    names = resolve(names_or_groups, have=available_inputs(frame, side))
    reg = registry()
    per_symbol = [n for n in names if reg[n].scope == "symbol"]
    panel = [n for n in names if reg[n].scope == "panel"]
    for name in panel:  # panel features need their per-symbol inputs computed first
        for dep in reg[name].depends_on:
            if dep not in per_symbol:
                per_symbol.append(dep)
    specs = [reg[n] for n in per_symbol]

    parts = []
    for symbol, bars in _by_symbol(frame):
        aligned = {}
        for key, table in side.items():
            if table is None:
                continue
            sub = (
                table.filter(pl.col("symbol") == symbol).drop("symbol")
                if "symbol" in table.columns
                else table
            )
            aligned[key] = align_side_input(bars, sub, interval)
        ctx = FeatureContext(bars, interval, str(symbol), aligned)
        values = evaluate_symbol(specs, ctx)
        parts.append(pl.concat([bars.select("ts", "symbol"), values], how="horizontal"))
    if parts:
        out = pl.concat(parts, how="vertical")
    else:  # no bars: the same columns, no rows
        out = frame.select("ts", "symbol").clear()
        out = out.with_columns(pl.lit(None, pl.Float64).alias(n) for n in per_symbol)
    for name in panel:
        value = reg[name].func(out)
        series = (
            out.select(value.alias(name)).to_series()
            if isinstance(value, pl.Expr)
            else pl.Series(name, np.asarray(value))
        )
        out = out.with_columns(series.cast(pl.Float64).alias(name))
    out = out.select(["ts", "symbol", *names])
    if not has_symbol:
        out = out.drop("symbol")
    return out
