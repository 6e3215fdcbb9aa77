"""F5 technical features: exact values on hand-built bars, reference kernels, real-data smoke.

Also hosts the small real-data loaders the other F5-F9 test files import
(spot BTCUSDT 1m with string timestamps, futures FILUSDT 1m archive zip).
"""

from __future__ import annotations

import io
import math
import zipfile
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.features import build_features, technical
from hydraquant.features import indicators_nb as ind
from hydraquant.features.registry import FeatureContext, registry
from tests.conftest import real_file

BTC_1M = "binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2024-10-01_2024-11-04.csv.gz"
FIL_1M = "binance-vision/data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-02.zip"
TS = pl.Datetime("us", "UTC")
T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


# --- loaders (shared with the other F5-F9 test files) --------------------------------


def _ts_column(frame: pl.DataFrame, name: str) -> pl.Expr:
    """Timestamps given either as epoch milliseconds or as 'YYYY-mm-dd HH:MM:SS' UTC strings."""
    if frame.schema[name] == pl.String:
        return pl.col(name).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", time_zone="UTC")
    return pl.from_epoch(pl.col(name).cast(pl.Int64), time_unit="ms").cast(TS)


@lru_cache(maxsize=2)
def _csv_klines(rel: str) -> pl.DataFrame:
    raw = pl.read_csv(real_file(rel))
    return raw.select(
        _ts_column(raw, "timestamp").alias("ts"),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
    ).sort("ts")


def btc_1m(n: int | None = None) -> pl.DataFrame:
    """Real Binance spot BTCUSDT 1m OHLCV (2024-10-01 .. 2024-11-04, 50k bars)."""
    frame = _csv_klines(BTC_1M)
    return frame.head(n) if n else frame


def spot_csv(rel: str) -> pl.DataFrame:
    return _csv_klines(rel)


@lru_cache(maxsize=1)
def fil_futures_1m() -> pl.DataFrame:
    """Real USD-M FILUSDT 1m archive klines (12 columns with header, incl. taker buy volume)."""
    with zipfile.ZipFile(real_file(FIL_1M)) as zf:
        raw = pl.read_csv(io.BytesIO(zf.read(zf.namelist()[0])))
    return raw.select(
        _ts_column(raw, "open_time").alias("ts"),
        *[
            pl.col(c).cast(pl.Float64)
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ],
        pl.col("count").cast(pl.Int64).alias("trade_count"),
        pl.col("taker_buy_volume").cast(pl.Float64),
        pl.col("taker_buy_quote_volume").cast(pl.Float64),
    ).sort("ts")


# --- hand-built bars -----------------------------------------------------------------


def make_bars(
    close, *, open_=None, high=None, low=None, volume=None, interval="1m", start=T0
) -> pl.DataFrame:
    close = np.asarray(close, dtype=float)
    n = close.shape[0]
    step = timedelta(microseconds=_us(interval))
    return pl.DataFrame(
        {
            "ts": pl.Series([start + i * step for i in range(n)], dtype=TS),
            "open": close if open_ is None else np.asarray(open_, dtype=float),
            "high": close if high is None else np.asarray(high, dtype=float),
            "low": close if low is None else np.asarray(low, dtype=float),
            "close": close,
            "volume": np.ones(n) if volume is None else np.asarray(volume, dtype=float),
        }
    )


def _us(interval: str) -> int:
    from hydraquant.timeframes import interval_us

    return interval_us(interval)


def feat(frame: pl.DataFrame, name: str, interval: str = "1m") -> np.ndarray:
    return build_features(frame, [name], interval=interval).get_column(name).to_numpy()


def call(func, frame: pl.DataFrame, interval: str = "1m", **params) -> np.ndarray:
    """Run a feature function with overridden params (for short windows in hand examples)."""
    value = func(FeatureContext(frame, interval, params=params))
    if isinstance(value, pl.Expr):
        return frame.select(value.cast(pl.Float64)).to_series().fill_null(float("nan")).to_numpy()
    return np.asarray(value, dtype=float)


# --- returns -------------------------------------------------------------------------


def test_log_returns_over_bars():
    close = [100.0, 110.0, 121.0, 133.1, 146.41, 161.051]
    r1 = feat(make_bars(close), "ret_1")
    assert np.isnan(r1[0])
    np.testing.assert_allclose(r1[1:], math.log(1.1), rtol=1e-12)
    r5 = feat(make_bars(close), "ret_5")
    assert np.isnan(r5[:5]).all()
    assert r5[5] == pytest.approx(5 * math.log(1.1), rel=1e-12)


