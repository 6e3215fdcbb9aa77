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

from hydraquant.features.inputs import EPS, returns, rolling_z, window
from hydraquant.features.registry import FeatureContext, feature

GROUP = "absorption"
Z_WINDOW = "125s"
MIN_MOVE = 1e-6


def _move(ctx: FeatureContext) -> np.ndarray:
    """|relative close change| floored at MIN_MOVE; NaN on the first bar (once per build)."""
    return ctx.cached(("abs_move",), lambda: np.maximum(np.abs(returns(ctx)), MIN_MOVE))


@feature("absorption_raw", group=GROUP, warmup=1)
def absorption_raw(ctx: FeatureContext) -> np.ndarray:
    """Volume per unit of relative price move in this bar."""
    return ctx.fcol("volume") / _move(ctx)


@feature("absorption_z", group=GROUP, warmup=2, warmup_time=Z_WINDOW)
def absorption_z(ctx: FeatureContext) -> np.ndarray:
    """absorption_raw as a z-score against its trailing 125 s."""
    return rolling_z(absorption_raw(ctx), window(ctx, Z_WINDOW, min_bars=2))


@feature("price_impact", group=GROUP, warmup=1)
def price_impact(ctx: FeatureContext) -> np.ndarray:
    """Relative price move per unit of volume in this bar (inverse of absorption)."""
    return _move(ctx) / (ctx.fcol("volume") + EPS)


@feature("price_impact_z", group=GROUP, warmup=2, warmup_time=Z_WINDOW)
def price_impact_z(ctx: FeatureContext) -> np.ndarray:
    """price_impact as a z-score against its trailing 125 s."""
    return rolling_z(price_impact(ctx), window(ctx, Z_WINDOW, min_bars=2))
