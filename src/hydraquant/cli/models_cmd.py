"""`hydraquant models list|show|promote|rollback` and `hydraquant predict`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from hydraquant.cli.context import AppContext, app_context, split_symbols
from hydraquant.errors import HydraError

if TYPE_CHECKING:
    from hydraquant.models.registry import ModelRegistry

models_app = typer.Typer(help="Versioned model bundles: list, inspect, promote, roll back.", no_args_is_help=True)

RegistryDir = Annotated[
    Path | None, typer.Option("--registry", help="Registry directory (else config registry.root, else ./models).")
]


def _registry(app: AppContext, override: Path | None) -> ModelRegistry:
    from hydraquant.models.registry import ModelRegistry

    section = getattr(app.config, "registry", None)
    return ModelRegistry(override or getattr(section, "root", None) or Path("models"))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


@models_app.command("list")
def list_cmd(
    ctx: typer.Context,
    universe: Annotated[str | None, typer.Option(help="Only this universe.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model name.")] = None,
    registry: RegistryDir = None,
) -> None:
    """Every stored bundle with its creation time, headline metrics and the current marker."""
    app = app_context(ctx)
    reg = _registry(app, registry)
    infos = reg.list(universe, model)
    if not infos:
        app.console.print(f"no models in the registry at {reg.root}")
        return
    metric_names = list(dict.fromkeys(k for i in infos for k in i.metrics))[:4]
    table = Table(title=f"models in {reg.root}")
    for col in ("universe", "model", "version", "current", "created", *metric_names):
        table.add_column(col, justify="right" if col in metric_names else "left")
    for i in infos:
        table.add_row(i.universe, i.model, i.version, "*" if i.is_current else "", i.created_at,
                      *(_fmt(i.metrics.get(k)) for k in metric_names))
    app.console.print(table)


@models_app.command("show")
def show_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL, UNIVERSE/MODEL, optionally @v0002.")],
    registry: RegistryDir = None,
) -> None:
    """A bundle's summary: features, classes, members, metrics, data range and a file integrity check."""
    from hydraquant.models.registry import ModelIntegrityError, check_files, read_json

    app = app_context(ctx)
    reg = _registry(app, registry)
    bundle = reg.resolve_ref(ref)
    m = read_json(bundle.path / "manifest.json", "manifest")
    current = reg.current_version(bundle.universe, bundle.model)
    data = m.get("data") or {}
    label = m.get("label") or {}
    feats = [str(f) for f in m.get("features") or []]
    symbols = ", ".join(map(str, data.get("symbols") or []))
    summary = Table(title=f"{bundle.label}{' (current)' if current == bundle.version else ''}", show_header=False)
    summary.add_column("key", style="bold")
    summary.add_column("value", overflow="fold")
    rows = [
        ("created", m.get("created_at")),
        ("task", m.get("task")),
        ("interval", m.get("interval")),
        ("features", f"{len(feats)} ({', '.join(feats[:6])}{' ...' if len(feats) > 6 else ''})"),
        ("feature sets", ", ".join(map(str, m.get("feature_sets") or []))),
        ("classes", ", ".join(map(str, m.get("classes") or [])) or "-"),
        ("label", f"{label.get('spec', '')} target={label.get('target', '')}" if label else "-"),
        ("members", "; ".join(f"{mem.get('name')} ({(mem.get('spec') or {}).get('kind', '?')}, "
                              f"{len(mem.get('folds') or [])} folds)" for mem in m.get("members") or [])),
        ("ensemble", (m.get("ensemble") or {}).get("method", "mean")),
        ("calibration", (m.get("calibration") or {}).get("method", "none") if m.get("calibration") else "none"),
        ("data", f"{symbols} {data.get('start', '')} -> {data.get('end', '')} ({_fmt(data.get('rows'))} rows)"),
        ("path", str(bundle.path)),
    ]
    for key, value in rows:
        summary.add_row(key, _fmt(value))
    app.console.print(summary)

    metrics = m.get("metrics") or {}
    scalar = {(scope, k): v for scope in ("oof", "holdout") for k, v in (metrics.get(scope) or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalar:
        names = list(dict.fromkeys(k for _, k in scalar))
        scopes = [s for s in ("oof", "holdout") if any(sc == s for sc, _ in scalar)]
        mt = Table(title="metrics")
        mt.add_column("metric")
        for s in scopes:
            mt.add_column(s, justify="right")
        for n in names:
            mt.add_row(n, *(_fmt(scalar.get((s, n))) for s in scopes))
        app.console.print(mt)

    status = check_files(bundle.path, m)
    bad = {k: v for k, v in status.items() if v != "ok"}
    app.console.print(f"files: {len(status) - len(bad)} ok, {len(bad)} failed")
    for rel, s in sorted(bad.items()):
        app.console.print(f"  [red]{s}[/]: {rel}")
    if bad:
        reg.verify(bundle.path)  # raises the one-line integrity error (non-zero exit)
        raise ModelIntegrityError(f"bundle {bundle.label} failed its integrity check")


@models_app.command("promote")
def promote_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION (without a version: the latest).")],
    registry: RegistryDir = None,
) -> None:
    """Make a verified version the current one (recorded in the history for rollback)."""
    app = app_context(ctx)
    target = _registry(app, registry).promote(ref)
    app.console.print(f"current: {target.label}")


@models_app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="UNIVERSE/MODEL (or MODEL when unique).")],
    registry: RegistryDir = None,
) -> None:
    """Return to the version that was current before the present one."""
    from hydraquant.models.registry import parse_ref

    app = app_context(ctx)
    reg = _registry(app, registry)
    if parse_ref(ref)[2] is not None:
        raise HydraError("rollback takes UNIVERSE/MODEL without a version",
                         hint="to choose a version use `hydraquant models promote MODEL@v0002`")
    found = reg.resolve_ref(ref)
    target = reg.rollback(found.universe, found.model)
    app.console.print(f"current: {target.label}")


