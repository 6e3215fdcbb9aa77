"""Walk-forward out-of-sample gate (seed 004 §16.3).

Why several short folds instead of one long OOS window: a model that earned
everything in one lucky week passes a single-window test; requiring *every*
fold to clear WR and PF floors (and the median PF a higher one) rejects it.
Folds are the most recent non-overlapping windows, newest last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.engine import BacktestError, MarketData, run_backtest, slice_market
from hydraquant.policy.config import PolicyConfig

_WEEK_US = 7 * 86_400_000_000


class GateConfig(BaseModel):
    """Defaults: 3 non-overlapping 4-week folds, all WR >= 55 % and PF >= 1.8, median PF >= 2.0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_folds: int = Field(3, ge=1)
    fold_weeks: float = Field(4.0, gt=0.0)
    min_win_rate: float = Field(0.55, ge=0.0, le=1.0)
    min_profit_factor: float = Field(1.8, ge=0.0)
    min_median_profit_factor: float = Field(2.0, ge=0.0)
    min_trades: int = Field(1, ge=0, description="a fold with fewer trades fails")


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]
    folds: pl.DataFrame


def fold_bounds(ts_us: np.ndarray, cfg: GateConfig) -> list[tuple[int, int]]:
    """[start, stop) bar indices of the last ``n_folds`` windows of ``fold_weeks`` each."""
    ts = np.asarray(ts_us, dtype=np.int64)
    span = int(cfg.fold_weeks * _WEEK_US)
    end = int(ts[-1]) + 1
    if end - span * cfg.n_folds < int(ts[0]):
        weeks = (end - int(ts[0])) / _WEEK_US
        raise BacktestError(
            f"gate needs {cfg.n_folds} x {cfg.fold_weeks} weeks of bars, data cover {weeks:.1f} weeks",
            hint="provide a longer out-of-sample period or fewer/shorter folds",
        )
    edges = end - span * np.arange(cfg.n_folds, -1, -1)
    idx = np.searchsorted(ts, edges, side="left")
    return [(int(idx[k]), int(idx[k + 1])) for k in range(cfg.n_folds)]


def evaluate_gate(folds: pl.DataFrame, cfg: GateConfig) -> GateResult:
    """Apply the rules to per-fold metrics (columns fold, trades, win_rate, profit_factor)."""
    reasons: list[str] = []
    for row in folds.iter_rows(named=True):
        k, n, wr, pf = row["fold"], row["trades"], row["win_rate"], row["profit_factor"]
        if n < cfg.min_trades:
            reasons.append(f"fold {k}: {int(n)} trades < {cfg.min_trades}")
            continue
        if not wr >= cfg.min_win_rate:
            reasons.append(f"fold {k}: win rate {wr:.1%} < {cfg.min_win_rate:.0%}")
        if not pf >= cfg.min_profit_factor:
            reasons.append(f"fold {k}: profit factor {pf:.2f} < {cfg.min_profit_factor}")
    pfs = np.nan_to_num(folds["profit_factor"].to_numpy(), nan=0.0)
    median_pf = float(np.median(pfs)) if pfs.size else math.nan
    if not median_pf >= cfg.min_median_profit_factor:
        reasons.append(f"median profit factor {median_pf:.2f} < {cfg.min_median_profit_factor}")
    return GateResult(passed=not reasons, reasons=reasons, folds=folds)


def oos_gate(
    market: MarketData,
    policy: PolicyConfig,
    costs: CostConfig | None = None,
    cfg: GateConfig | None = None,
    *,
    initial_cash: float = 10_000.0,
) -> GateResult:
    """Backtest each fold independently (fresh equity) and apply the gate."""
    cfg = cfg or GateConfig()
    rows = []
    for k, (a, b) in enumerate(fold_bounds(np.asarray(market.ts), cfg), start=1):
        res = run_backtest(slice_market(market, a, b), policy, costs, initial_cash=initial_cash)
        m = res.metrics
        rows.append(
            {
                "fold": k,
                "start_bar": a,
                "stop_bar": b,
                "trades": m["trades"],
                "win_rate": m["win_rate"],
                "profit_factor": m["profit_factor"],
                "total_return": m["total_return"],
                "max_drawdown": m["max_drawdown"],
            }
        )
    return evaluate_gate(pl.DataFrame(rows), cfg)
