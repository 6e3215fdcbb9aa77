"""L7 Peak / Slope / Bottom turning-point labels over horizons H0-H5 (MarketRegimeNet, seed 003).

A bar ``j`` is a PEAK if its close is strictly above every close in the
``half_window`` bars before it and at least every close in the
``half_window`` bars after it (a BOTTOM symmetrically); everything else is a
SLOPE.  The strict/non-strict split makes a flat run count once (its first
bar) instead of never or every bar.  Deciding a turning point needs the
``half_window`` bars AFTER ``j``: this is a centred window, which is exactly
why it may only ever be a label (with ``t_end``), never a feature.

Horizon ``k`` (H0..H5) at decision row ``t`` is the class of bar ``t+1+k``
(H0 = the next bar), known at ``t_end_h{k} = ts[t+1+k+half_window] + interval``.
Seed 003 trains on all six horizons because it multiplies the share of rare
Peak/Bottom labels (~1 % each at H0).  ``t_end`` is the time ALL horizons are
known (H-last); rows with a horizon that cannot be decided are null there.
O(n): two trailing monotone-deque extremes serve both sides of the window.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import polars as pl

from hydraquant.labels import labels_nb as nbk
from hydraquant.labels._frame import (
    check_bars,
    check_horizon,
    masked,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)


class TurningPoint(IntEnum):
    """Class order of the seed's cost matrix (Peak, Slope, Bottom)."""

    PEAK = 0
    SLOPE = 1
    BOTTOM = 2


def turning_point_class(close: np.ndarray, half_window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar class and whether it is decidable (needs ``half_window`` bars on both sides)."""
    n = close.shape[0]
    w = half_window
    tmax = nbk.rolling_max(close, w)
    tmin = nbk.rolling_min(close, w)
    cls = np.full(n, TurningPoint.SLOPE, dtype=np.int8)
    defined = np.zeros(n, dtype=bool)
    if n > 2 * w:
        j = np.arange(w, n - w)
        left_max, left_min = tmax[j - 1], tmin[j - 1]
        right_max, right_min = tmax[j + w], tmin[j + w]
        c = close[j]
        cls[j[(c > left_max) & (c >= right_max)]] = TurningPoint.PEAK
        cls[j[(c < left_min) & (c <= right_min)]] = TurningPoint.BOTTOM
        defined[j] = True
    return cls, defined


def turning_points(
    frame: pl.DataFrame,
    *,
    half_window: int = 48,
    n_horizons: int = 6,
    price_col: str = "close",
    interval: str | None = None,
) -> pl.DataFrame:
    """Peak/Slope/Bottom labels ``label_h0 .. label_h{n-1}`` for every decision row.

    Returns ``ts, label_h{k} (Int8: 0 Peak, 1 Slope, 2 Bottom), t_end_h{k}, t_end``.
    """
    w = check_horizon(half_window, name="half_window")
    m = check_horizon(n_horizons, name="n_horizons")
    frame = check_bars(frame, [price_col], where="turning_points")
    step = resolve_interval_us(frame, interval)
    (close,) = positive_prices(frame, [price_col], where="turning_points")
    ts = ts_us(frame)
    n = close.shape[0]
    cls, defined = turning_point_class(close, w)
    idx = np.arange(n)
    cols: list[pl.Series] = [frame["ts"]]
    ends: list[pl.Series] = []
    for k in range(m):
        j = idx + 1 + k
        inside = j < n
        jj = np.where(inside, j, 0)
        ok = inside & defined[jj]
        cols.append(masked(f"label_h{k}", cls[jj], ok, pl.Int8))
        ends.append(t_end_series(ts, np.where(ok, jj + w, -1), step, name=f"t_end_h{k}"))
    return pl.DataFrame(cols + ends).with_columns(pl.col(f"t_end_h{m - 1}").alias("t_end"))
