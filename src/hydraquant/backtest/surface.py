"""Threshold x window surface (SPEC X3, seed 004 §23.11).

Why a surface and not just the best point: a confidence threshold that only
works for one holding window (an isolated peak) is curve-fit; a broad
plateau of good cells is a robust setting.  Seed 004 plots equity over
confidence thresholds 0.55..0.85 against a window; here the window is a
policy parameter, by default the holding window ``exit.max_bars_held``
(TIMEOUT after that many bars), so each cell is one complete backtest.

The grid is run through :func:`hydraquant.backtest.sweep.sweep` (the same
threaded engine calls, grid order kept), so the surface's ``dsr`` column is
deflated by the number of cells tried.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.engine import MarketData
from hydraquant.backtest.sweep import sweep
from hydraquant.errors import HydraError
from hydraquant.policy.config import PolicyConfig

if TYPE_CHECKING:
    import plotly.graph_objects as go


def threshold_window_surface(
    market: MarketData,
    base_policy: PolicyConfig,
    thresholds: Sequence[float],
    windows: Sequence[int | float],
    costs: CostConfig | None = None,
    n_jobs: int = 1,
    window_param: str = "exit.max_bars_held",
    *,
    threshold_param: str = "entry.conf_threshold",
    initial_cash: float = 10_000.0,
    progress: bool = False,
) -> pl.DataFrame:
    """One row per (threshold, window), threshold-major: ``threshold, window``, the run's metrics, ``dsr``."""
    thresholds = list(thresholds)
    windows = list(windows)
    if not thresholds or not windows:
        raise HydraError(
            "surface needs at least one threshold and one window",
            hint="e.g. --surface conf=0.55:0.85:0.05 --window 30,60,120",
        )
    if threshold_param == window_param:
        raise HydraError(
            f"threshold and window are the same parameter ({window_param})",
            hint="choose a window parameter such as exit.max_bars_held",
        )
    grid = {threshold_param: thresholds, window_param: windows}
    frame = sweep(
        market,
        base_policy,
        grid,
        costs,
        initial_cash=initial_cash,
        n_jobs=n_jobs,
        progress=progress,
    )
    t_col, w_col = threshold_param.replace(".", "__"), window_param.replace(".", "__")
    return frame.rename({t_col: "threshold", w_col: "window"}).with_columns(
        pl.col("threshold").cast(pl.Float64)
    )


def surface_matrix(frame: pl.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, windows, z[threshold, window]) of one metric; missing cells are NaN."""
    if metric not in frame.columns:
        metrics = [c for c in frame.columns if c not in ("threshold", "window")]
        raise HydraError(
            f"surface has no metric {metric!r}", hint=f"choose one of {', '.join(metrics)}"
        )
    th = np.unique(frame["threshold"].to_numpy())
    wi = np.unique(frame["window"].to_numpy())
    z = np.full((th.size, wi.size), np.nan)
    i = np.searchsorted(th, frame["threshold"].to_numpy())
    j = np.searchsorted(wi, frame["window"].to_numpy())
    z[i, j] = frame[metric].cast(pl.Float64).to_numpy()
    return th, wi, z


def surface_figure(frame: pl.DataFrame, metric: str = "sharpe") -> go.Figure:
    """Heatmap of ``metric`` over threshold (rows) x window (columns); infinite values shown blank."""
    import plotly.graph_objects as go

    th, wi, z = surface_matrix(frame, metric)
    z = np.where(np.isfinite(z), z, np.nan)
    text = [[("" if math.isnan(v) else f"{v:.3g}") for v in row] for row in z.tolist()]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"{w:g}" for w in wi],
            y=[f"{t:.4g}" for t in th],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            colorbar={"title": {"text": metric}},
            hovertemplate="threshold %{y}<br>window %{x}<br>" + metric + " %{z:.4g}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{metric} by confidence threshold x window",
        xaxis={"title": {"text": "window (bars)"}, "type": "category"},
        yaxis={"title": {"text": "threshold"}, "type": "category"},
        template="plotly_white",
    )
    return fig
