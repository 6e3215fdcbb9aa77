"""Model zoo: one uniform learner interface over boosters and scikit-learn models (SPEC M1, M3).

Every learner encodes classification labels as ``classes_ = np.unique(y_train)``
and trains the library on the integer codes, so ``predict_proba`` columns always
follow ``classes_`` and the stored artifacts never depend on label types.

Predictions are always made by the *native* artifact that ``save`` writes
(LightGBM/XGBoost boosters truncated to the best iteration, a CatBoost model, or
for scikit-learn models the fitted pipeline whose ONNX twin is stored), so a
learner rebuilt by :func:`load_learner` predicts what the fitted one did.

Weights (M1/M3) are combined multiplicatively per row::

    w_i = sample_weight_i * balanced_i * cost_i
    balanced_i = n / (k * count(y_i))              when class_weight="balanced"
    cost_i     = sum_j cost_matrix[y_i, j]         when params["cost_matrix"] is given

so an asymmetric cost matrix (row = true class, column = predicted class) makes
mistakes on expensive true classes weigh more: a simple, documented stand-in for
a full cost-sensitive loss.  The same class/cost factors are applied to the
eval set so early stopping optimises the same objective.

Early stopping (boosters only) watches exactly the ``eval_set`` passed to ``fit`` (the
trainer's validation slice of the training fold); without one there is no early stopping
and ``best_iteration`` is None.  ``best_iteration`` is the *number of rounds kept*
(1-based, for every library) and the stored model is truncated to it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict

from hydraquant.errors import HydraError

log = logging.getLogger(__name__)

Kind = Literal["lightgbm", "xgboost", "catboost", "random_forest", "extra_trees", "logistic", "mlp"]
BOOSTERS = ("lightgbm", "xgboost", "catboost")
SKLEARN_KINDS = ("random_forest", "extra_trees", "logistic", "mlp")
LEARNER_JSON = "learner.json"
LINEAR_JSON = "linear.json"  # parameters of the linear kind, beside its ONNX graph (for explanations)
FORMAT_VERSION = 1

MODEL_FILES = {
    "lightgbm": "model.txt",
    "xgboost": "model.json",
    "catboost": "model.cbm",
    "random_forest": "model.onnx",
    "extra_trees": "model.onnx",
    "logistic": "model.onnx",
    "mlp": "model.onnx",
}


class ModelError(HydraError):
    """A model cannot be built, fitted, saved or loaded as asked."""


class ModelSpec(BaseModel):
    """What to train: the library, the task and its hyper-parameters (serialised into bundles)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Kind
    task: Literal["classification", "regression"] = "classification"
    params: dict[str, Any] = {}
    class_weight: Literal["balanced"] | None = None
    early_stopping_rounds: int | None = 50
    seed: int = 42
    categorical: tuple[str, ...] = ()


@runtime_checkable
class Learner(Protocol):
    spec: ModelSpec
    feature_names: list[str]
    classes_: np.ndarray | None
    best_iteration: int | None

    def fit(
        self, X: Any, y: Any, *, sample_weight: Any = None, eval_set: Any = None
    ) -> Learner: ...
    def predict_proba(self, X: Any) -> np.ndarray: ...
    def predict(self, X: Any) -> np.ndarray: ...
    def feature_importances(self) -> np.ndarray: ...
    def save(self, directory: Path) -> list[Path]: ...
    def tree_model(self) -> Any | None: ...
    def linear_form(self) -> dict[str, np.ndarray] | None: ...


# ---------------------------------------------------------------------------------------- helpers


def _as_matrix(X: Any, n_features: int, where: str) -> np.ndarray:
    """2-D float array with the expected column count (wrong widths are the classic silent bug)."""
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ModelError(
            f"{where}: X must be 2-D [n, n_features], got shape {arr.shape}",
            hint="pass a numpy array whose columns follow the learner's feature list",
        )
    if arr.shape[1] != n_features:
        raise ModelError(
            f"{where}: X has {arr.shape[1]} columns but the learner has {n_features} features",
            hint="build X with exactly the learner's ordered feature_names",
        )
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def _encode_classes(y: np.ndarray, classes: np.ndarray, where: str) -> np.ndarray:
    """Integer codes of ``y`` in sorted ``classes``; unknown labels raise, never silently clip."""
    idx = np.searchsorted(classes, y)
    idx = np.clip(idx, 0, len(classes) - 1)
    bad = classes[idx] != y
    if np.any(bad):
        unknown = np.unique(np.asarray(y)[bad])[:5].tolist()
        raise ModelError(
            f"{where}: labels {unknown} are not among the training classes {classes.tolist()}",
            hint="make sure every validation label also occurs in the training fold",
        )
    return idx.astype(np.int64)


