"""Overfitting diagnostics: PSR, deflated Sharpe, PBO via CSCV, permutation tests (SPEC V3).

Why: a researcher who tries many configurations and reports the best one
has selected noise.  These tools put a number on how much:

* probabilistic Sharpe ratio (PSR): P(true SR > benchmark) given the sample
  length, skewness and kurtosis of the returns;
* deflated Sharpe ratio (DSR, Bailey & Lopez de Prado 2014): the PSR against
  the Sharpe ratio the best of N unskilled trials would reach by luck;
* probability of backtest overfitting (PBO, Bailey, Borwein, Lopez de Prado
  & Zhu 2015) by combinatorially symmetric cross-validation (CSCV): how often
  the in-sample winner lands in the bottom half out of sample;
* permutation p-values with block permutation for autocorrelated series.

All Sharpe ratios are per observation (not annualised) and kurtosis is raw
(non-excess, 3 for a normal), as in the papers' formulas.  Divide an annual
SR by sqrt(periods per year) before use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from math import comb
from statistics import NormalDist
from typing import Any, Literal, NamedTuple

import numpy as np

from hydraquant.validation.metrics import MetricError

log = logging.getLogger(__name__)

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


# --------------------------------------------------------------------------- Sharpe-based


class SharpeStats(NamedTuple):
    sr: float
    skew: float
    kurtosis: float
    n_obs: int


def sharpe_stats(returns: Any) -> SharpeStats:
    """Per-period Sharpe (mean / std with ddof=1), skewness and raw kurtosis of a return series."""
    r = np.asarray(returns, dtype=np.float64).ravel()
    if not np.isfinite(r).all():
        raise MetricError(
            f"returns have {int((~np.isfinite(r)).sum())} non-finite value(s)",
            hint="fill flat periods with 0 and drop undefined ones before computing Sharpe statistics",
        )
    n = r.size
    if n < 2:
        raise MetricError(f"need at least 2 returns, got {n}")
    sd = r.std(ddof=1)
    if sd == 0.0:
        return SharpeStats(float("nan"), 0.0, 3.0, n)
    z = (r - r.mean()) / r.std(ddof=0)
    return SharpeStats(float(r.mean() / sd), float(np.mean(z**3)), float(np.mean(z**4)), n)


def _sr_std_factor(sr: float, skew: float, kurtosis: float) -> float:
    v = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if not v > 0.0:
        raise MetricError(
            f"Sharpe variance term 1 - skew*SR + (kurt-1)/4*SR^2 = {v:.4g} is not positive",
            hint="check that sr is per period (not annualised) and kurtosis is raw (normal = 3)",
        )
    return math.sqrt(v)


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1)/4 SR^2))."""
    if n_obs < 2:
        raise MetricError(f"n_obs must be >= 2, got {n_obs}")
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / _sr_std_factor(sr, skew, kurtosis)
    return _NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, sr_variance: float, sr_mean: float = 0.0) -> float:
    """E[max SR] over ``n_trials`` independent trials with Sharpe ratios of the given mean and
    variance (false-strategy theorem): the DSR's benchmark SR0.

    SR0 = mean + sqrt(V) ((1 - gamma) Z^-1(1 - 1/N) + gamma Z^-1(1 - 1/(N e))).
    """
    if n_trials < 1:
        raise MetricError(
            f"n_trials must be >= 1, got {n_trials}", hint="count every configuration tried"
        )
    if sr_variance < 0:
        raise MetricError(f"sr_variance must be >= 0, got {sr_variance}")
    if n_trials == 1:
        return float(sr_mean)
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(sr_mean + math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


class DeflatedSharpe(NamedTuple):
    dsr: float
    sr0: float


def deflated_sharpe_ratio(
    sr: float,
    n_obs: int,
    n_trials: int,
    sr_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    """(DSR, SR0): PSR of the selected strategy's ``sr`` against the expected maximum SR of
    ``n_trials`` unskilled trials whose per-period Sharpe ratios have variance ``sr_variance``."""
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return DeflatedSharpe(probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis), sr0)


def deflated_sharpe_from_returns(returns: Any, trial_sharpes: Any) -> DeflatedSharpe:
    """DSR of the selected strategy's per-period ``returns`` given the per-period Sharpe ratios
    of *all* trials tried (including it): N and V come from ``trial_sharpes``."""
    trials = np.asarray(trial_sharpes, dtype=np.float64).ravel()
    if trials.size < 1 or not np.isfinite(trials).all():
        raise MetricError(
            "trial_sharpes must be a non-empty list of finite per-period Sharpe ratios"
        )
    stats = sharpe_stats(returns)
    var = float(trials.var(ddof=1)) if trials.size > 1 else 0.0
    return deflated_sharpe_ratio(
        stats.sr, stats.n_obs, int(trials.size), var, stats.skew, stats.kurtosis
    )


def min_track_record_length(
    sr: float,
    sr_benchmark: float = 0.0,
    skew: float = 0.0,
    kurtosis: float = 3.0,
    confidence: float = 0.95,
) -> float:
    """Observations needed before PSR(sr vs sr_benchmark) reaches ``confidence`` (inf if sr <= benchmark)."""
    if sr <= sr_benchmark:
        return float("inf")
    z = _NORMAL.inv_cdf(confidence)
    return 1.0 + (_sr_std_factor(sr, skew, kurtosis) * z / (sr - sr_benchmark)) ** 2


# --------------------------------------------------------------------------- PBO via CSCV

Metric = Literal["sharpe", "mean"] | Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class PBOResult:
    """CSCV outcome; arrays have one entry per IS/OOS combination."""

    pbo: float
    logits: np.ndarray
    relative_rank: np.ndarray  # OOS rank of the IS winner / (N + 1), in (0, 1)
    best_is: np.ndarray  # column index of the IS winner
    is_performance: np.ndarray  # IS metric of the IS winner
    oos_performance: np.ndarray  # OOS metric of the IS winner
    degradation_slope: float  # OLS slope of OOS on IS performance (< 0: overfit)
    degradation_intercept: float
    degradation_r2: float
    prob_oos_loss: float  # share of combinations whose IS winner has OOS metric < 0
    n_blocks: int
    n_combinations: int

    def summary(self) -> dict[str, float]:
        return {
            "pbo": self.pbo,
            "logit_mean": float(np.mean(self.logits)),
            "logit_median": float(np.median(self.logits)),
            "degradation_slope": self.degradation_slope,
            "degradation_intercept": self.degradation_intercept,
            "degradation_r2": self.degradation_r2,
            "prob_oos_loss": self.prob_oos_loss,
            "n_blocks": self.n_blocks,
            "n_combinations": self.n_combinations,
        }


def _moment_metric(s1: np.ndarray, s2: np.ndarray, cnt: np.ndarray, metric: str) -> np.ndarray:
    mean = s1 / cnt
    if metric == "mean":
        return mean
    var = (s2 - s1 * s1 / cnt) / (cnt - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(np.maximum(var, 0.0))
        return np.where(sd > 0, mean / sd, np.nan)


def _oos_relative_rank(oos: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Rank (1 = worst, ties averaged) of each row's chosen column, divided by N + 1."""
    n = oos.shape[1]
    v = oos[np.arange(oos.shape[0]), best][:, None]
    less = (oos < v).sum(axis=1)
    equal = (oos == v).sum(axis=1) - 1
    return (1.0 + less + 0.5 * equal) / (n + 1.0)


def probability_of_backtest_overfitting(
    returns: Any,
    n_blocks: int = 16,
    metric: Metric = "sharpe",
    max_combinations: int | None = None,
    seed: int = 0,
) -> PBOResult:
    """PBO of choosing the best column of a ``T x N`` matrix of strategy returns (CSCV).

    Rows are cut into ``n_blocks`` (even) contiguous blocks; for every choice
    of half the blocks as in-sample (``C(S, S/2)`` of them, or a seeded random
    ``max_combinations`` subset), the IS-best strategy's relative OOS rank
    ``w`` gives a logit ``log(w / (1 - w))``; PBO is the share of logits
    ``<= 0`` (the IS winner is at or below the OOS median).
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise MetricError(f"returns must be T x N with N >= 2 strategies, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise MetricError("returns contain non-finite values", hint="fill flat periods with 0")
    if n_blocks < 2 or n_blocks % 2:
        raise MetricError(f"n_blocks must be an even number >= 2, got {n_blocks}")
    if m.shape[0] < 2 * n_blocks:
        raise MetricError(
            f"{m.shape[0]} rows cannot form {n_blocks} blocks of >= 2 rows",
            hint="use fewer blocks or a longer return history",
        )
    edges = np.linspace(0, m.shape[0], n_blocks + 1).astype(np.int64)
    combos = _combinations(n_blocks, max_combinations, seed)
    if callable(metric):
        is_perf, oos_perf = _callable_perf(m, edges, combos, metric)
    elif metric in ("sharpe", "mean"):
        is_perf, oos_perf = _moment_perf(m, edges, combos, metric)
    else:
        raise MetricError(f"metric must be 'sharpe', 'mean' or a callable, got {metric!r}")
    # a strategy with undefined IS metric (flat) can never be the winner
    best = np.argmax(np.where(np.isfinite(is_perf), is_perf, -np.inf), axis=1)
    rows = np.arange(combos.shape[0])
    w = _oos_relative_rank(np.where(np.isfinite(oos_perf), oos_perf, -np.inf), best)
    logits = np.log(w / (1.0 - w))
    x, y = is_perf[rows, best], oos_perf[rows, best]
    slope, intercept, r2 = _ols(x, y)
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        relative_rank=w,
        best_is=best,
        is_performance=x,
        oos_performance=y,
        degradation_slope=slope,
        degradation_intercept=intercept,
        degradation_r2=r2,
        prob_oos_loss=float(np.mean(y < 0.0)),
        n_blocks=n_blocks,
        n_combinations=int(combos.shape[0]),
    )


def _combinations(n_blocks: int, max_combinations: int | None, seed: int) -> np.ndarray:
    """``(C, S)`` boolean IS-membership matrix."""
    total = comb(n_blocks, n_blocks // 2)
    if max_combinations is not None and max_combinations < total:
        # random distinct IS halves: rank of random keys picks S/2 blocks per row
        rng = np.random.default_rng(seed)
        keys = rng.random((max_combinations * 2, n_blocks))
        member = np.argsort(keys, axis=1) < n_blocks // 2
        member = np.unique(member, axis=0)[:max_combinations]
        log.debug("CSCV: sampled %d of %d combinations", member.shape[0], total)
        return member
    member = np.zeros((total, n_blocks), dtype=bool)
    for i, c in enumerate(combinations(range(n_blocks), n_blocks // 2)):
        member[i, list(c)] = True
    return member


def _moment_perf(
    m: np.ndarray, edges: np.ndarray, member: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    starts = edges[:-1]
    s1 = np.add.reduceat(m, starts, axis=0)  # (S, N)
    s2 = np.add.reduceat(m * m, starts, axis=0)
    cnt = np.diff(edges).astype(np.float64)  # (S,)
    ind = member.astype(np.float64)
    is1, is2, isn = ind @ s1, ind @ s2, ind @ cnt
    tot1, tot2, totn = s1.sum(0), s2.sum(0), cnt.sum()
    is_perf = _moment_metric(is1, is2, isn[:, None], metric)
    oos_perf = _moment_metric(tot1 - is1, tot2 - is2, (totn - isn)[:, None], metric)
    return is_perf, oos_perf


def _callable_perf(
    m: np.ndarray, edges: np.ndarray, member: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    block_of_row = np.repeat(np.arange(edges.size - 1), np.diff(edges))
    is_perf = np.empty((member.shape[0], m.shape[1]))
    oos_perf = np.empty_like(is_perf)
    for i, row in enumerate(member):  # one call per combination, never per row
        in_sample = row[block_of_row]
        is_perf[i] = np.asarray(fn(m[in_sample]), dtype=np.float64)
        oos_perf[i] = np.asarray(fn(m[~in_sample]), dtype=np.float64)
    return is_perf, oos_perf


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    slope = float((xc @ yc) / (xc @ xc))
    intercept = float(y.mean() - slope * x.mean())
    ss_tot = float(yc @ yc)
    resid = yc - slope * xc
    r2 = 1.0 - float(resid @ resid) / ss_tot if ss_tot > 0 else float("nan")
    return slope, intercept, r2


# --------------------------------------------------------------------------- permutation null


@dataclass(frozen=True)
class PermutationResult:
    pvalue: float
    observed: float
    null: np.ndarray


def block_permutation(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``range(n)`` that shuffles contiguous blocks of ``block`` rows as units,
    keeping the order (and autocorrelation) inside each block."""
    block_id = np.arange(n) // block
    keys = rng.permutation(int(block_id[-1]) + 1) if n else np.empty(0, dtype=np.int64)
    return np.argsort(keys[block_id], kind="stable")


def permutation_pvalue(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y: Any,
    pred: Any,
    n: int = 1000,
    block: int = 1,
    seed: int = 0,
    greater_is_better: bool = True,
) -> PermutationResult:
    """P-value of ``metric_fn(y, pred)`` against predictions permuted in time.

    Why blocks: time-series predictions are autocorrelated, and an i.i.d.
    shuffle destroys that, making the null too narrow and the p-value too
    small; moving whole blocks of ``block`` rows keeps it.  The p-value is
    ``(1 + #{null >= observed}) / (n + 1)`` (``<=`` when lower is better), so
    it is never 0.
    """
    yv, pv = np.asarray(y), np.asarray(pred)
    if yv.shape[0] != pv.shape[0]:
        raise MetricError(f"y and pred lengths differ: {yv.shape[0]} vs {pv.shape[0]}")
    if n < 1 or block < 1:
        raise MetricError(f"n and block must be >= 1, got n={n}, block={block}")
    if yv.shape[0] < 2 * block:
        raise MetricError(
            f"{yv.shape[0]} samples give fewer than 2 blocks of {block}",
            hint="use a smaller block so there is something to permute",
        )
    rng = np.random.default_rng(seed)
    observed = float(metric_fn(yv, pv))
    null = np.array(
        [float(metric_fn(yv, pv[block_permutation(yv.shape[0], block, rng)])) for _ in range(n)]
    )
    extreme = null >= observed if greater_is_better else null <= observed
    return PermutationResult((1.0 + float(extreme.sum())) / (n + 1.0), observed, null)
