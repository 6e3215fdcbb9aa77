"""Per-prediction explanations: `Predictor.explain`, `hydraquant predict --explain K` (SPEC M8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.cli.main import main
from hydraquant.models.explain import (
    ExplainError,
    contribution_frame,
    explained_class_index,
    member_weights,
    router_groups,
)
from hydraquant.models.predictor import Predictor
from hydraquant.models.registry import ModelRegistry
from hydraquant.models.zoo import ModelSpec, make_learner

FEATURES = ["driver", "noise_a", "noise_b"]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(X: np.ndarray, symbol: str = "BTCUSDT") -> pl.DataFrame:
    ts = [T0 + timedelta(minutes=i) for i in range(X.shape[0])]
    return pl.DataFrame({"ts": ts, "symbol": [symbol] * len(ts)}).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        *(pl.Series(name, X[:, j]) for j, name in enumerate(FEATURES)),
    )


def _data(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[:, 1:][rng.random(size=(n, len(FEATURES) - 1)) < 0.05] = np.nan  # boosters see NaN as missing
    return X


def _save(tmp, name: str, members: dict[str, tuple[ModelSpec, list]], classes, *, task="classification",
          ensemble=None, calibration=None):
    """Stage fold learners, ensemble/calibration JSON and a manifest; store the bundle; load it back."""
    stage = tmp / f"stage_{name}"
    entries = []
    for member, (spec, learners) in members.items():
        folds = []
        for k, learner in enumerate(learners):
            learner.save(stage / "members" / member / f"fold_{k}")
            folds.append({"fold": k, "dir": f"members/{member}/fold_{k}", "metrics": {}, "best_iteration": None})
        entries.append({"name": member, "spec": spec.model_dump(mode="json"), "folds": folds})
    if ensemble is not None:
        (stage / "ensemble.json").write_text(json.dumps(ensemble))
    if calibration is not None:
        (stage / "calibration.json").write_text(json.dumps(calibration))
    manifest = {
        "task": task, "classes": classes, "features": FEATURES, "interval": "1m", "feature_sets": FEATURES,
        "label": {"spec": "synthetic", "target": "label"}, "members": entries,
        "ensemble": {"method": (ensemble or {}).get("method", "mean")},
        "calibration": None if calibration is None else {"method": calibration["method"]},
        "metrics": {}, "data": {"symbols": ["BTCUSDT"], "rows": 0},
    }
    registry = ModelRegistry(tmp / "models")
    registry.save_bundle("syn", name, stage, manifest)
    return Predictor.load(registry, f"syn/{name}")


def _fit_folds(kind: str, X, y, params, task="classification", n_folds=2):
    spec = ModelSpec(kind=kind, task=task, params=params, early_stopping_rounds=None, seed=7)
    parts = np.array_split(np.arange(len(y)), n_folds)
    return spec, [make_learner(spec, FEATURES).fit(X[rows], y[rows]) for rows in parts]


def _raw_margin(learner, X: np.ndarray) -> np.ndarray:
    """The member's own raw score (log-odds / logits), independent of SHAP."""
    if learner.spec.kind == "logistic":  # scikit-learn's own float64 log-odds of classes_[1]
        return np.asarray(learner._pipeline.decision_function(X), dtype=np.float64)
    model = learner.tree_model()
    if learner.spec.kind == "lightgbm":
        return np.asarray(model.predict(X, raw_score=True), dtype=np.float64)
    import xgboost as xgb

    return np.asarray(model.predict(xgb.DMatrix(X, missing=np.nan), output_margin=True), dtype=np.float64)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain_binary")
    X = _data(1200, 1)
    y = np.where(X[:, 0] + 0.2 * np.random.default_rng(2).normal(size=len(X)) > 0, "up", "down")
    spec, learners = _fit_folds("lightgbm", X, y, {"n_estimators": 40, "num_leaves": 7, "verbose": -1})
    return _save(tmp, "bin", {"lgbm": (spec, learners)}, ["down", "up"]), learners


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    """Two members (LightGBM 2 folds, XGBoost 3 folds), weighted 3:1, isotonic calibration."""
    from hydraquant.models.calibration import make_calibrator
    from hydraquant.models.trainer import align_proba

    tmp = tmp_path_factory.mktemp("explain_multi")
    X = _data(1500, 3)
    y = np.select([X[:, 0] > 0.4, X[:, 0] < -0.4], ["up", "down"], "flat")
    classes = ["down", "flat", "up"]
    lgb = _fit_folds("lightgbm", X, y, {"n_estimators": 30, "num_leaves": 7, "verbose": -1})
    xgb = _fit_folds("xgboost", X, y, {"n_estimators": 30, "max_depth": 3}, n_folds=3)
    Xc = _data(600, 4)
    yc = np.select([Xc[:, 0] > 0.4, Xc[:, 0] < -0.4], [2, 0], 1)
    raw = 0.75 * np.mean([align_proba(lr.predict_proba(Xc), lr.classes_, classes) for lr in lgb[1]], axis=0) \
        + 0.25 * np.mean([align_proba(lr.predict_proba(Xc), lr.classes_, classes) for lr in xgb[1]], axis=0)
    cal = make_calibrator("isotonic").fit(raw, yc).to_json()
    ens = {"method": "weighted", "format": 1, "weights": {"lgbm": 3.0, "xgb": 1.0}}
    predictor = _save(tmp, "multi", {"lgbm": lgb, "xgb": xgb}, classes, ensemble=ens, calibration=cal)
    return predictor, lgb[1], xgb[1]


