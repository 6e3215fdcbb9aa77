"""Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014).

Why: the best of N tried configurations has a positive Sharpe ratio even
when none has skill.  The DSR is the probability that the true Sharpe ratio
exceeds the *expected maximum* Sharpe of N unskilled trials, corrected for
sample length, skewness and fat tails.  All Sharpe ratios here are per
observation (not annualised); kurtosis is the raw (non-excess) kurtosis.
"""

from __future__ import annotations

import math

import numpy as np

from hydraquant.validation.metrics import MetricError
from hydraquant.validation.overfitting import expected_max_sharpe, probabilistic_sharpe_ratio

__all__ = ["deflated_sharpe_ratio", "expected_max_sharpe", "probabilistic_sharpe_ratio", "returns_moments"]


def deflated_sharpe_ratio(
    sr: float,
    n_obs: int,
    n_trials: int,
    sr_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> tuple[float, float]:
    """(DSR, SR0) for reports: NaN instead of an error when a backtest has too few returns.

    The formulas live in :mod:`hydraquant.validation.overfitting`; a sweep row
    with one trade must still render, so undefined cases become NaN here.
    """
    sr0 = expected_max_sharpe(n_trials, max(sr_variance, 0.0))
    if not math.isfinite(sr) or n_obs < 2:
        return math.nan, sr0
    try:
        return probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis), sr0
    except MetricError:
        return math.nan, sr0


def returns_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """(per-period Sharpe, skewness, raw kurtosis, n) of a return series (NaNs dropped)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = r.size
    if n < 2:
        return math.nan, math.nan, math.nan, n
    mu = r.mean()
    sd = r.std(ddof=1)
    if sd == 0.0:
        return math.nan, 0.0, 3.0, n
    z = (r - mu) / r.std(ddof=0)
    return float(mu / sd), float(np.mean(z**3)), float(np.mean(z**4)), n
