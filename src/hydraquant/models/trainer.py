"""Purged cross-validation training with out-of-fold predictions and resumable folds (SPEC M10).

Why this module exists: every number we later trust (calibration, ensemble
weights, backtests of OOF signals) is only honest if each prediction comes
from a model that never saw that row, nor any row whose label window overlaps
it.  The splitter already purges/embargoes train against test; here we also
carve the early-stopping validation slice from the *end* of the training
fold (never from the test fold) and purge the fit set against that slice,
so early stopping cannot peek at labels that overlap it.

Folds are checkpointed (``fold_<k>/``: the learner's safe files, ``oof.npy``,
``fold.json``) because training runs take hours; a killed run restarts at
the first unfinished fold.  A checkpoint is reused only when everything that
determines it is unchanged: the caller's ``fingerprint`` (config + data hash),
a hash of X/y/weights, the model spec, feature list, classes and the exact
train/test indices.  Anything else is discarded and retrained.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.validation.metrics import classification_report, regression_report
from hydraquant.validation.splits import purge_train, sample_times

if TYPE_CHECKING:
    from hydraquant.models.zoo import Learner, ModelSpec

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], Any]
"""Called as ``callback(folds_done, n_folds)`` after each fold is finished (and checkpointed)."""

_BOOSTERS = frozenset({"lightgbm", "xgboost", "catboost"})
_FOLD_JSON = "fold.json"
_OOF_NPY = "oof.npy"
_CHECKPOINT_FORMAT = 1


class TrainerError(HydraError):
    """Cross-validation inputs are inconsistent or a fold cannot be trained."""


# --------------------------------------------------------------------------- results


@dataclass
class FoldResult:
    """One trained (or resumed) fold.

    ``fit_idx``/``val_idx`` are the rows the learner was fitted on and the
    early-stopping slice (empty when the learner does not early-stop); both are
    subsets of ``train_idx`` and disjoint from ``test_idx``.  ``pred`` holds the
    fold's own test predictions (aligned with ``test_idx``): with overlapping
    test sets (combinatorial CV) they are what backtest paths are stitched from.
    """

    fold: int
    train_idx: np.ndarray
    test_idx: np.ndarray
    metrics: dict[str, Any]
    best_iteration: int | None
    learner: Learner
    resumed: bool
    fit_idx: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    val_idx: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    pred: np.ndarray | None = None


@dataclass
class CVResult:
    """Out-of-fold predictions and per-fold models of one cross-validation run.

    ``oof`` is ``[n, len(classes)]`` probabilities (classification) or ``[n]``
    predictions (regression), NaN on rows no test fold covered.  A row covered by
    several test folds (combinatorial CV) holds the mean of their predictions:
    every one of them comes from a model whose training rows excluded that row
    and were purged/embargoed around its test group, so their mean is still
    out of sample — and it is the same kind of output the bundle gives later
    (a fold average), which is what calibration and ensemble weights should see.
    """

    oof: np.ndarray
    oof_mask: np.ndarray
    folds: list[FoldResult]
    classes: list[Any] | None
    feature_names: list[str]
    importances: np.ndarray

    def fold_table(self) -> pl.DataFrame:
        """One row per fold: sizes, resume flag, best iteration and every scalar metric."""
        rows = []
        for f in self.folds:
            row: dict[str, Any] = {
                "fold": f.fold,
                "n_train": int(f.train_idx.size),
                "n_fit": int(f.fit_idx.size),
                "n_val": int(f.val_idx.size),
                "n_test": int(f.test_idx.size),
                "resumed": f.resumed,
                "best_iteration": f.best_iteration,
            }
            for key, value in f.metrics.items():
                if key == "n":
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    row[key] = float(value)
                elif value is None and key not in row:
                    row[key] = None
            rows.append(row)
        if not rows:
            return pl.DataFrame({"fold": [], "n_train": [], "n_test": []})
        return pl.DataFrame(rows, infer_schema_length=None)


# --------------------------------------------------------------------------- helpers


def _json_safe(value: Any) -> Any:
    """Numpy scalars/arrays -> Python, non-finite floats -> None (strict JSON, no NaN tokens)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _index_sha256(idx: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(idx, dtype="<i8").tobytes()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_sha256(X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> str:
    """Content hash of the training data, so a checkpoint is never reused on different data
    even when the caller's fingerprint forgot to cover it."""
    h = hashlib.sha256()
    h.update(str((X.shape, X.dtype.str)).encode())
    h.update(np.ascontiguousarray(X))  # buffer protocol: no bytes copy of a large X
    if y.dtype.kind in "OUS":
        h.update(json.dumps([str(v) for v in y.tolist()]).encode())
    else:
        h.update(str(y.dtype.str).encode())
        h.update(np.ascontiguousarray(y))
    if w is not None:
        h.update(np.ascontiguousarray(w, dtype="<f8"))
    return h.hexdigest()


def _splitter_identity(splitter: Any) -> str:
    """Class and parameters of a splitter (its repr without the per-row times)."""
    return re.sub(r", t=<\d+ times>", "", f"{type(splitter).__module__}.{splitter!r}")


def _uses_early_stopping(spec: ModelSpec) -> bool:
    return spec.kind in _BOOSTERS and spec.early_stopping_rounds is not None


def _check_inputs(
    X: Any, y: Any, feature_names: Sequence[str], sample_weight: Any, task: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    X = np.asarray(X)
    if X.ndim != 2 or X.dtype.kind not in "fiub":
        raise TrainerError(
            f"X must be a 2-D numeric array, got shape {X.shape} dtype {X.dtype}",
            hint="build X as float32/float64 [n_rows, n_features] in feature_names order",
        )
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise TrainerError(
            f"y must be 1-D with one label per row of X ({X.shape[0]}), got shape {y.shape}",
            hint="align y with X's rows",
        )
    if X.shape[1] != len(feature_names):
        raise TrainerError(
            f"X has {X.shape[1]} columns but {len(feature_names)} feature names were given",
            hint="pass the ordered feature list X's columns follow",
        )
    if task == "regression":
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise TrainerError(
                f"regression target has {int((~np.isfinite(y)).sum())} non-finite value(s)",
                hint="drop rows whose label is unknown before training",
            )
    elif y.dtype.kind == "f" and not np.isfinite(y).all():
        raise TrainerError(
            "classification labels contain NaN", hint="drop unlabelled rows before training"
        )
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (X.shape[0],):
            raise TrainerError(
                f"sample_weight has shape {w.shape}, expected ({X.shape[0]},)",
                hint="one weight per row of X",
            )
        if not np.isfinite(w).all() or (w < 0).any():
            raise TrainerError(
                "sample_weight must be finite and >= 0", hint="check the label weighting step"
            )
    return X, y, w


def carve_validation(
    train_idx: np.ndarray,
    validation_fraction: float,
    times: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_idx, val_idx)``: the last ``validation_fraction`` of the (time-ordered) training
    rows become the early-stopping slice, and fit rows whose label window ``[t, t_end]``
    overlaps that slice are purged, exactly as the splitter purges against the test fold."""
    train = np.sort(np.asarray(train_idx, dtype=np.int64))
    n_val = round(train.size * validation_fraction)
    if n_val < 1 or n_val >= train.size:
        return train, np.empty(0, dtype=np.int64)
    fit, val = train[:-n_val], train[-n_val:]
    if times is not None:
        fit = purge_train(fit, val, times[0], times[1])
    if fit.size == 0:
        raise TrainerError(
            f"no training rows left after purging against the {n_val}-row validation slice",
            hint="lower validation_fraction, or use labels with shorter horizons / more data",
        )
    return fit, val


def align_proba(
    proba: np.ndarray, learner_classes: Sequence[Any], classes: Sequence[Any]
) -> np.ndarray:
    """Learner columns placed into the run's fixed class order; classes the fold never saw get 0.

    Classes are matched by their text, so a manifest's JSON classes match a learner's numpy ones.
    """
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    pos = {str(c): i for i, c in enumerate(classes)}
    cols = [pos[str(c)] for c in list(np.asarray(learner_classes).tolist())]
    out[:, cols] = proba
    return out


def _fold_metrics(
    y_test: np.ndarray, pred: np.ndarray, classes: list[Any] | None
) -> dict[str, Any]:
    if classes is None:
        return _json_safe(regression_report(y_test, pred))
    return _json_safe(classification_report(y_test, pred, classes))


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class _RunIdentity:
    """Everything a fold checkpoint must match to be reused."""

    fingerprint: str
    data_sha256: str
    spec: dict[str, Any]
    feature_names: list[str]
    classes: list[Any] | None
    validation_fraction: float
    splitter: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "data_sha256": self.data_sha256,
            "spec": self.spec,
            "feature_names": self.feature_names,
            "classes": self.classes,
            "validation_fraction": self.validation_fraction,
            "splitter": self.splitter,
        }


@dataclass
class _Loaded:
    learner: Learner
    pred: np.ndarray
    metrics: dict[str, Any]
    best_iteration: int | None
    importances: np.ndarray


def _fold_dir(root: Path, k: int) -> Path:
    return root / f"fold_{k}"


def _clean_stale(root: Path, identity: _RunIdentity, n_folds: int) -> None:
    """Drop leftover temp dirs of killed runs, every fold written under another identity and
    folds beyond this run's count, so the directory only ever describes one run."""
    for tmp in root.glob(".fold_*.tmp*"):
        shutil.rmtree(tmp, ignore_errors=True)
    wanted = {_fold_dir(root, k).name for k in range(n_folds)}
    for fold_dir in sorted(root.glob("fold_*")):
        meta = _read_meta(fold_dir)
        if fold_dir.name not in wanted:
            why = f"this run has {n_folds} folds"
        elif meta is None:
            why = "incomplete"
        elif meta.get("identity") != _json_safe(identity.as_json()):
            why = "fingerprint/data/spec changed"
        else:
            continue
        log.warning("discarding stale checkpoint %s (%s)", fold_dir, why)
        shutil.rmtree(fold_dir, ignore_errors=True)


def _read_meta(fold_dir: Path) -> dict[str, Any] | None:
    path = fold_dir / _FOLD_JSON
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("format") != _CHECKPOINT_FORMAT:
        return None
    return meta


def _try_resume(
    fold_dir: Path,
    identity: _RunIdentity,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    spec: ModelSpec,
    n_pred_cols: int | None,
) -> _Loaded | None:
    """The checkpointed fold if it is complete, untampered and made from identical inputs."""
    from hydraquant.models.zoo import load_learner

    meta = _read_meta(fold_dir)
    if meta is None:
        return None
    why = None
    if meta.get("identity") != _json_safe(identity.as_json()):
        why = "fingerprint/data/spec changed"
    elif meta.get("train_sha256") != _index_sha256(train_idx) or meta.get(
        "test_sha256"
    ) != _index_sha256(test_idx):
        why = "train/test indices changed"
    else:
        for name, digest in meta.get("files", {}).items():
            path = fold_dir / name
            if not path.is_file() or _file_sha256(path) != digest:
                why = f"file {name} missing or modified"
                break
    if why is None:
        pred = np.load(fold_dir / _OOF_NPY, allow_pickle=False)
        expected = (test_idx.size,) if n_pred_cols is None else (test_idx.size, n_pred_cols)
        if pred.shape != expected:
            why = f"oof.npy has shape {pred.shape}, expected {expected}"
    if why is not None:
        log.warning("discarding checkpoint %s: %s; retraining", fold_dir, why)
        shutil.rmtree(fold_dir, ignore_errors=True)
        return None
    learner = load_learner(spec, fold_dir, identity.feature_names, meta["learner_classes"])
    return _Loaded(
        learner=learner,
        pred=pred,
        metrics=meta["metrics"],
        best_iteration=meta["best_iteration"],
        importances=np.asarray(meta["importances"], dtype=np.float64),
    )


def _write_checkpoint(
    root: Path,
    k: int,
    learner: Learner,
    pred: np.ndarray,
    meta: dict[str, Any],
) -> None:
    """Write ``fold_<k>/`` atomically: build it in a temp dir (fold.json last), then rename."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".fold_{k}.tmp", dir=root)).resolve()
    try:
        written = [Path(p) for p in learner.save(tmp)]
        np.save(tmp / _OOF_NPY, pred, allow_pickle=False)
        files = {}
        for path in [*written, tmp / _OOF_NPY]:
            path = path if path.is_absolute() else tmp / path
            files[path.relative_to(tmp).as_posix()] = _file_sha256(path)
        meta = {**meta, "files": files}
        with (tmp / _FOLD_JSON).open("w") as fh:
            json.dump(meta, fh, indent=1, allow_nan=False)
            fh.flush()
            os.fsync(fh.fileno())
        final = _fold_dir(root, k)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --------------------------------------------------------------------------- training


def _train_fold(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    spec: ModelSpec,
    feature_names: list[str],
    fit_idx: np.ndarray,
    val_idx: np.ndarray,
    k: int,
) -> Learner:
    from hydraquant.models.zoo import make_learner

    eval_set = None
    if val_idx.size:
        if spec.task == "classification":
            # a label the fit set never saw cannot be scored by the learner's encoder
            val_idx = val_idx[np.isin(y[val_idx], np.unique(y[fit_idx]))]
        if val_idx.size:
            eval_set = (X[val_idx], y[val_idx], None if w is None else w[val_idx])
    if spec.task == "classification" and np.unique(y[fit_idx]).size < 2:
        raise TrainerError(
            f"fold {k}: the training rows hold a single class ({y[fit_idx][0]!r})",
            hint="use fewer folds or a larger min_train_size so every fold sees several classes",
        )
    learner = make_learner(spec, list(feature_names))
    learner.fit(
        X[fit_idx], y[fit_idx], sample_weight=None if w is None else w[fit_idx], eval_set=eval_set
    )
    return learner


class _Progress:
    """Rich transient bar (``progress=True``), a user callback, or nothing."""

    def __init__(self, progress: bool | ProgressCallback, n_folds: int) -> None:
        self._callback = progress if callable(progress) else None
        self._bar: Any = None
        self._task: Any = None
        self._n = n_folds
        if progress is True:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._task = self._bar.add_task("cross-validation folds", total=n_folds)

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
        if self._callback is not None:
            self._callback(done, self._n)


def cross_validate(
    X: Any,
    y: Any,
    *,
    spec: ModelSpec,
    splitter: Any,
    feature_names: Sequence[str],
    times: tuple[Any, Any] | None = None,
    sample_weight: Any = None,
    checkpoint_dir: Path | str | None = None,
    progress: bool | ProgressCallback = False,
    validation_fraction: float = 0.15,
    fingerprint: str = "",
) -> CVResult:
    """Train one learner per split of ``splitter`` and collect out-of-fold predictions.

    Parameters
    ----------
    X, y : rows sorted by time (as the splitter requires); X columns follow ``feature_names``.
    spec : the learner to build per fold (``make_learner``).
    splitter : scikit-learn-protocol splitter that already purges/embargoes train vs test.
    times : ``(t, t_end)`` per row; when given, the fit set is also purged against the
        early-stopping slice.  Without it only the splitter's purge applies.
    sample_weight : per-row weights passed to fit (and to the eval set).
    checkpoint_dir : write/resume ``fold_<k>/`` checkpoints there.
    progress : ``True`` for a transient rich bar, or ``callback(folds_done, n_folds)``.
    validation_fraction : share of each training fold (its most recent rows) held out for
        early stopping; only used by boosters with ``early_stopping_rounds``.
    fingerprint : caller's hash of config + data; checkpoints with another one are discarded.

    Returns
    -------
    CVResult.  Classification classes are fixed from the full ``y`` (sorted), so every
    fold's probability matrix has the same columns; a class absent from a fold's training
    rows gets probability 0 in that fold.
    """
    task = spec.task
    X, y, w = _check_inputs(X, y, feature_names, sample_weight, task)
    feature_names = list(feature_names)
    if not 0.0 <= validation_fraction < 1.0:
        raise TrainerError(
            f"validation_fraction must be in [0, 1), got {validation_fraction}",
            hint="e.g. 0.15 holds out the most recent 15% of each training fold",
        )
    classes = None if task == "regression" else list(np.unique(y).tolist())
    if classes is not None and len(classes) < 2:
        raise TrainerError(
            f"classification needs at least 2 classes, y has {classes}",
            hint="check the labelling step, or use task='regression'",
        )
    time_arrays = None
    if times is not None:
        t, t_end, _ = sample_times(times[0], times[1])
        if t.size != X.shape[0]:
            raise TrainerError(
                f"times cover {t.size} rows but X has {X.shape[0]}",
                hint="pass (t, t_end) aligned with X's rows",
            )
        time_arrays = (t, t_end)

    splits = [
        (np.asarray(tr, dtype=np.int64), np.asarray(te, dtype=np.int64))
        for tr, te in splitter.split(X, y)
    ]
    if not splits:
        raise TrainerError("the splitter yielded no folds", hint="check its configuration")
    n, n_folds = X.shape[0], len(splits)
    use_es = _uses_early_stopping(spec)
    k_cols = None if classes is None else len(classes)

    root = None if checkpoint_dir is None else Path(checkpoint_dir)
    identity = None
    if root is not None:
        identity = _RunIdentity(
            fingerprint=fingerprint,
            data_sha256=_data_sha256(X, y, w),
            spec=_json_safe(spec.model_dump(mode="json")),
            feature_names=feature_names,
            classes=classes,
            validation_fraction=float(validation_fraction),
            # the CV kind and its parameters: fold k of a walk-forward run and fold k of a
            # combinatorial run are different models even when a caller's fingerprint forgets it
            splitter=_splitter_identity(splitter),
        )
        if root.exists():
            _clean_stale(root, identity, n_folds)

    sums = np.zeros((n,) if k_cols is None else (n, k_cols), dtype=np.float64)
    counts = np.zeros(n, dtype=np.int64)
    folds: list[FoldResult] = []
    importances = np.zeros((n_folds, len(feature_names)), dtype=np.float64)

    with _Progress(progress, n_folds) as bar:
        for k, (train_idx, test_idx) in enumerate(splits):
            overlap = np.intersect1d(train_idx, test_idx)
            if overlap.size:
                raise TrainerError(
                    f"fold {k}: {overlap.size} row(s) are in both train and test (first {overlap[0]})",
                    hint="use a purged splitter from hydraquant.validation.splits",
                )
            if use_es:
                fit_idx, val_idx = carve_validation(train_idx, validation_fraction, time_arrays)
            else:
                fit_idx, val_idx = np.sort(train_idx), np.empty(0, dtype=np.int64)

            loaded = None
            if root is not None and identity is not None:
                fold_dir = _fold_dir(root, k)
                if fold_dir.exists():
                    loaded = _try_resume(fold_dir, identity, train_idx, test_idx, spec, k_cols)
            if loaded is not None:
                log.info("fold %d/%d resumed from %s", k + 1, n_folds, _fold_dir(root, k))
                learner, pred = loaded.learner, loaded.pred
                metrics, best_it = loaded.metrics, loaded.best_iteration
                importances[k] = loaded.importances
            else:
                learner = _train_fold(X, y, w, spec, feature_names, fit_idx, val_idx, k)
                if classes is None:
                    pred = np.asarray(learner.predict(X[test_idx]), dtype=np.float64)
                else:
                    pred = align_proba(
                        np.asarray(learner.predict_proba(X[test_idx]), dtype=np.float64),
                        learner.classes_,
                        classes,
                    )
                metrics = _fold_metrics(y[test_idx], pred, classes)
                best_it = None if learner.best_iteration is None else int(learner.best_iteration)
                importances[k] = np.asarray(learner.feature_importances(), dtype=np.float64)
                if root is not None and identity is not None:
                    _write_checkpoint(
                        root,
                        k,
                        learner,
                        pred,
                        {
                            "format": _CHECKPOINT_FORMAT,
                            "fold": k,
                            "identity": _json_safe(identity.as_json()),
                            "train_sha256": _index_sha256(train_idx),
                            "test_sha256": _index_sha256(test_idx),
                            "n_train": int(train_idx.size),
                            "n_fit": int(fit_idx.size),
                            "n_val": int(val_idx.size),
                            "n_test": int(test_idx.size),
                            "learner_classes": _json_safe(
                                None
                                if learner.classes_ is None
                                else np.asarray(learner.classes_).tolist()
                            ),
                            "best_iteration": best_it,
                            "metrics": metrics,
                            "importances": _json_safe(importances[k]),
                        },
                    )
                log.info(
                    "fold %d/%d trained: fit=%d val=%d test=%d best_iteration=%s",
                    k + 1,
                    n_folds,
                    fit_idx.size,
                    val_idx.size,
                    test_idx.size,
                    best_it,
                )
            sums[test_idx] += pred
            counts[test_idx] += 1
            folds.append(
                FoldResult(
                    fold=k,
                    train_idx=train_idx,
                    test_idx=test_idx,
                    metrics=metrics,
                    best_iteration=best_it,
                    learner=learner,
                    resumed=loaded is not None,
                    fit_idx=fit_idx,
                    val_idx=val_idx,
                    pred=pred,
                )
            )
            bar.advance(k + 1)

    mask = counts > 0
    oof = np.full_like(sums, np.nan)
    div = counts[mask] if k_cols is None else counts[mask][:, None]
    oof[mask] = sums[mask] / div
    return CVResult(
        oof=oof,
        oof_mask=mask,
        folds=folds,
        classes=classes,
        feature_names=feature_names,
        importances=importances,
    )


def oof_summary(cv: CVResult, y: Any) -> dict[str, Any]:
    """Metrics of the out-of-fold predictions over every row some fold tested (JSON-safe),
    plus coverage: the honest headline numbers of a CV run."""
    y = np.asarray(y)
    if y.shape[0] != cv.oof_mask.shape[0]:
        raise TrainerError(
            f"y has {y.shape[0]} rows but the CV result covers {cv.oof_mask.shape[0]}",
            hint="pass the same y that cross_validate was given",
        )
    mask = cv.oof_mask
    n_oof = int(mask.sum())
    if n_oof == 0:
        raise TrainerError("no row is covered by a test fold", hint="check the splitter")
    report = _fold_metrics(y[mask], cv.oof[mask], cv.classes)
    report["coverage"] = n_oof / mask.size
    report["n_folds"] = len(cv.folds)
    return report


def path_predictions(cv: CVResult, splitter: Any) -> list[np.ndarray]:
    """The combinatorial CV backtest paths of one learner: ``n_paths`` arrays shaped like ``cv.oof``.

    Path p takes, for every group g, the test predictions of split
    ``splitter.backtest_paths()[p, g]``; each path therefore covers every row
    exactly once with a model that never trained on it (nor on rows whose
    labels overlap it), which is what makes the spread across paths an honest
    out-of-sample distribution rather than one lucky walk-forward.
    """
    if not hasattr(splitter, "backtest_paths"):
        raise TrainerError(f"{type(splitter).__name__} has no backtest paths",
                           hint="path predictions exist for CombinatorialPurgedCV only")
    paths = np.asarray(splitter.backtest_paths())
    if len(cv.folds) != splitter.get_n_splits():
        raise TrainerError(f"the CV result has {len(cv.folds)} folds, the splitter {splitter.get_n_splits()}",
                           hint="pass the splitter cross_validate ran with")
    n = cv.oof_mask.shape[0]
    edges = splitter.group_bounds(n)
    out = []
    for row in paths:
        path = np.full_like(cv.oof, np.nan)
        for g, s in enumerate(row):  # loop over groups, not rows
            fold = cv.folds[int(s)]
            if fold.pred is None:
                raise TrainerError(f"fold {fold.fold} kept no test predictions", hint="re-run cross_validate")
            rows = np.arange(edges[g], edges[g + 1])
            pos = np.searchsorted(fold.test_idx, rows)
            if pos.size and (pos[-1] >= fold.test_idx.size or not np.array_equal(fold.test_idx[pos], rows)):
                raise TrainerError(f"fold {fold.fold} did not test group {g}", hint="pass the matching splitter")
            path[rows] = fold.pred[pos]
        out.append(path)
    return out
