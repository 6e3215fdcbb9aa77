"""Model registry (versioned, hashed bundles) and the predictor that loads them."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.errors import HydraError
from hydraquant.models.registry import ModelIntegrityError, ModelRegistry, parse_ref

FEATURES = ["f_a", "f_b", "f_c"]


def fake_stage(tmp: Path, name: str = "stage", payload: str = "booster") -> Path:
    """A staged bundle with plain files standing in for learner output (registry-only tests)."""
    stage = tmp / name
    for k in range(2):
        d = stage / "members" / "lgbm" / f"fold_{k}"
        d.mkdir(parents=True)
        (d / "model.txt").write_text(f"{payload} fold {k}\n")
        (d / "meta.json").write_text(json.dumps({"fold": k}))
    return stage


def fake_manifest(**over) -> dict:
    manifest = {
        "task": "classification",
        "classes": [-1, 0, 1],
        "features": list(FEATURES),
        "interval": "1m",
        "members": [{"name": "lgbm", "spec": {"kind": "lightgbm"},
                     "folds": [{"fold": k, "dir": f"members/lgbm/fold_{k}", "metrics": {}, "best_iteration": 5}
                               for k in range(2)]}],
        "ensemble": {"method": "mean"},
        "calibration": None,
        "metrics": {"oof": {"log_loss": 0.9, "roc_auc": 0.61, "per_class": {}}, "holdout": {}},
        "data": {"symbols": ["BTCUSDT"], "start": "2024-01-01", "end": "2024-01-02", "rows": 100},
    }
    manifest.update(over)
    return manifest


@pytest.fixture
def reg(tmp_path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models")


# ------------------------------------------------------------------------------------ registry


def test_save_allocates_versions_hashes_files_and_first_is_current(reg, tmp_path):
    stage = fake_stage(tmp_path)
    r1 = reg.save_bundle("btc", "lgbm_tb", stage, fake_manifest())
    r2 = reg.save_bundle("btc", "lgbm_tb", stage, fake_manifest())
    assert (r1.version, r2.version) == ("v0001", "v0002")
    assert stage.is_dir()  # copied, not moved
    manifest = json.loads((r1.path / "manifest.json").read_text())
    assert manifest["version"] == "v0001" and manifest["universe"] == "btc" and manifest["model"] == "lgbm_tb"
    assert manifest["format"] == 1 and manifest["features"] == FEATURES
    expected = hashlib.sha256(b"booster fold 0\n").hexdigest()
    assert manifest["files"]["members/lgbm/fold_0/model.txt"] == expected
    assert set(manifest["files"]) == {f"members/lgbm/fold_{k}/{n}" for k in range(2) for n in ("model.txt", "meta.json")}
    current = json.loads((reg.root / "btc" / "lgbm_tb" / "current.json").read_text())
    assert current == {"version": "v0001", "history": ["v0001"]}  # a new version is not promoted by itself
    assert not [p for p in (reg.root / "btc" / "lgbm_tb").iterdir() if p.name.startswith(".")]  # no temp left
    assert reg.verify(r2.path)["version"] == "v0002"


def test_version_gap_and_existing_versions_never_overwritten(reg, tmp_path):
    stage = fake_stage(tmp_path)
    reg.save_bundle("u", "m", stage, fake_manifest())
    (reg.root / "u" / "m" / "v0007").mkdir()  # e.g. a restored directory: never reused
    (reg.root / "u" / "m" / "v0007" / "manifest.json").write_text("{}")
    assert reg.save_bundle("u", "m", stage, fake_manifest()).version == "v0008"
    assert (reg.root / "u" / "m" / "v0007" / "manifest.json").read_text() == "{}"


def test_save_refuses_bad_names_and_inconsistent_manifests(reg, tmp_path):
    stage = fake_stage(tmp_path)
    with pytest.raises(HydraError, match="invalid model name"):
        reg.save_bundle("u", "a/b", stage, fake_manifest())
    with pytest.raises(HydraError, match="features"):
        reg.save_bundle("u", "m", stage, fake_manifest(features=[]))
    with pytest.raises(HydraError, match="duplicates"):
        reg.save_bundle("u", "m", stage, fake_manifest(features=["x", "x"]))
    bad = fake_manifest()
    bad["members"][0]["folds"][1]["dir"] = "members/lgbm/fold_9"
    with pytest.raises(HydraError, match="fold_9"):
        reg.save_bundle("u", "m", stage, bad)
    escape = fake_manifest()
    escape["members"][0]["folds"][0]["dir"] = "../"
    with pytest.raises(HydraError, match="is not in"):
        reg.save_bundle("u", "m", stage, escape)
    assert reg.list() == []  # nothing half-saved


def test_list_show_resolve(reg, tmp_path):
    stage = fake_stage(tmp_path)
    reg.save_bundle("btc", "lgbm_tb", stage, fake_manifest())
    reg.save_bundle("btc", "lgbm_tb", stage, fake_manifest(metrics={"holdout": {"log_loss": 0.8}}))
    reg.save_bundle("eth", "lgbm_tb", stage, fake_manifest())
    reg.save_bundle("eth", "xgb", stage, fake_manifest())
    infos = reg.list()
    assert [(i.universe, i.model, i.version, i.is_current) for i in infos] == [
        ("btc", "lgbm_tb", "v0001", True), ("btc", "lgbm_tb", "v0002", False),
        ("eth", "lgbm_tb", "v0001", True), ("eth", "xgb", "v0001", True)]
    assert infos[0].metrics == {"oof.log_loss": 0.9, "oof.roc_auc": 0.61}
    assert infos[1].metrics == {"holdout.log_loss": 0.8}  # holdout preferred
    assert [i.label for i in reg.list(universe="eth")] == ["eth/lgbm_tb@v0001", "eth/xgb@v0001"]
    assert len(reg.list(model="lgbm_tb")) == 3

    assert reg.resolve("xgb") == reg.root / "eth" / "xgb" / "v0001"  # unique across universes
    assert reg.resolve("btc/lgbm_tb") == reg.root / "btc" / "lgbm_tb" / "v0001"  # current, not latest
    assert reg.resolve("btc/lgbm_tb@v0002").name == "v0002"
    assert reg.resolve("btc/lgbm_tb@2").name == "v0002"
    assert reg.show("btc/lgbm_tb@v0002")["metrics"] == {"holdout": {"log_loss": 0.8}}
    with pytest.raises(HydraError, match="ambiguous: btc/lgbm_tb, eth/lgbm_tb"):
        reg.resolve("lgbm_tb")
    with pytest.raises(HydraError, match=r"no model 'nope'.*available: btc/lgbm_tb, eth/lgbm_tb, eth/xgb"):
        reg.resolve("nope")
    with pytest.raises(HydraError, match=r"no version v0003 \(available: v0001, v0002\)"):
        reg.resolve("btc/lgbm_tb@v0003")
    assert parse_ref("u/m@v0012") == ("u", "m", "v0012")
    with pytest.raises(HydraError, match="invalid model reference"):
        parse_ref("a/b/c")


def test_promote_and_rollback_history(reg, tmp_path):
    stage = fake_stage(tmp_path)
    for _ in range(3):
        reg.save_bundle("u", "m", stage, fake_manifest())
    with pytest.raises(HydraError, match="no earlier current version"):
        reg.rollback("u", "m")
    assert reg.promote("m@v0003").version == "v0003"
    assert reg.promote("u/m@v0002").version == "v0002"
    assert reg.promote("u/m@v0002").version == "v0002"  # already current: history unchanged
    cur = json.loads((reg.root / "u" / "m" / "current.json").read_text())
    assert cur == {"version": "v0002", "history": ["v0001", "v0003", "v0002"]}
    assert reg.resolve("m").name == "v0002"
    assert reg.rollback("u", "m").version == "v0003"
    assert reg.rollback("u", "m").version == "v0001"
    with pytest.raises(HydraError, match="no earlier current version"):
        reg.rollback("u", "m")
    assert reg.promote("m").version == "v0003"  # no version: the latest
    assert [i.version for i in reg.list() if i.is_current] == ["v0003"]


def test_promote_refuses_a_tampered_version(reg, tmp_path):
    stage = fake_stage(tmp_path)
    reg.save_bundle("u", "m", stage, fake_manifest())
    ref = reg.save_bundle("u", "m", stage, fake_manifest())
    (ref.path / "members" / "lgbm" / "fold_1" / "meta.json").write_text("{}")
    with pytest.raises(ModelIntegrityError, match="fold_1/meta.json is tampered"):
        reg.promote("m@v0002")
    assert reg.resolve("m").name == "v0001"


@pytest.mark.parametrize("damage, expect", [
    ("flip", "members/lgbm/fold_0/model.txt is tampered"),
    ("delete", "members/lgbm/fold_0/model.txt is missing"),
    ("extra", "members/lgbm/fold_0/extra.txt is unlisted"),
    ("manifest", "has no manifest.json"),
])
def test_verify_names_the_damaged_file(reg, tmp_path, damage, expect):
    ref = reg.save_bundle("u", "m", fake_stage(tmp_path), fake_manifest())
    target = ref.path / "members" / "lgbm" / "fold_0" / "model.txt"
    if damage == "flip":  # one byte
        data = bytearray(target.read_bytes())
        data[0] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    elif damage == "extra":
        (target.parent / "extra.txt").write_text("x")
    else:
        (ref.path / "manifest.json").unlink()
    with pytest.raises(ModelIntegrityError) as info:
        reg.verify(ref.path)
    assert expect in info.value.message
    assert "re-train or restore the bundle; do not load it" in info.value.message


# ------------------------------------------------------------------------------------ predictor


def synthetic(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    score = X[:, 0] - 0.5 * X[:, 1] + 0.3 * rng.normal(size=n)
    y = np.where(score > 0.5, 1, np.where(score < -0.5, -1, 0))
    return X, y


def fit_folds(stage: Path, member: str, spec, X, y, n_folds: int = 2) -> list:
    """Tiny real learners on disjoint row blocks, saved where the manifest says."""
    from hydraquant.models.zoo import make_learner

    learners = []
    for k, rows in enumerate(np.array_split(np.arange(len(y)), n_folds)):
        learner = make_learner(spec, FEATURES).fit(X[rows], y[rows])
        learner.save(stage / "members" / member / f"fold_{k}")
        learners.append(learner)
    return learners


def member_entry(name: str, spec, n_folds: int = 2) -> dict:
    return {"name": name, "spec": spec.model_dump(mode="json"),
            "folds": [{"fold": k, "dir": f"members/{name}/fold_{k}", "metrics": {}, "best_iteration": None}
                      for k in range(n_folds)]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One staged two-member lightgbm bundle plus the in-memory learners it was saved from."""
    from hydraquant.models.zoo import ModelSpec

    stage = tmp_path_factory.mktemp("trained") / "stage"
    X, y = synthetic()
    spec_a = ModelSpec(kind="lightgbm", params={"n_estimators": 25, "num_leaves": 7, "verbose": -1},
                       early_stopping_rounds=None, seed=1)
    spec_b = ModelSpec(kind="lightgbm", params={"n_estimators": 15, "num_leaves": 4, "verbose": -1},
                       early_stopping_rounds=None, seed=2)
    learners = {"a": fit_folds(stage, "a", spec_a, X, y), "b": fit_folds(stage, "b", spec_b, X, y)}
    members = [member_entry("a", spec_a), member_entry("b", spec_b)]
    return stage, learners, members, X


