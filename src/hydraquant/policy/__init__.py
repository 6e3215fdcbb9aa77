"""One trading policy (S1-S4) for backtest and live alike.

The rules are ``@njit`` functions over a flat config record
(:meth:`PolicyConfig.to_array`) and per-symbol / per-account state rows
(:mod:`hydraquant.policy.state`).  The backtest kernel calls them per bar;
a live engine calls the same functions from Python once per bar close.
"""

from hydraquant.policy import state
from hydraquant.policy.config import (
    EntryConfig,
    ExitConfig,
    GuardConfig,
    PolicyConfig,
    SizingConfig,
)
from hydraquant.policy.entries import entry_decision, filters_reason, gates_reason, signal_side
from hydraquant.policy.exits import (
    after_bar,
    confidence_norm,
    exit_decision,
    intrabar_exit,
    liquidation_price,
    open_position,
    stop_distances,
)
from hydraquant.policy.guards import guard_on_bar, guard_on_trade
from hydraquant.policy.sizing import kelly_fraction, position_size, risk_multiplier, round_qty

__all__ = [
    "EntryConfig",
    "ExitConfig",
    "GuardConfig",
    "PolicyConfig",
    "SizingConfig",
    "after_bar",
    "confidence_norm",
    "entry_decision",
    "exit_decision",
    "filters_reason",
    "gates_reason",
    "guard_on_bar",
    "guard_on_trade",
    "intrabar_exit",
    "kelly_fraction",
    "liquidation_price",
    "open_position",
    "position_size",
    "risk_multiplier",
    "round_qty",
    "signal_side",
    "state",
    "stop_distances",
]