def _classes_to_json(classes: np.ndarray | None) -> dict[str, Any] | None:
    if classes is None:
        return None
    kind = classes.dtype.kind
    if kind in "USO":
        return {
            "values": [str(c) for c in classes.tolist()],
            "dtype": classes.dtype.str if kind == "U" else "str",
        }
    return {"values": classes.tolist(), "dtype": classes.dtype.str}


def _classes_from_json(data: dict[str, Any] | None) -> np.ndarray | None:
    if data is None:
        return None
    if data["dtype"] == "str":
        return np.array(data["values"], dtype=object)
    return np.array(data["values"], dtype=np.dtype(data["dtype"]))


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(np.abs(np.asarray(v, dtype=np.float64)), nan=0.0, posinf=0.0)
    total = v.sum()
    return v / total if total > 0 else np.zeros_like(v)


def _binary_to_two(p: np.ndarray) -> np.ndarray:
    """Boosters return P(class 1) for binary problems; the interface promises [n, 2]."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1 or p.shape[1] == 1:
        p = p.reshape(-1)
        return np.column_stack([1.0 - p, p])
    return p


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    tmp.replace(path)


# -------------------------------------------------------------------------- parameter translation


def _feature_index(feature_names: list[str], name: Any, key: str) -> int:
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if not 0 <= int(name) < len(feature_names):
            raise ModelError(
                f"params['{key}']: feature index {name} is out of range (0..{len(feature_names) - 1})",
                hint="refer to features by name",
            )
        return int(name)
    try:
        return feature_names.index(name)
    except ValueError:
        raise ModelError(
            f"params['{key}'] names unknown feature '{name}'",
            hint=f"use one of the learner's features: {feature_names[:20]}"
            f"{' ...' if len(feature_names) > 20 else ''}",
        ) from None


def _monotone_vector(value: Any, feature_names: list[str]) -> list[int]:
    """Monotone constraints by name ({name: -1|0|1}) -> one int per feature in column order."""
    if isinstance(value, dict):
        out = [0] * len(feature_names)
        for name, sign in value.items():
            if int(sign) not in (-1, 0, 1):
                raise ModelError(
                    f"params['monotone_constraints']['{name}'] = {sign} must be -1, 0 or 1",
                    hint="use 1 for increasing, -1 for decreasing, 0 for unconstrained",
                )
            out[_feature_index(feature_names, name, "monotone_constraints")] = int(sign)
        return out
    vec = [int(v) for v in value]
    if len(vec) != len(feature_names):
        raise ModelError(
            f"params['monotone_constraints'] has {len(vec)} entries for {len(feature_names)} features",
            hint="give a {feature_name: sign} mapping instead",
        )
    return vec


def _interaction_groups(value: Any, feature_names: list[str]) -> list[list[int]]:
    return [
        [_feature_index(feature_names, n, "interaction_constraints") for n in group]
        for group in value
    ]


def _translate_params(
    spec: ModelSpec, feature_names: list[str]
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Library params from the spec: names -> indices, generic 'huber' -> each library's spelling.

    Returns the params and the (optional) cost matrix, which is ours, not the library's.
    """
    params = dict(spec.params)
    cost = params.pop("cost_matrix", None)
    cost_matrix = None
    if cost is not None:
        if spec.task != "classification":
            raise ModelError(
                "params['cost_matrix'] only applies to classification",
                hint="remove cost_matrix or set task='classification'",
            )
        cost_matrix = np.asarray(cost, dtype=np.float64)
        if (
            cost_matrix.ndim != 2
            or cost_matrix.shape[0] != cost_matrix.shape[1]
            or np.any(cost_matrix < 0)
        ):
            raise ModelError(
                f"params['cost_matrix'] must be a non-negative k x k matrix, got {cost_matrix.tolist()}",
                hint="row = true class, column = predicted class, in sorted class order",
            )
    delta = float(params.pop("huber_delta", 1.0))
    objective = params.get("objective")
    if objective == "huber":
        if spec.task != "regression":
            raise ModelError("objective 'huber' is a regression loss", hint="set task='regression'")
        params.pop("objective")
        if spec.kind == "lightgbm":
            params.update(objective="huber", alpha=delta)
        elif spec.kind == "xgboost":
            params.update(objective="reg:pseudohubererror", huber_slope=delta)
        elif spec.kind == "catboost":
            params["loss_function"] = f"Huber:delta={delta}"
        else:
            raise ModelError(
                f"objective 'huber' is not available for kind '{spec.kind}'",
                hint="use lightgbm, xgboost or catboost for a Huber loss",
            )
    if "monotone_constraints" in params:
        if spec.kind not in ("lightgbm", "xgboost", "catboost"):
            raise ModelError(
                f"monotone_constraints are not supported by kind '{spec.kind}'",
                hint="use lightgbm, xgboost or catboost",
            )
        vec = _monotone_vector(params["monotone_constraints"], feature_names)
        params["monotone_constraints"] = (
            "(" + ",".join(map(str, vec)) + ")" if spec.kind == "xgboost" else vec
        )
    if "interaction_constraints" in params:
        if spec.kind not in ("lightgbm", "xgboost"):
            raise ModelError(
                f"interaction_constraints are not supported by kind '{spec.kind}'",
                hint="use lightgbm or xgboost",
            )
        groups = _interaction_groups(params["interaction_constraints"], feature_names)
        params["interaction_constraints"] = str(groups) if spec.kind == "xgboost" else groups
    return params, cost_matrix


