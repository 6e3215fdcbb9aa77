"""`hydraquant run CONFIG`: the main job, and the metrics table it ends with."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hydraquant.cli.context import app_context


def _fmt(value: Any, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if pct else f"{value:.4f}"
    return str(value)


def metrics_table(result) -> Table:
    table = Table(title=f"run {result.config.name}: out-of-fold (development) and holdout metrics")
    for col in ("model", "rows dev / holdout", "OOF AUC | MAE", "holdout AUC | MAE", "holdout log loss | RMSE",
                "holdout ECE", "bundle"):
        table.add_column(col, overflow="fold")
    for m in result.models:
        oof, hold = m.metrics["oof"], m.metrics["holdout"]
        if m.task == "regression":
            cells = (_fmt(oof.get("mae")), _fmt(hold.get("mae")), _fmt(hold.get("rmse")), "-")
        else:
            cells = (_fmt(oof.get("roc_auc")), _fmt(hold.get("roc_auc")), _fmt(hold.get("log_loss")),
                     _fmt(hold.get("ece")))
        table.add_row(m.name, f"{m.rows['development']:,} / {m.rows['holdout']:,}", *cells,
                      result.bundles.get(m.name, "-"))
    return table


def backtest_table(result) -> Table:
    bt = result.backtest
    m = bt.metrics
    table = Table(title="holdout backtest (policy from the config)")
    for col in ("trades", "win rate", "profit factor", "sharpe", "return", "max drawdown", "buy & hold", "gate"):
        table.add_column(col)
    gate = "-" if result.gate is None else ("PASS" if result.gate.passed else "FAIL")
    trades = m.get("trades")
    table.add_row(str(int(trades)) if trades is not None and math.isfinite(trades) else "-", _fmt(m.get("win_rate"), True), _fmt(m.get("profit_factor")),
                  _fmt(m.get("sharpe")), _fmt(m.get("total_return"), True), _fmt(m.get("max_drawdown"), True),
                  _fmt(bt.buy_hold.get("total_return"), True), gate)
    return table


RunOverrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override a run-config key: --set cv.n_splits=3 (repeatable).")
]
RegistryDir = Annotated[Path | None, typer.Option(help="Model registry root (else config registry.root, ./models).")]
OutDir = Annotated[Path | None, typer.Option(help="Output directory (else runs/<name>/<timestamp>/).")]


def execute_run(ctx: typer.Context, config: str, overrides: list[str], registry: Path | None, out: Path | None) -> None:
    """Load the run config (file or preset), run the pipeline, print the metrics tables and the report path."""
    from hydraquant.pipeline.run import run_pipeline
    from hydraquant.pipeline.run_config import load_run_config

    app = app_context(ctx)
    cfg, path = load_run_config(config, overrides)
    app.console.rule(f"[bold]hydraquant run {cfg.name}")
    if cfg.description:
        app.console.print(cfg.description, highlight=False)
    result = run_pipeline(
        cfg, lake=app.lake, registry_root=registry or app.config.registry.root,
        runs_root=app.config.runs.root, out_dir=out, config_dir=path.parent, progress=True,
        on_stage=lambda msg: app.console.print(f"[cyan]>[/] {msg}", highlight=False),
    )
    app.console.print(metrics_table(result))
    if result.backtest is not None:
        app.console.print(backtest_table(result))
        if result.gate is not None and not result.gate.passed:
            app.console.print("gate: " + "; ".join(result.gate.reasons), highlight=False)
    for note in result.notes:
        app.console.print(f"[yellow]note:[/] {note}", highlight=False)
    total = sum(result.timings.values())
    app.console.print(f"[green]done in {total:.1f} s[/] — report: {result.report_path}")


def run_cmd(
    ctx: typer.Context,
    config: Annotated[str | None, typer.Argument(help="Run config TOML, or a preset name from configs/.")] = None,
    set_: RunOverrides = None,
    registry: RegistryDir = None,
    out: OutDir = None,
    list_: Annotated[bool, typer.Option("--list", help="List the presets in configs/ and exit.")] = False,
) -> None:
    """Data -> bars -> features -> labels -> purged CV -> calibration -> ensemble -> holdout -> backtest -> registry -> report."""
    from hydraquant.errors import HydraError
    from hydraquant.pipeline.run_config import list_presets, presets_dir

    if list_:
        app = app_context(ctx)
        table = Table(title=f"presets ({presets_dir()})")
        table.add_column("name")
        table.add_column("description", overflow="fold")
        from hydraquant.pipeline.run_config import load_run_config

        for name in list_presets():
            table.add_row(name, load_run_config(name)[0].description.replace("\n", " "))
        app.console.print(table)
        return
    if config is None:
        raise HydraError("no run config given", hint=f"hydraquant run CONFIG (presets: {', '.join(list_presets())})")
    execute_run(ctx, config, set_ or [], registry, out)


def quickstart_cmd(ctx: typer.Context, set_: RunOverrides = None, registry: RegistryDir = None,
                   out: OutDir = None) -> None:
    """Offline demo (what `make quickstart` runs): `hydraquant run quickstart` on a simulated market."""
    execute_run(ctx, "quickstart", set_ or [], registry, out)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("quickstart")(quickstart_cmd)
