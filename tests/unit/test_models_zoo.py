"""Model zoo: every kind x task learns a planted signal, round-trips through safe files,
honours weights, early stopping on the given eval set only, constraints, losses, param validation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score, roc_auc_score

from hydraquant.errors import HydraError
from hydraquant.models.zoo import SKLEARN_KINDS, ModelSpec, load_learner, make_learner

FEATURES = ["f_signal", "f_second", "f_noise1", "f_noise2"]
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

KINDS = ["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "logistic", "mlp"]
FAST = {
    "lightgbm": {"n_estimators": 60, "learning_rate": 0.1},
    "xgboost": {"n_estimators": 60, "max_depth": 3},
    "catboost": {"n_estimators": 60, "depth": 4},
    "random_forest": {"n_estimators": 40, "min_samples_leaf": 5},
    "extra_trees": {"n_estimators": 40, "min_samples_leaf": 5},
    "logistic": {},
    "mlp": {"hidden_layer_sizes": (16,), "max_iter": 300},
}


def _data(n: int = 700, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan  # feature warm-up style gaps
    z = 1.5 * np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 1])
    return {
        "X": X,
        "binary": np.where(z + rng.normal(size=n) > 0, "up", "down"),
        "multi": np.digitize(z + 0.5 * rng.normal(size=n), [-0.8, 0.8]).astype(np.int64),
        "regression": z + 0.4 * rng.normal(size=n),
    }


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return _data()


def _spec(kind: str, task: str = "classification", **kw) -> ModelSpec:
    params = dict(FAST[kind])
    params.update(kw.pop("params", {}))
    return ModelSpec(kind=kind, task=task, params=params, **kw)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("target", ["binary", "multi", "regression"])
def test_every_kind_learns_and_round_trips(kind: str, target: str, data, tmp_path: Path) -> None:
    X, y = data["X"], data[target]
    task = "regression" if target == "regression" else "classification"
    spec = _spec(kind, task)
    learner = make_learner(spec, FEATURES).fit(
        X[:450], y[:450], eval_set=(X[450:550], y[450:550], None)
    )
    test = slice(550, None)
    files = learner.save(tmp_path)
    assert {p.name for p in files} >= {"learner.json"} and all(p.is_file() for p in files)
    for p in files:  # safe formats only: never a pickle stream
        assert not p.read_bytes().startswith(b"\x80")
    classes = None if task == "regression" else learner.classes_.tolist()
    loaded = load_learner(spec, tmp_path, FEATURES, classes)
    if task == "regression":
        pred = learner.predict(X[test])
        assert r2_score(y[test], pred) > 0.5
        np.testing.assert_allclose(loaded.predict(X[test]), pred, atol=1e-5)
        if kind in SKLEARN_KINDS:  # the fitted learner already predicts with the ONNX graph it saves
            np.testing.assert_array_equal(loaded.predict(X[test]), pred)
        assert learner.classes_ is None and loaded.classes_ is None
        with pytest.raises(HydraError, match="regressor"):
            learner.predict_proba(X[:3])
    else:
        proba = learner.predict_proba(X[test])
        assert proba.shape == (X[test].shape[0], len(learner.classes_))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
        if target == "binary":
            assert learner.classes_.tolist() == ["down", "up"]
            auc = roc_auc_score(y[test] == "up", proba[:, 1])
        else:
            assert learner.classes_.tolist() == [0, 1, 2]
            auc = roc_auc_score(y[test], proba, multi_class="ovr")
        assert auc > 0.75, f"{kind} {target} AUC {auc:.3f}"
        np.testing.assert_allclose(loaded.predict_proba(X[test]), proba, atol=1e-5)
        if kind in SKLEARN_KINDS:
            np.testing.assert_array_equal(loaded.predict_proba(X[test]), proba)
        # exact values and dtypes of the classes survive JSON
        assert loaded.classes_.tolist() == learner.classes_.tolist()
        assert loaded.classes_.dtype == learner.classes_.dtype
        assert set(loaded.predict(X[test]).tolist()) <= set(learner.classes_.tolist())
        acc = np.mean(learner.predict(X[test]) == y[test])
        assert acc > 0.6
    imp = learner.feature_importances()
    assert imp.shape == (len(FEATURES),) and np.all(imp >= 0)
    if kind == "mlp":
        assert imp.sum() == 0.0  # documented: no cheap faithful importance for an MLP
    else:
        assert imp.sum() == pytest.approx(1.0)
        assert np.argmax(imp) == 0  # the planted feature dominates
    np.testing.assert_allclose(loaded.feature_importances(), imp)
    if kind in ("lightgbm", "xgboost", "catboost"):
        assert learner.best_iteration is not None and 1 <= learner.best_iteration <= 60
        assert loaded.best_iteration == learner.best_iteration
    else:
        assert learner.best_iteration is None


def test_tree_model_types(data) -> None:
    import catboost
    import lightgbm
    import xgboost
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

    X, y = data["X"], data["binary"]
    expected = {
        "lightgbm": lightgbm.Booster,
        "xgboost": xgboost.Booster,
        "catboost": catboost.CatBoost,
        "random_forest": RandomForestClassifier,
        "extra_trees": ExtraTreesClassifier,
    }
    for kind, cls in expected.items():
        assert isinstance(make_learner(_spec(kind), FEATURES).fit(X, y).tree_model(), cls)
    for kind in ("logistic", "mlp"):
        assert make_learner(_spec(kind), FEATURES).fit(X, y).tree_model() is None
    forest = make_learner(_spec("random_forest"), FEATURES).fit(X, y)
    prepared = forest.tree_input(X)
    assert not np.isnan(prepared).any()  # the forest only ever sees imputed rows
    # the learner predicts with its ONNX twin (float32 averaging of the trees' votes)
    np.testing.assert_allclose(forest.tree_model().predict_proba(prepared), forest.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(make_learner(_spec("lightgbm"), FEATURES).tree_input(X), X)


def test_object_string_classes_round_trip(data, tmp_path: Path) -> None:
    X = data["X"]
    y = np.array(["long", "short", "flat"], dtype=object)[data["multi"]]
    spec = _spec("lightgbm")
    learner = make_learner(spec, FEATURES).fit(X, y)
    learner.save(tmp_path)
    meta = json.loads((tmp_path / "learner.json").read_text())
    assert meta["classes"]["values"] == ["flat", "long", "short"]
    loaded = load_learner(spec, tmp_path, FEATURES, ["flat", "long", "short"])
    assert loaded.classes_.tolist() == ["flat", "long", "short"]
    assert (loaded.predict(X[:50]) == learner.predict(X[:50])).all()


def test_loaded_learner_is_predict_only_and_checked(data, tmp_path: Path) -> None:
    X, y = data["X"], data["binary"]
    spec = _spec("xgboost")
    make_learner(spec, FEATURES).fit(X, y).save(tmp_path)
    loaded = load_learner(spec, tmp_path, FEATURES, None)
    assert loaded.classes_.tolist() == ["down", "up"]
    with pytest.raises(HydraError, match="predict-only"):
        loaded.fit(X, y)
    with pytest.raises(HydraError, match="feature list"):
        load_learner(spec, tmp_path, FEATURES[::-1], None)
    with pytest.raises(HydraError, match="classes"):
        load_learner(spec, tmp_path, FEATURES, ["a", "b"])
    # a fold that saw a subset of the bundle's classes still loads; columns follow its own classes_
    subset = load_learner(spec, tmp_path, FEATURES, ["down", "flat", "up"])
    assert subset.classes_.tolist() == ["down", "up"] and subset.predict_proba(X[:4]).shape == (
        4,
        2,
    )
    with pytest.raises(HydraError, match="lightgbm"):
        load_learner(_spec("lightgbm"), tmp_path, FEATURES, None)
    with pytest.raises(HydraError, match="learner.json"):
        load_learner(spec, tmp_path / "nowhere", FEATURES, None)


def test_input_validation(data) -> None:
    X, y = data["X"], data["binary"]
    learner = make_learner(_spec("lightgbm"), FEATURES)
    with pytest.raises(HydraError, match="not fitted"):
        learner.predict_proba(X)
    with pytest.raises(HydraError, match="3 columns"):
        learner.fit(X[:, :3], y)
    with pytest.raises(HydraError, match="single class"):
        learner.fit(X, np.full(len(y), "up"))
    with pytest.raises(HydraError, match="duplicate"):
        make_learner(_spec("lightgbm"), ["a", "a"])
    with pytest.raises(HydraError, match="categorical"):
        make_learner(_spec("catboost", categorical=("nope",)), FEATURES)


def test_eval_rows_with_unseen_class_are_dropped(data, caplog) -> None:
    X, y = data["X"], data["binary"].astype(object)
    yv = y[500:].copy()
    yv[:5] = "rare"
    with caplog.at_level(logging.WARNING, logger="hydraquant.models.zoo"):
        learner = make_learner(_spec("lightgbm"), FEATURES).fit(
            X[:500], y[:500], eval_set=(X[500:], yv)
        )
    assert "dropping 5 rows" in caplog.text
    assert learner.best_iteration is not None


# ----------------------------------------------------------------------------- weights and losses


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "catboost", "random_forest", "logistic"])
def test_sample_and_class_weights_shift_probabilities(kind: str) -> None:
    rng = np.random.default_rng(0)
    X = _data(900, seed=3)["X"]
    y = (0.5 * np.nan_to_num(X[:, 0]) + rng.normal(size=len(X)) > 1.3).astype(
        np.int64
    )  # ~11% positives, noisy

    def held_out_mean(spec: ModelSpec, w: np.ndarray | None = None) -> float:
        learner = make_learner(spec, FEATURES).fit(X[:600], y[:600], sample_weight=w)
        return float(learner.predict_proba(X[600:])[:, 1].mean())

    base = held_out_mean(_spec(kind))
    balanced = held_out_mean(_spec(kind, class_weight="balanced"))
    weighted = held_out_mean(_spec(kind), np.where(y[:600] == 1, 4.0, 1.0))
    assert balanced > base + 0.04
    assert weighted > base + 0.03
    assert balanced > weighted  # balanced weight (~4.5) is larger than 4


def test_weights_combine_multiplicatively_and_cost_matrix_is_row_sum() -> None:
    d = _data(600, seed=4)
    X, y = d["X"], d["multi"]
    rng = np.random.default_rng(1)
    sw = rng.uniform(0.5, 2.0, len(y))
    cost = [[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [6.0, 2.0, 0.0]]
    counts = np.bincount(y, minlength=3)
    manual = sw * (len(y) / (3 * counts))[y] * np.array([3.0, 2.0, 8.0])[y]
    combined = make_learner(
        _spec("lightgbm", class_weight="balanced", params={"cost_matrix": cost}), FEATURES
    )
    p_combined = combined.fit(X, y, sample_weight=sw).predict_proba(X)
    p_manual = (
        make_learner(_spec("lightgbm"), FEATURES).fit(X, y, sample_weight=manual).predict_proba(X)
    )
    np.testing.assert_allclose(p_combined, p_manual, atol=1e-12)
    cost_only = make_learner(_spec("lightgbm", params={"cost_matrix": cost}), FEATURES).fit(
        X[:400], y[:400]
    )
    plain = make_learner(_spec("lightgbm"), FEATURES).fit(X[:400], y[:400])
    # the expensive true class 2 (row sum 8 vs 3 and 2) is predicted more often on held-out rows
    assert np.mean(cost_only.predict(X[400:]) == 2) > np.mean(plain.predict(X[400:]) == 2) + 0.03
    with pytest.raises(HydraError, match="3 classes"):
        make_learner(_spec("lightgbm", params={"cost_matrix": [[0, 1], [1, 0]]}), FEATURES).fit(
            X, y
        )
    with pytest.raises(HydraError, match="classification"):
        make_learner(
            _spec("lightgbm", "regression", params={"cost_matrix": [[0, 1], [1, 0]]}), FEATURES
        ).fit(X, d["regression"])
    with pytest.raises(HydraError, match="sample_weight"):
        make_learner(_spec("lightgbm"), FEATURES).fit(X, y, sample_weight=-sw)


def test_huber_objective_is_translated_per_library() -> None:
    d = _data(500, seed=5)
    X, y = d["X"], d["regression"].copy()
    y[::25] += 50.0  # outliers that a squared loss chases
    checks = {
        "lightgbm": lambda m: "objective=huber" in m.model_to_string(),
        "xgboost": lambda m: "reg:pseudohubererror" in m.save_config(),
        "catboost": lambda m: m.get_all_params()["loss_function"].startswith("Huber"),
    }
    clean = d["regression"]
    for kind, check in checks.items():
        huber = make_learner(
            _spec(kind, "regression", params={"objective": "huber", "huber_delta": 1.0}), FEATURES
        )
        huber.fit(X, y)
        assert check(huber.tree_model())
        l2 = make_learner(_spec(kind, "regression"), FEATURES).fit(X, y)
        # Huber is robust: its fit tracks the clean target better than the squared loss does
        assert np.median(np.abs(huber.predict(X) - clean)) < np.median(
            np.abs(l2.predict(X) - clean)
        )
    with pytest.raises(HydraError, match="huber"):
        make_learner(
            _spec("random_forest", "regression", params={"objective": "huber"}), FEATURES
        ).fit(X, y)


# --------------------------------------------------------------------------------- early stopping


def _simulated_best(losses: np.ndarray, rounds: int) -> int:
    best, best_i = np.inf, 0
    for i, loss in enumerate(losses, start=1):  # at most n_estimators iterations, not rows
        if loss < best:
            best, best_i = loss, i
        elif i - best_i >= rounds:
            break
    return best_i


def test_lightgbm_early_stopping_uses_only_the_given_eval_set(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(800, 4))
    y = (0.3 * X[:, 0] + rng.normal(size=800) > 0).astype(int)  # weak signal, lots of noise
    spec = _spec(
        "lightgbm", params={"n_estimators": 120, "learning_rate": 0.3}, early_stopping_rounds=15
    )
    full = make_learner(spec, FEATURES).fit(X[:500], y[:500])
    assert (
        full.best_iteration is None and full.tree_model().num_trees() == 120
    )  # no eval set: no stopping
    for lo, hi in ((500, 650), (650, 800)):
        Xv, yv = X[lo:hi], y[lo:hi]
        learner = make_learner(spec, FEATURES).fit(X[:500], y[:500], eval_set=(Xv, yv))
        p = np.clip(
            np.stack([full.tree_model().predict(Xv, num_iteration=i) for i in range(1, 121)]),
            1e-15,
            1,
        )
        losses = -np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p), axis=1)
        assert learner.best_iteration == _simulated_best(losses, 15) < 120
        assert learner.tree_model().num_trees() == learner.best_iteration
        # truncated model == full model at best_iteration
        np.testing.assert_allclose(
            learner.predict_proba(Xv)[:, 1],
            full.tree_model().predict(Xv, num_iteration=learner.best_iteration),
            atol=1e-12,
        )


@pytest.mark.parametrize(
    "kind,extra",
    [("xgboost", {}), ("xgboost", {"booster": "dart", "rate_drop": 0.1}), ("catboost", {})],
)
def test_booster_early_stopping_records_best_iteration(
    kind: str, extra: dict, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(600, 4))
    y = (0.3 * X[:, 0] + rng.normal(size=600) > 0).astype(int)
    params = {"n_estimators": 200, "learning_rate": 0.3, **extra}
    spec = _spec(kind, params=params, early_stopping_rounds=10)
    stopped = make_learner(spec, FEATURES).fit(X[:400], y[:400], eval_set=(X[400:], y[400:]))
    assert stopped.best_iteration is not None and stopped.best_iteration < 200
    assert make_learner(spec, FEATURES).fit(X[:400], y[:400]).best_iteration is None
    stopped.save(tmp_path)
    loaded = load_learner(spec, tmp_path, FEATURES, [0, 1])
    np.testing.assert_allclose(loaded.predict_proba(X), stopped.predict_proba(X), atol=1e-6)
    no_es = ModelSpec(kind=kind, params=params, early_stopping_rounds=None)
    assert (
        make_learner(no_es, FEATURES)
        .fit(X[:400], y[:400], eval_set=(X[400:], y[400:]))
        .best_iteration
        is None
    )


# ------------------------------------------------------------------------- constraints and params


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost", "catboost"])
def test_monotone_constraint_by_name(kind: str) -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(600, 4))
    y = np.sin(3 * X[:, 2]) + 0.5 * X[:, 0]  # non-monotone in f_noise1
    grid = np.zeros((60, 4))
    grid[:, 2] = np.linspace(-2.5, 2.5, 60)
    free = make_learner(_spec(kind, "regression"), FEATURES).fit(X, y).predict(grid)
    assert np.any(np.diff(free) < -1e-6)  # the check below is meaningful
    spec = _spec(kind, "regression", params={"monotone_constraints": {"f_noise1": 1}})
    constrained = make_learner(spec, FEATURES).fit(X, y).predict(grid)
    assert np.all(np.diff(constrained) >= -1e-9)
    down = _spec(kind, "regression", params={"monotone_constraints": {"f_noise1": -1}})
    assert np.all(np.diff(make_learner(down, FEATURES).fit(X, y).predict(grid)) <= 1e-9)


@pytest.mark.parametrize("kind", ["lightgbm", "xgboost"])
def test_interaction_constraints_by_name(kind: str) -> None:
    rng = np.random.default_rng(10)
    X = rng.normal(size=(500, 4))
    y = X[:, 0] * X[:, 2] + X[:, 1] * X[:, 3]
    groups = [["f_signal", "f_second"], ["f_noise1", "f_noise2"]]
    learner = make_learner(
        _spec(kind, "regression", params={"interaction_constraints": groups}), FEATURES
    )
    booster = learner.fit(X, y).tree_model()
    df = booster.trees_to_dataframe()
    if kind == "lightgbm":
        used = df.dropna(subset=["split_feature"]).groupby("tree_index")["split_feature"]
        names = {t: {FEATURES[int(f.removeprefix("Column_"))] for f in s} for t, s in used}
    else:
        used = df[df["Feature"] != "Leaf"].groupby("Tree")["Feature"]
        names = {t: {FEATURES[int(f[1:])] for f in s} for t, s in used}
    assert names and all(s <= set(groups[0]) or s <= set(groups[1]) for s in names.values())
    assert any(len(s) == 2 for s in names.values())


def test_unknown_names_and_params_raise_hydra_errors(data) -> None:
    X, y = data["X"], data["binary"]
    with pytest.raises(HydraError, match="unknown feature 'nope'"):
        make_learner(_spec("xgboost", params={"monotone_constraints": {"nope": 1}}), FEATURES).fit(
            X, y
        )
    with pytest.raises(HydraError, match="unknown feature 'zz'"):
        make_learner(
            _spec("xgboost", params={"interaction_constraints": [["f_signal", "zz"]]}), FEATURES
        ).fit(X, y)
    with pytest.raises(HydraError, match=r"\['n_estimator'\].*\n.*allowed:.*n_estimators"):
        make_learner(ModelSpec(kind="random_forest", params={"n_estimator": 5}), FEATURES).fit(X, y)
    with pytest.raises(HydraError, match="hidden_layers"):
        make_learner(ModelSpec(kind="mlp", params={"hidden_layers": 5}), FEATURES).fit(X, y)
    with pytest.raises(HydraError, match="'foo'"):
        make_learner(ModelSpec(kind="catboost", params={"foo": 1}), FEATURES).fit(X, y)
    with pytest.raises(HydraError, match="max_depth"):
        make_learner(ModelSpec(kind="lightgbm", params={"max_depth": "deep"}), FEATURES).fit(X, y)
    with pytest.raises(HydraError, match="max_depth"):
        make_learner(ModelSpec(kind="xgboost", params={"max_depth": "deep"}), FEATURES).fit(X, y)
    with pytest.raises(HydraError, match="monotone"):
        make_learner(
            _spec("random_forest", params={"monotone_constraints": {"f_signal": 1}}), FEATURES
        ).fit(X, y)
    with pytest.raises(Exception, match="extra"):
        ModelSpec(kind="lightgbm", bogus=1)


def test_catboost_categorical_by_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(500, 4))
    X[:, 1] = rng.integers(0, 5, 500)
    X[::13, 1] = np.nan
    y = np.isin(X[:, 1], [1, 3]).astype(int)
    spec = _spec("catboost", categorical=("f_second",))
    learner = make_learner(spec, FEATURES).fit(X[:350], y[:350])
    assert np.mean(learner.predict(X[350:]) == y[350:]) > 0.95
    assert learner.tree_model().get_cat_feature_indices() == [1]
    learner.save(tmp_path)
    loaded = load_learner(spec, tmp_path, FEATURES, [0, 1])
    np.testing.assert_allclose(loaded.predict_proba(X), learner.predict_proba(X), atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
def test_seeded_and_deterministic(kind: str, data) -> None:
    X, y = data["X"][:300], data["binary"][:300]
    a = make_learner(_spec(kind, seed=5), FEATURES).fit(X, y).predict_proba(X)
    b = make_learner(_spec(kind, seed=5), FEATURES).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