def feature_frame(X: np.ndarray, columns: list[str] = FEATURES) -> pl.DataFrame:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [t0 + timedelta(minutes=i) for i in range(len(X))]
    frame = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")), "symbol": ["BTCUSDT"] * len(X)})
    return frame.with_columns(pl.Series(c, X[:, FEATURES.index(c)]) for c in columns)


def copy_stage(stage: Path, dest: Path, members: list[str]) -> Path:
    import shutil

    for m in members:
        shutil.copytree(stage / "members" / m, dest / "members" / m)
    return dest


def test_predictor_equals_fold_average_of_the_learners(reg, trained, tmp_path):
    from hydraquant.models.predictor import Predictor

    stage, learners, members, X = trained
    stage_a = copy_stage(stage, tmp_path / "a", ["a"])
    reg.save_bundle("btc", "solo", stage_a, fake_manifest(members=[members[0]]))
    pred = Predictor.load(reg, "solo")
    assert pred.features == FEATURES and pred.classes == [-1, 0, 1] and pred.interval == "1m"
    X_test = X[:50].copy()
    X_test[3, :] = np.nan  # warm-up rows are scored (NaN = missing), not refused
    out = pred.predict_proba(feature_frame(X_test))
    assert out.columns == ["ts", "symbol", "p_-1", "p_0", "p_1"]
    expected = np.mean([lr.predict_proba(X_test) for lr in learners["a"]], axis=0)
    np.testing.assert_allclose(out.select("p_-1", "p_0", "p_1").to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(out.select("p_-1", "p_0", "p_1").to_numpy().sum(axis=1), 1.0, atol=1e-9)
    # two members, no ensemble.json: mean of the members' fold averages
    reg.save_bundle("btc", "duo", stage, fake_manifest(members=members))
    duo = Predictor.load(reg, "duo").predict_proba(feature_frame(X_test))
    both = np.mean([np.mean([lr.predict_proba(X_test) for lr in learners[m]], axis=0) for m in ("a", "b")], axis=0)
    np.testing.assert_allclose(duo.select("p_-1", "p_0", "p_1").to_numpy(), both, atol=1e-6)


def test_predictor_applies_calibration(reg, trained, tmp_path):
    from hydraquant.models.calibration import make_calibrator
    from hydraquant.models.predictor import Predictor

    stage, learners, members, X = trained
    staged = copy_stage(stage, tmp_path / "s", ["a"])
    raw = np.mean([lr.predict_proba(X) for lr in learners["a"]], axis=0)
    _, y = synthetic()
    cal = make_calibrator("temperature").fit(raw, np.searchsorted([-1, 0, 1], y))
    (staged / "calibration.json").write_text(json.dumps(cal.to_json()))
    reg.save_bundle("btc", "cal", staged, fake_manifest(members=[members[0]], calibration={"method": "temperature"}))
    out = Predictor.load(reg, "cal").predict_proba(feature_frame(X[:40]))
    np.testing.assert_allclose(out.select("p_-1", "p_0", "p_1").to_numpy(), cal.transform(raw[:40]), atol=1e-6)
    assert not np.allclose(cal.transform(raw[:40]), raw[:40], atol=1e-4)  # the calibrator did something

    # declared but absent calibration is refused, not skipped
    staged2 = copy_stage(stage, tmp_path / "s2", ["a"])
    reg.save_bundle("btc", "cal_gone", staged2, fake_manifest(members=[members[0]], calibration={"method": "isotonic"}))
    with pytest.raises(HydraError, match="declares calibration 'isotonic' but has no calibration.json"):
        Predictor.load(reg, "cal_gone")


def test_predictor_refuses_missing_and_reordered_features(reg, trained, tmp_path):
    from hydraquant.models.predictor import FeatureMismatchError, Predictor

    stage, _, members, X = trained
    reg.save_bundle("btc", "m", copy_stage(stage, tmp_path / "s", ["a"]), fake_manifest(members=[members[0]]))
    pred = Predictor.load(reg, "m")
    with pytest.raises(FeatureMismatchError, match="missing from the input: f_b"):
        pred.predict_proba(feature_frame(X[:5], ["f_a", "f_c"]))
    with pytest.raises(FeatureMismatchError, match="reordered features.*column 2 is 'f_c'.*expects 'f_b'"):
        pred.predict_proba(feature_frame(X[:5], ["f_a", "f_c", "f_b"]))
    extra = feature_frame(X[:5]).with_columns(pl.lit(1.0).alias("unused"))  # extra columns are ignored
    assert pred.predict_proba(extra).height == 5
    empty = pred.predict_proba(feature_frame(X[:0]))
    assert empty.height == 0 and empty.columns == ["ts", "symbol", "p_-1", "p_0", "p_1"]


def test_predictor_refuses_a_tampered_model_file(reg, trained, tmp_path):
    from hydraquant.models.predictor import Predictor

    stage, _, members, _ = trained
    ref = reg.save_bundle("btc", "m", copy_stage(stage, tmp_path / "s", ["a"]), fake_manifest(members=[members[0]]))
    model_file = next((ref.path / "members" / "a" / "fold_1").glob("*.txt"))
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x20
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match=f"members/a/fold_1/{model_file.name} is tampered"):
        Predictor.load(reg, "m")


