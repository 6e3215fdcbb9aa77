"""Write what a run produced: report.html, metrics.json, holdout predictions, trades and equity.

Kept apart from :mod:`run` so the wiring stays readable and the report can be
rebuilt from a finished :class:`RunResult`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import polars as pl

from hydraquant.data.files import write_table_file
from hydraquant.report.html import (
    BacktestSection,
    ModelSection,
    RunReport,
    write_metrics_json,
    write_report,
)

if TYPE_CHECKING:
    from hydraquant.pipeline.run import RunResult
    from hydraquant.pipeline.run_data import RunData
    from hydraquant.pipeline.train_stage import TrainedModel


def _model_section(model: TrainedModel, bars: pl.DataFrame) -> ModelSection:
    preds = model.holdout_frame()
    price = preds.drop("y_true").join(bars.select("ts", "symbol", "close"), on=["ts", "symbol"], how="left")
    regression = model.task == "regression"
    return ModelSection(
        name=model.name, task=model.task, classes=model.classes, fold_table=model.fold_table,
        oof_metrics=model.metrics["oof"], holdout_metrics=model.metrics["holdout"],
        y_true=model.y_holdout, proba=None if regression else model.holdout,
        prediction=model.holdout if regression else None, importance=model.importance, shap=model.shap,
        price=price.select("ts", "symbol", "close", *[c for c in price.columns if c not in ("ts", "symbol", "close")]),
    )


def _backtest_section(result: RunResult, bars: pl.DataFrame) -> BacktestSection | None:
    bt = result.backtest
    if bt is None:
        return None
    start = bt.equity["ts"].min() if "ts" in bt.equity.columns else None
    price = bars if start is None else bars.filter(pl.col("ts") >= start)
    dsr, sr0 = bt.deflated_sharpe(n_trials=1, sr_variance=0.0)
    gate = None
    if result.gate is not None:
        gate = {"passed": result.gate.passed, "reasons": result.gate.reasons, "folds": result.gate.folds}
    return BacktestSection(
        metrics=bt.metrics, buy_hold=bt.buy_hold, equity=bt.equity, trades=bt.trades,
        close_types=bt.close_types, price=price.select("ts", "symbol", "open", "high", "low", "close"),
        dsr={"dsr": dsr, "sr0": sr0, "n_trials": 1}, gate=gate,
    )


def build_report(result: RunResult, data: RunData) -> RunReport:
    cfg = result.config
    bars = data.inputs.bars
    summary = {
        "preset": cfg.name,
        "description": cfg.description,
        "data": f"{cfg.data.source}: {', '.join(data.symbols)} {data.interval} "
                f"{bars['ts'].min()} -> {bars['ts'].max()} ({bars.height:,} bars)",
        "data sha256": data.content_sha256,
        "models": ", ".join(f"{k} -> {v}" for k, v in result.bundles.items()),
        "runtime (s)": {k: v for k, v in result.timings.items()},
    }
    return RunReport(
        title=f"hydraquant run: {cfg.name}", summary=summary, config=cfg.model_dump(mode="json"),
        models=[replace(_model_section(m, bars), drivers=result.drivers.get(m.name)) for m in result.models],
        backtest=_backtest_section(result, bars), notes=list(result.notes),
    )


def write_run_outputs(result: RunResult, data: RunData) -> None:
    out = result.out_dir
    for model in result.models:
        write_table_file(model.holdout_frame(), out / f"predictions_{model.name}.parquet")
    if result.backtest is not None:
        write_table_file(result.backtest.trades, out / "trades.parquet")
        write_table_file(result.backtest.equity, out / "equity.parquet")
    report = build_report(result, data)
    write_metrics_json(out / "metrics.json", report)
    write_report(out / "report.html", report)
