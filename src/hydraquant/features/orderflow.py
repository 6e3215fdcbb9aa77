"""F1 order flow (seed 000, "Hydra V3"): who is aggressing, how hard, and how it changes.

Names and parameters follow seed 000, whose bars were 250 ms: its bar counts
are converted to durations (100 bars = 25 s, 240 = 60 s, 500 = 125 s) so the
same feature means the same thing on 250 ms trade bars and on 1 m klines.
A window shorter than one bar collapses to the 1-bar value (``MOI_250ms`` on
1 m klines equals the bar's own imbalance); a std needs at least two bars.

MOI (market order imbalance) here is *normalised*: signed volume / volume
over the window, in [-1, 1] (0 when nothing traded).  Seed 000 used the raw
signed-volume sum, which is not comparable across symbols or bar sizes; the
raw sums live on as ``cum_delta_1m``/``cum_delta_5m``.
"""

from __future__ import annotations

import numpy as np

from hydraquant.features.inputs import (
    EPS,
    diff,
    pct_change,
    rolling_many,
    rolling_mean,
    rolling_sum,
    rolling_z,
    safe_div,
    shift,
    window,
)
from hydraquant.features.registry import FeatureContext, feature

GROUP = "orderflow"
FLOW = ("ohlcv", "orderflow")

MOI_WINDOWS = {"MOI_250ms": "250ms", "MOI_1s": "1s", "MOI_5s": "5s"}
STATS_WINDOW = "25s"  # seed: 100 bars of 250 ms
FLIP_WINDOW = "60s"  # seed: 240 bars
INTENSITY_Z_WINDOW = "125s"  # seed: 500 bars


def moi(ctx: FeatureContext, duration: str) -> np.ndarray:
    """Signed / total volume over the trailing ``duration``; 0 where no volume traded."""
    n = window(ctx, duration)
    return ctx.cached(("moi", n), lambda: _moi(ctx, n))


def _moi(ctx: FeatureContext, n: int) -> np.ndarray:
    signed, total = rolling_many(
        [(ctx.fcol("signed_volume"), "sum", n), (ctx.fcol("volume"), "sum", n)]
    )
    out = safe_div(signed, total)
    return np.where(total == 0.0, 0.0, out)


def moi_1s_family(ctx: FeatureContext) -> dict[str, np.ndarray]:
    """MOI_1s and every trailing statistic the MOI_1s-derived features need, computed once.

    Why fused: MOI_z, AggressionPersistence and MOI_flip_rate each need
    rolling windows over the same MOI_1s; here the MOI is built once and all
    four windows run in one parallel query instead of eleven features
    rebuilding MOI_1s and its windows one at a time.
    """
    return ctx.cached(("moi_1s_family",), lambda: _moi_1s_family(ctx))


def _moi_1s_family(ctx: FeatureContext) -> dict[str, np.ndarray]:
    m = moi(ctx, "1s")
    a = np.abs(m)
    sign = np.sign(m)
    prev = shift(sign, 1)
    changed = np.where(np.isnan(sign) | np.isnan(prev), np.nan, (sign != prev).astype(np.float64))
    n = window(ctx, STATS_WINDOW, min_bars=2)
    std, abs_mean, abs_std, flips = rolling_many(
        [(m, "std", n), (a, "mean", n), (a, "std", n), (changed, "sum", window(ctx, FLIP_WINDOW))]
    )
    return {
        "moi": m,
        "abs": a,
        "std": std,
        "abs_mean": abs_mean,
        "abs_std": abs_std,
        "flips": flips,
    }


def _moi_feature(ctx: FeatureContext) -> np.ndarray:
    """Market order imbalance (signed/total volume) over a trailing window."""
    return moi(ctx, ctx.params["window"])


for _name, _dur in MOI_WINDOWS.items():
    feature(_name, group=GROUP, inputs=FLOW, params={"window": _dur}, warmup_time=_dur)(
        _moi_feature
    )


@feature("MOI_std", group=GROUP, inputs=FLOW, warmup=1, warmup_time="26s")
def moi_std(ctx: FeatureContext) -> np.ndarray:
    """Trailing 25 s std of MOI_1s: how erratic the flow currently is."""
    return moi_1s_family(ctx)["std"]


@feature("MOI_z", group=GROUP, inputs=FLOW, warmup=1, warmup_time="26s")
def moi_z(ctx: FeatureContext) -> np.ndarray:
    """|MOI_1s| in units of its trailing 25 s std (seed 000's definition)."""
    fam = moi_1s_family(ctx)
    return fam["abs"] / (fam["std"] + EPS)


