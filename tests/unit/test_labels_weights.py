"""L8 sample weights: balanced, recency half-life, label uniqueness vs a naive concurrency count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.labels import (
    LabelError,
    class_balanced_weights,
    label_uniqueness,
    normalize_mean,
    recency_weights,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ts_series(minutes) -> pl.Series:
    return pl.Series("ts", [T0 + timedelta(minutes=m) for m in minutes]).cast(
        pl.Datetime("us", "UTC")
    )


def test_balanced_matches_sklearn_formula():
    w = class_balanced_weights(pl.Series("label", [0, 0, 0, 1, None], dtype=pl.Int8))
    assert w.to_list()[:4] == pytest.approx([4 / 6, 4 / 6, 4 / 6, 2.0])
    assert w[4] is None


def test_recency_half_life():
    ts = ts_series([0, 60 * 24, 60 * 48])
    w = recency_weights(ts, "1d", normalize=False)
    assert w.to_list() == pytest.approx([0.25, 0.5, 1.0])
    rows = recency_weights(ts, 2, normalize=False)
    assert rows.to_list() == pytest.approx([0.5, 2**-0.5, 1.0])
    ref = ts_series([60 * 96])
    assert recency_weights(ts, timedelta(days=1), reference=ref, normalize=False)[
        2
    ] == pytest.approx(0.25)
    assert recency_weights(ts, "1d").mean() == pytest.approx(1.0)
    with pytest.raises(LabelError):
        recency_weights(ts, 0)


def test_uniqueness_exact():
    # bars at minutes 0..5; label0 spans bars 1-2 (t_end = close of bar 2 = minute 3),
    # label1 spans bars 2-3, label2 spans bar 3 only; label3 no t_end
    ts = ts_series([0, 1, 2, 3, 4, 5])
    t_end = pl.Series(
        [
            T0 + timedelta(minutes=3),
            T0 + timedelta(minutes=4),
            T0 + timedelta(minutes=4),
            None,
            None,
            None,
        ]
    ).cast(pl.Datetime("us", "UTC"))
    w = label_uniqueness(ts, t_end)
    # concurrency: bar1=1, bar2=2, bar3=2
    assert w.to_list()[:3] == pytest.approx([(1 + 0.5) / 2, (0.5 + 0.5) / 2, 0.5])
    assert w.to_list()[3:] == [None, None, None]
    assert normalize_mean(w).drop_nulls().mean() == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.lists(st.integers(0, 8), min_size=1, max_size=40),
    st.randoms(use_true_random=False),
)
def test_uniqueness_matches_naive(n, spans, rnd):
    n = max(n, len(spans))
    grid = list(range(n))
    rows = sorted(rnd.sample(range(n), len(spans)))  # labels on a subset of bars (events)
    ends = [r + s if 0 < s and r + s < n else None for r, s in zip(rows, spans, strict=True)]
    ts = ts_series(rows)
    t_end = pl.Series([None if e is None else T0 + timedelta(minutes=e + 1) for e in ends]).cast(
        pl.Datetime("us", "UTC")
    )
    w = label_uniqueness(ts, t_end, grid_ts=ts_series(grid)).to_list()
    conc = np.zeros(n)
    for r, e in zip(rows, ends, strict=True):
        if e is not None:
            conc[r + 1 : e + 1] += 1
    for r, e, got in zip(rows, ends, w, strict=True):
        if e is None:
            assert got is None
        else:
            assert got == pytest.approx(np.mean(1 / conc[r + 1 : e + 1]))
