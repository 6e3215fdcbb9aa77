"""`hydraquant run CONFIG`: lake -> bars -> features -> labels -> dataset -> CV -> calibration ->
ensemble -> holdout -> backtest -> registry -> report, as one reproducible job.

Each step is a plain function of the previous one's output (see the stage
modules); this module only wires them, times them and writes the outputs:
``runs/<name>/<timestamp>/`` (report.html, metrics.json, predictions, trades,
equity) and one registry bundle per trained model.
"""

from __future__ import annotations

import logging
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from hydraquant.data.lake import Lake
from hydraquant.errors import HydraError
from hydraquant.models.matrix import INPUT_MANTISSA_BITS
from hydraquant.pipeline.run_config import ModelJob, RunConfig
from hydraquant.pipeline.run_data import RunData, prepare_run_data
from hydraquant.pipeline.train_stage import (
    ACTIVE_REGIME,
    REGIME_HISTORY_BARS,
    TrainedModel,
    stage_bundle,
    train_model,
)

log = logging.getLogger(__name__)

_LIBRARIES = ("hydraquant", "numpy", "polars", "scikit-learn", "lightgbm", "xgboost-cpu", "catboost",
              "onnxruntime", "numba")


@dataclass
class RunResult:
    config: RunConfig
    out_dir: Path
    models: list[TrainedModel]
    bundles: dict[str, str]  # model name -> registry label
    backtest: Any | None = None
    gate: Any | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    drivers: dict[str, pl.DataFrame] = field(default_factory=dict)  # model name -> latest signals' SHAP drivers

    @property
    def report_path(self) -> Path:
        return self.out_dir / "report.html"


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in _LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return out


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._t, 3)
        self._t = now


def build_run_features(data: RunData, cfg: RunConfig) -> tuple[pl.DataFrame, list[str]]:
    from hydraquant.features.inputs import prepare_bars
    from hydraquant.features.registry import available_inputs, build_features, resolve

    names = resolve(list(cfg.features.sets), have=available_inputs(prepare_bars(data.inputs.bars), data.inputs.side))
    names = [n for n in names if n not in set(cfg.features.exclude)]
    if not names:
        raise HydraError("no features selected", hint="check features.sets / features.exclude")
    if cfg.features.causality_check:
        guard_causality(data, names)
    feats = build_features(data.inputs.bars, names, interval=data.interval, side=data.inputs.side)
    return feats, names


def guard_causality(data: RunData, names: list[str], rows: int = 4000) -> None:
    """Refuse to train on a feature whose value at t moves when later bars change (SPEC V4).

    Runs the registry's prefix + perturbation experiments on the most recent
    ``rows`` bars of the first symbol — cheap (well under a second for the
    seed sets) and it stops a leaky user feature before any model sees it.
    """
    from hydraquant.features.causality import check_features

    first = data.symbols[0]
    sample = data.inputs.bars.filter(pl.col("symbol") == first).tail(rows)
    t0 = sample["ts"].min()
    side = {k: v.filter(pl.col("symbol") == first) if "symbol" in v.columns else v
            for k, v in data.inputs.side.items()}
    leaks = check_features(names, sample, data.interval, side)
    if leaks:
        first_problem = next(iter(leaks.values()))[0]
        raise HydraError(
            f"feature(s) {sorted(leaks)} failed the causality check on {first} bars from {t0}: {first_problem}",
            hint="a feature must not use bars after t; fix it or drop it with features.exclude — nothing was trained",
        )


def build_labels(data: RunData, spec: str) -> pl.DataFrame:
    from hydraquant.pipeline.labels_stage import label_frame, parse_spec

    name, params = parse_spec(spec)
    parts = []
    for (symbol,), bars in data.inputs.bars.group_by(["symbol"], maintain_order=True):
        table = label_frame(bars, name, params, data.interval)
        parts.append(table.with_columns(pl.lit(str(symbol)).alias("symbol")))
    return pl.concat(parts, how="diagonal_relaxed")


