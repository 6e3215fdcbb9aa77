"""Cross-validation trainer: leak-free folds, early-stopping slice, OOF coverage, checkpoints."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hydraquant.models.trainer import (
    CVResult,
    TrainerError,
    align_proba,
    carve_validation,
    cross_validate,
    oof_summary,
)
from hydraquant.models.zoo import ModelSpec
from hydraquant.validation.metrics import roc_auc
from hydraquant.validation.splits import PurgedWalkForward

HORIZON = 5
FEATURES = ["f0", "f1", "f2", "f3"]


def _problem(n: int = 1200, signal: float = 1.0, seed: int = 0):
    """Rows in time order; the label of row i is known at t_end = i + HORIZON."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[rng.random(size=X.shape) < 0.02] = np.nan  # warm-up style gaps: learners must cope
    y = (signal * np.nan_to_num(X[:, 0]) + rng.normal(scale=0.7, size=n) > 0).astype(int)
    t = np.arange(n, dtype=np.int64)
    return X, y, t, t + HORIZON


def _spec(**kw) -> ModelSpec:
    params = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 20}
    return ModelSpec(kind="lightgbm", params=params, early_stopping_rounds=10, seed=7, **kw)


def _run(X, y, t, t_end, spec=None, **kw) -> CVResult:
    splitter = PurgedWalkForward(n_splits=4, t=t, t_end=t_end)
    return cross_validate(
        X,
        y,
        spec=spec or _spec(),
        splitter=splitter,
        feature_names=FEATURES,
        times=(t, t_end),
        **kw,
    )


@pytest.fixture(scope="module")
def planted():
    X, y, t, t_end = _problem()
    return X, y, t, t_end, _run(X, y, t, t_end)


# --------------------------------------------------------------------------- pure helpers


def test_carve_validation_exact_slice_and_purge():
    train = np.arange(10)
    fit, val = carve_validation(train, 0.2)
    assert val.tolist() == [8, 9] and fit.tolist() == list(range(8))
    t = np.arange(10)
    fit, val = carve_validation(train, 0.2, (t, t + 2))
    # rows 6 and 7 have labels ending at 8 and 9: they overlap the validation slice
    assert val.tolist() == [8, 9] and fit.tolist() == [0, 1, 2, 3, 4, 5]
    fit, val = carve_validation(train, 0.0)
    assert val.size == 0 and fit.tolist() == list(range(10))


def test_carve_validation_fails_when_purge_eats_everything():
    t = np.arange(10)
    with pytest.raises(TrainerError, match="no training rows left"):
        carve_validation(np.arange(10), 0.5, (t, t + 100))


def test_full_proba_places_missing_class_as_zero():
    proba = np.array([[0.25, 0.75], [0.5, 0.5]])
    out = align_proba(proba, np.array([-1, 1]), [-1, 0, 1])
    np.testing.assert_array_equal(out, [[0.25, 0.0, 0.75], [0.5, 0.0, 0.5]])


# --------------------------------------------------------------------------- leak-freedom


def test_oof_covers_exactly_the_union_of_test_folds(planted):
    X, _, _, _, cv = planted
    union = np.unique(np.concatenate([f.test_idx for f in cv.folds]))
    assert np.array_equal(np.flatnonzero(cv.oof_mask), union)
    assert np.isnan(cv.oof[~cv.oof_mask]).all()
    assert np.isfinite(cv.oof[cv.oof_mask]).all()
    np.testing.assert_allclose(cv.oof[cv.oof_mask].sum(axis=1), 1.0, atol=1e-9)
    assert cv.oof.shape == (X.shape[0], 2) and cv.classes == [0, 1]


def test_no_fold_model_saw_its_test_rows(planted):
    _, _, t, t_end, cv = planted
    for f in cv.folds:
        seen = np.concatenate([f.fit_idx, f.val_idx])
        assert np.intersect1d(seen, f.test_idx).size == 0
        assert np.isin(seen, f.train_idx).all()
        # and no seen label reaches into the test window (the splitter's purge)
        assert (t_end[seen] < t[f.test_idx].min()).all()


def test_validation_slice_is_the_tail_of_train_before_test(planted):
    _, _, t, t_end, cv = planted
    for f in cv.folds:
        train = np.sort(f.train_idx)
        n_val = round(train.size * 0.15)
        assert f.val_idx.size == n_val > 0
        assert np.array_equal(f.val_idx, train[-n_val:])
        assert f.val_idx.max() < f.test_idx.min()
        # fit rows are purged against the validation slice
        assert (t_end[f.fit_idx] < t[f.val_idx].min()).all()
        assert f.fit_idx.max() < f.val_idx.min()
        assert f.best_iteration is not None and 1 <= f.best_iteration <= 60


