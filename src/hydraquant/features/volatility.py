"""F3 volatility: realised vol, its regime, ATR, Bollinger width and squeeze.

Seed 000 (250 ms bars) gives vol_1m/5m/15m (std of simple returns over
240/1200/3600 bars), vol_ratio, vol_rank (rank of vol_5m within the last
2000 bars = 500 s) and vol_regime (LOW <= 0.3 < MID <= 0.7 < HIGH on that
rank).  Seed 001/004 give atr_14, atr_percentile (ATR rank over 500 bars),
bb_width, bb_squeeze and volatility z-score.  Every rank and z-score here is
over a trailing window — a full-sample percentile would leak the future's
volatility into today's regime.

Bar-count conventions (ATR 14, Bollinger 20, ranks over 500/120 bars) stay in
bars because that is what those indicators mean; seed-000 windows are
durations.  A std window shorter than two bars uses two bars.
"""

from __future__ import annotations

import numpy as np

from hydraquant.features import indicators_nb as ind
from hydraquant.features.inputs import (
    log_returns,
    returns,
    rolling_mean_std,
    rolling_pct_rank,
    rolling_std,
    rolling_sum,
    rolling_z,
    safe_div,
    window,
)
from hydraquant.features.registry import FeatureContext, feature

GROUP = "volatility"

VOL_WINDOWS = {"vol_1m": "1m", "vol_5m": "5m", "vol_15m": "15m"}
RV_WINDOWS = {"rv_5m": "5m", "rv_15m": "15m", "rv_1h": "1h", "rv_4h": "4h", "rv_1d": "1d"}
RANK_WINDOW = "500s"  # seed 000: 2000 bars of 250 ms
REGIME_EDGES = (0.3, 0.7)
ATR_PERIOD = 14
ATR_RANK_BARS = 500  # seed 004 §17.2
BB_PERIOD, BB_K = 20, 2.0
SQUEEZE_BARS, SQUEEZE_PCT = 120, 0.2
VOL_Z_WINDOW = "1h"


def vol(ctx: FeatureContext, duration: str) -> np.ndarray:
    """Std (ddof=1) of simple close-to-close returns over the trailing ``duration``.

    Memoised per build by window length: vol_5m alone feeds vol_5m, vol_ratio,
    vol_rank, vol_regime and vol_zscore.
    """
    n = window(ctx, duration, min_bars=2)
    return ctx.cached(("vol", n), lambda: rolling_std(returns(ctx), n))


def _vol_feature(ctx: FeatureContext) -> np.ndarray:
    """Realised volatility: std of 1-bar returns over a trailing window (seed 000)."""
    return vol(ctx, ctx.params["window"])


for _name, _dur in VOL_WINDOWS.items():
    feature(_name, group=GROUP, params={"window": _dur}, warmup=2, warmup_time=_dur)(_vol_feature)


def _rv_feature(ctx: FeatureContext) -> np.ndarray:
    """Realised volatility sqrt(sum r^2) of log returns over a trailing window (not annualised)."""
    r = ctx.cached(("log_returns",), lambda: log_returns(ctx.fcol("close")))
    return np.sqrt(rolling_sum(r * r, window(ctx, ctx.params["window"])))


for _name, _dur in RV_WINDOWS.items():
    feature(_name, group=GROUP, params={"window": _dur}, warmup=1, warmup_time=_dur)(_rv_feature)


@feature("vol_ratio", group=GROUP, warmup=2, warmup_time="5m")
def vol_ratio(ctx: FeatureContext) -> np.ndarray:
    """vol_1m / vol_5m: > 1 when volatility is expanding."""
    return vol(ctx, "1m") / (vol(ctx, "5m") + 1e-8)


@feature("vol_rank", group=GROUP, warmup=3, warmup_time="800s")
def vol_rank(ctx: FeatureContext) -> np.ndarray:
    """Percentile rank of vol_5m within its trailing 500 s (seed 000), in (0, 1]."""
    n = window(ctx, RANK_WINDOW, min_bars=2)
    return ctx.cached(("vol_rank", n), lambda: rolling_pct_rank(vol(ctx, "5m"), n))


@feature("vol_regime", group=GROUP, warmup=3, warmup_time="800s")
def vol_regime(ctx: FeatureContext) -> np.ndarray:
    """0 = LOW (rank <= 0.3), 1 = MID (<= 0.7), 2 = HIGH; NaN during warm-up."""
    rank = vol_rank(ctx)
    code = np.where(rank <= REGIME_EDGES[0], 0.0, np.where(rank <= REGIME_EDGES[1], 1.0, 2.0))
    return np.where(np.isnan(rank), np.nan, code)


def atr(ctx: FeatureContext, period: int = ATR_PERIOD) -> np.ndarray:
    """Wilder ATR(period) of this context's bars, restarted after a bar without a true range.

    Memoised per build: atr_14, atr_percentile and the daily-extreme
    distances in the structure group all divide by the same ATR.
    """
    return ctx.cached(
        ("atr", int(period)),
        lambda: ind.atr(
            ctx.fcol("high"), ctx.fcol("low"), ctx.fcol("close"), period, restart_after_nan=True
        ),
    )


@feature("atr_14", group=GROUP, warmup=ATR_PERIOD - 1)
def atr_14(ctx: FeatureContext) -> np.ndarray:
    """Average true range, Wilder smoothing over 14 bars (price units)."""
    return atr(ctx)


@feature("atr_percentile", group=GROUP, warmup=ATR_PERIOD + ATR_RANK_BARS - 2)
def atr_percentile(ctx: FeatureContext) -> np.ndarray:
    """Percentile rank of atr_14 within its trailing 500 bars (seed 004's volatility regime)."""
    return rolling_pct_rank(atr(ctx), ATR_RANK_BARS)


def _bb_width(ctx: FeatureContext) -> np.ndarray:
    close = ctx.fcol("close")
    mid, sd = rolling_mean_std(close, BB_PERIOD, ddof=0)  # Bollinger's population std
    return safe_div(2.0 * BB_K * sd, mid)


@feature("bb_width", group=GROUP, warmup=BB_PERIOD - 1)
def bb_width(ctx: FeatureContext) -> np.ndarray:
    """(upper - lower) / middle of Bollinger(20, 2): relative band width."""
    return _bb_width(ctx)


@feature("bb_squeeze", group=GROUP, warmup=BB_PERIOD + SQUEEZE_BARS - 2)
def bb_squeeze(ctx: FeatureContext) -> np.ndarray:
    """1 when bb_width is in the lowest 20% of its trailing 120 bars (a squeeze), else 0."""
    rank = rolling_pct_rank(_bb_width(ctx), SQUEEZE_BARS)
    return np.where(np.isnan(rank), np.nan, (rank <= SQUEEZE_PCT).astype(np.float64))


@feature("vol_zscore", group=GROUP, warmup=3, warmup_time="65m")
def vol_zscore(ctx: FeatureContext) -> np.ndarray:
    """vol_5m as a z-score against its trailing hour: unusual volatility now."""
    return rolling_z(vol(ctx, "5m"), window(ctx, VOL_Z_WINDOW, min_bars=2))
