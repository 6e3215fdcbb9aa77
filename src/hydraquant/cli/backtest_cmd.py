"""`hydraquant backtest`: external signals or a registered model, on lake bars, with sweeps and the OOS gate.

The policy, costs, gate and starting cash come from the ``[backtest]`` config
section (:class:`hydraquant.backtest.config.BacktestConfig`).  Sweep and surface
syntax: ``key=start:stop:step`` (inclusive stop) or ``key=a,b,c``; keys are
PolicyConfig dotted keys or the aliases in :data:`ALIASES`.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from hydraquant.cli.context import AppContext, app_context, split_symbols
from hydraquant.errors import ConfigError, HydraError

ALIASES = {
    "conf": "entry.conf_threshold",
    "prob_diff": "entry.min_prob_diff",
    "tp_atr": "exit.tp_atr_mult",
    "sl_atr": "exit.sl_atr_mult",
    "tp_pct": "exit.tp_pct",
    "sl_pct": "exit.sl_pct",
    "window": "exit.max_bars_held",
    "min_bars": "exit.min_bars_held",
    "exit_threshold": "exit.exit_threshold",
    "risk": "sizing.risk_pct",
}
WARMUP_BARS = 64  # history loaded before --start so ATR-14 is warm on the first bar


# --------------------------------------------------------------------------- parsing


def resolve_key(key: str) -> str:
    """Alias -> PolicyConfig dotted key (unknown keys are checked when the grid is built)."""
    key = key.strip()
    return ALIASES.get(key, key)


def _scalar(text: str) -> Any:
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def parse_values(spec: str) -> list[Any]:
    """``a:b:step`` (inclusive, tolerant to float steps) or ``a,b,c`` -> list of values."""
    spec = spec.strip()
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ConfigError(
                f"invalid range {spec!r}", hint="use start:stop:step, e.g. 0.55:0.85:0.05"
            )
        lo, hi, step = (_scalar(p) for p in parts)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi, step)):
            raise ConfigError(f"invalid range {spec!r}: start, stop and step must be numbers")
        if step <= 0 or hi < lo:
            raise ConfigError(f"invalid range {spec!r}", hint="need step > 0 and stop >= start")
        n = math.floor((hi - lo) / step + 1e-9) + 1
        if n > 10_000:
            raise ConfigError(f"range {spec!r} has {n} values", hint="use a coarser step")
        if all(isinstance(v, int) for v in (lo, hi, step)):
            return [lo + k * step for k in range(n)]
        return [round(lo + k * step, 10) for k in range(n)]
    values = [_scalar(v) for v in spec.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"no values in {spec!r}", hint="use a,b,c or start:stop:step")
    return values


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``key=spec`` -> (dotted key, values)."""
    if "=" not in text:
        raise ConfigError(
            f"invalid sweep {text!r}",
            hint="use key=start:stop:step or key=a,b,c, e.g. conf=0.55:0.85:0.05",
        )
    key, spec = text.split("=", 1)
    return resolve_key(key), parse_values(spec)


def parse_classes(text: str | None) -> dict[str, Any] | None:
    """``long=2,short=0,flat=1`` -> {"long": 2, ...}: which p_<class> column is which side."""
    if not text:
        return None
    out: dict[str, Any] = {}
    for part in text.split(","):
        if "=" not in part:
            raise ConfigError(
                f"invalid --classes {text!r}", hint="use long=<class>,short=<class>[,flat=<class>]"
            )
        k, v = part.split("=", 1)
        out[k.strip().lower()] = v.strip()
    return out


# --------------------------------------------------------------------------- config


def backtest_config(app: AppContext):  # -> BacktestConfig
    """The ``[backtest]`` section of the global config (policy, costs, gate, starting cash)."""
    return app.config.backtest


# --------------------------------------------------------------------------- inputs


def _signal_symbols(
    app: AppContext, signals: pl.DataFrame, interval: str, exchange, market
) -> list[str]:
    """Symbols of the signals file that have bars (the others fail later, naming their row)."""
    from hydraquant.pipeline.inputs import find_bar_tables

    have = []
    for sym in signals["symbol"].unique().sort().to_list():
        try:
            find_bar_tables(app.lake, [sym], interval, exchange=exchange, market=market)
            have.append(sym)
        except HydraError:
            continue
    if not have:
        raise HydraError(
            f"no {interval} bars in the lake at {app.lake.root} for any symbol of the signals file",
            hint="build bars first (`hydraquant bars ...`) or check --interval",
        )
    return have


