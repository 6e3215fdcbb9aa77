"""The regime router as a run ensemble: config rules, specialists per confirmed regime, routed OOF and
holdout, and a registry bundle that `hydraquant predict` reproduces cold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hydraquant.cli.main import main
from hydraquant.data.lake import Lake
from hydraquant.errors import HydraError
from hydraquant.models.ensemble import RegimeRouter, ensemble_from_json
from hydraquant.pipeline.run import run_pipeline
from hydraquant.pipeline.run_config import (
    CVSpec,
    HoldoutSpec,
    ModelJob,
    RouterSpec,
    load_run_config,
)
from hydraquant.pipeline.train_stage import ACTIVE_REGIME, train_model

SMALL = ["data.simulate.days=1", "cv.n_splits=2", "models.0.learners.0.params.n_estimators=30"]
LEARNERS = [{"name": "a", "kind": "logistic"}, {"name": "b", "kind": "logistic", "params": {"C": 0.05}}]


def _job(**router) -> dict:
    return {"name": "m", "label": "direction:horizon=3", "ensemble": "regime_router", "learners": LEARNERS,
            "router": {"regime": "trend_regime", "default": 0, **router}}


# --------------------------------------------------------------------------- config


def test_router_config_accepts_causal_regimes_only() -> None:
    assert ModelJob.model_validate(_job()).router.hysteresis_bars == 3
    ok = ModelJob.model_validate(_job(regime="hydra_regime:window=30,forward=false"))
    assert ok.router.regime.startswith("hydra_regime")
    with pytest.raises(ValueError, match="hydra_regime labels the FUTURE window"):
        ModelJob.model_validate(_job(regime="hydra_regime:window=30"))
    with pytest.raises(ValueError, match="'direction:horizon=5' is not a causal regime labeler"):
        ModelJob.model_validate(_job(regime="direction:horizon=5"))
    with pytest.raises(ValueError, match="regime_filter: hydra_regime labels the FUTURE"):
        ModelJob.model_validate({"name": "m", "label": "direction", "learners": LEARNERS,
                                 "regime_filter": "hydra_regime", "regime_values": [1]})


def test_router_config_consistency_rules() -> None:
    with pytest.raises(ValueError, match="needs default .* or fallback"):
        RouterSpec(regime="trend_regime")
    with pytest.raises(ValueError, match="min_confidence > 0 sends unsure rows to the fallback"):
        RouterSpec(regime="trend_regime", default=0, min_confidence=0.6)
    with pytest.raises(ValueError, match="router.fallback 'zz' is not one of its learners"):
        ModelJob.model_validate(_job(fallback="zz"))
    with pytest.raises(ValueError, match="'regime_router' and a \\[models.router\\] table go together"):
        ModelJob.model_validate({**_job(), "ensemble": "mean"})
    with pytest.raises(ValueError, match="go together"):
        ModelJob.model_validate({**_job(), "router": None})
    with pytest.raises(ValueError, match="classification only"):
        ModelJob.model_validate({**_job(), "task": "regression", "calibration": "none"})


def test_router_with_several_learners_per_regime_round_trips_through_json() -> None:
    router = RegimeRouter(2, 0.6, "A", members={"A": ["a1", "a2"], "B": "b"}, fallback_member="fb")
    back = ensemble_from_json(json.loads(json.dumps(router.to_json())))
    base = {"a1": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), "a2": np.array([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]]),
            "b": np.array([[0.1, 0.9]] * 3), "fb": np.array([[0.45, 0.55]] * 3)}
    active = np.array(["A", "A", "A"], dtype=object)
    # rows 0, 1: mean of a1 and a2 (top 0.8 / 0.7 >= 0.6); row 2: top 0.5 < 0.6 -> fallback
    expected = np.array([[0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    np.testing.assert_allclose(back.predict_active(base, active), expected, rtol=0, atol=1e-15)
    assert back.specialist_rows(base, active).tolist() == [True, True, False]
    w = back.member_weights(["a1", "a2", "b", "fb"], base, active)
    np.testing.assert_array_equal(w, [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0, 1]])
    # predict_active on hysteresis-confirmed regimes == predict_proba on the raw ones
    raw = np.array(["B", "A", "A", "A", "B", "B"], dtype=object)
    base6 = {k: np.tile(v[:1], (6, 1)) for k, v in base.items()}
    np.testing.assert_array_equal(back.predict_proba(base6, regimes=raw),
                                  back.predict_active(base6, back.active_regimes(raw)))


# --------------------------------------------------------------------------- train_model on hand-built regimes


def _frame(regimes: list, n: int = 1600, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = (X[:, 0] + rng.normal(scale=0.8, size=n) > 0).astype(int)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ts = pl.Series([t0 + timedelta(minutes=i) for i in range(n)], dtype=pl.Datetime("us", "UTC"))
    return pl.DataFrame({"ts": ts, "symbol": ["X"] * n, "f0": X[:, 0], "f1": X[:, 1], "label": y,
                         "t_end": ts + timedelta(minutes=3), ACTIVE_REGIME: pl.Series(regimes, dtype=pl.Int64)})


def test_specialists_train_on_their_regime_rows_and_oof_routes_to_them() -> None:
    n = 1600
    regimes = [(i // 100) % 2 for i in range(n)]  # alternating 100-bar regimes 0 / 1
    job = ModelJob.model_validate(_job(min_rows=100, fallback="a"))
    model = train_model("m", job, _frame(regimes), ["f0", "f1"], cv=CVSpec(n_splits=3),
                        holdout=HoldoutSpec(fraction=0.25), checkpoint_root=None, data_hash="x")
    routing = model.metrics["oof"]["routing"]
    assert set(model.cv) == {"a__regime_0", "b__regime_0", "a__regime_1", "b__regime_1", "a__all"}
    assert model.rows["development"] == 1197  # the last 3 rows' labels reach into the holdout: purged
    dev_active = np.array(regimes[:1197])
    for r in (0, 1):
        size = int((dev_active == r).sum())
        info = routing["regimes"][str(r)]
        assert info["development_rows"] == size and info["holdout_rows"] == 200
        assert model.cv[f"a__regime_{r}"].oof_mask.size == size  # a specialist sees its own regime's rows only
    assert model.cv["a__all"].oof_mask.size == 1197
    assert model.member_learners["b__regime_1"] == "b" and model.member_learners["a__all"] == "a"
    # min_confidence 0: every OOF row is its specialist's; rows of a specialist's first walk-forward
    # block stay unscored instead of borrowing the fallback
    assert routing["oof_rows_by_fallback"] == 0
    for r in (0, 1):
        spec_mask = model.cv[f"a__regime_{r}"].oof_mask & model.cv[f"b__regime_{r}"].oof_mask
        assert np.array_equal(model.oof_mask[dev_active == r], spec_mask)
        spec_mean = np.mean([np.asarray(model.cv[f"{m}__regime_{r}"].oof) for m in "ab"], axis=0)
        np.testing.assert_allclose(model.oof[dev_active == r][spec_mask], spec_mean[spec_mask], rtol=0, atol=1e-15)
    assert model.ensemble_json["method"] == "regime_router" and model.ensemble_json["fallback_member"] == "a__all"
    assert model.metrics["holdout"]["roc_auc"] > 0.6


def test_holdout_regime_without_specialist_or_fallback_is_an_error() -> None:
    n = 1600
    regimes = [(i // 100) % 2 if i < 1200 else 2 for i in range(n)]  # regime 2 appears only in the holdout
    job = ModelJob.model_validate(_job(min_rows=100))
    with pytest.raises(HydraError, match=r"400 holdout row\(s\) route to regime\(s\) \['2'\].*no fallback"):
        train_model("m", job, _frame(regimes), ["f0", "f1"], cv=CVSpec(n_splits=3),
                    holdout=HoldoutSpec(fraction=0.25), checkpoint_root=None, data_hash="x")


# --------------------------------------------------------------------------- the preset, end to end


@pytest.fixture(scope="module")
def router_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("router")
    cfg, path = load_run_config("regime_router", SMALL)
    res = run_pipeline(cfg, lake=Lake(tmp / "lake"), registry_root=tmp / "models", runs_root=tmp / "runs",
                       out_dir=tmp / "out", config_dir=path.parent)
    return tmp, res


def _holdout_features(tmp: Path, model, start=None):
    from hydraquant.models.predictor import Predictor, lake_features
    from hydraquant.models.registry import ModelRegistry

    pred = Predictor.load(ModelRegistry(tmp / "models"), model.name)
    symbols = sorted(model.holdout_keys["symbol"].unique().to_list())
    return pred, lake_features(Lake(tmp / "lake"), pred, symbols, start=start)


def test_run_writes_router_bundle_metrics_and_report(router_run) -> None:
    tmp, res = router_run
    (model,) = res.models
    routing = model.metrics["oof"]["routing"]
    assert routing["fallback"] == "logit__all" and routing["regime"].startswith("trend_regime")
    specialists = [r for r, info in routing["regimes"].items() if info["specialist"]]
    assert len(specialists) >= 2
    # min_confidence 0.55: unsure specialists defer to the fallback, in the OOF and on the holdout
    assert 0 < routing["holdout_rows_by_fallback"] < model.rows["holdout"]
    assert routing["oof_rows_by_specialist"] + routing["oof_rows_by_fallback"] == model.rows["oof"]
    metrics = json.loads((res.out_dir / "metrics.json").read_text())
    assert metrics["models"][0]["oof"]["routing"]["regimes"].keys() == routing["regimes"].keys()
    assert "direction_router: regime routing" in (res.out_dir / "report.html").read_text()
    (manifest_path,) = (tmp / "models").rglob("manifest.json")
    manifest = json.loads(manifest_path.read_text())
    ens = manifest["ensemble"]
    assert ens["method"] == "regime_router" and ens["regime"] == routing["regime"]
    assert ens["regime_lookback_bars"] >= 2000
    names = {m["name"] for m in manifest["members"]}
    assert "logit__all" in names and {f"lgbm__regime_{r}" for r in specialists} <= names


def test_holdout_routing_follows_the_confirmed_regime_and_confidence(router_run) -> None:
    """Recompute the run's raw holdout output by hand from its members and the bundle's router."""
    from hydraquant.models.predictor import ACTIVE_REGIME_COLUMN, member_output

    tmp, res = router_run
    (model,) = res.models
    pred, feats = _holdout_features(tmp, model)  # full history: the run's very features
    rows = model.holdout_keys.join(feats, on=["ts", "symbol"], how="left", maintain_order="left")
    X = pred.matrix(rows)
    # the run's in-memory fold learners (a loaded logistic member runs on float32 onnxruntime)
    out = {m: member_output([f.learner for f in c.folds], X, "classification", pred.classes)
           for m, c in model.cv.items()}
    assert set(out) == set(pred.members)
    expected = out["logit__all"].copy()
    active = rows[ACTIVE_REGIME_COLUMN].to_numpy()
    for regime, members in pred.ensemble.members.items():
        spec = np.mean([out[m] for m in members], axis=0)
        take = (active == regime) & (spec.max(axis=1) >= 0.55)
        expected[take] = spec[take]
    np.testing.assert_allclose(model.holdout_raw, expected, rtol=0, atol=1e-12)


def test_cold_predictor_confirms_the_same_regimes_as_full_history(router_run) -> None:
    from hydraquant.models.predictor import ACTIVE_REGIME_COLUMN

    tmp, res = router_run
    (model,) = res.models
    _, cold = _holdout_features(tmp, model, start=str(model.holdout_start))
    _, full = _holdout_features(tmp, model)
    both = cold.join(full, on=["ts", "symbol"], suffix="_full")
    assert both.height == cold.height > 0
    assert (both[ACTIVE_REGIME_COLUMN] == both[f"{ACTIVE_REGIME_COLUMN}_full"]).all()


def test_hydraquant_predict_reproduces_the_holdout_cold(router_run, tmp_path: Path) -> None:
    tmp, res = router_run
    (model,) = res.models
    run_preds = pl.read_parquet(res.out_dir / f"predictions_{model.name}.parquet")
    symbols = ",".join(sorted(run_preds["symbol"].unique().to_list()))
    out = tmp_path / "preds.parquet"
    assert main(["--lake", str(tmp / "lake"), "predict", "--model", model.name, "--symbols", symbols,
                 "--start", str(model.holdout_start), "--registry", str(tmp / "models"), "--out", str(out)]) == 0
    joined = run_preds.join(pl.read_parquet(out), on=["ts", "symbol"], suffix="_fresh")
    assert joined.height == run_preds.height
    # as for the quickstart bundle: bit for bit despite the shorter feature history
    np.testing.assert_array_equal(joined["p_1"].to_numpy(), joined["p_1_fresh"].to_numpy())


def test_router_specialists_accept_combinatorial_cv() -> None:
    n = 1600
    regimes = [(i // 100) % 2 for i in range(n)]
    job = ModelJob.model_validate(_job(min_rows=100))
    cv = CVSpec(kind="cpcv", n_groups=4, n_test_groups=2)
    model = train_model("m", job, _frame(regimes), ["f0", "f1"], cv=cv, holdout=HoldoutSpec(fraction=0.25),
                        checkpoint_root=None, data_hash="x")
    assert all(len(c.folds) == 6 for c in model.cv.values())
    # combinatorial CV tests every row of every regime: the routed OOF covers all development rows
    assert model.rows["oof"] == model.rows["development"]
    assert "cv_paths" not in model.metrics["oof"]  # paths are per pooled model; a router reports routing


def test_router_folds_resume_from_per_regime_checkpoints(tmp_path: Path) -> None:
    regimes = [(i // 100) % 2 for i in range(1600)]
    job = ModelJob.model_validate(_job(min_rows=100, fallback="b"))
    kw = {"cv": CVSpec(n_splits=3), "holdout": HoldoutSpec(fraction=0.25), "checkpoint_root": tmp_path,
          "data_hash": "x"}
    first = train_model("m", job, _frame(regimes), ["f0", "f1"], **kw)
    assert (tmp_path / "m" / "regime_1" / "b").is_dir() and (tmp_path / "m" / "all" / "b").is_dir()
    again = train_model("m", job, _frame(regimes), ["f0", "f1"], **kw)
    assert all(f.resumed for c in again.cv.values() for f in c.folds)
    np.testing.assert_array_equal(first.oof, again.oof)
    # resumed logistic folds are loaded from ONNX and run in float32 (see zoo): ~1e-7 apart
    np.testing.assert_allclose(first.holdout, again.holdout, rtol=0, atol=1e-5)
