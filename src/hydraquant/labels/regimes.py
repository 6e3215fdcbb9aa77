"""L5 regime labels: HYDRA 7-class (seed 001), 3-class ranging/up/down (seed 002), NOVOSKY 4-state (seed 004).

Two of these are rules over TRAILING indicators known at the close of bar
``t`` (3-class SMA rule, 4-state ADX/ATR-percentile rule): they are causal,
``t_end = ts + interval``, and may also serve as regime filters.

HYDRA's ``label_regime`` classifies "what happened in the window".  Used as a
training LABEL for the Regime Classifier the window is the FUTURE
``(t, t+window]`` (``forward=True``, the default): the label is then known
only at ``t_end = ts[t+window] + interval`` and must never be used as a
feature.  ``forward=False`` evaluates the same rules on the trailing window
``(t-window, t]`` (a causal rule-based regime, ``t_end = ts[t] + interval``).

The "95th percentile of volatility" in the seed is a full-sample statistic
(leaks); here it is a rolling quantile of trailing window volatility over
``vol_lookback`` past bars, known at ``t``, or a fixed ``vol_threshold``.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import polars as pl

from hydraquant.labels._frame import (
    LabelError,
    check_bars,
    check_horizon,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)


class HydraRegime(IntEnum):
    """Seed 001 class codes (order matters to models trained on them)."""

    TRENDING_UP = 0
    TRENDING_DOWN = 1
    RANGING = 2
    HIGH_VOLATILITY = 3
    CASCADE_RISK = 4
    SQUEEZE_LONG = 5
    SQUEEZE_SHORT = 6


class TrendRegime(IntEnum):
    """Seed 002 codes: {0: Ranging, 1: Trending Up, 2: Trending Down}."""

    RANGING = 0
    TRENDING_UP = 1
    TRENDING_DOWN = 2


class MarketState(IntEnum):
    """Seed 004 ``detect_regime`` states."""

    STRONG_TREND = 0
    RANGING = 1
    VOLATILE = 2
    CHOPPY = 3


def _lit(code: IntEnum) -> pl.Expr:
    return pl.lit(int(code), dtype=pl.Int8)


def _names(enum: type[IntEnum]) -> dict[int, str]:
    return {int(m): m.name for m in enum}


def hydra_regime(
    frame: pl.DataFrame,
    window: int,
    *,
    forward: bool = True,
    price_col: str = "close",
    funding_col: str | None = None,
    oi_delta_col: str | None = None,
    liq_velocity_col: str | None = None,
    trend_threshold: float = 0.02,
    funding_threshold: float = 0.001,
    oi_threshold: float = 0.02,
    cascade_threshold: float = 0.05,
    vol_quantile: float = 0.95,
    vol_lookback: int = 2000,
    vol_threshold: float | None = None,
    interval: str | None = None,
) -> pl.DataFrame:
    """HYDRA 7-class regime over a window of ``window`` bars, rules in the seed's order.

    Window aggregates: simple returns (sum and mean), their std (volatility),
    mean funding rate, summed per-bar OI change (``oi_delta_col`` holds
    per-bar fractional changes), max liquidation velocity.  Rules, first match
    wins: CASCADE_RISK (liq_velocity > 0.05), SQUEEZE_SHORT (funding > 0.001,
    OI change > 0.02, mean return < 0), SQUEEZE_LONG (funding < -0.001, OI
    change > 0.02, mean return > 0), HIGH_VOLATILITY (vol > threshold),
    TRENDING_UP (sum of returns > 0.02), TRENDING_DOWN (< -0.02), RANGING.
    A rule whose input column is not given is skipped; a null input value
    makes that rule false.  Rows without a full window, or before the rolling
    volatility threshold exists, are null.

    Returns ``ts, regime (Int8), regime_name, ret_sum, volatility, t_end``.
    """
    window = check_horizon(window, name="window")
    if window < 2:
        raise LabelError("window must be >= 2 bars (volatility is a std over the window)")
    optional = [c for c in (funding_col, oi_delta_col, liq_velocity_col) if c is not None]
    frame = check_bars(frame, [price_col, *optional], where="hydra_regime")
    positive_prices(frame, [price_col], where="hydra_regime")
    step = resolve_interval_us(frame, interval)
    n = frame.height

    ret = pl.col(price_col).pct_change()
    trailing = [
        ret.rolling_sum(window).alias("_ret_sum"),
        ret.rolling_std(window).alias("_vol"),
    ]
    if funding_col:
        trailing.append(pl.col(funding_col).cast(pl.Float64).rolling_mean(window).alias("_funding"))
    if oi_delta_col:
        trailing.append(pl.col(oi_delta_col).cast(pl.Float64).rolling_sum(window).alias("_oi"))
    if liq_velocity_col:
        trailing.append(pl.col(liq_velocity_col).cast(pl.Float64).rolling_max(window).alias("_liq"))
    agg = frame.select(trailing)
    if vol_threshold is None:
        if not 0 < vol_quantile < 1:
            raise LabelError(f"vol_quantile must be in (0, 1), got {vol_quantile!r}")
        thr = agg.select(
            pl.col("_vol")
            .rolling_quantile(
                vol_quantile,
                window_size=vol_lookback,
                min_samples=max(2, vol_lookback // 2),
                interpolation="linear",
            )
            .alias("_thr")
        )["_thr"]
    else:
        thr = pl.Series("_thr", np.full(n, float(vol_threshold)))
    if forward:
        # aggregate of (t, t+window] is the trailing aggregate ending at t+window
        agg = agg.select(pl.all().shift(-window))
    agg = agg.with_columns(thr)

    def rule(expr: pl.Expr) -> pl.Expr:
        return expr.fill_null(False)

    ret_mean = pl.col("_ret_sum") / window
    code = pl.when(pl.lit(False)).then(pl.lit(None, dtype=pl.Int8))
    if liq_velocity_col:
        code = code.when(rule(pl.col("_liq") > cascade_threshold)).then(
            _lit(HydraRegime.CASCADE_RISK)
        )
    if funding_col and oi_delta_col:
        code = code.when(
            rule(
                (pl.col("_funding") > funding_threshold)
                & (pl.col("_oi") > oi_threshold)
                & (ret_mean < 0)
            )
        ).then(_lit(HydraRegime.SQUEEZE_SHORT))
        code = code.when(
            rule(
                (pl.col("_funding") < -funding_threshold)
                & (pl.col("_oi") > oi_threshold)
                & (ret_mean > 0)
            )
        ).then(_lit(HydraRegime.SQUEEZE_LONG))
    code = (
        code.when(pl.col("_vol") > pl.col("_thr"))
        .then(_lit(HydraRegime.HIGH_VOLATILITY))
        .when(pl.col("_ret_sum") > trend_threshold)
        .then(_lit(HydraRegime.TRENDING_UP))
        .when(pl.col("_ret_sum") < -trend_threshold)
        .then(_lit(HydraRegime.TRENDING_DOWN))
        .otherwise(_lit(HydraRegime.RANGING))
    )
    defined = (
        pl.col("_ret_sum").is_not_null()
        & pl.col("_vol").is_not_null()
        & pl.col("_thr").is_not_null()
    )
    out = agg.select(
        pl.when(defined).then(code).otherwise(None).cast(pl.Int8).alias("regime"),
        pl.col("_ret_sum").alias("ret_sum"),
        pl.col("_vol").alias("volatility"),
    )
    idx = np.arange(n)
    last_bar = idx + window if forward else idx
    ok = out["regime"].is_not_null().to_numpy() & (last_bar < n)
    return pl.DataFrame(
        [
            frame["ts"],
            out["regime"],
            out["regime"]
            .replace_strict(_names(HydraRegime), default=None, return_dtype=pl.String)
            .alias("regime_name"),
            out["ret_sum"],
            out["volatility"],
            t_end_series(ts_us(frame), np.where(ok, last_bar, -1), step),
        ]
    )


def trend_regime(
    frame: pl.DataFrame,
    *,
    fast: int = 20,
    slow: int = 50,
    band: float = 0.02,
    price_col: str = "close",
    interval: str | None = None,
) -> pl.DataFrame:
    """3-class rule regime (seed 002 codes; HYDRA fallback rule): SMA(fast) vs SMA(slow) with a band.

    TRENDING_UP if ``sma_fast > sma_slow * (1 + band)``, TRENDING_DOWN if
    ``sma_fast < sma_slow * (1 - band)``, else RANGING.  Causal (trailing
    SMAs of closes up to bar t); null during the ``slow``-bar warm-up.

    Returns ``ts, regime (Int8), regime_name, t_end``.
    """
    fast = check_horizon(fast, name="fast")
    slow = check_horizon(slow, name="slow")
    if fast >= slow:
        raise LabelError(f"fast ({fast}) must be shorter than slow ({slow})")
    frame = check_bars(frame, [price_col], where="trend_regime")
    positive_prices(frame, [price_col], where="trend_regime")
    step = resolve_interval_us(frame, interval)
    f = pl.col(price_col).cast(pl.Float64).rolling_mean(fast)
    s = pl.col(price_col).cast(pl.Float64).rolling_mean(slow)
    regime = (
        pl.when(s.is_null())
        .then(None)
        .when(f > s * (1 + band))
        .then(_lit(TrendRegime.TRENDING_UP))
        .when(f < s * (1 - band))
        .then(_lit(TrendRegime.TRENDING_DOWN))
        .otherwise(_lit(TrendRegime.RANGING))
        .cast(pl.Int8)
        .alias("regime")
    )
    out = frame.select("ts", regime)
    valid = out["regime"].is_not_null().to_numpy()
    return out.with_columns(
        pl.col("regime")
        .replace_strict(_names(TrendRegime), default=None, return_dtype=pl.String)
        .alias("regime_name"),
        t_end_series(ts_us(frame), np.where(valid, np.arange(frame.height), -1), step),
    )


def market_state(
    frame: pl.DataFrame,
    *,
    adx_col: str = "adx_14",
    atr_pct_col: str = "atr_percentile",
    trend_adx: float = 0.25,
    range_adx: float = 0.20,
    range_atr_pct: float = 0.40,
    volatile_atr_pct: float = 0.75,
    interval: str | None = None,
) -> pl.DataFrame:
    """NOVOSKY 4-state regime (seed 004 ``detect_regime``), rules in the seed's order.

    ADX is on a 0-1 scale (ADX/100) and the ATR percentile in [0, 1], both
    causal inputs at bar t.  STRONG_TREND if adx > 0.25 and atr_pct < 0.75;
    RANGING if adx < 0.20 and atr_pct < 0.40; VOLATILE if atr_pct >= 0.75;
    else CHOPPY.  Null where either input is null/NaN.

    Returns ``ts, regime (Int8), regime_name, t_end``.
    """
    frame = check_bars(frame, [adx_col, atr_pct_col], where="market_state")
    step = resolve_interval_us(frame, interval)
    adx = pl.col(adx_col).cast(pl.Float64).fill_nan(None)
    atr = pl.col(atr_pct_col).cast(pl.Float64).fill_nan(None)
    regime = (
        pl.when(adx.is_null() | atr.is_null())
        .then(None)
        .when((adx > trend_adx) & (atr < volatile_atr_pct))
        .then(_lit(MarketState.STRONG_TREND))
        .when((adx < range_adx) & (atr < range_atr_pct))
        .then(_lit(MarketState.RANGING))
        .when(atr >= volatile_atr_pct)
        .then(_lit(MarketState.VOLATILE))
        .otherwise(_lit(MarketState.CHOPPY))
        .cast(pl.Int8)
        .alias("regime")
    )
    out = frame.select("ts", regime)
    valid = out["regime"].is_not_null().to_numpy()
    return out.with_columns(
        pl.col("regime")
        .replace_strict(_names(MarketState), default=None, return_dtype=pl.String)
        .alias("regime_name"),
        t_end_series(ts_us(frame), np.where(valid, np.arange(frame.height), -1), step),
    )
