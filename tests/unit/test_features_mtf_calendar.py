"""F6 multi-timeframe (causal HTF join) and F7 calendar features: exact values and real data."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from hydraquant.features import build_features
from hydraquant.features import multi_timeframe as mtf
from hydraquant.features.registry import FeatureContext
from tests.unit.test_features_technical import T0, btc_1m, feat, make_bars, spot_csv

# --- multi-timeframe ---------------------------------------------------------------------


def test_resample_causal_ohlcv():
    close = np.arange(1.0, 9.0)  # 8 hourly bars -> two H4 bars
    frame = make_bars(
        close, open_=close - 0.5, high=close + 1, low=close - 1, volume=np.ones(8), interval="1h"
    )
    htf = mtf.resample_causal(frame, "4h")
    assert htf.height == 2
    assert htf.get_column("open").to_list() == [0.5, 4.5]
    assert htf.get_column("high").to_list() == [5.0, 9.0]
    assert htf.get_column("low").to_list() == [0.0, 4.0]
    assert htf.get_column("close").to_list() == [4.0, 8.0]
    assert htf.get_column("volume").to_list() == [4.0, 4.0]
    assert htf.get_column("htf_close_ts").to_list()[0] == datetime(2024, 1, 1, 4, tzinfo=UTC)


def test_htf_value_visible_only_after_the_higher_bar_closed():
    frame = make_bars(np.arange(1.0, 13.0), interval="1h")
    ctx = FeatureContext(frame, "1h")
    got = mtf._htf_value(ctx, "4h", lambda htf: htf.get_column("close").to_numpy())
    # rows 0-2 close before 04:00: nothing closed yet; row 3 closes at 04:00 exactly.
    assert np.isnan(got[:3]).all()
    assert got[3:].tolist() == [4, 4, 4, 4, 8, 8, 8, 8, 12]


def test_htf_join_with_sub_minute_bars_and_a_gap():
    # 15-minute bars with the 01:45 bar missing: the 00:00-02:00 "2h" bar still closes at 02:00.
    ts = [datetime(2024, 1, 1, h, m, tzinfo=UTC) for h in range(4) for m in (0, 15, 30, 45)]
    ts.remove(datetime(2024, 1, 1, 1, 45, tzinfo=UTC))
    close = np.arange(1.0, len(ts) + 1)
    frame = make_bars(close, interval="15m").with_columns(
        pl.Series("ts", ts, dtype=pl.Datetime("us", "UTC"))
    )
    got = mtf._htf_value(
        FeatureContext(frame, "15m"), "2h", lambda htf: htf.get_column("close").to_numpy()
    )
    # row 6 (01:30, closes 01:45) must not see the 00:00-02:00 bar; row 7 (02:00, closes 02:15) does.
    assert np.isnan(got[:7]).all()
    assert got[7] == 7.0


def test_h4_ema_bias_on_a_linear_series():
    close = 100 + np.arange(48.0)  # 12 H4 bars; H4 closes 103, 107, ... step 4
    out = feat(make_bars(close, interval="1h"), "h4_ema_bias", "1h")
    # EMA10 of a line with step 4 lags by 4 * 4.5 = 18; first EMA on the 10th H4 bar (closes at row 39).
    assert np.isnan(out[:39]).all()
    assert out[39] == pytest.approx(18 / 139)
    assert out[42] == pytest.approx(18 / 139)
    assert out[43] == pytest.approx(18 / 143)


def test_w1_rsi_and_d1_trend_on_daily_bars():
    close = 100 + np.arange(120.0)  # monotonic daily closes from Monday 2024-01-01
    frame = make_bars(close, interval="1d")
    rsi = feat(frame, "w1_rsi_norm", "1d")
    # weekly RSI needs 14 weekly changes = 15 weeks; week 14 closes with day 104.
    assert np.isnan(rsi[:104]).all() and (rsi[104:] == 1.0).all()
    trend = feat(frame, "d1_trend", "1d")
    assert np.isnan(trend[:19]).all() and (trend[19:] == 1.0).all()
    down = feat(make_bars(close[::-1], interval="1d"), "d1_trend", "1d")
    assert (down[19:] == -1.0).all()
    macd_dir = feat(frame, "d1_macd_dir", "1d")
    assert (
        np.isnan(macd_dir[:33]).all() and (macd_dir[33:] == 0).all()
    )  # a line has a flat histogram


def test_price_vs_d1_open_uses_the_days_first_bar():
    close = np.arange(1.0, 49.0)
    frame = make_bars(close, open_=close - 0.5, interval="1h")
    out = feat(frame, "price_vs_d1_open", "1h")
    assert out[0] == pytest.approx(1 / 0.5 - 1)
    assert out[23] == pytest.approx(24 / 0.5 - 1)
    assert out[24] == pytest.approx(25 / 24.5 - 1)  # new UTC day: its own open


def test_htf_features_are_causal_at_cuts_inside_a_higher_bar():
    frame = btc_1m(6000)
    names = ["h4_ema_bias", "h4_rsi_norm", "h4_macd_dir", "d1_trend", "price_vs_d1_open"]
    full = build_features(frame, names, interval="1m")
    for cut in (2000, 3333, 4799):  # mid-H4, mid-H4, one bar before an H4 close
        part = build_features(frame.head(cut), names, interval="1m")
        for name in names:
            np.testing.assert_array_equal(
                part.get_column(name).to_numpy(), full.get_column(name).to_numpy()[:cut]
            )
        bumped = frame.with_columns(
            pl.when(pl.int_range(pl.len()) >= cut)
            .then(pl.col("close") * 1.5)
            .otherwise(pl.col("close"))
            .alias("close")
        )
        changed = build_features(bumped, names, interval="1m")
        for name in names:
            np.testing.assert_array_equal(
                changed.get_column(name).to_numpy()[:cut], full.get_column(name).to_numpy()[:cut]
            )


def test_real_resample_matches_the_exchanges_hourly_bars(real_data_dir):
    minute = btc_1m()
    hourly = spot_csv("binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1h_2022-05-25_2024-12-31.csv.gz")
    ours = mtf.resample_causal(minute, "1h").slice(1, 200)  # the first hour may be partial
    theirs = ours.select("htf_ts").join(hourly.rename({"ts": "htf_ts"}), on="htf_ts", how="left")
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(
            ours.get_column(col).to_numpy(), theirs.get_column(col).to_numpy(), rtol=1e-12
        )
    np.testing.assert_allclose(
        ours.get_column("volume").to_numpy(), theirs.get_column("volume").to_numpy(), rtol=1e-6
    )


def test_real_mtf_smoke(real_data_dir):
    hourly = spot_csv(
        "binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1h_2022-05-25_2024-12-31.csv.gz"
    ).head(8000)
    out = build_features(hourly, "multi_timeframe", interval="1h")
    tail = out.slice(6500)  # W1 MACD signal needs 34 completed weeks
    for name in out.columns[1:]:
        assert np.isfinite(tail.get_column(name).to_numpy()).all(), name
    assert set(np.unique(tail.get_column("h4_macd_dir").to_numpy())) <= {-1.0, 0.0, 1.0}
    assert 0 < tail.get_column("w1_rsi_norm").min() and tail.get_column("w1_rsi_norm").max() < 1
    # a weekly value changes only when a week closes (Monday 00:00 UTC)
    step = pl.col("w1_ema_bias").diff()
    w1 = out.select("ts", step.alias("step")).filter(
        pl.col("step").is_not_nan() & (pl.col("step") != 0)
    )  # NaN sorts above 0 in polars
    assert w1.height > 30
    assert (w1.get_column("ts").dt.weekday() == 7).all() and (
        w1.get_column("ts").dt.hour() == 23
    ).all()


# --- calendar ---------------------------------------------------------------------------------


def test_clock_features_on_a_saturday_afternoon():
    start = datetime(2024, 1, 6, 13, 30, tzinfo=UTC)  # Saturday
    frame = make_bars([1.0, 1.0], interval="15m", start=start)
    out = build_features(frame, "calendar", interval="15m").row(0, named=True)
    assert out["hour_sin"] == pytest.approx(math.sin(2 * math.pi * 13 / 24))
    assert out["hour_cos"] == pytest.approx(math.cos(2 * math.pi * 13 / 24))
    assert out["session_hour_sin"] == pytest.approx(math.sin(2 * math.pi * 13.5 / 24))
    assert out["dow_sin"] == pytest.approx(math.sin(2 * math.pi * 5 / 7))
    assert out["dow_cos"] == pytest.approx(math.cos(2 * math.pi * 5 / 7))
    assert out["is_weekend"] == 1.0
    assert (out["is_asian_session"], out["is_london_session"], out["is_ny_session"]) == (
        0.0,
        1.0,
        1.0,
    )
    assert out["minutes_to_funding"] == pytest.approx(135.0)  # closes 13:45, next settlement 16:00


def test_weekday_and_sessions_over_a_week():
    frame = make_bars(np.ones(7 * 24), interval="1h")  # Monday 00:00 .. Sunday 23:00
    out = build_features(
        frame,
        [
            "is_weekend",
            "is_asian_session",
            "is_london_session",
            "is_ny_session",
            "day_of_week_sin",
            "dow_sin",
            "session_asia",
        ],
        interval="1h",
    )
    weekend = out.get_column("is_weekend").to_numpy()
    assert weekend[: 5 * 24].sum() == 0 and weekend[5 * 24 :].sum() == 48
    hours = np.arange(7 * 24) % 24
    assert np.array_equal(out.get_column("is_asian_session").to_numpy(), (hours < 9).astype(float))
    assert np.array_equal(
        out.get_column("is_london_session").to_numpy(), ((hours >= 7) & (hours < 16)).astype(float)
    )
    assert np.array_equal(
        out.get_column("is_ny_session").to_numpy(), ((hours >= 13) & (hours < 22)).astype(float)
    )
    assert np.array_equal(
        out.get_column("session_asia").to_numpy(), out.get_column("is_asian_session").to_numpy()
    )
    assert np.array_equal(
        out.get_column("day_of_week_sin").to_numpy(), out.get_column("dow_sin").to_numpy()
    )
    assert out.get_column("dow_sin").to_numpy()[0] == 0.0  # Monday = 0


@pytest.mark.parametrize(
    ("start", "interval", "minutes"),
    [
        (
            datetime(2024, 1, 1, 7, 45, tzinfo=UTC),
            "15m",
            480.0,
        ),  # closes at 08:00: that one just settled
        (datetime(2024, 1, 1, 7, 30, tzinfo=UTC), "15m", 15.0),
        (datetime(2024, 1, 1, 23, 59, tzinfo=UTC), "1m", 480.0),
        (datetime(2024, 1, 1, 15, 59, 59, 500000, tzinfo=UTC), "250ms", 0.25 / 60),
        (datetime(2024, 1, 1, 0, 0, tzinfo=UTC), "4h", 240.0),
    ],
)
def test_minutes_to_funding_from_bar_close(start, interval, minutes):
    out = feat(make_bars([1.0], interval=interval, start=start), "minutes_to_funding", interval)
    assert out[0] == pytest.approx(minutes)


def test_calendar_on_real_bars(real_data_dir):
    frame = btc_1m(3000)
    out = build_features(frame, ["hour_sin", "hour_cos", "minutes_to_funding"], interval="1m")
    s, c = out.get_column("hour_sin").to_numpy(), out.get_column("hour_cos").to_numpy()
    np.testing.assert_allclose(s**2 + c**2, 1.0)
    m = out.get_column("minutes_to_funding").to_numpy()
    assert m.min() >= 1 and m.max() <= 480
    assert T0.tzinfo is not None and np.all(
        np.diff(m)[np.diff(m) < 0] == -1
    )  # counts down one per minute
