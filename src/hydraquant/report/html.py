"""The self-contained HTML run report and its JSON twin (SPEC X4).

Why one file with plotly.js inlined once: a run report is archived next to
the model bundle and mailed around; it must open offline years later, so it
may not fetch anything (no CDN, no external CSS).  Every figure is a plain
div plus a small ``Plotly.newPlot`` call that reuses the one inline library,
and every long series is decimated (see :mod:`hydraquant.report.figures`),
so the file stays a few MB however many bars the run covered.

The JSON twin carries the same numbers for machines (dashboards, CI gates):
strict JSON, NaN and infinities written as ``null``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.offline import get_plotlyjs

from hydraquant.errors import HydraError
from hydraquant.report import figures as F
from hydraquant.validation.metrics import (
    confusion_matrix,
    encode_labels,
    expected_calibration_error,
)

logger = logging.getLogger(__name__)

MAX_SYMBOL_CHARTS = 4
"""Per-symbol charts shown per section; the rest are named in a note (file size)."""
SECTION_POINT_BUDGET = 12_000
"""Time-series points shared by all per-symbol charts of one section (before the trace cap)."""
MAX_TABLE_ROWS = 200
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_PERCENT_KEYS = frozenset({"total_return", "max_drawdown", "win_rate", "exposure"})
_NON_SCALAR_METRICS = frozenset(
    {"classes", "per_class", "reliability", "confusion_matrix", "cv_paths", "routing"}
)


class ReportError(HydraError):
    """Report inputs are inconsistent (shapes, missing columns, unknown task)."""


# --------------------------------------------------------------------------- inputs


@dataclass
class ModelSection:
    """One trained model of the run; arrays describe the holdout rows (OOF rows without a holdout)."""

    name: str
    task: str
    classes: list | None
    fold_table: pl.DataFrame
    oof_metrics: dict
    holdout_metrics: dict | None = None
    y_true: np.ndarray | None = None
    proba: np.ndarray | None = None
    prediction: np.ndarray | None = None
    importance: pl.DataFrame | None = None
    shap: pl.DataFrame | None = None
    price: pl.DataFrame | None = None
    drivers: pl.DataFrame | None = None
    """Latest holdout rows with their top SHAP drivers (``models.explain.holdout_drivers``)."""


@dataclass
class BacktestSection:
    metrics: dict
    buy_hold: dict
    equity: pl.DataFrame
    trades: pl.DataFrame
    close_types: dict[str, int]
    price: pl.DataFrame
    dsr: dict | None = None
    gate: dict | None = None


@dataclass
class RunReport:
    title: str
    summary: dict
    config: dict = field(default_factory=dict)
    models: list[ModelSection] = field(default_factory=list)
    backtest: BacktestSection | None = None
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Strict-JSON view of report data: NaN/inf -> None, frames -> row lists, numpy -> Python."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if isinstance(obj, np.datetime64):
        return str(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pl.DataFrame):
        return [to_jsonable(r) for r in obj.to_dicts()]
    if isinstance(obj, pl.Series):
        return [to_jsonable(v) for v in obj.to_list()]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(mode="json"))
    return str(obj)


def metrics_payload(report: RunReport) -> dict[str, Any]:
    """The machine-readable numbers of a report (what ``write_metrics_json`` writes)."""
    bt = report.backtest
    backtest = None
    if bt is not None:
        backtest = {
            "metrics": bt.metrics,
            "buy_hold": bt.buy_hold,
            "close_types": bt.close_types,
            "trades": bt.trades.height,
            "dsr": bt.dsr,
            "gate": None
            if bt.gate is None
            else {
                "passed": bool(bt.gate.get("passed", False)),
                "reasons": list(bt.gate.get("reasons", [])),
                "folds": _as_frame(bt.gate.get("folds")),
            },
        }
    return to_jsonable(
        {
            "format": 1,
            "title": report.title,
            "summary": report.summary,
            "config": report.config,
            "models": [
                {
                    "name": m.name,
                    "task": m.task,
                    "classes": m.classes,
                    "oof": m.oof_metrics,
                    "holdout": m.holdout_metrics,
                    "folds": m.fold_table,
                }
                for m in report.models
            ],
            "backtest": backtest,
            "notes": report.notes,
        }
    )


def write_metrics_json(path: Path, report: RunReport) -> Path:
    """Write the metrics JSON atomically; returns ``path``."""
    text = json.dumps(metrics_payload(report), indent=2, allow_nan=False)
    return _atomic_write_text(Path(path), text + "\n")


# --------------------------------------------------------------------------- HTML entry point


def write_report(path: Path, report: RunReport) -> Path:
    """Render ``report`` into one self-contained HTML file, written atomically; returns ``path``."""
    for m in report.models:
        _validate_model(m)
    if report.backtest is not None:
        _validate_backtest(report.backtest)
    page = render_report(report)
    out = _atomic_write_text(Path(path), page)
    logger.info("wrote run report %s (%.2f MB)", out, len(page.encode()) / 1e6)
    return out


def render_report(report: RunReport) -> str:
    """The complete HTML document as a string."""
    doc = _Document()
    doc.raw(_header(report))
    if report.notes:
        doc.section("notes", "Notes", 2)
        doc.raw("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in report.notes) + "</ul>")
    slugs = _unique_slugs([m.name for m in report.models])
    for model, slug in zip(report.models, slugs, strict=True):
        _model_section(doc, model, f"model-{slug}")
    if report.backtest is not None:
        _backtest_section(doc, report.backtest)
    doc.section("config", "Configuration", 2)
    cfg = json.dumps(to_jsonable(report.config), indent=2, allow_nan=False)
    doc.raw(f"<details><summary>full run configuration</summary><pre>{_e(cfg)}</pre></details>")
    return doc.html(report.title)


# --------------------------------------------------------------------------- document assembly


_CSS = """
:root{--fg:#1c2630;--muted:#5f6b76;--line:#dde3e8;--bg:#f6f8fa;--accent:#1f5fa8;--ok:#1b7f3b;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#0f2537;color:#fff;padding:20px 32px}
header h1{margin:0 0 10px;font-size:22px}
header table.kv td{color:#e3ebf2;border-color:#29445c}
header table.kv td:first-child{color:#9fb6ca}
nav#toc{background:#fff;border-bottom:1px solid var(--line);padding:10px 32px}
nav#toc ol{margin:4px 0;padding-left:20px;columns:3 260px}
nav#toc a{color:var(--accent);text-decoration:none}
main{padding:8px 32px 48px;max-width:1400px}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 18px;margin:14px 0}
h2{margin:6px 0;font-size:19px;border-bottom:2px solid var(--accent);padding-bottom:4px}
h3{margin:6px 0;font-size:16px;color:#22384d}
table{border-collapse:collapse;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:3px 10px;text-align:right;white-space:nowrap}
th{background:var(--bg);font-weight:600}
td:first-child,th:first-child{text-align:left}
tfoot td{font-style:italic;color:var(--muted)}
.scroll{overflow-x:auto}
.note{color:var(--muted);font-size:13px}
.badge{display:inline-block;padding:2px 12px;border-radius:12px;color:#fff;font-weight:700;letter-spacing:.05em}
.pass{background:var(--ok)}.fail{background:var(--bad)}
pre{background:var(--bg);padding:10px;overflow-x:auto;font-size:12px}
.fig{margin:4px 0 10px}
"""


class _Document:
    """Collects body fragments and table-of-contents entries while sections are built."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._toc: list[tuple[str, str, int]] = []
        self._open = False
        self._figures = 0

    def section(self, sid: str, title: str, level: int) -> None:
        if level == 2:
            if self._open:
                self._parts.append("</section>")
            self._parts.append(f'<section id="{_e(sid)}">')
            self._open = True
        self._parts.append(
            f'<h{level} id="{_e(sid)}">{_e(title)}</h{level}>'
            if level > 2
            else f"<h2>{_e(title)}</h2>"
        )
        self._toc.append((sid, title, level))

    def raw(self, fragment: str) -> None:
        self._parts.append(fragment)

    def note(self, text: str) -> None:
        self._parts.append(f'<p class="note">{_e(text)}</p>')

    def figure(self, fig: go.Figure) -> None:
        self._figures += 1
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{self._figures}",
            config=_PLOT_CONFIG,
        )
        self._parts.append(f'<div class="fig">{div}</div>')

    def html(self, title: str) -> str:
        if self._open:
            self._parts.append("</section>")
        toc = []
        for sid, text, level in self._toc:
            if level == 2:
                if toc:
                    toc.append("</ol></li>")
                toc.append(f'<li><a href="#{_e(sid)}">{_e(text)}</a><ol>')
            else:
                toc.append(f'<li><a href="#{_e(sid)}">{_e(text)}</a></li>')
        if toc:
            toc.append("</ol></li>")
        head = (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style>"
            '<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};</script>'
            f'<script type="text/javascript" id="plotly-js">{get_plotlyjs()}</script>'
            "</head><body>"
        )
        body = self._parts[0] if self._parts else ""
        rest = "".join(self._parts[1:])
        nav = f'<nav id="toc"><strong>Contents</strong><ol>{"".join(toc)}</ol></nav>'
        return f"{head}{body}{nav}<main>{rest}</main></body></html>\n"


def _header(report: RunReport) -> str:
    rows = [(str(k), _fmt_value(v)) for k, v in report.summary.items()]
    if report.backtest is not None and report.backtest.gate is not None:
        rows.append(("gate", "PASS" if report.backtest.gate.get("passed") else "FAIL"))
    kv = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return (
        f'<header id="summary"><h1>{_e(report.title)}</h1><table class="kv">{kv}</table></header>'
    )


# --------------------------------------------------------------------------- model sections


def _model_section(doc: _Document, m: ModelSection, sid: str) -> None:
    cls = f", classes {', '.join(map(str, m.classes))}" if m.classes else ""
    doc.section(sid, f"Model {m.name}", 2)
    doc.note(f"{m.task}{cls}")
    ref_name = "holdout" if m.holdout_metrics is not None else "out-of-fold"
    ref = m.holdout_metrics if m.holdout_metrics is not None else m.oof_metrics

    doc.section(f"{sid}-metrics", f"{m.name}: metrics", 3)
    doc.raw(_metrics_comparison(m.oof_metrics, m.holdout_metrics))
    if m.task == "classification" and isinstance(ref.get("per_class"), Mapping):
        doc.raw(f"<p class='note'>per class ({ref_name})</p>" + _per_class_table(ref["per_class"]))

    paths = m.oof_metrics.get("cv_paths")
    if isinstance(paths, Mapping):
        doc.section(f"{sid}-cpcv", f"{m.name}: CPCV backtest paths", 3)
        doc.raw(_cpcv_table(paths))
    routing = m.oof_metrics.get("routing")
    if isinstance(routing, Mapping) and isinstance(routing.get("regimes"), Mapping):
        doc.section(f"{sid}-routing", f"{m.name}: regime routing", 3)
        doc.raw(_routing_table(routing))

    doc.section(f"{sid}-folds", f"{m.name}: per-fold metrics", 3)
    doc.raw(
        _frame_table(m.fold_table, summary_rows=True, skip_summary=("fold", "n_train", "n_test"))
    )

    has_rows = m.y_true is not None and np.asarray(m.y_true).size > 0
    if m.task == "classification":
        classes = list(m.classes or [])
        usable = has_rows and m.proba is not None
        doc.section(f"{sid}-confusion", f"{m.name}: confusion matrix ({ref_name})", 3)
        cm = ref.get("confusion_matrix")
        if cm is None and usable:
            yi = encode_labels(np.asarray(m.y_true), classes)
            cm = confusion_matrix(yi, np.argmax(m.proba, axis=1), len(classes)).tolist()
        _figure_or_note(doc, cm is not None, lambda: F.confusion_figure(cm, classes))
        doc.section(f"{sid}-reliability", f"{m.name}: reliability ({ref_name})", 3)
        rel = ref.get("reliability")
        if rel is None and usable:
            rel = expected_calibration_error(np.asarray(m.y_true), m.proba, classes)[1].to_dict()
        _figure_or_note(
            doc,
            rel is not None,
            lambda: F.reliability_figure(
                rel, np.asarray(m.y_true), m.proba if usable else None, classes
            ),
        )
        doc.section(f"{sid}-roc-pr", f"{m.name}: ROC and PR ({ref_name})", 3)
        _figure_or_note(
            doc, usable, lambda: F.roc_pr_figure(np.asarray(m.y_true), m.proba, classes)
        )
    else:
        usable = has_rows and m.prediction is not None
        doc.section(f"{sid}-scatter", f"{m.name}: predicted vs actual ({ref_name})", 3)
        _figure_or_note(doc, usable, lambda: F.scatter_figure(m.y_true, m.prediction))
        doc.section(f"{sid}-residuals", f"{m.name}: residuals ({ref_name})", 3)
        _figure_or_note(doc, usable, lambda: F.residual_histogram_figure(m.y_true, m.prediction))

    if m.importance is not None and m.importance.height:
        doc.section(f"{sid}-importance", f"{m.name}: feature importance", 3)
        doc.figure(
            F.bar_figure(m.importance, "feature", "mean", "std", "Fold importance (mean ± std)")
        )
    if m.shap is not None and m.shap.height:
        doc.section(f"{sid}-shap", f"{m.name}: SHAP", 3)
        doc.figure(F.bar_figure(m.shap, "feature", "mean_abs_shap", None, "Mean |SHAP|"))
    if m.drivers is not None and m.drivers.height:
        doc.section(f"{sid}-drivers", f"{m.name}: why the latest signals fired", 3)
        unit = "log-odds of the explained class" if m.task == "classification" else "output units"
        members = m.drivers["explained_members"][0] if "explained_members" in m.drivers.columns else None
        doc.note(f"last {m.drivers.height} holdout rows; contributions in {unit} before calibration "
                 "(all features' contributions + base = the fold-averaged raw score)"
                 + (f"; members explained: {members}" if members else ""))
        doc.raw(_drivers_table(m.drivers))
    if m.price is not None and m.price.height:
        doc.section(f"{sid}-price", f"{m.name}: predictions over price", 3)
        cols = (
            [c for c in m.price.columns if c.startswith("p_")]
            if m.task == "classification"
            else [c for c in m.price.columns if c == "prediction"]
        )
        charts = _per_symbol(doc, m.price)
        for sym, part in charts:
            doc.figure(
                F.prediction_price_figure(part, cols, sym, SECTION_POINT_BUDGET // len(charts))
            )


def _drivers_table(drivers: pl.DataFrame) -> str:
    """One row per signal: time, symbol, class and probability, then "feature (+contribution)" cells."""
    k = sum(1 for c in drivers.columns if c.startswith("feature_"))
    lead = [c for c in ("explained_class", "p_explained", "prediction") if c in drivers.columns]
    heads = {"explained_class": "class", "p_explained": "p", "prediction": "prediction"}
    rows = []
    for r in drivers.iter_rows(named=True):  # at most a handful of report rows
        cells = [
            f"{r[f'feature_{i}']} ({r[f'contribution_{i}']:+.3g})" if r[f"feature_{i}"] is not None else "—"
            for i in range(1, k + 1)
        ]
        rows.append([_fmt_value(r["ts"]), str(r["symbol"]), *(_fmt_value(r[c]) for c in lead), *cells,
                     _fmt_value(r["base_value"])])
    return _table(["ts", "symbol", *(heads[c] for c in lead), *(f"driver {i}" for i in range(1, k + 1)), "base"],
                  rows)


def _figure_or_note(doc: _Document, available: bool, build: Callable[[], go.Figure]) -> None:
    if available:
        doc.figure(build())
    else:
        doc.note("not available: no rows/probabilities were given for this model")


def _per_symbol(doc: _Document, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """(symbol, rows sorted by ts) for the first ``MAX_SYMBOL_CHARTS`` symbols; notes the rest."""
    if "symbol" not in frame.columns:
        return [("all", frame.sort("ts"))]
    symbols = sorted(str(s) for s in frame["symbol"].unique().to_list())
    if len(symbols) > MAX_SYMBOL_CHARTS:
        doc.note(
            f"charts for the first {MAX_SYMBOL_CHARTS} of {len(symbols)} symbols; "
            f"not charted: {', '.join(symbols[MAX_SYMBOL_CHARTS:])}"
        )
    return [
        (sym, frame.filter(pl.col("symbol") == sym).sort("ts"))
        for sym in symbols[:MAX_SYMBOL_CHARTS]
    ]


def _metrics_comparison(oof: Mapping[str, Any], holdout: Mapping[str, Any] | None) -> str:
    keys = [
        k
        for k in dict.fromkeys([*oof.keys(), *(holdout or {}).keys()])
        if k not in _NON_SCALAR_METRICS and _is_scalar((oof.get(k), (holdout or {}).get(k)))
    ]
    headers = ["metric", "out-of-fold"] + (["holdout"] if holdout is not None else [])
    rows = [
        [k, _fmt_value(oof.get(k))] + ([_fmt_value(holdout.get(k))] if holdout is not None else [])
        for k in keys
    ]
    return _table(headers, rows)


def _cpcv_table(paths: Mapping[str, Any]) -> str:
    """Distribution of the task metric over the combinatorial CV backtest paths (one row)."""
    headers = ["groups", "test groups", "splits", "paths", "metric", "mean", "std", "min", "max"]
    keys = ["n_groups", "n_test_groups", "n_splits", "n_paths", "metric", "mean", "std", "min", "max"]
    note = (
        f"<p class='note'>each path tests every development row once, out of sample; "
        f"members combined by {_e(paths.get('combined_by', 'mean'))}, before calibration</p>"
    )
    return _table(headers, [[_fmt_value(paths.get(k)) for k in keys]]) + note


def _routing_table(routing: Mapping[str, Any]) -> str:
    """Rows and specialists per regime of a regime-router model."""
    rows = [
        [
            str(regime),
            _fmt_value(info.get("development_rows")),
            _fmt_value(info.get("holdout_rows")),
            ", ".join(info.get("specialist") or []) or f"none ({info.get('skipped', 'no rows')})",
        ]
        for regime, info in routing["regimes"].items()
    ]
    note = (
        f"<p class='note'>regime {_e(routing.get('regime'))}, hysteresis "
        f"{_e(routing.get('hysteresis_bars'))} bars, fallback {_e(routing.get('fallback') or 'none')} "
        f"(holdout rows it answered: {_e(routing.get('holdout_rows_by_fallback'))})</p>"
    )
    return _table(["regime", "development rows", "holdout rows", "specialist"], rows) + note


def _per_class_table(per_class: Mapping[str, Mapping[str, Any]]) -> str:
    rows = [
        [
            str(c),
            _fmt_value(v.get("precision")),
            _fmt_value(v.get("recall")),
            _fmt_value(v.get("support")),
        ]
        for c, v in per_class.items()
    ]
    return _table(["class", "precision", "recall", "support"], rows)


# --------------------------------------------------------------------------- backtest section


def _backtest_section(doc: _Document, bt: BacktestSection) -> None:
    doc.section("backtest", "Backtest", 2)
    doc.section("backtest-metrics", "Backtest: metrics vs buy & hold", 3)
    keys = list(dict.fromkeys([*bt.metrics.keys(), *bt.buy_hold.keys()]))
    rows = [
        [k, _fmt_metric(k, bt.metrics.get(k)), _fmt_metric(k, bt.buy_hold.get(k))] for k in keys
    ]
    doc.raw(_table(["metric", "strategy", "buy & hold"], rows))

    doc.section("backtest-equity", "Backtest: equity and drawdown", 3)
    if bt.equity.height:
        doc.figure(F.equity_figure(bt.equity.sort("ts")))
    else:
        doc.note("no equity curve")

    doc.section("backtest-trades", "Backtest: trades on price", 3)
    doc.note(f"{bt.trades.height:,} trade rows")
    if bt.price.height:
        charts = _per_symbol(doc, bt.price)
        for sym, part in charts:
            trades = (
                bt.trades.filter(pl.col("symbol") == sym)
                if "symbol" in bt.trades.columns
                else bt.trades
            )
            doc.figure(
                F.trades_price_figure(
                    part,
                    trades,
                    sym,
                    max_points=SECTION_POINT_BUDGET // len(charts),
                    max_markers=F.MAX_TRADE_MARKERS // len(charts),
                )
            )
    if bt.trades.height:
        shown = bt.trades.tail(50)
        doc.raw(
            f"<details><summary>last {shown.height} trades</summary>{_frame_table(shown)}</details>"
        )

    doc.section("backtest-close-types", "Backtest: close types", 3)
    if bt.close_types:
        doc.figure(F.close_type_figure(bt.close_types))
    else:
        doc.note("no closed trades")

    if bt.dsr is not None:
        doc.section("backtest-dsr", "Backtest: deflated Sharpe ratio", 3)
        doc.raw(_table(["quantity", "value"], [[k, _fmt_value(v)] for k, v in bt.dsr.items()]))

    if bt.gate is not None:
        doc.section("backtest-gate", "Backtest: out-of-sample gate", 3)
        passed = bool(bt.gate.get("passed", False))
        doc.raw(
            f'<p><span class="badge {"pass" if passed else "fail"}">'
            f"{'PASS' if passed else 'FAIL'}</span></p>"
        )
        reasons = list(bt.gate.get("reasons") or [])
        if reasons:
            doc.raw(
                "<ul class='reasons'>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>"
            )
        folds = _as_frame(bt.gate.get("folds"))
        if folds is not None and folds.height:
            doc.raw(_frame_table(folds))


# --------------------------------------------------------------------------- tables and formatting


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], foot: Sequence[Sequence[str]] = ()
) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    tfoot = (
        (
            "<tfoot>"
            + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in foot)
            + "</tfoot>"
        )
        if foot
        else ""
    )
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody>{tfoot}</table></div>'


def _frame_table(
    frame: pl.DataFrame, *, summary_rows: bool = False, skip_summary: Sequence[str] = ()
) -> str:
    """Whole frame as a table (first ``MAX_TABLE_ROWS`` rows), with optional mean/std footer."""
    shown = frame.head(MAX_TABLE_ROWS)
    rows = [[_fmt_value(v) for v in r] for r in shown.iter_rows()]
    foot: list[list[str]] = []
    if summary_rows and frame.height > 1:
        numeric = [
            c for c in frame.columns if frame.schema[c].is_numeric() and c not in skip_summary
        ]
        if numeric:
            for label, fn in (("mean", "mean"), ("std", "std")):
                stats = frame.select(getattr(pl.col(numeric).cast(pl.Float64).fill_nan(None), fn)())
                row = [_fmt_value(stats[c][0]) if c in numeric else "" for c in frame.columns]
                row[0] = label
                foot.append(row)
    out = _table(frame.columns, rows, foot)
    if frame.height > MAX_TABLE_ROWS:
        out += f'<p class="note">first {MAX_TABLE_ROWS} of {frame.height:,} rows</p>'
    return out


def _is_scalar(values: Iterable[Any]) -> bool:
    return all(
        v is None or isinstance(v, (int, float, str, bool, np.number, np.bool_)) for v in values
    )


def _fmt_value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if math.isnan(x):
            return "NaN"
        if math.isinf(x):
            return "∞" if x > 0 else "-∞"
        if x == 0.0:
            return "0"
        if abs(x) >= 10_000:
            return f"{x:,.2f}"
        if abs(x) < 1e-3:
            return f"{x:.3e}"
        return f"{x:.4f}"
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S") + (f".{v.microsecond:06d}" if v.microsecond else "")
    if isinstance(v, (Mapping, list, tuple)):
        return json.dumps(to_jsonable(v), allow_nan=False)
    return str(v)


def _fmt_metric(key: str, v: Any) -> str:
    if key in _PERCENT_KEYS and isinstance(v, (float, np.floating)) and math.isfinite(v):
        return f"{float(v):.2%}"
    return _fmt_value(v)


def _as_frame(obj: Any) -> pl.DataFrame | None:
    if obj is None or isinstance(obj, pl.DataFrame):
        return obj
    try:
        return pl.DataFrame(obj)
    except (TypeError, ValueError) as exc:
        raise ReportError(
            f"gate folds of type {type(obj).__name__} cannot be read as a table",
            hint="pass a polars DataFrame or a list of row dicts",
        ) from exc


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _unique_slugs(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "model"
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return out


# --------------------------------------------------------------------------- validation and I/O


def _require(frame: pl.DataFrame | None, columns: Sequence[str], where: str) -> None:
    if frame is None:
        return
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(
            f"{where} lacks column(s) {missing}; has {frame.columns}",
            hint="build the frame with the documented columns",
        )


def _validate_model(m: ModelSection) -> None:
    where = f"model {m.name!r}"
    if m.task not in ("classification", "regression"):
        raise ReportError(f"{where}: task must be 'classification' or 'regression', got {m.task!r}")
    n = None if m.y_true is None else np.asarray(m.y_true).shape[0]
    if m.task == "classification":
        if not m.classes:
            raise ReportError(
                f"{where}: a classification section needs its class list",
                hint="pass classes in the order of the proba columns",
            )
        if m.proba is not None:
            shape = np.asarray(m.proba).shape
            if len(shape) != 2 or shape[1] != len(m.classes) or (n is not None and shape[0] != n):
                raise ReportError(
                    f"{where}: proba shape {shape} does not match "
                    f"{n} rows x {len(m.classes)} classes"
                )
    elif m.prediction is not None and n is not None and np.asarray(m.prediction).shape[0] != n:
        raise ReportError(f"{where}: {np.asarray(m.prediction).shape[0]} predictions for {n} rows")
    _require(m.fold_table, ["fold"], f"{where} fold_table")
    _require(m.importance, ["feature", "mean"], f"{where} importance")
    _require(m.shap, ["feature", "mean_abs_shap"], f"{where} shap")
    _require(m.price, ["ts", "close"], f"{where} price")
    _require(m.drivers, ["ts", "symbol", "base_value"], f"{where} drivers")


def _validate_backtest(bt: BacktestSection) -> None:
    _require(bt.equity, ["ts", "equity"], "backtest equity")
    _require(bt.price, ["ts", "close"], "backtest price")
    if bt.trades.height:
        _require(bt.trades, ["entry_ts", "exit_ts", "entry_price", "exit_price"], "backtest trades")


def _atomic_write_text(path: Path, text: str) -> Path:
    """Stage next to the target and rename, so readers never see a half-written report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise ReportError(
            f"cannot write {path}: {exc}",
            hint="check that the directory is writable and has free space",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path
