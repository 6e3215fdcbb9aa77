"""Splitters: exact folds on tiny inputs, leak-freedom as a property, sklearn interop, real data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import comb

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from hydraquant.validation.splits import (
    CombinatorialPurgedCV,
    DatedHoldout,
    ExpandingWindow,
    PurgedWalkForward,
    RollingWindow,
    SplitError,
    purge_train,
)
from tests.conftest import real_file

HOUR = 3_600_000_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)


# --------------------------------------------------------------------------- independent reference


def _runs(idx: np.ndarray) -> list[tuple[int, int]]:
    idx = np.sort(idx)
    cut = np.flatnonzero(np.diff(idx) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(idx, cut)]


def reference_train(candidates, test_idx, t, t_end, embargo_count=0, embargo_time=0):
    """Brute-force rule: a candidate survives if it is outside the test set, its closed label
    window misses every test run's [min t, max t_end], and it is not embargoed after any run."""
    n = t.size
    ok = np.zeros(n, dtype=bool)
    ok[candidates] = True
    ok[test_idx] = False
    pos = np.arange(n)
    for lo, hi in _runs(test_idx):
        w0, w1 = t[lo:hi].min(), t_end[lo:hi].max()
        ok &= ~((t <= w1) & (t_end >= w0))
        after = pos[t > w1]
        if embargo_count and after.size:
            ok[after[:embargo_count]] = False
        if embargo_time:
            ok &= ~((t > w1) & (t <= w1 + embargo_time))
    return np.flatnonzero(ok)


def assert_leak_free(t, t_end, train, test, embargo_count=0, embargo_time=0):
    assert np.intersect1d(train, test).size == 0
    for lo, hi in _runs(test):
        w0, w1 = t[lo:hi].min(), t_end[lo:hi].max()
        # no training label window touches the test window
        assert not np.any((t[train] <= w1) & (t_end[train] >= w0))
        # nothing trains in the embargo after the test window
        if embargo_time:
            assert not np.any((t[train] > w1) & (t[train] <= w1 + embargo_time))
        if embargo_count:
            first_after = int(np.searchsorted(t, w1, side="right"))
            assert not np.any((train >= first_after) & (train < first_after + embargo_count))


# --------------------------------------------------------------------------- exact small cases


def test_walk_forward_exact_folds_purge_tail():
    t = np.arange(20.0)
    t_end = t + 3  # every label needs 3 more steps
    folds = list(PurgedWalkForward(3, t=t, t_end=t_end).split(np.zeros((20, 2))))
    assert [f[1].tolist() for f in folds] == [
        list(range(5, 10)),
        list(range(10, 15)),
        list(range(15, 20)),
    ]
    # train must end where t_end < first test t: 1+3 < 5, 6+3 < 10, 11+3 < 15
    assert [f[0].tolist() for f in folds] == [[0, 1], list(range(7)), list(range(12))]


def test_walk_forward_test_size_min_and_max_train():
    t = np.arange(30.0)
    cv = PurgedWalkForward(2, test_size=5, max_train_size=8, t=t, t_end=t)
    folds = list(cv.split())
    assert cv.get_n_splits() == 2
    assert folds[0][1].tolist() == list(range(20, 25))
    assert folds[0][0].tolist() == list(range(12, 20))  # t_end == t: nothing purged, 8 rows max
    assert folds[1][0].tolist() == list(range(17, 25))
    cv2 = PurgedWalkForward(2, min_train_size=10, t=t, t_end=t)
    assert [f[1].size for f in cv2.split()] == [10, 10]
    with pytest.raises(SplitError, match="cannot hold"):
        list(PurgedWalkForward(5, test_size=6, t=t, t_end=t).split())


