"""L1/L2: exact values on hand-built closes, null tail, t_end = close time of bar i+h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.errors import DataError
from hydraquant.labels import LabelError, fixed_horizon_direction, profitable_trade

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars(close, step_s=60, ts=None) -> pl.DataFrame:
    n = len(close)
    if ts is None:
        ts = [T0 + timedelta(seconds=step_s * i) for i in range(n)]
    return pl.DataFrame({"ts": ts, "close": np.asarray(close, dtype=float)}).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC"))
    )


def test_direction_binary_exact_and_tail_null():
    out = fixed_horizon_direction(bars([100, 101, 100, 100, 99]), 2)
    assert out["label"].to_list() == [0, 0, 0, None, None]  # 100->100 is not "up"
    assert out["ret"].to_list()[:3] == pytest.approx([0.0, -0.0099009901, -0.01])
    out = fixed_horizon_direction(bars([100, 101, 102, 100, 99]), 2)
    assert out["label"].to_list() == [1, 0, 0, None, None]


def test_direction_dead_zone_three_classes():
    out = fixed_horizon_direction(bars([100, 100.05, 101, 99]), 1, dead_zone=0.001)
    # +0.05% inside band -> 0; +0.95% -> 1; -1.98% -> -1; last row null
    assert out["label"].to_list() == [0, 1, -1, None]


def test_t_end_is_close_of_last_bar_even_with_gaps():
    ts = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)]
    out = fixed_horizon_direction(bars([1, 2, 3, 4], ts=ts), 1)
    # interval inferred as 1m (smallest step); row 1 looks at bar 2 opened at +5m, known at +6m
    assert out["t_end"].to_list() == [
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=6),
        T0 + timedelta(minutes=7),
        None,
    ]
    assert out["t_end"].dtype == pl.Datetime("us", "UTC")


def test_profitable_trade_fee_adjusted_both_sides():
    out = profitable_trade(bars([100.0, 100.05, 99.8, 100.3]), 1, fee_bps=10)
    # returns: +0.05% (below 0.1% fee), -0.2496%, +0.501%
    assert out["long_profitable"].to_list() == [0, 0, 1, None]
    assert out["short_profitable"].to_list() == [0, 1, 0, None]
    assert out["long_ret_net"][0] == pytest.approx(0.0005 - 0.001)
    assert out["short_ret_net"][0] == pytest.approx(-0.0005 - 0.001)


def test_rejects_bad_input():
    with pytest.raises(LabelError):
        fixed_horizon_direction(bars([1, 2, 3]), 0)
    with pytest.raises(DataError, match="row 1"):
        fixed_horizon_direction(bars([1.0, -2.0, 3.0]), 1)
    unsorted = bars([1, 2, 3]).reverse()
    with pytest.raises(DataError, match="strictly increasing"):
        fixed_horizon_direction(unsorted, 1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(1, 1000, allow_nan=False), min_size=1, max_size=40),
    st.integers(1, 8),
    st.floats(0, 50),
)
def test_profitable_matches_naive(closes, h, fee_bps):
    out = profitable_trade(bars(closes), h, fee_bps=fee_bps, interval="1m")
    for i, c in enumerate(closes):
        if i + h >= len(closes):
            assert out["long_profitable"][i] is None and out["t_end"][i] is None
            continue
        r = closes[i + h] / c - 1
        assert out["long_profitable"][i] == int(r - fee_bps * 1e-4 > 0)
        assert out["short_profitable"][i] == int(-r - fee_bps * 1e-4 > 0)
        assert out["t_end"][i] == T0 + timedelta(seconds=60 * (i + h + 1))
