"""simulate -> bars -> features -> hand-trained bundle -> `hydraquant models ...` and `hydraquant predict`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from hydraquant.cli.main import main
from hydraquant.models.registry import ModelRegistry

FEATS = ["vol_5m", "MOI_1s", "dist_poc_atr", "trade_intensity_z"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
START = datetime(2024, 1, 1, 12, tzinfo=UTC)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A simulated lake with 1m bars and a registry holding two versions of one tiny LightGBM bundle."""
    from hydraquant.models.zoo import ModelSpec, make_learner
    from tests.bundle_world import direction_training_set

    root = tmp_path_factory.mktemp("models_cli")
    feats, X, y = direction_training_set(root, SYMBOLS, FEATS, START, seed=11)
    spec = ModelSpec(kind="lightgbm", params={"n_estimators": 20, "num_leaves": 7, "verbose": -1},
                     early_stopping_rounds=None, seed=3)
    stage = root / "stage"
    learners = []
    for k, rows in enumerate(np.array_split(np.arange(len(y)), 2)):
        learner = make_learner(spec, FEATS).fit(X[rows], y[rows])
        learner.save(stage / "members" / "lgbm" / f"fold_{k}")
        learners.append(learner)
    manifest = {
        "task": "classification", "classes": ["down", "up"], "features": FEATS, "interval": "1m",
        "feature_sets": FEATS, "label": {"spec": "fwd_5", "target": "label"},
        "members": [{"name": "lgbm", "spec": spec.model_dump(mode="json"),
                     "folds": [{"fold": k, "dir": f"members/lgbm/fold_{k}", "metrics": {}, "best_iteration": None}
                               for k in range(2)]}],
        "ensemble": {"method": "mean"}, "calibration": None,
        "metrics": {"oof": {"log_loss": 0.69, "roc_auc": 0.52}},
        "data": {"symbols": SYMBOLS, "start": "2024-01-01", "end": "2024-01-01T12:00", "rows": len(y)},
    }
    registry = ModelRegistry(root / "models")
    registry.save_bundle("sim", "lgbm", stage, manifest)
    registry.save_bundle("sim", "lgbm", stage, manifest)
    return root, feats, learners


def test_predict_writes_calibrated_rows_from_start_with_warmup(world, capsys):
    root, feats, learners = world
    out_file = root / "preds.parquet"
    code, out, err = run(capsys, "--lake", root / "lake", "predict", "--model", "lgbm", "--symbols", "BTCUSDT,ETHUSDT",
                         "--start", "2024-01-01T12:00", "--out", out_file, "--registry", root / "models")
    assert code == 0, err
    assert "sim/lgbm@v0001" in out and "wrote" in out
    preds = pl.read_parquet(out_file)
    assert preds.columns == ["ts", "symbol", "p_down", "p_up"]
    assert preds["ts"].min() == START and preds.height > 1400  # rows from start only, both symbols
    assert preds.schema["ts"] == pl.Datetime("us", "UTC")
    # equals the learners' fold average on features computed over the FULL history (warm-up honoured)
    direct = feats.filter(pl.col("ts") >= START)
    assert direct.select("ts", "symbol").equals(preds.select("ts", "symbol"))
    X = direct.select(FEATS).to_numpy()
    expected = np.mean([lr.predict_proba(X) for lr in learners], axis=0)
    np.testing.assert_allclose(preds.select("p_down", "p_up").to_numpy(), expected, atol=1e-6)

    csv = root / "preds.csv"
    code, _, err = run(capsys, "--lake", root / "lake", "predict", "--model", "sim/lgbm@v0002",
                       "--symbols", "ETHUSDT", "--start", "2024-01-01T20:00", "--out", csv, "--registry", root / "models")
    assert code == 0, err
    back = pl.read_csv(csv)
    late = feats.filter(pl.col("symbol") == "ETHUSDT", pl.col("ts") >= datetime(2024, 1, 1, 20, tzinfo=UTC))
    assert back.columns == ["ts", "symbol", "p_down", "p_up"] and back.height == late.height > 230
    assert set(back["symbol"]) == {"ETHUSDT"}


def test_models_list_show_promote_rollback(world, capsys):
    root, _, _ = world
    reg = ["--registry", root / "models"]
    code, out, err = run(capsys, "models", "list", *reg)
    assert code == 0, err
    assert "v0001" in out and "v0002" in out and "oof.log_loss" in out and "0.69" in out
    code, out, err = run(capsys, "--set", f"registry.root={root / 'models'}", "models", "list")
    assert code == 0 and "v0002" in out, err  # config key registry.root works too

    code, out, err = run(capsys, "models", "show", "lgbm", *reg)
    assert code == 0, err
    assert "sim/lgbm@v0001 (current)" in out and "4 (vol_5m" in out and "down, up" in out
    assert "lgbm (lightgbm, 2 folds)" in out and "files: 4 ok, 0 failed" in out and "roc_auc" in out

    code, out, err = run(capsys, "models", "promote", "lgbm@v0002", *reg)
    assert code == 0 and "current: sim/lgbm@v0002" in out, err
    current = json.loads((root / "models" / "sim" / "lgbm" / "current.json").read_text())
    assert current == {"version": "v0002", "history": ["v0001", "v0002"]}
    code, out, err = run(capsys, "models", "rollback", "sim/lgbm", *reg)
    assert code == 0 and "current: sim/lgbm@v0001" in out, err
    code, out, err = run(capsys, "models", "rollback", "sim/lgbm", *reg)
    assert code == 2 and "no earlier current version" in err


def test_tampered_bundle_and_unknown_model_fail_with_one_clear_line(world, capsys, tmp_path):
    import shutil

    root, _, _ = world
    models = tmp_path / "models"
    shutil.copytree(root / "models", models)
    model_file = next((models / "sim" / "lgbm" / "v0002" / "members" / "lgbm" / "fold_0").glob("*.txt"))
    data = bytearray(model_file.read_bytes())
    data[100] ^= 1  # one byte
    model_file.write_bytes(bytes(data))
    rel = f"members/lgbm/fold_0/{model_file.name}"

    code, out, err = run(capsys, "--lake", root / "lake", "predict", "--model", "lgbm@v0002", "--symbols", "BTCUSDT",
                         "--registry", models, "--out", tmp_path / "p.parquet")
    assert code != 0
    assert f"{rel} is tampered" in err and "do not load it" in err and "Traceback" not in err
    assert err.count("error:") == 1 and not (tmp_path / "p.parquet").exists()

    code, out, err = run(capsys, "models", "show", "lgbm@v0002", "--registry", models)
    assert code != 0 and "files: 3 ok, 1 failed" in out and f"tampered: {rel}" in out
    code, _, err = run(capsys, "models", "promote", "lgbm@v0002", "--registry", models)
    assert code != 0 and "is tampered" in err
    # the intact version still predicts
    code, _, err = run(capsys, "--lake", root / "lake", "predict", "--model", "lgbm@v0001", "--symbols", "BTCUSDT",
                       "--start", "2024-01-01T23:00", "--registry", models)
    assert code == 0, err

    code, _, err = run(capsys, "predict", "--model", "nope", "--symbols", "BTCUSDT", "--registry", models)
    assert code == 2 and "no model 'nope'" in err and "sim/lgbm" in err
