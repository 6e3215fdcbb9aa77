"""Ensembles (SPEC M5): averages, majority vote, AUC-PR weights, stacking, regime router."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hydraquant.models.calibration import IsotonicCalibrator
from hydraquant.models.ensemble import (
    EnsembleError,
    MeanEnsemble,
    RegimeRouter,
    StackedEnsemble,
    VoteEnsemble,
    WeightedEnsemble,
    auc_pr_weights,
    auc_pr_weights_per_horizon,
    ensemble_from_json,
    fold_average,
    majority_vote,
    weighted_average,
)
from hydraquant.validation.metrics import log_loss


def _rt(obj):
    return ensemble_from_json(json.loads(json.dumps(obj.to_json())))


# --------------------------------------------------------------------------- averages


def test_fold_average_and_weighted_average_exact() -> None:
    a = np.array([[0.2, 0.8], [0.6, 0.4]])
    b = np.array([[0.6, 0.4], [0.2, 0.8]])
    assert np.allclose(fold_average([a, b]), [[0.4, 0.6], [0.4, 0.6]])
    assert np.allclose(fold_average([a, b], [3, 1]), [[0.3, 0.7], [0.5, 0.5]])
    nan = np.full_like(a, np.nan)
    out = weighted_average({"a": a, "b": b, "dead": nan}, {"a": 0.75, "b": 0.25, "dead": 0.0})
    assert np.allclose(out, [[0.3, 0.7], [0.5, 0.5]])  # weight 0 drops the member entirely
    with pytest.raises(EnsembleError, match="no weight"):
        weighted_average({"a": a, "b": b}, {"a": 1.0})
    with pytest.raises(EnsembleError, match="one shape"):
        fold_average([a, np.ones((3, 2)) / 2])


# --------------------------------------------------------------------------- majority vote


def test_majority_vote_hand_example_with_tie() -> None:
    m1 = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.4, 0.0, 0.6], [0.1, 0.1, 0.8]])
    m2 = np.array([[0.5, 0.4, 0.1], [0.1, 0.3, 0.6], [0.45, 0.1, 0.45], [0.2, 0.2, 0.6]])
    m3 = np.array([[0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4], [0.5, 0.2, 0.3]])
    out = majority_vote([m1, m2, m3])
    # row 0: 3 votes for class 0; row 1: 2 x class 1, 1 x class 2; row 2: 2 x class 2 (m2 ties -> class 0)
    # row 3: 2 x class 2, 1 x class 0
    assert np.allclose(out, [[1, 0, 0], [0, 2 / 3, 1 / 3], [1 / 3, 0, 2 / 3], [1 / 3, 0, 2 / 3]])
    # two voters, 1-1 tie between classes 0 and 2: tied mass split by mean probability
    tie = majority_vote([m1[2:3], m2[2:3]])
    mean0, mean2 = (0.4 + 0.45) / 2, (0.6 + 0.45) / 2
    assert np.allclose(tie, [[mean0 / (mean0 + mean2), 0.0, mean2 / (mean0 + mean2)]])
    assert tie.argmax() == 2  # class 2 has the higher mean probability
    assert np.allclose(out.sum(axis=1), 1.0)


def test_majority_vote_nan_rows_stay_nan() -> None:
    a = np.array([[0.9, 0.1], [np.nan, np.nan]])
    b = np.array([[0.2, 0.8], [0.3, 0.7]])
    out = majority_vote([a, b, b])
    assert np.allclose(out[0], [1 / 3, 2 / 3])
    assert np.isnan(out[1]).all()


# --------------------------------------------------------------------------- AUC-PR weights


def test_auc_pr_weights_exact_on_hand_values() -> None:
    y = np.array([1, 0, 1, 0])
    good = np.array([0.9, 0.1, 0.8, 0.2])  # AP = 1
    meh = np.array([0.9, 0.8, 0.1, 0.2])  # AP = 0.5 * 1 + 0.5 * 0.5 = 0.75
    dead = np.full(4, np.nan)  # no OOF rows -> NaN AUC-PR -> weight 0
    w = auc_pr_weights({"good": good, "meh": meh, "dead": dead}, y)
    assert w["good"] == pytest.approx(1.0 / (1.0 + 0.75**2))
    assert w["meh"] == pytest.approx(0.75**2 / (1.0 + 0.75**2))
    assert w["dead"] == 0.0
    # mask keeps rows 0 and 1 only: both models rank them perfectly -> equal weights
    w_mask = auc_pr_weights({"good": good, "meh": meh}, y, mask=np.array([1, 1, 0, 0], bool))
    assert w_mask == pytest.approx({"good": 0.5, "meh": 0.5})
    # nothing usable at all -> equal weights
    assert auc_pr_weights({"a": dead, "b": dead}, y) == {"a": 0.5, "b": 0.5}


def test_auc_pr_weights_per_horizon_lets_each_horizon_pick() -> None:
    y = np.array([1, 0, 1, 0])
    good = np.array([0.9, 0.1, 0.8, 0.2])
    meh = np.array([0.9, 0.8, 0.1, 0.2])
    w = auc_pr_weights_per_horizon(
        {"h1": {"a": good, "b": meh}, "h5": {"a": meh, "b": good}}, {"h1": y, "h5": y}
    )
    assert w["h1"]["a"] > w["h1"]["b"] and w["h5"]["b"] > w["h5"]["a"]
    assert w["h1"]["a"] == pytest.approx(w["h5"]["b"])


# --------------------------------------------------------------------------- stacking


def _stacking_problem(n: int, k: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Members see the latent signal with different noise; 'bad' is pure noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.5
    p_true = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p_true, axis=1)).sum(axis=1).clip(0, k - 1)

    def member(noise: float, sharp: float) -> np.ndarray:
        s = sharp * (z + noise * rng.normal(size=z.shape))
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return {"good": member(0.5, 2.0), "weak": member(1.5, 1.0), "bad": member(50.0, 0.1)}, y


@pytest.mark.parametrize("meta", ["logistic", "lightgbm"])
@pytest.mark.parametrize("k", [2, 3])
def test_stacking_beats_worst_base_and_roundtrips(meta: str, k: int) -> None:
    base, y = _stacking_problem(6000, k, seed=k)
    train = {m: p[:4000] for m, p in base.items()}
    test = {m: p[4000:] for m, p in base.items()}
    ens = StackedEnsemble(meta=meta).fit(train, y[:4000])
    out = ens.predict_proba(test)
    classes = list(range(k))
    assert np.allclose(out.sum(axis=1), 1.0)
    worst = max(log_loss(y[4000:], test[m], classes) for m in base)
    assert log_loss(y[4000:], np.clip(out, 1e-6, 1), classes) < worst
    back = _rt(ens)
    assert isinstance(back, StackedEnsemble)
    assert np.array_equal(back.predict_proba(test), out)
    if meta == "logistic":  # binary drops p0: one feature per member
        assert np.asarray(ens.to_json()["model"]["coef"]).shape[1] == (3 if k == 2 else 9)


def test_stacking_meta_never_sees_calibration_slice() -> None:
    base, y = _stacking_problem(3000, 2, seed=7)
    rng = np.random.default_rng(0)
    t = rng.permutation(3000) // 2  # shuffled rows, two rows per timestamp
    ens = StackedEnsemble(holdout_fraction=0.25).fit(base, y, order=t)
    fit_rows, cal_rows = ens.fit_rows_, ens.calib_rows_
    assert np.intersect1d(fit_rows, cal_rows).size == 0
    assert fit_rows.size + cal_rows.size == 3000
    assert t[fit_rows].max() < t[cal_rows].min()  # strict time order, no shared timestamp
    assert cal_rows.size == pytest.approx(750, abs=2)
    # relabelling the calibration slice cannot change the meta-learner, only the calibration
    y2 = y.copy()
    y2[cal_rows] = 1 - y2[cal_rows]
    ens2 = StackedEnsemble(holdout_fraction=0.25).fit(base, y2, order=t)
    assert ens2.to_json()["model"] == ens.to_json()["model"]
    assert ens2.to_json()["calibrator"] != ens.to_json()["calibrator"]
    # and the calibrator is exactly an isotonic fit on the meta output of the later slice
    ens_raw = StackedEnsemble.from_json({**ens.to_json(), "calibrator": None})
    raw = ens_raw.predict_proba({m: p[cal_rows] for m, p in base.items()})
    expect = IsotonicCalibrator().fit(raw, y[cal_rows]).to_json()
    assert ens.to_json()["calibrator"] == expect


def test_stacking_purges_rows_whose_label_ends_in_calibration_slice() -> None:
    base, y = _stacking_problem(1000, 2, seed=8)
    t = np.arange(1000)
    ens = StackedEnsemble(holdout_fraction=0.2).fit(base, y, order=t, t_end=t + 10)
    assert ens.calib_rows_.min() == 800
    assert ens.fit_rows_.max() == 789  # label of row 790 ends at 800
    assert ens.to_json()["n_fit_rows"] == 790


def test_stacking_drops_rows_without_oof_and_predicts_nan_for_them() -> None:
    base, y = _stacking_problem(1200, 3, seed=9)
    base["good"][:200] = np.nan  # first fold's training rows have no OOF prediction
    ens = StackedEnsemble().fit(base, y)
    assert ens.fit_rows_.min() >= 200 and ens.calib_rows_.min() >= 200
    out = ens.predict_proba(base)
    assert np.isnan(out[:200]).all() and np.isfinite(out[200:]).all()
    with pytest.raises(EnsembleError, match="needs member"):
        ens.predict_proba({"good": base["good"]})


# --------------------------------------------------------------------------- regime router


def _reference_active(regimes: list, n_bars: int, default: str) -> list:
    active, prev, run, out = default, None, 0, []
    for r in regimes:
        run = run + 1 if (r is not None and r == prev) else (1 if r is not None else 0)
        prev = r
        if r is not None and run >= n_bars:
            active = r
        out.append(active)
    return out


def test_router_hysteresis_exact_on_hand_sequence() -> None:
    seq = ["T", "R", "T", "R", "T", "R", "R", "R", "R", "T", "T", "R", "T", "T", "T"]
    router = RegimeRouter(hysteresis_bars=3, default="T")
    active = router.active_regimes(seq)
    # flip-flop never switches; 3 consecutive R switch on the 3rd; T returns only after 3 T's
    expected = ["T"] * 7 + ["R"] * 7 + ["T"]
    assert active.tolist() == expected
    per = {"T": np.tile([0.9, 0.1], (15, 1)), "R": np.tile([0.2, 0.8], (15, 1))}
    out = router.route(seq, per)
    assert np.array_equal(out[:, 1], np.where(np.array(expected) == "R", 0.8, 0.1))


def test_router_per_symbol_reset_missing_and_fallback() -> None:
    regimes = np.array(["A", "A", "A", "A", "B", "B", None, "B", "B", "B"], dtype=object)
    symbols = ["x"] * 4 + ["y"] * 6
    router = RegimeRouter(hysteresis_bars=2)  # default None: fallback until confirmed
    active = router.active_regimes(regimes, symbols)
    assert active.tolist() == [None, "A", "A", "A", None, "B", "B", "B", "B", "B"]
    per = {"A": np.tile([0.7, 0.3], (10, 1))}  # no model for B
    fb = np.tile([0.5, 0.5], (10, 1))
    out = router.route(regimes, per, fallback=fb, symbols=symbols)
    assert np.array_equal(out[:, 0], [0.5, 0.7, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert np.isnan(router.route(regimes, per, symbols=symbols)[0]).all()
    with pytest.raises(EnsembleError, match="not contiguous"):
        router.active_regimes(["A"] * 3, ["x", "y", "x"])


def test_router_min_confidence_falls_back() -> None:
    per = {0: np.array([[0.55, 0.45], [0.9, 0.1]]), 1: np.array([[0.3, 0.7], [0.3, 0.7]])}
    fb = np.array([[0.5, 0.5], [0.5, 0.5]])
    router = RegimeRouter(hysteresis_bars=1, min_confidence=0.6)
    out = router.route(np.array([0, 0]), per, fallback=fb)
    assert np.array_equal(out, [[0.5, 0.5], [0.9, 0.1]])


@settings(max_examples=60, deadline=None)
@given(
    codes=hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(-1, 2)),
    n_bars=st.integers(1, 4),
)
def test_router_matches_reference_loop(codes: np.ndarray, n_bars: int) -> None:
    names = np.array(["calm", "trend", "wild"], dtype=object)
    seq = [None if c < 0 else names[c] for c in codes]
    router = RegimeRouter(hysteresis_bars=n_bars, default="calm")
    assert router.active_regimes(np.array(seq, dtype=object)).tolist() == _reference_active(
        seq, n_bars, "calm"
    )


def test_router_json_and_member_routing() -> None:
    router = RegimeRouter(
        3, 0.1, "T", members={"T": "trend_model", "R": "range_model"}, fallback_member="all"
    )
    back = _rt(router)
    assert isinstance(back, RegimeRouter) and back.to_json() == router.to_json()
    seq = ["R", "R", "R", "T"]
    base = {
        "trend_model": np.tile([0.9, 0.1], (4, 1)),
        "range_model": np.tile([0.2, 0.8], (4, 1)),
        "all": np.tile([0.5, 0.5], (4, 1)),
    }
    assert np.array_equal(back.predict_proba(base, regimes=seq)[:, 0], [0.9, 0.9, 0.2, 0.2])


def test_router_long_series_is_fast() -> None:
    import time

    rng = np.random.default_rng(0)
    seq = rng.integers(0, 3, 2_000_000)
    router = RegimeRouter(3, default=0)
    router.active_regimes(seq[:10])  # compile
    t0 = time.perf_counter()
    active = router.active_regimes(seq, np.repeat(np.arange(4), 500_000))
    assert time.perf_counter() - t0 < 3.0
    assert active.shape == (2_000_000,)


# --------------------------------------------------------------------------- dispatch


def test_simple_ensembles_roundtrip_and_dispatch() -> None:
    a = np.array([[0.2, 0.8], [0.6, 0.4]])
    b = np.array([[0.6, 0.4], [0.2, 0.8]])
    c = np.array([[0.1, 0.9], [0.7, 0.3]])
    base = {"a": a, "b": b, "c": c}
    for ens in (MeanEnsemble(), WeightedEnsemble({"a": 0.5, "b": 0.25, "c": 0.25}), VoteEnsemble()):
        back = _rt(ens)
        assert type(back) is type(ens)
        assert np.array_equal(back.predict_proba(base), ens.predict_proba(base))
    assert np.allclose(
        WeightedEnsemble({"a": 0.5, "b": 0.25, "c": 0.25}).predict_proba(base),
        [[0.275, 0.725], [0.525, 0.475]],
    )
    assert np.allclose(VoteEnsemble().predict_proba(base), [[1 / 3, 2 / 3], [2 / 3, 1 / 3]])
    with pytest.raises(EnsembleError, match="unknown method"):
        ensemble_from_json({"method": "pickle"})
