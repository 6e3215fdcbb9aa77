"""F8 derivatives & book features: funding, open interest, positioning ratios, liquidations, book.

Why: funding and open interest are the perpetual-futures sentiment signals the
seeds rely on (001 HYDRA scorer/regime inputs, 004 §17.1).  Side tables reach
a feature already as-of aligned to each bar's CLOSE by the registry
(``_event_ts`` = time of the row used), so every value here is causal.

Event-level statistics.  Funding settles every 8 h and open interest is
published every 5-15 min, far slower than the bars.  A z-score or momentum
over BAR rows would mostly see repeated values, so ``funding_z``,
``funding_momentum``, ``oi_delta_pct`` and ``oi_z`` are computed on the
sequence of distinct events (a new ``_event_ts``) seen up to the bar close,
then held until the next event.  When several events fall inside one bar only
the last is seen (bars longer than the source cadence).

Liquidations are events that must be SUMMED over a window, which an as-of join
cannot do; pass the raw table through :func:`prepare_liquidations` first: it
adds running totals, and differences of as-of running totals are exact window
sums.  Window features (``oi_change_4h``, ``oi_price_divergence``,
liquidations) count bars with ``ctx.n_bars`` and are NaN until the window is
full.

Book features use the last bookTicker update before the bar close (top of
book only: ``*_depth_usd`` is best-level notional, not cumulative depth).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from hydraquant.errors import DataError
from hydraquant.features.registry import FeatureContext, FeatureError, feature

GROUP = "derivatives"
ALIAS_GROUP = "aliases"
HOURS_PER_YEAR = 365.0 * 24.0
FUNDING_CLIP = 0.003  # seed 004: ~99th percentile of |funding|, then scaled to [-1, 1]


# --- helpers -------------------------------------------------------------------


def _side(ctx: FeatureContext, name: str, column: str) -> np.ndarray:
    table = ctx.side.get(name)
    if table is None:
        raise FeatureError(
            f"side input {name!r} was not provided to the feature builder",
            hint=f"pass side={{'{name}': frame}} to build_features",
        )
    if column not in table.columns:
        raise FeatureError(
            f"side input {name!r} has no column {column!r} (columns: {table.columns})",
            hint="conform the table with hydraquant.data.schema.conform before building features",
        )
    return table.get_column(column).cast(pl.Float64).fill_null(float("nan")).to_numpy()


def on_events(
    ctx: FeatureContext, name: str, column: str, fn: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``fn`` to the series of distinct side events seen so far and hold the result per bar."""
    table = ctx.side[name]
    values = _side(ctx, name, column)
    event_ts = table.get_column("_event_ts")
    present = event_ts.is_not_null().to_numpy()
    new = (event_ts != event_ts.shift(1)).fill_null(True).to_numpy() & present
    event_out = np.asarray(fn(values[new]), dtype=np.float64)
    idx = np.cumsum(new) - 1
    out = np.full(values.shape[0], np.nan)
    out[present] = event_out[idx[present]]
    return out


