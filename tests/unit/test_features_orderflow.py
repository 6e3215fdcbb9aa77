"""F1 order flow and F2 absorption: exact values on hand-built bars, properties, real-data smoke."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.features.inputs import prepare_bars, rolling_pct_rank
from hydraquant.features.registry import build_features, feature_sets, registry
from hydraquant.timeframes import interval_us
from tests.unit import feature_data as fd

NAN = float("nan")
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def make_bars(interval: str, n: int | None = None, **cols: list[float]) -> pl.DataFrame:
    """Trade bars with defaults (flat price 100, volume 1, no imbalance) overridden by ``cols``."""
    n = n or len(next(iter(cols.values())))
    step = interval_us(interval)
    base = {
        "ts": pl.Series([T0.timestamp() * 1e6 + i * step for i in range(n)]).cast(pl.Int64),
        "open": [100.0] * n,
        "high": [100.0] * n,
        "low": [100.0] * n,
        "close": [100.0] * n,
        "volume": [1.0] * n,
        "buy_volume": [0.5] * n,
        "signed_volume": [0.0] * n,
        "trade_count": [1] * n,
    }
    base.update({k: v for k, v in cols.items()})
    frame = pl.DataFrame(base)
    return frame.with_columns(
        pl.from_epoch(pl.col("ts"), time_unit="us").dt.replace_time_zone("UTC"),
        pl.col("trade_count").cast(pl.Int64),
    )


def feat(frame: pl.DataFrame, name: str, interval: str) -> np.ndarray:
    return build_features(frame, [name], interval=interval).get_column(name).to_numpy()


def assert_values(got: np.ndarray, expected: list[float], tol: float = 1e-12) -> None:
    np.testing.assert_allclose(
        got, np.asarray(expected, dtype=float), rtol=tol, atol=tol, equal_nan=True
    )


# --------------------------------------------------------------------------- prepare_bars


def test_prepare_bars_derives_order_flow_from_taker_volume() -> None:
    k = pl.DataFrame({"ts": [1, 2], "volume": [10.0, 4.0], "taker_buy_volume": [7.0, 1.0]})
    out = prepare_bars(k)
    assert out.get_column("buy_volume").to_list() == [7.0, 1.0]
    assert out.get_column("signed_volume").to_list() == [4.0, -2.0]  # 7 - 3, 1 - 3


def test_prepare_bars_keeps_existing_columns_and_ignores_frames_without_taker_volume() -> None:
    bars = pl.DataFrame(
        {"volume": [10.0], "taker_buy_volume": [7.0], "signed_volume": [99.0], "buy_volume": [1.0]}
    )
    assert prepare_bars(bars).equals(bars)
    plain = pl.DataFrame({"volume": [10.0]})
    assert prepare_bars(plain).equals(plain)


# --------------------------------------------------------------------------- MOI family


def test_moi_is_signed_over_total_volume_in_the_window() -> None:
    b = make_bars(
        "250ms", signed_volume=[1.0, -1.0, 2.0, 0.0, 4.0], volume=[1.0, 1.0, 2.0, 2.0, 4.0]
    )
    assert_values(feat(b, "MOI_250ms", "250ms"), [1.0, -1.0, 1.0, 0.0, 1.0])
    # 1 s = 4 bars: (1 - 1 + 2 + 0) / 6, (-1 + 2 + 0 + 4) / 9
    assert_values(feat(b, "MOI_1s", "250ms"), [NAN, NAN, NAN, 2 / 6, 5 / 9])


def test_moi_without_volume_is_zero_not_nan() -> None:
    b = make_bars("1s", signed_volume=[0.0, 0.0, 3.0], volume=[0.0, 0.0, 3.0])
    assert_values(feat(b, "MOI_1s", "1s"), [0.0, 0.0, 1.0])


def test_sub_bar_window_on_klines_is_the_one_bar_value() -> None:
    b = make_bars("1m", signed_volume=[2.0, -3.0], volume=[4.0, 6.0])
    for name in ("MOI_250ms", "MOI_1s", "MOI_5s"):
        assert_values(feat(b, name, "1m"), [0.5, -0.5])


def test_delta_velocity_and_acceleration_are_differences_of_moi_1s() -> None:
    # on 1 s bars MOI_1s is the per-bar imbalance: [0, 0.5, -0.5, 1, 1, 0, 0.25]
    signed = [0.0, 1.0, -1.0, 2.0, 2.0, 0.0, 0.5]
    b = make_bars("1s", signed_volume=signed, volume=[2.0] * 7)
    assert_values(feat(b, "delta_velocity", "1s"), [NAN, 0.5, -1.0, 1.5, 0.0, -1.0, 0.25])
    assert_values(feat(b, "delta_velocity_1s", "1s"), [NAN, 0.5, -1.0, 1.5, 0.0, -1.0, 0.25])
    assert_values(feat(b, "delta_velocity_5s", "1s"), [NAN] * 5 + [0.0 - 0.0, 0.25 - 0.5])
    assert_values(feat(b, "MOI_acceleration", "1s"), [NAN, NAN, -1.5, 2.5, -1.5, -1.0, 1.25])


def test_moi_roc_is_a_clipped_percent_change() -> None:
    # MOI_1s on 1 s bars: [0.5, 0.25, 0, 0.5, 0]
    b = make_bars("1s", signed_volume=[1.0, 0.5, 0.0, 1.0, 0.0], volume=[2.0] * 5)
    # (0.25-0.5)/0.5, (0-0.25)/0.25, 0.5/0 -> +inf clipped to 10, (0-0.5)/0.5
    assert_values(feat(b, "MOI_roc_1s", "1s"), [NAN, -0.5, -1.0, 10.0, -1.0])
    b0 = make_bars("1s", signed_volume=[0.0, 0.0], volume=[1.0, 1.0])
    assert np.isnan(feat(b0, "MOI_roc_1s", "1s")[1])  # 0/0 is undefined, not 0


def test_moi_std_z_and_aggression_persistence_over_25s() -> None:
    # 5 s bars: 25 s = 5 bars; MOI_1s == per-bar imbalance
    moi = [1.0, -1.0, 1.0, -1.0, 1.0, 1.0]
    b = make_bars("5s", signed_volume=moi, volume=[1.0] * 6)
    std = feat(b, "MOI_std", "5s")
    # window [1,-1,1,-1,1]: mean 0.2, sample var = (3*0.64 + 2*1.44)/4 = 1.2
    assert_values(std[:5], [NAN] * 4 + [np.sqrt(1.2)])
    # window [-1,1,-1,1,1]: same multiset -> same std
    assert std[5] == pytest.approx(np.sqrt(1.2), rel=1e-12)
    assert feat(b, "MOI_z", "5s")[5] == pytest.approx(1.0 / (np.sqrt(1.2) + 1e-6), rel=1e-12)
    # |MOI| is constant 1 -> std 0 -> persistence = mean / 1e-6
    assert feat(b, "AggressionPersistence", "5s")[5] == pytest.approx(1.0 / 1e-6, rel=1e-9)


def test_moi_flip_rate_counts_sign_changes_in_the_last_minute() -> None:
    # 10 s bars: 60 s = 6 bars; signs + + - - + 0 + +
    signed = [1.0, 2.0, -1.0, -1.0, 1.0, 0.0, 1.0, 1.0]
    b = make_bars("10s", signed_volume=signed, volume=[2.0] * 8)
    # changes (row i vs i-1): -, 0,1,0,1,1,1,0 ; first NaN then 6-bar sums from rows 1..6, 2..7
    assert_values(feat(b, "MOI_flip_rate", "10s"), [NAN] * 6 + [4.0, 4.0])


def test_cum_delta_sums_raw_signed_volume() -> None:
    b = make_bars("15s", signed_volume=[1.0, -2.0, 3.0, 5.0, -1.0], volume=[10.0] * 5)
    assert_values(feat(b, "cum_delta_1m", "15s"), [NAN, NAN, NAN, 7.0, 5.0])


def test_trade_intensity_and_its_z_score() -> None:
    counts = [1, 2, 3, 4, 5, 6]
    b = make_bars("5s", trade_count=counts)
    assert_values(feat(b, "trade_intensity", "5s"), [NAN] * 4 + [3.0, 4.0])
    b25 = make_bars("25s", trade_count=counts)  # 125 s = 5 bars
    z = feat(b25, "trade_intensity_z", "25s")
    assert_values(z[:4], [NAN] * 4)
    # window 1..5: mean 3, std sqrt(2.5); (5 - 3) / (sqrt(2.5) + 1e-6)
    assert z[4] == pytest.approx(2.0 / (np.sqrt(2.5) + 1e-6), rel=1e-12)


def test_taker_buy_sell_ratio_over_five_minutes() -> None:
    b = make_bars(
        "1m", volume=[2.0, 2.0, 2.0, 2.0, 2.0, 4.0], buy_volume=[1.0, 2.0, 1.0, 0.0, 1.0, 1.0]
    )
    # 5 bars: buy 5, sell 5 -> 1 ; next: buy 5, sell 7
    assert_values(feat(b, "taker_buy_sell_ratio", "1m"), [NAN] * 4 + [1.0, 5 / 7])
    all_buy = make_bars("1m", volume=[1.0] * 5, buy_volume=[1.0] * 5)
    assert np.isnan(feat(all_buy, "taker_buy_sell_ratio", "1m")[-1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e6), st.floats(0.0, 1.0)), min_size=25, max_size=60))
def test_moi_is_bounded_by_one(rows: list[tuple[float, float]]) -> None:
    volume = [v for v, _ in rows]
    signed = [v * (2 * f - 1) for v, f in rows]
    b = make_bars("250ms", volume=volume, signed_volume=signed)
    for name in ("MOI_250ms", "MOI_1s", "MOI_5s"):
        got = feat(b, name, "250ms")
        ok = got[~np.isnan(got)]
        assert np.all(np.abs(ok) <= 1.0 + 1e-9)


# --------------------------------------------------------------------------- absorption


def test_absorption_and_impact_use_the_relative_move() -> None:
    b = make_bars("1s", close=[100.0, 101.0, 101.0, 99.99], volume=[5.0, 10.0, 4.0, 2.0])
    # moves: 1%, 0 -> floor 1e-6, |99.99/101 - 1| = 0.01
    assert_values(feat(b, "absorption_raw", "1s"), [NAN, 1000.0, 4e6, 200.0], tol=1e-9)
    assert_values(
        feat(b, "price_impact", "1s"),
        [NAN, 0.01 / (10 + 1e-6), 1e-6 / (4 + 1e-6), 0.01 / (2 + 1e-6)],
        tol=1e-9,
    )


def test_absorption_z_is_trailing() -> None:
    # 25 s bars: 125 s = 5 bars; constant 1% moves -> absorption = 100 * volume
    close = [100.0 * 1.01**i for i in range(7)]
    b = make_bars("25s", close=close, volume=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    z = feat(b, "absorption_z", "25s")
    assert_values(z[:5], [NAN] * 5)  # row 0 has no move, so the first full window ends at row 5
    # window absorption [100..500]: mean 300, std 100*sqrt(2.5)
    assert z[5] == pytest.approx(200.0 / (100 * np.sqrt(2.5) + 1e-6), rel=1e-9)


# --------------------------------------------------------------------------- sets and real data


def test_hydra_v3_set_is_the_seed_list_in_order() -> None:
    hydra = feature_sets()["hydra_v3"]
    assert len(hydra) == 28 and len(set(hydra)) == 28
    assert hydra[:7] == (
        "MOI_250ms",
        "MOI_1s",
        "MOI_5s",
        "MOI_z",
        "delta_velocity",
        "delta_velocity_5s",
        "AggressionPersistence",
    )
    assert hydra[-2:] == ("cum_delta_1m", "cum_delta_5m")
    mine = {n for n in hydra if n not in ("hour_sin", "hour_cos", "is_weekend")}
    assert mine <= set(registry())


def test_real_futures_klines_order_flow(real_data_dir: object) -> None:
    k = fd.futures_kline_bars(3000)
    out = build_features(
        k,
        ["MOI_250ms", "MOI_5s", "cum_delta_5m", "taker_buy_sell_ratio", "trade_intensity_z"],
        interval="1m",
    )
    moi = out.get_column("MOI_250ms").to_numpy()
    expected = (2 * k.get_column("taker_buy_volume") - k.get_column("volume")) / k.get_column(
        "volume"
    )
    np.testing.assert_allclose(moi, expected.to_numpy(), rtol=1e-12)
    assert np.array_equal(moi, out.get_column("MOI_5s").to_numpy(), equal_nan=True)  # 5 s < 1 bar
    cum = out.get_column("cum_delta_5m").to_numpy()
    assert np.isnan(cum[:4]).all() and np.isfinite(cum[4:]).all()
    assert cum[10] == pytest.approx(k.get_column("signed_volume")[6:11].sum(), rel=1e-12)
    ratio = out.get_column("taker_buy_sell_ratio").to_numpy()[4:]
    assert np.all(ratio > 0) and 0.5 < np.nanmedian(ratio) < 2.0


def test_real_trade_bars_order_flow(real_data_dir: object) -> None:
    bars = fd.trade_bars("250ms")
    assert bars.height > 500
    assert np.allclose(bars["buy_volume"] * 2 - bars["volume"], bars["signed_volume"])
    names = [
        "MOI_1s",
        "MOI_z",
        "MOI_flip_rate",
        "AggressionPersistence",
        "absorption_z",
        "price_impact_z",
    ]
    out = build_features(bars, names, interval="250ms")
    for name in names:
        v = out.get_column(name).to_numpy()
        assert np.isfinite(v[-100:]).all(), name
    flips = out.get_column("MOI_flip_rate").to_numpy()
    assert np.nanmax(flips) <= 240  # at most one change per bar in 60 s of 250 ms bars


def test_rolling_pct_rank_matches_pandas_average_ties() -> None:
    assert_values(
        rolling_pct_rank(np.array([1.0, 1.0, 1.0, 2.0, 2.0]), 3), [NAN, NAN, 2 / 3, 1.0, 2.5 / 3]
    )


def test_local_trade_aggregation_matches_hydraquant_bars(real_data_dir: object) -> None:
    bars_mod = pytest.importorskip("hydraquant.bars")
    cols = [
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "buy_volume",
        "signed_volume",
        "trade_count",
    ]
    for interval in ("250ms", "1s"):
        ours = fd.aggregate_trades(fd.trades(), interval).select(cols)
        theirs = bars_mod.trades_to_bars(fd.trades(), interval).select(cols)
        assert ours.height == theirs.height > 300
        for c in cols[1:]:
            np.testing.assert_allclose(
                ours[c].to_numpy(), theirs[c].to_numpy(), rtol=1e-9, err_msg=c
            )