# --------------------------------------------------------------------------- exact, hand-built


def test_contribution_frame_exact_with_unexplained_rows():
    values = np.array([[0.1, -0.9, 0.5], [2.0, 0.0, -2.0], [np.nan, np.nan, np.nan]])
    out = contribution_frame(values, np.array([0.3, -0.1, np.nan]), ["a", "b", "c"], 2,
                             pl.Series(["up", "down", None]))
    assert out.columns == ["explained_class", "feature_1", "contribution_1", "feature_2", "contribution_2",
                           "base_value"]
    assert out.row(0) == ("up", "b", -0.9, "c", 0.5, 0.3)
    assert out.row(1) == ("down", "a", 2.0, "c", -2.0, -0.1)  # |tie| keeps feature order
    assert out.row(2) == (None, None, None, None, None, None)  # no invented drivers
    assert contribution_frame(values[:1], np.zeros(1), ["a", "b", "c"], 9).width == 7  # k clamps to F


def test_member_weights_follow_the_ensemble():
    np.testing.assert_allclose(member_weights(["a", "b"], 2), [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(member_weights(["a", "b"], 1, method="weighted", weights={"a": 3, "b": 1}),
                               [[0.75, 0.25]])
    np.testing.assert_allclose(member_weights(["a", "b"], 1, method="stacking"), [[0.5, 0.5]])
    a = np.array([[0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    b = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    routed = np.array([[0.2, 0.8], [0.6, 0.4], [np.nan, np.nan]])  # row 1: both identical; row 2: unrouted
    w = member_weights(["a", "b"], 3, method="regime_router", per_member={"a": a, "b": b}, combined=routed)
    np.testing.assert_allclose(w[:2], [[0.0, 1.0], [0.5, 0.5]])
    assert np.isnan(w[2]).all()
    c = np.array([[0.4, 0.6], [0.1, 0.9], [0.5, 0.5]])
    routed = np.array([[0.55, 0.45], [0.1, 0.9], [np.nan, np.nan]])  # row 0: specialist mean(a, b); row 1: c
    groups = router_groups([[0, ["a", "b"]], [1, "c"]])
    assert groups == [["a", "b"], ["c"]] and router_groups({0: "a"}, "c") == [["a"], ["c"]]
    w = member_weights(["a", "b", "c"], 3, method="regime_router", per_member={"a": a, "b": b, "c": c},
                       combined=routed, groups=groups)
    np.testing.assert_allclose(w[:2], [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert np.isnan(w[2]).all()
    with pytest.raises(ExplainError, match="weighted ensemble lacks usable weights"):
        member_weights(["a", "b"], 1, method="weighted", weights={"a": 1.0})
    with pytest.raises(ExplainError, match="cannot explain ensemble method 'oracle'"):
        member_weights(["a"], 1, method="oracle")


def test_explained_class_index_skips_nan_rows():
    p = np.array([[0.2, 0.8], [0.7, 0.3], [np.nan, np.nan]])
    assert explained_class_index(p).tolist() == [1, 0, -1]


# --------------------------------------------------------------------------- bundles


def test_binary_driver_is_top1_and_shap_is_additive(binary):
    predictor, learners = binary
    X = _data(400, 11)
    frame = _frame(X)
    top1 = predictor.explain(frame, k=1)
    assert top1.columns == ["ts", "symbol", "explained_class", "feature_1", "contribution_1", "base_value"]
    assert top1.select("ts", "symbol").equals(frame.select("ts", "symbol"))
    assert (top1["feature_1"] == "driver").mean() > 0.9

    proba = predictor.predict_proba(frame)
    expected = np.where(proba["p_up"].to_numpy() >= proba["p_down"].to_numpy(), "up", "down")
    assert top1["explained_class"].to_list() == expected.tolist()
    # the driver pushes toward the explained class: up rows have driver > 0 (mostly)
    up = top1["explained_class"].to_numpy() == "up"
    assert np.mean((X[:, 0] > 0) == up) > 0.9
    assert (top1["contribution_1"] > 0).mean() > 0.9  # the top driver supports the signal

    full = predictor.explain(frame, k=len(FEATURES))
    total = full.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(3)) + pl.col("base_value"))
    margin = np.mean([_raw_margin(lr, X) for lr in learners], axis=0)  # log-odds of "up", fold-averaged
    sign = np.where(up, 1.0, -1.0)  # log-odds of "down" = -log-odds of "up"
    np.testing.assert_allclose(total.to_series().to_numpy(), sign * margin, atol=1e-4)
    # the chunked path gives the same frame
    assert predictor.explain(frame, k=3, chunk_rows=37).equals(full)


def test_multiclass_weighted_members_explain_the_calibrated_argmax(multiclass):
    predictor, lgb, xgb = multiclass
    X = _data(300, 12)
    frame = _frame(X)
    seen = []
    out = predictor.explain(frame, k=3, chunk_rows=100, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (15, 15) and len(seen) == 15  # 3 chunks x 5 fold models

    proba = predictor.predict_proba(frame).select("p_down", "p_flat", "p_up").to_numpy()
    cls_idx = np.argmax(proba, axis=1)
    assert out["explained_class"].to_list() == np.array(["down", "flat", "up"])[cls_idx].tolist()

    total = out.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(3)) + pl.col("base_value"))
    rows = np.arange(len(X))
    margin = (0.75 * np.mean([_raw_margin(lr, X) for lr in lgb], axis=0)
              + 0.25 * np.mean([_raw_margin(lr, X) for lr in xgb], axis=0))
    np.testing.assert_allclose(total.to_series().to_numpy(), margin[rows, cls_idx], atol=1e-4)
    decided = cls_idx != 1  # up/down rows are decided by the driver
    assert (out["feature_1"].to_numpy()[decided] == "driver").mean() > 0.9


def test_regime_router_explains_each_rows_routed_member(tmp_path):
    from hydraquant.models.ensemble import RegimeRouter

    X = _data(1000, 14)
    y = np.where(X[:, 0] > 0, "up", "down")
    params = {"n_estimators": 20, "num_leaves": 5, "verbose": -1}
    spec_a, fold_a = _fit_folds("lightgbm", X[:500], y[:500], params)
    spec_b, fold_b = _fit_folds("lightgbm", X[500:], y[500:], params)
    router = RegimeRouter(1, 0.0, None, members={0: "calm", 1: "wild"})
    predictor = _save(tmp_path, "router", {"calm": (spec_a, fold_a), "wild": (spec_b, fold_b)}, ["down", "up"],
                      ensemble=router.to_json())
    Xt = _data(60, 15)
    regime = np.repeat([0, 1, 0], 20)
    frame = _frame(Xt).with_columns(pl.Series("regime", regime))
    out = predictor.explain(frame, k=3)
    total = out.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(3)) + pl.col("base_value"))
    margin = np.where(regime == 0, np.mean([_raw_margin(lr, Xt) for lr in fold_a], axis=0),
                      np.mean([_raw_margin(lr, Xt) for lr in fold_b], axis=0))
    sign = np.where(out["explained_class"].to_numpy() == "up", 1.0, -1.0)
    np.testing.assert_allclose(total.to_series().to_numpy(), sign * margin, atol=1e-4)


def test_regression_has_no_class_and_is_additive(tmp_path):
    X = _data(800, 5)
    y = 2.0 * X[:, 0] + 0.1 * np.random.default_rng(6).normal(size=len(X))
    spec, learners = _fit_folds("lightgbm", X, y, {"n_estimators": 30, "verbose": -1}, task="regression")
    predictor = _save(tmp_path, "reg", {"lgbm": (spec, learners)}, None, task="regression")
    Xt = _data(100, 13)
    out = predictor.explain(_frame(Xt), k=3)
    assert "explained_class" not in out.columns
    total = out.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(3)) + pl.col("base_value"))
    np.testing.assert_allclose(total.to_series().to_numpy(), np.mean([lr.predict(Xt) for lr in learners], axis=0),
                               atol=1e-4)
    assert (out["feature_1"] == "driver").mean() > 0.9


