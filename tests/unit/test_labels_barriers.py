"""L4 triple barrier: hand-built first-touch cases, conservative same-bar rule, naive O(n*h) reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.labels import labels_nb as nbk
from hydraquant.labels import triple_barrier

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ohlc(rows, atr=None) -> pl.DataFrame:
    o, h, l, c = (np.asarray(x, dtype=float) for x in zip(*rows, strict=True))
    df = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=i) for i in range(len(rows))],
            "open": o,
            "high": h,
            "low": l,
            "close": c,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    if atr is not None:
        df = df.with_columns(atr=pl.Series(atr, dtype=pl.Float64))
    return df


def test_long_tp_first_and_t_end():
    f = ohlc(
        [
            (100, 100, 100, 100),
            (100, 100.5, 99.5, 100),
            (100, 102.1, 99.9, 102),
            (102, 102, 102, 102),
        ]
    )
    out = triple_barrier(f, tp=0.02, sl=0.01, horizon=2)
    r = out.row(0, named=True)
    assert r["long_hit"] == 1 and r["long_bars"] == 2 and r["long_ret"] == pytest.approx(0.02)
    assert r["short_hit"] == -1 and r["short_bars"] == 2  # high 102.1 >= 101 on bar 2
    assert r["label"] == 1
    assert r["t_end"] == T0 + timedelta(minutes=3)  # close of bar 2
    assert out["label"].to_list()[2:] == [None, None]  # no full horizon


def test_same_bar_touch_is_stop_loss():
    f = ohlc([(100, 100, 100, 100), (100, 103, 98, 100), (100, 100, 100, 100)])
    out = triple_barrier(f, tp=0.02, sl=0.01, horizon=1)
    r = out.row(0, named=True)
    assert r["long_hit"] == -1 and r["short_hit"] == -1 and r["label"] == 0
    assert r["long_ret"] == pytest.approx(-0.01)


def test_gap_through_stop_fills_at_open_and_timeout():
    f = ohlc(
        [
            (100, 100, 100, 100),
            (97, 97.5, 96, 97),
            (100, 100.2, 99.9, 100.1),
            (100.1, 100.3, 100, 100.2),
        ]
    )
    out = triple_barrier(f, tp=0.05, sl=0.02, horizon=1)
    assert out["long_hit"][0] == -1 and out["long_ret"][0] == pytest.approx(
        -0.03
    )  # open 97 < stop 98
    # short: TP 95 (low 96) and SL 102 (high 97.5) untouched -> time-out at close 97
    assert out["short_hit"][0] == 0 and out["short_ret"][0] == pytest.approx(0.03)
    assert out["label"][0] == 0  # a profitable time-out is not a barrier win
    # row 2: neither barrier within 1 bar -> time-out at close[3]
    assert out["long_hit"][2] == 0 and out["long_ret"][2] == pytest.approx(100.2 / 100.1 - 1)
    assert out["label"][2] == 0


def test_atr_units_and_missing_atr_is_null():
    f = ohlc(
        [(100, 100, 100, 100), (100, 100, 100, 100), (100, 104, 100, 104), (104, 104, 104, 104)],
        atr=[None, 2.0, 2.0, 2.0],
    )
    out = triple_barrier(f, tp=1.5, sl=1.0, horizon=2, unit="atr", fee_bps=10)
    assert out["label"][0] is None  # ATR unknown at decision time
    assert out["label"][1] == 1 and out["long_bars"][1] == 1
    assert out["long_ret"][1] == pytest.approx(0.03 - 0.001)


def naive_side(o, h, l, c, tp_d, sl_d, horizon, side):
    n = len(c)
    res = []
    for i in range(n):
        if i + horizon >= n or not (tp_d[i] > 0 and sl_d[i] > 0):
            res.append(None)
            continue
        tp_l = c[i] + side * tp_d[i]
        sl_l = c[i] - side * sl_d[i]
        out = (0, i + horizon, c[i + horizon])
        for j in range(i + 1, i + horizon + 1):
            sl_hit = l[j] <= sl_l if side > 0 else h[j] >= sl_l
            tp_hit = h[j] >= tp_l if side > 0 else l[j] <= tp_l
            if sl_hit:
                out = (-1, j, min(o[j], sl_l) if side > 0 else max(o[j], sl_l))
                break
            if tp_hit:
                out = (1, j, tp_l)
                break
        res.append(out)
    return res


@st.composite
def random_bars(draw):
    n = draw(st.integers(2, 70))
    steps = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    c = 100 + np.cumsum(steps) * 0.5
    o = np.r_[c[0], c[:-1]]
    up = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))) * 0.5
    dn = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))) * 0.5
    return o, np.maximum(o, c) + up, np.minimum(o, c) - dn, c


@settings(max_examples=150, deadline=None)
@given(
    random_bars(),
    st.integers(1, 40),
    st.sampled_from([0.005, 0.01, 0.02]),
    st.sampled_from([0.005, 0.01, 0.03]),
)
def test_kernel_matches_naive_reference(b, horizon, tp, sl):
    o, h, l, c = b
    hits, idxs, pxs = nbk.barrier_trades(o, h, l, c, c * tp, c * sl, horizon)
    for s, side in ((0, 1), (1, -1)):
        hit, idx, px = hits[s], idxs[s], pxs[s]
        ref = naive_side(o, h, l, c, c * tp, c * sl, horizon, side)
        for i, r in enumerate(ref):
            if r is None:
                assert idx[i] == -1
            else:
                assert (hit[i], idx[i]) == (r[0], r[1])
                assert px[i] == pytest.approx(r[2])


@settings(max_examples=60, deadline=None)
@given(random_bars(), st.integers(1, 10))
def test_combined_label_rule(b, horizon):
    o, h, l, c = b
    f = ohlc(list(zip(o, h, l, c, strict=True)))
    out = triple_barrier(
        f, tp=0.01, sl=0.02, horizon=horizon, interval="1m"
    )  # tp < sl: both sides can win
    lg = naive_side(o, h, l, c, c * 0.01, c * 0.02, horizon, 1)
    sh = naive_side(o, h, l, c, c * 0.01, c * 0.02, horizon, -1)
    for i in range(len(c)):
        if lg[i] is None:
            assert out["label"][i] is None and out["t_end"][i] is None
            continue
        lw, sw = lg[i][0] == 1, sh[i][0] == 1
        if lw and sw:
            exp = 1 if lg[i][1] < sh[i][1] else (-1 if sh[i][1] < lg[i][1] else 0)
        else:
            exp = 1 if lw else (-1 if sw else 0)
        assert out["label"][i] == exp
        assert out["t_end"][i] == T0 + timedelta(minutes=max(lg[i][1], sh[i][1]) + 1)


@pytest.mark.realdata
def test_real_btc_minutes_match_naive_on_sample(real_data_dir):
    from tests.conftest import real_file

    path = real_file("binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2024-02-12_2024-03-17.csv.gz")
    raw = pl.read_csv(path, try_parse_dates=True)
    f = raw.with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC").cast(pl.Datetime("us", "UTC")).alias("ts")
    )
    out = triple_barrier(f, tp=0.004, sl=0.003, horizon=60)
    assert out.height == f.height and out["label"].null_count() >= 60
    o, h, l, c = (f[k].to_numpy() for k in ("open", "high", "low", "close"))
    sample = slice(10_000, 10_600)
    ref = naive_side(
        o[sample], h[sample], l[sample], c[sample], c[sample] * 0.004, c[sample] * 0.003, 60, 1
    )
    for k, r in enumerate(ref):
        if r is not None:
            assert out["long_hit"][10_000 + k] == r[0]
            assert out["long_bars"][10_000 + k] == r[1] - k
    counts = out["label"].drop_nulls().value_counts()
    assert set(counts["label"].to_list()) <= {-1, 0, 1} and counts.height >= 2
