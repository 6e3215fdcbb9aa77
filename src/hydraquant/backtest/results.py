"""Backtest results: trades table, equity curve, metrics, buy & hold, per-regime breakdown.

Why metrics are computed per *position*: a partial close writes its own row
(close type PARTIAL) so fills stay auditable, but a win rate counted over
rows would score one trade twice.  Equity metrics use bar-to-bar returns of
the mark-to-market equity, annualised with 365.25 days (crypto trades 24/7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from hydraquant.backtest import engine_nb as E
from hydraquant.backtest.overfitting import deflated_sharpe_ratio, returns_moments
from hydraquant.policy.state import CLOSE_TYPE_NAMES

if TYPE_CHECKING:
    from hydraquant.backtest.engine import MarketData

_YEAR_US = 365.25 * 86_400_000_000


@dataclass(frozen=True)
class BacktestResult:
    """Everything a report or a gate needs from one run."""

    trades: pl.DataFrame
    equity: pl.DataFrame
    metrics: dict[str, float]
    buy_hold: dict[str, float]
    per_regime: pl.DataFrame
    close_types: dict[str, int]

    def deflated_sharpe(self, n_trials: int, sr_variance: float) -> tuple[float, float]:
        """(DSR, SR0) of this run's per-bar Sharpe given ``n_trials`` configurations tried.

        ``sr_variance`` is the variance of the per-bar Sharpe ratios across the
        trials (e.g. from a sweep).
        """
        eq = self.equity["equity"].to_numpy()
        r = np.diff(eq) / eq[:-1]
        sr, skew, kurt, n = returns_moments(r)
        return deflated_sharpe_ratio(sr, n, n_trials, sr_variance, skew, kurt)


def trade_stats(pnl: np.ndarray) -> dict[str, float]:
    """Win rate, profit factor and averages of per-position net P&L."""
    pnl = np.asarray(pnl, dtype=np.float64)
    n = pnl.size
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_win = float(wins.sum())
    gross_loss = float(-losses.sum())
    if n == 0:
        pf = math.nan
    elif gross_loss == 0.0:
        pf = math.inf if gross_win > 0 else math.nan
    else:
        pf = gross_win / gross_loss
    return {
        "trades": float(n),
        "win_rate": float(wins.size / n) if n else math.nan,
        "profit_factor": pf,
        "avg_pnl": float(pnl.mean()) if n else math.nan,
        "net_pnl": float(pnl.sum()),
    }


def equity_stats(equity: np.ndarray, initial: float, bar_us: int) -> dict[str, float]:
    """Return, annualised Sharpe/Sortino and max drawdown of an equity curve."""
    eq = np.asarray(equity, dtype=np.float64)
    full = np.concatenate(([initial], eq))
    r = np.diff(full) / full[:-1]
    ppy = _YEAR_US / bar_us
    sd = r.std(ddof=1) if r.size > 1 else math.nan
    sharpe = float(r.mean() / sd * math.sqrt(ppy)) if sd and sd > 0 else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else math.nan
    sortino = float(r.mean() / downside * math.sqrt(ppy)) if downside and downside > 0 else math.nan
    peak = np.maximum.accumulate(full)
    max_dd = float(np.max(1.0 - full / peak))
    return {
        "sharpe_per_bar": float(r.mean() / sd) if sd and sd > 0 else math.nan,
        "total_return": float(full[-1] / initial - 1.0),
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "final_equity": float(full[-1]),
    }


def buy_and_hold(
    market: MarketData, initial: float, taker_fee: float, bar_us: int
) -> dict[str, float]:
    """Equal-weight buy at each symbol's first open, hold to the end (taker fee both ways)."""
    o = np.asarray(market.open, dtype=np.float64)
    c = np.asarray(market.close, dtype=np.float64)
    n, m = c.shape
    first = np.argmax(np.isfinite(o), axis=0)
    entry = o[first, np.arange(m)] * (1.0 + taker_fee)
    qty = (initial / m) / entry
    if np.isfinite(c).all():
        cf = c
    else:  # forward-fill closes per symbol; before the first bar a symbol is worth its cost
        idx = np.where(np.isfinite(c), np.arange(n)[:, None], 0)
        np.maximum.accumulate(idx, axis=0, out=idx)
        cf = c[idx, np.arange(m)]
        cf = np.where(np.arange(n)[:, None] < first[None, :], entry[None, :], cf)
        cf = np.where(np.isfinite(cf), cf, entry[None, :])
    value = cf @ qty
    value[-1] = float(cf[-1] @ qty) * (1.0 - taker_fee)
    return equity_stats(value, initial, bar_us)