def _row_weights(
    y_idx: np.ndarray,
    k: int,
    spec: ModelSpec,
    base: np.ndarray | None,
    class_counts: np.ndarray,
    cost_matrix: np.ndarray | None,
) -> np.ndarray | None:
    """Multiplicative mix of sample, balanced-class and cost-matrix weights (see module doc)."""
    w = None if base is None else np.asarray(base, dtype=np.float64).reshape(-1)
    if w is not None and (w.shape[0] != y_idx.shape[0] or np.any(~np.isfinite(w)) or np.any(w < 0)):
        raise ModelError(
            f"sample_weight must be {y_idx.shape[0]} finite non-negative values",
            hint="check the weights for NaN, negative values or a length mismatch",
        )
    factor = np.ones(k)
    if spec.class_weight == "balanced":
        n = class_counts.sum()
        factor = factor * np.where(class_counts > 0, n / (k * np.maximum(class_counts, 1)), 0.0)
    if cost_matrix is not None:
        if cost_matrix.shape[0] != k:
            raise ModelError(
                f"params['cost_matrix'] is {cost_matrix.shape[0]}x{cost_matrix.shape[0]} "
                f"but the training data has {k} classes",
                hint="give one row/column per class",
            )
        factor = factor * cost_matrix.sum(axis=1)
    if spec.class_weight is None and cost_matrix is None:
        return w
    per_row = factor[y_idx]
    return per_row if w is None else w * per_row


# ----------------------------------------------------------------------------------- base learner


