"""F2 absorption and price impact (seed 000): how much volume it takes to move price.

High absorption (lots of volume, little movement) marks passive liquidity
soaking up aggression — often before reversals; high impact marks a thin
book.  Seed 000 divided by the *absolute* price change with a 1e-6 floor,
which means something different for BTC at 60 000 and DOGE at 0.1; we use
the *relative* change |close_t / close_{t-1} - 1| with the same 1e-6 floor
(0.01 bp), so the features compare across symbols.  The z-scores use the
seed's 500-bar (125 s at 250 ms) trailing window.
"""

from __future__ import annotations

import numpy as np

from hydraquant.features.inputs import EPS, rolling_z, simple_returns, window
from hydraquant.features.registry import FeatureContext, feature

GROUP = "absorption"
Z_WINDOW = "125s"
MIN_MOVE = 1e-6


def _move(ctx: FeatureContext) -> np.ndarray:
    """|relative close change| floored at MIN_MOVE; NaN on the first bar."""
    return np.maximum(np.abs(simple_returns(ctx.col("close"))), MIN_MOVE)


@feature("absorption_raw", group=GROUP, warmup=1)
def absorption_raw(ctx: FeatureContext) -> np.ndarray:
    """Volume per unit of relative price move in this bar."""
    return ctx.col("volume").astype(np.float64) / _move(ctx)


@feature("absorption_z", group=GROUP, warmup=2, warmup_time=Z_WINDOW)
def absorption_z(ctx: FeatureContext) -> np.ndarray:
    """absorption_raw as a z-score against its trailing 125 s."""
    return rolling_z(absorption_raw(ctx), window(ctx, Z_WINDOW, min_bars=2))


@feature("price_impact", group=GROUP, warmup=1)
def price_impact(ctx: FeatureContext) -> np.ndarray:
    """Relative price move per unit of volume in this bar (inverse of absorption)."""
    return _move(ctx) / (ctx.col("volume").astype(np.float64) + EPS)


@feature("price_impact_z", group=GROUP, warmup=2, warmup_time=Z_WINDOW)
def price_impact_z(ctx: FeatureContext) -> np.ndarray:
    """price_impact as a z-score against its trailing 125 s."""
    return rolling_z(price_impact(ctx), window(ctx, Z_WINDOW, min_bars=2))