def job_frames(job: ModelJob, feats: pl.DataFrame, labels: pl.DataFrame,
               names: list[str]) -> list[tuple[str, pl.DataFrame]]:
    """The training table of a job, split into one table per ``split_by`` value."""
    from hydraquant.pipeline.dataset_stage import assemble_dataset

    keep = list(dict.fromkeys(([job.split_by] if job.split_by else []) + list(job.rows)
                              + ([ACTIVE_REGIME] if job.router is not None else [])))
    if job.target_transform == "mfe_clip_log1p" and "target_key" not in keep:
        keep.append("target_key")
    missing = [c for c in keep if c not in labels.columns]
    if missing:
        raise HydraError(f"model {job.name}: label {job.label!r} has no column(s) {missing}",
                         hint=f"label columns: {[c for c in labels.columns if c not in ('ts', 'symbol')]}")
    ds = assemble_dataset(feats, labels, names, target=job.target, weights=job.weights, half_life=job.half_life,
                          keep=keep, source=job.label).frame
    for col, values in job.rows.items():
        ds = ds.filter(pl.col(col).cast(pl.String).is_in([str(v) for v in values]))
    if not job.split_by:
        return [(job.name, ds)]
    out = []
    for (value,), part in ds.sort("ts").group_by([job.split_by], maintain_order=True):
        if value is not None:
            out.append((f"{job.name}_{value}", part))
    return sorted(out)


def router_regimes(data: RunData, job: ModelJob) -> tuple[pl.DataFrame, int]:
    """``ts, symbol, _active_regime`` over every bar, and the history a cold predictor needs.

    The router's hysteresis runs per symbol over the whole bar history (never
    over the filtered training rows, whose gaps would fake consecutive bars),
    exactly as the predictor runs it over the bars it loads; the returned
    look-back is the labeler's observed warm-up plus ``REGIME_HISTORY_BARS``.
    """
    from hydraquant.models.ensemble import RegimeRouter

    spec = job.router
    assert spec is not None
    raw = build_labels(data, spec.regime).select("ts", "symbol", "regime").sort("symbol", "ts")
    router = RegimeRouter(spec.hysteresis_bars, spec.min_confidence, spec.default)
    active = router.active_regimes(raw["regime"], raw["symbol"].to_numpy())
    warmup = raw.group_by("symbol").agg(pl.col("regime").is_not_null().arg_max().alias("w"))["w"].max()
    out = raw.select("ts", "symbol", pl.Series(ACTIVE_REGIME, active.tolist(), dtype=pl.Int64, strict=False))
    return out, int(warmup or 0) + REGIME_HISTORY_BARS


def _manifest(cfg: RunConfig, model: TrainedModel, data: RunData, staged: dict[str, Any]) -> dict[str, Any]:
    bars = data.inputs.bars
    return {
        "task": model.task,
        "classes": model.classes,
        "features": model.features,
        "input_mantissa_bits": INPUT_MANTISSA_BITS,
        "interval": data.interval,
        "feature_sets": list(cfg.features.sets),
        "label": {"spec": model.job.label, "target": model.job.target,
                  "target_transform": model.job.target_transform},
        **staged,
        "metrics": {"oof": model.metrics["oof"], "holdout": model.metrics["holdout"],
                    "folds": model.fold_table.to_dicts()},
        "data": {"symbols": data.symbols, "exchange": data.exchange, "market": data.market,
                 "start": str(bars["ts"].min()), "end": str(bars["ts"].max()),
                 "holdout_start": str(model.holdout_start), "rows": model.rows,
                 "content_sha256": data.content_sha256},
        "signal_classes": dict(model.job.signal_classes),
        "config": cfg.model_dump(mode="json"),
        "versions": library_versions(),
    }


def _register(cfg: RunConfig, model: TrainedModel, data: RunData, registry_root: Path, universe: str) -> str:
    from hydraquant.models.registry import ModelRegistry

    with tempfile.TemporaryDirectory(prefix="hq-bundle-") as tmp:
        staged = stage_bundle(model, Path(tmp))
        ref = ModelRegistry(registry_root).save_bundle(universe, model.name, tmp, _manifest(cfg, model, data, staged))
    return ref.label