def test_regression_bundle_predicts_fold_mean(reg, tmp_path):
    from hydraquant.models.predictor import Predictor
    from hydraquant.models.zoo import ModelSpec

    X, _ = synthetic(300, seed=3)
    target = X[:, 0] * 2.0 - X[:, 2]
    spec = ModelSpec(kind="lightgbm", task="regression", params={"n_estimators": 20, "verbose": -1},
                     early_stopping_rounds=None)
    stage = tmp_path / "stage"
    learners = fit_folds(stage, "r", spec, X, target, n_folds=3)
    reg.save_bundle("btc", "reg", stage, fake_manifest(task="regression", classes=None,
                                                      members=[member_entry("r", spec, 3)]))
    out = Predictor.load(reg, "reg").predict_proba(feature_frame(X[:30]))
    assert out.columns == ["ts", "symbol", "prediction"]
    np.testing.assert_allclose(out["prediction"].to_numpy(), np.mean([lr.predict(X[:30]) for lr in learners], axis=0),
                               atol=1e-9)


def test_ensemble_json_combines_members(reg, trained, tmp_path):
    from hydraquant.models.ensemble import RegimeRouter, WeightedEnsemble
    from hydraquant.models.predictor import FeatureMismatchError, Predictor

    stage, learners, members, X = trained
    per = {m: np.mean([lr.predict_proba(X[:60]) for lr in learners[m]], axis=0) for m in ("a", "b")}

    weighted = copy_stage(stage, tmp_path / "w", ["a", "b"])
    (weighted / "ensemble.json").write_text(json.dumps(WeightedEnsemble({"a": 0.75, "b": 0.25}).to_json()))
    reg.save_bundle("btc", "w", weighted, fake_manifest(members=members, ensemble={"method": "weighted"}))
    out = Predictor.load(reg, "w").predict_proba(feature_frame(X[:60]))
    np.testing.assert_allclose(out.select("p_-1", "p_0", "p_1").to_numpy(), 0.75 * per["a"] + 0.25 * per["b"],
                               atol=1e-6)

    routed = copy_stage(stage, tmp_path / "r", ["a", "b"])
    router = RegimeRouter(hysteresis_bars=1, members={"calm": "a", "wild": "b"})
    (routed / "ensemble.json").write_text(json.dumps(router.to_json()))
    reg.save_bundle("btc", "r", routed, fake_manifest(members=members, ensemble={"method": "regime_router"}))
    pred = Predictor.load(reg, "r")
    regimes = np.where(np.arange(60) % 2 == 0, "calm", "wild")
    out = pred.predict_proba(feature_frame(X[:60]).with_columns(pl.Series("regime", regimes)))
    want = np.where((regimes == "calm")[:, None], per["a"], per["b"])
    np.testing.assert_allclose(out.select("p_-1", "p_0", "p_1").to_numpy(), want, atol=1e-6)
    with pytest.raises(FeatureMismatchError, match="routes by regime"):
        pred.predict_proba(feature_frame(X[:5]))

    missing = copy_stage(stage, tmp_path / "m", ["a", "b"])
    reg.save_bundle("btc", "m", missing, fake_manifest(members=members, ensemble={"method": "stacking"}))
    with pytest.raises(HydraError, match="declares ensemble method 'stacking' but has no ensemble.json"):
        Predictor.load(reg, "m")