def test_logistic_member_is_explained_exactly_after_a_cold_load(tmp_path):
    """Linear SHAP in closed form, from the parameters stored beside the ONNX graph."""
    X = _data(600, 8)
    y = np.where(X[:, 0] - 0.5 * np.nan_to_num(X[:, 2]) > 0, "up", "down")
    spec, learners = _fit_folds("logistic", X, y, {})
    loaded = _save(tmp_path, "logit", {"lin": (spec, learners)}, ["down", "up"])
    Xe = _data(50, 9)
    out = loaded.explain(_frame(Xe), k=len(FEATURES))
    total = out.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(len(FEATURES))) + pl.col("base_value"))
    margin = np.mean([_raw_margin(lr, Xe) for lr in learners], axis=0)
    up = out["explained_class"].cast(pl.Utf8).to_numpy() == "up"
    np.testing.assert_allclose(total.to_series().to_numpy(), np.where(up, margin, -margin), rtol=1e-9, atol=1e-9)
    assert (out["feature_1"] == "driver").mean() > 0.6  # the label is mostly the driver's sign


def test_non_exact_learner_and_bad_k_are_refused(binary, tmp_path):
    X = _data(300, 8)
    y = np.where(X[:, 0] > 0, "up", "down")
    spec, learners = _fit_folds("mlp", X, y, {"hidden_layer_sizes": [4], "max_iter": 50})
    mlp = _save(tmp_path, "mlp", {"net": (spec, learners)}, ["down", "up"])
    frame = _frame(_data(10, 9))
    with pytest.raises(ExplainError, match=r"member 'net' is a mlp learner") as info:
        mlp.explain(frame)
    assert "lightgbm, xgboost, catboost" in (info.value.hint or "")
    predictor, _ = binary
    for bad in (0, -2, True, 1.5):
        with pytest.raises(ExplainError, match="k must be an integer >= 1"):
            predictor.explain(frame, k=bad)
    empty = predictor.explain(frame.head(0), k=2)
    assert empty.height == 0 and empty.columns[-1] == "base_value"


