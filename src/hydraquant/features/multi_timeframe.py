"""F6 multi-timeframe features: H4 / D1 / W1 EMA bias, RSI, MACD direction, D1 trend, price vs D1 open.

Why a local resample: the classic multi-timeframe leak is joining a higher
bar on its OPEN time, so a 4h candle's close is visible four hours early.
Here a higher-timeframe (HTF) bar is built from the input bars whose open
falls in its period (``ts.dt.truncate(every)``: 4h/1d aligned to UTC midnight,
1w to Monday 00:00 UTC as Binance), its indicators are computed on the HTF
series, and the result is as-of joined on CLOSE times: row i sees HTF bar k
only if ``htf_open_k + every <= ts_i + interval``.  Every input bar of HTF
bar k closes by then, so row i never sees data from after its own close; the
still-forming HTF bar is never used (seed 004 forward-fills completed H4/D1/W1
values the same way).  ``price_vs_d1_open`` is the one exception: the day's
open is known from the day's first bar, so it needs no completed day.

Definitions (seed 004 names): ``{tf}_ema_bias`` = (close - EMA10) / close on
the HTF series; ``{tf}_rsi_norm`` = Wilder RSI(14) / 100; ``{tf}_macd_dir`` =
sign of the MACD(12, 26, 9) histogram; ``d1_trend`` = sign(D1 close - D1
EMA20).  Warm-up depends on the bar interval (e.g. 10 completed H4 bars), so
these features register ``warmup=0`` and mark the warm-up with NaN.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from hydraquant.features import indicators_nb as ind
from hydraquant.features.registry import FeatureContext, feature
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

GROUP = "multi_timeframe"
TIMEFRAMES = {"h4": "4h", "d1": "1d", "w1": "1w"}


def resample_causal(bars: pl.DataFrame, every: str) -> pl.DataFrame:
    """Higher-timeframe OHLCV bars from input bars: ``htf_ts`` (open), ``htf_close_ts``, OHLCV.

    Periods are calendar-aligned in UTC; a period with missing input bars
    still closes at ``htf_ts + every`` (its values are then built from the
    bars that exist).
    """
    step = pl.duration(microseconds=interval_us(every))
    return (
        bars.lazy()
        .group_by(pl.col("ts").dt.truncate(every).alias("htf_ts"), maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("htf_ts")
        .with_columns((pl.col("htf_ts") + step).alias("htf_close_ts"))
        .collect()
    )


def join_completed(
    bars: pl.DataFrame, interval: str, htf: pl.DataFrame, columns: list[str]
) -> pl.DataFrame:
    """For each input bar, the ``columns`` of the latest HTF bar closed by that bar's close."""
    close = pl.col("ts") + pl.duration(microseconds=interval_us(interval))
    left = bars.select(close.alias("_close"))
    right = htf.select("htf_close_ts", *columns).sort("htf_close_ts")
    joined = left.join_asof(right, left_on="_close", right_on="htf_close_ts", strategy="backward")
    return joined.select(columns)


def _htf_value(ctx: FeatureContext, every: str, compute) -> np.ndarray:
    """Compute ``compute(htf_frame) -> array`` on completed HTF bars and align causally."""
    if interval_us(ctx.interval) > interval_us(every):
        log.warning(
            "bar interval %s is longer than %s: %s features are NaN", ctx.interval, every, every
        )
        return np.full(ctx.bars.height, np.nan)
    htf = resample_causal(ctx.bars, every)
    htf = htf.with_columns(pl.Series("_value", compute(htf), dtype=pl.Float64))
    return join_completed(ctx.bars, ctx.interval, htf, ["_value"]).get_column("_value").to_numpy()


def _closes(htf: pl.DataFrame) -> np.ndarray:
    return htf.get_column("close").cast(pl.Float64).to_numpy()


def _ema_bias(ctx: FeatureContext) -> np.ndarray:
    """(close - EMA(10)) / close on completed higher-timeframe bars."""
    n = int(ctx.params["n"])

    def compute(htf: pl.DataFrame) -> np.ndarray:
        c = _closes(htf)
        return (c - ind.ema(c, n)) / c

    return _htf_value(ctx, ctx.params["every"], compute)


def _rsi_norm(ctx: FeatureContext) -> np.ndarray:
    """Wilder RSI(14) / 100 on completed higher-timeframe bars."""
    n = int(ctx.params["n"])
    return _htf_value(ctx, ctx.params["every"], lambda htf: ind.rsi(_closes(htf), n) / 100.0)


def _macd_dir(ctx: FeatureContext) -> np.ndarray:
    """sign(MACD(12, 26, 9) histogram) on completed higher-timeframe bars: +1 bullish, -1 bearish."""
    return _htf_value(
        ctx, ctx.params["every"], lambda htf: np.sign(ind.macd(_closes(htf), 12, 26, 9)[2])
    )


for _tf, _every in TIMEFRAMES.items():
    feature(f"{_tf}_ema_bias", group=GROUP, params={"every": _every, "n": 10})(_ema_bias)
    feature(f"{_tf}_rsi_norm", group=GROUP, params={"every": _every, "n": 14})(_rsi_norm)
    feature(f"{_tf}_macd_dir", group=GROUP, params={"every": _every})(_macd_dir)


@feature("d1_trend", group=GROUP, params={"every": "1d", "n": 20})
def d1_trend(ctx: FeatureContext) -> np.ndarray:
    """sign(D1 close - D1 EMA20) of the last completed day: +1 up-trend, -1 down-trend."""
    n = int(ctx.params["n"])

    def compute(htf: pl.DataFrame) -> np.ndarray:
        c = _closes(htf)
        return np.sign(c - ind.ema(c, n))

    return _htf_value(ctx, ctx.params["every"], compute)


@feature("price_vs_d1_open", group=GROUP)
def price_vs_d1_open(ctx: FeatureContext) -> pl.Expr:
    """close / open of the current UTC day - 1 (the day's open is known from its first bar)."""
    day_open = pl.col("open").first().over(pl.col("ts").dt.truncate("1d"))
    return pl.col("close") / day_open - 1.0
