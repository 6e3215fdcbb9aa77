"""Train one model of a run: holdout split, purged CV per learner, ensemble, calibration, holdout scores.

Why the order matters: the holdout is cut first (by time, purged so no
development label reaches into it), then every learner is cross-validated on
the development rows only.  The ensemble weights and the calibrator are
fitted on out-of-fold predictions — never on rows a fold model trained on —
and the holdout is touched exactly once, at the end, by the finished bundle.

With combinatorial purged CV every development row is tested by several
splits; its OOF value is the mean of those out-of-sample predictions (see
:class:`hydraquant.models.trainer.CVResult`), and the spread over the CPCV
backtest paths is reported next to it.  A regime-router job trains one
specialist per (hysteresis-confirmed) regime on that regime's rows, with its
own purged CV, and routes OOF and holdout rows exactly as the bundle will.
In every case the bundle keeps each member's fold models and averages them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.models.matrix import model_matrix
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
    member_learners: dict[str, str] = field(default_factory=dict)  # bundle member -> learner name
    ensemble_meta: dict[str, Any] = field(default_factory=dict)  # extra manifest "ensemble" keys

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

    # "0s" (the default) means no embargo; interval parsing rightly refuses a zero-length interval
    embargo: str | int = 0 if re.fullmatch(r"\s*0+[a-z]*\s*", cv.embargo) else cv.embargo
    if cv.kind == "purged_walk_forward":
        return S.PurgedWalkForward(cv.n_splits, embargo=embargo, t=t, t_end=t_end)
    if cv.kind == "expanding":
        return S.ExpandingWindow(cv.n_splits, embargo=embargo, t=t, t_end=t_end)
    if cv.kind == "cpcv":
        n_groups, n_test = cv.groups
        return S.CombinatorialPurgedCV(n_groups, n_test, embargo=embargo, t=t, t_end=t_end)
    return S.RollingWindow(cv.n_splits, embargo=embargo, t=t, t_end=t_end)


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


ACTIVE_REGIME = "_active_regime"
"""Column a run adds to a router job's rows: the regime its router has confirmed at that bar
(hysteresis over the symbol's whole bar history, so it is the same on dev and holdout rows)."""
REGIME_HISTORY_BARS = 2000
"""Bars of history (beyond the labeler's warm-up) a cold predictor loads so that its router has
confirmed the same regime as the run by the first predicted bar."""


@dataclass(frozen=True)
class _Dev:
    """Development arrays shared by every member of one model."""

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray | None
    t: pl.Series
    t_end: pl.Series
    X_hold: np.ndarray
    classes: list | None
    task: str
    features: list[str]


@dataclass
class _Members:
    """Cross-validated members of one model and their combined raw outputs."""

    cvs: dict[str, Any]
    scores: dict[str, Any]
    oof: np.ndarray
    mask: np.ndarray
    hold_raw: np.ndarray
    ensemble: Any | None
    member_learners: dict[str, str] = field(default_factory=dict)
    ensemble_meta: dict[str, Any] = field(default_factory=dict)
    oof_extra: dict[str, Any] = field(default_factory=dict)


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
    regime_lookback_bars: int = 0,
) -> TrainedModel:
    """Holdout split, CV per learner (per regime for a router), ensemble + calibration on OOF,
    then score the holdout once.  ``regime_lookback_bars``: history a cold predictor of a
    router bundle must load (written into the manifest)."""
    from hydraquant.models.calibration import RegressionCalibrator, make_calibrator

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
    if dev.height < 50 * cv.n_blocks:
        raise HydraError(f"model {name}: only {dev.height} development rows for {cv.n_blocks} CV blocks",
                         hint="use more data, fewer folds/groups or a smaller holdout")
    y_dev = dev[target].to_numpy()
    y_hold = hold[target].to_numpy()
    classes = sorted(np.unique(y_dev).tolist()) if task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise HydraError(f"model {name}: the development rows hold a single class {classes}",
                         hint="check the label spec (horizon, thresholds) or use more data")
    d = _Dev(X=model_matrix(dev, features), y=y_dev,
             w=dev["weight"].to_numpy() if "weight" in dev.columns else None, t=dev["ts"], t_end=dev["t_end"],
             X_hold=model_matrix(hold, features), classes=classes, task=task,
             features=features)
    run = _MemberRun(name, job, cv, checkpoint_root, data_hash, progress)
    if job.router is not None:
        members = _fit_router(run, d, dev, hold, regime_lookback_bars)
    else:
        members = _fit_pooled(run, d, dev)
    oof, mask, hold_raw = members.oof, members.mask, members.hold_raw
    y_idx = encode_labels(y_dev, classes) if classes is not None else None
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
    cvs = members.cvs
    metrics = {
        "oof": {**_score(task, y_dev[mask], oof[mask], classes), **members.oof_extra},
        "holdout_raw": _score(task, y_hold, hold_raw, classes) if hold.height else {"n": 0},
        "holdout": _score(task, y_hold, hold_cal, classes) if hold.height else {"n": 0},
        "learners": members.scores,
        "base_rate_holdout": (np.mean(encode_labels(y_hold, classes)[:, None] == np.arange(len(classes)), axis=0)
                              .tolist() if classes and hold.height else None),
    }
    fold_table = pl.concat([c.fold_table().with_columns(pl.lit(k).alias("learner")) for k, c in cvs.items()],
                           how="diagonal_relaxed")
    ens = members.ensemble
    return TrainedModel(
        name=name, job=job, task=task, features=features, classes=classes, cv=cvs, oof=oof, oof_mask=mask,
        y_dev=y_dev, holdout_keys=hold.select("ts", "symbol"), y_holdout=y_hold, holdout_raw=hold_raw,
        holdout=hold_cal, ensemble_json=ens.to_json() if ens is not None else None, calibrator_json=cal_json,
        metrics=metrics, fold_table=fold_table, importance=_importances(cvs, features),
        shap=_shap(cvs, d.X_hold if hold.height else d.X, features, job.learners[0].seed),
        holdout_start=start, rows={"development": dev.height, "holdout": hold.height, "oof": int(mask.sum())},
        member_learners=members.member_learners, ensemble_meta=members.ensemble_meta,
    )


