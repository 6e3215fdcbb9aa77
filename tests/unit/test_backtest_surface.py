"""Threshold x window surface: shape, grid order, cells equal individual backtests, heatmap."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from hydraquant.backtest import CostConfig, MarketData, run_backtest
from hydraquant.backtest.surface import surface_figure, surface_matrix, threshold_window_surface
from hydraquant.backtest.sweep import with_overrides
from hydraquant.errors import ConfigError, HydraError
from hydraquant.policy import PolicyConfig

MIN = 60_000_000
THRESHOLDS = [0.55, 0.65, 0.75]
WINDOWS = [5, 20]
BASE = PolicyConfig.model_validate(
    {"entry": {"min_prob_diff": 0.0}, "sizing": {"mode": "fraction", "fraction": 0.5}}
)


@pytest.fixture(scope="module")
def market() -> MarketData:
    """Two random-walk symbols with noisy probabilities spread over 0.4..0.95."""
    rng = np.random.default_rng(11)
    n, m = 3000, 2
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (n, m)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    wick = np.abs(rng.normal(0, 0.001, (n, m))) * close
    p_long = rng.uniform(0.2, 0.95, (n, m))
    p_short = (1 - p_long) * rng.uniform(0, 1, (n, m))
    return MarketData(
        ts=np.arange(n, dtype=np.int64) * MIN,
        symbols=("A", "B"),
        open=open_,
        high=np.maximum(open_, close) + wick,
        low=np.minimum(open_, close) - wick,
        close=close,
        atr=np.full((n, m), 1.0),
        p_long=p_long,
        p_short=p_short,
        interval="1m",
    )


@pytest.fixture(scope="module")
def surface(market) -> pl.DataFrame:
    return threshold_window_surface(market, BASE, THRESHOLDS, WINDOWS, CostConfig(), n_jobs=2)


def test_surface_shape_and_threshold_major_order(surface):
    assert surface.height == len(THRESHOLDS) * len(WINDOWS)
    assert surface["threshold"].to_list() == [t for t in THRESHOLDS for _ in WINDOWS]
    assert surface["window"].to_list() == WINDOWS * len(THRESHOLDS)
    assert {"trades", "win_rate", "profit_factor", "sharpe", "total_return", "dsr"} <= set(
        surface.columns
    )
    # a higher confidence threshold can only remove entries from the candidate set
    trades = surface.filter(pl.col("window") == 20)["trades"].to_numpy()
    assert trades[0] > trades[-1] > 0


@pytest.mark.parametrize(("threshold", "window"), [(0.55, 5), (0.75, 20)])
def test_cells_equal_individual_backtests(market, surface, threshold, window):
    cfg = with_overrides(BASE, {"entry.conf_threshold": threshold, "exit.max_bars_held": window})
    direct = run_backtest(market, cfg, CostConfig())
    row = surface.filter((pl.col("threshold") == threshold) & (pl.col("window") == window)).row(
        0, named=True
    )
    for key, value in direct.metrics.items():
        if math.isnan(value):
            assert math.isnan(row[key]), key
        else:
            assert row[key] == pytest.approx(value, rel=1e-12), key
    assert direct.close_types.get("TIMEOUT", 0) > 0  # the window actually binds


def test_surface_is_independent_of_job_count(market, surface):
    serial = threshold_window_surface(market, BASE, THRESHOLDS, WINDOWS, CostConfig(), n_jobs=1)
    assert serial.equals(surface)


def test_other_window_parameter(market):
    out = threshold_window_surface(
        market, BASE, [0.6, 0.8], [0.5, 2.0], window_param="exit.tp_atr_mult"
    )
    assert out.shape[0] == 4 and out["window"].to_list() == [0.5, 2.0, 0.5, 2.0]


def test_matrix_and_figure(surface):
    th, wi, z = surface_matrix(surface, "sharpe")
    assert th.tolist() == THRESHOLDS and wi.tolist() == WINDOWS and z.shape == (3, 2)
    assert (
        z[2, 1]
        == surface.filter((pl.col("threshold") == 0.75) & (pl.col("window") == 20))["sharpe"][0]
    )
    fig = surface_figure(surface, "total_return")
    heat = fig.data[0]
    assert heat.type == "heatmap" and np.asarray(heat.z).shape == (3, 2)
    assert list(heat.x) == ["5", "20"] and list(heat.y) == ["0.55", "0.65", "0.75"]
    assert "total_return" in fig.layout.title.text


def test_bad_requests_are_clear(market, surface):
    with pytest.raises(HydraError, match="no metric 'nope'"):
        surface_matrix(surface, "nope")
    with pytest.raises(HydraError, match="at least one threshold"):
        threshold_window_surface(market, BASE, [], WINDOWS)
    with pytest.raises(ConfigError, match="unknown sweep parameter"):
        threshold_window_surface(market, BASE, [0.6], [5], window_param="exit.max_bar")
