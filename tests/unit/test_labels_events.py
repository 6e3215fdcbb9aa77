"""L9: seed 000 decision mask with rolling (causal) quantiles, and the symmetric CUSUM filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.labels import LabelError, cusum_filter, decision_points

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(n, **cols) -> pl.DataFrame:
    data = {"ts": [T0 + timedelta(milliseconds=250 * i) for i in range(n)]}
    data.update({k: pl.Series(v, dtype=pl.Float64) for k, v in cols.items()})
    return pl.DataFrame(data).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def features(n=600, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return frame(
        n,
        close=100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))),
        MOI_1s=rng.normal(size=n),
        dist_lvn_atr=rng.exponential(size=n),
        absorption_z=rng.normal(size=n),
        vol_ratio=rng.uniform(0.5, 1.7, n),
    )


def test_decision_mask_matches_seed_pandas():
    f = features()
    out = decision_points(f, window=100)
    p = f.to_pandas()
    moi_t = p["MOI_1s"].abs().rolling(100).quantile(0.8)
    lvn_t = p["dist_lvn_atr"].rolling(100).quantile(0.2)
    abs_t = p["absorption_z"].abs().rolling(100).quantile(0.8)
    seed = (
        (p["dist_lvn_atr"] < lvn_t)
        | (p["absorption_z"].abs() > abs_t)
        | (p["MOI_1s"].abs() > moi_t)
        | (p["vol_ratio"] > 1.5)
    )
    assert out["is_event"].to_list() == seed.tolist()
    assert (
        out["is_event"][:99].to_list() == (p["vol_ratio"][:99] > 1.5).tolist()
    )  # warm-up: no thresholds
    assert out["t_end"][0] == T0 + timedelta(milliseconds=250)


def test_decision_mask_is_causal():
    f = features(500, seed=1)
    full = decision_points(f, window=50)
    prefix = decision_points(f[:300], window=50)
    assert full[:300].equals(prefix)


def test_cusum_exact():
    # log returns: +0.6%, +0.6% (S+ = 1.2% > 1% -> event), -0.5%, -0.6% (S- = -1.1% -> event)
    lr = [0.0, 0.006, 0.006, -0.005, -0.006, 0.001]
    close = 100 * np.exp(np.cumsum(lr))
    out = cusum_filter(frame(len(lr), close=close), 0.01)
    assert out["is_event"].to_list() == [False, False, True, False, True, False]
    assert out["direction"].to_list() == [None, None, 1, None, -1, None]


def test_cusum_column_threshold_and_errors():
    close = 100 * np.exp(np.cumsum([0.0, 0.003, 0.003, 0.003]))
    f = frame(4, close=close, thr=[np.nan, 0.001, 0.01, 0.01])
    out = cusum_filter(f, "thr")
    assert out["is_event"].to_list() == [False, True, False, False]
    with pytest.raises(LabelError):
        cusum_filter(f, 0.0)


def naive_cusum(diff, h):
    s_pos = s_neg = 0.0
    out = []
    for d in diff:
        s_pos, s_neg = max(0.0, s_pos + d), min(0.0, s_neg + d)
        if s_neg < -h:
            s_neg = 0.0
            out.append(-1)
        elif s_pos > h:
            s_pos = 0.0
            out.append(1)
        else:
            out.append(0)
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-0.02, 0.02), min_size=2, max_size=80), st.floats(0.001, 0.03))
def test_cusum_matches_naive(lr, h):
    close = 100 * np.exp(np.cumsum(lr))
    out = cusum_filter(frame(len(lr), close=close), h, interval="250ms")
    ref = naive_cusum(np.diff(np.log(close)), h)
    got = out["direction"].fill_null(0).to_list()
    assert got[0] == 0 and got[1:] == ref


def test_cusum_on_real_klines(real_data_dir):
    from tests.conftest import real_file

    path = real_file("binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2024-02-12_2024-03-17.csv.gz")
    raw = pl.read_csv(path, try_parse_dates=True)
    f = raw.with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC")).alias("ts")
    )
    out = cusum_filter(f, 0.005)
    n_events = int(out["is_event"].sum())
    assert 0 < n_events < f.height // 10  # a filter, not every bar
    moves = np.abs(np.diff(np.log(f["close"].to_numpy())))
    assert n_events <= moves.sum() / 0.005 + 1  # each event needs >= threshold of path length
