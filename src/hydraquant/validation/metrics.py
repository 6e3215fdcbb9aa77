"""Classification and regression metrics for out-of-sample evaluation (SPEC V2).

Why our own: each is a few vectorised numpy lines, works on any class labels
(-1/0/1, strings), reports undefined values as NaN instead of a silent 0, and
bundles into JSON-ready dicts for the run report and the model manifest.
The tests cross-check every metric scikit-learn also has.

Probability conventions: ``proba`` is ``(n, n_classes)`` with columns in the
order of ``classes``; for a binary problem a 1-D ``proba`` is P(classes[1]).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from hydraquant.errors import HydraError

Strategy = Literal["uniform", "quantile"]
_EPS = 1e-15


class MetricError(HydraError):
    """Inputs to a metric are inconsistent (shapes, unknown labels, bad probabilities)."""


# --------------------------------------------------------------------------- input plumbing


def _vec(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise MetricError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _finite(a: Any, name: str) -> np.ndarray:
    arr = _vec(a, name).astype(np.float64)
    if not np.isfinite(arr).all():
        raise MetricError(
            f"{name} has {int((~np.isfinite(arr)).sum())} non-finite value(s)",
            hint="drop rows with missing labels/predictions before scoring",
        )
    return arr


def encode_labels(y: Any, classes: Any) -> np.ndarray:
    """Column index of each label in ``classes``; unknown labels are an error, not a guess."""
    y = _vec(y, "y")
    classes = np.asarray(classes)
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    pos = np.clip(np.searchsorted(sorted_classes, y), 0, classes.size - 1)
    bad = sorted_classes[pos] != y
    if bad.any():
        raise MetricError(
            f"label {y[np.flatnonzero(bad)[0]]!r} is not one of classes {classes.tolist()}",
            hint="pass the full, ordered class list the probabilities were produced for",
        )
    return order[pos]


def _proba_matrix(proba: Any, n_classes: int, n: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        if n_classes != 2:
            raise MetricError(f"1-D proba is only valid for 2 classes, got {n_classes}")
        p = np.column_stack([1.0 - p, p])
    if p.shape != (n, n_classes):
        raise MetricError(
            f"proba has shape {p.shape}, expected ({n}, {n_classes})",
            hint="one row per sample, one column per class in `classes` order",
        )
    if not np.isfinite(p).all() or (p < -1e-9).any() or (p > 1 + 1e-9).any():
        raise MetricError("proba must be finite and within [0, 1]")
    return p


def _binary_inputs(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _vec(y_true, "y_true")
    s = _finite(score, "score")
    if y.shape != s.shape:
        raise MetricError(f"y_true and score lengths differ: {y.size} vs {s.size}")
    uniq = np.unique(y)
    if not np.isin(uniq, [0, 1]).all():
        raise MetricError(f"binary metric needs 0/1 (or bool) labels, got {uniq[:5].tolist()}")
    return y.astype(np.float64), s


# --------------------------------------------------------------------------- classification


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of exact matches."""
    y, p = _vec(y_true, "y_true"), _vec(y_pred, "y_pred")
    if y.shape != p.shape:
        raise MetricError(f"y_true and y_pred lengths differ: {y.size} vs {p.size}")
    return float(np.mean(y == p)) if y.size else float("nan")


def precision_recall(y_true: Any, y_pred: Any, classes: Any) -> dict[str, np.ndarray]:
    """Per-class ``precision``, ``recall`` and ``support`` (true count), in ``classes`` order.

    Precision of a never-predicted class (and recall of an absent one) is NaN.
    """
    k = len(classes)
    yi = encode_labels(y_true, classes)
    pi = encode_labels(y_pred, classes)
    cm = confusion_matrix(yi, pi, k)
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(support > 0, tp / support, np.nan)
    return {"precision": precision, "recall": recall, "support": support}