def test_expanding_window_seed003_blocks():
    t = np.arange(12.0)
    folds = list(ExpandingWindow(3, t=t, t_end=t + 1).split())
    assert [f[1].tolist() for f in folds] == [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    # growing train; the last pre-test row's label (t+1) reaches the test start and is purged
    assert [f[0].tolist() for f in folds] == [[0, 1], [0, 1, 2, 3, 4], list(range(8))]


def test_rolling_window_fixed_length():
    t = np.arange(20.0)
    folds = list(RollingWindow(train_size=6, test_size=4, t=t, t_end=t + 2).split())
    assert [f[1].tolist() for f in folds] == [[6, 7, 8, 9], [10, 11, 12, 13], [14, 15, 16, 17]]
    assert [f[0].tolist() for f in folds] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert RollingWindow(6, 4, step=2, t=t, t_end=t).get_n_splits() == 6


def test_cpcv_exact_purge_and_embargo_on_both_sides():
    t = np.arange(20.0)
    cv = CombinatorialPurgedCV(6, 2, embargo=1, t=t, t_end=t + 1)
    folds = list(cv.split())
    assert len(folds) == cv.get_n_splits() == 15
    # groups: [0,3) [3,6) [6,10) [10,13) [13,16) [16,20)
    train, test = folds[1]  # test groups 0 and 2
    assert test.tolist() == [0, 1, 2, 6, 7, 8, 9]
    # 3 purged (label ends at 4 >= ... overlaps [0,3]); 4 embargoed; 5 purged (t_end 6 in
    # [6,10]); 10 purged (t 10 <= 10); 11 embargoed after group 2
    assert train.tolist() == list(range(12, 20))


def test_time_embargo_equals_count_embargo_on_regular_grid():
    ts = pl.datetime_range(T0, T0 + timedelta(hours=59), "1h", eager=True, time_zone="UTC")
    t_end = ts + timedelta(hours=2)
    by_time = list(
        CombinatorialPurgedCV(5, 2, embargo=timedelta(hours=3), t=ts, t_end=t_end).split()
    )
    by_str = list(CombinatorialPurgedCV(5, 2, embargo="3h", t=ts, t_end=t_end).split())
    by_count = list(CombinatorialPurgedCV(5, 2, embargo=3, t=ts, t_end=t_end).split())
    for (a, _), (b, _), (c, _) in zip(by_time, by_str, by_count, strict=True):
        assert a.tolist() == b.tolist() == c.tolist()
    tus = ts.dt.epoch("us").to_numpy()
    for train, test in by_time:
        assert_leak_free(tus, tus + 2 * HOUR, train, test, embargo_time=3 * HOUR)


def test_dated_holdout_purges_by_label_end():
    ts = pl.datetime_range(T0, T0 + timedelta(hours=9), "1h", eager=True, time_zone="UTC")
    t_end = ts + timedelta(hours=3)
    X = pl.DataFrame({"ts": ts, "t_end": t_end, "f": np.arange(10.0)})
    ((train, test),) = DatedHoldout("2024-01-01T06:00:00").split(X)
    assert test.tolist() == [6, 7, 8, 9]
    assert train.tolist() == [0, 1, 2]  # t_end 03:00..05:00 < 06:00; row 3 ends exactly at 06:00
    ((_, test2),) = DatedHoldout(
        T0 + timedelta(hours=6), end=np.datetime64("2024-01-01T08:00")
    ).split(X)
    assert test2.tolist() == [6, 7]
    with pytest.raises(SplitError, match="0 test rows"):
        list(DatedHoldout("2025-01-01").split(X))


def test_frame_times_pandas_and_polars_agree():
    pytest.importorskip("pandas")
    ts = pl.datetime_range(T0, T0 + timedelta(hours=29), "1h", eager=True, time_zone="UTC")
    pf = pl.DataFrame({"ts": ts, "t_end": ts + timedelta(hours=4), "x": np.arange(30.0)})
    cv = PurgedWalkForward(3, embargo=2)
    a = [(tr.tolist(), te.tolist()) for tr, te in cv.split(pf)]
    b = [(tr.tolist(), te.tolist()) for tr, te in cv.split(pf.to_pandas())]
    assert a == b and cv.get_n_splits(pf) == 3


def test_purge_train_helper_matches_reference():
    rng = np.random.default_rng(3)
    t = np.sort(rng.integers(0, 200, 80)).astype(float)
    t_end = t + rng.integers(0, 15, 80)
    test = np.r_[20:30, 50:55]
    train = np.setdiff1d(np.arange(80), test)
    got = purge_train(train, test, t, t_end, embargo=4)
    assert got.tolist() == reference_train(train, test, t, t_end, embargo_count=4).tolist()


def test_errors_are_actionable():
    t = np.arange(10.0)
    with pytest.raises(SplitError, match="sorted"):
        PurgedWalkForward(2, t=t[::-1], t_end=t[::-1])
    with pytest.raises(SplitError, match="t_end < t"):
        PurgedWalkForward(2, t=t, t_end=t - 1)
    with pytest.raises(SplitError, match="pass t= and t_end="):
        list(PurgedWalkForward(2).split(np.zeros((10, 2))))
    with pytest.raises(SplitError, match="rows"):
        list(PurgedWalkForward(2, t=t, t_end=t).split(np.zeros((9, 2))))
    with pytest.raises(SplitError, match="duration but t is numeric"):
        PurgedWalkForward(2, embargo="1h", t=t, t_end=t)
    with pytest.raises(SplitError, match="null"):
        PurgedWalkForward(2, t=pl.Series([1.0, 2.0]), t_end=pl.Series([1.0, None]))
    with pytest.raises(SplitError, match="no training samples"):
        list(PurgedWalkForward(2, t=t, t_end=t + 100).split())
    with pytest.raises(SplitError, match="k_test_groups"):
        CombinatorialPurgedCV(3, 3)


# --------------------------------------------------------------------------- properties


@st.composite
def sample_times(draw):
    n = draw(st.integers(12, 120))
    steps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))  # zeros = panel ties
    lengths = draw(st.lists(st.integers(0, 25), min_size=n, max_size=n))
    t = np.cumsum(steps).astype(float)
    return t, t + np.asarray(lengths, dtype=float)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(times=sample_times(), n_splits=st.integers(2, 4), embargo=st.integers(0, 5))
