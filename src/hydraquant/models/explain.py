"""Model explanations: SHAP values, global rankings, per-prediction top-k drivers (SPEC M8).

Why: researchers prune features by mean |SHAP| and traders want to see which
features pushed a given signal; fold-to-fold importance spread shows whether
a feature's usefulness is stable or an artefact of one period.

Shapes and sign conventions of :func:`shap_values`:

* regression -> ``[n, n_features]`` in the model's output units;
* binary classification -> ``[n, n_features]``, contributions toward
  ``classes_[1]`` (log-odds for boosters, probability for forests);
* multi-class -> ``[n, n_features, n_classes]``, one slice per class in
  ``classes_`` order.  :func:`global_importance` reduces it to mean |SHAP| per
  feature *summed over classes* (a feature that only separates one class still
  ranks by how much it moves that class).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError

if TYPE_CHECKING:
    from hydraquant.models.trainer import CVResult
    from hydraquant.models.zoo import Learner

log = logging.getLogger(__name__)


class ExplainError(HydraError):
    """Explanation inputs are inconsistent (shapes, feature names, class choice)."""


def _sample_rows(n: int, max_rows: int | None, seed: int) -> np.ndarray | None:
    """Seeded subset of row indices, kept in original order (None = all rows)."""
    if max_rows is None or n <= max_rows:
        return None
    if max_rows < 1:
        raise ExplainError(f"max_rows must be >= 1 or None, got {max_rows}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


def _tree_input(learner: Learner, X: np.ndarray) -> np.ndarray:
    """Rows as the native tree model sees them.

    scikit-learn forests sit behind an imputer fitted on the training fold; explaining
    the forest on raw NaN rows would follow a different path than its predictions do,
    so the pipeline's pre-processing steps are applied first.
    """
    prepare = getattr(learner, "tree_input", None)
    if callable(prepare):
        return np.asarray(prepare(X))
    pipeline = getattr(learner, "_pipeline", None)
    if pipeline is not None and hasattr(pipeline, "steps") and len(pipeline.steps) > 1:
        return np.asarray(pipeline[:-1].transform(X), dtype=np.float64)
    return X


def shap_values(learner: Learner, X: Any, max_rows: int | None = 2000, seed: int = 0) -> np.ndarray:
    """SHAP values of ``learner`` on ``X`` via ``shap.TreeExplainer`` (exact, fast for trees).

    When X has more than ``max_rows`` rows a seeded random subset of that size
    (in original row order) is explained: enough for global rankings at a
    bounded cost.  For per-prediction drivers pass exactly the rows to explain
    and ``max_rows=None``.

    A learner without a tree model (logistic, MLP, ONNX-backed) gets no SHAP:
    a warning is logged and its non-negative ``feature_importances()`` are
    returned broadcast to ``[n, n_features]`` so rankings still work; these
    values are unsigned and say nothing about single predictions.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(learner.feature_names):
        raise ExplainError(
            f"X has shape {X.shape}, expected [n, {len(learner.feature_names)}]",
            hint="pass rows with the learner's ordered feature columns",
        )
    rows = _sample_rows(X.shape[0], max_rows, seed)
    if rows is not None:
        X = X[rows]
    model = learner.tree_model()
    if model is None:
        log.warning(
            "%s learner has no tree model: returning feature importances, not SHAP values",
            learner.spec.kind,
        )
        imp = np.asarray(learner.feature_importances(), dtype=np.float64)
        return np.broadcast_to(imp, X.shape).copy()

    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's notices about its own output format changes
        explainer = shap.TreeExplainer(model)
        raw = explainer.shap_values(_tree_input(learner, X), check_additivity=False)
    values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
    values = values.astype(np.float64, copy=False)
    if values.ndim == 3 and values.shape[2] == 2:
        values = values[:, :, 1]  # binary: contributions toward classes_[1]
    if values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    return values


def _check_values(values: Any, feature_names: Sequence[str]) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (2, 3) or v.shape[1] != len(feature_names):
        raise ExplainError(
            f"SHAP values have shape {v.shape}, expected [n, {len(feature_names)}(, n_classes)]",
            hint="pass the feature names in the column order of the explained X",
        )
    return v


def global_importance(values: Any, feature_names: Sequence[str]) -> pl.DataFrame:
    """``feature, mean_abs_shap`` sorted descending (ties keep feature order); multi-class
    values are summed over classes after averaging |SHAP| over rows."""
    v = _check_values(values, feature_names)
    score = np.abs(v).mean(axis=0) if v.shape[0] else np.zeros(v.shape[1:])
    if score.ndim == 2:
        score = score.sum(axis=1)
    order = np.argsort(-score, kind="stable")
    return pl.DataFrame(
        {
            "feature": [feature_names[i] for i in order],
            "mean_abs_shap": score[order],
        }
    )


def top_k_contributions(
    values: Any, feature_names: Sequence[str], k: int = 5, class_index: int | None = None
) -> list[list[tuple[str, float]]]:
    """Per row, the ``k`` largest-|SHAP| features with their signed values, largest first.

    Multi-class values need ``class_index`` (the class whose drivers to show,
    typically the predicted one).
    """
    v = _check_values(values, feature_names)
    if v.ndim == 3:
        if class_index is None or not 0 <= class_index < v.shape[2]:
            raise ExplainError(
                f"multi-class SHAP values ({v.shape[2]} classes) need class_index in [0, {v.shape[2]})",
                hint="pass the index (in classes_ order) of the class to explain",
            )
        v = v[:, :, class_index]
    n, f = v.shape
    k = min(int(k), f)
    if k < 1 or n == 0:
        return [[] for _ in range(n)]
    mag = np.abs(v)
    part = np.argpartition(-mag, k - 1, axis=1)[:, :k]
    part_mag = np.take_along_axis(mag, part, axis=1)
    # order within the top k: |value| desc, then feature position for reproducible ties
    order = np.lexsort((part, -part_mag), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(v, idx, axis=1)
    names = np.asarray(list(feature_names), dtype=object)[idx]
    return [
        list(zip(nr, vr, strict=True)) for nr, vr in zip(names.tolist(), vals.tolist(), strict=True)
    ]


def fold_importance(cv: CVResult) -> pl.DataFrame:
    """``feature, mean, std`` of the learners' normalised importances across folds (population
    std, 0 with one fold), sorted by mean descending: stable drivers have small std."""
    imp = np.asarray(cv.importances, dtype=np.float64)
    if imp.ndim != 2 or imp.shape[1] != len(cv.feature_names) or imp.shape[0] == 0:
        raise ExplainError(
            f"CV importances have shape {imp.shape}, expected [n_folds, {len(cv.feature_names)}]"
        )
    mean = imp.mean(axis=0)
    std = imp.std(axis=0)
    order = np.argsort(-mean, kind="stable")
    return pl.DataFrame(
        {
            "feature": [cv.feature_names[i] for i in order],
            "mean": mean[order],
            "std": std[order],
        }
    )