def test_time_returns_convert_span_to_bars():
    close = [100.0, 101.0, 102.0, 103.0, 104.0, 110.0]
    r = feat(make_bars(close, interval="15m"), "return_1h", "15m")  # 1h = 4 bars of 15m
    assert np.isnan(r[:4]).all()
    assert r[4] == pytest.approx(0.04)
    assert r[5] == pytest.approx(110 / 101 - 1)
    assert np.array_equal(
        feat(make_bars(close, interval="15m"), "hourly_return", "15m"), r, equal_nan=True
    )
    r1m = feat(make_bars(close), "return_1m")  # on 1m bars: one bar
    assert r1m[1] == pytest.approx(0.01)


# --- moving averages -----------------------------------------------------------------


def test_sma_ema_on_a_linear_series():
    close = np.arange(1.0, 31.0)  # 1..30
    frame = make_bars(close)
    sma = feat(frame, "sma_20")
    ema = feat(frame, "ema_20")
    assert np.isnan(sma[:19]).all() and np.isnan(ema[:19]).all()
    assert sma[19] == pytest.approx(10.5) and sma[29] == pytest.approx(20.5)
    # SMA-seeded EMA of a straight line lags it by exactly (n-1)/2 from the seed on.
    np.testing.assert_allclose(ema[19:], close[19:] - 9.5, rtol=1e-12)
    assert feat(frame, "price_vs_sma_20")[19] == pytest.approx(20 / 10.5 - 1)
    assert feat(frame, "price_vs_ema_20")[25] == pytest.approx(26 / 16.5 - 1)
    slope = feat(frame, "sma_20_slope")
    assert np.isnan(slope[:24]).all()
    assert slope[24] == pytest.approx(15.5 / 10.5 - 1)


def test_ema_stack_signs():
    up = feat(make_bars(np.linspace(100, 200, 260)), "ema_stack")
    assert np.isnan(up[:199]).all() and (up[199:] == 1).all()
    down = feat(make_bars(np.linspace(200, 100, 260)), "ema_stack")
    assert (down[199:] == -1).all()
    flat = feat(make_bars(np.full(230, 50.0)), "ema_stack")
    assert (flat[199:] == 0).all()


# --- oscillators -----------------------------------------------------------------------


def test_rsi_wilder_hand_example():
    diffs = [1, -1] * 7 + [2]  # 7 gains and 7 losses of 1, then +2
    close = 100 + np.concatenate([[0], np.cumsum(diffs)])
    rsi = feat(make_bars(close), "rsi_14")
    assert np.isnan(rsi[:14]).all()
    assert rsi[14] == pytest.approx(50.0)
    # avg gain = (0.5*13 + 2)/14 = 8.5/14, avg loss = 0.5*13/14 = 6.5/14
    assert rsi[15] == pytest.approx(100 * 8.5 / 15)
    assert feat(make_bars(close), "rsi_norm")[15] == pytest.approx(8.5 / 15)
    assert (feat(make_bars(np.arange(30.0)), "rsi_14")[14:] == 100).all()
    assert (feat(make_bars(np.full(30, 7.0)), "rsi_14")[14:] == 50).all()


def test_rsi_slope_is_three_bar_change():
    close = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 40))
    frame = make_bars(close)
    rsi, slope = feat(frame, "rsi_14"), feat(frame, "rsi_slope")
    assert np.isnan(slope[:17]).all()
    np.testing.assert_allclose(slope[17:], rsi[17:] - rsi[14:-3], rtol=1e-12)


def test_macd_on_a_linear_series():
    close = np.arange(1.0, 61.0)
    frame = make_bars(close)
    line, sig, hist = (feat(frame, n) for n in ("macd", "macd_signal", "macd_hist"))
    assert np.isnan(line[:25]).all() and np.isnan(sig[:33]).all()
    np.testing.assert_allclose(line[25:], 7.0, rtol=1e-12)  # (i - 5.5) - (i - 12.5)
    np.testing.assert_allclose(sig[33:], 7.0, rtol=1e-12)
    np.testing.assert_allclose(hist[33:], 0.0, atol=1e-12)
    np.testing.assert_allclose(feat(frame, "macd_norm")[25:], 7.0 / close[25:], rtol=1e-12)