def _rolling_z(x: np.ndarray, n: int) -> np.ndarray:
    """Trailing z-score (ddof 1); a perfectly constant window scores 0, not NaN."""
    s = pl.Series(x, dtype=pl.Float64).fill_nan(None)
    mean = s.rolling_mean(n, min_samples=n).fill_null(float("nan")).to_numpy()
    std = s.rolling_std(n, min_samples=n).fill_null(float("nan")).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        flat = (
            std <= 1e-9 * np.abs(mean) + 1e-15
        )  # rolling sums leave ~1e-17 noise on constant input
        return np.where(flat, 0.0, (x - mean) / std)


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def _pct_change(x: np.ndarray, k: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / _lag(x, k) - 1.0


def _alias(name: str, target: str, func: Callable, **kwargs) -> None:
    feature(name, group=ALIAS_GROUP, description=f"alias of {target} (seed name)", **kwargs)(func)


# --- funding ---------------------------------------------------------------------


@feature("funding_rate", group=GROUP, inputs=("funding",))
def funding_rate(ctx: FeatureContext) -> np.ndarray:
    """Latest settled funding rate (per interval, not annualised)."""
    return _side(ctx, "funding", "funding_rate")


def _funding_z(ctx: FeatureContext) -> np.ndarray:
    """z-score of the funding rate over the last 100 settlements (seed 001)."""
    n = int(ctx.params["n"])
    return on_events(ctx, "funding", "funding_rate", lambda x: _rolling_z(x, n))


feature("funding_z", group=GROUP, inputs=("funding",), params={"n": 100})(_funding_z)
_alias("funding_zscore", "funding_z", _funding_z, inputs=("funding",), params={"n": 100})
_alias("funding_rate_zscore", "funding_z", _funding_z, inputs=("funding",), params={"n": 100})


def _funding_annualised(ctx: FeatureContext) -> np.ndarray:
    """Funding rate x settlements per year (from funding_interval_hours, default 8 h)."""
    rate = _side(ctx, "funding", "funding_rate")
    table = ctx.side["funding"]
    hours = np.full(rate.shape[0], 8.0)
    if "funding_interval_hours" in table.columns:
        given = _side(ctx, "funding", "funding_interval_hours")
        hours = np.where(np.isfinite(given) & (given > 0), given, hours)
    return rate * HOURS_PER_YEAR / hours


feature("funding_annualised", group=GROUP, inputs=("funding",))(_funding_annualised)
_alias("funding_annualized", "funding_annualised", _funding_annualised, inputs=("funding",))


@feature("funding_momentum", group=GROUP, inputs=("funding",), params={"k": 3})
def funding_momentum(ctx: FeatureContext) -> np.ndarray:
    """Change of the funding rate over the last 3 settlements (seed 001)."""
    k = int(ctx.params["k"])
    return on_events(ctx, "funding", "funding_rate", lambda x: x - _lag(x, k))


def _funding_clipped_norm(ctx: FeatureContext) -> np.ndarray:
    """Funding clipped to +-0.3 % then scaled to [-1, 1] (seed 004 funding_rate_norm)."""
    clip = float(ctx.params["clip"])
    return np.clip(_side(ctx, "funding", "funding_rate"), -clip, clip) / clip


feature("funding_clipped_norm", group=GROUP, inputs=("funding",), params={"clip": FUNDING_CLIP})(
    _funding_clipped_norm
)
_alias(
    "funding_rate_norm",
    "funding_clipped_norm",
    _funding_clipped_norm,
    inputs=("funding",),
    params={"clip": FUNDING_CLIP},
)


# --- open interest -----------------------------------------------------------------


@feature("oi_delta_pct", group=GROUP, inputs=("open_interest",))
def oi_delta_pct(ctx: FeatureContext) -> np.ndarray:
    """Relative change of open interest between the last two observations."""
    return on_events(ctx, "open_interest", "open_interest", lambda x: _pct_change(x, 1))


def _oi_z(ctx: FeatureContext) -> np.ndarray:
    """z-score of oi_delta_pct over the last 100 OI observations (seed 001 oi_zscore)."""
    n = int(ctx.params["n"])
    return on_events(
        ctx, "open_interest", "open_interest", lambda x: _rolling_z(_pct_change(x, 1), n)
    )


feature("oi_z", group=GROUP, inputs=("open_interest",), params={"n": 100})(_oi_z)
_alias("oi_zscore", "oi_z", _oi_z, inputs=("open_interest",), params={"n": 100})
_alias("oi_delta_zscore", "oi_z", _oi_z, inputs=("open_interest",), params={"n": 100})


def _oi_change(ctx: FeatureContext) -> np.ndarray:
    """OI change over the last 4 h of bars, clipped to [-1, 1] (seed 004 oi_change)."""
    oi = _side(ctx, "open_interest", "open_interest")
    return np.clip(_pct_change(oi, ctx.n_bars(ctx.params["window"])), -1.0, 1.0)


feature("oi_change_4h", group=GROUP, inputs=("open_interest",), params={"window": "4h"})(_oi_change)
_alias("oi_change", "oi_change_4h", _oi_change, inputs=("open_interest",), params={"window": "4h"})


@feature(
    "oi_price_divergence", group=GROUP, inputs=("ohlcv", "open_interest"), params={"window": "1h"}
)
def oi_price_divergence(ctx: FeatureContext) -> np.ndarray:
    """-sign(dOI) x sign(dPrice) over 1 h: +1 when OI and price move apart, -1 when together, 0 if flat."""
    k = ctx.n_bars(ctx.params["window"])
    oi = _side(ctx, "open_interest", "open_interest")
    close = ctx.col("close").astype(np.float64)
    return -np.sign(oi - _lag(oi, k)) * np.sign(close - _lag(close, k))


def _ratio(ctx: FeatureContext) -> np.ndarray:
    """A positioning ratio from the open-interest/metrics table, as last published."""
    return _side(ctx, "open_interest", ctx.params["column"])


for _name, _col in (
    ("long_short_ratio", "long_short_ratio"),
    ("toptrader_long_short_ratio", "toptrader_long_short_ratio"),
    ("toptrader_position_long_short_ratio", "toptrader_position_long_short_ratio"),
    # 'taker_buy_sell_ratio' is the order-flow group's bar-level ratio; this one is Binance metrics'.
    ("oi_taker_buy_sell_ratio", "taker_buy_sell_ratio"),
):
    feature(_name, group=GROUP, inputs=("open_interest",), params={"column": _col})(_ratio)


# --- liquidations ---------------------------------------------------------------

LIQ_CUM_COLUMNS = ("cum_long_notional", "cum_short_notional")


def prepare_liquidations(raw: pl.DataFrame) -> pl.DataFrame:
    """Running long/short liquidation notional per event time, so window sums survive as-of alignment.

    ``raw``: the ``liquidations`` schema (ts, side, notional, ...); ``side`` is
    the side of the liquidated POSITION ("long"/"short", any case).  Keeps a
    ``symbol`` column when present (totals run per symbol).
    """
    missing = {"ts", "side", "notional"} - set(raw.columns)
    if missing:
        raise DataError(
            f"liquidations table lacks columns {sorted(missing)}",
            hint="conform it with hydraquant.data.schema.conform(frame, 'liquidations')",
        )
    side = pl.col("side").str.to_lowercase()
    bad = raw.filter(~side.is_in(["long", "short"]) | side.is_null())
    if bad.height:
        raise DataError(
            f"liquidation side must be 'long' or 'short', got {bad.get_column('side').unique().to_list()[:5]}",
            column="side",
            hint="map exchange order sides to the liquidated position side on ingest",
        )
    keys = ["symbol", "ts"] if "symbol" in raw.columns else ["ts"]
    by = keys[:-1]
    per_ts = (
        raw.group_by(keys)
        .agg(
            pl.col("notional").filter(side == "long").sum().alias("long"),
            pl.col("notional").filter(side == "short").sum().alias("short"),
        )
        .sort(keys)
    )
    cum = [pl.col("long").cum_sum(), pl.col("short").cum_sum()]
    if by:
        cum = [c.over(by) for c in cum]
    return per_ts.select(*keys, cum[0].alias(LIQ_CUM_COLUMNS[0]), cum[1].alias(LIQ_CUM_COLUMNS[1]))


def _liq_window(ctx: FeatureContext) -> tuple[np.ndarray, np.ndarray]:
    """(long, short) liquidated notional during the trailing window ending at each bar close."""
    table = ctx.side["liquidations"]
    if not set(LIQ_CUM_COLUMNS) <= set(table.columns):
        raise FeatureError(
            "liquidation features need running totals, the liquidations table has only raw events",
            hint="pass it through hydraquant.features.derivatives.prepare_liquidations before build_features",
        )
    k = ctx.n_bars(ctx.params["window"])
    present = table.get_column("_event_ts").is_not_null().to_numpy()
    out = []
    for col in LIQ_CUM_COLUMNS:
        cum = np.where(
            present, _side(ctx, "liquidations", col), 0.0
        )  # before the first event: nothing yet
        out.append(cum - _lag(cum, k))
    return out[0], out[1]


@feature("liq_imbalance", group=GROUP, inputs=("liquidations",), params={"window": "1h"})
def liq_imbalance(ctx: FeatureContext) -> np.ndarray:
    """(long - short) / (long + short) liquidated notional over 1 h; 0 when nothing was liquidated."""
    long, short = _liq_window(ctx)
    total = long + short
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            total > 0, (long - short) / total, np.where(np.isfinite(total), 0.0, np.nan)
        )


