"""Cross-check our indicators against the ``ta`` library on real BTCUSDT 1m klines.

Convention differences (and how the comparison aligns them):

* EMA / MACD / RSI / ATR / ADX: we seed every exponential average with the
  simple mean of its first n inputs (Wilder, TA-Lib); ``ta`` uses pandas
  ``ewm(adjust=False)`` seeded with the first value (EMA, RSI) or, for ATR/ADX,
  its own sums with slightly different starting rows.  The seed's influence
  decays like (1 - alpha)^k, so values are compared only after WARMUP rows
  (EMA200: 0.99^3000 ~ 1e-13).
* ADX/DI: ours are on the 0-100 scale in the kernel; the registered
  ``adx_14``/``plus_di_14``/``minus_di_14`` features are divided by 100.
  ``ta``'s smoothing loops stop one row short, leaving its last row at 0, so
  the final rows are excluded.
* Bollinger: both use the population std (ddof 0); ``bb_position`` is
  rebuilt from ``ta``'s bands.
Tolerance: 1e-6 relative (atol 1e-6 x the series' typical magnitude for
series that cross zero, like MACD).
"""

from __future__ import annotations

import numpy as np
import pytest

ta = pytest.importorskip("ta")
pd = pytest.importorskip("pandas")

from hydraquant.features import build_features
from hydraquant.features import indicators_nb as ind
from hydraquant.features.registry import registry
from tests.unit.test_features_technical import btc_1m

N = 12_000
WARMUP = 3_000
RTOL = 1e-6


@pytest.fixture(scope="module")
def bars(real_data_dir):
    return btc_1m(N)


@pytest.fixture(scope="module")
def pdf(bars):
    return bars.select("open", "high", "low", "close", "volume").to_pandas()


def close_enough(ours: np.ndarray, theirs, *, stop: int | None = None) -> None:
    ours = np.asarray(ours, dtype=float)[WARMUP:stop]
    theirs = np.asarray(theirs, dtype=float)[WARMUP:stop]
    assert np.isfinite(ours).all() and np.isfinite(theirs).all()
    scale = np.median(np.abs(theirs)) + 1e-12
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("n", [20, 50, 200])
def test_sma_and_ema(bars, pdf, n):
    out = build_features(bars, [f"sma_{n}", f"ema_{n}"], interval="1m")
    sma = out.get_column(f"sma_{n}").to_numpy()
    np.testing.assert_allclose(
        sma[n - 1 :],
        ta.trend.SMAIndicator(pdf["close"], n).sma_indicator().to_numpy()[n - 1 :],
        rtol=1e-9,
    )
    close_enough(
        out.get_column(f"ema_{n}").to_numpy(),
        ta.trend.EMAIndicator(pdf["close"], n).ema_indicator(),
    )


def test_rsi(bars, pdf):
    ours = build_features(bars, ["rsi_14"], interval="1m").get_column("rsi_14").to_numpy()
    close_enough(ours, ta.momentum.RSIIndicator(pdf["close"], 14).rsi())


def test_macd(bars, pdf):
    out = build_features(bars, ["macd", "macd_signal", "macd_hist"], interval="1m")
    ref = ta.trend.MACD(pdf["close"], window_slow=26, window_fast=12, window_sign=9)
    close_enough(out.get_column("macd").to_numpy(), ref.macd())
    close_enough(out.get_column("macd_signal").to_numpy(), ref.macd_signal())
    close_enough(out.get_column("macd_hist").to_numpy(), ref.macd_diff())


def test_atr_kernel(pdf):
    ours = ind.atr(pdf["high"].to_numpy(), pdf["low"].to_numpy(), pdf["close"].to_numpy(), 14)
    theirs = ta.volatility.AverageTrueRange(
        pdf["high"], pdf["low"], pdf["close"], 14
    ).average_true_range()
    close_enough(ours, theirs)
    # same seeding as ta: identical from the very first value
    np.testing.assert_allclose(ours[13:200], theirs.to_numpy()[13:200], rtol=1e-9)


def test_registered_atr_14(bars, pdf):
    if "atr_14" not in registry():
        pytest.skip("atr_14 (volatility group) is not registered in this tree")
    ours = build_features(bars, ["atr_14"], interval="1m").get_column("atr_14").to_numpy()
    close_enough(
        ours,
        ta.volatility.AverageTrueRange(
            pdf["high"], pdf["low"], pdf["close"], 14
        ).average_true_range(),
    )


def test_adx_and_di(bars, pdf):
    out = build_features(bars, ["adx_14", "plus_di_14", "minus_di_14"], interval="1m")
    ref = ta.trend.ADXIndicator(pdf["high"], pdf["low"], pdf["close"], 14)
    close_enough(out.get_column("adx_14").to_numpy() * 100, ref.adx(), stop=-2)
    close_enough(out.get_column("plus_di_14").to_numpy() * 100, ref.adx_pos(), stop=-2)
    close_enough(out.get_column("minus_di_14").to_numpy() * 100, ref.adx_neg(), stop=-2)


def test_bollinger_position(bars, pdf):
    ours = build_features(bars, ["bb_position"], interval="1m").get_column("bb_position").to_numpy()
    bb = ta.volatility.BollingerBands(pdf["close"], window=20, window_dev=2)
    hi, lo = bb.bollinger_hband().to_numpy(), bb.bollinger_lband().to_numpy()
    theirs = (pdf["close"].to_numpy() - lo) / (hi - lo)
    np.testing.assert_allclose(ours[19:], theirs[19:], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        ours[19:], bb.bollinger_pband().to_numpy()[19:], rtol=1e-6, atol=1e-6
    )
