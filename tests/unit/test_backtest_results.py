"""Metrics, deflated Sharpe ratio, buy & hold, per-regime table, OOS gate and sweep."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from hydraquant.backtest import (
    CostConfig,
    MarketData,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    run_backtest,
)
from hydraquant.backtest.gate import GateConfig, evaluate_gate, fold_bounds, oos_gate
from hydraquant.backtest.overfitting import probabilistic_sharpe_ratio, returns_moments
from hydraquant.backtest.results import equity_stats, trade_stats
from hydraquant.backtest.sweep import expand_grid, sweep, with_overrides
from hydraquant.errors import ConfigError, HydraError
from hydraquant.policy import PolicyConfig

MIN = 60_000_000
DAY = 86_400_000_000


def test_dsr_matches_bailey_lopez_de_prado_worked_example():
    # Paper example: annualised SR 2.5 over 5 years of daily data (T = 1250), N = 100 trials,
    # annualised variance of trial SRs 0.5, skew -3, kurtosis 10 -> SR0 = 0.1132, DSR = 0.9004.
    sr = 2.5 / math.sqrt(250)
    var = 0.5 / 250
    dsr, sr0 = deflated_sharpe_ratio(sr, 1250, 100, var, skew=-3.0, kurtosis=10.0)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert dsr == pytest.approx(0.9004, abs=1e-3)
    assert expected_max_sharpe(1, var) == 0.0
    assert probabilistic_sharpe_ratio(0.1, 0.1, 100) == pytest.approx(0.5)
    with pytest.raises(HydraError):
        expected_max_sharpe(0, var)


def test_more_trials_deflate_more():
    vals = [deflated_sharpe_ratio(0.1, 1000, n, 0.002)[0] for n in (1, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(vals))


def test_returns_moments_of_symmetric_series():
    r = np.array([0.01, -0.01, 0.02, -0.02, 0.03, -0.03])
    sr, skew, kurt, n = returns_moments(r)
    assert (sr, n) == (0.0, 6) and skew == pytest.approx(0.0)
    assert kurt == pytest.approx(np.mean(r**4) / np.mean(r**2) ** 2)


def test_trade_and_equity_stats_exact():
    s = trade_stats(np.array([10.0, -5.0, 20.0, -5.0]))
    assert (s["trades"], s["win_rate"], s["profit_factor"], s["net_pnl"]) == (4, 0.5, 3.0, 20.0)
    assert math.isinf(trade_stats(np.array([1.0]))["profit_factor"])
    assert math.isnan(trade_stats(np.array([]))["win_rate"])
    e = equity_stats(np.array([110.0, 99.0, 120.0]), 100.0, DAY)
    assert e["max_drawdown"] == pytest.approx(0.1) and e["total_return"] == pytest.approx(0.2)
    r = np.array([0.1, -0.1, 120 / 99 - 1])
    assert e["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365.25))
    assert e["sortino"] == pytest.approx(
        r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(365.25)
    )


def _market(n=40, regime=None):
    c = np.linspace(100, 120, n)
    o = np.concatenate(([100.0], c[:-1]))
    p = np.zeros(n)
    p[::5] = 0.9
    return MarketData(
        ts=np.arange(n) * MIN,
        symbols=("X",),
        open=o[:, None],
        high=(np.maximum(o, c) + 0.2)[:, None],
        low=(np.minimum(o, c) - 0.2)[:, None],
        close=c[:, None],
        atr=np.full((n, 1), 1.0),
        p_long=p[:, None],
        p_short=np.zeros((n, 1)),
        regime=None if regime is None else np.asarray(regime, dtype=float)[:, None],
        interval="1m",
    )


def test_buy_hold_and_per_regime_breakdown():
    regime = np.where(np.arange(40) < 20, 0, 1)
    pol = PolicyConfig.model_validate(
        {
            "entry": {"conf_threshold": 0.6, "min_prob_diff": 0.0},
            "exit": {"tp_atr_mult": 1.0, "sl_atr_mult": 1.0},
            "sizing": {"mode": "fraction"},
        }
    )
    r = run_backtest(_market(regime=regime), pol, CostConfig(maker_fee=0.0, taker_fee=0.0))
    assert r.buy_hold["total_return"] == pytest.approx(120 / 100 - 1)
    assert r.per_regime["regime"].to_list() == [0.0, 1.0]
    assert r.per_regime["trades"].sum() == r.metrics["trades"]
    assert r.per_regime["net_pnl"].sum() == pytest.approx(r.metrics["net_pnl"])
    assert sum(r.close_types.values()) == r.trades.height
    assert r.equity.columns == ["ts", "equity", "drawdown", "n_open", "gross_notional"]
    dsr, sr0 = r.deflated_sharpe(10, 1e-4)
    assert 0.0 <= dsr <= 1.0 and sr0 > 0


def test_gate_rules_and_reasons():
    cfg = GateConfig()
    good = pl.DataFrame(
        {
            "fold": [1, 2, 3],
            "trades": [20, 25, 30],
            "win_rate": [0.6, 0.58, 0.7],
            "profit_factor": [1.9, 2.1, 2.5],
        }
    )
    res = evaluate_gate(good, cfg)
    assert res.passed and res.reasons == []
    bad = good.with_columns(
        pl.Series("win_rate", [0.6, 0.5, 0.7]), pl.Series("profit_factor", [1.9, 1.85, 1.95])
    )
    res = evaluate_gate(bad, cfg)
    assert not res.passed
    assert res.reasons == ["fold 2: win rate 50.0% < 55%", "median profit factor 1.90 < 2.0"]


def test_fold_bounds_are_last_non_overlapping_windows():
    ts = np.arange(0, 13 * 7 * DAY, DAY // 24)  # 13 weeks of hourly bars
    b = fold_bounds(ts, GateConfig())
    assert len(b) == 3 and b[0][1] == b[1][0] and b[1][1] == b[2][0] and b[2][1] == ts.size
    assert all((hi - lo) == 4 * 7 * 24 for lo, hi in b)
    with pytest.raises(HydraError):
        fold_bounds(ts[: 24 * 7 * 6], GateConfig())


def test_oos_gate_runs_folds():
    n = 3 * 7 * 24 * 4 + 10  # 12+ weeks of 15m-ish bars on a steady uptrend
    c = 100 + np.arange(n) * 0.01
    o = np.concatenate(([100.0], c[:-1]))
    p = np.zeros(n)
    p[::10] = 0.9
    m = MarketData(
        ts=np.arange(n) * (DAY // 4 // 4 * 1),
        symbols=("X",),
        open=o[:, None],
        high=(c + 0.05)[:, None],
        low=(o - 0.001)[:, None],
        close=c[:, None],
        atr=np.full((n, 1), 0.02),
        p_long=p[:, None],
        p_short=np.zeros((n, 1)),
    )
    gcfg = GateConfig(fold_weeks=1.0)
    free = CostConfig(maker_fee=0.0, taker_fee=0.0)
    res = oos_gate(m, PolicyConfig.model_validate({"entry": {"conf_threshold": 0.6}}), free, gcfg)
    assert res.folds.height == 3 and res.passed, res.reasons


def test_sweep_grid_order_dsr_and_bad_keys():
    base = PolicyConfig.model_validate({"entry": {"conf_threshold": 0.6, "min_prob_diff": 0.0}})
    grid = {"exit.sl_atr_mult": [0.5, 1.0], "exit.tp_atr_mult": [1.0, 2.0]}
    assert expand_grid(grid)[1] == {"exit.sl_atr_mult": 0.5, "exit.tp_atr_mult": 2.0}
    one = sweep(_market(), base, grid, n_jobs=1)
    two = sweep(_market(), base, grid, n_jobs=2, progress=True)
    assert one.height == 4 and one.equals(two)  # same rows whatever the job count
    single = run_backtest(
        _market(), with_overrides(base, {"exit.sl_atr_mult": 1.0, "exit.tp_atr_mult": 2.0})
    )
    assert one["final_equity"][3] == pytest.approx(single.metrics["final_equity"])
    assert one["dsr"].is_between(0, 1).all()
    with pytest.raises(ConfigError):
        with_overrides(base, {"exit.nope": 1})
