"""Combinatorial purged CV as a run CV kind: config rules, overlapping test sets in the trainer,
backtest paths, checkpoint identity, and the path distribution in metrics.json and the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hydraquant.errors import ConfigError
from hydraquant.models.trainer import TrainerError, cross_validate, path_predictions
from hydraquant.models.zoo import ModelSpec
from hydraquant.pipeline.run_config import CVSpec, HoldoutSpec, ModelJob, load_run_config
from hydraquant.pipeline.train_stage import cpcv_path_scores, make_splitter, train_model
from hydraquant.validation.metrics import roc_auc
from hydraquant.validation.splits import CombinatorialPurgedCV, PurgedWalkForward

FEATURES = ["f0", "f1", "f2"]
HORIZON = 3


def _problem(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    y = (X[:, 0] + rng.normal(scale=0.8, size=n) > 0).astype(int)
    t = np.arange(n, dtype=np.int64)
    return X, y, t, t + HORIZON


def _logit() -> ModelSpec:
    return ModelSpec(kind="logistic", params={"C": 1.0, "max_iter": 200}, seed=1)


# --------------------------------------------------------------------------- config


def test_cpcv_config_defaults_and_split_count() -> None:
    cv = CVSpec(kind="cpcv")
    assert cv.groups == (6, 2) and cv.n_folds == 15 and cv.n_blocks == 6
    cv = CVSpec(kind="cpcv", n_groups=5, n_test_groups=2, n_splits=9)  # n_splits is not cpcv's knob
    assert cv.n_folds == 10 and cv.n_blocks == 5
    assert CVSpec(n_splits=4).n_folds == 4 and CVSpec(n_splits=4).n_blocks == 4


def test_cpcv_config_rejects_inconsistent_groups() -> None:
    with pytest.raises(ValueError, match=r"n_test_groups \(4\) must be < cv.n_groups \(4\)"):
        CVSpec(kind="cpcv", n_groups=4, n_test_groups=4)
    with pytest.raises(ValueError, match="n_test_groups .* must be < "):
        CVSpec(kind="cpcv", n_test_groups=6)  # against the default of 6 groups
    for kind in ("purged_walk_forward", "expanding", "rolling"):
        with pytest.raises(ValueError, match=f"cv.n_groups applies only to kind='cpcv'; kind='{kind}'"):
            CVSpec(kind=kind, n_groups=4)
        with pytest.raises(ValueError, match="cv.n_test_groups applies only to kind='cpcv'"):
            CVSpec(kind=kind, n_test_groups=1)


def test_cpcv_selectable_on_a_preset_with_overrides() -> None:
    cfg, _ = load_run_config("quickstart", ["cv.kind='cpcv'", "cv.n_groups=5", "cv.n_test_groups=2"])
    assert cfg.cv.kind == "cpcv" and cfg.cv.n_folds == 10
    with pytest.raises(ConfigError, match="n_groups applies only to kind='cpcv'"):
        load_run_config("quickstart", ["cv.n_groups=5"])


def test_make_splitter_builds_cpcv_with_the_configured_groups() -> None:
    _, _, t, t_end = _problem(100)
    sp = make_splitter(CVSpec(kind="cpcv", n_groups=5, n_test_groups=2, embargo="0s"), t, t_end)
    assert isinstance(sp, CombinatorialPurgedCV)
    assert (sp.n_groups, sp.k_test_groups, sp.get_n_splits(), sp.n_paths) == (5, 2, 10, 4)


# --------------------------------------------------------------------------- trainer with overlapping test sets


@pytest.fixture(scope="module")
def cpcv_run():
    X, y, t, t_end = _problem()
    sp = CombinatorialPurgedCV(4, 2, t=t, t_end=t_end)
    return X, y, sp, cross_validate(X, y, spec=_logit(), splitter=sp, feature_names=FEATURES, times=(t, t_end))


def test_overlapping_test_sets_average_into_the_oof(cpcv_run) -> None:
    _, y, sp, res = cpcv_run
    assert len(res.folds) == 6 and res.oof_mask.all()
    counts = np.zeros(len(y))
    sums = np.zeros((len(y), 2))
    for f in res.folds:
        assert f.pred is not None and f.pred.shape == (f.test_idx.size, 2)
        assert np.intersect1d(f.train_idx, f.test_idx).size == 0
        counts[f.test_idx] += 1
        sums[f.test_idx] += f.pred
    assert np.all(counts == sp.n_paths)  # every row is tested C(n-1, k-1) = 3 times
    np.testing.assert_allclose(res.oof, sums / counts[:, None], rtol=0, atol=1e-15)


def test_paths_cover_every_row_once_and_average_to_the_oof(cpcv_run) -> None:
    _, y, sp, res = cpcv_run
    paths = path_predictions(res, sp)
    assert len(paths) == sp.n_paths == 3
    edges = sp.group_bounds(len(y))
    table = sp.backtest_paths()
    for p, path in enumerate(paths):
        assert np.isfinite(path).all()
        for g in range(sp.n_groups):  # group g of path p is split table[p, g]'s own prediction
            fold = res.folds[int(table[p, g])]
            rows = np.arange(edges[g], edges[g + 1])
            np.testing.assert_array_equal(path[rows], fold.pred[np.searchsorted(fold.test_idx, rows)])
    # each row's splits are spread over the paths one each, so the path mean is the OOF mean
    np.testing.assert_allclose(np.mean(paths, axis=0), res.oof, rtol=0, atol=1e-12)


def test_path_predictions_refuse_a_walk_forward_splitter(cpcv_run) -> None:
    res = cpcv_run[3]
    _, _, t, t_end = _problem()
    with pytest.raises(TrainerError, match="no backtest paths"):
        path_predictions(res, PurgedWalkForward(3, t=t, t_end=t_end))
    with pytest.raises(TrainerError, match="has 6 folds, the splitter 10"):
        path_predictions(res, CombinatorialPurgedCV(5, 2, t=t, t_end=t_end))


def test_path_scores_are_the_metric_of_each_path(cpcv_run) -> None:
    _, y, sp, res = cpcv_run
    job = ModelJob(name="m", label="direction:horizon=3", learners=[{"name": "a", "kind": "logistic"}])
    out = cpcv_path_scores(job, {"a": res}, sp, None, y, [0, 1], "classification")
    expected = [roc_auc(y, p[:, 1]) for p in path_predictions(res, sp)]
    np.testing.assert_allclose(out["per_path"], expected, rtol=0, atol=1e-12)
    assert out["n_paths"] == 3 and out["n_splits"] == 6 and out["metric"] == "roc_auc"
    assert out["mean"] == pytest.approx(np.mean(expected)) and out["min"] == pytest.approx(min(expected))
    assert out["std"] == pytest.approx(np.std(expected, ddof=1))
    assert 0.6 < out["min"] <= out["max"] < 1.0  # the planted signal is found on every path


def test_checkpoint_identity_includes_the_cv_kind(tmp_path: Path) -> None:
    """Same fingerprint, same data: a walk-forward fold is never resumed as a CPCV fold."""
    X, y, t, t_end = _problem(400)
    kw = {"spec": _logit(), "feature_names": FEATURES, "times": (t, t_end), "checkpoint_dir": tmp_path,
          "fingerprint": "same"}
    cross_validate(X, y, splitter=PurgedWalkForward(3, t=t, t_end=t_end), **kw)
    first = cross_validate(X, y, splitter=CombinatorialPurgedCV(3, 1, t=t, t_end=t_end), **kw)
    assert not any(f.resumed for f in first.folds)
    again = cross_validate(X, y, splitter=CombinatorialPurgedCV(3, 1, t=t, t_end=t_end), **kw)
    assert all(f.resumed for f in again.folds)
    for a, b in zip(first.folds, again.folds, strict=True):  # resumed folds keep their own test predictions
        np.testing.assert_array_equal(a.pred, b.pred)
    np.testing.assert_array_equal(first.oof, again.oof)


# --------------------------------------------------------------------------- train_model with cpcv


def _frame(n: int = 1200, seed: int = 3) -> pl.DataFrame:
    X, y, _, _ = _problem(n, seed)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=i) for i in range(n)]
    return pl.DataFrame({
        "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")), "symbol": ["X"] * n,
        **{f: X[:, i] for i, f in enumerate(FEATURES)}, "label": y,
        "t_end": pl.Series([t + timedelta(minutes=HORIZON) for t in ts], dtype=pl.Datetime("us", "UTC")),
    })


def test_train_model_with_cpcv_reports_paths_and_covers_every_dev_row() -> None:
    job = ModelJob(name="m", label="direction:horizon=3", ensemble="auc_pr_weighted",
                   learners=[{"name": "a", "kind": "logistic"},
                             {"name": "b", "kind": "logistic", "params": {"C": 0.01}}])
    cv = CVSpec(kind="cpcv", n_groups=4, n_test_groups=2, embargo="3m")
    model = train_model("m", job, _frame(), FEATURES, cv=cv, holdout=HoldoutSpec(fraction=0.25),
                        checkpoint_root=None, data_hash="x")
    paths = model.metrics["oof"]["cv_paths"]
    assert (paths["n_paths"], paths["n_splits"], paths["combined_by"]) == (3, 6, "auc_pr_weighted")
    assert len(paths["per_path"]) == 3 and paths["min"] <= paths["mean"] <= paths["max"]
    # unlike walk-forward, no leading block goes unscored: every development row has an OOF value
    assert model.rows["oof"] == model.rows["development"] and model.oof_mask.all()
    assert model.fold_table.height == 2 * 6
    # the bundle's members keep all six fold models each and average them on the holdout
    assert all(len(c.folds) == 6 for c in model.cv.values())
    assert model.metrics["holdout"]["roc_auc"] > 0.6


def test_walk_forward_models_report_no_paths() -> None:
    job = ModelJob(name="m", label="direction:horizon=3", learners=[{"name": "a", "kind": "logistic"}])
    model = train_model("m", job, _frame(), FEATURES, cv=CVSpec(n_splits=3), holdout=HoldoutSpec(fraction=0.25),
                        checkpoint_root=None, data_hash="x")
    assert "cv_paths" not in model.metrics["oof"]


# --------------------------------------------------------------------------- metrics.json and report


def test_metrics_json_and_report_carry_the_path_table(tmp_path: Path) -> None:
    from hydraquant.report.html import ModelSection, RunReport, write_metrics_json, write_report

    paths = {"n_groups": 4, "n_test_groups": 2, "n_splits": 6, "n_paths": 3, "metric": "roc_auc",
             "combined_by": "mean", "mean": 0.61, "std": 0.02, "min": 0.5873, "max": 0.63,
             "per_path": [0.5873, 0.61, 0.63]}
    section = ModelSection(name="m", task="classification", classes=[0, 1],
                           fold_table=pl.DataFrame({"fold": [0, 1]}),
                           oof_metrics={"n": 10, "roc_auc": 0.6, "cv_paths": paths})
    report = RunReport(title="t", summary={}, models=[section])
    write_metrics_json(tmp_path / "metrics.json", report)
    assert json.loads((tmp_path / "metrics.json").read_text())["models"][0]["oof"]["cv_paths"] == paths
    html = write_report(tmp_path / "report.html", report).read_text()
    assert "m: CPCV backtest paths" in html and "<td>0.5873</td>" in html
    assert "<td>cv_paths</td>" not in html  # not flattened into the scalar metrics table