def run_backtest_stage(cfg: RunConfig, data: RunData, model: TrainedModel, notes: list[str]):
    from hydraquant.backtest import oos_gate, run_backtest
    from hydraquant.backtest.gate import fold_bounds
    from hydraquant.backtest.signals import signals_to_market

    signals = model.holdout_frame().drop("y_true")
    bars = data.inputs.bars.filter(pl.col("ts") >= signals["ts"].min())
    market = signals_to_market(bars, signals, interval=data.interval, signal_classes=model.job.signal_classes,
                               source=f"holdout predictions of {model.name}")
    bt = cfg.backtest
    result = run_backtest(market, bt.policy, bt.costs, initial_cash=bt.initial_cash)
    gate = None
    try:
        fold_bounds(np.asarray(market.ts), bt.gate)
        gate = oos_gate(market, bt.policy, bt.costs, bt.gate, initial_cash=bt.initial_cash)
    except HydraError as exc:
        notes.append(f"OOS gate not evaluated: {exc.message}")
    return result, gate


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def run_pipeline(
    cfg: RunConfig,
    *,
    lake: Lake,
    registry_root: Path,
    runs_root: Path,
    out_dir: Path | None = None,
    config_dir: Path | None = None,
    progress: bool = False,
    on_stage: Any = None,
) -> RunResult:
    """Run the whole job; returns what was produced (the report and bundles are already written)."""
    clock = _Clock()
    say = on_stage or (lambda msg: log.info("%s", msg))
    out = Path(out_dir) if out_dir else Path(runs_root) / cfg.name / _timestamp()
    out.mkdir(parents=True, exist_ok=True)
    notes = list(cfg.notes)

    say(f"data: {cfg.data.source} -> {cfg.data.interval} bars")
    data = prepare_run_data(lake, cfg.data, config_dir=config_dir, progress=progress)
    clock.lap("data")
    say(f"features: {', '.join(cfg.features.sets)} on {data.inputs.bars.height:,} bars of {len(data.symbols)} symbol(s)")
    feats, names = build_run_features(data, cfg)
    clock.lap("features")
    universe = cfg.universe or "-".join(data.symbols)
    checkpoints = Path(runs_root) / cfg.name / "_checkpoints"
    trained: list[TrainedModel] = []
    bundles: dict[str, str] = {}
    for job in cfg.models:
        say(f"labels: {job.name} <- {job.label}")
        labels = build_labels(data, job.label)
        if job.regime_filter:
            regime = build_labels(data, job.regime_filter).select("ts", "symbol", pl.col("regime").alias("_regime"))
            labels = labels.join(regime, on=["ts", "symbol"], how="left").filter(
                pl.col("_regime").is_in(list(job.regime_values))).drop("_regime")
        lookback = 0
        if job.router is not None:
            say(f"regimes: {job.name} routes by {job.router.regime}")
            active, lookback = router_regimes(data, job)
            labels = labels.join(active, on=["ts", "symbol"], how="left")
        for name, frame in job_frames(job, feats, labels, names):
            say(f"train: {name} ({frame.height:,} rows, {len(job.learners)} learner(s), "
                f"{cfg.cv.n_folds} {cfg.cv.kind} folds)")
            model = train_model(name, job, frame, names, cv=cfg.cv, holdout=cfg.holdout,
                                checkpoint_root=checkpoints, data_hash=data.content_sha256, progress=progress,
                                regime_lookback_bars=lookback)
            trained.append(model)
            bundles[name] = _register(cfg, model, data, Path(registry_root), universe)
    clock.lap("training")
    backtest = gate = None
    bt_models = [m for m in trained if m.job.backtest]
    if bt_models:
        say(f"backtest: holdout signals of {bt_models[0].name}")
        backtest, gate = run_backtest_stage(cfg, data, bt_models[0], notes)
        clock.lap("backtest")
    drivers = {}
    if bt_models:
        from hydraquant.models.explain import holdout_drivers

        why = holdout_drivers(bt_models[0], feats)
        drivers = {bt_models[0].name: why} if why is not None else {}
    result = RunResult(config=cfg, out_dir=out, models=trained, bundles=bundles, backtest=backtest, gate=gate,
                       timings=clock.timings, notes=notes, drivers=drivers)
    say(f"report: {out}")
    from hydraquant.pipeline.run_outputs import write_run_outputs

    write_run_outputs(result, data)
    clock.lap("report")
    result.timings = clock.timings
    return result
