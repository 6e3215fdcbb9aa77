"""A small simulated lake with 1m bars and a next-5-bar direction training set (bundle tests)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

from hydraquant.data.lake import Lake
from hydraquant.features.registry import build_features


def direction_training_set(
    root: Path, symbols: list[str], features: list[str], before: datetime, *, seed: int
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Simulate the symbols over 1 day into ``root/lake`` and build 1m bars; return the features
    of every bar, ``X`` (those before ``before``) and ``y`` ("up"/"down" over the next 5 bars)."""
    from hydraquant.pipeline.bars_stage import build_bars
    from hydraquant.pipeline.simulate_stage import simulate_into_lake

    lake = Lake(root / "lake")
    simulate_into_lake(lake, symbols=len(symbols), days=1, seed=seed, activity=0.05)
    build_bars(lake, symbols, "1m")
    bars = lake.scan("bars", symbols, interval="1m").collect()
    feats = build_features(bars, features, interval="1m")
    fwd = bars.select(((pl.col("close").shift(-5).over("symbol") / pl.col("close")) - 1).alias("fwd"))["fwd"]
    train = feats.with_columns(fwd.alias("fwd")).filter(pl.col("ts") < before, pl.col("fwd").is_not_null())
    return feats, train.select(features).to_numpy(), np.where(train["fwd"].to_numpy() > 0, "up", "down")