def test_adx_on_a_steady_uptrend():
    i = np.arange(40.0)
    frame = make_bars(i + 0.5, open_=i + 0.5, high=i + 1, low=i)
    adx, pdi, mdi = (feat(frame, n) for n in ("adx_14", "plus_di_14", "minus_di_14"))
    assert np.isnan(pdi[:14]).all() and np.isnan(adx[:27]).all()
    np.testing.assert_allclose(pdi[14:], 1 / 1.5, rtol=1e-12)  # +DM 1 per bar / TR 1.5
    np.testing.assert_allclose(mdi[14:], 0.0)
    np.testing.assert_allclose(adx[27:], 1.0, rtol=1e-12)  # scaled to [0, 1]


def _adx_reference(h, lo, c, n):
    """Textbook Wilder ADX, written as plainly as possible (slow)."""
    tr, p, m = [], [], []
    for t in range(1, len(h)):
        up, dn = h[t] - h[t - 1], lo[t - 1] - lo[t]
        tr.append(max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1])))
        p.append(up if up > dn and up > 0 else 0.0)
        m.append(dn if dn > up and dn > 0 else 0.0)
    adx, pdi, mdi = (np.full(len(h), np.nan) for _ in range(3))
    s_tr, s_p, s_m = sum(tr[:n]), sum(p[:n]), sum(m[:n])
    dxs = []
    for k in range(n - 1, len(tr)):
        if k >= n:
            s_tr, s_p, s_m = s_tr - s_tr / n + tr[k], s_p - s_p / n + p[k], s_m - s_m / n + m[k]
        t = k + 1
        pdi[t], mdi[t] = 100 * s_p / s_tr, 100 * s_m / s_tr
        dxs.append(100 * abs(pdi[t] - mdi[t]) / (pdi[t] + mdi[t]))
        if len(dxs) == n:
            adx[t] = sum(dxs) / n
        elif len(dxs) > n:
            adx[t] = (adx[t - 1] * (n - 1) + dxs[-1]) / n
    return adx, pdi, mdi


def test_adx_kernel_matches_textbook_reference():
    rng = np.random.default_rng(7)
    c = 100 + np.cumsum(rng.normal(0, 1, 300))
    h, lo = c + rng.random(300), c - rng.random(300)
    got = ind.adx(h, lo, c, 14)
    want = _adx_reference(h, lo, c, 14)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, equal_nan=True)


def test_bb_position():
    close = np.arange(1.0, 21.0)
    pos = feat(make_bars(close), "bb_position")
    assert np.isnan(pos[:19]).all()
    sd = math.sqrt((20**2 - 1) / 12)  # population std of 1..20
    assert pos[19] == pytest.approx((20 - (10.5 - 2 * sd)) / (4 * sd))
    assert feat(make_bars(np.full(25, 3.0)), "bb_position")[24] == 0.5


# --- candle and volume shape ---------------------------------------------------------


def test_candle_direction_and_streak():
    open_ = np.array([1, 1, 2, 2, 2, 2, 2, 1.0])
    close = np.array([2, 2, 1, 2, 1, 1, 1, 2.0])
    frame = make_bars(
        close, open_=open_, high=np.maximum(open_, close), low=np.minimum(open_, close)
    )
    assert feat(frame, "candle_direction").tolist() == [1, 1, -1, 0, -1, -1, -1, 1]
    assert feat(frame, "consecutive_direction").tolist() == [1, 2, -1, 0, -1, -2, -3, 1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=1, max_size=60))
def test_streak_property(directions):
    got = ind.streak(np.array(directions))
    for t, d in enumerate(directions):
        run = 0
        while t - run >= 0 and directions[t - run] == d and d != 0:
            run += 1
        assert got[t] == d * run


def test_volume_delta_and_surge():
    n = 22
    vol = np.arange(1.0, n + 1)
    close = np.where(np.arange(n) % 2 == 0, 2.0, 1.0)
    open_ = np.where(np.arange(n) % 2 == 0, 1.0, 2.0)  # even rows up, odd rows down
    frame = make_bars(close, open_=open_, high=np.full(n, 2.0), low=np.full(n, 1.0), volume=vol)
    vd = feat(frame, "volume_delta")
    assert np.isnan(vd[:19]).all()
    assert vd[19] == pytest.approx(-20 / 10.5)  # row 19 is a down candle, mean(1..20) = 10.5
    assert vd[20] == pytest.approx(21 / 11.5)
    surge = feat(frame, "volume_surge")
    assert np.isnan(surge[:20]).all()
    assert surge[20] == pytest.approx(21 / 10.5)  # baseline excludes the current bar


