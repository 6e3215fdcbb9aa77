"""F4 structure: causal volume profile (block and rolling), round numbers, daily high/low."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hydraquant.features.registry import FeatureContext, build_features
from hydraquant.features.structure import atr_proxy
from hydraquant.features.volatility import atr
from tests.unit import feature_data as fd
from tests.unit.test_features_orderflow import assert_values, feat, make_bars

BIN_TOL = 100 * 1.1e-4  # bins are 2 bp wide: a bin centre is within 1 bp of the prices in it

# three UTC-aligned 5-minute blocks of 1m bars
CLOSE = [100.0, 100.0, 101.0, 102.0, 101.0] + [105.0] * 5 + [104.0, 105.0, 106.0, 105.0, 104.0]
VOLUME = [1.0, 5.0, 1.0, 1.0, 1.0] + [1.0] * 5 + [2.0] * 5


def block_bars(**over: list[float]) -> pl.DataFrame:
    cols = {"close": CLOSE, "volume": VOLUME, **over}
    return make_bars("1m", **cols)


def test_block_profile_uses_only_the_previous_completed_block() -> None:
    b = block_bars()
    poc = feat(b, "dist_poc", "1m")
    lvn = feat(b, "dist_lvn", "1m")
    assert np.isnan(poc[:5]).all() and np.isnan(lvn[:5]).all()  # no completed block yet
    # block 0 profile: 100 -> 6, 101 -> 2, 102 -> 1  => POC 100, LVN 102
    np.testing.assert_allclose(poc[5:10], 5.0, atol=BIN_TOL)
    np.testing.assert_allclose(lvn[5:10], 3.0, atol=BIN_TOL)
    # block 1 traded only at 105: POC = LVN = 105
    np.testing.assert_allclose(poc[10:], np.abs(np.array(CLOSE[10:]) - 105.0), atol=BIN_TOL)
    np.testing.assert_allclose(lvn[10:], np.abs(np.array(CLOSE[10:]) - 105.0), atol=BIN_TOL)


def test_block_profile_is_blind_to_its_own_block() -> None:
    """The seed's leak: a bar's POC came from its whole block, including later bars."""
    base = feat(block_bars(), "dist_poc", "1m")
    volume = list(VOLUME)
    volume[8] = 50.0  # a huge bar at 105 late in block 1
    close = list(CLOSE)
    close[8] = 103.0
    moved = feat(block_bars(volume=volume, close=close), "dist_poc", "1m")
    assert_values(moved[:8], base[:8])
    np.testing.assert_allclose(moved[10:], np.abs(np.array(CLOSE[10:]) - 103.0), atol=BIN_TOL)


def test_block_profile_after_a_gap_is_nan_and_ties_go_to_the_lower_price() -> None:
    b = block_bars().filter(~pl.int_range(pl.len()).is_between(5, 9))  # block 1 missing
    assert np.isnan(feat(b, "dist_poc", "1m")[5:]).all()
    tie = make_bars(
        "1m",
        close=[100.0, 101.0, 100.0, 101.0, 100.5, 103.0],
        volume=[2.0, 2.0, 2.0, 2.0, 4.0, 1.0],
    )
    # block 0: 100 -> 4, 101 -> 4, 100.5 -> 4: all tied -> lowest price bin (100) for POC and LVN
    assert feat(tie, "dist_poc", "1m")[5] == pytest.approx(3.0, abs=BIN_TOL)
    assert feat(tie, "dist_lvn", "1m")[5] == pytest.approx(3.0, abs=BIN_TOL)


def test_rolling_profile_includes_the_current_bar_and_drops_old_ones() -> None:
    b = block_bars()
    poc = feat(b, "dist_poc_roll", "1m")
    lvn = feat(b, "dist_lvn_roll", "1m")
    assert np.isnan(poc[:4]).all()
    # rows 0-4: POC 100 (6), LVN 102 (1); row 4 closes at 101
    assert poc[4] == pytest.approx(1.0, abs=BIN_TOL) and lvn[4] == pytest.approx(1.0, abs=BIN_TOL)
    # rows 1-5: 100 -> 5, 101 -> 2, 102 -> 1, 105 -> 1: LVN ties 102/105 -> 102; close 105
    assert poc[5] == pytest.approx(5.0, abs=BIN_TOL) and lvn[5] == pytest.approx(3.0, abs=BIN_TOL)
    # rows 5-9 all at 105 -> both levels at 105
    assert poc[9] == pytest.approx(0.0, abs=BIN_TOL) and lvn[9] == pytest.approx(0.0, abs=BIN_TOL)


def test_atr_normalised_distances_divide_by_the_5m_atr_proxy() -> None:
    b = block_bars()
    proxy = atr_proxy(FeatureContext(b, "1m"))
    r = np.abs(np.diff(CLOSE) / np.array(CLOSE[:-1]))
    assert proxy[7] == pytest.approx(np.mean(r[2:7]) * CLOSE[7], rel=1e-12)  # returns of bars 3..7
    for name in ("poc", "lvn", "poc_roll", "lvn_roll"):
        raw, scaled = feat(b, f"dist_{name}", "1m"), feat(b, f"dist_{name}_atr", "1m")
        assert_values(scaled, raw / (proxy + 1e-6), tol=1e-12)


def test_dist_to_round_number_in_units_of_the_level_spacing() -> None:
    b = make_bars("1h", close=[60250.0, 2450.0, 0.5, 99.5, 1000.0])
    # spacing: 1000, 100, 0.01, 1, 100
    assert_values(feat(b, "dist_to_round_number", "1h"), [0.25, 0.5, 0.0, 0.5, 0.0], tol=1e-9)


def test_daily_high_low_are_the_utc_day_so_far() -> None:
    n = 48  # two UTC days of 1h bars
    high = [101.0] * n
    low = [99.0] * n
    high[20], low[30] = 105.0, 96.0  # day-1 spike, day-2 dip
    b = make_bars("1h", high=high, low=low, close=[100.0] * n)
    a = atr(FeatureContext(b, "1h"))
    day_high = np.r_[[101.0] * 20, [105.0] * 4, [101.0] * 24]
    day_low = np.r_[[99.0] * 30, [96.0] * 18]
    assert_values(feat(b, "dist_daily_high_atr", "1h"), (day_high - 100.0) / a)
    assert_values(feat(b, "dist_daily_low_atr", "1h"), (100.0 - day_low) / a)
    near_hi = feat(b, "near_daily_high", "1h")
    near_lo = feat(b, "near_daily_low", "1h")
    assert np.isnan(near_hi[:13]).all()
    assert (
        near_hi[19] == 1.0 and near_hi[21] == 0.0 and near_hi[24] == 1.0
    )  # the high resets at midnight
    assert near_lo[29] == 1.0 and near_lo[31] == 0.0
    combo = feat(b, "near_daily_high_low", "1h")
    assert combo[21] == -1.0 and combo[31] == 1.0 and combo[19] == 0.0


def test_real_klines_structure_smoke(real_data_dir: object) -> None:
    k = fd.spot_klines(3000)
    names = [
        "dist_poc",
        "dist_lvn",
        "dist_poc_atr",
        "dist_lvn_roll_atr",
        "dist_to_round_number",
        "near_daily_high_low",
    ]
    out = build_features(k, names, interval="1m")
    tail = out.tail(2500)
    for name in names:
        assert tail.get_column(name).is_nan().sum() == 0, name
    close = k.get_column("close").tail(2500)
    # a 5-minute BTC profile sits within a few hundred dollars of the price
    assert (tail.get_column("dist_poc") < 0.02 * close).all()
    assert tail.get_column("dist_to_round_number").is_between(0, 0.5).all()
    assert set(tail.get_column("near_daily_high_low").unique().to_list()) <= {-1.0, 0.0, 1.0}
