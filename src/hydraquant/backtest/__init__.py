"""Compiled, event-driven backtest of the shared policy (X1-X3)."""

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.engine import (
    BacktestError,
    MarketData,
    market_from_frame,
    run_backtest,
    slice_market,
)
from hydraquant.backtest.gate import GateConfig, GateResult, evaluate_gate, oos_gate
from hydraquant.backtest.overfitting import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
)
from hydraquant.backtest.results import BacktestResult
from hydraquant.backtest.sweep import sweep, with_overrides

__all__ = [
    "BacktestError",
    "BacktestResult",
    "CostConfig",
    "GateConfig",
    "GateResult",
    "MarketData",
    "deflated_sharpe_ratio",
    "evaluate_gate",
    "expected_max_sharpe",
    "market_from_frame",
    "oos_gate",
    "probabilistic_sharpe_ratio",
    "run_backtest",
    "slice_market",
    "sweep",
    "with_overrides",
]
