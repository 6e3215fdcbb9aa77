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

Per-prediction drivers of a whole bundle (:func:`explain_rows`, used by
``Predictor.explain`` / ``hydraquant predict --explain K`` and the run report's
"why the latest signals fired" table) are stricter: tree boosters only, values
in raw-score space (log-odds of the explained class), fold-averaged and
member-weighted like the predictions, additive to the fold-averaged raw margin.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.models.matrix import model_matrix

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


def top_k_indices(values: np.ndarray, k: int) -> np.ndarray:
    """``[n, k]`` column indices of each row's ``k`` largest |values|, largest first.

    Ties keep feature order so the same inputs always name the same drivers; NaN ranks
    last (an unexplained row must not invent a driver).  ``k`` must be in ``[1, n_features]``.
    """
    mag = np.abs(np.asarray(values, dtype=np.float64))
    mag = np.where(np.isnan(mag), -1.0, mag)
    part = np.argpartition(-mag, k - 1, axis=1)[:, :k]
    part_mag = np.take_along_axis(mag, part, axis=1)
    order = np.lexsort((part, -part_mag), axis=1)
    return np.take_along_axis(part, order, axis=1)


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
    idx = top_k_indices(v, k)
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


# --------------------------------------------------------------------------------------------------
# Per-prediction drivers of an ensemble of fold models (what `hydraquant predict --explain` shows)
# --------------------------------------------------------------------------------------------------

TREE_KINDS = ("lightgbm", "xgboost", "catboost")
"""Learners whose per-prediction SHAP values are exact and live in the raw-score (log-odds) space.

scikit-learn forests are left out on purpose: a bundle stores them as ONNX (no tree
structure to walk) and their TreeSHAP values would be in probability units, which
cannot be mixed with the boosters' log-odds."""

_EQUAL_WEIGHT_METHODS = {None, "", "mean", "average", "fold_average"}
_NON_ADDITIVE_METHODS = {"majority_vote", "stacking"}

ProgressCallback = Callable[[int, int], Any]


def has_exact_shap(learner: Learner) -> bool:
    """Tree boosters (TreeSHAP) and the linear member (closed form) have exact raw-score SHAP."""
    return (learner.spec.kind in TREE_KINDS and learner.tree_model() is not None) or learner.linear_form() is not None


def check_explainable(members: Mapping[str, Sequence[Learner]], where: str) -> None:
    """Refuse members that have no exact raw-score SHAP, naming the member and its kind."""
    for name, learners in members.items():
        for learner in learners:
            if has_exact_shap(learner):
                continue
            kind = learner.spec.kind
            stored = " (stored as ONNX, without its tree structure)" if kind in ("random_forest", "extra_trees") else ""
            raise ExplainError(
                f"{where}: member {name!r} is a {kind} learner{stored}; per-prediction explanations need "
                f"exact SHAP values in log-odds space, which only tree boosters and the logistic member provide",
                hint=f"train this model with a tree booster ({', '.join(TREE_KINDS)}) or logistic to explain its "
                "signals; `hydraquant predict` without --explain still scores it",
            )


class LinearShap:
    """Exact SHAP of a linear member in raw-score space, shaped like shap's explainers.

    With the training fold as background, feature i of row x contributes
    ``coef[:, i] * z_i`` (``z`` the fold's imputed, standardised x, which has mean 0 on
    the fold) and the base value is the intercept, so the contributions plus the base
    are the member's log-odds (or value) exactly.  Takes raw X (it imputes and scales).
    """

    takes_raw_x = True

    def __init__(self, form: Mapping[str, np.ndarray]) -> None:
        self._form = form
        self.expected_value = np.asarray(form["intercept"], dtype=np.float64)

    def shap_values(self, X: np.ndarray, check_additivity: bool = False) -> np.ndarray:
        f = self._form
        z = (np.where(np.isnan(X), f["median"], X) - f["mean"]) / f["scale"]
        return z[:, :, None] * np.asarray(f["coef"]).T[None, :, :]  # [n, F, S]


