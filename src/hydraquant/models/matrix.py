"""The one way a feature table becomes a model's input matrix: training, holdout, predict, explain.

Why rounding: the run computes features over the whole history, ``predict``
and live trading over a warm-up window.  Rolling sums and EMAs started at
different bars agree only to the last few bits, and a tree whose split
threshold falls between two such near-equal values sends the same bar down
different branches (a 0.03 jump in probability was seen on a simulated
market).  Rounding every input to ``INPUT_MANTISSA_BITS`` significant bits
(~8 decimal digits; XGBoost itself works in float32, 24 bits) makes both
sides see the same number except for values within a few ulps of a rounding
boundary (~1e-7 per value).  A bundle records the bits it was trained with;
bundles without the key get unrounded inputs, as when they were trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from hydraquant.features.inputs import round_mantissa

#: significant bits of every model input (float64 has 53)
INPUT_MANTISSA_BITS = 28


def model_matrix(frame: pl.DataFrame, features: Sequence[str], *, bits: int | None = INPUT_MANTISSA_BITS) -> np.ndarray:
    """``frame[features]`` as a C-contiguous float64 matrix (null -> NaN), rounded to ``bits``."""
    X = frame.select(pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in features).to_numpy()
    X = np.ascontiguousarray(X, dtype=np.float64)
    return round_mantissa(X, bits) if bits else X


__all__ = ["INPUT_MANTISSA_BITS", "model_matrix"]