def test_non_early_stopping_learner_fits_on_whole_train():
    X, y, t, t_end = _problem(n=500)
    spec = ModelSpec(kind="lightgbm", params={"n_estimators": 20}, early_stopping_rounds=None)
    cv = _run(X, y, t, t_end, spec=spec)
    for f in cv.folds:
        assert f.val_idx.size == 0
        assert np.array_equal(f.fit_idx, np.sort(f.train_idx))


# --------------------------------------------------------------------------- quality / determinism


def test_planted_signal_is_found(planted):
    _, y, _, _, cv = planted
    m = cv.oof_mask
    assert roc_auc(y[m] == 1, cv.oof[m, 1]) > 0.7
    summary = oof_summary(cv, y)
    assert summary["roc_auc"] > 0.7
    assert summary["coverage"] == pytest.approx(m.mean())
    assert summary["n"] == int(m.sum()) and summary["n_folds"] == 4
    json.dumps(summary, allow_nan=False)  # strict JSON


def test_pure_noise_is_chance():
    X, y, t, t_end = _problem(n=2000, signal=0.0, seed=3)
    cv = _run(X, y, t, t_end)
    m = cv.oof_mask
    assert abs(roc_auc(y[m] == 1, cv.oof[m, 1]) - 0.5) < 0.05


def test_deterministic(planted):
    X, y, t, t_end, cv = planted
    again = _run(X, y, t, t_end)
    assert np.array_equal(cv.oof, again.oof, equal_nan=True)
    assert [f.best_iteration for f in cv.folds] == [f.best_iteration for f in again.folds]


def test_fold_table_and_importances(planted):
    _, _, _, _, cv = planted
    table = cv.fold_table()
    assert table["fold"].to_list() == [0, 1, 2, 3]
    assert (table["n_test"] == 240).all()
    assert (table["n_fit"] + table["n_val"] <= table["n_train"]).all()
    assert {"roc_auc", "log_loss", "accuracy", "best_iteration"} <= set(table.columns)
    assert cv.importances.shape == (4, len(FEATURES))
    np.testing.assert_allclose(cv.importances.sum(axis=1), 1.0, atol=1e-9)
    assert (cv.importances.argmax(axis=1) == 0).all()


# --------------------------------------------------------------------------- classes / tasks


def test_class_list_fixed_from_full_y_missing_class_is_zero():
    rng = np.random.default_rng(1)
    n = 600
    X = rng.normal(size=(n, len(FEATURES)))
    y = np.where(X[:, 0] > 0, "up", "down").astype(object)
    y[380:] = np.where(X[380:, 1] > 0.5, "crash", y[380:])  # third class appears late
    t = np.arange(n)
    cv = _run(X, y.astype(str), t, t + 1)
    assert cv.classes == ["crash", "down", "up"]
    first = cv.folds[0]
    assert "crash" not in set(y[first.fit_idx])
    np.testing.assert_array_equal(cv.oof[first.test_idx, 0], 0.0)
    np.testing.assert_allclose(cv.oof[cv.oof_mask].sum(axis=1), 1.0, atol=1e-9)
    assert first.metrics["classes"] == ["crash", "down", "up"]
    last = cv.folds[-1]
    assert "crash" in set(y[last.fit_idx]) and cv.oof[last.test_idx, 0].max() > 0


def test_regression_oof_is_one_dimensional():
    X, _, t, t_end = _problem(n=600)
    target = 2.0 * np.nan_to_num(X[:, 0]) + np.random.default_rng(2).normal(scale=0.3, size=600)
    spec = ModelSpec(kind="lightgbm", task="regression", params={"n_estimators": 40}, seed=1)
    cv = _run(X, target, t, t_end, spec=spec)
    assert cv.classes is None and cv.oof.ndim == 1
    summary = oof_summary(cv, target)
    assert summary["mae_over_std"] < 0.6
    assert {"mae", "rmse"} <= set(cv.folds[0].metrics)


def test_sample_weight_changes_the_fit():
    X, y, t, t_end = _problem(n=600)
    w = np.where(y == 1, 5.0, 1.0)
    plain = _run(X, y, t, t_end)
    weighted = _run(X, y, t, t_end, sample_weight=w)
    m = plain.oof_mask
    assert weighted.oof[m, 1].mean() > plain.oof[m, 1].mean() + 0.05


