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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.models.matrix import model_matrix
from hydraquant.models.registry import BundleRef, ModelRegistry, read_json
from hydraquant.models.trainer import align_proba

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
ENSEMBLE_FILE = "ensemble.json"
_MEAN_METHODS = {None, "", "mean", "average", "fold_average"}
ACTIVE_REGIME_COLUMN = "active_regime"
"""Optional input column of a regime-router bundle: regimes already confirmed by the router's
hysteresis over a longer history than the frame (see :func:`lake_features`)."""


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
        return model_matrix(frame, self.features, bits=self.manifest.get("input_mantissa_bits"))

    @property
    def regime_column(self) -> str:
        return str((self.manifest.get("ensemble") or {}).get("regime_column", "regime"))

    @property
    def regime_spec(self) -> str | None:
        """The causal regime labeler a regime-router bundle routes by (None for other bundles)."""
        spec = (self.manifest.get("ensemble") or {}).get("regime")
        return str(spec) if spec else None

    def predict_array(self, X: np.ndarray, *, regimes: Any = None, symbols: Any = None,
                      active: Any = None) -> np.ndarray:
        """Fold-average within each member, combine members, then calibrate.

        A regime router routes by ``active`` (already-confirmed regimes) when given, else by
        ``regimes`` with its hysteresis started at the first row of each symbol.
        """
        regression = self.task == "regression"
        per_member = {name: member_output(learners, X, self.task, self.classes)
                      for name, learners in self.members.items()}
        if (self.ensemble is not None and getattr(self.ensemble, "method", None) == "regime_router"
                and active is not None):
            combined = np.asarray(self.ensemble.predict_active(per_member, active), dtype=np.float64)
        elif self.ensemble is not None and getattr(self.ensemble, "method", None) == "regime_router":
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
        active = (np.asarray(features.get_column(ACTIVE_REGIME_COLUMN).to_list(), dtype=object)
                  if ACTIVE_REGIME_COLUMN in features.columns else None)
        out = self.predict_array(X, regimes=regimes, symbols=symbols, active=active)
        values = out.reshape(-1, 1) if out.ndim == 1 else out
        return features.select(keys).with_columns(
            pl.Series(c, values[:, i], dtype=pl.Float64) for i, c in enumerate(cols)
        )

    def explain(self, features: pl.DataFrame, k: int = 3, *, chunk_rows: int = 20_000,
                progress: Callable[[int, int], Any] | None = None) -> pl.DataFrame:
        """Why each row's signal fired: its ``k`` strongest signed SHAP drivers.

        Returns ``ts, symbol, explained_class, feature_1, contribution_1, ..., feature_k,
        contribution_k, base_value`` in the input's row order (regression: no
        ``explained_class``).  The explained class is the one with the highest *calibrated*
        probability in that row.  Contributions and ``base_value`` are in the members' raw
        score space, *before* calibration: the log-odds of the explained class (a binary
        model's log-odds of that class against the other; a multi-class booster's softmax
        logit of that class), or raw output units for regression.  They come from the very
        fold models :meth:`predict_array` uses, averaged over folds and combined over members
        as their outputs are (:func:`hydraquant.models.explain.member_weights`), so summed
        over *all* features plus ``base_value`` they reproduce the fold-averaged raw margin.
        Only tree boosters (LightGBM, XGBoost, CatBoost) are explained; other members raise
        an :class:`~hydraquant.models.explain.ExplainError` naming their kind.
        ``progress(done, total)`` counts fold-model passes over row chunks.
        """
        from hydraquant.models import explain as E

        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise E.ExplainError(f"k must be an integer >= 1 (top contributions per row), got {k!r}",
                                 hint="ask for at least one contribution, e.g. --explain 3")
        E.check_explainable(self.members, f"model {self.ref.label}")
        keys = [c for c in ("ts", "symbol") if c in features.columns]
        if "ts" not in keys:
            raise FeatureMismatchError("the feature frame has no 'ts' column",
                                       hint="pass the features as a long frame: ts, symbol, <features...>")
        X = self.matrix(features)
        regimes = symbols = None
        if self.regime_column in features.columns:
            regimes = features.get_column(self.regime_column).to_numpy()
        if "symbol" in features.columns:
            symbols = features.get_column("symbol").to_numpy()
        active = (np.asarray(features.get_column(ACTIVE_REGIME_COLUMN).to_list(), dtype=object)
                  if ACTIVE_REGIME_COLUMN in features.columns else None)  # routed exactly as predict_proba
        n = X.shape[0]
        class_index = None
        if n and self.task != "regression":
            proba = self.predict_array(X, regimes=regimes, symbols=symbols, active=active)
            class_index = E.explained_class_index(proba)
        weights = self._member_weights(X, regimes, symbols, active)
        table = E.explain_rows(self.members, X, task=self.task, classes=self.classes, feature_names=self.features,
                               class_index=class_index, weights=weights, k=int(k), chunk_rows=chunk_rows,
                               progress=progress)
        return pl.concat([features.select(keys), table], how="horizontal")

    def _member_weights(self, X: np.ndarray, regimes: Any, symbols: Any, active: Any = None) -> np.ndarray:
        """Each member's weight per row in the combined output (see ``explain.member_weights``)."""
        from hydraquant.models.explain import member_weights, router_groups

        names = list(self.members)
        method = None if self.ensemble is None else getattr(self.ensemble, "method", None)
        if method != "regime_router" or X.shape[0] == 0:
            return member_weights(names, X.shape[0], method=method, weights=getattr(self.ensemble, "weights", None))
        per_member = {name: member_output(learners, X, self.task, self.classes)
                      for name, learners in self.members.items()}
        if active is not None:
            routed = self.ensemble.predict_active(per_member, active)
        else:
            routed = self.ensemble.predict_proba(per_member, regimes=regimes, symbols=symbols)
        groups = router_groups(getattr(self.ensemble, "members", {}), getattr(self.ensemble, "fallback_member", None))
        return member_weights(names, X.shape[0], method=method, per_member=per_member, combined=routed,
                              groups=groups)


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
    return predictor.predict_proba(lake_features(lake, predictor, symbols, start, end, exchange=exchange,
                                                 market=market, source=source))


