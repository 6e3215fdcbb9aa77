"""F5 technical features: returns, moving averages, RSI, MACD, ADX, Bollinger, candle/volume shape.

Why this module: the seed systems (001 HYDRA, 004 NOVOSKY) feed classic
technical indicators next to order flow; the names below are the seeds' names
so presets can list them verbatim.  Every feature is trailing-only (rolling
windows, ``shift(+k)``, forward-walking numba kernels) and NaN during warm-up.

Definitions the seeds leave open, fixed here (and tested on hand-built input):

* ``ret_k``: log return over k BARS; ``return_1m`` ... ``return_24h``: simple
  return over a TIME span (seed 001), converted with ``ctx.n_bars`` (at least
  one bar, so ``return_1m`` on 15m bars is the 1-bar return).
* ``*_slope``: relative change of the average over the last 5 bars.
* ``ema_stack``: +1 when EMA20 > EMA50 > EMA200, -1 when reversed, else 0.
* ``rsi_slope``: RSI(14) change over 3 bars, in RSI points.
* ``adx_14``, ``plus_di_14``, ``minus_di_14``: Wilder ADX/DI divided by 100,
  i.e. in [0, 1] -- seed 004's regime rules use ``adx_14 > 0.25``.
* ``bb_position``: (close - lower) / (upper - lower) for the 20-bar, 2-sigma
  band with population std (ddof 0, as Bollinger and ``ta``); 0.5 when flat.
* ``volume_delta``: candle direction x volume / 20-bar mean volume (an OHLCV
  proxy for signed volume: M15 broker data has no aggressor side).
* ``volume_surge``: volume / mean volume of the PREVIOUS 20 bars.
* ``price_acceleration``: 5-bar return minus the 5-bar return 5 bars ago.
* ``momentum_decay``: (|m[t-5]| - |m[t]|) / (|m[t-5]| + |m[t]|) with m the
  5-bar log return: +1 = momentum fading away, -1 = accelerating from rest.
* ``adverse_candle_ratio``: share of the last 10 candles whose direction
  opposes the 10-bar net move (0.5 when the net move is exactly zero).
* ``vwap_deviation``: close / rolling 1-day VWAP - 1; VWAP uses the bars'
  own ``vwap`` column when present (trade bars), else typical price
  (high+low+close)/3 (klines).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hydraquant.features import indicators_nb as ind
from hydraquant.features.registry import FeatureContext, feature

GROUP = "technical"
ALIAS_GROUP = "aliases"

_close = pl.col("close")


def _ma(ctx: FeatureContext, kind: str, n: int) -> np.ndarray:
    close = ctx.col("close").astype(np.float64)
    if kind == "ema":
        return ind.ema(close, n)
    return ctx.bars.get_column("close").cast(pl.Float64).rolling_mean(n, min_samples=n).to_numpy()


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[t-k] aligned to t, NaN for the first k rows."""
    out = np.full(x.shape[0], np.nan)
    if k < x.shape[0]:
        out[k:] = x[: x.shape[0] - k]
    return out


def _direction(ctx: FeatureContext) -> np.ndarray:
    return np.sign(ctx.col("close").astype(np.float64) - ctx.col("open").astype(np.float64))


# --- returns -----------------------------------------------------------------


def _log_return(ctx: FeatureContext) -> pl.Expr:
    """Log return over ``k`` bars."""
    k = int(ctx.params["k"])
    return (_close / _close.shift(k)).log()


for _k in (1, 5, 15, 60, 240):
    feature(
        f"ret_{_k}",
        group=GROUP,
        warmup=_k,
        params={"k": _k},
        description=f"log return over {_k} bars",
    )(_log_return)


def _time_return(ctx: FeatureContext) -> pl.Expr:
    """Simple return over a time span (seed 001 ``return_1h`` = close.pct_change(60) on 1m)."""
    k = ctx.n_bars(ctx.params["span"])
    return _close / _close.shift(k) - 1.0


for _label, _span in (
    ("1m", "1m"),
    ("5m", "5m"),
    ("15m", "15m"),
    ("1h", "1h"),
    ("4h", "4h"),
    ("24h", "1d"),
):
    feature(
        f"return_{_label}",
        group=GROUP,
        params={"span": _span},
        description=f"simple return over {_label} (time span)",
    )(_time_return)
feature(
    "hourly_return",
    group=ALIAS_GROUP,
    params={"span": "1h"},
    description="alias of return_1h (seed 004 name)",
)(_time_return)


# --- moving averages ---------------------------------------------------------


def _ma_level(ctx: FeatureContext) -> np.ndarray:
    """Moving average of close (price level; prefer price_vs_* for models)."""
    return _ma(ctx, ctx.params["kind"], int(ctx.params["n"]))


