"""Post-hoc probability calibration (SPEC M4): isotonic, Platt, temperature, none.

Why: position sizing (Kelly with a calibration penalty) and confidence
thresholds read the probabilities literally, and boosted trees and neural nets
are systematically over- or under-confident.  Each calibrator maps a raw
``(n, k)`` probability matrix to a calibrated one whose rows sum to 1.

Leakage contract: ``fit`` must only ever see **out-of-fold** predictions
(rows each model did not train on).  Fitting on in-sample predictions learns
the model's over-fit confidence and makes live probabilities worse.  The
trainer and the run pipeline guarantee this; these classes cannot check it.

Every fitted parameter lives in ``to_json()`` (plain lists/floats), so
``calibrator_from_json`` rebuilds an identical transform without pickle.
Isotonic maps are evaluated with ``np.interp`` over the fitted thresholds,
which is exactly scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``
prediction, both before and after a JSON round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from scipy.optimize import minimize
from sklearn.isotonic import IsotonicRegression

from hydraquant.errors import HydraError

log = logging.getLogger(__name__)

Method = Literal["isotonic", "platt", "temperature", "none"]
METHODS: tuple[str, ...] = ("isotonic", "platt", "temperature", "none")
FORMAT = 1
T_MIN, T_MAX = 0.1, 8.0  # seed 003: unclamped LBFGS ran to T=10,038 (uniform output)
_EPS = 1e-12


class CalibrationError(HydraError):
    """Calibration inputs are inconsistent, or a calibrator is used before it is fitted."""


@runtime_checkable
class Calibrator(Protocol):
    """Maps raw class probabilities to calibrated ones (rows sum to 1)."""

    method: str

    def fit(
        self, proba: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> Calibrator: ...

    def transform(self, proba: np.ndarray) -> np.ndarray: ...

    def to_json(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- input checks


def _as_proba(proba: Any, n_classes: int | None = None, name: str = "proba") -> np.ndarray:
    """2-D float64 copy; a 1-D input is read as P(class 1) of a binary problem."""
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1.0 - p, p])
    if p.ndim != 2 or p.shape[1] < 2:
        raise CalibrationError(
            f"{name} must be an (n, k>=2) probability matrix, got shape {p.shape}",
            hint="pass predict_proba output with one column per class",
        )
    if n_classes is not None and p.shape[1] != n_classes:
        raise CalibrationError(
            f"{name} has {p.shape[1]} columns but the calibrator was fitted on {n_classes} classes",
            hint="transform predictions of the same model/classes the calibrator was fitted on",
        )
    return p


def _fit_inputs(
    proba: Any, y_idx: Any, sample_weight: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (proba, y_idx, weights); rows with non-finite probabilities are dropped."""
    p = _as_proba(proba)
    y = np.asarray(y_idx)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise CalibrationError(
            f"y_idx must be 1-D with {p.shape[0]} entries, got shape {y.shape}",
            hint="one label index per probability row",
        )
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise CalibrationError(
            f"y_idx must be integer class indices, got dtype {y.dtype}",
            hint="encode labels first, e.g. hydraquant.validation.metrics.encode_labels(y, classes)",
        )
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise CalibrationError(
            f"y_idx values must lie in [0, {p.shape[1]}), got [{y.min()}, {y.max()}]",
            hint="label indices follow the probability columns (classes_ order)",
        )
    w = np.ones(y.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != y.shape or not np.isfinite(w).all() or (w < 0).any():
        raise CalibrationError("sample_weight must be finite, non-negative and one per row")
    keep = np.isfinite(p).all(axis=1)
    if not keep.all():
        log.debug("calibration: dropping %d rows with non-finite probabilities", int((~keep).sum()))
        p, y, w = p[keep], y[keep], w[keep]
    if y.size == 0 or w.sum() <= 0:
        raise CalibrationError(
            "no usable rows to fit the calibrator on",
            hint="fit on out-of-fold predictions with finite probabilities and positive weights",
        )
    return p, y, w


def _renormalise(cal: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1; a row that calibrated to all-zero keeps its raw probabilities."""
    s = cal.sum(axis=1, keepdims=True)
    bad = ~(s[:, 0] > 0)
    out = np.divide(cal, s, out=np.zeros_like(cal), where=s > 0)
    out[bad] = raw[bad]
    return out


def _binary_expand(p1: np.ndarray) -> np.ndarray:
    p1 = np.clip(p1, 0.0, 1.0)
    return np.column_stack([1.0 - p1, p1])


def _check_fitted(n_classes: int | None, method: str) -> int:
    if n_classes is None:
        raise CalibrationError(
            f"{method} calibrator is not fitted", hint="call fit(oof_proba, y_idx) first"
        )
    return n_classes


def _check_method(data: Mapping[str, Any], method: str) -> None:
    if data.get("method") != method:
        raise CalibrationError(f"JSON holds method {data.get('method')!r}, expected {method!r}")


# --------------------------------------------------------------------------- isotonic


class IsotonicCalibrator:
    """One isotonic map per class (one-vs-rest), rows renormalised.

    Binary problems calibrate only the positive class and set ``p0 = 1 - p1``
    (two independent maps would not sum to 1 and renormalising them would
    distort the well-calibrated class).
    """

    method = "isotonic"

    def __init__(self) -> None:
        self.n_classes: int | None = None
        self.maps: list[tuple[np.ndarray, np.ndarray]] = []

    def fit(
        self, proba: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> IsotonicCalibrator:
        """Fit on OUT-OF-FOLD probabilities only (see the module docstring)."""
        p, y, w = _fit_inputs(proba, y_idx, sample_weight)
        k = p.shape[1]
        cols = [1] if k == 2 else list(range(k))
        self.maps = [_fit_isotonic(p[:, c], (y == c).astype(np.float64), w) for c in cols]
        self.n_classes = k
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        k = _check_fitted(self.n_classes, self.method)
        p = _as_proba(proba, k)
        if k == 2:
            return _binary_expand(np.interp(p[:, 1], *self.maps[0]))
        cal = np.column_stack([np.interp(p[:, c], *self.maps[c]) for c in range(k)])
        return _renormalise(cal, p)

    def to_json(self) -> dict[str, Any]:
        k = _check_fitted(self.n_classes, self.method)
        return {
            "method": self.method,
            "format": FORMAT,
            "n_classes": k,
            "maps": [{"x": x.tolist(), "y": yv.tolist()} for x, yv in self.maps],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IsotonicCalibrator:
        _check_method(data, cls.method)
        obj = cls()
        obj.n_classes = int(data["n_classes"])
        obj.maps = [(np.asarray(m["x"], float), np.asarray(m["y"], float)) for m in data["maps"]]
        return obj


def _fit_isotonic(
    x: np.ndarray, target: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds of an increasing isotonic fit; evaluated later with ``np.interp`` (= clip)."""
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)
    ir.fit(x, target, sample_weight=w)
    return np.asarray(ir.X_thresholds_, float), np.asarray(ir.y_thresholds_, float)


# --------------------------------------------------------------------------- Platt


class PlattCalibrator:
    """Per-class logistic map ``sigmoid(a * logit(p_c) + b)``, rows renormalised.

    Targets use Platt's smoothing ``(N+ + 1)/(N+ + 2)`` and ``1/(N- + 2)`` so a
    class that is (almost) never or always true still gets finite parameters
    instead of an intercept running to infinity.  Binary problems fit the
    positive class only.
    """

    method = "platt"

    def __init__(self) -> None:
        self.n_classes: int | None = None
        self.a: np.ndarray = np.empty(0)
        self.b: np.ndarray = np.empty(0)

    def fit(
        self, proba: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> PlattCalibrator:
        """Fit on OUT-OF-FOLD probabilities only (see the module docstring)."""
        p, y, w = _fit_inputs(proba, y_idx, sample_weight)
        k = p.shape[1]
        cols = [1] if k == 2 else list(range(k))
        params = np.array([_fit_platt(_logit(p[:, c]), y == c, w) for c in cols])
        self.a, self.b = params[:, 0], params[:, 1]
        self.n_classes = k
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        k = _check_fitted(self.n_classes, self.method)
        p = _as_proba(proba, k)
        if k == 2:
            return _binary_expand(_sigmoid(self.a[0] * _logit(p[:, 1]) + self.b[0]))
        cal = _sigmoid(self.a[None, :] * _logit(p) + self.b[None, :])
        return _renormalise(cal, p)

    def to_json(self) -> dict[str, Any]:
        k = _check_fitted(self.n_classes, self.method)
        return {
            "method": self.method,
            "format": FORMAT,
            "n_classes": k,
            "a": self.a.tolist(),
            "b": self.b.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlattCalibrator:
        _check_method(data, cls.method)
        obj = cls()
        obj.n_classes = int(data["n_classes"])
        obj.a = np.asarray(data["a"], float)
        obj.b = np.asarray(data["b"], float)
        return obj


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


def _fit_platt(s: np.ndarray, pos: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    n_pos, n_neg = float(w[pos].sum()), float(w[~pos].sum())
    t = np.where(pos, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    wn = w / w.sum()

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * s + theta[1]
        # -[t log sig(z) + (1-t) log(1-sig(z))] = logaddexp(0, z) - t z
        loss = float(np.sum(wn * (np.logaddexp(0.0, z) - t * z)))
        g = wn * (_sigmoid(z) - t)
        return loss, np.array([np.sum(g * s), np.sum(g)])

    res = minimize(nll, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


# --------------------------------------------------------------------------- temperature


class TemperatureCalibrator:
    """One scalar T for all classes: ``softmax(log(p) / T)`` (seed 003).

    T is fitted by minimising the (weighted) NLL with L-BFGS-B inside the
    bounds [0.1, 8]; T > 1 softens over-confident models, T < 1 sharpens.
    Keeps the argmax (a monotone map of every column at once).
    """

    method = "temperature"

    def __init__(self) -> None:
        self.n_classes: int | None = None
        self.temperature: float = 1.0

    def fit(
        self, proba: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> TemperatureCalibrator:
        """Fit on OUT-OF-FOLD probabilities only (see the module docstring)."""
        p, y, w = _fit_inputs(proba, y_idx, sample_weight)
        z = np.log(np.clip(p, _EPS, 1.0))
        z_true = z[np.arange(y.size), y]
        wn = w / w.sum()

        def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
            t = theta[0]
            s = z / t
            m = s.max(axis=1, keepdims=True)
            e = np.exp(s - m)
            tot = e.sum(axis=1)
            lse = m[:, 0] + np.log(tot)
            loss = float(np.sum(wn * (lse - z_true / t)))
            mean_z = (e * z).sum(axis=1) / tot  # E_softmax[z]
            grad = float(np.sum(wn * (z_true - mean_z))) / (t * t)
            return loss, np.array([grad])

        res = minimize(nll, np.array([1.0]), jac=True, method="L-BFGS-B", bounds=[(T_MIN, T_MAX)])
        self.temperature = float(np.clip(res.x[0], T_MIN, T_MAX))
        if self.temperature in (T_MIN, T_MAX):
            log.warning("temperature calibration hit its clamp: T=%s", self.temperature)
        self.n_classes = p.shape[1]
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        k = _check_fitted(self.n_classes, self.method)
        p = _as_proba(proba, k)
        s = np.log(np.clip(p, _EPS, 1.0)) / self.temperature
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        k = _check_fitted(self.n_classes, self.method)
        return {
            "method": self.method,
            "format": FORMAT,
            "n_classes": k,
            "temperature": self.temperature,
            "bounds": [T_MIN, T_MAX],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TemperatureCalibrator:
        _check_method(data, cls.method)
        obj = cls()
        obj.n_classes = int(data["n_classes"])
        obj.temperature = float(data["temperature"])
        return obj


# --------------------------------------------------------------------------- none


class IdentityCalibrator:
    """No calibration; still validates shapes so a wrong bundle fails loudly."""

    method = "none"

    def __init__(self) -> None:
        self.n_classes: int | None = None

    def fit(
        self, proba: np.ndarray, y_idx: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> IdentityCalibrator:
        self.n_classes = _as_proba(proba).shape[1]
        return self

    def transform(self, proba: np.ndarray) -> np.ndarray:
        return _as_proba(proba, self.n_classes)

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "format": FORMAT, "n_classes": self.n_classes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IdentityCalibrator:
        _check_method(data, cls.method)
        obj = cls()
        n = data.get("n_classes")
        obj.n_classes = None if n is None else int(n)
        return obj


_CLASSES: dict[str, Any] = {
    "isotonic": IsotonicCalibrator,
    "platt": PlattCalibrator,
    "temperature": TemperatureCalibrator,
    "none": IdentityCalibrator,
}


def make_calibrator(method: Method) -> Calibrator:
    """An unfitted calibrator for ``method``."""
    if method not in _CLASSES:
        raise CalibrationError(
            f"unknown calibration method {method!r}", hint=f"use one of {list(METHODS)}"
        )
    return _CLASSES[method]()


def calibrator_from_json(data: Mapping[str, Any]) -> Calibrator | RegressionCalibrator:
    """Rebuild a fitted calibrator from its ``to_json()`` dict (no pickle).

    Also restores a :class:`RegressionCalibrator` (method ``"isotonic_regression"``),
    so a bundle's ``calibration.json`` needs one loader whatever the task.
    """
    method = data.get("method") if isinstance(data, Mapping) else None
    if method == RegressionCalibrator.method:
        return RegressionCalibrator.from_json(data)
    if method not in _CLASSES:
        raise CalibrationError(
            f"calibration JSON has unknown method {method!r}",
            hint=f"expected one of {list(METHODS)}; was the file written by hydraquant?",
        )
    return _CLASSES[method].from_json(data)


def fit_per_horizon(
    probas: Mapping[str, np.ndarray],
    ys: Mapping[str, np.ndarray],
    method: Method,
    sample_weights: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Calibrator]:
    """One calibrator per prediction horizon (seed 003 fits a T per horizon H0..H5):
    horizons differ in base rates and model sharpness, so one shared map is wrong for all."""
    missing = set(probas) ^ set(ys)
    if missing:
        raise CalibrationError(
            f"horizons {sorted(map(str, missing))} are not in both probas and ys",
            hint="pass OOF probabilities and label indices for the same horizons",
        )
    sw = sample_weights or {}
    return {h: make_calibrator(method).fit(probas[h], ys[h], sw.get(h)) for h in probas}


# --------------------------------------------------------------------------- regression


class RegressionCalibrator:
    """Isotonic map from a regressor's prediction to the realised target (seed 000 hydra_v3).

    Why: tree regressors shrink extremes toward the mean; a monotone map
    restores the scale without changing the ranking.  Like the classifiers,
    fit on out-of-fold predictions only.  NaN predictions stay NaN.
    """

    method = "isotonic_regression"

    def __init__(self) -> None:
        self.x: np.ndarray | None = None
        self.y: np.ndarray | None = None

    def fit(
        self, pred: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> RegressionCalibrator:
        pr = np.asarray(pred, dtype=np.float64).ravel()
        yt = np.asarray(y, dtype=np.float64).ravel()
        if pr.shape != yt.shape:
            raise CalibrationError(f"pred and y lengths differ: {pr.size} vs {yt.size}")
        w = np.ones(pr.size) if sample_weight is None else np.asarray(sample_weight, float)
        keep = np.isfinite(pr) & np.isfinite(yt) & np.isfinite(w) & (w > 0)
        if keep.sum() < 2:
            raise CalibrationError(
                "need at least 2 finite (prediction, target) pairs to calibrate a regressor",
                hint="fit on out-of-fold predictions with realised targets",
            )
        ir = IsotonicRegression(out_of_bounds="clip", increasing=True)
        ir.fit(pr[keep], yt[keep], sample_weight=w[keep])
        self.x = np.asarray(ir.X_thresholds_, float)
        self.y = np.asarray(ir.y_thresholds_, float)
        return self

    def transform(self, pred: np.ndarray) -> np.ndarray:
        if self.x is None or self.y is None:
            raise CalibrationError("regression calibrator is not fitted", hint="call fit first")
        pr = np.asarray(pred, dtype=np.float64)
        out = np.interp(pr, self.x, self.y)
        return np.where(np.isfinite(pr), out, np.nan)

    def to_json(self) -> dict[str, Any]:
        if self.x is None or self.y is None:
            raise CalibrationError("regression calibrator is not fitted", hint="call fit first")
        return {"method": self.method, "format": FORMAT, "x": self.x.tolist(), "y": self.y.tolist()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegressionCalibrator:
        _check_method(data, cls.method)
        obj = cls()
        obj.x = np.asarray(data["x"], float)
        obj.y = np.asarray(data["y"], float)
        return obj
