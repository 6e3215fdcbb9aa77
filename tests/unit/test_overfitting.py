"""Overfitting diagnostics: DSR paper example, independent scipy check, PBO/CSCV, permutation nulls."""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pytest
from scipy import stats
from scipy.signal import lfilter

from hydraquant.validation.metrics import MetricError
from hydraquant.validation.overfitting import (
    EULER_GAMMA,
    block_permutation,
    deflated_sharpe_from_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_track_record_length,
    permutation_pvalue,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_stats,
)

# --------------------------------------------------------------------------- DSR / PSR


def test_dsr_paper_worked_example():
    """Bailey & Lopez de Prado (2014), 'The Deflated Sharpe Ratio', numerical example:
    annualised SR 2.5 on 5 years of daily returns (T = 1250, 250 days/year), skew -3,
    kurtosis 10, N = 100 trials whose annualised SRs have variance 1/2.
    The paper reports SR0 ~ 0.1132 (per day) and DSR ~ 0.9004."""
    res = deflated_sharpe_ratio(
        sr=2.5 / math.sqrt(250),
        n_obs=1250,
        n_trials=100,
        sr_variance=0.5 / 250,
        skew=-3.0,
        kurtosis=10.0,
    )
    assert res.sr0 == pytest.approx(0.1132, abs=5e-5)
    assert res.dsr == pytest.approx(0.9004, abs=5e-4)
    dsr, sr0 = res  # unpacks like the (dsr, sr0) tuple of backtest/overfitting.py
    assert (dsr, sr0) == (res.dsr, res.sr0)


@pytest.mark.parametrize(
    ("sr", "n_obs", "n_trials", "var", "skew", "kurt"),
    [
        (0.1, 500, 10, 0.001, 0.0, 3.0),
        (0.05, 2000, 1000, 0.0004, -1.0, 6.0),
        (0.3, 100, 2, 0.01, 0.5, 4.0),
    ],
)
def test_dsr_matches_independent_scipy_formula(sr, n_obs, n_trials, var, skew, kurt):
    sr0 = math.sqrt(var) * (
        (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / n_trials)
        + np.euler_gamma * stats.norm.ppf(1 - 1 / (n_trials * np.e))
    )
    z = (sr - sr0) * math.sqrt(n_obs - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    res = deflated_sharpe_ratio(sr, n_obs, n_trials, var, skew, kurt)
    assert res.sr0 == pytest.approx(sr0, rel=1e-10)
    assert res.dsr == pytest.approx(stats.norm.cdf(z), rel=1e-10)
    assert EULER_GAMMA == pytest.approx(np.euler_gamma)


@pytest.mark.parametrize("n_trials", [10, 100, 1000])
def test_expected_max_sharpe_close_to_monte_carlo(n_trials):
    rng = np.random.default_rng(n_trials)
    sd = 0.2
    mc = (rng.normal(0.0, sd, (4000, n_trials)).max(axis=1)).mean()
    assert expected_max_sharpe(n_trials, sd**2) == pytest.approx(mc, rel=0.03)
    assert expected_max_sharpe(1, 0.5) == 0.0
    assert expected_max_sharpe(n_trials, sd**2, sr_mean=0.1) == pytest.approx(
        0.1 + expected_max_sharpe(n_trials, sd**2)
    )


def test_psr_properties_and_null_calibration():
    assert probabilistic_sharpe_ratio(0.1, 0.1, 300) == pytest.approx(0.5)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 1000) > probabilistic_sharpe_ratio(0.1, 0.0, 100)
    # negative skew and fat tails widen the SR estimate's spread: less confidence
    assert probabilistic_sharpe_ratio(
        0.1, 0.0, 500, skew=-2, kurtosis=9
    ) < probabilistic_sharpe_ratio(0.1, 0.0, 500)
    # under a zero-skill null, PSR(SR > 0) is ~uniform: ~5 % of series exceed 0.95
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 0.01, (3000, 250))
    psr = np.array([probabilistic_sharpe_ratio(*_psr_args(row)) for row in r])
    assert 0.035 < np.mean(psr > 0.95) < 0.065


def _psr_args(row):
    s = sharpe_stats(row)
    return s.sr, 0.0, s.n_obs, s.skew, s.kurtosis


