"""Deflated Sharpe ratio (Bailey & Lopez de Prado, 2014).

Why: the best of N tried configurations has a positive Sharpe ratio even
when none has skill.  The DSR is the probability that the true Sharpe ratio
exceeds the *expected maximum* Sharpe of N unskilled trials, corrected for
sample length, skewness and fat tails.  All Sharpe ratios here are per
observation (not annualised); kurtosis is the raw (non-excess) kurtosis.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from hydraquant.errors import HydraError

EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] of ``n_trials`` independent zero-skill trials (the DSR benchmark SR0).

    SR0 = sqrt(V) * ((1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e))).
    """
    if n_trials < 1:
        raise HydraError(
            f"n_trials must be >= 1, got {n_trials}", hint="count every configuration tried"
        )
    if n_trials == 1:
        return 0.0
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(max(sr_variance, 0.0)) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(
    sr: float, sr_benchmark: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0
) -> float:
    """P(true SR > sr_benchmark) given an observed per-period ``sr`` over ``n_obs`` returns."""
    if n_obs < 2:
        return math.nan
    denom = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if denom <= 0.0:
        return math.nan
    return _N.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom))


def deflated_sharpe_ratio(
    sr: float,
    n_obs: int,
    n_trials: int,
    sr_variance: float,
    skew: float = 0.0,
    kurtosis: float = 3.0,
) -> tuple[float, float]:
    """(DSR, SR0): PSR of ``sr`` against the expected maximum of ``n_trials`` trials."""
    sr0 = expected_max_sharpe(n_trials, sr_variance)
    return probabilistic_sharpe_ratio(sr, sr0, n_obs, skew, kurtosis), sr0


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
