"""ONNX export of zoo learners, onnxruntime inference and a parity check (SPEC M9).

ONNX is the portable, pickle-free way to run a trained model outside Python's
model libraries (other runtimes, other languages).  Export is only trusted
after :func:`onnx_parity` shows the ONNX graph reproduces the learner's
probabilities; ONNX runs in float32, so parity is ~1e-6, not bit-exact.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from hydraquant.errors import HydraError

log = logging.getLogger(__name__)

ONNXMLTOOLS_OPSET = 15
_PROBA_NAMES = ("probabilities", "probability_tensor", "output_probability")


class OnnxError(HydraError):
    """An ONNX export, load or inference failed."""


class OnnxModel:
    """onnxruntime session with the learner's conventions: float32 [n, n_features] in, [n, k] out.

    Probability columns follow the learner's ``classes_`` because every zoo learner
    trains on the integer codes of its sorted classes.
    """

    def __init__(self, path: Path | str | bytes, *, n_threads: int = 1) -> None:
        """``path``: an ONNX file, or the serialised graph itself (a learner's in-memory twin)."""
        import onnxruntime as ort

        self.raw: bytes | None = path if isinstance(path, bytes) else None
        self.path = Path("<in-memory>.onnx") if self.raw is not None else Path(path)  # type: ignore[arg-type]
        if self.raw is None and not self.path.is_file():
            raise OnnxError(
                f"ONNX file {self.path} does not exist",
                hint="export it with export_onnx(learner, path)",
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(n_threads))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                self.raw if self.raw is not None else str(self.path),
                sess_options=opts,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise OnnxError(
                f"onnxruntime cannot load {self.path}: {exc}",
                hint="the file is corrupt or uses an unsupported opset; re-export it",
            ) from exc
        self._input = self._session.get_inputs()[0].name
        self.n_features = self._session.get_inputs()[0].shape[1]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _run(self, X: Any) -> dict[str, Any]:
        arr = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if arr.ndim != 2 or (isinstance(self.n_features, int) and arr.shape[1] != self.n_features):
            raise OnnxError(
                f"{self.path.name}: expected X of shape [n, {self.n_features}], got {arr.shape}",
                hint="pass columns in the learner's feature order",
            )
        return dict(
            zip(self.output_names, self._session.run(None, {self._input: arr}), strict=True)
        )

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities [n, k] (binary models return two columns)."""
        out = self._run(X)
        name = next((n for n in _PROBA_NAMES if n in out), None)
        if name is None:
            floats = [
                n for n, v in out.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f"
            ]
            if not floats:
                raise OnnxError(
                    f"{self.path.name} has no probability output (outputs: {self.output_names})",
                    hint="export with zipmap disabled (export_onnx does this)",
                )
            name = floats[-1]
        p = np.asarray(out[name], dtype=np.float64)
        if isinstance(out[name], list):
            raise OnnxError(
                f"{self.path.name} returns probabilities as a ZipMap",
                hint="re-export with export_onnx, which strips ZipMap",
            )
        if p.ndim == 1 or p.shape[1] == 1:
            p = p.reshape(-1)
            p = np.column_stack([1.0 - p, p])
        return p

    def predict(self, X: Any) -> np.ndarray:
        """Regression values [n] (for classifiers: the argmax class index)."""
        out = self._run(X)
        if any(n in out for n in _PROBA_NAMES):
            return np.argmax(self.predict_proba(X), axis=1)
        floats = [v for v in out.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
        if not floats:
            raise OnnxError(
                f"{self.path.name} has no float output (outputs: {self.output_names})",
                hint="this does not look like a regression model",
            )
        return np.asarray(floats[0], dtype=np.float64).reshape(-1)


def _float_input(n_features: int) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("X", FloatTensorType([None, n_features]))]


def _strip_zipmap(model: Any) -> Any:
    """Make a ZipMap output (list of dicts, slow and awkward) a plain [n, k] tensor output."""
    graph = model.graph
    zipmaps = [node for node in graph.node if node.op_type == "ZipMap"]
    if not zipmaps:
        return model
    import onnx

    for node in zipmaps:
        source, target = node.input[0], node.output[0]
        labels = next(
            (
                onnx.helper.get_attribute_value(a)
                for a in node.attribute
                if a.name in ("classlabels_int64s", "classlabels_strings")
            ),
            [],
        )
        graph.node.remove(node)
        for i, out in enumerate(graph.output):
            if out.name == target:
                graph.output.remove(out)
                info = onnx.helper.make_tensor_value_info(
                    source, onnx.TensorProto.FLOAT, ["N", len(labels) or None]
                )
                graph.output.insert(i, info)
    return model


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def export_onnx(learner: Any, path: Path | str) -> Path:
    """Write ``learner`` as ONNX at ``path`` (fitted or loaded learners); returns the path.

    LightGBM/XGBoost go through onnxmltools (opset <= 15), CatBoost through its own
    exporter (numeric features only), scikit-learn models through skl2onnx (their
    saved artifact already is this ONNX graph).
    """
    import onnx

    from hydraquant.models.zoo import (
        CatBoostLearner,
        LightGBMLearner,
        SklearnLearner,
        XGBoostLearner,
    )

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(learner.feature_names)
    kind = learner.spec.kind
    if not learner._ready():
        raise OnnxError(
            f"export_onnx: the {kind} learner is not fitted", hint="fit or load it first"
        )
    try:
        if isinstance(learner, LightGBMLearner):
            import onnxmltools

            onx = onnxmltools.convert_lightgbm(
                learner.tree_model(),
                initial_types=_float_input(n),
                target_opset=ONNXMLTOOLS_OPSET,
                zipmap=False,
            )
            _write_atomic(path, _strip_zipmap(onx).SerializeToString())
        elif isinstance(learner, XGBoostLearner):
            import onnxmltools

            if '"name":"dart"' in learner.tree_model().save_config().replace(" ", ""):
                raise OnnxError(
                    "XGBoost DART boosters cannot be exported to ONNX (onnxmltools has no DART "
                    "converter: tree weights would be lost)",
                    hint="keep the native XGBoost JSON artifact, or train with booster='gbtree'",
                )

            onx = onnxmltools.convert_xgboost(
                learner.tree_model(), initial_types=_float_input(n), target_opset=ONNXMLTOOLS_OPSET
            )
            _write_atomic(path, _strip_zipmap(onx).SerializeToString())
        elif isinstance(learner, CatBoostLearner):
            if learner.spec.categorical:
                raise OnnxError(
                    "CatBoost ONNX export does not support categorical features "
                    f"({list(learner.spec.categorical)})",
                    hint="train without ModelSpec.categorical (codes as numeric) to export ONNX",
                )
            tmp = path.with_name(path.name + ".cb.tmp")
            learner.tree_model().save_model(
                str(tmp),
                format="onnx",
                export_parameters={"onnx_domain": "ai.catboost", "onnx_model_version": 1},
            )
            onx = _strip_zipmap(onnx.load(str(tmp)))
            tmp.unlink()
            _write_atomic(path, onx.SerializeToString())
        elif isinstance(learner, SklearnLearner):
            tmp = path.with_name(path.name + ".tmp")
            learner._save_model(tmp)
            tmp.replace(path)
        else:
            raise OnnxError(
                f"export_onnx: unsupported learner type {type(learner).__name__}",
                hint="export a learner made by hydraquant.models.zoo.make_learner",
            )
    except HydraError:
        raise
    except Exception as exc:  # converters raise many types (RuntimeError, NotImplementedError, ...)
        raise OnnxError(
            f"ONNX conversion of the {kind} learner failed: {exc}",
            hint="this configuration (e.g. objective/booster) may be unsupported by the converter; "
            "keep the native artifact instead",
        ) from exc
    log.info("exported %s learner to %s", kind, path)
    return path


def onnx_parity(learner: Any, onnx_model: OnnxModel, X: Any) -> float:
    """Max absolute difference between the learner and its ONNX twin on ``X``.

    Probabilities for classifiers, predictions for regressors.  NaN rows are
    compared too (missing-value routing must survive the export).
    """
    if learner.spec.task == "classification":
        a, b = learner.predict_proba(X), onnx_model.predict_proba(X)
    else:
        a, b = learner.predict(X), onnx_model.predict(X)
    if a.shape != b.shape:
        raise OnnxError(
            f"onnx_parity: learner output {a.shape} vs ONNX output {b.shape}",
            hint="the ONNX file belongs to a different model",
        )
    return float(np.max(np.abs(a - b))) if a.size else 0.0