def confusion_matrix(y_idx: np.ndarray, pred_idx: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` counts, rows = true class index, columns = predicted."""
    flat = np.bincount(y_idx * n_classes + pred_idx, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inv]


def roc_auc(y_true: Any, score: Any) -> float:
    """Binary ROC-AUC via the Mann-Whitney rank statistic (ties count one half)."""
    y, s = _binary_inputs(y_true, score)
    n_pos = y.sum()
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y_true: Any, score: Any) -> float:
    """Area under the precision-recall curve as step-wise average precision
    (sum over thresholds of recall increase x precision; sklearn's definition)."""
    y, s = _binary_inputs(y_true, score)
    n_pos = y.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1]  # last row of each distinct score
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _one_vs_rest(y_true: Any, proba: Any, classes: Any, fn: Any) -> float:
    yi = encode_labels(y_true, classes)
    p = _proba_matrix(proba, len(classes), yi.size)
    if len(classes) == 2:
        return fn(yi == 1, p[:, 1])
    vals = np.array([fn(yi == c, p[:, c]) for c in range(len(classes))])
    return float(np.mean(vals))


def roc_auc_ovr(y_true: Any, proba: Any, classes: Any) -> float:
    """ROC-AUC: binary on P(classes[1]), else unweighted (macro) mean of one-vs-rest AUCs."""
    return _one_vs_rest(y_true, proba, classes, roc_auc)


def auc_pr(y_true: Any, proba: Any, classes: Any) -> float:
    """Average precision: binary on P(classes[1]), else macro one-vs-rest mean."""
    return _one_vs_rest(y_true, proba, classes, average_precision)


def log_loss(y_true: Any, proba: Any, classes: Any) -> float:
    """Mean negative log-likelihood of the true class (probabilities clipped at 1e-15)."""
    yi = encode_labels(y_true, classes)
    p = _proba_matrix(proba, len(classes), yi.size)
    return float(-np.mean(np.log(np.clip(p[np.arange(yi.size), yi], _EPS, 1.0))))


def brier(y_true: Any, proba: Any, classes: Any) -> float:
    """Brier score: binary ``mean((p1 - y)^2)``; multiclass ``mean(sum_k (p_k - 1[y=k])^2)``
    (the scikit-learn conventions, so a binary score is half the 2-class sum)."""
    yi = encode_labels(y_true, classes)
    p = _proba_matrix(proba, len(classes), yi.size)
    onehot = np.eye(len(classes))[yi]
    if len(classes) == 2:
        return float(np.mean((p[:, 1] - onehot[:, 1]) ** 2))
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class ReliabilityCurve:
    """Per-bin calibration statistics; empty bins have count 0 and NaN means."""

    bin_center: np.ndarray
    mean_predicted: np.ndarray
    observed_frequency: np.ndarray
    count: np.ndarray
    edges: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {k: np.asarray(v).tolist() for k, v in asdict(self).items()}


def reliability_curve(
    y_true: Any, prob: Any, n_bins: int = 10, strategy: Strategy = "uniform"
) -> ReliabilityCurve:
    """Bin predicted probabilities (equal-width ``"uniform"`` or equal-mass ``"quantile"`` edges)
    and compare the mean prediction with the observed event rate per bin.

    Bins are right-closed like ``sklearn.calibration.calibration_curve``
    (a probability equal to an inner edge falls in the lower bin).
    """
    y, p = _binary_inputs(y_true, prob)
    if n_bins < 1:
        raise MetricError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = (
            np.percentile(p, np.linspace(0.0, 100.0, n_bins + 1))
            if p.size
            else np.linspace(0, 1, n_bins + 1)
        )
    else:
        raise MetricError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")
    idx = np.searchsorted(edges[1:-1], p)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(count > 0, sum_p / count, np.nan)
        freq = np.where(count > 0, sum_y / count, np.nan)
    return ReliabilityCurve(
        bin_center=(edges[:-1] + edges[1:]) / 2.0,
        mean_predicted=mean_p,
        observed_frequency=freq,
        count=count,
        edges=edges,
    )


def _calibration_target(y_true: Any, proba: Any, classes: Any) -> tuple[np.ndarray, np.ndarray]:
    """(event indicator, probability): P(classes[1]) for binary, top-label confidence otherwise."""
    yi = encode_labels(y_true, classes)
    p = _proba_matrix(proba, len(classes), yi.size)
    if len(classes) == 2:
        return (yi == 1).astype(np.float64), p[:, 1]
    top = np.argmax(p, axis=1)
    return (top == yi).astype(np.float64), p[np.arange(yi.size), top]


def expected_calibration_error(
    y_true: Any, proba: Any, classes: Any, n_bins: int = 10, strategy: Strategy = "uniform"
) -> tuple[float, ReliabilityCurve]:
    """ECE = sum over bins of (bin share) x |observed - mean predicted|, with its curve.

    Binary problems calibrate P(classes[1]); multiclass ones the top-label
    confidence against whether the top label was right.
    """
    event, prob = _calibration_target(y_true, proba, classes)
    curve = reliability_curve(event, prob, n_bins, strategy)
    filled = curve.count > 0
    if not filled.any():
        return float("nan"), curve
    gap = np.abs(curve.observed_frequency[filled] - curve.mean_predicted[filled])
    return float(np.sum(curve.count[filled] / curve.count.sum() * gap)), curve


def classification_report(
    y_true: Any, proba: Any, classes: Any, n_bins: int = 10, strategy: Strategy = "uniform"
) -> dict[str, Any]:
    """All classification metrics for argmax predictions, JSON-ready (NaN stays NaN)."""
    classes = list(np.asarray(classes).tolist())
    yi = encode_labels(y_true, classes)
    p = _proba_matrix(proba, len(classes), yi.size)
    idx = list(range(len(classes)))
    pred = np.argmax(p, axis=1)
    pr = precision_recall(yi, pred, idx)
    ece, curve = expected_calibration_error(yi, p, idx, n_bins, strategy)
    return {
        "n": int(yi.size),
        "classes": classes,
        "accuracy": accuracy(yi, pred),
        "per_class": {
            str(c): {
                "precision": float(pr["precision"][i]),
                "recall": float(pr["recall"][i]),
                "support": int(pr["support"][i]),
            }
            for i, c in enumerate(classes)
        },
        "roc_auc": roc_auc_ovr(yi, p, idx),
        "auc_pr": auc_pr(yi, p, idx),
        "log_loss": log_loss(yi, p, idx),
        "brier": brier(yi, p, idx),
        "ece": ece,
        "reliability": curve.to_dict(),
        "confusion_matrix": confusion_matrix(yi, pred, len(classes)).tolist(),
    }


# --------------------------------------------------------------------------- regression


def _reg_inputs(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y, p = _finite(y_true, "y_true"), _finite(y_pred, "y_pred")
    if y.shape != p.shape:
        raise MetricError(f"y_true and y_pred lengths differ: {y.size} vs {p.size}")
    if y.size == 0:
        raise MetricError("no samples to score")
    return y, p


def mae(y_true: Any, y_pred: Any) -> float:
    y, p = _reg_inputs(y_true, y_pred)
    return float(np.mean(np.abs(y - p)))


def rmse(y_true: Any, y_pred: Any) -> float:
    y, p = _reg_inputs(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2)))


def mae_over_std(y_true: Any, y_pred: Any) -> float:
    """MAE / population std of the target: < 1 beats always predicting a constant of that spread
    (seed 000's headline regression number)."""
    y, p = _reg_inputs(y_true, y_pred)
    sd = float(np.std(y))
    return float(np.mean(np.abs(y - p)) / sd) if sd > 0 else float("nan")


def top_fraction_actual(y_true: Any, y_pred: Any, fraction: float) -> float:
    """Mean actual target over the rows whose prediction is in the top ``fraction``
    (seed 000: rows with ``pred >= percentile(pred, 100 * (1 - fraction))``, ties included)."""
    if not 0.0 < fraction <= 1.0:
        raise MetricError(f"fraction must be in (0, 1], got {fraction}")
    y, p = _reg_inputs(y_true, y_pred)
    mask = p >= np.percentile(p, 100.0 * (1.0 - fraction))
    return float(y[mask].mean())


def top_decile_actual(y_true: Any, y_pred: Any) -> float:
    return top_fraction_actual(y_true, y_pred, 0.10)


def top_quartile_actual(y_true: Any, y_pred: Any) -> float:
    return top_fraction_actual(y_true, y_pred, 0.25)


def regression_report(y_true: Any, y_pred: Any) -> dict[str, float]:
    """MAE, RMSE, MAE/STD and the seed-000 top-decile/quartile actuals (with the base mean
    they should beat)."""
    y, p = _reg_inputs(y_true, y_pred)
    return {
        "n": int(y.size),
        "mae": mae(y, p),
        "rmse": rmse(y, p),
        "target_std": float(np.std(y)),
        "mae_over_std": mae_over_std(y, p),
        "mean_actual": float(y.mean()),
        "top_decile_actual": top_decile_actual(y, p),
        "top_quartile_actual": top_quartile_actual(y, p),
    }