def _model_signals(
    app: AppContext, ref: str, symbols: list[str], interval: str, start, end, exchange, market
):
    """Predictions of a registered model as a signals table, plus its signal_classes mapping."""
    try:  # lazy: the model layer is heavy and optional for --signals users
        from hydraquant.models.predictor import Predictor, predict_lake
        from hydraquant.models.registry import ModelRegistry
    except ImportError as exc:
        raise HydraError(
            f"--model needs hydraquant.models (predictor/registry), not importable: {exc}",
            hint="use --signals FILE, or install the model extras",
        ) from None
    predictor = Predictor.load(ModelRegistry(app.config.registry.root), ref)
    if getattr(predictor, "interval", interval) != interval:
        raise HydraError(
            f"model {ref} was trained on {predictor.interval} bars, not {interval}",
            hint=f"pass --interval {predictor.interval}",
        )
    if not symbols:
        symbols = list(predictor.manifest.get("data", {}).get("symbols", []))
    if not symbols:
        raise HydraError("no symbols to predict", hint="pass --symbols")
    preds = predict_lake(app.lake, predictor, symbols, start, end, exchange=exchange, market=market)
    probs = [c for c in preds.columns if c.startswith("p_")]
    if not probs:
        raise HydraError(
            f"model {ref} gives no class probabilities (regression?)",
            hint="backtests need a classifier with a signal_classes mapping",
        )
    preds = preds.filter(
        pl.all_horizontal(pl.col(probs).is_not_null() & pl.col(probs).is_not_nan())
    )
    return preds, symbols, predictor.manifest.get("signal_classes")


# --------------------------------------------------------------------------- output


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, datetime | Path):
        return str(value)
    return value


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fmt(name: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if name in ("win_rate", "total_return", "max_drawdown", "exposure"):
        return f"{v:.2%}"
    if name in ("trades", "guard_triggers"):
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.2f}"


SUMMARY = (
    "trades",
    "win_rate",
    "profit_factor",
    "total_return",
    "sharpe",
    "sortino",
    "max_drawdown",
    "exposure",
    "final_equity",
    "fees",
    "funding",
    "psr",
)


