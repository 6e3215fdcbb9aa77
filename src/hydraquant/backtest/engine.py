"""Typed wrapper around the numba kernel: validate inputs, align symbols, run, package results.

Why a wrapper: the kernel takes 20 positional arrays and a flat config, which
is fast but easy to misuse; users hand us a :class:`MarketData` (or a long
polars frame) and pydantic configs, and get a :class:`BacktestResult` back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import polars as pl

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.engine_nb import N_T, simulate_nb
from hydraquant.backtest.results import BacktestResult, build_result
from hydraquant.errors import HydraError
from hydraquant.policy.config import PolicyConfig
from hydraquant.policy.state import G_TRIGGERS
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

_DAY_US = 86_400_000_000
_OPTIONAL = (
    "atr",
    "adx",
    "regime",
    "p_long",
    "p_short",
    "p_flat",
    "p_exit",
    "p_score",
    "risk_mult",
    "funding_rate",
)


class BacktestError(HydraError):
    """Inputs to the backtest engine are inconsistent."""


@dataclass(frozen=True)
class MarketData:
    """Aligned [n_bars, n_symbols] arrays; ``ts`` = bar open times in UTC microseconds.

    Optional arrays default to "absent": NaN (no ATR/ADX/regime/prediction,
    filters that need them refuse entries), risk multiplier NaN (=1), funding
    rate NaN (the constant from :class:`CostConfig`).  Missing bars of one
    symbol are NaN rows: that symbol neither fills nor decides on them.
    """

    ts: np.ndarray
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    atr: np.ndarray | None = None
    adx: np.ndarray | None = None
    regime: np.ndarray | None = None
    p_long: np.ndarray | None = None
    p_short: np.ndarray | None = None
    p_flat: np.ndarray | None = None
    p_exit: np.ndarray | None = None
    p_score: np.ndarray | None = None
    risk_mult: np.ndarray | None = None
    funding_rate: np.ndarray | None = None
    interval: str | None = None  # bar interval, e.g. "1m"; inferred from ts when None

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape  # type: ignore[return-value]

    def array(self, name: str) -> np.ndarray:
        """The named input as a C-contiguous float64 [n, m] array ([1, m] of NaN when absent)."""
        value = getattr(self, name)
        if value is None:
            # one NaN row: the kernel broadcasts single-row inputs over all bars
            return np.full((1, self.shape[1]), np.nan)
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 1 and self.shape[1] == 1:
            arr = arr[:, None]
        if arr.shape != self.shape:
            raise BacktestError(
                f"market array '{name}' has shape {arr.shape}, expected {self.shape}",
                hint="every input must be [n_bars, n_symbols], aligned on ts",
            )
        return np.ascontiguousarray(arr)


def market_from_frame(frame: pl.DataFrame, interval: str | None = None) -> MarketData:
    """Pivot a long frame (``ts, symbol, open, high, low, close`` + optional inputs) to arrays.

    Optional columns are those of :class:`MarketData` (``atr``, ``p_long``, ...).
    The union of timestamps becomes the bar grid; a symbol without a bar at a
    timestamp gets NaN there.
    """
    needed = {"ts", "symbol", "open", "high", "low", "close"}
    missing = needed - set(frame.columns)
    if missing:
        raise BacktestError(
            f"long frame lacks columns {sorted(missing)}",
            hint="expected ts, symbol, open, high, low, close (+ atr, p_long, ... optional)",
        )
    ts_us = (
        frame["ts"].dt.epoch("us").to_numpy()
        if frame["ts"].dtype != pl.Int64
        else frame["ts"].to_numpy()
    )
    grid, t_idx = np.unique(ts_us, return_inverse=True)
    symbols, s_idx = np.unique(frame["symbol"].cast(pl.String).to_numpy(), return_inverse=True)
    n, m = grid.size, symbols.size
    flat = t_idx * m + s_idx
    if np.unique(flat).size != flat.size:
        raise BacktestError(
            "duplicate (ts, symbol) rows in the long frame", hint="deduplicate bars first"
        )

    def pivot(col: str) -> np.ndarray:
        out = np.full(n * m, np.nan)
        out[flat] = frame[col].cast(pl.Float64).to_numpy()
        return out.reshape(n, m)

    kwargs = {c: pivot(c) for c in _OPTIONAL if c in frame.columns}
    return MarketData(
        ts=grid.astype(np.int64),
        symbols=tuple(str(s) for s in symbols),
        open=pivot("open"),
        high=pivot("high"),
        low=pivot("low"),
        close=pivot("close"),
        interval=interval,
        **kwargs,
    )


def calendar_indices(ts_us: np.ndarray, offset_hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Day and Monday-based week numbers of each bar in the guard's local day."""
    local = ts_us + round(offset_hours * 3_600_000_000)
    day = np.floor_divide(local, _DAY_US)
    week = np.floor_divide(day - 4, 7)  # 1970-01-05 (day 4) was a Monday
    return day.astype(np.int64), week.astype(np.int64)


