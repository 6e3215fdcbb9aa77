"""Combining model probabilities (SPEC M5): averages, votes, AUC-PR weights,
a time-safe stacked meta-learner and a regime router with hysteresis.

Inputs are ``(n, k)`` probability matrices whose columns follow one shared
``classes_`` order; a row with NaN in any input yields a NaN output row
(no prediction), never a silently re-weighted one.

Everything fitted serialises to JSON (``to_json``), and ``ensemble_from_json``
rebuilds an object with ``predict_proba(Mapping[member, proba])``:

==================  =====================================================
``method``          object
==================  =====================================================
``mean``            :class:`MeanEnsemble` (fold average across members)
``weighted``        :class:`WeightedEnsemble` (e.g. squared AUC-PR weights)
``majority_vote``   :class:`VoteEnsemble`
``stacking``        :class:`StackedEnsemble`
``regime_router``   :class:`RegimeRouter` (``predict_proba`` needs ``regimes=``)
==================  =====================================================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from numba import njit

from hydraquant.errors import HydraError
from hydraquant.models.calibration import IsotonicCalibrator, calibrator_from_json
from hydraquant.validation.metrics import average_precision

log = logging.getLogger(__name__)

FORMAT = 1


class EnsembleError(HydraError):
    """Ensemble inputs are inconsistent or an ensemble is used before it is fitted."""


# --------------------------------------------------------------------------- helpers


def _stack(probas: Sequence[Any], what: str = "probas") -> np.ndarray:
    """(m, n, k) float64 array; every member must have the same shape."""
    if len(probas) == 0:
        raise EnsembleError(f"{what} is empty", hint="pass at least one probability matrix")
    arrs = [np.asarray(p, dtype=np.float64) for p in probas]
    arrs = [np.column_stack([1.0 - a, a]) if a.ndim == 1 else a for a in arrs]
    shapes = {a.shape for a in arrs}
    if len(shapes) != 1 or arrs[0].ndim != 2:
        raise EnsembleError(
            f"{what} must all be (n, k) matrices of one shape, got {sorted(shapes)}",
            hint="predict every member on the same rows with the same classes_ order",
        )
    return np.stack(arrs)


def _norm_weights(w: Any, m: int) -> np.ndarray:
    wa = np.ones(m) if w is None else np.asarray(w, dtype=np.float64)
    if wa.shape != (m,) or not np.isfinite(wa).all() or (wa < 0).any() or wa.sum() <= 0:
        raise EnsembleError(
            f"weights must be {m} finite non-negative numbers with a positive sum, got {w!r}",
            hint="use auc_pr_weights(...) or equal weights (None)",
        )
    return wa / wa.sum()


# --------------------------------------------------------------------------- averages


def fold_average(
    probas: Sequence[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """(Weighted) mean of fold models' probabilities on the same rows (seed 000).

    Why: each walk-forward fold model saw a different history; averaging them
    is cheaper and more stable than refitting one model on everything.
    """
    st = _stack(probas)
    w = _norm_weights(weights, st.shape[0])
    return np.tensordot(w, st, axes=1)


def weighted_average(probas: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean across named members; every member needs a weight (0 drops it)."""
    names = list(probas)
    missing = [n for n in names if n not in weights]
    if missing:
        raise EnsembleError(
            f"no weight for member(s) {missing}", hint="weights must name every member"
        )
    w = _norm_weights([weights[n] for n in names], len(names))
    keep = [i for i, wi in enumerate(w) if wi > 0]
    return fold_average([probas[names[i]] for i in keep], w[keep])