def _delta_velocity(ctx: FeatureContext) -> np.ndarray:
    """Change of MOI_1s over a lag: the velocity of order-flow pressure."""
    return diff(moi(ctx, "1s"), window(ctx, ctx.params["lag"]))


# seed: delta_velocity = MOI_1s.diff() on 250 ms bars, delta_velocity_5s = diff(20)
for _name, _lag in {
    "delta_velocity": "250ms",
    "delta_velocity_1s": "1s",
    "delta_velocity_5s": "5s",
}.items():
    feature(_name, group=GROUP, inputs=FLOW, params={"lag": _lag}, warmup=1, warmup_time="6s")(
        _delta_velocity
    )


@feature("MOI_acceleration", group=GROUP, inputs=FLOW, warmup=2, warmup_time="2s")
def moi_acceleration(ctx: FeatureContext) -> np.ndarray:
    """Second difference of MOI_1s (250 ms lags): is pressure building or fading."""
    lag = window(ctx, "250ms")
    return diff(diff(moi(ctx, "1s"), lag), lag)


@feature("AggressionPersistence", group=GROUP, inputs=FLOW, warmup=1, warmup_time="26s")
def aggression_persistence(ctx: FeatureContext) -> np.ndarray:
    """Mean / std of |MOI_1s| over 25 s: steady one-sided aggression scores high."""
    fam = moi_1s_family(ctx)
    return fam["abs_mean"] / (fam["abs_std"] + EPS)


@feature("MOI_flip_rate", group=GROUP, inputs=FLOW, warmup=1, warmup_time="62s")
def moi_flip_rate(ctx: FeatureContext) -> np.ndarray:
    """Sign changes of MOI_1s within the last 60 s: choppy versus one-way flow."""
    return moi_1s_family(ctx)["flips"]


def _moi_roc(ctx: FeatureContext) -> np.ndarray:
    """Percent change of MOI_1s over a lag, clipped to +-10 as in seed 000."""
    roc = pct_change(moi(ctx, "1s"), window(ctx, ctx.params["lag"]))
    return np.clip(roc, -10.0, 10.0)


for _name, _lag in {"MOI_roc_1s": "1s", "MOI_roc_5s": "5s"}.items():
    feature(_name, group=GROUP, inputs=FLOW, params={"lag": _lag}, warmup=1, warmup_time="6s")(
        _moi_roc
    )


def _cum_delta(ctx: FeatureContext) -> np.ndarray:
    """Raw signed volume summed over a trailing window (net aggressive buying)."""
    return rolling_sum(ctx.fcol("signed_volume"), window(ctx, ctx.params["window"]))


for _name, _dur in {"cum_delta_1m": "1m", "cum_delta_5m": "5m"}.items():
    feature(_name, group=GROUP, inputs=FLOW, params={"window": _dur}, warmup_time=_dur)(_cum_delta)


@feature("trade_intensity", group=GROUP, inputs=("trade_count",), warmup_time=STATS_WINDOW)
def trade_intensity(ctx: FeatureContext) -> np.ndarray:
    """Mean trades per bar over the last 25 s."""
    return rolling_mean(ctx.fcol("trade_count"), window(ctx, STATS_WINDOW))


@feature("trade_intensity_z", group=GROUP, inputs=("trade_count",), warmup_time="126s")
def trade_intensity_z(ctx: FeatureContext) -> np.ndarray:
    """Trades in this bar as a z-score against the trailing 125 s."""
    return rolling_z(ctx.fcol("trade_count"), window(ctx, INTENSITY_Z_WINDOW, min_bars=2))


@feature(
    "taker_buy_sell_ratio", group=GROUP, inputs=FLOW, params={"window": "5m"}, warmup_time="5m"
)
def taker_buy_sell_ratio(ctx: FeatureContext) -> np.ndarray:
    """Aggressive buy / sell volume over 5 m (Binance's taker ratio); NaN without sells."""
    n = window(ctx, ctx.params["window"])
    buy_bar = ctx.fcol("buy_volume")
    sell_bar = ctx.fcol("volume") - buy_bar  # per bar first: all-buy bars give exact 0
    buy, sell = rolling_many([(buy_bar, "sum", n), (sell_bar, "sum", n)])
    ratio = safe_div(buy, sell)
    return np.where(sell > 0.0, ratio, np.nan)