def test_concurrent_writers_get_distinct_versions(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    stage = fake_stage(tmp_path)
    reg = ModelRegistry(tmp_path / "models")

    def save(i: int) -> str:
        return ModelRegistry(reg.root).save_bundle("u", "m", stage, fake_manifest(note=i)).version

    with ThreadPoolExecutor(4) as pool:
        versions = list(pool.map(save, range(8)))
    assert sorted(versions) == [f"v{i:04d}" for i in range(1, 9)]
    notes = {reg.verify(reg.resolve(f"m@{v}"))["note"] for v in versions}
    assert notes == set(range(8))  # every writer's own manifest landed intact


def test_move_staging(reg, tmp_path):
    stage = fake_stage(tmp_path)
    ref = reg.save_bundle("u", "m", stage, fake_manifest(), move=True)
    assert not stage.exists() and reg.verify(ref.path)["version"] == "v0001"


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.one_of(st.integers(1, 4), st.just("rollback")), max_size=12))
def test_promote_rollback_keep_pointer_consistent(tmp_path_factory, ops):
    """Any promote/rollback sequence leaves current == history[-1], an existing version,
    and rollback always returns to the version current just before the last change."""
    root = tmp_path_factory.mktemp("prop")
    reg = ModelRegistry(root / "models")
    stage = fake_stage(root)
    for _ in range(4):
        reg.save_bundle("u", "m", stage, fake_manifest())
    model = []  # reference implementation of the pointer history
    model.append("v0001")
    for op in ops:
        if op == "rollback":
            if len(model) < 2:
                with pytest.raises(HydraError):
                    reg.rollback("u", "m")
                continue
            model.pop()
            assert reg.rollback("u", "m").version == model[-1]
        else:
            v = f"v{op:04d}"
            if model[-1] != v:
                model.append(v)
            reg.promote(f"m@{v}")
        cur = reg.current("u", "m")
        assert cur == {"version": model[-1], "history": model}
        assert reg.resolve("m").name == model[-1]