def summary_table(metrics: dict[str, float], buy_hold: dict[str, float], title: str) -> Table:
    table = Table(title=title)
    for col in ("metric", "strategy", "buy & hold"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in SUMMARY:
        if name in metrics:
            table.add_row(
                name,
                _fmt(name, metrics[name]),
                _fmt(name, buy_hold[name]) if name in buy_hold else "",
            )
    return table


def close_type_table(counts: dict[str, int]) -> Table:
    table = Table(title="close types")
    table.add_column("type")
    table.add_column("count", justify="right")
    for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(k, f"{v:,}")
    return table


def rank_sweep(frame: pl.DataFrame) -> pl.DataFrame:
    """Best first by Sharpe (NaN last); ties keep grid order, so the ranking is reproducible."""
    key = pl.when(pl.col("sharpe").is_nan()).then(None).otherwise(pl.col("sharpe"))
    return frame.sort(key, "config", descending=[True, False], nulls_last=True)


def sweep_table(frame: pl.DataFrame, params: list[str], top: int) -> Table:
    table = Table(
        title=f"sweep: top {min(top, frame.height)} of {frame.height} configurations by Sharpe "
        f"(DSR deflated for {frame.height} trials)"
    )
    cols = [
        "config",
        *params,
        "trades",
        "win_rate",
        "profit_factor",
        "total_return",
        "sharpe",
        "max_drawdown",
        "dsr",
    ]
    for c in cols:
        table.add_column(c.replace("__", "."), justify="right")
    for row in rank_sweep(frame).head(top).iter_rows(named=True):
        table.add_row(
            *(str(row[c]) if c == "config" or c in params else _fmt(c, row[c]) for c in cols)
        )
    return table


# --------------------------------------------------------------------------- command


def backtest_cmd(
    ctx: typer.Context,
    interval: Annotated[str, typer.Option(help="Bar interval of the signals: 1m, 15m, 1h ...")],
    signals: Annotated[
        Path | None,
        typer.Option(
            help="CSV/Parquet: ts (bar open at whose close the signal is known), symbol, side or p_* columns."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Registered model: NAME, universe/NAME, optional @VERSION.")
    ] = None,
    symbols: Annotated[
        list[str] | None, typer.Option(help="Symbols (default: those in the signals file).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="From (ISO); default: the first signal.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(help="To (ISO; a bare date includes that day); default: end of data."),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option(help="Which p_<class> column is which side: long=1,short=-1[,flat=0]."),
    ] = None,
    align: Annotated[
        str,
        typer.Option(
            help="exact: signal ts must be a bar open; floor: move to the open of the bar containing it."
        ),
    ] = "exact",
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            "--sweep",
            help="key=start:stop:step or key=a,b,c (repeat). Aliases: " + ", ".join(ALIASES),
        ),
    ] = None,
    surface: Annotated[
        str | None, typer.Option(help="Threshold axis, e.g. conf=0.55:0.85:0.05.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Window axis values, e.g. 30,60,120 (bars).")
    ] = None,
    window_param: Annotated[
        str, typer.Option(help="Policy key of the window axis.")
    ] = "exit.max_bars_held",
    surface_metric: Annotated[str, typer.Option(help="Metric drawn in surface.html.")] = "sharpe",
    gate: Annotated[
        bool, typer.Option("--gate", help="Walk-forward OOS gate verdict (exit 0 either way).")
    ] = False,
    gate_strict: Annotated[
        bool, typer.Option("--gate-strict", help="Like --gate, but exit 3 on FAIL.")
    ] = False,
    gate_folds: Annotated[
        int | None, typer.Option(help="Override the gate's number of folds.")
    ] = None,
    gate_weeks: Annotated[
        float | None, typer.Option(help="Override the gate's fold length in weeks.")
    ] = None,
    jobs: Annotated[
        int | None, typer.Option(help="Parallel threads for sweeps (default: all cores).")
    ] = None,
    top: Annotated[int, typer.Option(help="Sweep rows to print.")] = 10,
    out: Annotated[
        Path | None,
        typer.Option(help="Write trades/equity parquet, metrics.json (+ sweep/surface)."),
    ] = None,
    exchange: Annotated[str | None, typer.Option(help="Exchange (when ambiguous).")] = None,
    market: Annotated[str | None, typer.Option(help="Market (when ambiguous).")] = None,
) -> None:
    """Backtest external signals or a registered model with the configured policy; sweeps, surface, OOS gate."""
    from hydraquant.backtest import oos_gate, run_backtest
    from hydraquant.backtest import sweep as run_sweep
    from hydraquant.backtest.engine import BacktestError
    from hydraquant.backtest.gate import GateConfig
    from hydraquant.backtest.signals import load_bars, read_signals, signals_to_market, trim_market
    from hydraquant.backtest.surface import surface_figure, threshold_window_surface
    from hydraquant.backtest.sweep import with_overrides
    from hydraquant.data.files import write_table_file
    from hydraquant.data.lake import parse_time_bound

    app = app_context(ctx)
    con = app.console
    if (signals is None) == (model is None):
        raise HydraError("give exactly one of --signals FILE or --model NAME")
    if align not in ("exact", "floor"):
        raise HydraError(f"unknown --align {align!r}", hint="use exact or floor")
    if (surface is None) != (window is None):
        raise HydraError(
            "--surface and --window go together",
            hint="e.g. --surface conf=0.55:0.85:0.05 --window 30,60,120",
        )
    cfg = backtest_config(app)
    policy, costs, cash = cfg.policy, cfg.costs, cfg.initial_cash
    grid = dict(parse_sweep(s) for s in sweep or [])
    if grid:
        with_overrides(
            policy, {k: v[0] for k, v in grid.items()}
        )  # unknown keys fail before any work
    n_jobs = jobs or os.cpu_count() or 1
    class_map = parse_classes(classes)
    sym_list = split_symbols(symbols)
    t0 = parse_time_bound(start)

    if signals is not None:
        sig = read_signals(signals, signal_classes=class_map)
        source = str(signals)
        if not sym_list:
            sym_list = _signal_symbols(app, sig, interval, exchange, market)
        if t0 is None:
            t0 = sig["ts"].min()
    else:
        sig, sym_list, manifest_classes = _model_signals(
            app, model, sym_list, interval, start, end, exchange, market
        )
        class_map = class_map or manifest_classes
        source = f"model {model}"
    bars = load_bars(
        app.lake, sym_list, interval, t0, end, exchange, market, warmup_bars=WARMUP_BARS
    )
    mkt = trim_market(
        signals_to_market(
            bars, sig, interval=interval, signal_classes=class_map, align=align, source=source
        ),
        t0,
    )
    n, m = mkt.shape
    con.print(f"backtest {source}: {m} symbol(s) x {n:,} {interval} bars")

    result = run_backtest(mkt, policy, costs, initial_cash=cash)
    dsr, _ = result.deflated_sharpe(1, 0.0)
    metrics = {**result.metrics, "psr": dsr}
    con.print(summary_table(metrics, result.buy_hold, title=f"backtest {interval}"))
    con.print(close_type_table(result.close_types))

    report: dict[str, Any] = {
        "source": source,
        "symbols": list(mkt.symbols),
        "interval": interval,
        "bars": n,
        "start": _ts_str(mkt.ts[0]),
        "end": _ts_str(mkt.ts[-1]),
        "metrics": metrics,
        "buy_hold": result.buy_hold,
        "close_types": result.close_types,
        "config": cfg.model_dump(mode="json"),
    }
    sweep_frame = surface_frame = None
    if grid:
        sweep_frame = run_sweep(
            mkt, policy, grid, costs, initial_cash=cash, n_jobs=n_jobs, progress=True
        )
        sweep_frame = sweep_frame.with_row_index("config").with_columns(
            pl.col("config").cast(pl.Int64)
        )
        params = [k.replace(".", "__") for k in grid]
        con.print(sweep_table(sweep_frame, params, top))
        report["sweep"] = {"n_configs": sweep_frame.height, "params": list(grid)}
    if surface is not None:
        t_key, thresholds = parse_sweep(surface)
        windows = parse_values(window or "")
        surface_frame = threshold_window_surface(
            mkt,
            policy,
            thresholds,
            windows,
            costs,
            n_jobs=n_jobs,
            window_param=resolve_key(window_param),
            threshold_param=t_key,
            initial_cash=cash,
            progress=True,
        )
        con.print(_surface_table(surface_frame, surface_metric))
        report["surface"] = {
            "threshold_param": t_key,
            "window_param": resolve_key(window_param),
            "thresholds": thresholds,
            "windows": windows,
        }
    gate_passed: bool | None = None
    if gate or gate_strict:
        upd = {
            k: v for k, v in (("n_folds", gate_folds), ("fold_weeks", gate_weeks)) if v is not None
        }
        gcfg = GateConfig.model_validate({**cfg.gate.model_dump(), **upd})
        try:
            verdict = oos_gate(mkt, policy, costs, gcfg, initial_cash=cash)
            gate_passed, reasons, folds = verdict.passed, verdict.reasons, verdict.folds
        except BacktestError as exc:  # too little data is a FAIL with its reason, not a crash
            gate_passed, reasons, folds = False, [exc.message], None
        _print_gate(con, gate_passed, reasons, folds)
        report["gate"] = {
            "passed": gate_passed,
            "reasons": reasons,
            "config": gcfg.model_dump(),
            "folds": folds.to_dicts() if folds is not None else [],
        }

    if out is not None:
        write_table_file(result.trades, out / "trades.parquet")
        write_table_file(result.equity, out / "equity.parquet")
        if sweep_frame is not None:
            write_table_file(sweep_frame, out / "sweep.parquet")
        if surface_frame is not None:
            write_table_file(surface_frame, out / "surface.parquet")
            _write_text(
                out / "surface.html",
                surface_figure(surface_frame, surface_metric).to_html(
                    include_plotlyjs=True, full_html=True
                ),
            )
        _write_text(out / "metrics.json", json.dumps(_json_safe(report), indent=2))
        con.print(f"wrote results to {out}")
    if gate_strict and gate_passed is False:
        raise typer.Exit(3)


def _ts_str(ts_us: int) -> str:
    return str(pl.Series([int(ts_us)]).cast(pl.Datetime("us", "UTC"))[0])


def _surface_table(frame: pl.DataFrame, metric: str) -> Table:
    from hydraquant.backtest.surface import surface_matrix

    th, wi, z = surface_matrix(frame, metric)
    table = Table(title=f"{metric}: threshold (rows) x window (columns)")
    table.add_column("threshold")
    for w in wi:
        table.add_column(f"{w:g}", justify="right")
    for t, row in zip(th, z, strict=True):
        table.add_row(f"{t:.4g}", *(_fmt(metric, float(v)) for v in row))
    return table


def _print_gate(con: Console, passed: bool, reasons: list[str], folds: pl.DataFrame | None) -> None:
    if folds is not None and folds.height:
        table = Table(title="walk-forward OOS folds")
        for c in ("fold", "trades", "win_rate", "profit_factor", "total_return", "max_drawdown"):
            table.add_column(c, justify="right")
        for r in folds.iter_rows(named=True):
            table.add_row(
                str(r["fold"]),
                *(
                    _fmt(c, r[c])
                    for c in ("trades", "win_rate", "profit_factor", "total_return", "max_drawdown")
                ),
            )
        con.print(table)
    if passed:
        con.print("[bold green]OOS gate: PASS[/]")
    else:
        con.print("[bold red]OOS gate: FAIL[/]")
        for r in reasons:
            con.print(f"  - {r}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_cmd)
