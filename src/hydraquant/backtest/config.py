"""The ``[backtest]`` config section, shared by ``hydraquant backtest`` and run configs."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.gate import GateConfig
from hydraquant.policy.config import PolicyConfig


class BacktestConfig(BaseModel):
    """The ``[backtest]`` config section: policy, costs, OOS gate and starting cash.

    Lives here (not in the CLI) so :mod:`hydraquant.config` can import it
    without importing the command tree.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    policy: PolicyConfig = PolicyConfig()
    costs: CostConfig = CostConfig()
    gate: GateConfig = GateConfig()
    initial_cash: float = Field(10_000.0, gt=0.0)