def test_input_errors():
    X, y, t, t_end = _problem(n=300)
    splitter = PurgedWalkForward(n_splits=3, t=t, t_end=t_end)
    with pytest.raises(TrainerError, match="feature names"):
        cross_validate(X, y, spec=_spec(), splitter=splitter, feature_names=["a"])
    with pytest.raises(TrainerError, match="sample_weight"):
        cross_validate(
            X,
            y,
            spec=_spec(),
            splitter=splitter,
            feature_names=FEATURES,
            sample_weight=np.ones(5),
        )
    with pytest.raises(TrainerError, match="at least 2 classes"):
        cross_validate(X, np.zeros(300), spec=_spec(), splitter=splitter, feature_names=FEATURES)


# --------------------------------------------------------------------------- progress / checkpoints


def test_progress_callback_and_rich_bar():
    X, y, t, t_end = _problem(n=400)
    calls = []
    _run(X, y, t, t_end, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    cv = _run(X, y, t, t_end, progress=True)
    assert len(cv.folds) == 4


def test_checkpoints_written_and_resumed(tmp_path, planted):
    X, y, t, t_end, clean = planted
    first = _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="cfg-a")
    assert not any(f.resumed for f in first.folds)
    meta = json.loads((tmp_path / "fold_2" / "fold.json").read_text())
    assert meta["identity"]["fingerprint"] == "cfg-a"
    assert len(meta["train_sha256"]) == 64 and len(meta["test_sha256"]) == 64
    assert meta["best_iteration"] == first.folds[2].best_iteration
    assert (tmp_path / "fold_2" / "oof.npy").is_file()
    assert not list(tmp_path.glob(".fold_*"))  # no temp dirs left behind

    again = _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="cfg-a")
    assert all(f.resumed for f in again.folds)
    assert np.array_equal(again.oof, clean.oof, equal_nan=True)
    np.testing.assert_array_equal(again.importances, first.importances)
    assert again.folds[1].metrics == first.folds[1].metrics
    # resumed learners predict like the trained ones
    f = again.folds[3]
    np.testing.assert_allclose(
        f.learner.predict_proba(X[f.test_idx]), clean.oof[f.test_idx], atol=1e-5
    )


def test_changed_fingerprint_or_tampering_retrains(tmp_path, caplog):
    X, y, t, t_end = _problem(n=500)
    _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="a")
    with caplog.at_level(logging.WARNING, logger="hydraquant.models.trainer"):
        other = _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="b")
    assert not any(f.resumed for f in other.folds)
    assert "stale checkpoint" in caplog.text

    # tamper with one fold's oof: only that fold is retrained
    oof_file = tmp_path / "fold_1" / "oof.npy"
    np.save(oof_file, np.zeros_like(np.load(oof_file)), allow_pickle=False)
    (tmp_path / ".fold_3.tmpjunk").mkdir()  # leftover of a killed write
    again = _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="b")
    assert [f.resumed for f in again.folds] == [True, False, True, True]
    assert np.array_equal(again.oof, other.oof, equal_nan=True)
    assert not (tmp_path / ".fold_3.tmpjunk").exists()


def test_changed_data_or_indices_retrains(tmp_path):
    X, y, t, t_end = _problem(n=500)
    _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="a")
    X2 = X.copy()
    X2[0, 1] = 123.0
    changed = _run(X2, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="a")
    assert not any(f.resumed for f in changed.folds)
    splitter = PurgedWalkForward(n_splits=4, test_size=80, t=t, t_end=t_end)
    moved = cross_validate(
        X2,
        y,
        spec=_spec(),
        splitter=splitter,
        feature_names=FEATURES,
        times=(t, t_end),
        checkpoint_dir=tmp_path,
        fingerprint="a",
    )
    assert not any(f.resumed for f in moved.folds)


def test_fewer_folds_drop_surplus_checkpoints(tmp_path):
    X, y, t, t_end = _problem(n=500)
    _run(X, y, t, t_end, checkpoint_dir=tmp_path, fingerprint="a")
    assert (tmp_path / "fold_3").is_dir()
    cv = cross_validate(
        X,
        y,
        spec=_spec(),
        splitter=PurgedWalkForward(n_splits=2, t=t, t_end=t_end),
        feature_names=FEATURES,
        times=(t, t_end),
        checkpoint_dir=tmp_path,
        fingerprint="a",
    )
    assert len(cv.folds) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fold_0", "fold_1"]