@dataclass(frozen=True)
class _MemberRun:
    """What every member's cross-validation of one model shares (names, CV, checkpoints)."""

    name: str
    job: ModelJob
    cv: CVSpec
    checkpoint_root: Path | None
    data_hash: str
    progress: bool

    def cross_validate(self, entry: LearnerEntry, d: _Dev, rows: np.ndarray | None = None,
                       tag: str = "") -> tuple[Any, Any]:
        """Purged CV of one learner on all development rows, or on ``rows`` (a regime's)."""
        from hydraquant.models.trainer import cross_validate

        X, y, w, t, e = d.X, d.y, d.w, d.t, d.t_end
        if rows is not None:
            X, y, t, e = X[rows], y[rows], t.gather(rows), e.gather(rows)
            w = None if w is None else w[rows]
        splitter = make_splitter(self.cv, t, e)
        ckpt = self.checkpoint_root / self.name if self.checkpoint_root else None
        if ckpt is not None:
            ckpt = (ckpt / tag / entry.name) if tag else ckpt / entry.name
        parts = [self.job.model_dump(mode="json"), self.cv.model_dump(mode="json"), self.data_hash, d.features,
                 entry.name] + ([tag] if tag else [])
        log.info("training %s / %s%s (%s) on %d rows x %d features", self.name, entry.name,
                 f" [{tag}]" if tag else "", entry.kind, X.shape[0], len(d.features))
        res = cross_validate(
            X, y, spec=model_spec(entry, d.task), splitter=splitter, feature_names=d.features, times=(t, e),
            sample_weight=w, checkpoint_dir=ckpt, progress=self.progress,
            validation_fraction=self.cv.validation_fraction, fingerprint=fingerprint(*parts),
        )
        return res, splitter


def _fit_pooled(run: _MemberRun, d: _Dev, dev: pl.DataFrame) -> _Members:
    """Every learner on all development rows, combined by the job's ensemble."""
    from hydraquant.models.predictor import member_output

    job, task, classes = run.job, d.task, d.classes
    cvs: dict[str, Any] = {}
    splitter = None
    for entry in job.learners:
        cvs[entry.name], splitter = run.cross_validate(entry, d)
    mask = np.all([c.oof_mask for c in cvs.values()], axis=0)
    oofs = {k: c.oof for k, c in cvs.items()}
    y_idx = encode_labels(d.y, classes) if classes is not None else None
    t_us, e_us = (dev[c].dt.epoch("us").to_numpy() for c in ("ts", "t_end"))
    oof, ens = _combine(job, oofs, y_idx, mask, task, t_us, e_us)
    if d.X_hold.shape[0]:
        hold_members = {k: member_output([f.learner for f in c.folds], d.X_hold, task, classes)
                        for k, c in cvs.items()}
        hold_raw = (np.asarray(ens.predict_proba(hold_members), dtype=np.float64) if ens is not None
                    else np.mean(np.stack(list(hold_members.values())), axis=0))
    else:
        hold_raw = np.empty((0, len(classes)) if classes else 0)
    extra = {}
    if run.cv.kind == "cpcv":  # each row was tested several times: report the spread over paths too
        extra["cv_paths"] = cpcv_path_scores(job, cvs, splitter, ens, d.y, classes, task)
    return _Members(cvs=cvs, scores={k: _score(task, d.y[c.oof_mask], c.oof[c.oof_mask], classes)
                                     for k, c in cvs.items()},
                    oof=oof, mask=mask, hold_raw=hold_raw, ensemble=ens, oof_extra=extra)