def majority_vote(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Plurality vote of the members' argmax classes, as a vote-share matrix (seed 004).

    Row ``i`` is ``votes_i / m``, so it sums to 1 and a unanimous vote is 1.0.
    Ties for the most votes are broken by the members' mean probability: the
    tied classes' combined vote share is split among them in proportion to
    their mean probability, so ``argmax`` of the output is the tie winner
    (an exact tie in mean probability too falls to the lowest class index)
    and untied rows are pure vote shares.  Rows with NaN in any member are NaN.
    """
    st = _stack(probas)
    m, n, k = st.shape
    bad = ~np.isfinite(st).all(axis=(0, 2))
    votes = np.argmax(np.where(np.isfinite(st), st, -np.inf), axis=2)  # (m, n)
    counts = np.zeros((n, k))
    np.add.at(counts, (np.broadcast_to(np.arange(n), (m, n)), votes), 1.0)
    share = counts / m
    top = counts == counts.max(axis=1, keepdims=True)
    tied = top.sum(axis=1) > 1
    if tied.any():
        t = top[tied]
        total = share[tied].max(axis=1, keepdims=True) * t.sum(axis=1, keepdims=True)
        mean_p = st[:, tied, :].mean(axis=0) * t
        denom = mean_p.sum(axis=1, keepdims=True)
        frac = np.divide(mean_p, denom, out=t / t.sum(axis=1, keepdims=True), where=denom > 0)
        share[tied] = np.where(t, frac * total, share[tied])
    share[bad] = np.nan
    return share


def auc_pr_weights(
    oof: Mapping[str, np.ndarray], y_idx: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Squared AUC-PR weights ``w_m = s_m^2 / sum_j s_j^2`` (seed 003).

    Squaring keeps the ranking but lets the better model dominate.  AUC-PR is
    the average precision of P(class 1) for binary problems, the mean of the
    one-vs-rest average precisions (classes absent from the rows skipped)
    otherwise.  All models are scored on the same rows: ``mask`` and finite in
    every model that has any finite prediction there.  A model with NaN
    AUC-PR (no usable rows) gets 0; if every score is 0/NaN the weights are equal.
    Per horizon: call once per horizon (:func:`auc_pr_weights_per_horizon`).
    """
    names = list(oof)
    if not names:
        raise EnsembleError("oof is empty", hint="pass {member: out-of-fold proba}")
    st = _stack([oof[n] for n in names], "oof")
    y = np.asarray(y_idx)
    if y.shape != (st.shape[1],):
        raise EnsembleError(f"y_idx must have {st.shape[1]} entries, got shape {y.shape}")
    rows = np.ones(st.shape[1], bool) if mask is None else np.asarray(mask, bool)
    finite = np.isfinite(st).all(axis=2)  # (m, n)
    usable = (finite & rows).any(axis=1)
    common = rows & finite[usable].all(axis=0) if usable.any() else np.zeros_like(rows)
    scores = np.full(len(names), np.nan)
    for i in np.flatnonzero(usable):  # loop over members, not rows
        scores[i] = _auc_pr(y[common], st[i][common])
    sq = np.where(np.isfinite(scores), scores, 0.0) ** 2
    if sq.sum() <= 0:
        log.warning("auc_pr_weights: no model has a usable AUC-PR; using equal weights")
        return {n: 1.0 / len(names) for n in names}
    w = sq / sq.sum()
    return {n: float(wi) for n, wi in zip(names, w, strict=True)}


def _auc_pr(y: np.ndarray, p: np.ndarray) -> float:
    if y.size == 0:
        return float("nan")
    k = p.shape[1]
    if k == 2:
        return average_precision((y == 1).astype(np.int8), p[:, 1])
    vals = [average_precision((y == c).astype(np.int8), p[:, c]) for c in range(k)]
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def auc_pr_weights_per_horizon(
    oof: Mapping[str, Mapping[str, np.ndarray]],
    ys: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """``{horizon: {member: weight}}``: a different model may dominate each horizon."""
    masks = masks or {}
    return {h: auc_pr_weights(oof[h], ys[h], masks.get(h)) for h in oof}


# --------------------------------------------------------------------------- simple ensembles


class MeanEnsemble:
    """Equal-weight mean across members (the bundle default)."""

    method = "mean"

    def predict_proba(self, base_probas: Mapping[str, np.ndarray]) -> np.ndarray:
        return fold_average(list(base_probas.values()))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "format": FORMAT}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MeanEnsemble:
        return cls()


class WeightedEnsemble:
    """Fixed weights per member (e.g. from :func:`auc_pr_weights`)."""

    method = "weighted"

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.weights = {str(k): float(v) for k, v in weights.items()}

    def predict_proba(self, base_probas: Mapping[str, np.ndarray]) -> np.ndarray:
        return weighted_average(base_probas, self.weights)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "format": FORMAT, "weights": dict(self.weights)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WeightedEnsemble:
        return cls(data["weights"])


class VoteEnsemble:
    """Majority vote across members (see :func:`majority_vote`)."""

    method = "majority_vote"

    def predict_proba(self, base_probas: Mapping[str, np.ndarray]) -> np.ndarray:
        return majority_vote(list(base_probas.values()))

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "format": FORMAT}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VoteEnsemble:
        return cls()