def _price_vs_ma(ctx: FeatureContext) -> np.ndarray:
    """close / MA - 1: scale-free distance from the average."""
    return (
        ctx.col("close").astype(np.float64) / _ma(ctx, ctx.params["kind"], int(ctx.params["n"]))
        - 1.0
    )


def _ma_slope(ctx: FeatureContext) -> np.ndarray:
    """Relative change of the MA over ``lag`` bars."""
    ma = _ma(ctx, ctx.params["kind"], int(ctx.params["n"]))
    return ma / _shift(ma, int(ctx.params["lag"])) - 1.0


for _kind in ("sma", "ema"):
    for _n in (20, 50, 200):
        _p = {"kind": _kind, "n": _n}
        feature(f"{_kind}_{_n}", group=GROUP, warmup=_n - 1, params=_p)(_ma_level)
        feature(f"price_vs_{_kind}_{_n}", group=GROUP, warmup=_n - 1, params=_p)(_price_vs_ma)
        feature(f"{_kind}_{_n}_slope", group=GROUP, warmup=_n - 1 + 5, params={**_p, "lag": 5})(
            _ma_slope
        )
feature(
    "price_vs_ema200",
    group=ALIAS_GROUP,
    warmup=199,
    params={"kind": "ema", "n": 200},
    description="alias of price_vs_ema_200 (seed 004 name)",
)(_price_vs_ma)


@feature("ema_stack", group=GROUP, warmup=199, params={"fast": 20, "mid": 50, "slow": 200})
def ema_stack(ctx: FeatureContext) -> np.ndarray:
    """+1 when EMA fast > mid > slow (bull stack), -1 when fast < mid < slow, else 0."""
    close = ctx.col("close").astype(np.float64)
    f, m, s = (ind.ema(close, int(ctx.params[k])) for k in ("fast", "mid", "slow"))
    out = np.where((f > m) & (m > s), 1.0, np.where((f < m) & (m < s), -1.0, 0.0))
    out[~(np.isfinite(f) & np.isfinite(m) & np.isfinite(s))] = np.nan
    return out


# --- oscillators -------------------------------------------------------------


@feature("rsi_14", group=GROUP, warmup=14, params={"n": 14})
def rsi_14(ctx: FeatureContext) -> np.ndarray:
    """Wilder RSI(14), 0-100."""
    return ind.rsi(ctx.col("close"), int(ctx.params["n"]))


@feature("rsi_norm", group=GROUP, warmup=14, params={"n": 14})
def rsi_norm(ctx: FeatureContext) -> np.ndarray:
    """RSI(14) / 100 (seed 001 direction-predictor input)."""
    return ind.rsi(ctx.col("close"), int(ctx.params["n"])) / 100.0


@feature("rsi_slope", group=GROUP, warmup=17, params={"n": 14, "lag": 3})
def rsi_slope(ctx: FeatureContext) -> np.ndarray:
    """RSI(14) change over 3 bars (RSI points): momentum of momentum, seed 004 directional set."""
    r = ind.rsi(ctx.col("close"), int(ctx.params["n"]))
    return r - _shift(r, int(ctx.params["lag"]))


def _macd_part(ctx: FeatureContext) -> np.ndarray:
    """MACD(12, 26, 9) component: line, signal or histogram (price units) or line / close."""
    line, sig, hist = ind.macd(ctx.col("close"), 12, 26, 9)
    part = ctx.params["part"]
    if part == "line":
        return line
    if part == "signal":
        return sig
    if part == "hist":
        return hist
    return line / ctx.col("close").astype(np.float64)


feature("macd", group=GROUP, warmup=25, params={"part": "line"})(_macd_part)
feature("macd_signal", group=GROUP, warmup=33, params={"part": "signal"})(_macd_part)
feature("macd_hist", group=GROUP, warmup=33, params={"part": "hist"})(_macd_part)
feature(
    "macd_norm",
    group=GROUP,
    warmup=25,
    params={"part": "norm"},
    description="MACD line / close (scale-free, seed 001)",
)(_macd_part)


def _adx_part(ctx: FeatureContext) -> np.ndarray:
    """Wilder ADX(14) / +DI / -DI, divided by 100 (seed 004 thresholds are 0.20/0.25)."""
    a, p, m = ind.adx(ctx.col("high"), ctx.col("low"), ctx.col("close"), 14)
    return {"adx": a, "plus": p, "minus": m}[ctx.params["part"]] / 100.0


feature("adx_14", group=GROUP, warmup=27, params={"part": "adx"})(_adx_part)
feature("plus_di_14", group=GROUP, warmup=14, params={"part": "plus"})(_adx_part)
feature("minus_di_14", group=GROUP, warmup=14, params={"part": "minus"})(_adx_part)