@feature(
    "liq_velocity",
    group=GROUP,
    inputs=("ohlcv", "liquidations", "open_interest"),
    params={"window": "1h"},
)
def liq_velocity(ctx: FeatureContext) -> np.ndarray:
    """Liquidated notional over 1 h / open-interest notional (OI x close): the share of OI wiped out."""
    long, short = _liq_window(ctx)
    oi_notional = _side(ctx, "open_interest", "open_interest") * ctx.col("close").astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(oi_notional > 0, (long + short) / oi_notional, np.nan)


@feature("liq_z", group=GROUP, inputs=("liquidations",), params={"window": "1h", "lookback": "1d"})
def liq_z(ctx: FeatureContext) -> np.ndarray:
    """z-score of 1 h liquidated notional against its trailing 1-day distribution (per bar)."""
    long, short = _liq_window(ctx)
    return _rolling_z(long + short, ctx.n_bars(ctx.params["lookback"]))


_alias(
    "liq_zscore",
    "liq_z",
    liq_z,
    inputs=("liquidations",),
    params={"window": "1h", "lookback": "1d"},
)


# --- order book --------------------------------------------------------------------


def _book_imbalance(ctx: FeatureContext) -> np.ndarray:
    """(bid_qty - ask_qty) / (bid_qty + ask_qty) at the best level: +1 = all bids."""
    bid, ask = _side(ctx, "book", "bid_qty"), _side(ctx, "book", "ask_qty")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bid + ask > 0, (bid - ask) / (bid + ask), np.nan)


