"""Deterministic multi-symbol market simulator (SPEC D6).

Why it exists: the quickstart must run offline, and the ML pipeline's honesty
tests need markets where the truth is known -- one with *nothing* predictable
(a null) and one with a planted edge of documented strength.

Model (per UTC day; all symbols share the market state, one symbol-day is
generated and yielded at a time so memory stays bounded):

* **Market state on a 1-second grid**: a 3-state Markov volatility regime
  (calm / normal / turbulent; mean durations 6 h / 4 h / 40 min; vol x0.6/1/2,
  trade rate x0.7/1/1.8), a slow log-vol Ornstein-Uhlenbeck factor (~20 min),
  an intraday profile (peaks at the EU open ~08 UTC and the US open ~14 UTC,
  trough ~03-05 UTC; weekends x0.6), and a common news shock.
* **Per symbol**: log mid ``x``; each second a diffusion shock with loading
  ``beta`` on the common shock (1-min cross-symbol correlation about
  ``beta_a*beta_b*(1-impact_share)``, ~0.5-0.65 by default); trade counts
  Poisson with a self-exciting (Hawkes-like) intensity; iid trade signs (50/50)
  and heavy-tailed sizes (log-normal body + Pareto tail, alpha=1.7); each trade
  moves the mid by a square-root impact ``lam*s*sqrt(q/q_mean)`` (explaining
  ``impact_share`` of the variance) and prints at the ask (buy) or bid (sell)
  of a one-tick spread around the impacted mid, as an order sweeping the book
  would; printing before the impact would make the next print predictable.  Ticks are <= ~1e-5 of the price so the
  bid-ask bounce is negligible against 30 s volatility.
* **Funding** every 8 h (00/08/16 UTC): AR(1) around 1e-4 per interval that
  rises after the price went up over the previous 8 h; ``mark_price`` is the mid.
* **Open interest** every 5 min: log-OI AR(1) driven by the traded volume of
  the preceding 5 minutes (co-moves with volume and volatility).

**Martingale without edge.**  Signs are iid and independent of the past, the
diffusion shocks are iid, so the mid is a martingale given the past: order
flow moves prices in the same minute but predicts nothing.

**Planted edge** (``planted_edge = e``, horizon ``H = edge_horizon_s``).  Each
trade additionally owes a *delayed* impact ``kappa*s*sqrt(q/q_mean)`` with
``kappa = e*sigma*sqrt(3/rate)`` paid as a constant drift over the next ``H``
seconds.  Hence the conditional mean of the log return over ``(t, t+H]`` given
everything before ``t`` is ``sum_j kappa_j s_j sqrt(q_j/q_mean) w_j`` with the
triangular weight ``w_j = 1 - (t - t_j)/H`` over trades with ``t-H < t_j < t``.
Its observable, scale-free version is :func:`planted_signal`::

    S_t = sum_j s_j sqrt(q_j) w_j / sqrt(sum_j q_j w_j^2)

(``s_j = +1`` when the aggressor bought, i.e. ``is_buyer_maker`` false).
``S_t`` has unit variance whatever the rate; in the Gaussian approximation
the planted mean is ``e*sigma*sqrt(H)*S_t`` while the rest of the ``H``-second
return has variance ``sigma^2*H*(1+e^2)``, so the information coefficient is
``rho = e/sqrt(1+2e^2)`` and the AUC of ``S_t`` for ``return(t, t+H) > 0`` is
(:func:`gaussian_auc`)::

    AUC(e) = 1/2 + (2/pi) * arcsin(rho / sqrt(2))

:func:`achievable_auc` measures it on simulated trades (the label uses the
last trade price, as a bar close would).  Measured on one BTC-like day
(H = 30 s) it sits 0.003-0.016 below the closed form: e = 0.1 -> ~0.540
(Gaussian 0.545), e = 0.2 -> ~0.577 (0.587), e = 0.3 -> ~0.610 (0.625); e = 0
-> 0.497 +- 0.006.  Compare models with the measured value; table in
``docs/simulator.md``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from hydraquant.data.schema import TS, conform
from hydraquant.data.simulator_nb import ar1_path, market_day, planted_signal_kernel, symbol_day
from hydraquant.errors import HydraError

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
US_PER_S = 1_000_000
FUNDING_HOURS = (0, 8, 16)
OI_STEP_S = 300

REGIMES = ("calm", "normal", "turbulent")
_REGIME_VOL = np.array([0.6, 1.0, 2.0])
_REGIME_RATE = np.array([0.7, 1.0, 1.8])
_REGIME_DURATION_S = np.array([6 * 3600.0, 4 * 3600.0, 40 * 60.0])
_REGIME_NEXT = np.array([[0.0, 1.0, 0.0], [0.6, 0.0, 0.4], [0.25, 0.75, 0.0]])
_OU_TAU_S = 1200.0
_OU_SD = 0.35

# trade-size shape shared by all symbols (scaled by each symbol's median size)
_SIZE_SIGMA = 1.1
_TAIL_PROB = 0.02
_TAIL_SCALE = 4.0
_TAIL_ALPHA = 1.7


def _stationary(p_leave: np.ndarray, p_next: np.ndarray) -> np.ndarray:
    """Long-run share of time in each regime (used to keep mean rates honest)."""
    q = p_next * p_leave[:, None] - np.diag(p_leave)  # generator
    a = np.vstack([q.T, np.ones(len(p_leave))])
    b = np.zeros(len(p_leave) + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


_P_LEAVE = 1.0 / _REGIME_DURATION_S
_PI = _stationary(_P_LEAVE, _REGIME_NEXT)
_RATE_NORM = float(_PI @ _REGIME_RATE) * math.exp(_OU_SD**2 / 2)
_VOL_NORM = math.sqrt(float(_PI @ _REGIME_VOL**2) * math.exp(_OU_SD**2 / 2))


@dataclass(frozen=True)
class SymbolSpec:
    """Price level, exchange grid and activity of one simulated symbol."""

    name: str
    price: float
    tick: float
    lot: float
    median_qty: float
    trades_per_day: float
    daily_vol: float
    beta: float
    decimals: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decimals", max(0, -math.floor(math.log10(self.tick) + 1e-9)))

    @property
    def mean_qty(self) -> float:
        """Mean trade size before lot rounding (the impact normaliser)."""
        body = (1 - _TAIL_PROB) * math.exp(_SIZE_SIGMA**2 / 2)
        tail = _TAIL_PROB * _TAIL_SCALE * _TAIL_ALPHA / (_TAIL_ALPHA - 1)
        return self.median_qty * (body + tail)


_KNOWN = (
    SymbolSpec("BTCUSDT", 42_000.0, 0.1, 0.001, 0.012, 2_000_000, 0.025, 0.92),
    SymbolSpec("ETHUSDT", 2_300.0, 0.01, 0.001, 0.2, 1_200_000, 0.030, 0.90),
    SymbolSpec("SOLUSDT", 100.0, 0.001, 0.01, 6.0, 600_000, 0.045, 0.85),
    SymbolSpec("BNBUSDT", 310.0, 0.001, 0.01, 1.0, 250_000, 0.030, 0.80),
    SymbolSpec("XRPUSDT", 0.6, 0.000001, 0.1, 800.0, 300_000, 0.035, 0.80),
    SymbolSpec("DOGEUSDT", 0.08, 0.0000001, 1.0, 6_000.0, 350_000, 0.045, 0.80),
    SymbolSpec("ADAUSDT", 0.5, 0.000001, 1.0, 900.0, 200_000, 0.040, 0.80),
    SymbolSpec("LINKUSDT", 15.0, 0.0001, 0.01, 30.0, 150_000, 0.045, 0.78),
)


def symbol_specs(n: int) -> list[SymbolSpec]:
    """The first ``n`` symbols: 8 Binance-like names, then ``SIMnnUSDT``."""
    extra = [
        SymbolSpec(f"SIM{i:02d}USDT", 10.0 * (1 + i % 7), 0.0001, 0.01, 25.0, 80_000, 0.05, 0.75)
        for i in range(max(0, n - len(_KNOWN)))
    ]
    return [*_KNOWN, *extra][:n]


_PROFILE_BUMPS = (
    (0.5, 1.5, 0.25),
    (8.0, 1.8, 0.45),
    (14.5, 2.2, 1.0),
)  # (UTC hour, width h, height)


def _raw_profile(hours: np.ndarray) -> np.ndarray:
    out = np.full(hours.shape, 0.45)
    for centre, width, height in _PROFILE_BUMPS:
        d = (hours - centre + 12.0) % 24.0 - 12.0
        out += height * np.exp(-0.5 * (d / width) ** 2)
    return out


_PROFILE_MEAN = float(np.mean(_raw_profile(np.arange(SECONDS_PER_DAY) / 3600.0)))


def intraday_profile(seconds_of_day: np.ndarray) -> np.ndarray:
    """Relative trade rate by UTC time of day; mean 1 over a day.

    A floor plus bumps at the Asia open (~00:30), EU open (~08:00) and US open
    (~14:30), the shape seen in Binance hourly trade counts.  Volatility
    follows its square root (variance proportional to activity).
    """
    hours = np.asarray(seconds_of_day, dtype=np.float64) / 3600.0
    return _raw_profile(hours) / _PROFILE_MEAN


class SimConfig(BaseModel):
    """What to simulate.  Frozen; unknown keys are an error (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbols: int = Field(3, ge=1, le=99, description="number of symbols (BTCUSDT first)")
    days: int = Field(1, ge=1, le=3660)
    seed: int = Field(0, ge=0)
    start: date = date(2024, 1, 1)
    planted_edge: float = Field(
        0.0, ge=-1.0, le=1.0, description="predictable/unpredictable std ratio over edge_horizon_s"
    )
    edge_horizon_s: float = Field(30.0, gt=0.0, le=3600.0)
    activity: float = Field(1.0, gt=0.0, le=10.0, description="scales every trade rate")
    impact_share: float = Field(
        0.3, ge=0.0, le=0.9, description="variance share of order-flow impact"
    )
    branching: float = Field(0.5, ge=0.0, lt=0.95, description="self-excitation of trade arrivals")
    regime_switching: bool = True


@dataclass(frozen=True)
class SimChunk:
    """One symbol-day of one kind, schema-conformed (``kind`` is a lake kind)."""

    symbol: str
    day: date
    kind: str
    frame: pl.DataFrame


@dataclass
class _SymbolState:
    """What one day hands to the next so days join without seams."""

    x: float
    excite: float
    carry_exp: np.ndarray
    carry_c: np.ndarray
    next_agg_id: int
    next_trade_id: int
    funding_dev: float = 0.0
    last_funding_mid: float = float("nan")
    oi_dev: float = 0.0


def _seeds(seed: int, day_index: int, stream: int) -> tuple[int, int]:
    """Independent (numba kernel seed, numpy seed) for one (day, stream)."""
    state = np.random.SeedSequence([seed, day_index, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]), int(state[1])


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * US_PER_S


def _ts(us: np.ndarray) -> pl.Series:
    return pl.Series("ts", us.astype(np.int64)).cast(TS)


def iter_simulation(cfg: SimConfig) -> Iterator[SimChunk]:
    """Yield ``aggTrades``, ``funding`` and ``open_interest`` per symbol-day, day by day.

    Only one symbol-day of trades is alive at a time.  The same config gives
    byte-identical frames; a different seed gives a different market.
    """
    specs = symbol_specs(cfg.symbols)
    states = [
        _SymbolState(
            x=math.log(s.price),
            excite=s.trades_per_day * cfg.activity / SECONDS_PER_DAY,
            carry_exp=np.empty(0, np.int64),
            carry_c=np.empty(0, np.float64),
            next_agg_id=100_000_000 * (i + 1),
            next_trade_id=300_000_000 * (i + 1),
        )
        for i, s in enumerate(specs)
    ]
    regime, ou = 1, 0.0
    seconds = np.arange(SECONDS_PER_DAY)
    profile = intraday_profile(seconds)
    horizon_us = round(cfg.edge_horizon_s * US_PER_S)
    ou_decay = math.exp(-1.0 / _OU_TAU_S)
    for d in range(cfg.days):
        day = cfg.start + timedelta(days=d)
        kseed, _ = _seeds(cfg.seed, d, 0)
        reg, ou_path, common_z = market_day(
            kseed,
            SECONDS_PER_DAY,
            regime,
            ou,
            _P_LEAVE,
            _REGIME_NEXT,
            cfg.regime_switching,
            ou_decay,
            _OU_SD,
        )
        regime, ou = int(reg[-1]), float(ou_path[-1])
        weekend = 0.6 if day.weekday() >= 5 else 1.0
        rate_mult = _REGIME_RATE[reg] * profile * np.exp(ou_path) * (weekend / _RATE_NORM)
        vol_mult = (
            _REGIME_VOL[reg]
            * np.sqrt(profile)
            * np.exp(0.5 * ou_path)
            * (math.sqrt(weekend) / _VOL_NORM)
        )
        log.debug("simulating %s: regime shares %s", day, np.bincount(reg, minlength=3) / len(reg))
        for i, spec in enumerate(specs):
            yield from _symbol_day(
                cfg, spec, states[i], d, day, i, rate_mult, vol_mult, common_z, horizon_us
            )


def _symbol_day(
    cfg: SimConfig,
    spec: SymbolSpec,
    st: _SymbolState,
    d: int,
    day: date,
    i: int,
    rate_mult: np.ndarray,
    vol_mult: np.ndarray,
    common_z: np.ndarray,
    horizon_us: int,
) -> Iterator[SimChunk]:
    kseed, nseed = _seeds(cfg.seed, d, i + 1)
    rng = np.random.default_rng(nseed)
    base_rate = spec.trades_per_day * cfg.activity / SECONDS_PER_DAY
    rate = base_rate * rate_mult
    sigma = spec.daily_vol / math.sqrt(SECONDS_PER_DAY) * vol_mult
    t_us, price, qty, maker, n_sub, mid, st.excite, st.x, st.carry_exp, st.carry_c = symbol_day(
        kseed,
        sigma,
        rate,
        common_z,
        spec.beta,
        cfg.impact_share,
        cfg.branching,
        st.excite,
        st.x,
        spec.tick,
        spec.lot,
        spec.median_qty,
        spec.mean_qty,
        _SIZE_SIGMA,
        _TAIL_PROB,
        _TAIL_SCALE,
        _TAIL_ALPHA,
        cfg.planted_edge,
        horizon_us,
        st.carry_exp,
        st.carry_c,
    )
    n = len(t_us)
    day_us = _day_start_us(day)
    price = np.round(price, spec.decimals)
    qty = np.round(qty, 8)
    last_ids = st.next_trade_id - 1 + np.cumsum(n_sub)
    trades = pl.DataFrame(
        {
            "ts": _ts(day_us + t_us),
            "trade_id": np.arange(st.next_agg_id, st.next_agg_id + n, dtype=np.int64),
            "price": price,
            "qty": qty,
            "quote_qty": np.round(price * qty, 8),
            "is_buyer_maker": maker,
            "first_trade_id": last_ids - n_sub + 1,
            "last_trade_id": last_ids,
        }
    )
    st.next_agg_id += n
    st.next_trade_id += int(n_sub.sum())
    yield SimChunk(spec.name, day, "aggTrades", conform(trades, "aggTrades"))
    yield SimChunk(spec.name, day, "funding", _funding(st, spec, day_us, mid, rng))
    yield SimChunk(
        spec.name, day, "open_interest", _open_interest(st, spec, cfg, day_us, mid, t_us, qty, rng)
    )


def _funding(
    st: _SymbolState, spec: SymbolSpec, day_us: int, mid: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """8-hourly funding: AR(1) around 1e-4 pushed up by the previous 8 h return."""
    secs = np.array(FUNDING_HOURS) * 3600
    marks = mid[secs]
    prev = np.concatenate(
        [[marks[0] if math.isnan(st.last_funding_mid) else st.last_funding_mid], marks[:-1]]
    )
    drift = np.log(marks / prev)
    dev = ar1_path(st.funding_dev, 0.7, 0.01 * drift + 3e-5 * rng.standard_normal(len(secs)))
    st.funding_dev, st.last_funding_mid = float(dev[-1]), float(marks[-1])
    frame = pl.DataFrame(
        {
            "ts": _ts(day_us + secs * US_PER_S),
            "funding_rate": np.clip(1e-4 + dev, -3e-3, 3e-3),
            "mark_price": np.round(marks, spec.decimals),
            "funding_interval_hours": np.full(len(secs), 8.0),
        }
    )
    return conform(frame, "funding")


def _open_interest(
    st: _SymbolState,
    spec: SymbolSpec,
    cfg: SimConfig,
    day_us: int,
    mid: np.ndarray,
    t_us: np.ndarray,
    qty: np.ndarray,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """5-minute open interest; the value at ``ts`` reflects trading up to ``ts``."""
    n_win = SECONDS_PER_DAY // OI_STEP_S
    vol = np.bincount(t_us // (OI_STEP_S * US_PER_S), weights=qty, minlength=n_win)[:n_win]
    expected = spec.trades_per_day * cfg.activity * spec.mean_qty / n_win
    shock = 0.01 * np.clip(vol / expected - 1.0, -1.0, 3.0) + 0.002 * rng.standard_normal(n_win)
    dev = ar1_path(st.oi_dev, 0.995, shock)
    levels = np.concatenate([[st.oi_dev], dev[:-1]])  # at ts: windows strictly before ts
    st.oi_dev = float(dev[-1])
    base = 0.5 * spec.trades_per_day * cfg.activity * spec.mean_qty
    oi = np.round(base * np.exp(levels), 3)
    secs = np.arange(n_win) * OI_STEP_S
    frame = pl.DataFrame(
        {
            "ts": _ts(day_us + secs * US_PER_S),
            "open_interest": oi,
            "open_interest_value": oi * mid[secs],
        }
    )
    return conform(frame, "open_interest")


def simulate(cfg: SimConfig) -> dict[str, pl.DataFrame]:
    """All chunks collected into long frames ``ts, symbol, ...`` per kind.

    Convenient for small configs (quickstart, tests); large runs should
    stream :func:`iter_simulation` into the lake instead.
    """
    parts: dict[str, list[pl.DataFrame]] = {}
    for chunk in iter_simulation(cfg):
        framed = chunk.frame.with_columns(pl.lit(chunk.symbol).alias("symbol"))
        parts.setdefault(chunk.kind, []).append(framed)
    out = {}
    for kind, frames in parts.items():
        f = pl.concat(frames)
        cols = ["ts", "symbol", *[c for c in f.columns if c not in ("ts", "symbol")]]
        out[kind] = f.select(cols).sort(["symbol", "ts"], maintain_order=True)
    return out


# --------------------------------------------------------------------------- planted edge


def _as_us(at: np.ndarray | pl.Series) -> np.ndarray:
    s = at if isinstance(at, pl.Series) else pl.Series(np.asarray(at))
    if s.dtype == pl.Int64:
        return s.to_numpy()
    return s.cast(TS).cast(pl.Int64).to_numpy()


def planted_signal(
    trades: pl.DataFrame, at: np.ndarray | pl.Series, *, horizon_s: float
) -> np.ndarray:
    """The planted predictor ``S_t`` at decision times ``at`` (one symbol's trades).

    ``S_t = sum s_j sqrt(q_j) w_j / sqrt(sum q_j w_j^2)`` over trades with
    ``t - H < ts_j < t`` (strictly before ``t``: a bar closing at ``t`` has
    seen them), ``w_j = 1 - (t - ts_j)/H``, ``s_j = +1`` for aggressive buys.
    NaN where no trade lies in the window.  ``at`` must be sorted
    (Datetime or int64 microseconds).
    """
    if horizon_s <= 0:
        raise HydraError(f"horizon_s must be positive, got {horizon_s}")
    t_us = trades.get_column("ts").cast(pl.Int64).to_numpy()
    q = trades.get_column("qty").to_numpy().astype(np.float64)
    sign = np.where(trades.get_column("is_buyer_maker").to_numpy(), -1.0, 1.0)
    at_us = _as_us(at)
    if np.any(np.diff(at_us) < 0) or np.any(np.diff(t_us) < 0):
        raise HydraError(
            "planted_signal needs trades and decision times sorted by time",
            hint="sort by ts (one symbol at a time)",
        )
    num, den = planted_signal_kernel(t_us, sign * np.sqrt(q), q, at_us, round(horizon_s * US_PER_S))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.sqrt(den), np.nan)


def oracle_frame(trades: pl.DataFrame, *, horizon_s: float, every_s: float = 1.0) -> pl.DataFrame:
    """Decision grid with the planted signal and the realised forward log return.

    Columns ``ts`` (decision time), ``signal`` (:func:`planted_signal`),
    ``ret`` = log(last price before ``ts+H``) - log(last price before ``ts``).
    Rows without a signal or a full horizon ahead are dropped.
    """
    t_us = trades.get_column("ts").cast(pl.Int64).to_numpy()
    px = np.log(trades.get_column("price").to_numpy())
    h_us = round(horizon_s * US_PER_S)
    step = round(every_s * US_PER_S)
    if len(t_us) == 0:
        return pl.DataFrame(schema={"ts": TS, "signal": pl.Float64, "ret": pl.Float64})
    first = (t_us[0] // step + 1) * step
    at = np.arange(first, t_us[-1] - h_us + 1, step, dtype=np.int64)
    sig = planted_signal(trades, at, horizon_s=horizon_s)
    i0 = np.searchsorted(t_us, at, side="left") - 1
    i1 = np.searchsorted(t_us, at + h_us, side="left") - 1
    ok = (i0 >= 0) & np.isfinite(sig)
    ret = px[i1] - px[np.maximum(i0, 0)]
    return pl.DataFrame({"ts": _ts(at[ok]), "signal": sig[ok], "ret": ret[ok]})


def roc_auc(score: np.ndarray, label: np.ndarray) -> float:
    """Mann-Whitney AUC with tied scores counted half (no sklearn needed)."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label, dtype=bool)
    n1 = int(label.sum())
    n0 = len(label) - n1
    if n1 == 0 or n0 == 0:
        raise HydraError("AUC needs both classes", hint="use a longer simulation or horizon")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s))
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[label].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def achievable_auc(trades: pl.DataFrame, *, horizon_s: float, every_s: float = 1.0) -> float:
    """AUC of the planted signal for ``return(t, t+H) > 0`` measured on ``trades``.

    Ties (zero return) are dropped.  This is what a model that recovered the
    planted rule exactly would score on the same data; with
    ``planted_edge=0`` it is 0.5 up to sampling noise (which is large: the
    horizons overlap, so there are about ``duration/H`` independent labels).
    """
    of = oracle_frame(trades, horizon_s=horizon_s, every_s=every_s).filter(pl.col("ret") != 0)
    return roc_auc(of.get_column("signal").to_numpy(), of.get_column("ret").to_numpy() > 0)


def gaussian_auc(planted_edge: float) -> float:
    """Closed-form AUC of the planted signal in the Gaussian model (see module doc)."""
    e = float(planted_edge)
    rho = e / math.sqrt(1.0 + 2.0 * e * e)
    return 0.5 + 2.0 / math.pi * math.asin(rho / math.sqrt(2.0))


# --------------------------------------------------------------------------- archive files


def archive_relpath(symbol: str, day: date, market: str = "um") -> str:
    """data.binance.vision path of a daily aggTrades zip (``market`` um, cm or spot)."""
    root = {"um": "data/futures/um", "cm": "data/futures/cm", "spot": "data/spot"}.get(market)
    if root is None:
        raise HydraError(f"unknown market {market!r}", hint="use 'um', 'cm' or 'spot'")
    return f"{root}/daily/aggTrades/{symbol}/{symbol}-aggTrades-{day.isoformat()}.zip"


def write_archive_zip(
    frame: pl.DataFrame, path: str | os.PathLike[str], *, symbol: str, day: date, market: str = "um"
) -> Path:
    """Write ``frame`` (aggTrades schema) as a Binance daily aggTrades zip + ``.CHECKSUM``.

    Futures (um/cm): header ``agg_trade_id,price,quantity,first_trade_id,
    last_trade_id,transact_time,is_buyer_maker``, ms timestamps, ``true/false``.
    Spot: no header, an extra ``is_best_match`` column, ``True/False``, and
    microsecond timestamps from 2025-01-01 as Binance does.  Both files are
    written atomically; returns the zip path.
    """
    archive_relpath(symbol, day, market)  # validates market
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ts_us = frame.get_column("ts").cast(TS).cast(pl.Int64)
    spot = market == "spot"
    divisor = 1 if spot and day >= date(2025, 1, 1) else 1000
    csv_frame = pl.DataFrame(
        {
            "agg_trade_id": frame.get_column("trade_id"),
            "price": frame.get_column("price"),
            "quantity": frame.get_column("qty"),
            "first_trade_id": frame.get_column("first_trade_id"),
            "last_trade_id": frame.get_column("last_trade_id"),
            "transact_time": ts_us // divisor,
            "is_buyer_maker": frame.get_column("is_buyer_maker"),
        }
    )
    if spot:
        bools = ["is_buyer_maker", "is_best_match"]
        csv_frame = csv_frame.with_columns(pl.lit(True).alias("is_best_match")).with_columns(
            [
                pl.when(pl.col(c)).then(pl.lit("True")).otherwise(pl.lit("False")).alias(c)
                for c in bools
            ]
        )
    buf = io.BytesIO()
    csv_frame.write_csv(buf, include_header=not spot)
    name = f"{symbol}-aggTrades-{day.isoformat()}"
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo(f"{name}.csv", date_time=(day.year, day.month, day.day, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, buf.getvalue())
    data = zbuf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    _atomic_write(path, data)
    _atomic_write(path.with_name(path.name + ".CHECKSUM"), f"{digest}  {path.name}\n".encode())
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
