"""Load a verified bundle and turn feature rows into calibrated probabilities.

The bundle's manifest is the contract: exactly its features, in exactly its
order.  A frame whose features are missing or arrive in another order is
refused rather than silently re-aligned, because a column mix-up upstream
(a renamed feature, a different feature set) would otherwise yield confident
nonsense.  Rows whose features are all NaN (warm-up) are still scored: the
boosters treat NaN as missing, exactly as in training.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.models.registry import BundleRef, ModelRegistry, read_json
from hydraquant.models.trainer import align_proba

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
ENSEMBLE_FILE = "ensemble.json"
_MEAN_METHODS = {None, "", "mean", "average", "fold_average"}


class FeatureMismatchError(HydraError):
    """The features offered to a model are not the ones, or not in the order, it was trained on."""


def proba_column(cls: Any) -> str:
    return f"p_{cls}"


@dataclass
class Predictor:
    """A loaded bundle: per-member fold learners, optional ensemble and calibrator."""

    ref: BundleRef
    manifest: dict[str, Any]
    members: dict[str, list[Any]]  # member name -> one learner per fold
    ensemble: Any | None = None
    calibrator: Any | None = None

    @property
    def features(self) -> list[str]:
        return list(self.manifest["features"])

    @property
    def classes(self) -> list[Any] | None:
        return list(self.manifest["classes"]) if self.manifest.get("classes") is not None else None

    @property
    def interval(self) -> str:
        return str(self.manifest.get("interval", ""))

    @property
    def task(self) -> str:
        return str(self.manifest.get("task", "classification"))

    @property
    def output_columns(self) -> list[str]:
        if self.task == "regression":
            return ["prediction"]
        return [proba_column(c) for c in self.classes or []]

    @classmethod
    def load(cls, registry: ModelRegistry, ref: str) -> Predictor:
        """Verify every file's sha256, then rebuild the learners from their native files."""
        from hydraquant.models.zoo import ModelSpec, load_learner

        bundle = registry.resolve_ref(ref)
        manifest = registry.verify(bundle.path)
        features = list(manifest["features"])
        classes = manifest.get("classes") if manifest.get("task", "classification") == "classification" else None
        members: dict[str, list[Any]] = {}
        for member in manifest.get("members") or []:
            try:
                spec = ModelSpec.model_validate(member["spec"])
            except (KeyError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
                raise HydraError(f"bundle {bundle.label}: member {member.get('name')!r} has an invalid spec: {exc}",
                                 hint="re-train the bundle with this hydraquant version") from None
            learners = []
            for fold in sorted(member.get("folds") or [], key=lambda f: f.get("fold", 0)):
                directory = _bundle_path(bundle.path, str(fold["dir"]))
                learners.append(load_learner(spec, directory, features, classes))
            if not learners:
                raise HydraError(f"bundle {bundle.label}: member {member.get('name')!r} has no folds",
                                 hint="re-train the bundle")
            members[str(member["name"])] = learners
        if not members:
            raise HydraError(f"bundle {bundle.label} has no members", hint="re-train the bundle")
        predictor = cls(bundle, manifest, members, _load_ensemble(bundle, manifest),
                        _load_calibrator(bundle, manifest))
        log.info("loaded %s: %d member(s), %d feature(s)", bundle.label, len(members), len(features))
        return predictor

    def check_features(self, frame: pl.DataFrame) -> None:
        """Refuse missing or reordered features (extra columns are ignored)."""
        wanted = self.features
        have = set(frame.columns)
        missing = [f for f in wanted if f not in have]
        if missing:
            shown = ", ".join(missing[:10]) + (f" ... (+{len(missing) - 10} more)" if len(missing) > 10 else "")
            raise FeatureMismatchError(
                f"model {self.ref.label} needs {len(missing)} feature(s) missing from the input: {shown}",
                hint="build exactly the bundle's features (see `hydraquant models show`) or use `hydraquant predict`",
            )
        wanted_set = set(wanted)
        order = [c for c in frame.columns if c in wanted_set]
        if order != wanted:
            first = next(i for i, (a, b) in enumerate(zip(order, wanted)) if a != b)
            raise FeatureMismatchError(
                f"reordered features for model {self.ref.label}: column {first + 1} is {order[first]!r} "
                f"but the model expects {wanted[first]!r}",
                hint="select the features in the manifest's order; a different order means a different "
                "pipeline built them, so it is refused rather than silently re-aligned",
            )
        for name in wanted:
            dtype = frame.schema[name]
            if not (dtype.is_numeric() or dtype == pl.Null):
                raise FeatureMismatchError(f"feature {name!r} has non-numeric dtype {dtype}",
                                           hint="features must be numbers (NaN/null for missing)")

    def matrix(self, frame: pl.DataFrame) -> np.ndarray:
        self.check_features(frame)
        X = frame.select(pl.col(n).cast(pl.Float64).fill_null(float("nan")) for n in self.features).to_numpy()
        return np.ascontiguousarray(X, dtype=np.float64)

    @property
    def regime_column(self) -> str:
        return str((self.manifest.get("ensemble") or {}).get("regime_column", "regime"))

    def predict_array(self, X: np.ndarray, *, regimes: Any = None, symbols: Any = None) -> np.ndarray:
        """Fold-average within each member, combine members, then calibrate."""
        regression = self.task == "regression"
        per_member = {name: member_output(learners, X, self.task, self.classes)
                      for name, learners in self.members.items()}
        if self.ensemble is not None and getattr(self.ensemble, "method", None) == "regime_router":
            if regimes is None:
                raise FeatureMismatchError(
                    f"model {self.ref.label} routes by regime and needs the {self.regime_column!r} column",
                    hint="add the regime column (as used in training) to the feature frame")
            combined = np.asarray(self.ensemble.predict_proba(per_member, regimes=regimes, symbols=symbols),
                                  dtype=np.float64)
        elif self.ensemble is not None:
            combined = np.asarray(self.ensemble.predict_proba(per_member), dtype=np.float64)
        else:
            combined = np.mean(np.stack(list(per_member.values())), axis=0)
        if self.calibrator is not None:
            combined = np.asarray(self.calibrator.transform(combined), dtype=np.float64)
        if not regression and combined.shape != (X.shape[0], len(self.classes or [])):
            raise HydraError(f"model {self.ref.label} returned probabilities of shape {combined.shape} "
                             f"for {X.shape[0]} rows and {len(self.classes or [])} classes",
                             hint="the bundle is inconsistent: re-train it")
        return combined

    def predict_proba(self, features: pl.DataFrame) -> pl.DataFrame:
        """``ts, symbol, <features>`` -> ``ts, symbol, p_<class>...`` (regression: ``prediction``)."""
        keys = [c for c in ("ts", "symbol") if c in features.columns]
        if "ts" not in keys:
            raise FeatureMismatchError("the feature frame has no 'ts' column",
                                       hint="pass the features as a long frame: ts, symbol, <features...>")
        X = self.matrix(features)
        cols = self.output_columns
        if X.shape[0] == 0:
            return features.select(keys).with_columns(pl.lit(None, dtype=pl.Float64).alias(c) for c in cols)
        regimes = symbols = None
        if self.regime_column in features.columns:
            regimes = features.get_column(self.regime_column).to_numpy()
        if "symbol" in features.columns:
            symbols = features.get_column("symbol").to_numpy()
        out = self.predict_array(X, regimes=regimes, symbols=symbols)
        values = out.reshape(-1, 1) if out.ndim == 1 else out
        return features.select(keys).with_columns(
            pl.Series(c, values[:, i], dtype=pl.Float64) for i, c in enumerate(cols)
        )


def member_output(learners: Sequence[Any], X: np.ndarray, task: str, classes: Sequence[Any] | None) -> np.ndarray:
    """One member's output: its fold models averaged (seed 000), probabilities in the model's class order.

    A fold that never saw a rare class predicts fewer columns; they are placed by class, the
    missing one at 0.  Used by the predictor and by the run that scores its holdout.
    """
    if task == "regression":
        return np.mean(np.stack([np.asarray(lr.predict(X), dtype=np.float64) for lr in learners]), axis=0)
    from hydraquant.models.ensemble import fold_average

    outs = [align_proba(lr.predict_proba(X), lr.classes_, classes or []) for lr in learners]
    return np.asarray(fold_average(outs), dtype=np.float64)


def _bundle_path(root: Path, rel: str) -> Path:
    path = root / rel
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise HydraError(f"bundle {root}: path {rel!r} points outside the bundle",
                         hint="re-train or restore the bundle; do not load it") from None
    if not path.is_dir():
        raise HydraError(f"bundle {root}: fold directory {rel!r} is missing", hint="re-train the bundle")
    return path


def _load_ensemble(bundle: BundleRef, manifest: dict[str, Any]) -> Any | None:
    path = bundle.path / ENSEMBLE_FILE
    method = (manifest.get("ensemble") or {}).get("method")
    if path.is_file():
        from hydraquant.models.ensemble import ensemble_from_json

        return ensemble_from_json(read_json(path, "ensemble"))
    if method not in _MEAN_METHODS and len(manifest.get("members") or []) > 1:
        raise HydraError(f"bundle {bundle.label} declares ensemble method {method!r} but has no {ENSEMBLE_FILE}",
                         hint="re-train or restore the bundle; do not load it")
    return None


def _load_calibrator(bundle: BundleRef, manifest: dict[str, Any]) -> Any | None:
    path = bundle.path / CALIBRATION_FILE
    declared = manifest.get("calibration")
    method = declared.get("method") if isinstance(declared, Mapping) else None
    if path.is_file():
        from hydraquant.models.calibration import RegressionCalibrator, calibrator_from_json

        data = read_json(path, "calibration")
        if data.get("method") == RegressionCalibrator.method:  # calibrator_from_json covers classifiers only
            return RegressionCalibrator.from_json(data)
        return calibrator_from_json(data)
    if method not in (None, "none"):
        raise HydraError(f"bundle {bundle.label} declares calibration {method!r} but has no {CALIBRATION_FILE}",
                         hint="re-train or restore the bundle; do not load it")
    return None


def predict_lake(
    lake: Any,
    predictor: Predictor,
    symbols: Sequence[str],
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    *,
    exchange: str | None = None,
    market: str | None = None,
    source: str = "auto",
) -> pl.DataFrame:
    """Build exactly the bundle's features from lake bars (with warm-up before ``start``) and predict."""
    from hydraquant.data.lake import parse_time_bound
    from hydraquant.features.registry import build_features, resolve
    from hydraquant.pipeline.features_stage import warmup_span
    from hydraquant.pipeline.inputs import load_inputs

    symbols = list(symbols)
    if not symbols:
        raise HydraError("no symbols given", hint="pass --symbols BTCUSDT,ETHUSDT")
    interval = predictor.interval
    if not interval:
        raise HydraError(f"bundle {predictor.ref.label} records no bar interval", hint="re-train the bundle")
    names = resolve(predictor.features)  # unknown names fail here, naming the feature
    lookback = warmup_span(names, interval) if start is not None else timedelta(0)
    inputs = load_inputs(lake, symbols, interval, start=start, end=end, lookback=lookback, source=source,
                         exchange=exchange, market=market)
    table = build_features(inputs.bars, names, interval=interval, side=inputs.side)
    t0 = parse_time_bound(start)
    if t0 is not None:
        table = table.filter(pl.col("ts") >= t0)
    trained_on = set((predictor.manifest.get("data") or {}).get("symbols") or [])
    unseen = [s for s in symbols if trained_on and s not in trained_on]
    if unseen:
        log.warning("%s was trained without %s", predictor.ref.label, ", ".join(unseen))
    return predictor.predict_proba(table)