feature("book_imbalance", group=GROUP, inputs=("book",))(_book_imbalance)
_alias("ob_imbalance", "book_imbalance", _book_imbalance, inputs=("book",))


@feature("spread_bps", group=GROUP, inputs=("book",))
def spread_bps(ctx: FeatureContext) -> np.ndarray:
    """(ask - bid) / mid in basis points."""
    bid, ask = _side(ctx, "book", "bid_price"), _side(ctx, "book", "ask_price")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bid + ask > 0, (ask - bid) / ((ask + bid) / 2.0) * 1e4, np.nan)


def _depth(ctx: FeatureContext) -> np.ndarray:
    """Best-level notional (price x quantity) on the bid, the ask, or both."""
    bid = _side(ctx, "book", "bid_price") * _side(ctx, "book", "bid_qty")
    ask = _side(ctx, "book", "ask_price") * _side(ctx, "book", "ask_qty")
    return {"bid": bid, "ask": ask, "total": bid + ask}[ctx.params["side"]]


feature("bid_depth_usd", group=GROUP, inputs=("book",), params={"side": "bid"})(_depth)
feature("ask_depth_usd", group=GROUP, inputs=("book",), params={"side": "ask"})(_depth)
feature("book_depth_usd", group=GROUP, inputs=("book",), params={"side": "total"})(_depth)
