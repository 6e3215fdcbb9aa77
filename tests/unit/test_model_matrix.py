"""The model input matrix: one builder for training, holdout, predict and explain."""

from __future__ import annotations

import numpy as np
import polars as pl

from hydraquant.models.matrix import INPUT_MANTISSA_BITS, model_matrix


def test_columns_in_the_given_order_nulls_as_nan_rounded() -> None:
    frame = pl.DataFrame({"b": [1.0, None, 3.0], "a": [0.1, 0.2, float("nan")], "i": [1, 2, None]})
    X = model_matrix(frame, ["a", "b", "i"])
    assert X.dtype == np.float64 and X.flags.c_contiguous and X.shape == (3, 3)
    np.testing.assert_array_equal(np.isnan(X), [[False, False, False], [False, True, False], [True, False, True]])
    assert X[0, 1] == 1.0 and X[2, 1] == 3.0 and X[1, 2] == 2.0
    # 0.1 is not exact in binary: rounded to 28 significant bits, within 2**-28 relative
    assert X[0, 0] != 0.1 and abs(X[0, 0] - 0.1) <= 0.1 * 2.0**-INPUT_MANTISSA_BITS


def test_last_bit_noise_maps_to_the_same_input() -> None:
    """Two computations of one feature that differ in the last bits feed the model one value."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=10_000)
    noisy = x * (1 + rng.integers(-4, 5, size=x.size) * np.finfo(float).eps)
    a = model_matrix(pl.DataFrame({"f": x}), ["f"])
    b = model_matrix(pl.DataFrame({"f": noisy}), ["f"])
    assert (a != b).mean() < 1e-3


def test_bundles_without_rounding_get_raw_inputs() -> None:
    frame = pl.DataFrame({"f": [0.1, 0.7]})
    np.testing.assert_array_equal(model_matrix(frame, ["f"], bits=None), [[0.1], [0.7]])