def cpcv_path_scores(job: ModelJob, cvs: dict[str, Any], splitter: Any, ens: Any, y: np.ndarray,
                     classes: list | None, task: str) -> dict[str, Any]:
    """The task metric on each CPCV backtest path of the combined (uncalibrated) output.

    Members are combined per path as the OOF was (the fitted weights or vote); a
    stacked ensemble's meta learner was fitted on these very rows, so its paths
    are scored on the members' mean instead.  ``std`` is the sample std over paths.
    """
    from hydraquant.models.trainer import path_predictions

    metric = "roc_auc" if task == "classification" else "rmse"
    per_learner = {k: path_predictions(c, splitter) for k, c in cvs.items()}
    use_ens = ens is not None and job.ensemble != "stack"
    scores = []
    for p in range(splitter.n_paths):
        outs = {k: paths[p] for k, paths in per_learner.items()}
        out = (np.asarray(ens.predict_proba(outs), dtype=np.float64) if use_ens
               else np.mean(np.stack(list(outs.values())), axis=0))
        ok = np.isfinite(out).all(axis=1) if out.ndim == 2 else np.isfinite(out)
        value = _score(task, y[ok], out[ok], classes).get(metric)
        scores.append(float("nan") if value is None else float(value))
    arr = np.asarray(scores, dtype=np.float64)
    return {
        "n_groups": splitter.n_groups, "n_test_groups": splitter.k_test_groups,
        "n_splits": splitter.get_n_splits(), "n_paths": splitter.n_paths, "metric": metric,
        "combined_by": job.ensemble if use_ens else "mean",
        "mean": float(np.nanmean(arr)), "std": float(np.nanstd(arr, ddof=1)) if arr.size > 1 else 0.0,
        "min": float(np.nanmin(arr)), "max": float(np.nanmax(arr)), "per_path": scores,
    }