def test_walk_forward_property(times, n_splits, embargo):
    t, t_end = times
    try:
        folds = list(PurgedWalkForward(n_splits, embargo=embargo, t=t, t_end=t_end).split())
    except SplitError:
        return  # too little data / everything purged is reported, never silently leaked
    prev_test_end = -1
    for train, test in folds:
        assert test[0] > prev_test_end and np.all(np.diff(test) == 1)  # ordered, contiguous
        prev_test_end = test[-1]
        assert train.max() < test.min()  # training precedes test
        assert_leak_free(t, t_end, train, test, embargo_count=embargo)
        assert (
            train.tolist() == reference_train(np.arange(test[0]), test, t, t_end, embargo).tolist()
        )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    times=sample_times(),
    n_groups=st.integers(3, 6),
    k=st.integers(1, 2),
    embargo=st.integers(0, 6),
    use_time=st.booleans(),
)
def test_cpcv_property(times, n_groups, k, embargo, use_time):
    t, t_end = times
    # numeric-time embargo must be a count; emulate a duration with integer-µs datetimes
    if use_time:
        ts = (t * HOUR).astype("datetime64[us]")
        te = (t_end * HOUR).astype("datetime64[us]")
        cv = CombinatorialPurgedCV(
            n_groups, k, embargo=np.timedelta64(embargo, "h"), t=ts, t_end=te
        )
        t_cmp, e_cmp, ec, et = t * HOUR, t_end * HOUR, 0, embargo * HOUR
    else:
        cv = CombinatorialPurgedCV(n_groups, k, embargo=embargo, t=t, t_end=t_end)
        t_cmp, e_cmp, ec, et = t, t_end, embargo, 0
    try:
        folds = list(cv.split())
    except SplitError:
        return
    assert len(folds) == comb(n_groups, k)
    for train, test in folds:
        assert_leak_free(t_cmp, e_cmp, train, test, embargo_count=ec, embargo_time=et)
        expect = reference_train(np.arange(t.size), test, t_cmp, e_cmp, ec, et)
        assert train.tolist() == expect.tolist()


@pytest.mark.parametrize(("n", "k"), [(6, 2), (5, 1), (8, 3), (10, 4)])
def test_cpcv_paths_cover_every_group_once(n, k):
    cv = CombinatorialPurgedCV(n, k)
    paths = cv.backtest_paths()
    combos = cv.test_group_combinations()
    assert cv.get_n_splits() == comb(n, k)
    assert paths.shape == (cv.n_paths, n)
    assert cv.n_paths * n == k * comb(n, k)  # phi = k/n * C(n, k)
    for g in range(n):
        # column g uses exactly the splits that test g, each once
        assert sorted(paths[:, g].tolist()) == [s for s, c in enumerate(combos) if g in c]
    # assembled path predictions reproduce every row exactly once per path
    rows = 53
    t = np.arange(float(rows))
    cv_t = CombinatorialPurgedCV(n, k, t=t, t_end=t)
    preds = [test.astype(float) for _, test in cv_t.split()]
    assembled = cv_t.assemble_paths(preds, rows)
    assert np.array_equal(assembled, np.tile(t, (cv.n_paths, 1)))


