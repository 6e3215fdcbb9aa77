"""Train one model of a run: holdout split, purged CV per learner, ensemble, calibration, holdout scores.

Why the order matters: the holdout is cut first (by time, purged so no
development label reaches into it), then every learner is cross-validated on
the development rows only.  The ensemble weights and the calibrator are
fitted on out-of-fold predictions — never on rows a fold model trained on —
and the holdout is touched exactly once, at the end, by the finished bundle.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.pipeline.run_config import CVSpec, HoldoutSpec, LearnerEntry, ModelJob
from hydraquant.validation.metrics import classification_report, encode_labels, regression_report

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """Everything a bundle, a report and a backtest need from one trained model."""

    name: str
    job: ModelJob
    task: str
    features: list[str]
    classes: list | None
    cv: dict[str, Any]  # learner name -> CVResult
    oof: np.ndarray  # combined (uncalibrated) out-of-fold output, dev rows
    oof_mask: np.ndarray
    y_dev: np.ndarray
    holdout_keys: pl.DataFrame  # ts, symbol of the holdout rows
    y_holdout: np.ndarray
    holdout_raw: np.ndarray
    holdout: np.ndarray  # calibrated
    ensemble_json: dict | None
    calibrator_json: dict | None
    metrics: dict[str, Any]
    fold_table: pl.DataFrame
    importance: pl.DataFrame | None
    shap: pl.DataFrame | None
    holdout_start: Any
    rows: dict[str, int] = field(default_factory=dict)

    def holdout_frame(self) -> pl.DataFrame:
        """ts, symbol, the true label and the calibrated output (``p_<class>`` / ``prediction``) per holdout row."""
        keys = self.holdout_keys.with_columns(pl.Series("y_true", self.y_holdout))
        if self.task == "regression":
            return keys.with_columns(pl.Series("prediction", np.asarray(self.holdout, dtype=np.float64)))
        return keys.with_columns(
            pl.Series(f"p_{c}", self.holdout[:, i], dtype=pl.Float64) for i, c in enumerate(self.classes or [])
        )


def holdout_start(ts: pl.Series, spec: HoldoutSpec) -> Any:
    """First timestamp of the holdout: ``spec.start`` or the (1 - fraction) point of the distinct times."""
    if spec.start is not None:
        from hydraquant.data.lake import parse_time_bound

        return parse_time_bound(spec.start)
    uniq = ts.unique().sort()
    if uniq.len() < 10:
        raise HydraError(f"only {uniq.len()} distinct timestamps: too few to hold out a test period",
                         hint="use more data (longer range or more days)")
    return uniq[int(uniq.len() * (1.0 - spec.fraction))]


def make_splitter(cv: CVSpec, t: np.ndarray, t_end: np.ndarray):
    from hydraquant.validation import splits as S

    if cv.kind == "purged_walk_forward":
        return S.PurgedWalkForward(cv.n_splits, embargo=cv.embargo, t=t, t_end=t_end)
    if cv.kind == "expanding":
        return S.ExpandingWindow(cv.n_splits, embargo=cv.embargo, t=t, t_end=t_end)
    return S.RollingWindow(cv.n_splits, embargo=cv.embargo, t=t, t_end=t_end)


def model_spec(entry: LearnerEntry, task: str):
    from hydraquant.models.zoo import ModelSpec

    return ModelSpec(kind=entry.kind, task=task, params=dict(entry.params), class_weight=entry.class_weight,
                     early_stopping_rounds=entry.early_stopping_rounds, seed=entry.seed,
                     categorical=tuple(entry.categorical))


def _combine(job: ModelJob, outs: dict[str, np.ndarray], y_idx: np.ndarray | None, mask: np.ndarray,
             task: str, t: np.ndarray, t_end: np.ndarray) -> tuple[np.ndarray, Any]:
    """Combine member outputs on the OOF rows; returns (combined, fitted ensemble object or None)."""
    from hydraquant.models import ensemble as E

    if len(outs) == 1 or job.ensemble in ("mean", "fold_average") or task == "regression":
        return np.mean(np.stack(list(outs.values())), axis=0), None
    if job.ensemble == "auc_pr_weighted":
        ens = E.WeightedEnsemble(E.auc_pr_weights(outs, y_idx, mask=mask))
    elif job.ensemble == "vote":
        ens = E.VoteEnsemble()
    else:  # stack: fitted on time-ordered OOF rows only
        ens = E.StackedEnsemble().fit({k: v[mask] for k, v in outs.items()}, y_idx[mask], order=t[mask],
                                      t_end=t_end[mask])
    return np.asarray(ens.predict_proba(outs), dtype=np.float64), ens


def _score(task: str, y: np.ndarray, out: np.ndarray, classes: list | None) -> dict[str, Any]:
    if y.size == 0:
        return {"n": 0}
    if task == "regression":
        return regression_report(y, out)
    return classification_report(y, out, classes)


def _importances(cvs: dict[str, Any], features: list[str]) -> pl.DataFrame | None:
    from hydraquant.models.explain import fold_importance

    frames = [fold_importance(cv) for cv in cvs.values()]
    if not frames:
        return None
    return (pl.concat(frames).group_by("feature").agg(pl.col("mean").mean(), pl.col("std").mean())
            .sort("mean", descending=True))


def _shap(cvs: dict[str, Any], X: np.ndarray, features: list[str], seed: int) -> pl.DataFrame | None:
    from hydraquant.models.explain import global_importance, shap_values

    for cv in cvs.values():
        learner = cv.folds[-1].learner
        if learner.tree_model() is None or X.shape[0] == 0:
            continue
        try:
            values = shap_values(learner, X, max_rows=1000, seed=seed)
        except Exception as exc:  # noqa: BLE001 - explanations must never sink a finished training run
            log.warning("SHAP failed for %s: %s", learner.spec.kind, exc)
            return None
        return global_importance(values, features)
    return None


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_model(
    name: str,
    job: ModelJob,
    frame: pl.DataFrame,
    features: list[str],
    *,
    cv: CVSpec,
    holdout: HoldoutSpec,
    checkpoint_root: Path | None,
    data_hash: str,
    progress: bool = False,
) -> TrainedModel:
    """Holdout split, CV per learner, ensemble + calibration on OOF, then score the holdout once."""
    from hydraquant.models.calibration import RegressionCalibrator, make_calibrator
    from hydraquant.models.predictor import member_output
    from hydraquant.models.trainer import cross_validate

    target, task = job.target, job.task
    frame = frame.sort(["ts", "symbol"])
    start = holdout_start(frame["ts"], holdout)
    dev = frame.filter((pl.col("ts") < start) & (pl.col("t_end") < start))
    hold = frame.filter(pl.col("ts") >= start)
    if job.target_transform == "mfe_clip_log1p":
        from hydraquant.labels import MfeTargetTransform

        # caps fitted on development rows only; the holdout never shapes its own targets
        tf = MfeTargetTransform().fit(dev.rename({target: "score"}) if target != "score" else dev)
        dev = _mfe_target(tf, dev, target)
        hold = _mfe_target(tf, hold, target)
    if dev.height < 50 * cv.n_splits:
        raise HydraError(f"model {name}: only {dev.height} development rows for {cv.n_splits} folds",
                         hint="use more data, fewer folds or a smaller holdout")
    X_dev = dev.select(features).cast(pl.Float64).to_numpy()
    X_hold = hold.select(features).cast(pl.Float64).to_numpy()
    y_dev = dev[target].to_numpy()
    y_hold = hold[target].to_numpy()
    w_dev = dev["weight"].to_numpy() if "weight" in dev.columns else None
    t_dev, e_dev = dev["ts"], dev["t_end"]
    classes = sorted(np.unique(y_dev).tolist()) if task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise HydraError(f"model {name}: the development rows hold a single class {classes}",
                         hint="check the label spec (horizon, thresholds) or use more data")
    splitter = make_splitter(cv, t_dev, e_dev)
    cvs: dict[str, Any] = {}
    for entry in job.learners:
        spec = model_spec(entry, task)
        ckpt = checkpoint_root / name / entry.name if checkpoint_root else None
        fp = fingerprint(job.model_dump(mode="json"), cv.model_dump(mode="json"), data_hash, features, entry.name)
        log.info("training %s / %s (%s) on %d rows x %d features", name, entry.name, entry.kind,
                 X_dev.shape[0], len(features))
        cvs[entry.name] = cross_validate(
            X_dev, y_dev, spec=spec, splitter=splitter, feature_names=features, times=(t_dev, e_dev),
            sample_weight=w_dev, checkpoint_dir=ckpt, progress=progress,
            validation_fraction=cv.validation_fraction, fingerprint=fp,
        )
    mask = np.all([c.oof_mask for c in cvs.values()], axis=0)
    oofs = {k: c.oof for k, c in cvs.items()}
    y_idx = encode_labels(y_dev, classes) if classes is not None else None
    t_us, e_us = (dev[c].dt.epoch("us").to_numpy() for c in ("ts", "t_end"))
    oof, ens = _combine(job, oofs, y_idx, mask, task, t_us, e_us)
    hold_members = ({k: member_output([f.learner for f in c.folds], X_hold, task, classes) for k, c in cvs.items()}
                    if hold.height else {})
    if hold.height:
        hold_raw = (np.asarray(ens.predict_proba(hold_members), dtype=np.float64) if ens is not None
                    else np.mean(np.stack(list(hold_members.values())), axis=0))
    else:
        hold_raw = np.empty((0, len(classes or [])) if classes else 0)
    cal_json = None
    hold_cal = hold_raw
    # a stacked ensemble calibrates its meta output on its own later slice; calibrating again on
    # OOF rows the meta learner trained on would fit to in-sample outputs
    if job.calibration != "none" and job.ensemble != "stack":
        if task == "regression":
            cal = RegressionCalibrator().fit(oof[mask], y_dev[mask])
        else:
            cal = make_calibrator(job.calibration).fit(oof[mask], y_idx[mask])
        cal_json = cal.to_json()
        if hold.height:
            hold_cal = np.asarray(cal.transform(hold_raw), dtype=np.float64)
    metrics = {
        "oof": _score(task, y_dev[mask], oof[mask], classes),
        "holdout_raw": _score(task, y_hold, hold_raw, classes) if hold.height else {"n": 0},
        "holdout": _score(task, y_hold, hold_cal, classes) if hold.height else {"n": 0},
        "learners": {k: _score(task, y_dev[c.oof_mask], c.oof[c.oof_mask], classes) for k, c in cvs.items()},
        "base_rate_holdout": (np.mean(encode_labels(y_hold, classes)[:, None] == np.arange(len(classes)), axis=0)
                              .tolist() if classes and hold.height else None),
    }
    fold_table = pl.concat([c.fold_table().with_columns(pl.lit(k).alias("learner")) for k, c in cvs.items()],
                           how="diagonal_relaxed")
    return TrainedModel(
        name=name, job=job, task=task, features=features, classes=classes, cv=cvs, oof=oof, oof_mask=mask,
        y_dev=y_dev, holdout_keys=hold.select("ts", "symbol"), y_holdout=y_hold, holdout_raw=hold_raw,
        holdout=hold_cal, ensemble_json=ens.to_json() if ens is not None else None, calibrator_json=cal_json,
        metrics=metrics, fold_table=fold_table, importance=_importances(cvs, features),
        shap=_shap(cvs, X_hold if hold.height else X_dev, features, job.learners[0].seed),
        holdout_start=start, rows={"development": dev.height, "holdout": hold.height, "oof": int(mask.sum())},
    )


def _mfe_target(tf, frame: pl.DataFrame, target: str) -> pl.DataFrame:
    """log1p(clip(score, 0, cap of its key)) with the caps ``tf`` learned on development rows."""
    cap = pl.col("target_key").cast(pl.String).replace_strict(tf.caps, default=None, return_dtype=pl.Float64)
    return frame.with_columns(pl.col(target).clip(0.0, cap).log1p().alias(target)).filter(
        pl.col(target).is_not_null())


def stage_bundle(model: TrainedModel, directory: Path) -> dict[str, Any]:
    """Write the model files into ``directory`` (members/<learner>/fold_<k>/, calibration, ensemble).

    Returns the manifest's ``members`` / ``ensemble`` / ``calibration`` entries.
    """
    members = []
    for name, cvres in model.cv.items():
        entry = next(e for e in model.job.learners if e.name == name)
        folds = []
        for f in cvres.folds:
            rel = f"members/{name}/fold_{f.fold}"
            (directory / rel).mkdir(parents=True, exist_ok=True)
            f.learner.save(directory / rel)
            folds.append({"fold": f.fold, "dir": rel, "metrics": f.metrics, "best_iteration": f.best_iteration})
        members.append({"name": name, "spec": model_spec(entry, model.task).model_dump(mode="json"),
                        "folds": folds})
    if model.calibrator_json is not None:
        (directory / "calibration.json").write_text(json.dumps(model.calibrator_json))
    if model.ensemble_json is not None:
        (directory / "ensemble.json").write_text(json.dumps(model.ensemble_json))
    return {
        "members": members,
        "ensemble": {"method": model.job.ensemble if model.ensemble_json is not None else "mean"},
        "calibration": {"method": model.job.calibration} if model.calibrator_json is not None else None,
    }