def test_sharpe_stats_and_from_returns():
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.015])
    s = sharpe_stats(r)
    assert s.sr == pytest.approx(r.mean() / r.std(ddof=1))
    assert s.skew == pytest.approx(stats.skew(r))
    assert s.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False))
    trials = np.array([0.05, 0.1, -0.02, s.sr])
    res = deflated_sharpe_from_returns(r, trials)
    expect = deflated_sharpe_ratio(s.sr, 5, 4, trials.var(ddof=1), s.skew, s.kurtosis)
    assert res == pytest.approx(expect)
    with pytest.raises(MetricError, match="not positive"):
        probabilistic_sharpe_ratio(2.5, 0.0, 100, skew=3.0)  # an annualised SR slipped in


def test_min_track_record_length_hits_confidence():
    n = min_track_record_length(0.1, 0.0, skew=-1, kurtosis=5, confidence=0.95)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 2, -1, 5) < 0.95
    # PSR uses sqrt(T - 1); at T = MinTRL it equals the confidence exactly
    z = 0.1 * math.sqrt(n - 1) / math.sqrt(1 + 0.1 + 1.0 * 0.01)
    assert stats.norm.cdf(z) == pytest.approx(0.95)
    assert min_track_record_length(0.0, 0.1) == math.inf


# --------------------------------------------------------------------------- PBO


def test_pbo_hand_computed_two_strategies():
    # blocks (S = 2, one row each): A = [1, -1], B = [0, 0]; metric = mean
    # IS {0}: A wins (1 > 0), OOS block 1: A = -1 < B = 0 -> rank 1 of 2 -> w = 1/3
    # IS {1}: B wins (0 > -1), OOS block 0: B = 0 < A = 1 -> rank 1 -> w = 1/3
    m = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    m = m[[0, 2, 1, 3]]  # rows 0-1 = block 0, rows 2-3 = block 1
    res = probability_of_backtest_overfitting(m, n_blocks=2, metric="mean")
    assert res.n_combinations == 2
    np.testing.assert_allclose(res.relative_rank, [1 / 3, 1 / 3])
    np.testing.assert_allclose(res.logits, [math.log(0.5)] * 2)
    assert res.pbo == 1.0
    assert res.best_is.tolist() == [0, 1]
    np.testing.assert_allclose(res.is_performance, [1.0, 0.0])
    np.testing.assert_allclose(res.oos_performance, [-1.0, 0.0])
    assert res.degradation_slope == pytest.approx(-1.0)
    assert res.degradation_intercept == pytest.approx(0.0)
    assert res.prob_oos_loss == 0.5


