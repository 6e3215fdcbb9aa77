"""Labels (targets) for supervised training — L1-L9 of the spec.

Every labeler takes ONE symbol's bars (polars, ts = bar open, ascending),
decides at the close of bar ``i`` with entry price ``close[i]``, and returns
a frame with ``ts``, the label column(s), side information and ``t_end``: the
time the label becomes known (close of the last bar it looks at), which the
purged splitters use.  Rows whose horizon runs past the data are null, never
a partial-horizon label.  Labels are targets only; they must never be fed
back as features.
"""

from hydraquant.labels._frame import LabelError
from hydraquant.labels.barriers import triple_barrier
from hydraquant.labels.events import cusum_filter, decision_points
from hydraquant.labels.exits import PositionAction, exit_labels, hold_exit_add
from hydraquant.labels.fee_adjusted import MfeTargetTransform, fee_adjusted_mfe, horizon_bars
from hydraquant.labels.horizon import fixed_horizon_direction, profitable_trade
from hydraquant.labels.regimes import (
    HydraRegime,
    MarketState,
    TrendRegime,
    hydra_regime,
    market_state,
    trend_regime,
)
from hydraquant.labels.turning_points import TurningPoint, turning_points
from hydraquant.labels.weights import (
    class_balanced_weights,
    label_uniqueness,
    normalize_mean,
    recency_weights,
)

__all__ = [
    "HydraRegime",
    "LabelError",
    "MarketState",
    "MfeTargetTransform",
    "PositionAction",
    "TrendRegime",
    "TurningPoint",
    "class_balanced_weights",
    "cusum_filter",
    "decision_points",
    "exit_labels",
    "fee_adjusted_mfe",
    "fixed_horizon_direction",
    "hold_exit_add",
    "horizon_bars",
    "hydra_regime",
    "label_uniqueness",
    "market_state",
    "normalize_mean",
    "profitable_trade",
    "recency_weights",
    "trend_regime",
    "triple_barrier",
    "turning_points",
]