class _BaseLearner:
    """Shared bookkeeping: label encoding, weights, eval-set preparation, save/load metadata."""

    model_file: str = ""

    def __init__(self, spec: ModelSpec, feature_names: list[str]) -> None:
        self.spec = spec
        self.feature_names = list(feature_names)
        self.classes_: np.ndarray | None = None
        self.best_iteration: int | None = None
        self._importances: np.ndarray | None = None
        self._loaded_from: Path | None = None
        self._n_jobs = int(spec.params.get("n_jobs", spec.params.get("thread_count", 1)))
        missing = [c for c in spec.categorical if c not in self.feature_names]
        if missing:
            raise ModelError(
                f"categorical features {missing} are not among the learner's features",
                hint="list only names from the feature list in ModelSpec.categorical",
            )
        self._cat_idx = [self.feature_names.index(c) for c in spec.categorical]

    # -- public API -------------------------------------------------------------------------
    @property
    def is_classifier(self) -> bool:
        return self.spec.task == "classification"

    def fit(
        self, X: Any, y: Any, *, sample_weight: Any = None, eval_set: Any = None
    ) -> _BaseLearner:
        if self._loaded_from is not None:
            raise ModelError(
                f"this {self.spec.kind} learner was loaded from {self._loaded_from} and is predict-only",
                hint="create a fresh learner with make_learner(spec, feature_names) to train",
            )
        X = _as_matrix(X, len(self.feature_names), "fit")
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ModelError(
                f"fit: X has {X.shape[0]} rows but y has {y.shape[0]}", hint="align X and y"
            )
        params, cost = _translate_params(self.spec, self.feature_names)
        ev = None
        if self.is_classifier:
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ModelError(
                    f"fit: the training fold has a single class {self.classes_.tolist()}",
                    hint="use a longer training window or check the labels",
                )
            y_fit = _encode_classes(y, self.classes_, "fit")
            k = len(self.classes_)
            counts = np.bincount(y_fit, minlength=k).astype(np.float64)
            w = _row_weights(y_fit, k, self.spec, sample_weight, counts, cost)
        else:
            y_fit = y.astype(np.float64)
            if np.any(~np.isfinite(y_fit)):
                raise ModelError(
                    "fit: regression targets contain NaN/inf", hint="drop rows without a label"
                )
            w = _row_weights(
                np.zeros(len(y_fit), np.int64), 1, self.spec, sample_weight, np.ones(1), None
            )
        if eval_set is not None:
            Xv, yv, wv = (tuple(eval_set) + (None,))[:3]
            Xv = _as_matrix(Xv, len(self.feature_names), "fit(eval_set)")
            if self.is_classifier:
                yv = np.asarray(yv)
                known = np.isin(yv, self.classes_)
                if not np.all(known):
                    # A class absent from the training fold cannot be scored; dropping its eval rows
                    # keeps early stopping meaningful instead of failing the whole fold.
                    log.warning(
                        "eval_set: dropping %d rows whose labels are not training classes %s",
                        int((~known).sum()),
                        self.classes_.tolist(),
                    )
                    Xv, yv = Xv[known], yv[known]
                    wv = None if wv is None else np.asarray(wv)[known]
                yv_fit = _encode_classes(yv, self.classes_, "fit(eval_set)")
                wv = _row_weights(yv_fit, k, self.spec, wv, counts, cost)
            else:
                yv_fit = np.asarray(yv, dtype=np.float64)
                wv = None if wv is None else np.asarray(wv, dtype=np.float64)
            ev = (Xv, yv_fit, wv) if len(yv_fit) else None
            if ev is None:
                log.warning("eval_set is empty: training %s without early stopping", self.spec.kind)
        self.best_iteration = None
        self._fit_impl(X, y_fit, w, ev, params)
        self._importances = _normalise(self._native_importances())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if not self.is_classifier:
            raise ModelError(
                f"predict_proba is for classifiers; this {self.spec.kind} learner is a regressor",
                hint="call predict() for regression values",
            )
        self._check_ready("predict_proba")
        p = _binary_to_two(
            self._proba_impl(_as_matrix(X, len(self.feature_names), "predict_proba"))
        )
        p = np.clip(p, 0.0, None)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        self._check_ready("predict")
        if self.is_classifier:
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return np.asarray(
            self._regress_impl(_as_matrix(X, len(self.feature_names), "predict")), dtype=np.float64
        ).reshape(-1)

    def feature_importances(self) -> np.ndarray:
        if self._importances is None:
            return np.zeros(len(self.feature_names))
        return self._importances.copy()

    def save(self, directory: Path) -> list[Path]:
        self._check_ready("save")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model_path = directory / self.model_file
        tmp = directory / (self.model_file + ".tmp")
        self._save_model(tmp)
        tmp.replace(model_path)
        meta = {
            "format": FORMAT_VERSION,
            "kind": self.spec.kind,
            "task": self.spec.task,
            "classes": _classes_to_json(self.classes_),
            "feature_names": self.feature_names,
            "best_iteration": self.best_iteration,
            "importances": self.feature_importances().tolist(),
            "model_file": self.model_file,
            "categorical": list(self.spec.categorical),
        }
        _write_json_atomic(directory / LEARNER_JSON, meta)
        return [model_path, directory / LEARNER_JSON]

    def tree_model(self) -> Any | None:
        return None

    def linear_form(self) -> dict[str, np.ndarray] | None:
        """Parameters of a linear member (see :meth:`SklearnLearner.linear_form`); None otherwise."""
        return None

    def tree_input(self, X: Any) -> np.ndarray:
        """X as ``tree_model()`` sees it (boosters: unchanged; forests: after the fold's imputer)."""
        return _as_matrix(X, len(self.feature_names), "tree_input")

    # -- hooks ------------------------------------------------------------------------------
    def _check_ready(self, what: str) -> None:
        if not self._ready():
            raise ModelError(
                f"{what}: the {self.spec.kind} learner is not fitted", hint="call fit() first"
            )

    def _ready(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit_impl(self, X, y, w, ev, params) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _proba_impl(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _regress_impl(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _native_importances(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def _save_model(self, path: Path) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _library_error(spec: ModelSpec, params: dict[str, Any], exc: Exception) -> ModelError:
    """Name the offending hyper-parameter when the library's message mentions one."""
    text = str(exc)
    named = [k for k in params if k in text]
    which = f"parameter(s) {named}" if named else f"one of the parameters {sorted(params)}"
    return ModelError(
        f"{spec.kind} rejected {which}: {text.strip().splitlines()[0] if text.strip() else exc!r}",
        hint=f"fix ModelSpec.params for {spec.kind} (see the library's parameter documentation)",
    )


# --------------------------------------------------------------------------------------- LightGBM


class LightGBMLearner(_BaseLearner):
    """LightGBM trained via its sklearn wrapper; predictions always via the (truncated) Booster."""

    model_file = MODEL_FILES["lightgbm"]

    def __init__(self, spec: ModelSpec, feature_names: list[str]) -> None:
        super().__init__(spec, feature_names)
        self._booster: Any = None
        self._k = 1

    def _ready(self) -> bool:
        return self._booster is not None

    def _fit_impl(self, X, y, w, ev, params) -> None:
        import lightgbm as lgb

        base = {
            "random_state": self.spec.seed,
            "n_jobs": 1,
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
        }
        base.update(params)
        cls = lgb.LGBMClassifier if self.is_classifier else lgb.LGBMRegressor
        fit_kw: dict[str, Any] = {"sample_weight": w}
        if ev is not None:
            fit_kw.update(
                eval_X=(ev[0],),
                eval_y=(ev[1],),
                eval_sample_weight=None if ev[2] is None else [ev[2]],
            )
            if self.spec.early_stopping_rounds:
                fit_kw["callbacks"] = [
                    lgb.early_stopping(self.spec.early_stopping_rounds, verbose=False)
                ]
        try:
            model = cls(**base)
            model.fit(X, y, **fit_kw)
        except (ValueError, TypeError, lgb.basic.LightGBMError) as exc:
            raise _library_error(self.spec, dict(self.spec.params), exc) from exc
        booster = model.booster_
        best = getattr(model, "best_iteration_", None)
        if ev is not None and self.spec.early_stopping_rounds and best:
            self.best_iteration = int(best)
            booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=int(best)))
        self._booster = booster

    def _predict_raw(self, X: np.ndarray) -> np.ndarray:
        return self._booster.predict(X, num_threads=self._n_jobs)

    def _proba_impl(self, X):
        return self._predict_raw(X)

    def _regress_impl(self, X):
        return self._predict_raw(X)

    def _native_importances(self) -> np.ndarray:
        return self._booster.feature_importance(importance_type="gain")

    def _save_model(self, path: Path) -> None:
        self._booster.save_model(str(path))

    def _load_model(self, path: Path) -> None:
        import lightgbm as lgb

        self._booster = lgb.Booster(model_file=str(path))

    def tree_model(self) -> Any | None:
        return self._booster


# ---------------------------------------------------------------------------------------- XGBoost


class XGBoostLearner(_BaseLearner):
    """XGBoost (gbtree or dart) trained via the sklearn wrapper; predictions via the Booster."""

    model_file = MODEL_FILES["xgboost"]

    def __init__(self, spec: ModelSpec, feature_names: list[str]) -> None:
        super().__init__(spec, feature_names)
        self._booster: Any = None

    def _ready(self) -> bool:
        return self._booster is not None

    def _fit_impl(self, X, y, w, ev, params) -> None:
        import xgboost as xgb

        base = {"random_state": self.spec.seed, "n_jobs": 1, "tree_method": "hist", "verbosity": 0}
        base.update(params)
        fit_kw: dict[str, Any] = {"sample_weight": w, "verbose": False}
        if ev is not None:
            fit_kw.update(
                eval_set=[(ev[0], ev[1])], sample_weight_eval_set=None if ev[2] is None else [ev[2]]
            )
            if self.spec.early_stopping_rounds:
                base["early_stopping_rounds"] = self.spec.early_stopping_rounds
        cls = xgb.XGBClassifier if self.is_classifier else xgb.XGBRegressor
        try:
            model = cls(**base)
            model.fit(X, y, **fit_kw)
        except (ValueError, TypeError, xgb.core.XGBoostError) as exc:
            raise _library_error(self.spec, dict(self.spec.params), exc) from exc
        booster = model.get_booster()
        if "early_stopping_rounds" in base:
            # xgboost's best_iteration is a 0-based round index; we store the number of rounds kept.
            self.best_iteration = int(model.best_iteration) + 1
            booster = booster[: self.best_iteration]
        booster.set_param({"nthread": self._n_jobs})
        self._booster = booster

    def _dmatrix(self, X: np.ndarray) -> Any:
        import xgboost as xgb

        return xgb.DMatrix(X, missing=np.nan, nthread=self._n_jobs)

    def _proba_impl(self, X):
        return self._booster.predict(self._dmatrix(X))

    def _regress_impl(self, X):
        return self._booster.predict(self._dmatrix(X))

    def _native_importances(self) -> np.ndarray:
        scores = self._booster.get_score(importance_type="total_gain")
        out = np.zeros(len(self.feature_names))
        for key, value in scores.items():  # at most n_features entries, not rows
            out[int(key[1:])] = value
        return out

    def _save_model(self, path: Path) -> None:
        # xgboost picks the format from the extension: write JSON under a .json name, then move.
        json_path = path.with_name(path.name + ".json")
        self._booster.save_model(str(json_path))
        json_path.replace(path)

    def _load_model(self, path: Path) -> None:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": self._n_jobs})
        self._booster = booster

    def tree_model(self) -> Any | None:
        return self._booster


# --------------------------------------------------------------------------------------- CatBoost


class CatBoostLearner(_BaseLearner):
    """CatBoost with native categoricals (by name); silent, no files written during training."""

    model_file = MODEL_FILES["catboost"]

    def __init__(self, spec: ModelSpec, feature_names: list[str]) -> None:
        super().__init__(spec, feature_names)
        self._model: Any = None

    def _ready(self) -> bool:
        return self._model is not None

    def _pool(self, X: np.ndarray, y: Any = None, w: Any = None) -> Any:
        """CatBoost wants categorical columns as strings: codes become text ('NA' if missing)."""
        from catboost import Pool

        if not self._cat_idx:
            return Pool(X, label=y, weight=w)
        data = X.astype(object)
        for j in self._cat_idx:
            col = X[:, j]
            codes = np.nan_to_num(col, nan=0.0).astype(np.int64).astype(str).astype(object)
            data[:, j] = np.where(np.isnan(col), "NA", codes)
        return Pool(data, label=y, weight=w, cat_features=self._cat_idx)

    def _fit_impl(self, X, y, w, ev, params) -> None:
        from catboost import CatBoostClassifier, CatBoostError, CatBoostRegressor

        base = {
            "random_seed": self.spec.seed,
            "thread_count": 1,
            "verbose": False,
            "allow_writing_files": False,
        }
        params = dict(params)
        if "n_jobs" in params:  # one spelling for every kind
            params["thread_count"] = params.pop("n_jobs")
        base.update(params)
        cls = CatBoostClassifier if self.is_classifier else CatBoostRegressor
        fit_kw: dict[str, Any] = {}
        if ev is not None:
            fit_kw["eval_set"] = self._pool(ev[0], ev[1], ev[2])
            if self.spec.early_stopping_rounds:
                fit_kw.update(
                    early_stopping_rounds=self.spec.early_stopping_rounds, use_best_model=True
                )
        try:
            model = cls(**base)
            model.fit(self._pool(X, y, w), **fit_kw)
        except (ValueError, TypeError, CatBoostError) as exc:
            raise _library_error(self.spec, dict(self.spec.params), exc) from exc
        if "early_stopping_rounds" in fit_kw and model.get_best_iteration() is not None:
            self.best_iteration = int(model.get_best_iteration()) + 1
        self._model = model

    def _proba_impl(self, X):
        from catboost import CatBoost

        return CatBoost.predict(
            self._model, self._pool(X), prediction_type="Probability", thread_count=self._n_jobs
        )

    def _regress_impl(self, X):
        from catboost import CatBoost

        return CatBoost.predict(
            self._model, self._pool(X), prediction_type="RawFormulaVal", thread_count=self._n_jobs
        )

    def _native_importances(self) -> np.ndarray:
        return np.asarray(self._model.get_feature_importance(), dtype=np.float64)

    def _save_model(self, path: Path) -> None:
        self._model.save_model(str(path), format="cbm")

    def _load_model(self, path: Path) -> None:
        from catboost import CatBoost

        model = CatBoost()
        model.load_model(str(path), format="cbm")
        self._model = model

    def tree_model(self) -> Any | None:
        return self._model


# ----------------------------------------------------------------------------------- scikit-learn


def _sklearn_estimator(kind: str, task: str) -> Any:
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    table = {
        ("random_forest", "classification"): (
            RandomForestClassifier,
            {"n_estimators": 200, "n_jobs": 1},
        ),
        ("random_forest", "regression"): (
            RandomForestRegressor,
            {"n_estimators": 200, "n_jobs": 1},
        ),
        ("extra_trees", "classification"): (
            ExtraTreesClassifier,
            {"n_estimators": 200, "n_jobs": 1},
        ),
        ("extra_trees", "regression"): (ExtraTreesRegressor, {"n_estimators": 200, "n_jobs": 1}),
        ("logistic", "classification"): (LogisticRegression, {"max_iter": 1000}),
        ("logistic", "regression"): (LinearRegression, {}),
        ("mlp", "classification"): (MLPClassifier, {"max_iter": 500}),
        ("mlp", "regression"): (MLPRegressor, {"max_iter": 500}),
    }
    return table[(kind, task)]


class SklearnLearner(_BaseLearner):
    """RF / ExtraTrees / logistic / MLP behind a median imputer (and a scaler for linear/MLP).

    The imputer is part of the pipeline, so it is fitted on the training fold only.
    ``task="regression"`` with kind "logistic" is an ordinary least-squares model (the
    linear member of the zoo).  Saved as ONNX, and it *predicts* with that ONNX graph
    from the moment it is fitted: onnxruntime computes in float32, so the scikit-learn
    pipeline's own float64 output would differ from a loaded bundle's by ~1e-7, and
    after an isotonic calibrator that can be a whole calibration step on a few rows.
    Out-of-fold scores, the holdout, the backtest and ``predict`` therefore all see
    the same numbers.  The pipeline stays in memory for importances and SHAP.
    """

    model_file = "model.onnx"

    def __init__(self, spec: ModelSpec, feature_names: list[str]) -> None:
        super().__init__(spec, feature_names)
        self._pipeline: Any = None
        self._onnx: Any = None
        self._linear: dict[str, np.ndarray] | None = None  # a loaded linear member's parameters

    def _ready(self) -> bool:
        return self._onnx is not None  # set by fit (the pipeline's ONNX twin) and by load

    def _build(self, params: dict[str, Any]) -> Any:
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        cls, defaults = _sklearn_estimator(self.spec.kind, self.spec.task)
        allowed = set(cls().get_params())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ModelError(
                f"unknown hyper-parameter(s) {unknown} for {self.spec.kind} ({cls.__name__})",
                hint=f"allowed: {sorted(allowed)}",
            )
        kw = dict(defaults)
        if "random_state" in allowed:
            kw["random_state"] = self.spec.seed
        kw.update(params)
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if self.spec.kind in ("logistic", "mlp"):
            steps.append(("scale", StandardScaler()))
        steps.append(("model", cls(**kw)))
        return Pipeline(steps)

    def _fit_impl(self, X, y, w, ev, params) -> None:
        if ev is not None:
            log.debug(
                "%s ignores eval_set (no early stopping for scikit-learn models)", self.spec.kind
            )
        pipe = self._build(params)
        fit_kw = {} if w is None else {"model__sample_weight": w}
        try:
            pipe.fit(X, y, **fit_kw)
        except (ValueError, TypeError) as exc:
            raise _library_error(self.spec, dict(self.spec.params), exc) from exc
        from hydraquant.models.onnx import OnnxModel

        self._pipeline = pipe
        self._onnx = OnnxModel(self.to_onnx_bytes(), n_threads=self._n_jobs)

    @property
    def estimator(self) -> Any:
        return None if self._pipeline is None else self._pipeline.named_steps["model"]

    def _proba_impl(self, X):
        return self._onnx.predict_proba(X)

    def _regress_impl(self, X):
        return self._onnx.predict(X)

    def _native_importances(self) -> np.ndarray:
        est = self.estimator
        if hasattr(est, "feature_importances_"):
            return est.feature_importances_
        if hasattr(est, "coef_"):
            coef = np.atleast_2d(est.coef_)
            return np.abs(coef).mean(axis=0)
        return np.zeros(
            len(self.feature_names)
        )  # MLP: no faithful cheap importance; use SHAP/permutation

    def to_onnx_bytes(self) -> bytes:
        """ONNX serialisation of the fitted pipeline (probabilities as a plain [n, k] tensor)."""
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        if self._pipeline is None:
            raise ModelError(
                f"{self.spec.kind}: no fitted scikit-learn pipeline to convert",
                hint="fit the learner first (a loaded learner already is ONNX)",
            )
        options = {id(self.estimator): {"zipmap": False}} if self.is_classifier else None
        onx = convert_sklearn(
            self._pipeline,
            initial_types=[("X", FloatTensorType([None, len(self.feature_names)]))],
            options=options,
            target_opset={"": 17, "ai.onnx.ml": 3},
        )
        return onx.SerializeToString()

    def _save_model(self, path: Path) -> None:
        if self._onnx.raw is not None:
            path.write_bytes(self._onnx.raw)
        else:
            shutil.copyfile(self._onnx.path, path)

    def _load_model(self, path: Path) -> None:
        from hydraquant.models.onnx import OnnxModel

        self._onnx = OnnxModel(path, n_threads=self._n_jobs)
        linear = path.parent / LINEAR_JSON
        if self.spec.kind == "logistic" and linear.is_file():
            self._linear = {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(linear.read_text()).items()}

    def save(self, directory: Path) -> list[Path]:
        """ONNX graph + learner.json, and for the linear kind its parameters (``linear.json``)."""
        files = super().save(directory)
        form = self.linear_form()
        if form is not None:
            path = Path(directory) / LINEAR_JSON
            _write_json_atomic(path, {k: v.tolist() for k, v in form.items()})
            files.append(path)
        return files

    def linear_form(self) -> dict[str, np.ndarray] | None:
        """``median, mean, scale [F]``, ``coef [S, F]``, ``intercept [S]`` of the linear kind.

        The raw score (log-odds toward ``classes_[1]`` for binary, per-class logits for
        multinomial, the value for regression) is ``z @ coef.T + intercept`` with
        ``z = (x with NaN -> median - mean) / scale``.  Stored beside the ONNX graph so
        a loaded bundle can still give exact per-prediction explanations: the training
        fold's z has mean 0, so feature i contributes ``coef[:, i] * z_i`` and the base is
        the intercept (linear SHAP with the fold as background).
        """
        if self.spec.kind != "logistic":
            return None
        if self._pipeline is None:
            return self._linear
        model = self.estimator
        return {
            "median": np.asarray(self._pipeline.named_steps["impute"].statistics_, dtype=np.float64),
            "mean": np.asarray(self._pipeline.named_steps["scale"].mean_, dtype=np.float64),
            "scale": np.asarray(self._pipeline.named_steps["scale"].scale_, dtype=np.float64),
            "coef": np.atleast_2d(np.asarray(model.coef_, dtype=np.float64)),
            "intercept": np.atleast_1d(np.asarray(model.intercept_, dtype=np.float64)),
        }

    def tree_input(self, X: Any) -> np.ndarray:
        X = _as_matrix(X, len(self.feature_names), "tree_input")
        if self._pipeline is None:
            return X
        return np.asarray(self._pipeline[:-1].transform(X), dtype=np.float64)

    def tree_model(self) -> Any | None:
        """The fitted forest (expects imputed, NaN-free X) or None for linear/MLP/loaded models."""
        if self.spec.kind in ("random_forest", "extra_trees"):
            return self.estimator
        return None


# ------------------------------------------------------------------------------ factory / loading

_CLASSES: dict[str, type[_BaseLearner]] = {
    "lightgbm": LightGBMLearner,
    "xgboost": XGBoostLearner,
    "catboost": CatBoostLearner,
    **{k: SklearnLearner for k in SKLEARN_KINDS},
}


def make_learner(spec: ModelSpec, feature_names: list[str]) -> Learner:
    """An unfitted learner for ``spec`` whose X columns follow ``feature_names``."""
    if not feature_names:
        raise ModelError(
            "make_learner: the feature list is empty", hint="pass the ordered feature names"
        )
    if len(set(feature_names)) != len(feature_names):
        raise ModelError(
            "make_learner: duplicate feature names", hint="feature names must be unique"
        )
    return _CLASSES[spec.kind](spec, feature_names)


def read_learner_meta(directory: Path) -> dict[str, Any]:
    """The ``learner.json`` that ``save`` wrote next to the model file."""
    path = Path(directory) / LEARNER_JSON
    if not path.is_file():
        raise ModelError(
            f"no {LEARNER_JSON} in {directory}", hint="point at a directory written by Learner.save"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}", hint="re-export the model") from exc


def load_learner(
    spec: ModelSpec, directory: Path, feature_names: list[str], classes: list | None
) -> Learner:
    """Predict-only learner rebuilt from the safe files ``save`` wrote (no pickle anywhere).

    ``feature_names`` and ``classes`` (from the bundle manifest) are checked against
    ``learner.json`` so a bundle can never silently apply a model to the wrong columns.
    """
    directory = Path(directory)
    meta = read_learner_meta(directory)
    if meta.get("kind") != spec.kind or meta.get("task") != spec.task:
        raise ModelError(
            f"{directory} holds a {meta.get('kind')}/{meta.get('task')} model, "
            f"not {spec.kind}/{spec.task}",
            hint="check the member spec in the manifest",
        )
    if list(meta["feature_names"]) != list(feature_names):
        raise ModelError(
            f"{directory}: stored feature list differs from the one given",
            hint="use the bundle's ordered feature list",
        )
    stored = _classes_from_json(meta.get("classes"))
    if classes is not None:
        # A fold may have seen only some of the bundle's classes: a subset is fine (callers align
        # columns via learner.classes_); a class the bundle does not know is not.
        given = {str(c) for c in classes}
        if stored is None or not {str(c) for c in stored.tolist()} <= given:
            raise ModelError(
                f"{directory}: stored classes {None if stored is None else stored.tolist()} "
                f"are not among the given classes {list(classes)}",
                hint="use the bundle's class list",
            )
    learner = _CLASSES[spec.kind](spec, feature_names)
    model_path = directory / meta.get("model_file", MODEL_FILES[spec.kind])
    if not model_path.is_file():
        raise ModelError(
            f"model file {model_path} is missing", hint="re-export or re-train this member"
        )
    try:
        learner._load_model(model_path)
    except HydraError:
        raise
    except Exception as exc:  # library-specific parse errors
        raise ModelError(
            f"cannot load {model_path}: {exc}", hint="the file is corrupt or from another library"
        ) from exc
    learner.classes_ = stored
    learner.best_iteration = meta.get("best_iteration")
    learner._importances = np.asarray(
        meta.get("importances") or np.zeros(len(feature_names)), dtype=np.float64
    )
    learner._loaded_from = directory
    return learner
