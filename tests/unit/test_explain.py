"""Explainability: SHAP rankings, per-prediction drivers, fold importance (SPEC M8)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hydraquant.models.explain import (
    ExplainError,
    fold_importance,
    global_importance,
    shap_values,
    top_k_contributions,
)
from hydraquant.models.trainer import CVResult, cross_validate
from hydraquant.models.zoo import ModelSpec, make_learner
from hydraquant.validation.splits import PurgedWalkForward

FEATURES = ["driver", "noise_a", "noise_b", "noise_c"]


def _data(n: int = 800, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[rng.random(size=X.shape) < 0.03] = np.nan
    X[:, 0] = rng.normal(size=n)  # the driver itself is always observed
    return X


def _fit(kind: str, X: np.ndarray, y: np.ndarray, **params):
    spec = ModelSpec(kind=kind, params=params, early_stopping_rounds=None, seed=1)
    return make_learner(spec, FEATURES).fit(X, y)


# --------------------------------------------------------------------------- exact, hand-built


def test_global_importance_exact():
    values = np.array([[1.0, -2.0, 0.0], [-3.0, 2.0, 0.5]])
    table = global_importance(values, ["a", "b", "c"])
    assert table["feature"].to_list() == ["a", "b", "c"]  # tie a/b (2.0) keeps feature order
    np.testing.assert_allclose(table["mean_abs_shap"].to_numpy(), [2.0, 2.0, 0.25])

    multi = np.zeros((2, 3, 2))
    multi[:, 2, 0] = [1.0, 1.0]
    multi[:, 1, 1] = [0.5, -0.5]
    multi[:, 1, 0] = [0.25, -0.25]
    table = global_importance(multi, ["a", "b", "c"])
    assert table["feature"].to_list() == ["c", "b", "a"]
    np.testing.assert_allclose(table["mean_abs_shap"].to_numpy(), [1.0, 0.75, 0.0])


def test_top_k_exact_signed_and_ordered():
    values = np.array([[0.1, -0.9, 0.5, 0.0], [2.0, 0.0, -2.0, 1.0]])
    out = top_k_contributions(values, ["a", "b", "c", "d"], k=2)
    assert out == [[("b", -0.9), ("c", 0.5)], [("a", 2.0), ("c", -2.0)]]
    assert top_k_contributions(values, ["a", "b", "c", "d"], k=10)[0][-1] == ("d", 0.0)
    assert top_k_contributions(np.zeros((0, 4)), ["a", "b", "c", "d"]) == []


def test_shape_and_class_errors():
    with pytest.raises(ExplainError, match="expected"):
        global_importance(np.zeros((3, 2)), ["a", "b", "c"])
    with pytest.raises(ExplainError, match="class_index"):
        top_k_contributions(np.zeros((3, 2, 3)), ["a", "b"])


def test_fold_importance_exact():
    cv = CVResult(
        oof=np.zeros(0),
        oof_mask=np.zeros(0, dtype=bool),
        folds=[],
        classes=None,
        feature_names=["a", "b"],
        importances=np.array([[0.2, 0.8], [0.4, 0.6]]),
    )
    table = fold_importance(cv)
    assert table["feature"].to_list() == ["b", "a"]
    np.testing.assert_allclose(table["mean"].to_numpy(), [0.7, 0.3])
    np.testing.assert_allclose(table["std"].to_numpy(), [0.1, 0.1])


# --------------------------------------------------------------------------- with real learners


def test_binary_driver_ranks_first_and_signs_match():
    X = _data()
    y = (X[:, 0] > 0).astype(int)
    learner = _fit("lightgbm", X, y, n_estimators=40, num_leaves=7)
    values = shap_values(learner, X, max_rows=None)
    assert values.shape == X.shape
    assert global_importance(values, FEATURES)["feature"][0] == "driver"

    top = top_k_contributions(values, FEATURES, k=3)
    assert all(len(row) == 3 for row in top)
    strong = np.flatnonzero(np.abs(X[:, 0]) > 0.5)
    for i in strong:
        name, value = top[i][0]
        assert name == "driver"
        assert np.sign(value) == np.sign(X[i, 0])  # higher driver -> more class 1


def test_max_rows_subsamples_deterministically():
    X = _data(n=600)
    y = (X[:, 0] > 0).astype(int)
    learner = _fit("lightgbm", X, y, n_estimators=10)
    a = shap_values(learner, X, max_rows=100, seed=5)
    b = shap_values(learner, X, max_rows=100, seed=5)
    assert a.shape == (100, len(FEATURES))
    np.testing.assert_array_equal(a, b)


def test_multiclass_values_per_class():
    X = _data()
    y = np.digitize(X[:, 0], [-0.5, 0.5])
    learner = _fit("lightgbm", X, y, n_estimators=40, num_leaves=7)
    values = shap_values(learner, X, max_rows=None)
    assert values.shape == (X.shape[0], len(FEATURES), 3)
    assert global_importance(values, FEATURES)["feature"][0] == "driver"
    top_up = top_k_contributions(values, FEATURES, k=2, class_index=2)
    high = np.flatnonzero(X[:, 0] > 1.0)
    low = np.flatnonzero(X[:, 0] < -1.0)
    assert all(top_up[i][0][0] == "driver" and top_up[i][0][1] > 0 for i in high)
    assert all(top_up[i][0][0] == "driver" and top_up[i][0][1] < 0 for i in low)


def test_random_forest_behind_imputer():
    X = _data(n=400)
    X[::5, 0] = np.nan  # the driver has gaps too: SHAP must see imputed rows like predict does
    y = (np.nan_to_num(X[:, 0]) > 0).astype(int)
    learner = _fit("random_forest", X, y, n_estimators=20, max_depth=4)
    values = shap_values(learner, X, max_rows=None)
    assert values.shape == X.shape
    assert global_importance(values, FEATURES)["feature"][0] == "driver"
    # exact additivity for forests: base + sum(SHAP) == P(class 1), imputed rows included
    proba = learner.predict_proba(X)[:, 1]
    base = proba.mean() - values.sum(axis=1).mean()
    np.testing.assert_allclose(base + values.sum(axis=1), proba, atol=1e-6)


def test_non_tree_learner_falls_back_to_importances(caplog):
    X = np.nan_to_num(_data(n=300))
    y = (X[:, 0] > 0).astype(int)
    learner = _fit("logistic", X, y)
    with caplog.at_level(logging.WARNING, logger="hydraquant.models.explain"):
        values = shap_values(learner, X[:50])
    assert "not SHAP" in caplog.text
    assert values.shape == (50, len(FEATURES))
    np.testing.assert_allclose(values[7], learner.feature_importances())
    assert global_importance(values, FEATURES)["feature"][0] == "driver"


def test_fold_importance_from_cross_validation():
    X = _data(n=900)
    y = (X[:, 0] + 0.3 * np.random.default_rng(4).normal(size=900) > 0).astype(int)
    t = np.arange(900)
    spec = ModelSpec(kind="lightgbm", params={"n_estimators": 30}, early_stopping_rounds=None)
    cv = cross_validate(
        X,
        y,
        spec=spec,
        splitter=PurgedWalkForward(n_splits=3, t=t, t_end=t + 2),
        feature_names=FEATURES,
    )
    table = fold_importance(cv)
    assert table["feature"][0] == "driver"
    assert table["mean"][0] > 0.5
    assert (table["std"] >= 0).all()
    np.testing.assert_allclose(table["mean"].sum(), 1.0)