def _positions(trades: pl.DataFrame) -> pl.DataFrame:
    """Merge partial rows into one row per position (net P&L summed)."""
    return (
        trades.group_by(["symbol", "entry_ts"], maintain_order=True)
        .agg(pl.col("pnl").sum(), pl.col("regime").first(), pl.col("exit_ts").max())
        .sort("exit_ts")
    )


def build_result(
    *,
    market: MarketData,
    ts: np.ndarray,
    trades: np.ndarray,
    equity: np.ndarray,
    n_open: np.ndarray,
    gross_notional: np.ndarray,
    initial_cash: float,
    bar_us: int,
    taker_fee: float,
    guard_triggers: int,
) -> BacktestResult:
    """Package kernel outputs as polars frames and metric dicts."""
    syms = np.asarray(market.symbols, dtype=object)
    ts_dt = pl.Series("ts", ts).cast(pl.Datetime("us", "UTC"))
    entry_bar = trades[:, E.T_ENTRY_BAR].astype(np.int64)
    exit_bar = trades[:, E.T_EXIT_BAR].astype(np.int64)
    types = np.asarray(CLOSE_TYPE_NAMES, dtype=object)[trades[:, E.T_TYPE].astype(np.int64)]
    table = pl.DataFrame(
        {
            "symbol": pl.Series(
                syms[trades[:, E.T_SYM].astype(np.int64)].tolist(), dtype=pl.String
            ),
            "side": pl.Series(
                np.where(trades[:, E.T_SIDE] > 0, "long", "short").tolist(), dtype=pl.String
            ),
            "entry_ts": ts_dt.gather(entry_bar),
            "entry_price": trades[:, E.T_ENTRY_PRICE],
            "exit_ts": ts_dt.gather(exit_bar),
            "exit_price": trades[:, E.T_EXIT_PRICE],
            "qty": trades[:, E.T_QTY],
            "pnl": trades[:, E.T_PNL],
            "fees": trades[:, E.T_FEES],
            "funding": trades[:, E.T_FUNDING],
            "close_type": pl.Series(types.tolist(), dtype=pl.String),
            "bars_held": exit_bar - entry_bar,
            "confidence": trades[:, E.T_CONF],
            "regime": trades[:, E.T_REGIME],
        }
    )
    dd = 1.0 - equity / np.maximum.accumulate(np.concatenate(([initial_cash], equity)))[1:]
    eq_frame = pl.DataFrame(
        {
            "ts": ts_dt,
            "equity": equity,
            "drawdown": dd,
            "n_open": n_open,
            "gross_notional": gross_notional,
        }
    )
    positions = _positions(table)
    metrics = trade_stats(positions["pnl"].to_numpy())
    metrics.update(equity_stats(equity, initial_cash, bar_us))
    metrics["exposure"] = float(np.mean(n_open > 0))
    metrics["fees"] = float(table["fees"].sum())
    metrics["funding"] = float(table["funding"].sum())
    metrics["guard_triggers"] = float(guard_triggers)
    per_regime = (
        positions.group_by("regime")
        .agg(
            pl.len().alias("trades"),
            (pl.col("pnl") > 0).mean().alias("win_rate"),
            pl.col("pnl").sum().alias("net_pnl"),
            (
                pl.col("pnl").clip(lower_bound=0).sum() / (-pl.col("pnl").clip(upper_bound=0).sum())
            ).alias("profit_factor"),
        )
        .sort("regime")
    )
    counts = table["close_type"].value_counts()
    close_types = dict(zip(counts["close_type"].to_list(), counts["count"].to_list(), strict=True))
    return BacktestResult(
        trades=table,
        equity=eq_frame,
        metrics=metrics,
        buy_hold=buy_and_hold(market, initial_cash, taker_fee, bar_us),
        per_regime=per_regime,
        close_types=close_types,
    )