# --------------------------------------------------------------------------- stacking

MetaKind = Literal["logistic", "lightgbm"]
_LGB_DEFAULTS: dict[str, Any] = {
    "max_depth": 3,
    "num_leaves": 7,
    "learning_rate": 0.1,
    "min_data_in_leaf": 20,
    "num_boost_round": 60,
}


class StackedEnsemble:
    """Meta-learner over members' out-of-fold probabilities (seed 004 §18.1/§22.6).

    Time-safe protocol (``fit``):

    1. rows are put in time order (``order``) and rows lacking an OOF
       prediction from any member are dropped;
    2. the first ``1 - holdout_fraction`` of them train the meta-learner
       (logistic ``C`` or a shallow LightGBM); if ``t_end`` is given, rows
       whose label ends at or after the calibration slice starts are purged;
    3. the later slice, starting strictly after the last meta-training time,
       fits a per-class isotonic calibration of the meta output.  The
       calibrator never sees a row the meta-learner trained on.

    ``fit_rows_`` / ``calib_rows_`` hold the original row indices of each
    slice for audit.  Base inputs must be out-of-fold: stacking in-sample
    predictions teaches the meta-learner to trust over-fit members.
    """

    method = "stacking"

    def __init__(
        self,
        meta: MetaKind = "logistic",
        C: float = 0.1,
        holdout_fraction: float = 0.2,
        *,
        seed: int = 42,
        lgb_params: Mapping[str, Any] | None = None,
    ) -> None:
        if meta not in ("logistic", "lightgbm"):
            raise EnsembleError(
                f"unknown meta learner {meta!r}", hint="use 'logistic' or 'lightgbm'"
            )
        if not 0.0 <= holdout_fraction < 1.0:
            raise EnsembleError(
                f"holdout_fraction must be in [0, 1), got {holdout_fraction}",
                hint="0.1-0.3 leaves enough recent rows to calibrate the meta output",
            )
        if C <= 0:
            raise EnsembleError(f"C must be > 0, got {C}")
        self.meta = meta
        self.C = float(C)
        self.holdout_fraction = float(holdout_fraction)
        self.seed = int(seed)
        self.lgb_params = {**_LGB_DEFAULTS, **dict(lgb_params or {})}
        self.members: list[str] = []
        self.n_classes: int | None = None
        self._coef: np.ndarray | None = None
        self._intercept: np.ndarray | None = None
        self._classes_seen: np.ndarray | None = None
        self._booster: Any = None
        self.calibrator: IsotonicCalibrator | None = None
        self.fit_rows_: np.ndarray = np.empty(0, np.int64)
        self.calib_rows_: np.ndarray = np.empty(0, np.int64)

    # -- features
    def _features(self, base_probas: Mapping[str, np.ndarray], fitting: bool) -> np.ndarray:
        if fitting:
            self.members = list(base_probas)
        missing = [m for m in self.members if m not in base_probas]
        if missing:
            raise EnsembleError(
                f"stacked ensemble needs member(s) {missing}",
                hint=f"pass probabilities for exactly {self.members}",
            )
        st = _stack([base_probas[m] for m in self.members], "base_probas")
        k = st.shape[2]
        if fitting:
            self.n_classes = k
        elif k != self.n_classes:
            raise EnsembleError(
                f"members have {k} classes, the meta-learner was fitted on {self.n_classes}"
            )
        cols = st[:, :, 1:] if k == 2 else st  # binary: p0 = 1 - p1 is redundant
        return np.concatenate(list(cols), axis=1)

    # -- fit
    def fit(
        self,
        base_probas: Mapping[str, np.ndarray],
        y_idx: np.ndarray,
        order: np.ndarray | None = None,
        *,
        t_end: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> StackedEnsemble:
        """Fit on time-ordered OOF base predictions; ``order`` is the row time (ts/t0 or an int)."""
        X = self._features(base_probas, fitting=True)
        n = X.shape[0]
        y = np.asarray(y_idx)
        if y.shape != (n,) or (n and (y.min() < 0 or y.max() >= self.n_classes)):
            raise EnsembleError(
                f"y_idx must be {n} class indices in [0, {self.n_classes})",
                hint="encode labels in the members' classes_ order",
            )
        y = y.astype(np.int64)
        w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, float)
        t = np.arange(n) if order is None else np.asarray(order)
        if t.shape != (n,):
            raise EnsembleError(f"order must have {n} entries, got shape {t.shape}")
        ok = np.flatnonzero(np.isfinite(X).all(axis=1))
        idx = ok[np.argsort(t[ok], kind="stable")]
        ts = t[idx]
        cut = round(len(idx) * (1.0 - self.holdout_fraction))
        if 0 < cut < len(idx):  # never split one timestamp across the two slices
            cut = int(np.searchsorted(ts, ts[cut - 1], side="right"))
        fit_rows, calib_rows = idx[:cut], idx[cut:]
        if t_end is not None and calib_rows.size:
            te = np.asarray(t_end)[fit_rows]
            fit_rows = fit_rows[te < t[calib_rows].min()]
        if np.unique(y[fit_rows]).size < 2:
            raise EnsembleError(
                f"meta-learner slice has {fit_rows.size} rows and fewer than 2 classes",
                hint="provide more out-of-fold rows or lower holdout_fraction",
            )
        self.fit_rows_, self.calib_rows_ = fit_rows, calib_rows
        self._fit_meta(X[fit_rows], y[fit_rows], w[fit_rows])
        self.calibrator = None
        if calib_rows.size:
            raw = self._meta_proba(X[calib_rows])
            self.calibrator = IsotonicCalibrator().fit(raw, y[calib_rows], w[calib_rows])
        else:
            log.warning("stacking: holdout slice is empty; meta output is not calibrated")
        log.info(
            "stacking: meta-learner on %d rows, calibration on %d", fit_rows.size, calib_rows.size
        )
        return self

    def _fit_meta(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        k = int(self.n_classes or 0)
        if self.meta == "logistic":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=self.C, max_iter=1000, random_state=self.seed)
            lr.fit(X, y, sample_weight=w)
            self._coef = np.asarray(lr.coef_, float)
            self._intercept = np.asarray(lr.intercept_, float)
            self._classes_seen = np.asarray(lr.classes_, np.int64)
            return
        import lightgbm as lgb

        p = dict(self.lgb_params)
        rounds = int(p.pop("num_boost_round"))
        params = {
            **p,
            "objective": "binary" if k == 2 else "multiclass",
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        if k != 2:
            params["num_class"] = k
        ds = lgb.Dataset(X, label=y, weight=w, free_raw_data=True)
        self._booster = lgb.train(params, ds, num_boost_round=rounds)

    def _meta_proba(self, X: np.ndarray) -> np.ndarray:
        k = int(self.n_classes or 0)
        if self.meta == "lightgbm":
            if self._booster is None:
                raise EnsembleError("stacked ensemble is not fitted", hint="call fit first")
            raw = np.asarray(self._booster.predict(X), float)
            return np.column_stack([1.0 - raw, raw]) if k == 2 else raw
        if self._coef is None or self._intercept is None or self._classes_seen is None:
            raise EnsembleError("stacked ensemble is not fitted", hint="call fit first")
        z = X @ self._coef.T + self._intercept
        if z.shape[1] == 1:  # sklearn binary: one logit for classes_seen[1]
            p1 = 0.5 * (1.0 + np.tanh(0.5 * z[:, 0]))
            seen = np.column_stack([1.0 - p1, p1])
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            seen = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((X.shape[0], k))
        out[:, self._classes_seen] = seen  # classes absent from the meta slice get 0
        return out

    def predict_proba(self, base_probas: Mapping[str, np.ndarray]) -> np.ndarray:
        """Calibrated meta probabilities; rows with a NaN member input are NaN."""
        if self.n_classes is None:
            raise EnsembleError("stacked ensemble is not fitted", hint="call fit first")
        X = self._features(base_probas, fitting=False)
        ok = np.isfinite(X).all(axis=1)
        out = np.full((X.shape[0], int(self.n_classes or 0)), np.nan)
        if ok.any():
            p = self._meta_proba(X[ok])
            out[ok] = self.calibrator.transform(p) if self.calibrator is not None else p
        return out

    # -- JSON
    def to_json(self) -> dict[str, Any]:
        if self.n_classes is None:
            raise EnsembleError("stacked ensemble is not fitted", hint="call fit first")
        model: dict[str, Any]
        if self.meta == "logistic":
            assert (
                self._coef is not None
                and self._intercept is not None
                and self._classes_seen is not None
            )
            model = {
                "coef": self._coef.tolist(),
                "intercept": self._intercept.tolist(),
                "classes_seen": self._classes_seen.tolist(),
            }
        else:
            model = {"model_text": self._booster.model_to_string()}
        return {
            "method": self.method,
            "format": FORMAT,
            "meta": self.meta,
            "C": self.C,
            "holdout_fraction": self.holdout_fraction,
            "seed": self.seed,
            "lgb_params": dict(self.lgb_params),
            "members": list(self.members),
            "n_classes": self.n_classes,
            "n_fit_rows": int(self.fit_rows_.size),
            "n_calib_rows": int(self.calib_rows_.size),
            "model": model,
            "calibrator": None if self.calibrator is None else self.calibrator.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StackedEnsemble:
        obj = cls(
            data["meta"],
            C=data["C"],
            holdout_fraction=data["holdout_fraction"],
            seed=data.get("seed", 42),
            lgb_params=data.get("lgb_params"),
        )
        obj.members = list(data["members"])
        obj.n_classes = int(data["n_classes"])
        model = data["model"]
        if obj.meta == "logistic":
            obj._coef = np.asarray(model["coef"], float)
            obj._intercept = np.asarray(model["intercept"], float)
            obj._classes_seen = np.asarray(model["classes_seen"], np.int64)
        else:
            import lightgbm as lgb

            obj._booster = lgb.Booster(model_str=model["model_text"])
        cal = data.get("calibrator")
        obj.calibrator = None if cal is None else calibrator_from_json(cal)  # type: ignore[assignment]
        return obj


# --------------------------------------------------------------------------- regime router


@njit(cache=True)
def _hysteresis_nb(
    codes: np.ndarray, new_group: np.ndarray, n_bars: int, default_code: int
) -> np.ndarray:
    """Active regime code per row: switch to a regime on its ``n_bars``-th consecutive
    observation; a missing regime (code < 0) breaks every run."""
    n = codes.size
    out = np.empty(n, np.int64)
    active = default_code
    prev = -1
    run = 0
    for i in range(n):
        if new_group[i]:
            active = default_code
            prev = -1
            run = 0
        c = codes[i]
        if c < 0:
            run = 0
        elif c == prev:
            run += 1
        else:
            run = 1
        prev = c
        if c >= 0 and run >= n_bars and c != active:
            active = c
        out[i] = active
    return out


class RegimeRouter:
    """Per-row choice of a regime-specific model with hysteresis (seed 004 §18.3, §23.5).

    A regime becomes *active* only once it has been observed for
    ``hysteresis_bars`` consecutive bars of the same symbol (counted on the
    bar where that happens), so a regime flickering around a threshold does
    not flip the model.  Until a regime is confirmed the ``default`` regime is
    active.  Causal: row t uses regimes up to t only.

    ``route`` takes the active regime's model probabilities; rows whose active
    regime has no model, or whose routed top probability is below
    ``min_confidence`` (seed 004 §22.6 falls back when the specialist is
    unsure), take ``fallback`` (NaN when no fallback is given).

    For bundles, ``members`` maps regime -> member name (or a list of member
    names, averaged: a specialist made of several learners) and
    ``fallback_member`` names the fallback member, so
    ``predict_proba(base_probas, regimes=...)`` works like the other ensembles.
    ``predict_active`` routes by regimes already confirmed upstream (a run
    computes them once on the full bar history, then routes subsets of rows).
    """

    method = "regime_router"

    def __init__(
        self,
        hysteresis_bars: int = 3,
        min_confidence: float = 0.0,
        default: str | int | None = None,
        *,
        members: Mapping[Any, str | Sequence[str]] | None = None,
        fallback_member: str | None = None,
    ) -> None:
        if int(hysteresis_bars) < 1:
            raise EnsembleError(f"hysteresis_bars must be >= 1, got {hysteresis_bars}")
        if not 0.0 <= min_confidence <= 1.0:
            raise EnsembleError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.hysteresis_bars = int(hysteresis_bars)
        self.min_confidence = float(min_confidence)
        self.default = default
        self.members = dict(members or {})
        self.fallback_member = fallback_member

    def active_regimes(self, regimes: Any, symbols: Any = None) -> np.ndarray:
        """Active regime label per row (object array; ``default`` before confirmation).

        Rows must be sorted by (symbol, ts); ``symbols=None`` means one series.
        Missing regimes (None/NaN) break a run and never become active.
        """
        codes, labels = _encode(regimes)
        n = codes.size
        new_group = _group_starts(symbols, n)
        default_code = labels.index(self.default) if self.default in labels else len(labels)
        active = _hysteresis_nb(codes, new_group, self.hysteresis_bars, default_code)
        table = np.empty(len(labels) + 1, dtype=object)
        table[: len(labels)] = labels
        table[len(labels)] = self.default
        return table[active]

    def route(
        self,
        regimes: Any,
        per_regime_probas: Mapping[Any, np.ndarray],
        fallback: np.ndarray | None = None,
        symbols: Any = None,
    ) -> np.ndarray:
        """Probabilities of each row's active-regime model (see the class docstring)."""
        return self.route_active(self.active_regimes(regimes, symbols), per_regime_probas, fallback)

    def route_active(
        self,
        active: Any,
        per_regime_probas: Mapping[Any, np.ndarray],
        fallback: np.ndarray | None = None,
    ) -> np.ndarray:
        """``route`` for rows whose active (hysteresis-confirmed) regime is already known."""
        if not per_regime_probas and fallback is None:
            raise EnsembleError("route needs per-regime probabilities or a fallback")
        shapes = [np.shape(p) for p in per_regime_probas.values()]
        if fallback is not None:
            shapes.append(np.shape(fallback))
        if len(set(shapes)) != 1:
            raise EnsembleError(
                f"per-regime and fallback probabilities differ in shape: {sorted(set(shapes))}",
                hint="predict every regime model on all rows, same classes_ order",
            )
        active = np.asarray(active, dtype=object)
        if len(active) != shapes[0][0]:
            raise EnsembleError(f"{len(active)} regimes for {shapes[0][0]} probability rows")
        out = (
            np.full(shapes[0], np.nan)
            if fallback is None
            else np.array(fallback, dtype=np.float64, copy=True)
        )
        for p, take in self._takes(active, per_regime_probas).values():
            out[take] = p[take]
        return out

    def specialist_rows(self, base_probas: Mapping[str, np.ndarray], active: Any) -> np.ndarray:
        """Rows a regime specialist answers (``False``: the fallback's row, or no model's)."""
        per, _ = self._resolve(base_probas)
        active = np.asarray(active, dtype=object)
        took = np.zeros(len(active), dtype=bool)
        for _, take in self._takes(active, per).values():
            took |= take
        return took

    def member_weights(
        self, names: Sequence[str], base_probas: Mapping[str, np.ndarray], active: Any
    ) -> np.ndarray:
        """``[n, len(names)]`` weight of each member in each routed row: ``1/k`` for the k members
        of the answering specialist, 1 for the fallback, NaN where no model answers.  Exact where
        matching outputs is not (a specialist of several learners equals none of them)."""
        per, _ = self._resolve(base_probas)
        active = np.asarray(active, dtype=object)
        col = {name: j for j, name in enumerate(names)}
        weights = np.zeros((len(active), len(names)))
        took = np.zeros(len(active), dtype=bool)
        for regime, (_, take) in self._takes(active, per).items():
            members = [self.members[regime]] if isinstance(self.members[regime], str) else self.members[regime]
            weights[np.ix_(take, [col[m] for m in members])] = 1.0 / len(members)
            took |= take
        if self.fallback_member is not None:
            weights[~took, col[self.fallback_member]] = 1.0
        else:
            weights[~took] = np.nan
        return weights

    def _takes(
        self, active: np.ndarray, per_regime_probas: Mapping[Any, np.ndarray]
    ) -> dict[Any, tuple[np.ndarray, np.ndarray]]:
        """regime -> (its probabilities, rows routed to it): active there and confident enough."""
        out = {}
        for regime, proba in per_regime_probas.items():  # loop over regimes, not rows
            p = np.asarray(proba, dtype=np.float64)
            take = active == regime
            if self.min_confidence > 0:
                top = np.where(np.isfinite(p), p, -np.inf)
                take &= (np.max(top, axis=1) if top.ndim == 2 else top) >= self.min_confidence
            out[regime] = (p, np.asarray(take, dtype=bool))
        return out

    def predict_proba(
        self, base_probas: Mapping[str, np.ndarray], *, regimes: Any, symbols: Any = None
    ) -> np.ndarray:
        """``route`` with member names from ``members``/``fallback_member``."""
        per, fb = self._resolve(base_probas)
        return self.route(regimes, per, fb, symbols)

    def predict_active(self, base_probas: Mapping[str, np.ndarray], active: Any) -> np.ndarray:
        """``route_active`` with member names from ``members``/``fallback_member``."""
        per, fb = self._resolve(base_probas)
        return self.route_active(active, per, fb)

    def _resolve(
        self, base_probas: Mapping[str, np.ndarray]
    ) -> tuple[dict[Any, np.ndarray], np.ndarray | None]:
        """Per-regime outputs (the mean of a specialist's members) and the fallback output."""
        names = {r: [m] if isinstance(m, str) else list(m) for r, m in self.members.items()}
        wanted = [m for ms in names.values() for m in ms] + [self.fallback_member]
        missing = [m for m in wanted if m and m not in base_probas]
        if missing:
            raise EnsembleError(f"regime router needs member(s) {missing}")
        per = {
            r: np.mean(np.stack([np.asarray(base_probas[m], dtype=np.float64) for m in ms]), axis=0)
            for r, ms in names.items()
        }
        fb = base_probas[self.fallback_member] if self.fallback_member else None
        return per, fb

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "format": FORMAT,
            "hysteresis_bars": self.hysteresis_bars,
            "min_confidence": self.min_confidence,
            "default": self.default,
            "members": [  # a list of pairs keeps int regime keys
                [r, m if isinstance(m, str) else list(m)] for r, m in self.members.items()
            ],
            "fallback_member": self.fallback_member,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegimeRouter:
        return cls(
            data["hysteresis_bars"],
            data["min_confidence"],
            data.get("default"),
            members={r: m if isinstance(m, str) else list(m) for r, m in data.get("members", [])},
            fallback_member=data.get("fallback_member"),
        )


def _encode(regimes: Any) -> tuple[np.ndarray, list[Any]]:
    """Dense int codes (sorted labels), -1 for missing, without a Python row loop."""
    if isinstance(regimes, pl.Series):
        s = regimes
    else:
        arr = np.asarray(regimes)
        # object arrays: let polars infer the type from all values, not the first one
        s = pl.Series("r", arr.tolist() if arr.dtype == object else arr, strict=False)
    if s.dtype.is_float():
        s = s.fill_nan(None)
    if s.dtype in (pl.Object, pl.Null):
        if s.len() == 0 or bool(s.is_null().all()):
            return np.full(s.len(), -1, dtype=np.int64), []
        raise EnsembleError(
            "regimes mix value types",
            hint="use one type for regime labels: all strings or all ints",
        )
    codes = s.rank("dense").fill_null(0).cast(pl.Int64).to_numpy() - 1
    labels = s.drop_nulls().unique().sort().to_list()
    return np.ascontiguousarray(codes, dtype=np.int64), labels


def _group_starts(symbols: Any, n: int) -> np.ndarray:
    flag = np.zeros(n, dtype=np.bool_)
    if n:
        flag[0] = True
    if symbols is None:
        return flag
    sym = symbols.to_numpy() if isinstance(symbols, pl.Series) else np.asarray(symbols)
    if sym.shape != (n,):
        raise EnsembleError(f"symbols must have {n} entries, got shape {sym.shape}")
    flag[1:] = sym[1:] != sym[:-1]
    if int(flag.sum()) != np.unique(sym).size:
        raise EnsembleError(
            "symbols are not contiguous: a symbol appears in more than one block",
            hint="sort rows by (symbol, ts) before routing",
        )
    return flag


# --------------------------------------------------------------------------- dispatch

_ENSEMBLES: dict[str, Any] = {
    "mean": MeanEnsemble,
    "weighted": WeightedEnsemble,
    "majority_vote": VoteEnsemble,
    "stacking": StackedEnsemble,
    "regime_router": RegimeRouter,
}


def ensemble_from_json(data: Mapping[str, Any]) -> Any:
    """Rebuild an ensemble from its ``to_json()`` dict, dispatching on ``data["method"]``."""
    method = data.get("method") if isinstance(data, Mapping) else None
    if method not in _ENSEMBLES:
        raise EnsembleError(
            f"ensemble JSON has unknown method {method!r}",
            hint=f"expected one of {sorted(_ENSEMBLES)}",
        )
    return _ENSEMBLES[method].from_json(data)