# --------------------------------------------------------------------------- sklearn interop


def _toy_problem(n=600, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)
    ts = np.datetime64("2024-01-01T00:00", "us") + np.arange(n) * np.timedelta64(1, "h")
    t_end = ts + rng.integers(1, 12, n) * np.timedelta64(1, "h")
    return X, y, ts, t_end


@pytest.mark.parametrize(
    "make",
    [
        lambda ts, te: PurgedWalkForward(4, embargo="2h", t=ts, t_end=te),
        lambda ts, te: ExpandingWindow(3, embargo=5, t=ts, t_end=te),
        lambda ts, te: RollingWindow(200, 100, t=ts, t_end=te),
        lambda ts, te: CombinatorialPurgedCV(6, 2, embargo=timedelta(hours=6), t=ts, t_end=te),
        lambda ts, te: DatedHoldout("2024-01-20", t=ts, t_end=te),
    ],
)
def test_cross_val_score_logistic_regression(make):
    X, y, ts, t_end = _toy_problem()
    cv = make(ts, t_end)
    scores = cross_val_score(LogisticRegression(), X, y, cv=cv, scoring="accuracy")
    assert scores.shape == (cv.get_n_splits(X),)
    assert np.all(scores > 0.7)  # the signal in X[:, 0] is learnable out of sample
    assert "t=<600 times>" in repr(cv)


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_panel_btc_eth_1h(real_data_dir):
    frames = []
    for sym in ("BTCUSDT", "ETHUSDT"):
        path = real_file(f"binance-spot-klines-ccxt/{sym}/{sym}_1h_2022-05-25_2024-12-31.csv.gz")
        f = pl.read_csv(path).head(3000)  # timestamp = ms since epoch (bar open)
        frames.append(
            f.select(
                pl.from_epoch(pl.col("timestamp"), time_unit="ms")
                .dt.replace_time_zone("UTC")
                .alias("ts"),
                pl.lit(sym).alias("symbol"),
                pl.col("close"),
            )
        )
    panel = pl.concat(frames).sort("ts", "symbol")
    # variable-length labels: 1..24 bars depending on volatility (a triple-barrier-like shape)
    panel = (
        panel.with_columns(
            ret=pl.col("close").log().diff().over("symbol").fill_null(0.0),
            ts=pl.col("ts").cast(pl.Datetime("us", "UTC")),
        )
        .with_columns(
            bars=(1 + (pl.col("ret").abs() * 4000).clip(0, 23)).cast(pl.Int64),
        )
        .with_columns(t_end=pl.col("ts") + pl.duration(hours=pl.col("bars") + 1))
    )
    t = panel["ts"].dt.epoch("us").to_numpy()
    t_end = panel["t_end"].dt.epoch("us").to_numpy()
    assert np.any(np.diff(t) == 0)  # a real panel: ties in t across symbols
    for cv, ec, et in [
        (PurgedWalkForward(5, embargo=24, t=panel["ts"], t_end=panel["t_end"]), 24, 0),
        (
            CombinatorialPurgedCV(8, 2, embargo="12h", t=panel["ts"], t_end=panel["t_end"]),
            0,
            12 * HOUR,
        ),
    ]:
        n_folds = 0
        for train, test in cv.split(panel):
            assert_leak_free(t, t_end, train, test, embargo_count=ec, embargo_time=et)
            # both symbols at a purge boundary share ts, so neither leaks through a tie
            n_folds += 1
        assert n_folds == cv.get_n_splits(panel)


def test_leak_checker_catches_an_unpurged_split():
    """The property checks are not vacuous: sklearn's plain TimeSeriesSplit leaks label windows."""
    from sklearn.model_selection import TimeSeriesSplit

    t = np.arange(100.0)
    t_end = t + 5
    train, test = next(iter(TimeSeriesSplit(3).split(t)))
    with pytest.raises(AssertionError):
        assert_leak_free(t, t_end, train, test)
    train, test = next(iter(PurgedWalkForward(3, t=t, t_end=t_end).split()))
    assert_leak_free(t, t_end, train, test)
