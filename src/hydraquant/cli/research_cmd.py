"""Research commands: features, label, dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hydraquant.cli.context import app_context, split_symbols
from hydraquant.errors import HydraError

Symbols = Annotated[Optional[list[str]], typer.Option(help="Symbols (comma or repeat).")]
Interval = Annotated[Optional[str], typer.Option(help="Bar interval, e.g. 250ms or 1m.")]
Start = Annotated[Optional[str], typer.Option(help="From (inclusive), ISO date/time.")]
End = Annotated[Optional[str], typer.Option(help="To; a bare date includes that whole day.")]
Exchange = Annotated[Optional[str], typer.Option(help="Exchange (when ambiguous).")]
Market = Annotated[Optional[str], typer.Option(help="Market (when ambiguous).")]


def _need(value, flag: str):
    if not value:
        raise HydraError(f"{flag} is required", hint=f"pass {flag} (see --help)")
    return value


def features_cmd(
    ctx: typer.Context,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="Feature set, group or feature name (repeatable); 'all' = every feature whose inputs exist.")] = None,
    symbols: Symbols = None,
    interval: Interval = None,
    start: Start = None,
    end: End = None,
    source: Annotated[str, typer.Option(help="auto (trade bars, else klines), bars or klines.")] = "auto",
    name: Annotated[Optional[str], typer.Option(help="Store as features.<name> instead of features.")] = None,
    exchange: Exchange = None,
    market: Market = None,
    list_: Annotated[bool, typer.Option("--list", help="List every registered feature and exit.")] = False,
) -> None:
    """Build causal features into the lake (read back with `hydraquant export features ...`)."""
    from hydraquant.features.registry import feature_sets, registry

    app = app_context(ctx)
    if list_:
        table = Table(title="registered features")
        for col in ("name", "group", "inputs", "warm-up", "description"):
            table.add_column(col, overflow="fold")
        for spec in sorted(registry().values(), key=lambda s: (s.group, s.name)):
            warm = f"{spec.warmup} bars" + (f" + {spec.warmup_time}" if spec.warmup_time else "")
            table.add_row(spec.name, spec.group, ", ".join(spec.inputs), warm, spec.description)
        app.console.print(table)
        for set_name, members in feature_sets().items():
            app.console.print(f"[bold]set {set_name}[/]: {', '.join(members)}")
        return
    from hydraquant.pipeline.features_stage import build_feature_table

    result = build_feature_table(
        app.lake, _need(sets, "--set"), split_symbols(_need(symbols, "--symbols")), _need(interval, "--interval"),
        start=start, end=end, source=source, exchange=exchange, market=market, name=name,
    )
    table = Table(title=f"{result.kind}/{result.interval}: {len(result.features)} features")
    table.add_column("symbol")
    table.add_column("rows", justify="right")
    for sym, rows in result.rows.items():
        table.add_row(sym, f"{rows:,}")
    app.console.print(table)
    app.console.print("features: " + ", ".join(result.features))


def label_cmd(
    ctx: typer.Context,
    spec: Annotated[Optional[str], typer.Option(help="NAME[:key=value,...], e.g. triple_barrier:tp=0.02,sl=0.01,horizon=60,unit=pct")] = None,
    symbols: Symbols = None,
    interval: Interval = None,
    start: Start = None,
    end: End = None,
    source: Annotated[str, typer.Option(help="auto (trade bars, else klines), bars or klines.")] = "auto",
    exchange: Exchange = None,
    market: Market = None,
    list_: Annotated[bool, typer.Option("--list", help="List the labelers and exit.")] = False,
) -> None:
    """Compute labels (targets, with t_end) into the lake as labels.<name>."""
    from hydraquant.pipeline.labels_stage import LABELERS, build_label_table

    app = app_context(ctx)
    if list_:
        table = Table(title="labelers (--spec NAME:key=value,...)")
        for col in ("name", "what", "defaults"):
            table.add_column(col)
        for n, lab in LABELERS.items():
            table.add_row(n, lab.description, ", ".join(f"{k}={v}" for k, v in lab.defaults.items()))
        app.console.print(table)
        return
    out = build_label_table(app.lake, _need(spec, "--spec"), split_symbols(_need(symbols, "--symbols")),
                            _need(interval, "--interval"), start=start, end=end, source=source,
                            exchange=exchange, market=market)
    table = Table(title=f"labels {spec}")
    for col in ("symbol", "rows", "labelled", "label counts"):
        table.add_column(col)
    for sym, frame in out.items():
        col = "label" if "label" in frame.columns else next(c for c in frame.columns if c not in ("ts", "t_end"))
        counts = frame.get_column(col).drop_nulls()
        summary = (
            ", ".join(f"{k}: {v:,}" for k, v in counts.value_counts(sort=True).iter_rows())
            if counts.dtype.is_integer() or counts.n_unique() < 20
            else f"mean {counts.mean():.4g}"
        )
        table.add_row(sym, f"{frame.height:,}", f"{counts.len():,}", summary)
    app.console.print(table)


def dataset_cmd(
    ctx: typer.Context,
    label: Annotated[Optional[str], typer.Option(help="Label table name (labels.<name>), e.g. triple_barrier.")] = None,
    symbols: Symbols = None,
    interval: Interval = None,
    target: Annotated[str, typer.Option(help="Label column to learn.")] = "label",
    features: Annotated[str, typer.Option(help="Feature table kind (features or features.<name>).")] = "features",
    weights: Annotated[Optional[list[str]], typer.Option(help="balanced, recency, uniqueness (multiplied; mean 1).")] = None,
    half_life: Annotated[str, typer.Option(help="Recency half-life, e.g. 30d.")] = "30d",
    name: Annotated[Optional[str], typer.Option(help="Store as dataset.<name> in the lake (default: the label name).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write the table to FILE.parquet or FILE.csv.")] = None,
    exchange: Exchange = None,
    market: Market = None,
) -> None:
    """Join features, labels (with t_end) and sample weights into a training table."""
    from hydraquant.data.files import check_table_file, write_table_file
    from hydraquant.pipeline.dataset_stage import build_dataset, store_dataset

    app = app_context(ctx)
    if out is not None:
        check_table_file(out)
    syms = split_symbols(_need(symbols, "--symbols"))
    weight_kinds = [w.strip().lower() for w in ",".join(weights or []).split(",") if w.strip()]
    result = build_dataset(app.lake, syms, _need(interval, "--interval"), label=_need(label, "--label"),
                           target=target, features_kind=features, weights=weight_kinds,
                           half_life=half_life, exchange=exchange, market=market)
    frame = result.frame
    kind = store_dataset(app.lake, result, name or label, interval, exchange=exchange, market=market)
    if out is not None:
        write_table_file(frame, out)
    app.console.print(f"{kind}/{interval}: {frame.height:,} rows, {len(result.features)} features, "
                      f"target {target!r}" + (f", written to {out}" if out else ""))


def register(app: typer.Typer) -> None:
    app.command("features")(features_cmd)
    app.command("label")(label_cmd)
    app.command("dataset")(dataset_cmd)
