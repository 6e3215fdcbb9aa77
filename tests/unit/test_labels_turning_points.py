"""L7 Peak/Slope/Bottom over H0-H5: exact small series, naive centred-window reference, t_end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.labels import TurningPoint, turning_points

T0 = datetime(2024, 1, 1, tzinfo=UTC)
P, S, B = TurningPoint.PEAK, TurningPoint.SLOPE, TurningPoint.BOTTOM


def frame(close) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=5 * i) for i in range(len(close))],
            "close": np.asarray(close, dtype=float),
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_exact_peak_bottom_and_horizons():
    close = [2, 3, 6, 4, 2, 1, 3, 3, 4]
    out = turning_points(frame(close), half_window=2, n_horizons=2)
    # bar classes (decidable for j in 2..6): j2 peak, j3 slope, j4 slope, j5 bottom, j6 slope
    assert out["label_h0"].to_list() == [None, P, S, S, B, S, None, None, None]
    assert out["label_h1"].to_list() == [P, S, S, B, S, None, None, None, None]
    # H0 at row 1 is bar 2, decided with bars up to 4 -> known at close of bar 4
    assert out["t_end_h0"][1] == T0 + timedelta(minutes=25)
    assert out["t_end"][0] == out["t_end_h1"][0] == T0 + timedelta(minutes=25)


def test_flat_run_is_not_a_peak_everywhere():
    out = turning_points(frame([3, 3, 3, 3, 3, 3, 3]), half_window=2, n_horizons=1)
    assert set(out["label_h0"].drop_nulls().to_list()) == {S}


def naive_class(c, j, w):
    if j < w or j + w >= len(c):
        return None
    left, right = c[j - w : j], c[j + 1 : j + w + 1]
    if c[j] > left.max() and c[j] >= right.max():
        return P
    if c[j] < left.min() and c[j] <= right.min():
        return B
    return S


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=50), st.integers(1, 5), st.integers(1, 6))
def test_matches_naive_centred_window(vals, w, m):
    c = np.asarray(vals, dtype=float) + 1
    out = turning_points(frame(c), half_window=w, n_horizons=m, interval="5m")
    for k in range(m):
        col = out[f"label_h{k}"].to_list()
        for t in range(len(c)):
            j = t + 1 + k
            exp = naive_class(c, j, w) if j < len(c) else None
            assert col[t] == exp
            if exp is not None:
                assert out[f"t_end_h{k}"][t] == T0 + timedelta(minutes=5 * (j + w + 1))
