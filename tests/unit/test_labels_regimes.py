"""L5: HYDRA 7-class rule order (forward label vs trailing rule), 3-class SMA rule, NOVOSKY 4-state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.labels import (
    HydraRegime,
    LabelError,
    MarketState,
    hydra_regime,
    market_state,
    trend_regime,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(close, **cols) -> pl.DataFrame:
    n = len(close)
    data = {
        "ts": [T0 + timedelta(hours=i) for i in range(n)],
        "close": np.asarray(close, dtype=float),
    }
    data.update({k: pl.Series(v, dtype=pl.Float64) for k, v in cols.items()})
    return pl.DataFrame(data).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_hydra_trend_and_ranging_forward_window():
    # +1% per bar for 3 bars then flat
    close = [100, 101, 102.01, 103.0301, 103.0301, 103.0301, 103.0301]
    out = hydra_regime(frame(close), 3, vol_threshold=1.0)
    names = out["regime_name"].to_list()
    assert names[0] == "TRENDING_UP"  # returns of bars 1..3 sum to 3%
    assert names[2] == "RANGING"  # bars 3..5: 1% + 0 + 0
    assert names[3] == "RANGING"
    assert names[4:] == [None, None, None]  # no full forward window
    assert out["t_end"][0] == T0 + timedelta(hours=4)  # close of bar 3


def test_hydra_rule_order_cascade_beats_squeeze_beats_vol():
    close = [100, 99, 98, 97, 96]
    n = len(close)
    base = {"funding": [0.002] * n, "oi": [0.05] * n}
    f = frame(close, liq=[0.0, 0.1, 0.0, 0.0, 0.0], **base)
    out = hydra_regime(
        f, 2, funding_col="funding", oi_delta_col="oi", liq_velocity_col="liq", vol_threshold=0.0
    )
    assert out["regime"][0] == HydraRegime.CASCADE_RISK  # liq spike at bar 1 inside (0, 2]
    assert (
        out["regime"][1] == HydraRegime.SQUEEZE_SHORT
    )  # funding>0.1%, OI +10%, falling; vol rule is later
    f2 = frame([100, 101, 102, 103, 104], funding=[-0.002] * n, oi=[0.05] * n)
    out2 = hydra_regime(f2, 2, funding_col="funding", oi_delta_col="oi", vol_threshold=0.0)
    assert out2["regime"][0] == HydraRegime.SQUEEZE_LONG
    out3 = hydra_regime(
        f2, 2, vol_threshold=0.0
    )  # no funding/OI given: rules skipped, vol > 0 fires
    assert out3["regime"][0] == HydraRegime.HIGH_VOLATILITY


def test_hydra_trailing_is_causal_and_rolling_threshold():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    full = hydra_regime(frame(close), 10, forward=False, vol_lookback=50)
    part = hydra_regime(frame(close[:250]), 10, forward=False, vol_lookback=50)
    assert full["regime"][:250].equals(part["regime"])  # prefix-stable: only past data used
    assert full["regime"][:34].null_count() == 34  # window 10 + threshold min 25 samples
    assert (full["t_end"] - full["ts"]).drop_nulls().unique().to_list() == [timedelta(hours=1)]
    fwd = hydra_regime(frame(close), 10, vol_lookback=50)
    # the forward label at t is the trailing rule evaluated on (t, t+10] against the threshold known at t
    assert fwd["ret_sum"][:380].equals(full["ret_sum"].shift(-10)[:380])
    with pytest.raises(LabelError):
        hydra_regime(frame(close), 1)


def test_trend_regime_three_class():
    close = [100.0] * 5 + [110.0] * 3 + [90.0] * 6
    out = trend_regime(frame(close), fast=2, slow=5, band=0.02)
    names = out["regime_name"].to_list()
    assert names[:4] == [None] * 4
    assert names[4] == "RANGING"
    assert names[6] == "TRENDING_UP"  # sma2=110 > sma5=104*1.02
    assert names[10] == "TRENDING_DOWN"  # sma2=90 < sma5=98*0.98
    assert names[-1] == "RANGING"  # both SMAs settle at 90
    assert out["regime"].dtype == pl.Int8 and out["regime"][6] == 1


def test_market_state_four_rules_in_order():
    f = frame(
        [1.0] * 6,
        adx_14=[0.30, 0.10, 0.30, 0.22, 0.10, None],
        atr_percentile=[0.50, 0.30, 0.80, 0.50, 0.50, 0.5],
    )
    out = market_state(f)
    assert out["regime"].to_list() == [
        MarketState.STRONG_TREND,
        MarketState.RANGING,
        MarketState.VOLATILE,
        MarketState.CHOPPY,
        MarketState.CHOPPY,
        None,
    ]
    assert out["t_end"][0] == T0 + timedelta(hours=1)