def test_pbo_hand_computed_ties_use_average_rank():
    # blocks: block 0 = [2, 1, 1], block 1 = [0, 1, 1]
    # IS {0}: A wins; OOS A = 0 is last of 3 -> rank 1 -> w = 1/4 -> logit ln(1/3)
    # IS {1}: B and C tie at 1, the first (B) wins; OOS A = 2 is best and B ties C at 1
    #   -> average rank 1.5 -> w = 1.5/4 -> logit ln(0.6)
    m = np.array([[2.0, 1.0, 1.0], [2.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    res = probability_of_backtest_overfitting(m, n_blocks=2, metric="mean")
    assert res.best_is.tolist() == [0, 1]
    np.testing.assert_allclose(res.logits, [math.log(1 / 3), math.log(0.6)])
    assert res.pbo == 1.0


def _brute_force_pbo(m, s, fn):
    edges = np.linspace(0, m.shape[0], s + 1).astype(int)  # the last block takes the remainder
    blocks = [np.arange(edges[i], edges[i + 1]) for i in range(s)]
    logits = []
    for c in combinations(range(s), s // 2):
        is_rows = np.concatenate([blocks[i] for i in c])
        oos_rows = np.concatenate([blocks[i] for i in range(s) if i not in c])
        best = int(np.argmax(fn(m[is_rows])))
        oos = fn(m[oos_rows])
        rank = stats.rankdata(oos)[best]  # average ranks for ties
        w = rank / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return np.array(logits)


@pytest.mark.parametrize("metric", ["mean", "sharpe"])
def test_pbo_matches_brute_force(metric):
    rng = np.random.default_rng(4)
    m = rng.normal(0, 1, (37, 5))  # uneven blocks (ties are covered by the hand example)
    fn = (lambda x: x.mean(0)) if metric == "mean" else (lambda x: x.mean(0) / x.std(0, ddof=1))
    res = probability_of_backtest_overfitting(m, n_blocks=6, metric=metric)
    ref = _brute_force_pbo(m, 6, fn)
    np.testing.assert_allclose(res.logits, ref, rtol=1e-9)
    assert res.pbo == pytest.approx(np.mean(ref <= 0))
    callable_res = probability_of_backtest_overfitting(m, n_blocks=6, metric=fn)
    np.testing.assert_allclose(callable_res.logits, ref, rtol=1e-9)


def test_pbo_noise_strategies_near_half():
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(s).normal(0, 0.01, (600, 40)), 10
        ).pbo
        for s in range(20)
    ]
    assert abs(np.mean(pbos) - 0.5) < 0.12


def test_pbo_genuinely_better_strategy_near_zero():
    rng = np.random.default_rng(7)
    m = rng.normal(0, 0.01, (1600, 30))
    m[:, 12] += 0.008  # better in every block
    res = probability_of_backtest_overfitting(m, n_blocks=16)
    assert res.n_combinations == math.comb(16, 8)
    assert res.pbo == 0.0
    assert np.all(res.best_is == 12)
    assert res.prob_oos_loss == 0.0
    sampled = probability_of_backtest_overfitting(m, n_blocks=16, max_combinations=500, seed=1)
    assert sampled.n_combinations == 500 and sampled.pbo == 0.0


def test_pbo_input_errors():
    with pytest.raises(MetricError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), n_blocks=5)
    with pytest.raises(MetricError, match="N >= 2"):
        probability_of_backtest_overfitting(np.zeros((100, 1)))
    with pytest.raises(MetricError, match="rows cannot form"):
        probability_of_backtest_overfitting(np.zeros((20, 3)), n_blocks=16)


# --------------------------------------------------------------------------- permutation null


def _corr(y, p):
    return float(np.corrcoef(y, p)[0, 1])


def test_block_permutation_keeps_blocks_intact():
    rng = np.random.default_rng(0)
    perm = block_permutation(23, 5, rng)
    assert sorted(perm.tolist()) == list(range(23))
    # every original block of 5 (the last one of 3) appears intact, in order
    pos = np.argsort(perm)
    for start in range(0, 23, 5):
        block = list(range(start, min(start + 5, 23)))
        assert perm[pos[start] : pos[start] + len(block)].tolist() == block
    assert any(not np.array_equal(block_permutation(23, 5, rng), np.arange(23)) for _ in range(5))


def test_permutation_pvalue_signal_vs_noise():
    rng = np.random.default_rng(1)
    y = rng.normal(size=300)
    strong = permutation_pvalue(_corr, y, y + 0.5 * rng.normal(size=300), n=199, seed=0)
    assert strong.pvalue == pytest.approx(1 / 200)
    assert strong.null.shape == (199,)
    # lower-is-better metrics are handled by the direction flag
    mae_p = permutation_pvalue(
        lambda a, b: float(np.mean(np.abs(a - b))),
        y,
        y + 0.1 * rng.normal(size=300),
        n=99,
        greater_is_better=False,
    )
    assert mae_p.pvalue == pytest.approx(1 / 100)
    # under the null, p-values are roughly uniform
    ps = np.array(
        [
            permutation_pvalue(
                _corr, rng.normal(size=100), rng.normal(size=100), n=99, seed=i
            ).pvalue
            for i in range(100)
        ]
    )
    assert 0.03 <= np.mean(ps <= 0.1) <= 0.2


def _ar1(rng, n, phi):
    return lfilter([1.0], [1.0, -phi], rng.normal(size=n))


def test_block_permutation_controls_false_positives_on_autocorrelated_series():
    rng = np.random.default_rng(3)
    iid_rej = block_rej = 0
    reps = 60
    for i in range(reps):
        y, p = _ar1(rng, 400, 0.97), _ar1(rng, 400, 0.97)  # independent but both persistent
        iid_rej += permutation_pvalue(_corr, y, p, n=99, block=1, seed=i).pvalue <= 0.05
        block_rej += permutation_pvalue(_corr, y, p, n=99, block=80, seed=i).pvalue <= 0.05
    assert iid_rej / reps > 0.3  # the i.i.d. shuffle finds "signal" in noise
    assert block_rej < iid_rej / 2
