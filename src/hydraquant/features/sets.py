"""Named feature sets: the ordered lists presets ask for by name.

Why ordered: a model's columns are this list in this order; the set is the
contract between training and serving.  Names are the seeds' own, so a
preset reads like the notebook it reproduces.  Sets refer to features by name
only; the time features come from ``calendar.py``.
"""

from __future__ import annotations

from hydraquant.features.registry import register_set

# Seed 000 ("Hydra V3") FEATURE_COLS, in the notebook's order (28 features).
HYDRA_V3: tuple[str, ...] = (
    # order flow (7)
    "MOI_250ms", "MOI_1s", "MOI_5s", "MOI_z",
    "delta_velocity", "delta_velocity_5s", "AggressionPersistence",
    # order-flow momentum (3)
    "MOI_roc_1s", "MOI_roc_5s", "MOI_acceleration",
    # absorption (3, the seed files MOI_flip_rate here too)
    "absorption_z", "price_impact_z", "MOI_flip_rate",
    # volatility (4)
    "vol_1m", "vol_5m", "vol_ratio", "vol_rank",
    # structure (4)
    "dist_lvn", "dist_poc", "dist_lvn_atr", "dist_poc_atr",
    # time (3)
    "hour_sin", "hour_cos", "is_weekend",
    # trade intensity (2)
    "trade_intensity", "trade_intensity_z",
    # cumulative delta (2)
    "cum_delta_1m", "cum_delta_5m",
)  # fmt: skip

register_set("hydra_v3", HYDRA_V3)