def _explainer(learner: Learner) -> Any:
    form = learner.linear_form()
    if form is not None:
        return LinearShap(form)
    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return shap.TreeExplainer(learner.tree_model())  # model_output="raw": log-odds / raw scores


def _raw_shap(learner: Learner, explainer: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[n, F, S]`` values and ``[S]`` base in the booster's raw-score space.

    S is 1 for regression and binary models (toward ``classes_[1]``), else one slice per
    class the fold saw, in its ``classes_`` order.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x_in = X if getattr(explainer, "takes_raw_x", False) else _tree_input(learner, X)
            raw = explainer.shap_values(x_in, check_additivity=False)
    except Exception as exc:  # library-specific failures (e.g. unsupported categorical handling)
        raise ExplainError(f"SHAP failed for a {learner.spec.kind} fold model: {exc}",
                           hint="explain a model trained without categorical features, or report this") from exc
    values = np.stack(raw, axis=-1) if isinstance(raw, list) else np.asarray(raw)
    values = values.astype(np.float64, copy=False)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if values.ndim == 2:
        values = values[:, :, None]
    if values.shape[2] == 2 and base.shape[0] == 2:  # a two-column binary output: keep classes_[1]
        values, base = values[:, :, 1:], base[1:]
    return values, base


def _class_slots(values: np.ndarray, base: np.ndarray, fold_classes: Any,
                 classes: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Place one fold's SHAP slices under the bundle's classes (absent classes NaN).

    A binary fold's values are log-odds toward its ``classes_[1]``; the log-odds of its
    ``classes_[0]`` are their negation, so both classes get an exact, additive slice.
    """
    n, f, _ = values.shape
    out = np.full((n, f, len(classes)), np.nan)
    out_base = np.full(len(classes), np.nan)
    pos = {str(c): i for i, c in enumerate(classes)}
    seen = [pos.get(str(c)) for c in np.asarray(fold_classes).tolist()]
    if any(p is None for p in seen):
        raise ExplainError(f"fold classes {np.asarray(fold_classes).tolist()} are not among {list(classes)}",
                           hint="the bundle is inconsistent: re-train it")
    if values.shape[2] == 1 and len(seen) == 2:
        out[:, :, seen[1]], out_base[seen[1]] = values[:, :, 0], base[0]
        out[:, :, seen[0]], out_base[seen[0]] = -values[:, :, 0], -base[0]
    elif values.shape[2] == len(seen):
        out[:, :, seen], out_base[seen] = values, base
    else:
        raise ExplainError(f"SHAP returned {values.shape[2]} output slice(s) for {len(seen)} fold classes",
                           hint="the fold model's output does not match its classes: re-train the bundle")
    return out, out_base


def router_groups(members: Any, fallback: str | None = None) -> list[list[str]]:
    """The member groups a regime router can route a row to: one per regime specialist (a member
    or a list of members averaged), plus the fallback member.  Accepts the router's ``members``
    mapping or its JSON ``[[regime, member(s)], ...]`` list."""
    pairs = members.items() if isinstance(members, Mapping) else [tuple(p) for p in members or []]
    groups = [[m] if isinstance(m, str) else [str(x) for x in m] for _, m in pairs]
    if fallback:
        groups.append([str(fallback)])
    return [list(g) for g in dict.fromkeys(tuple(g) for g in groups)]


def member_weights(names: Sequence[str], n: int, *, method: str | None = None,
                   weights: Mapping[str, float] | None = None, per_member: Mapping[str, np.ndarray] | None = None,
                   combined: np.ndarray | None = None, groups: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """``[n, m]`` weight of each member in each row's prediction, so SHAP values combine as outputs do.

    * mean (or no ensemble): ``1/m``; ``weighted``: the ensemble's normalised weights;
    * ``regime_router``: each row's routed specialist (``groups``, see :func:`router_groups`;
      default: every member alone), found as the group whose mean output the router copied
      into ``combined``; its members share the row equally.  Matching the actual routed
      output keeps hysteresis and confidence fallbacks in one place (the router).  Rows no
      group produced are NaN: nothing to explain;
    * ``majority_vote`` / ``stacking`` combine members non-linearly, so no additive split
      exists: members are averaged with equal weight and the explanation describes their
      mean log-odds, not the meta output (logged).
    """
    m = len(names)
    if method in _EQUAL_WEIGHT_METHODS or method in _NON_ADDITIVE_METHODS:
        if method in _NON_ADDITIVE_METHODS and m > 1:
            log.info("%s ensembles are not additive in SHAP space: explaining the members' equal-weight mean",
                     method)
        return np.full((n, m), 1.0 / m)
    if method == "weighted":
        w = np.array([float((weights or {}).get(nm, np.nan)) for nm in names])
        if not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ExplainError(f"weighted ensemble lacks usable weights for members {list(names)}: {weights}",
                               hint="the bundle is inconsistent: re-train it")
        return np.broadcast_to(w / w.sum(), (n, m)).copy()
    if method == "regime_router":
        if per_member is None or combined is None:
            raise ExplainError("a regime router needs the members' and the routed outputs to split its rows")
        routed = np.asarray(combined, dtype=np.float64).reshape(n, -1)
        pos = {nm: j for j, nm in enumerate(names)}
        out = np.zeros((n, m))
        hits = np.zeros(n)
        for group in groups or [[nm] for nm in names]:  # a few specialists, not rows
            if any(g not in pos for g in group):
                raise ExplainError(f"regime router routes to member(s) {list(group)} not in {list(names)}",
                                   hint="the bundle is inconsistent: re-train it")
            mean = np.mean(np.stack([np.asarray(per_member[g], dtype=np.float64).reshape(n, -1) for g in group]),
                           axis=0)
            hit = np.all(np.isclose(mean, routed, rtol=0.0, atol=1e-12), axis=1)
            for g in group:
                out[:, pos[g]] += hit / len(group)
            hits += hit
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(hits[:, None] > 0, out / hits[:, None], np.nan)
    raise ExplainError(f"cannot explain ensemble method {method!r}",
                       hint="explain a bundle combined by mean, weighted, vote, stacking or regime_router")


def ensemble_shap(members: Mapping[str, Sequence[Learner]], X: np.ndarray, *, task: str,
                  classes: Sequence[Any] | None, weights: np.ndarray,
                  explainers: Mapping[str, Sequence[Any]] | None = None,
                  on_fold: Callable[[], Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise SHAP values ``[n, F, C]`` and base values ``[n, C]`` of a fold-averaged ensemble.

    Folds are averaged with equal weight as :func:`hydraquant.models.ensemble.fold_average`
    averages their outputs (a class a fold never saw is averaged over the folds that know
    it); members are combined with ``weights`` (see :func:`member_weights`).  Values are
    in raw-score space: per-class log-odds (binary: log-odds of that class against the
    other), raw output units for regression (C = 1).  Additive: values summed over
    features plus the base equal the weighted fold-mean raw margin of each row.
    """
    n, f = X.shape
    c = 1 if task == "regression" else len(classes or [])
    total = np.zeros((n, f, c))
    total_base = np.zeros((n, c))
    for j, (name, learners) in enumerate(members.items()):
        acc = np.zeros((n, f, c))
        acc_base = np.zeros(c)
        known = np.zeros(c)
        for i, learner in enumerate(learners):
            explainer = explainers[name][i] if explainers is not None else _explainer(learner)
            values, base = _raw_shap(learner, explainer, X)
            if task != "regression":
                values, base = _class_slots(values, base, learner.classes_, classes or [])
            ok = np.isfinite(base)
            acc[:, :, ok] += values[:, :, ok]
            acc_base[ok] += base[ok]
            known += ok
            if on_fold is not None:
                on_fold()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean, mean_base = acc / known, acc_base / known  # 0/0 -> NaN: no fold knows that class
        w = weights[:, j]
        total += w[:, None, None] * mean
        total_base += w[:, None] * mean_base[None, :]
    return total, total_base


def contribution_frame(values: np.ndarray, base: np.ndarray, feature_names: Sequence[str], k: int,
                       explained: pl.Series | None = None) -> pl.DataFrame:
    """``[explained_class,] feature_1, contribution_1, ..., feature_k, contribution_k, base_value``.

    ``values`` is ``[n, F]`` (one slice per row already chosen); rows without an
    explanation (NaN) get nulls rather than invented drivers.
    """
    n, f = values.shape
    k = min(int(k), f)
    idx = top_k_indices(values, k) if n else np.zeros((0, k), dtype=np.int64)
    vals = np.take_along_axis(values, idx, axis=1)
    names = np.where(np.isnan(vals), None, np.asarray(list(feature_names), dtype=object)[idx])
    cols: list[pl.Series] = [] if explained is None else [explained.alias("explained_class")]
    for i in range(k):
        cols.append(pl.Series(f"feature_{i + 1}", names[:, i], dtype=pl.String))
        cols.append(pl.Series(f"contribution_{i + 1}", vals[:, i], dtype=pl.Float64).fill_nan(None))
    cols.append(pl.Series("base_value", base, dtype=pl.Float64).fill_nan(None))
    return pl.DataFrame(cols)


def explain_rows(members: Mapping[str, Sequence[Learner]], X: np.ndarray, *, task: str,
                 classes: Sequence[Any] | None, feature_names: Sequence[str], class_index: np.ndarray | None,
                 weights: np.ndarray, k: int, chunk_rows: int = 20_000,
                 progress: ProgressCallback | None = None) -> pl.DataFrame:
    """Top-``k`` signed drivers of each row's prediction (see :func:`contribution_frame`).

    ``class_index`` picks the explained class per row (-1: none, e.g. a NaN prediction);
    ignored for regression.  Rows are explained in chunks of ``chunk_rows`` so memory
    stays bounded (``[chunk, F, C]`` floats); ``progress(done, total)`` counts fold-model
    passes.  The tree explainers are built once per fold model and reused.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ExplainError(f"k must be an integer >= 1 (the number of top contributions per row), got {k!r}",
                           hint="ask for at least one contribution, e.g. k=3")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != len(feature_names):
        raise ExplainError(f"X has shape {X.shape}, expected [n, {len(feature_names)}]",
                           hint="pass rows with the model's ordered feature columns")
    n = X.shape[0]
    if k > len(feature_names):
        log.warning("k=%d exceeds the %d features: showing all of them", k, len(feature_names))
    explainers = {name: [_explainer(lr) for lr in learners] for name, learners in members.items()}
    n_folds = sum(len(v) for v in members.values())
    bounds = list(range(0, n, max(int(chunk_rows), 1)))  # no rows: no SHAP call (shap fails on empty X)
    total, done = len(bounds) * n_folds, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    regression = task == "regression"
    pick = np.zeros(n, dtype=np.int64) if regression or class_index is None else np.asarray(class_index, np.int64)
    parts = []
    for lo in bounds:
        hi = min(lo + max(int(chunk_rows), 1), n)
        values, base = ensemble_shap(members, X[lo:hi], task=task, classes=classes, weights=weights[lo:hi],
                                     explainers=explainers, on_fold=step)
        rows = np.arange(hi - lo)
        sel = np.clip(pick[lo:hi], 0, None)
        chosen, chosen_base = values[rows, :, sel], base[rows, sel]
        none = pick[lo:hi] < 0
        chosen[none], chosen_base[none] = np.nan, np.nan
        parts.append((chosen, chosen_base))
    values = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(feature_names)))
    base = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    explained = None
    if not regression:
        labels = pl.Series("explained_class", list(classes or [])).gather(np.clip(pick, 0, None))
        explained = pl.select(pl.when(pl.lit(pl.Series(pick >= 0))).then(labels).otherwise(None)).to_series()
    return contribution_frame(values, base, feature_names, k, explained)


def explained_class_index(proba: np.ndarray) -> np.ndarray:
    """Per row the column of the highest calibrated probability; -1 where the row has none (NaN)."""
    p = np.asarray(proba, dtype=np.float64)
    ok = np.isfinite(p).any(axis=1)
    return np.where(ok, np.argmax(np.where(np.isfinite(p), p, -np.inf), axis=1), -1)


def holdout_drivers(model: Any, features: pl.DataFrame, n: int = 10, k: int = 3) -> pl.DataFrame | None:
    """The last ``n`` holdout rows of a run's trained model with their top-``k`` drivers, or None.

    Why: the report shows *why the latest signals fired* from what the run already holds
    (the fold learners, the holdout's raw and calibrated outputs, the feature table), with
    the same fold/member combination :meth:`Predictor.explain` applies to the stored bundle.
    ``model`` is a :class:`~hydraquant.pipeline.train_stage.TrainedModel`; ``features``
    holds ``ts, symbol`` and its features.  Returns ``ts, symbol, [explained_class,]
    p_explained | prediction, feature_i, contribution_i..., base_value, explained_members``.
    Members without exact SHAP (logistic, MLP, forests) are left out with the boosters'
    weights renormalised, which ``explained_members`` states.  None (logged) when no member
    is a booster, there are no holdout rows, or SHAP fails: a report table must never
    sink a finished run.
    """
    try:
        return _holdout_drivers(model, features, n, k)
    except Exception as exc:  # noqa: BLE001 - see above; the reason is logged
        log.warning("no signal drivers for model %s: %s", getattr(model, "name", "?"), exc)
        return None


def _holdout_drivers(model: Any, features: pl.DataFrame, n: int, k: int) -> pl.DataFrame | None:
    from hydraquant.models.predictor import member_output

    members = {name: [f.learner for f in cv.folds] for name, cv in model.cv.items()}
    explained = [name for name, lrs in members.items() if all(has_exact_shap(lr) for lr in lrs)]
    if not explained:
        log.info("no signal drivers for model %s: no member with exact SHAP", model.name)
        return None
    keys = model.holdout_keys.with_row_index("_row")
    if keys.height == 0:
        return None
    last = keys.sort(["ts", "symbol"]).tail(n).sort(["ts", "symbol"])
    rows = last["_row"].to_numpy()
    table = last.drop("_row").join(features.select("ts", "symbol", *model.features), on=["ts", "symbol"],
                                   how="left", maintain_order="left")
    X = model_matrix(table, model.features)
    regression = model.task == "regression"
    method = (model.ensemble_json or {}).get("method")
    if method == "regime_router":
        ens = model.ensemble_json or {}
        per_member = {nm: member_output(lrs, X, model.task, model.classes) for nm, lrs in members.items()}
        weights = member_weights(list(members), len(rows), method=method, per_member=per_member,
                                 combined=np.asarray(model.holdout_raw)[rows],
                                 groups=router_groups(ens.get("members"), ens.get("fallback_member")))
    else:
        weights = member_weights(list(members), len(rows), method=method,
                                 weights=(model.ensemble_json or {}).get("weights"))
    # members without exact SHAP (MLP, forests) are left out and the others' weights renormalised:
    # the table then explains that part of the ensemble, and says so (explained_members)
    keep = [list(members).index(nm) for nm in explained]
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = weights[:, keep] / weights[:, keep].sum(axis=1, keepdims=True)
    calibrated = np.asarray(model.holdout, dtype=np.float64)[rows]
    class_index = None if regression else explained_class_index(calibrated)
    out = explain_rows({nm: members[nm] for nm in explained}, X, task=model.task, classes=model.classes, feature_names=model.features,
                       class_index=class_index, weights=weights, k=k)
    if regression:
        score = pl.Series("prediction", calibrated.reshape(-1))
    else:
        score = pl.Series("p_explained", np.where(class_index >= 0, calibrated[np.arange(len(rows)),
                                                                                 np.clip(class_index, 0, None)],
                                                  np.nan)).fill_nan(None)
    frame = pl.concat([table.select("ts", "symbol"), out, score.to_frame()], how="horizontal").with_columns(
        pl.lit(", ".join(explained) + ("" if len(explained) == len(members) else
                                   f" (of {', '.join(members)}; the others have no exact SHAP)"))
        .alias("explained_members"))
    lead = ["ts", "symbol", *([] if regression else ["explained_class"]), score.name]
    return frame.select(*lead, *(c for c in frame.columns if c not in lead))
