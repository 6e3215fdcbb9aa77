"""Metrics: exact hand values, scikit-learn cross-checks, seed-000 regression semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from hydraquant.validation.metrics import (
    MetricError,
    accuracy,
    auc_pr,
    average_precision,
    brier,
    classification_report,
    encode_labels,
    expected_calibration_error,
    log_loss,
    mae,
    mae_over_std,
    precision_recall,
    regression_report,
    reliability_curve,
    rmse,
    roc_auc,
    roc_auc_ovr,
    top_decile_actual,
    top_fraction_actual,
    top_quartile_actual,
)


def _multiclass(n=400, k=3, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in proba])  # calibrated by construction
    return y, proba


# --------------------------------------------------------------------------- exact small values


def test_hand_computed_binary_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    # positives' scores beat negatives in 3 of 4 pairs
    assert roc_auc(y, p) == pytest.approx(0.75)
    # ranked: .8(+) .4(-) .35(+) .1(-): AP = 0.5*1 + 0.5*(2/3)
    assert average_precision(y, p) == pytest.approx(0.5 + 1 / 3)
    assert brier(y, p, [0, 1]) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert log_loss(y, p, [0, 1]) == pytest.approx(-np.mean(np.log([0.9, 0.6, 0.35, 0.8])))
    # ties count one half
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_precision_recall_with_string_labels_and_nan_for_undefined():
    y = np.array(["up", "up", "down", "flat", "down"])
    pred = np.array(["up", "down", "down", "down", "down"])
    pr = precision_recall(y, pred, ["down", "flat", "up"])
    np.testing.assert_allclose(pr["precision"], [2 / 4, np.nan, 1.0])
    np.testing.assert_allclose(pr["recall"], [1.0, 0.0, 0.5])
    assert pr["support"].tolist() == [2, 1, 2]
    assert accuracy(y, pred) == pytest.approx(3 / 5)
    with pytest.raises(MetricError, match="not one of classes"):
        encode_labels(["up", "sideways"], ["down", "up"])


def test_reliability_curve_exact_bins():
    y = np.array([0, 1, 0, 1, 1, 1])
    p = np.array([0.05, 0.15, 0.55, 0.6, 0.95, 0.9])
    c = reliability_curve(y, p, n_bins=2)
    np.testing.assert_allclose(c.bin_center, [0.25, 0.75])
    assert c.count.tolist() == [2, 4]
    np.testing.assert_allclose(c.mean_predicted, [0.1, 0.75])
    np.testing.assert_allclose(c.observed_frequency, [0.5, 0.75])
    ece, _ = expected_calibration_error(y, p, [0, 1], n_bins=2)
    assert ece == pytest.approx(2 / 6 * 0.4 + 4 / 6 * 0.0)
    c5 = reliability_curve(y, p, n_bins=5)
    assert c5.count.tolist() == [2, 0, 2, 0, 2]
    assert np.isnan(c5.mean_predicted[1]) and np.isnan(c5.observed_frequency[3])


# --------------------------------------------------------------------------- sklearn cross-checks


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(5, 200),
    st.sampled_from([None, 1, 2]),  # None: continuous scores; else rounded -> many ties
)
def test_binary_ranking_metrics_match_sklearn(seed, n, decimals):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.random(n) + 0.3 * y
    if decimals is not None:
        s = np.round(s, decimals)
    if 0 < y.sum() < n:
        assert roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    if y.sum() > 0:
        assert average_precision(y, s) == pytest.approx(
            skm.average_precision_score(y, s), abs=1e-12
        )


@pytest.mark.parametrize("k", [2, 3, 5])
def test_probability_metrics_match_sklearn(k):
    y, proba = _multiclass(k=k, seed=k)
    classes = list(range(k))
    assert log_loss(y, proba, classes) == pytest.approx(skm.log_loss(y, proba, labels=classes))
    assert brier(y, proba, classes) == pytest.approx(skm.brier_score_loss(y, proba, labels=classes))
    if k == 2:
        assert roc_auc_ovr(y, proba, classes) == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
        assert auc_pr(y, proba[:, 1], classes) == pytest.approx(
            skm.average_precision_score(y, proba[:, 1])
        )
    else:
        assert roc_auc_ovr(y, proba, classes) == pytest.approx(
            skm.roc_auc_score(y, proba, multi_class="ovr", average="macro")
        )
        onehot = np.eye(k)[y]
        assert auc_pr(y, proba, classes) == pytest.approx(
            skm.average_precision_score(onehot, proba, average="macro")
        )
    pred = proba.argmax(1)
    pr = precision_recall(y, pred, classes)
    np.testing.assert_allclose(
        pr["precision"], skm.precision_score(y, pred, average=None, labels=classes)
    )
    np.testing.assert_allclose(
        pr["recall"], skm.recall_score(y, pred, average=None, labels=classes)
    )
    assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_reliability_curve_matches_sklearn_calibration_curve(strategy):
    rng = np.random.default_rng(11)
    p = rng.beta(2, 3, 1000)
    y = (rng.random(1000) < p).astype(int)
    curve = reliability_curve(y, p, n_bins=8, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=8, strategy=strategy)
    filled = curve.count > 0
    np.testing.assert_allclose(curve.observed_frequency[filled], prob_true)
    np.testing.assert_allclose(curve.mean_predicted[filled], prob_pred)
    assert curve.count.sum() == 1000
    if strategy == "quantile":  # equal mass: every bin holds ~1/8 of the samples
        assert np.all(np.abs(curve.count - 125) <= 1)


def test_ece_small_for_calibrated_large_for_overconfident():
    y, proba = _multiclass(n=4000, k=3, seed=5)
    ece_ok, _ = expected_calibration_error(y, proba, [0, 1, 2], strategy="quantile")
    sharp = proba**4 / (proba**4).sum(1, keepdims=True)  # same argmax, overconfident
    ece_bad, curve = expected_calibration_error(y, sharp, [0, 1, 2])
    assert ece_ok < 0.03
    assert ece_bad > 0.1
    assert curve.count.sum() == 4000


def test_classification_report_bundles_everything_json_ready():
    y, proba = _multiclass(k=3, seed=9)
    labels = np.array([-1, 0, 1])[y]
    rep = classification_report(labels, proba, [-1, 0, 1])
    assert rep["n"] == 400 and rep["classes"] == [-1, 0, 1]
    assert rep["accuracy"] == pytest.approx(skm.accuracy_score(y, proba.argmax(1)))
    assert rep["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert set(rep["per_class"]) == {"-1", "0", "1"}
    assert sum(v["support"] for v in rep["per_class"].values()) == 400
    assert np.asarray(rep["confusion_matrix"]).sum() == 400
    assert set(rep["reliability"]) == {
        "bin_center",
        "mean_predicted",
        "observed_frequency",
        "count",
        "edges",
    }
    json.dumps(rep)  # serialisable for the report/manifest
    binary = classification_report(y == 1, proba[:, 1], [False, True])
    assert binary["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 1, proba[:, 1]))


def test_input_validation():
    with pytest.raises(MetricError, match="shape"):
        log_loss([0, 1], np.ones((2, 3)) / 3, [0, 1])
    with pytest.raises(MetricError, match="1-D proba"):
        brier([0, 1, 2], [0.2, 0.3, 0.5], [0, 1, 2])
    with pytest.raises(MetricError, match="0/1"):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(MetricError, match="non-finite"):
        mae([1.0, np.nan], [1.0, 2.0])


# --------------------------------------------------------------------------- regression


def test_regression_metrics_exact_and_vs_sklearn():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.0, 5.0])
    assert mae(y, p) == pytest.approx(0.625)
    assert rmse(y, p) == pytest.approx(np.sqrt((0.25 + 0 + 1 + 1) / 4))
    assert mae_over_std(y, p) == pytest.approx(0.625 / np.std(y))
    rng = np.random.default_rng(2)
    yy, pp = rng.normal(size=300), rng.normal(size=300)
    assert mae(yy, pp) == pytest.approx(skm.mean_absolute_error(yy, pp))
    assert rmse(yy, pp) == pytest.approx(np.sqrt(skm.mean_squared_error(yy, pp)))


def test_top_decile_quartile_actual_seed000_semantics():
    pred = np.arange(20, dtype=float)  # percentile(pred, 90) = 17.1 -> rows 18, 19
    actual = np.arange(20, dtype=float) * 10
    assert top_decile_actual(actual, pred) == pytest.approx((180 + 190) / 2)
    # percentile(pred, 75) = 14.25 -> rows 15..19
    assert top_quartile_actual(actual, pred) == pytest.approx(np.mean([150, 160, 170, 180, 190]))
    # ties at the threshold are included (pred >= threshold)
    assert top_fraction_actual([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 1.0, 1.0], 0.25) == pytest.approx(
        3.0
    )
    rep = regression_report(actual, pred)
    assert rep["top_decile_actual"] > rep["top_quartile_actual"] > rep["mean_actual"]
    assert rep["target_std"] == pytest.approx(np.std(actual))