def predict_cmd(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="MODEL, UNIVERSE/MODEL, optionally @v0002 (default: current).")],
    symbols: Annotated[list[str], typer.Option(help="Symbols (comma or repeat).")],
    start: Annotated[str | None, typer.Option(help="From (inclusive), ISO date/time; warm-up is loaded before.")] = None,
    end: Annotated[str | None, typer.Option(help="To; a bare date includes that whole day.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write predictions to FILE.parquet or FILE.csv (atomically).")] = None,
    registry: RegistryDir = None,
    source: Annotated[str, typer.Option(help="Bar source: auto, bars or klines.")] = "auto",
    exchange: Annotated[str | None, typer.Option(help="Exchange (when ambiguous).")] = None,
    market: Annotated[str | None, typer.Option(help="Market (when ambiguous).")] = None,
    explain: Annotated[int | None, typer.Option(
        "--explain", metavar="K",
        help="Add each row's K strongest SHAP drivers (feature_i, contribution_i in log-odds of the "
             "explained class, base_value) and print the latest row per symbol.")] = None,
) -> None:
    """Score lake bars with a registered model: the bundle's exact features, calibrated probabilities."""
    import polars as pl

    from hydraquant.data.files import check_table_file, write_table_file
    from hydraquant.models.predictor import Predictor, lake_features

    app = app_context(ctx)
    if explain is not None and explain < 1:
        raise HydraError(f"--explain must be >= 1 (the number of top feature contributions per row), got {explain}",
                         hint="e.g. --explain 3 adds the three strongest drivers of every prediction")
    if out is not None:
        check_table_file(out)
    predictor = Predictor.load(_registry(app, registry), model)
    feats = lake_features(app.lake, predictor, split_symbols(symbols), start, end,
                          exchange=exchange, market=market, source=source)
    preds = predictor.predict_proba(feats)
    if explain is not None:
        drivers = _explain_with_progress(app, predictor, feats, explain)
        preds = pl.concat([preds, drivers.drop("ts", "symbol")], how="horizontal")
    if out is not None:
        write_table_file(preds, out)
    value_cols = predictor.output_columns
    table = Table(title=f"predictions {predictor.ref.label} ({predictor.interval})")
    for col in ("symbol", "rows", "first", "last", *(f"mean {c}" for c in value_cols)):
        table.add_column(col, justify="right" if col.startswith(("rows", "mean")) else "left")
    summary = preds.group_by("symbol", maintain_order=True).agg(
        pl.len().alias("rows"), pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"),
        *(pl.col(c).mean().alias(c) for c in value_cols),
    )
    for row in summary.iter_rows(named=True):
        table.add_row(str(row["symbol"]), f"{row['rows']:,}", str(row["first"]), str(row["last"]),
                      *(_fmt(row[c]) for c in value_cols))
    app.console.print(table)
    if explain is not None:
        app.console.print(_drivers_table(predictor, preds))
    if out is not None:
        app.console.print(f"wrote {preds.height:,} rows to {out}")


def _explain_with_progress(app: AppContext, predictor: Any, feats: Any, k: int) -> Any:
    """``Predictor.explain`` under a transient bar: SHAP over many rows and folds takes a while."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("explaining"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=app.err, transient=True) as bar:
        task = bar.add_task("explain", total=None)
        return predictor.explain(feats, k=k, progress=lambda done, total: bar.update(task, completed=done,
                                                                                     total=total))


def _drivers_table(predictor: Any, preds: Any) -> Table:
    """The latest row per symbol with its drivers: what a trader checks before acting on a signal."""
    k = sum(1 for c in preds.columns if c.startswith("feature_"))
    latest = preds.sort("ts").group_by("symbol", maintain_order=True).last().sort("symbol")
    classification = "explained_class" in preds.columns
    unit = "log-odds of the class" if classification else "output units"
    table = Table(title=f"latest signal per symbol: top {k} drivers ({unit}, before calibration)")
    heads = ["symbol", "ts"] + (["class", "p"] if classification else ["prediction"])
    for col in (*heads, *(f"#{i + 1}" for i in range(k)), "base"):
        table.add_column(col, justify="left" if col in ("symbol", "ts", "class") else "right")
    for row in latest.iter_rows(named=True):
        if classification:
            cls = row["explained_class"]
            value = row.get(f"p_{cls}") if cls is not None else None
            lead = [_fmt(cls), _fmt(value)]
        else:
            lead = [_fmt(row.get("prediction"))]
        drivers = [f"{row[f'feature_{i + 1}']} ({row[f'contribution_{i + 1}']:+.3g})"
                   if row[f"feature_{i + 1}"] is not None else "" for i in range(k)]
        table.add_row(str(row["symbol"]), str(row["ts"]), *lead, *drivers, _fmt(row["base_value"]))
    return table


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("predict")(predict_cmd)