def test_price_acceleration_and_momentum_decay():
    close = np.array([100.0] * 5 + [120, 120, 120, 120, 120, 132])
    frame = make_bars(close)
    acc = feat(frame, "price_acceleration")
    assert np.isnan(acc[:10]).all()
    assert acc[10] == pytest.approx((132 / 120 - 1) - (120 / 100 - 1))
    dec = feat(frame, "momentum_decay")
    a, b = math.log(1.2), math.log(1.1)
    assert dec[10] == pytest.approx((a - b) / (a + b))
    assert feat(make_bars(np.full(12, 5.0)), "momentum_decay")[11] == 0.0


def test_adverse_candle_ratio():
    dirs = np.array([0, 1, 1, -1, 1, 1, -1, 1, 1, -1, 1.0])  # rows 1..10: 7 up, 3 down
    close = 100 + np.cumsum(dirs)
    open_ = close - dirs
    frame = make_bars(
        close, open_=open_, high=np.maximum(open_, close), low=np.minimum(open_, close)
    )
    ratio = feat(frame, "adverse_candle_ratio")
    assert np.isnan(ratio[:10]).all()
    assert ratio[10] == pytest.approx(0.3)  # net move up, 3 of 10 candles down
    flipped = make_bars(
        200 - close,
        open_=200 - open_,
        high=200 - np.minimum(open_, close),
        low=200 - np.maximum(open_, close),
    )
    assert feat(flipped, "adverse_candle_ratio")[10] == pytest.approx(0.3)


def test_vwap_deviation_typical_price_and_bar_vwap():
    high, low, close = (
        np.array([12.0, 14, 16, 18]),
        np.array([8.0, 10, 12, 14]),
        np.array([10.0, 12, 14, 16]),
    )
    vol = np.array([1.0, 2, 3, 4])
    frame = make_bars(close, high=high, low=low, volume=vol, interval="1h")
    dev = call(technical.vwap_deviation, frame, "1h", window="3h")
    typical = (high + low + close) / 3
    assert np.isnan(dev[:2]).all()
    assert dev[2] == pytest.approx(14 / ((typical[:3] * vol[:3]).sum() / 6) - 1)
    with_vwap = frame.with_columns(pl.Series("vwap", [9.0, None, 13.0, 15.0]))
    dev2 = call(technical.vwap_deviation, with_vwap, "1h", window="3h")
    assert dev2[3] == pytest.approx(
        16 / ((typical[1] * 2 + 13 * 3 + 15 * 4) / 9) - 1
    )  # null vwap -> typical


def test_registered_names_and_groups():
    reg = registry()
    expected = {
        "ret_1",
        "ret_60",
        "sma_200",
        "ema_200",
        "price_vs_sma_50",
        "ema_stack",
        "rsi_14",
        "rsi_slope",
        "macd",
        "macd_signal",
        "macd_hist",
        "adx_14",
        "bb_position",
        "candle_direction",
        "consecutive_direction",
        "volume_delta",
        "volume_surge",
        "price_acceleration",
        "momentum_decay",
        "adverse_candle_ratio",
        "vwap_deviation",
        "price_vs_ema200",
        "hourly_return",
    }
    assert expected <= set(reg)
    assert all(reg[n].group in ("technical", "aliases") for n in expected)


# --- real data -------------------------------------------------------------------------


def test_real_btc_1m_smoke(real_data_dir):
    frame = btc_1m(5000)
    out = build_features(frame, "technical", interval="1m")
    assert out.height == frame.height
    tail = out.slice(1500)  # past every warm-up except the 1-day VWAP
    for name in out.columns[1:]:
        values = tail.get_column(name).to_numpy()
        if name == "vwap_deviation":
            values = values[-500:]
        assert np.isfinite(values).all(), name
    rsi = tail.get_column("rsi_14").to_numpy()
    assert 0 <= rsi.min() and rsi.max() <= 100 and 30 < np.median(rsi) < 70
    assert tail.get_column("adx_14").max() <= 1.0
    assert abs(tail.get_column("ret_60").median()) < 0.01


def test_real_futures_klines_smoke(real_data_dir):
    frame = fil_futures_1m().head(3000)
    out = build_features(
        frame, ["rsi_14", "macd_hist", "volume_surge", "vwap_deviation"], interval="1m"
    )
    assert np.isfinite(out.get_column("macd_hist").to_numpy()[100:]).all()
    assert np.isfinite(out.get_column("vwap_deviation").to_numpy()[1439:]).all()
    assert np.isnan(out.get_column("vwap_deviation").to_numpy()[:1439]).all()