def _fit_router(run: _MemberRun, d: _Dev, dev: pl.DataFrame, hold: pl.DataFrame, lookback: int) -> _Members:
    """One specialist per confirmed regime on that regime's rows (+ an optional all-rows fallback).

    Specialists are trained on the rows whose *active* regime (after hysteresis)
    is theirs — the rows the router will send them — so the routed OOF of a row
    is its own specialist's out-of-fold prediction, and rows of no specialist
    take the fallback's.  A row whose specialist has no OOF value (its first
    walk-forward block) stays unscored instead of borrowing the fallback's,
    because in use that specialist would answer it.
    """
    from hydraquant.models.ensemble import RegimeRouter
    from hydraquant.models.predictor import member_output
    from hydraquant.models.trainer import align_proba

    job, spec, task, classes = run.job, run.job.router, d.task, d.classes
    assert spec is not None and classes is not None  # validated by ModelJob
    if ACTIVE_REGIME not in dev.columns:
        raise HydraError(f"model {run.name}: the training rows carry no {ACTIVE_REGIME!r} column",
                         hint="train router jobs through run_pipeline (it confirms the regimes)")
    active_dev = np.asarray(dev[ACTIVE_REGIME].to_list(), dtype=object)
    active_hold = np.asarray(hold[ACTIVE_REGIME].to_list(), dtype=object)
    n, k = d.y.shape[0], len(classes)
    cvs: dict[str, Any] = {}
    scores: dict[str, Any] = {}
    owner: dict[str, str] = {}
    base: dict[str, np.ndarray] = {}
    members: dict[Any, list[str]] = {}
    table: dict[str, dict[str, Any]] = {}
    min_rows = max(spec.min_rows, 50 * run.cv.n_blocks)
    for regime in dev[ACTIVE_REGIME].drop_nulls().unique().sort().to_list():
        rows = np.flatnonzero((dev[ACTIVE_REGIME] == regime).fill_null(False).to_numpy())
        info = table.setdefault(str(regime), {"development_rows": int(rows.size)})
        if rows.size < min_rows or np.unique(d.y[rows]).size < 2:
            info["specialist"] = None
            info["skipped"] = (f"{rows.size} rows < {min_rows}" if rows.size < min_rows else "a single class")
            log.warning("model %s: regime %s gets no specialist (%s)", run.name, regime, info["skipped"])
            continue
        for entry in job.learners:
            member = f"{entry.name}__regime_{regime}"
            res, _ = run.cross_validate(entry, d, rows, tag=f"regime_{regime}")
            aligned = align_proba(res.oof, res.classes, classes)
            aligned[~res.oof_mask] = np.nan
            full = np.full((n, k), np.nan)
            full[rows] = aligned
            cvs[member], owner[member], base[member] = res, entry.name, full
            scores[member] = _score(task, d.y[rows][res.oof_mask], aligned[res.oof_mask], classes)
            members.setdefault(regime, []).append(member)
        info["specialist"] = members[regime]
    fallback = None
    if spec.fallback is not None:
        entry = next(e for e in job.learners if e.name == spec.fallback)
        fallback = f"{entry.name}__all"
        res, _ = run.cross_validate(entry, d, None, tag="all")
        cvs[fallback], owner[fallback] = res, entry.name
        base[fallback] = align_proba(res.oof, res.classes, classes)
        base[fallback][~res.oof_mask] = np.nan
        scores[fallback] = _score(task, d.y[res.oof_mask], base[fallback][res.oof_mask], classes)
    if not members and fallback is None:
        raise HydraError(f"model {run.name}: no regime of {spec.regime!r} has enough rows for a specialist",
                         hint=f"each needs >= {min_rows} development rows of two classes; lower router.min_rows, "
                              "use more data or set router.fallback")
    router = RegimeRouter(spec.hysteresis_bars, spec.min_confidence, spec.default, members=members,
                          fallback_member=fallback)
    oof = router.predict_active(base, active_dev)
    for regime, names in members.items():  # a specialist without OOF output leaves its row unscored
        spec_out = np.mean(np.stack([base[m] for m in names]), axis=0)
        oof[(active_dev == regime) & ~np.isfinite(spec_out).all(axis=1)] = np.nan
    mask = np.isfinite(oof).all(axis=1)
    if d.X_hold.shape[0]:
        hold_base = {m: member_output([f.learner for f in c.folds], d.X_hold, task, classes) for m, c in cvs.items()}
        hold_raw = router.predict_active(hold_base, active_hold)
        lost = ~np.isfinite(hold_raw).all(axis=1)
        if lost.any():
            raise HydraError(
                f"model {run.name}: {int(lost.sum())} holdout row(s) route to regime(s) "
                f"{sorted({str(r) for r in active_hold[lost]})} that have no specialist, and there is no fallback",
                hint="set models.router.fallback to one of the job's learners, or use more data")
        hold_spec = router.specialist_rows(hold_base, active_hold)
    else:
        hold_raw, hold_spec = np.empty((0, k)), np.zeros(0, dtype=bool)
    hold_counts = hold.group_by(ACTIVE_REGIME).len() if hold.height else None
    for row in (hold_counts.iter_rows() if hold_counts is not None else []):
        if row[0] is not None:
            table.setdefault(str(row[0]), {"development_rows": 0, "specialist": None})["holdout_rows"] = int(row[1])
    routing = {
        "regime": spec.regime, "hysteresis_bars": spec.hysteresis_bars, "min_confidence": spec.min_confidence,
        "default": spec.default, "fallback": fallback, "regimes": table,
        "oof_rows_by_specialist": int(router.specialist_rows(base, active_dev)[mask].sum()),
        "oof_rows_by_fallback": int((~router.specialist_rows(base, active_dev))[mask].sum()),
        "holdout_rows_by_fallback": int((~hold_spec).sum()),
    }
    return _Members(cvs=cvs, scores=scores, oof=oof, mask=mask, hold_raw=hold_raw, ensemble=router,
                    member_learners=owner, oof_extra={"routing": routing},
                    ensemble_meta={"regime": spec.regime, "regime_column": "regime",
                                   "regime_lookback_bars": int(lookback)})


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
        learner = model.member_learners.get(name, name)
        entry = next(e for e in model.job.learners if e.name == learner)
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
        "ensemble": {"method": model.job.ensemble if model.ensemble_json is not None else "mean",
                     **model.ensemble_meta},
        "calibration": {"method": model.job.calibration} if model.calibrator_json is not None else None,
    }
