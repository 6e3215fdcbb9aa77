"""Every preset in configs/ validates, and runs end to end on a reduced slice of its own data.

Reductions only shrink the data and the number of trees/folds; labels, features, learners,
ensembles and calibration are the preset's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hydraquant.data.lake import Lake
from hydraquant.pipeline.run import run_pipeline
from hydraquant.pipeline.run_config import list_presets, load_run_config

REAL = "../shared/data/real"
UM = f"{REAL}/binance-vision/data/futures/um/monthly/klines"

SMALL: dict[str, list[str]] = {
    "quickstart": ["data.simulate.days=1", "cv.n_splits=2", "models.0.learners.0.params.n_estimators=30"],
    "hydra_v3_sim": ["data.simulate.activity=0.05", "cv.n_splits=2", "models.0.learners.0.params.n_estimators=30",
                     "models.1.learners.0.params.n_estimators=30", "data.interval='1s'"],
    "hydra_v3_klines": [f"data.files=['{UM}/FILUSDT/1m/FILUSDT-1m-2024-11.zip']", "cv.n_splits=2",
                        "models.0.learners.0.params.n_estimators=30", "models.1.learners.0.params.n_estimators=30"],
    "hydra_models": [f"data.files=['{UM}/NEARUSDT/1m/NEARUSDT-1m-2023-08.zip']", "cv.n_splits=2",
                     "models.0.learners.0.params.iterations=40", "models.1.learners.0.params.n_estimators=20",
                     "models.2.learners.0.params.n_estimators=40", "models.3.learners.0.params.n_estimators=40"],
    "signal_discovery": ["cv.n_splits=2", "models.0.learners.0.params.n_estimators=40"],
    "novosky_m15": ["cv.n_splits=2", "models.0.learners.0.params.n_estimators=20",
                    "models.0.learners.1.params.n_estimators=40", "models.0.learners.2.params.n_estimators=40"],
    "regime_router": ["data.simulate.days=1", "cv.n_splits=2", "models.0.learners.0.params.n_estimators=30"],
}


def test_every_preset_has_a_reduced_run_here() -> None:
    assert set(list_presets()) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_preset_validates(name: str) -> None:
    cfg, _ = load_run_config(name)
    assert cfg.name == name and cfg.models and cfg.description


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_preset_runs_end_to_end(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, path = load_run_config(name, SMALL[name])
    if cfg.data.source == "files":
        root = Path(__file__).resolve().parents[2]
        if not (root / REAL).is_dir():
            pytest.skip(f"real market data not found at {root / REAL}")
        monkeypatch.chdir(root)  # presets name their files relative to the project root
    res = run_pipeline(cfg, lake=Lake(tmp_path / "lake"), registry_root=tmp_path / "models",
                       runs_root=tmp_path / "runs", config_dir=path.parent)
    assert res.models and len(res.bundles) == len(res.models)
    assert res.report_path.is_file() and (res.out_dir / "metrics.json").is_file()
    for model in res.models:
        assert model.metrics["oof"]["n"] > 0
    if any(m.backtest for m in cfg.models):
        assert res.backtest is not None