def lake_features(
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
    """``ts, symbol, <bundle features>`` from lake bars, warm-up loaded before ``start`` and cut off.

    Separate from :func:`predict_lake` so predictions and their explanations share one feature build.
    """
    from hydraquant.data.lake import parse_time_bound
    from hydraquant.features.registry import build_features, resolve
    from hydraquant.pipeline.features_stage import warmup_span
    from hydraquant.pipeline.inputs import load_inputs
    from hydraquant.timeframes import interval_us

    symbols = list(symbols)
    if not symbols:
        raise HydraError("no symbols given", hint="pass --symbols BTCUSDT,ETHUSDT")
    interval = predictor.interval
    if not interval:
        raise HydraError(f"bundle {predictor.ref.label} records no bar interval", hint="re-train the bundle")
    names = resolve(predictor.features)  # unknown names fail here, naming the feature
    lookback = warmup_span(names, interval) if start is not None else timedelta(0)
    if predictor.regime_spec is not None and start is not None:
        bars = int((predictor.manifest.get("ensemble") or {}).get("regime_lookback_bars") or 0)
        lookback = max(lookback, timedelta(microseconds=bars * interval_us(interval)))
    inputs = load_inputs(lake, symbols, interval, start=start, end=end, lookback=lookback, source=source,
                         exchange=exchange, market=market)
    table = build_features(inputs.bars, names, interval=interval, side=inputs.side)
    if predictor.regime_spec is not None:
        table = with_regimes(table, inputs.bars, predictor)
    t0 = parse_time_bound(start)
    if t0 is not None:
        table = table.filter(pl.col("ts") >= t0)
    trained_on = set((predictor.manifest.get("data") or {}).get("symbols") or [])
    unseen = [s for s in symbols if trained_on and s not in trained_on]
    if unseen:
        log.warning("%s was trained without %s", predictor.ref.label, ", ".join(unseen))
    return table


def with_regimes(table: pl.DataFrame, bars: pl.DataFrame, predictor: Predictor) -> pl.DataFrame:
    """Add the router's raw regime column and the hysteresis-confirmed ``active_regime``.

    Both are computed per symbol over all of ``bars`` — the warm-up included —
    before the caller cuts the frame at its start: the regime labeler needs its
    own warm-up, and the active regime at the start depends on the bars before
    it (the run that trained the bundle confirmed regimes from its first bar;
    the manifest's ``regime_lookback_bars`` of history reproduce that state
    whenever a regime was confirmed within them).
    """
    from hydraquant.pipeline.labels_stage import label_frame, parse_spec

    name, params = parse_spec(str(predictor.regime_spec))
    column = predictor.regime_column
    parts = [label_frame(part, name, params, predictor.interval).select("ts", pl.col("regime").alias(column))
             .with_columns(pl.lit(str(symbol)).alias("symbol"))
             for (symbol,), part in bars.group_by(["symbol"], maintain_order=True)]
    regimes = pl.concat(parts).sort("symbol", "ts") if parts else pl.DataFrame(
        schema={"ts": table.schema["ts"], column: pl.Int8, "symbol": pl.String})
    active = predictor.ensemble.active_regimes(regimes.get_column(column), regimes.get_column("symbol").to_numpy())
    regimes = regimes.with_columns(pl.Series(ACTIVE_REGIME_COLUMN, active.tolist(), dtype=pl.Int64, strict=False))
    out = table.drop([column, ACTIVE_REGIME_COLUMN], strict=False).join(
        regimes, on=["ts", "symbol"], how="left", maintain_order="left")
    return out.select(table.columns + [c for c in (column, ACTIVE_REGIME_COLUMN) if c not in table.columns])