# --------------------------------------------------------------------------- CLI


CLI_FEATS = ["vol_5m", "MOI_1s", "dist_poc_atr", "trade_intensity_z"]
CLI_START = datetime(2024, 1, 1, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A simulated one-day lake with 1m bars and a tiny two-fold LightGBM bundle on its features."""
    from tests.bundle_world import direction_training_set

    root = tmp_path_factory.mktemp("explain_cli")
    symbols = ["BTCUSDT", "ETHUSDT"]
    _, X, y = direction_training_set(root, symbols, CLI_FEATS, CLI_START, seed=5)
    spec = ModelSpec(kind="lightgbm", params={"n_estimators": 15, "num_leaves": 5, "verbose": -1},
                     early_stopping_rounds=None, seed=3)
    stage = root / "stage"
    folds = []
    for k, rows in enumerate(np.array_split(np.arange(len(y)), 2)):
        make_learner(spec, CLI_FEATS).fit(X[rows], y[rows]).save(stage / "members" / "lgbm" / f"fold_{k}")
        folds.append({"fold": k, "dir": f"members/lgbm/fold_{k}", "metrics": {}, "best_iteration": None})
    manifest = {
        "task": "classification", "classes": ["down", "up"], "features": CLI_FEATS, "interval": "1m",
        "feature_sets": CLI_FEATS, "label": {"spec": "fwd_5", "target": "label"},
        "members": [{"name": "lgbm", "spec": spec.model_dump(mode="json"), "folds": folds}],
        "ensemble": {"method": "mean"}, "calibration": None, "metrics": {},
        "data": {"symbols": symbols, "rows": len(y)},
    }
    ModelRegistry(root / "models").save_bundle("sim", "lgbm", stage, manifest)
    return root, symbols


def _cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_predict_explain_writes_columns_and_prints_latest_drivers(world, capsys):
    root, symbols = world
    out_file = root / "explained.parquet"
    code, out, err = _cli(capsys, "--lake", root / "lake", "predict", "--model", "lgbm", "--symbols",
                          ",".join(symbols), "--start", CLI_START.isoformat(), "--out", out_file,
                          "--registry", root / "models", "--explain", 2)
    assert code == 0, err
    preds = pl.read_parquet(out_file)
    assert preds.columns == ["ts", "symbol", "p_down", "p_up", "explained_class", "feature_1", "contribution_1",
                             "feature_2", "contribution_2", "base_value"]
    assert preds["ts"].min() == CLI_START and preds.height > 400
    assert set(preds["feature_1"].drop_nulls()) <= set(CLI_FEATS)
    picked = np.where(preds["p_up"].to_numpy() >= preds["p_down"].to_numpy(), "up", "down")
    assert preds["explained_class"].to_list() == picked.tolist()
    # |contribution_1| >= |contribution_2|: drivers come largest first
    assert (preds["contribution_1"].abs() >= preds["contribution_2"].abs()).all()
    assert "top 2 drivers" in out and all(s in out for s in symbols)
    latest = preds.group_by("symbol").agg(pl.all().sort_by("ts").last())
    for row in latest.iter_rows(named=True):
        assert row["feature_1"] in out and str(row["ts"])[:16] in out

    code, out, err = _cli(capsys, "--lake", root / "lake", "predict", "--model", "lgbm", "--symbols", symbols[0],
                          "--start", CLI_START.isoformat(), "--registry", root / "models")
    assert code == 0 and "drivers" not in out, err  # without --explain nothing changes


@pytest.mark.parametrize("k", ["0", "-3"])
def test_cli_bad_explain_k_fails_clearly(world, capsys, k, tmp_path):
    root, symbols = world
    target = tmp_path / "p.parquet"
    code, _, err = _cli(capsys, "--lake", root / "lake", "predict", "--model", "lgbm", "--symbols", symbols[0],
                        "--registry", root / "models", "--out", target, f"--explain={k}")
    assert code != 0
    assert "--explain" in err and ">= 1" in err and "Traceback" not in err
    assert not target.exists()


# --------------------------------------------------------------------------- run report


def test_holdout_drivers_feed_the_report_table(tmp_path):
    """The run's last holdout rows, explained from its in-memory folds; an MLP member is left out, said so."""
    from types import SimpleNamespace

    from hydraquant.models.explain import holdout_drivers
    from hydraquant.report.html import ModelSection, RunReport, write_report

    X = _data(900, 21)
    y = np.where(X[:, 0] > 0, 1, 0)
    _, lgb = _fit_folds("lightgbm", X, y, {"n_estimators": 25, "num_leaves": 5, "verbose": -1})
    _, lin = _fit_folds("logistic", X, y, {})
    _, net = _fit_folds("mlp", X, y, {"hidden_layer_sizes": [4], "max_iter": 50})
    Xh = _data(40, 22)
    keys = pl.concat([_frame(Xh[:20], "BTCUSDT"), _frame(Xh[20:], "ETHUSDT")])  # symbol-major like a run
    raw = np.mean([np.mean([lr.predict_proba(Xh) for lr in m], axis=0) for m in (lgb, lin, net)], axis=0)
    model = SimpleNamespace(
        name="dir", task="classification", classes=[0, 1], features=FEATURES,
        cv={"lgbm": SimpleNamespace(folds=[SimpleNamespace(learner=lr) for lr in lgb]),
            "logit": SimpleNamespace(folds=[SimpleNamespace(learner=lr) for lr in lin]),
            "mlp": SimpleNamespace(folds=[SimpleNamespace(learner=lr) for lr in net])},
        holdout_keys=keys.select("ts", "symbol"), holdout=raw, holdout_raw=raw,
        ensemble_json={"method": "weighted", "weights": {"lgbm": 1.0, "logit": 1.0, "mlp": 1.0}},
    )
    drivers = holdout_drivers(model, keys, n=6, k=2)
    assert drivers.columns == ["ts", "symbol", "explained_class", "p_explained", "feature_1", "contribution_1",
                               "feature_2", "contribution_2", "base_value", "explained_members"]
    last_ts = [T0 + timedelta(minutes=m) for m in (17, 17, 18, 18, 19, 19)]
    assert drivers["ts"].to_list() == last_ts and drivers["symbol"].to_list() == ["BTCUSDT", "ETHUSDT"] * 3
    rows = np.array([17, 37, 18, 38, 19, 39])
    np.testing.assert_allclose(drivers["p_explained"].to_numpy(), raw[rows].max(axis=1))
    assert drivers["explained_class"].to_list() == raw[rows].argmax(axis=1).tolist()
    assert drivers["explained_members"][0] == "lgbm, logit (of lgbm, logit, mlp; the others have no exact SHAP)"
    # booster and linear member are explained, equally weighted: with k = all features the
    # contributions + base reproduce the mean of their fold-mean log-odds of the explained class
    full = holdout_drivers(model, keys, n=6, k=3)
    total = full.select(pl.sum_horizontal(f"contribution_{i + 1}" for i in range(3)) + pl.col("base_value"))
    margin = 0.5 * np.mean([_raw_margin(lr, Xh[rows]) for lr in lgb], axis=0) + 0.5 * np.mean(
        [_raw_margin(lr, Xh[rows]) for lr in lin], axis=0)
    np.testing.assert_allclose(total.to_series().to_numpy(),
                               np.where(drivers["explained_class"].to_numpy() == 1, margin, -margin), atol=1e-4)

    section = ModelSection(name="dir", task="classification", classes=[0, 1],
                           fold_table=pl.DataFrame({"fold": [0]}), oof_metrics={"accuracy": 0.5}, drivers=drivers)
    page = write_report(tmp_path / "r.html", RunReport("t", {}, models=[section])).read_text()
    assert 'id="model-dir-drivers"' in page and "why the latest signals fired" in page
    assert "members explained: lgbm, logit (of lgbm, logit, mlp" in page
    first = drivers.row(0, named=True)
    assert f"{first['feature_1']} ({first['contribution_1']:+.3g})" in page

    only_mlp = SimpleNamespace(**{**vars(model), "cv": {"mlp": model.cv["mlp"]}})
    assert holdout_drivers(only_mlp, keys) is None  # nothing exact to show: no table, no failure
