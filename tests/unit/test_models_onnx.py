"""ONNX export: parity with fitted and reloaded learners, NaN routing, shapes, clear failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from hydraquant.errors import HydraError
from hydraquant.models.onnx import OnnxModel, export_onnx, onnx_parity
from hydraquant.models.zoo import ModelSpec, load_learner, make_learner

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FEATURES = ["x0", "x1", "x2", "x3", "x4"]
PARAMS = {
    "lightgbm": {"n_estimators": 40},
    "xgboost": {"n_estimators": 40, "max_depth": 4},
    "catboost": {"n_estimators": 40, "depth": 4},
    "random_forest": {"n_estimators": 25, "min_samples_leaf": 3},
    "extra_trees": {"n_estimators": 25, "min_samples_leaf": 3},
    "logistic": {},
    "mlp": {"hidden_layer_sizes": (8,), "max_iter": 200},
}


def _problem(n_classes: int | None, n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values must route the same way in ONNX
    X[:10] = np.nan  # and all-missing rows
    z = np.nan_to_num(X[:, 0]) - 0.7 * np.nan_to_num(X[:, 1]) + 0.3 * rng.normal(size=n)
    if n_classes is None:
        return X, z
    return X, np.digitize(z, np.quantile(z, np.linspace(0, 1, n_classes + 1)[1:-1])).astype(
        np.int64
    )


@pytest.mark.parametrize(
    "kind", ["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees"]
)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_tree_models_onnx_parity(kind: str, n_classes: int, tmp_path: Path) -> None:
    X, y = _problem(n_classes)
    spec = ModelSpec(kind=kind, params=PARAMS[kind])
    learner = make_learner(spec, FEATURES).fit(X[:350], y[:350], eval_set=(X[350:420], y[350:420]))
    path = export_onnx(learner, tmp_path / "model.onnx")
    onnx.checker.check_model(onnx.load(str(path)))
    model = OnnxModel(path)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert onnx_parity(learner, model, X) <= 1e-5
    assert onnx_parity(learner, model, X[:10]) <= 1e-5  # all-NaN rows
    # a reloaded learner exports an equivalent graph
    learner.save(tmp_path / "saved")
    loaded = load_learner(spec, tmp_path / "saved", FEATURES, learner.classes_.tolist())
    reexported = OnnxModel(export_onnx(loaded, tmp_path / "reloaded.onnx"))
    assert onnx_parity(loaded, reexported, X) <= 1e-5
    assert onnx_parity(learner, reexported, X) <= 1e-5


@pytest.mark.parametrize(
    "kind", ["lightgbm", "xgboost", "catboost", "random_forest", "logistic", "mlp"]
)
def test_regression_onnx_parity(kind: str, tmp_path: Path) -> None:
    X, y = _problem(None)
    learner = make_learner(
        ModelSpec(kind=kind, task="regression", params=PARAMS[kind]), FEATURES
    ).fit(X, y)
    model = OnnxModel(export_onnx(learner, tmp_path / "reg.onnx"))
    pred = model.predict(X)
    assert pred.shape == (len(X),)
    assert onnx_parity(learner, model, X) <= 1e-5


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_linear_and_mlp_classifier_parity(kind: str, tmp_path: Path) -> None:
    X, y = _problem(3)
    learner = make_learner(ModelSpec(kind=kind, params=PARAMS[kind]), FEATURES).fit(X, y)
    model = OnnxModel(export_onnx(learner, tmp_path / "m.onnx"))
    assert onnx_parity(learner, model, X) <= 1e-5
    np.testing.assert_array_equal(
        model.predict(X[20:]), np.argmax(learner.predict_proba(X[20:]), axis=1)
    )


def test_sklearn_export_from_loaded_learner_is_the_stored_artifact(tmp_path: Path) -> None:
    X, y = _problem(2)
    spec = ModelSpec(kind="random_forest", params=PARAMS["random_forest"])
    make_learner(spec, FEATURES).fit(X, y).save(tmp_path / "saved")
    loaded = load_learner(spec, tmp_path / "saved", FEATURES, [0, 1])
    out = export_onnx(loaded, tmp_path / "copy.onnx")
    assert out.read_bytes() == (tmp_path / "saved" / "model.onnx").read_bytes()


def test_binary_onnx_outputs_two_columns_without_zipmap(tmp_path: Path) -> None:
    X, y = _problem(2)
    learner = make_learner(ModelSpec(kind="catboost", params=PARAMS["catboost"]), FEATURES).fit(
        X, y
    )
    path = export_onnx(learner, tmp_path / "cb.onnx")
    assert all(node.op_type != "ZipMap" for node in onnx.load(str(path)).graph.node)
    proba = OnnxModel(path).predict_proba(X)
    assert proba.shape == (len(X), 2) and np.all((proba >= 0) & (proba <= 1))


def test_export_failures_are_clear(tmp_path: Path) -> None:
    X, y = _problem(2)
    with pytest.raises(HydraError, match="not fitted"):
        export_onnx(make_learner(ModelSpec(kind="lightgbm"), FEATURES), tmp_path / "a.onnx")
    dart = make_learner(
        ModelSpec(kind="xgboost", params={"n_estimators": 10, "booster": "dart"}), FEATURES
    )
    with pytest.raises(HydraError, match="DART"):
        export_onnx(dart.fit(X, y), tmp_path / "b.onnx")
    cat = make_learner(
        ModelSpec(kind="catboost", params={"n_estimators": 10}, categorical=("x4",)), FEATURES
    )
    Xc = X.copy()
    Xc[:, 4] = np.arange(len(X)) % 3
    with pytest.raises(HydraError, match="categorical"):
        export_onnx(cat.fit(Xc, y), tmp_path / "c.onnx")
    with pytest.raises(HydraError, match="does not exist"):
        OnnxModel(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(HydraError, match="cannot load"):
        OnnxModel(tmp_path / "junk.onnx")
    learner = make_learner(ModelSpec(kind="lightgbm", params={"n_estimators": 5}), FEATURES).fit(
        X, y
    )
    model = OnnxModel(export_onnx(learner, tmp_path / "ok.onnx"))
    with pytest.raises(HydraError, match="shape"):
        model.predict_proba(X[:, :3])
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files