@feature("bb_position", group=GROUP, warmup=19, params={"n": 20, "k": 2.0})
def bb_position(ctx: FeatureContext) -> pl.Expr:
    """Where close sits inside the Bollinger band: 0 = lower, 1 = upper, may leave [0, 1]."""
    n, k = int(ctx.params["n"]), float(ctx.params["k"])
    mid = _close.rolling_mean(n, min_samples=n)
    sd = _close.rolling_std(n, min_samples=n, ddof=0)
    pos = (_close - (mid - k * sd)) / (2.0 * k * sd)
    return pl.when(sd > 0).then(pos).when(sd == 0).then(0.5).otherwise(None)


# --- candle and volume shape -------------------------------------------------


@feature("candle_direction", group=GROUP)
def candle_direction(ctx: FeatureContext) -> np.ndarray:
    """sign(close - open): +1 up candle, -1 down, 0 doji."""
    return _direction(ctx)


@feature("consecutive_direction", group=GROUP)
def consecutive_direction(ctx: FeatureContext) -> np.ndarray:
    """Signed count of consecutive same-direction candles (+3 = third green in a row)."""
    return ind.streak(_direction(ctx))


@feature("volume_delta", group=GROUP, warmup=19, params={"n": 20})
def volume_delta(ctx: FeatureContext) -> pl.Expr:
    """Direction-signed volume relative to its 20-bar mean (OHLCV proxy of buy-sell pressure)."""
    n = int(ctx.params["n"])
    vol = pl.col("volume").cast(pl.Float64)
    return (_close - pl.col("open")).sign() * vol / vol.rolling_mean(n, min_samples=n)


@feature("volume_surge", group=GROUP, warmup=20, params={"n": 20})
def volume_surge(ctx: FeatureContext) -> pl.Expr:
    """Volume / mean volume of the previous 20 bars (the current bar is not in its own baseline)."""
    n = int(ctx.params["n"])
    vol = pl.col("volume").cast(pl.Float64)
    return vol / vol.shift(1).rolling_mean(n, min_samples=n)


@feature("price_acceleration", group=GROUP, warmup=10, params={"k": 5})
def price_acceleration(ctx: FeatureContext) -> pl.Expr:
    """Change of the k-bar return over k bars: positive when the move speeds up."""
    k = int(ctx.params["k"])
    r = _close / _close.shift(k) - 1.0
    return r - r.shift(k)


@feature("momentum_decay", group=GROUP, warmup=10, params={"k": 5})
def momentum_decay(ctx: FeatureContext) -> pl.Expr:
    """(|m[t-k]| - |m[t]|) / (|m[t-k]| + |m[t]|), m = k-bar log return; > 0 = momentum fading."""
    k = int(ctx.params["k"])
    now = (_close / _close.shift(k)).log().abs()
    before = now.shift(k)
    total = now + before
    return (
        pl.when(total > 0).then((before - now) / total).when(total == 0).then(0.0).otherwise(None)
    )


@feature("adverse_candle_ratio", group=GROUP, warmup=10, params={"n": 10})
def adverse_candle_ratio(ctx: FeatureContext) -> np.ndarray:
    """Share of the last n candles against the n-bar net move (pullback pressure inside a trend)."""
    n = int(ctx.params["n"])
    close = ctx.col("close").astype(np.float64)
    d = _direction(ctx)
    net = np.sign(close - _shift(close, n))
    up = pl.Series((d > 0).astype(np.float64)).rolling_mean(n, min_samples=n).to_numpy()
    down = pl.Series((d < 0).astype(np.float64)).rolling_mean(n, min_samples=n).to_numpy()
    out = np.where(net > 0, down, np.where(net < 0, up, 0.5))
    out[~np.isfinite(net) | ~np.isfinite(up)] = np.nan
    return out


@feature("vwap_deviation", group=GROUP, params={"window": "1d"})
def vwap_deviation(ctx: FeatureContext) -> pl.Expr:
    """close / rolling VWAP - 1 over a trailing time window (bars' vwap if present, else typical price)."""
    n = ctx.n_bars(ctx.params["window"])
    price = (pl.col("high") + pl.col("low") + _close) / 3.0
    if "vwap" in ctx.bars.columns:  # row by row, so a null vwap falls back without peeking
        price = pl.coalesce(pl.col("vwap").cast(pl.Float64), price)
    vol = pl.col("volume").cast(pl.Float64)
    vwap = (price * vol).rolling_sum(n, min_samples=n) / vol.rolling_sum(n, min_samples=n)
    return _close / vwap - 1.0
