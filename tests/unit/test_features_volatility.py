"""F3 volatility: exact values on hand-built bars, scale invariance, real-data smoke."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.features.registry import FeatureContext, build_features
from hydraquant.features.volatility import atr
from tests.unit import feature_data as fd
from tests.unit.test_features_orderflow import NAN, assert_values, feat, make_bars


def test_vol_is_sample_std_of_simple_returns() -> None:
    close = [100.0, 101.0, 100.0, 102.0, 101.0, 103.0]
    b = make_bars("15s", close=close)  # 1 m = 4 bars
    r = np.diff(close) / np.array(close[:-1])
    expected = [NAN] * 4 + [np.std(r[0:4], ddof=1), np.std(r[1:5], ddof=1)]
    assert_values(feat(b, "vol_1m", "15s"), expected)


def test_vol_window_shorter_than_two_bars_uses_two() -> None:
    b = make_bars("1m", close=[100.0, 110.0, 99.0])
    r1, r2 = 0.1, 99.0 / 110.0 - 1.0
    assert_values(feat(b, "vol_1m", "1m"), [NAN, NAN, np.std([r1, r2], ddof=1)])


def test_rv_is_root_sum_of_squared_log_returns() -> None:
    close = [100.0, 101.0, 99.0, 100.0, 100.0, 102.0, 101.0]
    b = make_bars("1m", close=close)  # 5 m = 5 bars
    lr = np.diff(np.log(close))
    assert_values(
        feat(b, "rv_5m", "1m"),
        [NAN] * 5 + [np.sqrt(np.sum(lr[0:5] ** 2)), np.sqrt(np.sum(lr[1:6] ** 2))],
    )


def test_vol_ratio_rank_and_regime() -> None:
    # 100 s bars: 1 m -> 2 bars (min), 5 m -> 3 bars, 500 s -> 5 bars
    close = [100.0, 100.5, 100.0, 101.0, 100.0, 100.2, 100.0, 100.1, 100.0, 103.0, 100.0]
    b = make_bars("100s", close=close)
    r = np.r_[NAN, np.diff(close) / np.array(close[:-1])]
    vol5 = np.array([NAN] * 3 + [np.std(r[i - 2 : i + 1], ddof=1) for i in range(3, 11)])
    vol1 = np.array([NAN] * 2 + [np.std(r[i - 1 : i + 1], ddof=1) for i in range(2, 11)])
    assert_values(feat(b, "vol_ratio", "100s"), vol1 / (vol5 + 1e-8))
    rank = feat(b, "vol_rank", "100s")
    assert_values(rank[:7], [NAN] * 7)
    for i in range(7, 11):
        window = vol5[i - 4 : i + 1]
        assert rank[i] == pytest.approx(
            (np.sum(window < vol5[i]) + 1 + (np.sum(window == vol5[i]) - 1) / 2) / 5
        )
    regime = feat(b, "vol_regime", "100s")
    expected = np.where(rank <= 0.3, 0.0, np.where(rank <= 0.7, 1.0, 2.0))
    assert_values(regime, np.where(np.isnan(rank), NAN, expected))
    assert regime[9] == 2.0  # the 3 % jump is the highest vol of its window


def test_wilder_atr_by_hand() -> None:
    b = make_bars(
        "1m",
        high=[10.0, 12.0, 11.0, 15.0, 13.0],
        low=[8.0, 9.0, 10.0, 11.0, 12.0],
        close=[9.0, 11.0, 10.5, 14.0, 12.5],
    )
    # TR: 2 ; max(3, |12-9|, |9-9|)=3 ; max(1, 0, 1)=1 ; max(4, 4.5, 0.5)=4.5 ; max(1, 1, 2)=2
    got = atr(FeatureContext(b, "1m"), period=3)
    a2 = (2 + 3 + 1) / 3
    a3 = (a2 * 2 + 4.5) / 3
    a4 = (a3 * 2 + 2) / 3
    assert_values(got, [NAN, NAN, a2, a3, a4])


def test_atr_14_restarts_after_a_missing_bar() -> None:
    n = 40
    high = [102.0] * n
    high[20] = NAN
    b = make_bars("1m", high=high, low=[100.0] * n, close=[101.0] * n)
    got = feat(b, "atr_14", "1m")
    assert np.isnan(got[:13]).all() and np.allclose(got[13:20], 2.0)
    # bar 21 is the first with a true range again: 14 fresh bars -> first value at 34
    assert np.isnan(got[20:34]).all() and np.allclose(got[34:], 2.0)


def test_atr_percentile_of_rising_atr_is_one() -> None:
    n = 540
    ranges = np.linspace(1.0, 5.0, n)
    b = make_bars("1m", high=list(100 + ranges), low=[100.0] * n, close=list(100 + ranges / 2))
    pct = feat(b, "atr_percentile", "1m")
    first = 13 + 499
    assert np.isnan(pct[:first]).all()
    np.testing.assert_allclose(pct[first:], 1.0)


def test_bollinger_width_and_squeeze() -> None:
    close = [1.0, 3.0] * 10 + [2.0] * 5
    b = make_bars("1m", close=close)
    width = feat(b, "bb_width", "1m")
    assert np.isnan(width[:19]).all()
    assert width[19] == pytest.approx(2.0)  # mean 2, population std 1: (4 * 1) / 2
    # 120-bar squeeze flag: bars with the narrowest bands of their window are flagged
    n = 200
    wave = [100 + (3.0 if i < 150 else 0.3) * np.sin(i) for i in range(n)]
    sq = feat(make_bars("1m", close=wave), "bb_squeeze", "1m")
    assert np.isnan(sq[:138]).all() and set(np.unique(sq[138:])) <= {0.0, 1.0}
    assert sq[138:150].sum() < sq[175:].sum()
    assert np.all(sq[175:] == 1.0)


def test_vol_zscore_is_trailing_z_of_vol_5m() -> None:
    rng = np.random.default_rng(1)
    close = list(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 30))))
    b = make_bars("5m", close=close)  # vol_5m -> 2 bars, 1 h -> 12 bars
    r = np.r_[NAN, np.diff(close) / np.array(close[:-1])]
    vol5 = np.array([NAN, NAN] + [np.std(r[i - 1 : i + 1], ddof=1) for i in range(2, 30)])
    z = feat(b, "vol_zscore", "5m")
    assert np.isnan(z[:13]).all()
    w = vol5[18:30]
    assert z[29] == pytest.approx((vol5[29] - w.mean()) / (w.std(ddof=1) + 1e-6), rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    # a move of 1e-12 is below what a rescaled float price can represent (its return is only
    # exact to ~1e-16 / 1e-12 = 1e-4 relative), so such moves are excluded, not the code's fault
    st.lists(st.floats(-0.05, 0.05).filter(lambda r: r == 0 or abs(r) > 1e-6), min_size=30, max_size=80),
    st.floats(0.01, 1e5),
)
def test_return_based_vol_is_price_scale_invariant(rets: list[float], scale: float) -> None:
    close = 100 * np.cumprod(1 + np.asarray(rets))
    a = make_bars("1m", close=list(close))
    b = make_bars("1m", close=list(close * scale))
    for name in ("vol_5m", "rv_15m", "vol_ratio"):  # (ranks of float-tied vols are not)
        np.testing.assert_allclose(
            feat(a, name, "1m"), feat(b, name, "1m"), rtol=1e-7, atol=1e-12, equal_nan=True
        )


def test_real_klines_volatility_smoke(real_data_dir: object) -> None:
    k = fd.spot_klines(5000)
    names = [
        "vol_1m",
        "vol_5m",
        "rv_1h",
        "vol_rank",
        "vol_regime",
        "atr_14",
        "atr_percentile",
        "bb_width",
        "bb_squeeze",
    ]
    out = build_features(k, names, interval="1m").tail(4000)
    for name in names:
        assert out.get_column(name).is_nan().sum() == 0, name
    assert set(out.get_column("vol_regime").unique().to_list()) == {0.0, 1.0, 2.0}
    atr14 = out.get_column("atr_14")
    rng = (k.get_column("high") - k.get_column("low")).tail(4000)
    assert 0.5 < atr14.mean() / rng.mean() < 2.0  # ATR is on the scale of the bar range
    assert ((out.get_column("atr_percentile") > 0) & (out.get_column("atr_percentile") <= 1)).all()
    bbw = out.get_column("bb_width")
    assert (bbw > 0).all() and bbw.median() < 0.05
    assert 0.1 < out.get_column("bb_squeeze").mean() < 0.5
    # BTC 1m: sum of squared log returns over 1 h is ~0.1-2 %
    assert 0.0005 < pl.Series(out.get_column("rv_1h")).median() < 0.05


@pytest.mark.parametrize("interval", ["1m", "250ms"])
def test_declared_warmup_covers_the_nan_rows(interval: str, real_data_dir: object) -> None:
    """``spec.warmup_bars(interval)`` is an upper bound: after it, F1-F4 values are finite."""
    from hydraquant.features.registry import registry

    frame = fd.futures_kline_bars(3000) if interval == "1m" else fd.trade_bars("250ms")
    reg = registry()
    mine = [
        n
        for n, s in reg.items()
        if s.group in ("orderflow", "absorption", "volatility", "structure")
        and s.warmup_bars(interval) < frame.height - 100
    ]
    out = build_features(frame, mine, interval=interval)
    for name in mine:
        if name in ("MOI_roc_1s", "MOI_roc_5s"):
            continue  # 0/0 percent change of a flat MOI is NaN by definition
        v = out.get_column(name).to_numpy()[reg[name].warmup_bars(interval) :]
        assert np.isfinite(v).all(), f"{name}: NaN after its declared warm-up"


def test_rolling_pct_rank_matches_polars_average_ties_reference():
    """The Fenwick-tree kernel must equal polars' rolling_rank(method='average') / n, NaN windows included."""
    from hydraquant.features.inputs import rolling_pct_rank

    rng = np.random.default_rng(7)
    for x, n in ((rng.integers(0, 4, 3000).astype(float), 25), (rng.normal(size=5000), 300)):
        x[100] = np.nan
        ref = (pl.Series(x).fill_nan(None).rolling_rank(n, method="average", min_samples=n) / n).to_numpy()
        np.testing.assert_allclose(rolling_pct_rank(x, n), ref.astype(float), rtol=0, atol=1e-12, equal_nan=True)