def funding_events(ts_us: np.ndarray, period_us: int) -> np.ndarray:
    """True at bar i when a funding time (multiple of ``period_us``) lies in (ts_{i-1}, ts_i]."""
    ev = np.zeros(ts_us.size, dtype=np.bool_)
    if ts_us.size > 1:
        # (ts_{i-1}, ts_i] contains a multiple of P  <=>  the last one <= ts_i is > ts_{i-1}
        ev[1:] = np.floor_divide(ts_us[1:], period_us) * period_us > ts_us[:-1]
    return ev


def _validate(market: MarketData) -> np.ndarray:
    ts = np.asarray(market.ts, dtype=np.int64)
    n, m = market.shape
    if ts.shape != (n,):
        raise BacktestError(
            f"ts has shape {ts.shape}, expected ({n},)", hint="one timestamp per bar row"
        )
    if len(market.symbols) != m:
        raise BacktestError(
            f"{len(market.symbols)} symbols for {m} columns", hint="one name per column"
        )
    if n < 2:
        raise BacktestError("need at least 2 bars to backtest", hint="widen the time range")
    if np.any(np.diff(ts) <= 0):
        bad = int(np.argmax(np.diff(ts) <= 0)) + 1
        raise BacktestError(
            f"timestamps not strictly increasing at bar {bad}", hint="sort and deduplicate by ts"
        )
    return ts


def run_backtest(
    market: MarketData,
    policy: PolicyConfig | None = None,
    costs: CostConfig | None = None,
    *,
    initial_cash: float = 10_000.0,
) -> BacktestResult:
    """Run the policy over ``market`` with next-open fills; see :mod:`engine_nb` for the timeline."""
    policy = policy or PolicyConfig()
    costs = costs or CostConfig()
    if not initial_cash > 0:
        raise BacktestError(
            f"initial_cash must be > 0, got {initial_cash}", hint="pass a positive amount"
        )
    ts = _validate(market)
    n, m = market.shape
    day, week = calendar_indices(ts, policy.guards.day_offset_hours)
    fund_ev = funding_events(ts, interval_us(costs.funding_interval))
    arrays = [market.array(k) for k in ("open", "high", "low", "close", *_OPTIONAL)]
    cfg = policy.to_array()
    cost_arr = costs.to_array()
    cap = max(4096, n * m // 16)
    while True:
        out = simulate_nb(cfg, cost_arr, *arrays, fund_ev, day, week, float(initial_cash), cap)
        trades, nt = out[0], out[1]
        if nt <= cap:
            break
        log.debug("trade table overflow (%d > %d); rerunning with a larger table", nt, cap)
        cap = 2 * n * m + 8
    _, _, equity, n_open, gross, guard, _pos = out
    interval = market.interval
    step_us = interval_us(interval) if interval else int(np.median(np.diff(ts)))
    return build_result(
        market=market,
        ts=ts,
        trades=trades[:nt].reshape(nt, N_T),
        equity=equity,
        n_open=n_open,
        gross_notional=gross,
        initial_cash=float(initial_cash),
        bar_us=step_us,
        taker_fee=costs.taker_fee,
        guard_triggers=int(guard[G_TRIGGERS]),
    )


def slice_market(market: MarketData, start: int, stop: int) -> MarketData:
    """Bars ``start:stop`` of every array (a fold or a window of a longer run)."""
    kwargs = {
        name: (
            None if getattr(market, name) is None else np.asarray(getattr(market, name))[start:stop]
        )
        for name in ("open", "high", "low", "close", *_OPTIONAL)
    }
    return MarketData(
        ts=np.asarray(market.ts)[start:stop],
        symbols=market.symbols,
        interval=market.interval,
        **kwargs,
    )
