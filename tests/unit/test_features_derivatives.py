"""F8 derivatives & book features (side inputs aligned to bar close) and F9 cross-sectional ranks."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.errors import DataError
from hydraquant.features import build_features
from hydraquant.features import derivatives as der
from hydraquant.features.cross_section import cs_rank, symbol_onehot
from hydraquant.features.registry import FeatureContext, FeatureError, align_side_input
from tests.conftest import real_file
from tests.unit.test_features_technical import T0, btc_1m, make_bars

TS = pl.Datetime("us", "UTC")


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def side_frame(times, **cols) -> pl.DataFrame:
    return pl.DataFrame({"ts": pl.Series([at(h) for h in times], dtype=TS), **cols})


def run(
    func, bars: pl.DataFrame, interval: str, side: dict[str, pl.DataFrame], **params
) -> np.ndarray:
    aligned = {k: align_side_input(bars, v, interval) for k, v in side.items()}
    return np.asarray(
        func(FeatureContext(bars, interval, side=aligned, params=params)), dtype=float
    )


HOURLY = make_bars(np.linspace(100, 123, 24), interval="1h")  # 2024-01-01 00:00 .. 23:00


# --- funding ------------------------------------------------------------------------------------

FUNDING = side_frame([0, 8, 16], funding_rate=[0.0001, 0.0004, -0.0002])


def test_funding_rate_is_visible_at_the_bar_that_closes_on_settlement():
    out = build_features(
        HOURLY,
        ["funding_rate", "funding_annualised", "funding_annualized"],
        interval="1h",
        side={"funding": FUNDING},
    )
    rate = out.get_column("funding_rate").to_numpy()
    assert rate[6] == 0.0001  # closes 07:00
    assert rate[7] == 0.0004  # closes 08:00: the 08:00 settlement is known
    assert rate[15] == -0.0002
    np.testing.assert_allclose(out.get_column("funding_annualised").to_numpy(), rate * 1095)
    assert np.array_equal(
        out.get_column("funding_annualized").to_numpy(),
        out.get_column("funding_annualised").to_numpy(),
    )


def test_funding_annualised_uses_the_funding_interval():
    four_hourly = FUNDING.with_columns(pl.Series("funding_interval_hours", [4.0, None, 4.0]))
    got = run(der._funding_annualised, HOURLY, "1h", {"funding": four_hourly})
    assert got[0] == pytest.approx(0.0001 * 2190)
    assert got[10] == pytest.approx(0.0004 * 1095)  # null interval: Binance default 8 h
    assert got[20] == pytest.approx(-0.0002 * 2190)


def test_funding_event_statistics():
    rates = [1.0, 2.0, 3.0, 6.0, 6.0]
    events = side_frame([0, 4, 8, 12, 16], funding_rate=rates)
    z = run(der._funding_z, HOURLY, "1h", {"funding": events}, n=3)
    # events become visible at rows 0, 3, 7, 11, 15 (bar closes 01:00, 04:00, 08:00, 12:00, 16:00)
    assert np.isnan(z[:7]).all()
    assert z[7] == pytest.approx(1.0)  # (3 - 2) / 1
    assert z[11] == pytest.approx((6 - statistics.mean([2, 3, 6])) / statistics.stdev([2, 3, 6]))
    assert z[14] == z[11]  # held until the next event
    mom = run(der.funding_momentum, HOURLY, "1h", {"funding": events}, k=3)
    assert np.isnan(mom[:11]).all()
    assert mom[11] == 5.0 and mom[15] == 4.0


def test_funding_z_of_a_constant_rate_is_zero():
    flat = side_frame(list(range(24)), funding_rate=[0.0001] * 24)
    z = run(der._funding_z, HOURLY, "1h", {"funding": flat}, n=5)
    assert np.isnan(z[:4]).all() and (z[4:] == 0).all()


def test_funding_clipped_norm():
    events = side_frame([0, 8, 16], funding_rate=[0.001, 0.01, -0.005])
    out = build_features(
        HOURLY,
        ["funding_clipped_norm", "funding_rate_norm"],
        interval="1h",
        side={"funding": events},
    )
    got = out.get_column("funding_clipped_norm").to_numpy()
    assert got[0] == pytest.approx(1 / 3) and got[7] == 1.0 and got[15] == -1.0
    assert np.array_equal(got, out.get_column("funding_rate_norm").to_numpy())


# --- open interest ------------------------------------------------------------------------------

OI = side_frame(
    [0, 2, 4, 6],
    open_interest=[100.0, 110.0, 99.0, 99.0],
    long_short_ratio=[1.5, 1.2, None, 0.9],
    taker_buy_sell_ratio=[1.1, 0.9, 1.0, 1.3],
)


def test_oi_delta_change_and_ratios():
    out = build_features(
        HOURLY,
        ["oi_delta_pct", "oi_change_4h", "long_short_ratio", "oi_taker_buy_sell_ratio"],
        interval="1h",
        side={"open_interest": OI},
    )
    delta = out.get_column("oi_delta_pct").to_numpy()
    assert np.isnan(delta[0])
    assert delta[1] == pytest.approx(0.1)  # 02:00 observation visible at the bar closing 02:00
    assert delta[3] == pytest.approx(99 / 110 - 1)
    assert delta[5] == 0.0 and delta[10] == 0.0
    change = out.get_column("oi_change_4h").to_numpy()  # 4 bars of 1h
    assert np.isnan(change[:4]).all()
    assert change[4] == pytest.approx(
        99 / 100 - 1
    )  # OI at 05:00 close (99) vs at 01:00 close (100)
    assert change[5] == pytest.approx(99 / 110 - 1)
    assert (
        out.get_column("long_short_ratio").to_numpy()[3]
        != out.get_column("long_short_ratio").to_numpy()[3]
    )  # null -> NaN
    assert out.get_column("oi_taker_buy_sell_ratio").to_numpy()[5] == 1.3


def test_oi_z_and_clip():
    oi = side_frame(list(range(8)), open_interest=[100.0, 101, 103, 106, 110, 400, 400, 400])
    z = run(der._oi_z, HOURLY, "1h", {"open_interest": oi}, n=3)
    pct = np.array([np.nan, 0.01, 2 / 101, 3 / 103, 4 / 106])
    assert np.isnan(z[:3]).all()
    # the bar closing 01:00 already sees the 01:00 observation, so the 00:00 one is never an event
    assert z[3] == pytest.approx((pct[4] - pct[2:5].mean()) / pct[2:5].std(ddof=1))
    change = run(der._oi_change, HOURLY, "1h", {"open_interest": oi}, window="4h")
    assert change[5] == 1.0  # +263 % clipped to +100 % (seed 004)


def test_oi_price_divergence_signs():
    close = np.array([100.0, 101, 102, 101, 100, 100])
    bars = make_bars(close, interval="1h")
    oi = side_frame(
        [h + 0.5 for h in range(6)], open_interest=[10.0, 11, 12, 13, 13, 12]
    )  # row i sees obs i
    got = run(der.oi_price_divergence, bars, "1h", {"open_interest": oi}, window="1h")
    # rows: price up & OI up -> -1 (confirming); price down & OI up -> +1; OI flat -> 0; price flat -> 0
    assert np.isnan(got[0])
    assert got[1:].tolist() == [-1.0, -1.0, 1.0, 0.0, 0.0]


# --- liquidations ---------------------------------------------------------------------------------

LIQ_RAW = side_frame(
    [0.5, 0.5, 1.5, 3.2, 3.7],
    side=["long", "LONG", "short", "short", "long"],
    notional=[100.0, 50.0, 30.0, 20.0, 80.0],
)


def test_prepare_liquidations_running_totals():
    prepared = der.prepare_liquidations(LIQ_RAW)
    assert prepared.get_column("cum_long_notional").to_list() == [150.0, 150.0, 150.0, 230.0]
    assert prepared.get_column("cum_short_notional").to_list() == [0.0, 30.0, 50.0, 50.0]
    with pytest.raises(DataError, match="side"):
        der.prepare_liquidations(LIQ_RAW.with_columns(pl.lit("SELL").alias("side")))


def test_liquidation_window_features():
    prepared = der.prepare_liquidations(LIQ_RAW)
    imb = run(der.liq_imbalance, HOURLY, "1h", {"liquidations": prepared}, window="2h")
    # window of 2 bars = (close[i-2], close[i]]; row 1 would need the total at 00:00, before the data
    assert np.isnan(imb[:2]).all()
    assert imb[2] == -1.0  # (01:00, 03:00]: short 30 only
    assert imb[3] == pytest.approx((80 - 20) / 100)  # (02:00, 04:00]: short 20, long 80
    assert imb[4] == pytest.approx((80 - 20) / 100)
    assert imb[5] == 0.0  # nothing liquidated in (04:00, 06:00]
    assert imb[7] == 0.0  # nothing liquidated
    oi = side_frame([0], open_interest=[10.0])
    vel = run(
        der.liq_velocity, HOURLY, "1h", {"liquidations": prepared, "open_interest": oi}, window="2h"
    )
    assert vel[4] == pytest.approx(100 / (10 * HOURLY.get_column("close").to_numpy()[4]))


def test_builder_prepares_raw_liquidation_events():
    raw = build_features(HOURLY, ["liq_imbalance", "liq_z"], interval="1h", side={"liquidations": LIQ_RAW})
    prepared = build_features(
        HOURLY, ["liq_imbalance", "liq_z"], interval="1h", side={"liquidations": der.prepare_liquidations(LIQ_RAW)}
    )
    assert raw.equals(prepared)


# --- book -------------------------------------------------------------------------------------------


def test_book_features():
    book = side_frame(
        [0.1, 0.9, 2.5],
        bid_price=[99.0, 100.0, 101.0],
        bid_qty=[3.0, 1.0, 2.0],
        ask_price=[101.0, 100.5, 101.01],
        ask_qty=[1.0, 1.0, 6.0],
    )
    out = build_features(
        HOURLY,
        [
            "book_imbalance",
            "ob_imbalance",
            "spread_bps",
            "bid_depth_usd",
            "ask_depth_usd",
            "book_depth_usd",
        ],
        interval="1h",
        side={"book": book},
    )
    row0, row2 = out.row(0, named=True), out.row(2, named=True)
    assert row0["book_imbalance"] == 0.0  # latest update before 01:00 is the 00:54 one
    assert row0["spread_bps"] == pytest.approx(0.5 / 100.25 * 1e4)
    assert (
        row2["book_imbalance"] == pytest.approx(-0.5)
        and row2["ob_imbalance"] == row2["book_imbalance"]
    )
    assert row2["spread_bps"] == pytest.approx(0.01 / 101.005 * 1e4)
    assert row2["bid_depth_usd"] == 202.0 and row2["ask_depth_usd"] == pytest.approx(606.06)
    assert row2["book_depth_usd"] == pytest.approx(808.06)


# --- missing inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("funding_z", "funding"),
        ("oi_z", "open_interest"),
        ("spread_bps", "book"),
        ("liq_z", "liquidations"),
    ],
)
def test_missing_side_input_is_named(name, missing):
    with pytest.raises(FeatureError, match=missing):
        build_features(HOURLY, [name], interval="1h")


def test_all_skips_features_without_their_input():
    out = build_features(HOURLY, "all", interval="1h", side={"funding": FUNDING})
    assert (
        "funding_rate" in out.columns
        and "oi_z" not in out.columns
        and "spread_bps" not in out.columns
    )


# --- real data ------------------------------------------------------------------------------------------


def test_real_funding_on_real_klines(real_data_dir):
    raw = pl.read_csv(
        real_file(
            "binance-um-futures-funding-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2019-09-10_2024-12-31.csv.gz"
        ),
        schema_overrides={"markPrice": pl.Float64},
    )
    funding = raw.select(
        pl.from_epoch(pl.col("fundingTime").cast(pl.Int64), time_unit="ms").cast(TS).alias("ts"),
        pl.col("fundingRate").cast(pl.Float64).alias("funding_rate"),
    ).sort("ts")
    bars = btc_1m()
    names = [
        "funding_rate",
        "funding_z",
        "funding_annualised",
        "funding_momentum",
        "funding_clipped_norm",
    ]
    out = build_features(bars, names, interval="1m", side={"funding": funding})
    rate = out.get_column("funding_rate").to_numpy()
    assert np.isfinite(rate).all() and np.abs(rate).max() < 0.003
    # the rate changes only on the first bar CLOSING at/after a 00/08/16 UTC settlement; some settlements
    # are stamped 1 ms late (e.g. 1730102400001), so they appear one bar later -- never earlier.
    close = out.filter(pl.col("funding_rate").diff() != 0).get_column("ts") + timedelta(minutes=1)
    since = close - close.dt.truncate("8h")
    assert close.len() > 30 and (since <= timedelta(minutes=1)).all()
    z = out.get_column("funding_z").to_numpy()
    # 100 settlements must be SEEN by the bars first (~33 days): side history before the first bar is not
    # passed to features by the registry.
    assert np.isnan(z[:30_000]).all()
    assert np.isfinite(z[-1000:]).all() and np.abs(z[-1000:]).max() < 10


# --- F9 cross-sectional ------------------------------------------------------------------------------------


def test_cs_rank_hand_panel():
    panel = pl.DataFrame(
        {
            "ts": [1, 1, 1, 2, 2, 2, 3],
            "symbol": ["A", "B", "C", "A", "B", "C", "A"],
            "x": [0.3, 0.1, 0.2, 5.0, float("nan"), 5.0, 1.0],
        }
    )
    got = panel.select(cs_rank("x")).to_series().to_list()
    assert got[:3] == [1.0, 0.0, 0.5]
    assert got[3] == 0.5 and got[5] == 0.5 and got[4] is None  # tie; NaN stays missing
    assert got[6] == 0.5  # alone at its ts


def test_cs_rank_through_the_builder():
    n = 20
    frames = []
    for k, sym in enumerate(["AAA", "BBB", "CCC"]):
        close = 100 * (1 + 0.01 * (k + 1)) ** np.arange(n)  # CCC grows fastest
        frames.append(make_bars(close).with_columns(pl.lit(sym).alias("symbol")))
    out = build_features(pl.concat(frames), ["cs_rank_ret_15"], interval="1m")
    assert out.columns == ["ts", "symbol", "cs_rank_ret_15"]
    last = out.filter(pl.col("ts") == out.get_column("ts").max()).sort("symbol")
    assert last.get_column("cs_rank_ret_15").to_list() == [0.0, 0.5, 1.0]
    assert np.isnan(
        out.filter(pl.col("ts") == out.get_column("ts").min())
        .get_column("cs_rank_ret_15")
        .to_numpy()
    ).all()


def test_symbol_onehot():
    frame = pl.DataFrame({"ts": [1, 1, 2], "symbol": ["ETHUSDT", "BTCUSDT", "ETHUSDT"]})
    out = symbol_onehot(frame, ["BTCUSDT", "ETHUSDT", "SOLUSDT"])
    assert out.columns[-3:] == ["pair_BTCUSDT", "pair_ETHUSDT", "pair_SOLUSDT"]
    assert out.get_column("pair_ETHUSDT").to_list() == [1.0, 0.0, 1.0]
    assert out.get_column("pair_SOLUSDT").to_list() == [0.0, 0.0, 0.0]
    with pytest.raises(FeatureError, match="DOGEUSDT"):
        symbol_onehot(frame.with_columns(pl.lit("DOGEUSDT").alias("symbol")), ["BTCUSDT"])
