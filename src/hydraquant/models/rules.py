"""Seed 001's rule-based fallbacks: what HYDRA uses when a model is missing or not yet trusted.

Why keep rules next to the models: the seed starts deployment with them and
falls back to them whenever a trained model is unavailable, so they must be as
vectorised, causal and tested as the models they stand in for.

* :func:`rule_based_signal_score` — the signal scorer rule: start from the
  signal's confidence, x1.1 in a normal-volatility regime, x1.1 when
  |funding| > 0.05 %, x0.8 in a high-volatility regime, x0.7 when the cascade
  probability exceeds 0.3; capped at 1.
* :func:`rule_based_regime` — the regime rule (cascade, high volatility,
  squeezes, SMA 20/50 trend with a 2 % band, else ranging) evaluated on
  *trailing* windows only, i.e. ``hydra_regime(..., forward=False)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError

#: vol_regime feature codes (features/volatility.py): the seed's "normal" is MID, "high"/"extreme" is HIGH
LOW, MID, HIGH = 0, 1, 2
_NAMES = {"low": LOW, "normal": MID, "mid": MID, "high": HIGH, "extreme": HIGH}


def _regime_codes(vol_regime: Any, n: int) -> np.ndarray:
    arr = np.asarray(vol_regime)
    if arr.shape != (n,):
        raise HydraError(f"vol_regime has shape {arr.shape}, expected ({n},)", hint="one regime per signal")
    if arr.dtype.kind in "fiu":
        return np.where(np.isnan(arr.astype(np.float64)), -1, arr).astype(np.int64)
    out = np.full(n, -1, dtype=np.int64)
    lowered = np.char.lower(arr.astype(str))
    for name, code in _NAMES.items():
        out[lowered == name] = code
    return out


def rule_based_signal_score(
    confidence: Any,
    vol_regime: Any,
    funding_rate: Any = None,
    cascade_probability: Any = None,
) -> np.ndarray:
    """Seed 001 rule-based signal score in [0, 1] for each signal (vectorised).

    ``vol_regime``: the vol_regime feature's codes (0 LOW, 1 MID = the seed's
    "normal", 2 HIGH) or names. Missing funding / cascade inputs (None or NaN)
    apply no adjustment. NaN confidence gives NaN.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    n = conf.shape[0]
    regime = _regime_codes(vol_regime, n)
    score = conf.copy()
    score = np.where(regime == MID, score * 1.1, score)
    if funding_rate is not None:
        funding = np.asarray(funding_rate, dtype=np.float64)
        score = np.where(np.abs(funding) > 0.0005, score * 1.1, score)  # NaN compares False: no boost
    score = np.where(regime == HIGH, score * 0.8, score)
    if cascade_probability is not None:
        cascade = np.asarray(cascade_probability, dtype=np.float64)
        score = np.where(cascade > 0.3, score * 0.7, score)
    return np.minimum(score, 1.0)


def rule_based_regime(bars: pl.DataFrame, *, window: int = 60, interval: str | None = None,
                      **kwargs: Any) -> pl.DataFrame:
    """Seed 001 rule-based regime on trailing windows (causal): ``hydra_regime(..., forward=False)``."""
    from hydraquant.labels import hydra_regime

    return hydra_regime(bars, window, forward=False, interval=interval, **kwargs)