def test_round_mantissa_keeps_specials_and_rounds_to_nearest() -> None:
    from hydraquant.features.inputs import round_mantissa

    x = np.array([1.0, 1.0 + 2.0**-40, 1.0 + 2.0**-20, -3.5, np.nan, np.inf, -np.inf, 0.0])
    out = round_mantissa(x, 28)
    assert out[0] == 1.0 and out[1] == 1.0  # 2**-40 is below the 28th bit: rounded away
    assert out[2] == 1.0 + 2.0**-20  # kept: within 28 significant bits
    assert out[3] == -3.5 and np.isnan(out[4]) and out[5] == np.inf and out[6] == -np.inf and out[7] == 0.0


def test_rolling_rank_is_the_same_from_any_history_start() -> None:
    """Live/predict rebuild features from a warm-up window, the run from the full history.

    Rolling std from different starts differs in the last bits, and a quiet market has many
    exact ties (windows of zero returns); the rank must not depend on where history starts.
    """
    from hydraquant.features.inputs import rolling_pct_rank, rolling_std

    rng = np.random.default_rng(0)
    r = rng.normal(0, 1e-4, 200_000) * (rng.random(200_000) < 0.3)
    n, rank_n, off = 1200, 2400, 50_000
    full, suffix = rolling_std(r, n), rolling_std(r[off:], n)
    assert (full[off + n:] != suffix[n:]).mean() > 0.1  # the std itself does differ in the last bits
    ranked_full = rolling_pct_rank(full, rank_n)[off + n + rank_n:]
    ranked_suffix = rolling_pct_rank(suffix, rank_n)[n + rank_n:]
    np.testing.assert_array_equal(ranked_full, ranked_suffix)
