"""Plotly figure builders for the HTML run report.

Why every builder caps its points: a report over a few hundred thousand bars
must still open instantly in a browser and stay a mailable single file, so
long series go through min/max-preserving decimation (spikes and drawdown
troughs survive, which uniform striding would drop) and each figure shares a
point budget between its traces.  Time axes carry epoch milliseconds as
float64 (plotly's date axes accept them and they serialise as compact base64
typed arrays, far smaller than ISO strings); y values go out as float32.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from hydraquant.validation.metrics import encode_labels, reliability_curve

MAX_TRACE_POINTS = 5_000
"""Hard cap on the points of any one time-series trace."""
FIGURE_POINT_BUDGET = 8_000
"""Points shared by all time-series traces of one figure (keeps multi-class charts small)."""
MAX_CURVE_POINTS = 500
"""ROC/PR curves are monotone paths: this many vertices draw them faithfully."""
MAX_SCATTER_POINTS = 5_000
MAX_TRADE_MARKERS = 2_000
TOP_FEATURES = 25

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_TEMPLATE: dict[str, Any] = {
    "layout": {
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": list(PALETTE),
        "xaxis": {"gridcolor": "#eceff1", "zerolinecolor": "#cfd8dc", "linecolor": "#90a4ae"},
        "yaxis": {"gridcolor": "#eceff1", "zerolinecolor": "#cfd8dc", "linecolor": "#90a4ae"},
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.18},
    }
}


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.layout.template = go.layout.Template(_TEMPLATE)  # replace, not merge into plotly's default
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 60, "r": 30, "t": 50, "b": 40},
    )
    return fig


# --------------------------------------------------------------------------- data reduction


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices keeping each bucket's min and max (plus both ends), at most ``max_points``.

    NaN is ignored inside a bucket; an all-NaN bucket keeps one NaN so gaps stay visible.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    if n <= max_points:
        return np.arange(n)
    n_buckets = max(1, (max_points - 2) // 2)
    width = -(-n // n_buckets)
    padded = np.full(n_buckets * width, np.nan)
    padded[:n] = v
    grid = padded.reshape(n_buckets, width)
    missing = np.isnan(grid)
    offsets = np.arange(n_buckets) * width
    lo = np.where(missing, np.inf, grid).argmin(axis=1) + offsets
    hi = np.where(missing, -np.inf, grid).argmax(axis=1) + offsets
    idx = np.unique(np.concatenate(([0, n - 1], lo, hi)))
    return idx[idx < n]


def even_indices(n: int, max_points: int) -> np.ndarray:
    """Evenly spaced indices including both ends (for monotone curves and event samples)."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def epoch_ms(series: pl.Series) -> np.ndarray:
    """Datetime column -> float64 epoch milliseconds (what a plotly date axis reads)."""
    if series.dtype == pl.Datetime or series.dtype == pl.Date:
        return series.dt.epoch("us").cast(pl.Float64).to_numpy() / 1_000.0
    return series.cast(pl.Float64).to_numpy()


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


# --------------------------------------------------------------------------- curves


def binary_curves(y_bin: np.ndarray, score: np.ndarray) -> dict[str, Any] | None:
    """ROC and precision-recall vertices at every distinct threshold, with their areas.

    None when the class is absent or universal (both curves are undefined).
    """
    y = np.asarray(y_bin, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    keep = np.isfinite(s)
    y, s = y[keep], s[keep]
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    if y.size == 0:
        return None
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    n_pos, n_neg = tps[-1], fps[-1]
    if n_pos == 0 or n_neg == 0:
        return None
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    precision = tps / (last + 1)
    recall = tps / n_pos
    return {
        "fpr": fpr,
        "tpr": tpr,
        "precision": np.r_[precision[0], precision],
        "recall": np.r_[0.0, recall],
        "roc_auc": float(np.trapezoid(tpr, fpr)),
        "average_precision": float(np.sum(np.diff(np.r_[0.0, recall]) * precision)),
        "prevalence": float(n_pos / (n_pos + n_neg)),
    }


# --------------------------------------------------------------------------- classification


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[Any]) -> go.Figure:
    """Counts as text, colour = share of the true class (row-normalised recall)."""
    cm = np.asarray(matrix, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = cm / cm.sum(axis=1, keepdims=True)
    labels = [str(c) for c in classes]
    fig = go.Figure(
        go.Heatmap(
            z=np.nan_to_num(share),
            x=labels,
            y=labels,
            text=cm.astype(np.int64),
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"title": {"text": "row share"}},
            hovertemplate="true %{y}<br>predicted %{x}<br>count %{text}<br>row share %{z:.3f}"
            "<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="predicted", type="category")
    fig.update_yaxes(title_text="true", type="category", autorange="reversed")
    return _layout(fig, "Confusion matrix", height=380 + 20 * len(labels))


def reliability_figure(
    reliability: Mapping[str, Any] | None,
    y_true: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
    n_bins: int = 10,
) -> go.Figure:
    """Top-label (or binary) curve from the metrics report plus one-vs-rest curves per class."""
    fig = go.Figure(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect",
            line={"dash": "dash", "color": "#90a4ae"},
        )
    )
    if reliability:
        mp = np.asarray(reliability.get("mean_predicted", []), dtype=np.float64)
        of = np.asarray(reliability.get("observed_frequency", []), dtype=np.float64)
        cnt = np.asarray(reliability.get("count", np.zeros(mp.size)), dtype=np.float64)
        ok = np.isfinite(mp) & np.isfinite(of)
        name = "P(class 1)" if len(classes) == 2 else "top-label confidence"
        fig.add_trace(
            go.Scatter(
                x=mp[ok],
                y=of[ok],
                mode="lines+markers",
                name=name,
                customdata=cnt[ok],
                line={"width": 3, "color": "#263238"},
                hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>n=%{customdata}"
                "<extra></extra>",
            )
        )
    if proba is not None and len(classes) > 2:
        yi = encode_labels(np.asarray(y_true), list(classes))
        for k, c in enumerate(classes):
            curve = reliability_curve(
                (yi == k).astype(np.int8), np.clip(proba[:, k], 0.0, 1.0), n_bins
            )
            ok = curve.count > 0
            fig.add_trace(
                go.Scatter(
                    x=curve.mean_predicted[ok],
                    y=curve.observed_frequency[ok],
                    mode="lines+markers",
                    name=f"P({c}) vs rest",
                    customdata=curve.count[ok],
                    hovertemplate="predicted %{x:.3f}<br>observed %{y:.3f}<br>"
                    "n=%{customdata}<extra></extra>",
                )
            )
    fig.update_xaxes(title_text="mean predicted probability", range=[0, 1])
    fig.update_yaxes(title_text="observed frequency", range=[0, 1])
    return _layout(fig, "Reliability diagram")


def roc_pr_figure(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> go.Figure:
    """One-vs-rest ROC and precision-recall curves side by side, areas in the legend."""
    yi = encode_labels(np.asarray(y_true), list(classes))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("ROC (one vs rest)", "Precision-recall"))
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            showlegend=False,
            line={"dash": "dash", "color": "#90a4ae"},
        ),
        row=1,
        col=1,
    )
    shown = range(1, 2) if len(classes) == 2 else range(len(classes))
    for k in shown:
        cur = binary_curves(yi == k, proba[:, k])
        if cur is None:
            continue
        color = PALETTE[k % len(PALETTE)]
        i = even_indices(cur["fpr"].size, MAX_CURVE_POINTS)
        fig.add_trace(
            go.Scatter(
                x=_f32(cur["fpr"][i]),
                y=_f32(cur["tpr"][i]),
                mode="lines",
                name=f"{classes[k]} AUC={cur['roc_auc']:.3f}",
                line={"color": color},
                legendgroup=str(k),
            ),
            row=1,
            col=1,
        )
        j = even_indices(cur["recall"].size, MAX_CURVE_POINTS)
        fig.add_trace(
            go.Scatter(
                x=_f32(cur["recall"][j]),
                y=_f32(cur["precision"][j]),
                mode="lines",
                line={"color": color, "shape": "hv"},
                name=f"{classes[k]} AP={cur['average_precision']:.3f}",
                legendgroup=str(k),
            ),
            row=1,
            col=2,
        )
        fig.add_hline(
            y=cur["prevalence"], line={"dash": "dot", "color": color, "width": 1}, row=1, col=2
        )
    fig.update_xaxes(title_text="false positive rate", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="true positive rate", range=[0, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="recall", range=[0, 1], row=1, col=2)
    fig.update_yaxes(title_text="precision", range=[0, 1.02], row=1, col=2)
    return _layout(fig, "ROC and precision-recall curves", height=440)


def bar_figure(
    frame: pl.DataFrame,
    label: str,
    value: str,
    error: str | None,
    title: str,
    top: int = TOP_FEATURES,
) -> go.Figure:
    """Horizontal bars of the ``top`` largest ``value`` rows, largest on top."""
    f = frame.filter(pl.col(value).is_not_null() & pl.col(value).is_not_nan())
    f = f.sort(value, descending=True).head(top).reverse()
    err = None
    if error is not None and error in f.columns:
        err = {"type": "data", "array": _f32(f[error].fill_null(0.0).to_numpy()), "visible": True}
    fig = go.Figure(
        go.Bar(
            x=_f32(f[value].to_numpy()),
            y=[str(s) for s in f[label].to_list()],
            orientation="h",
            error_x=err,
            marker={"color": "#1f77b4"},
        )
    )
    fig.update_yaxes(type="category", automargin=True)
    shown = f"top {f.height} of {frame.height}" if frame.height > f.height else f"{f.height}"
    return _layout(fig, f"{title} ({shown})", height=max(260, 60 + 18 * f.height))


# --------------------------------------------------------------------------- time series


def _decimated_line(x: np.ndarray, y: np.ndarray, max_points: int, **trace: Any) -> go.Scatter:
    i = minmax_indices(y, max_points)
    return go.Scatter(x=x[i], y=_f32(y[i]), mode="lines", **trace)


def prediction_price_figure(
    price: pl.DataFrame,
    value_columns: Sequence[str],
    symbol: str,
    budget: int = FIGURE_POINT_BUDGET,
) -> go.Figure:
    """Close on the left axis, predicted probabilities / values on the right, one symbol."""
    per_trace = min(MAX_TRACE_POINTS, max(200, budget // (1 + len(value_columns))))
    x = epoch_ms(price["ts"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        _decimated_line(
            x,
            price["close"].cast(pl.Float64).to_numpy(),
            per_trace,
            name="close",
            line={"color": "#37474f", "width": 1.2},
        ),
        secondary_y=False,
    )
    for k, col in enumerate(value_columns):
        fig.add_trace(
            _decimated_line(
                x,
                price[col].cast(pl.Float64).to_numpy(),
                per_trace,
                name=col,
                opacity=0.8,
                line={"width": 1, "color": PALETTE[(k + 1) % len(PALETTE)]},
            ),
            secondary_y=True,
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="close", secondary_y=False)
    probs = all(c.startswith("p_") for c in value_columns)
    fig.update_yaxes(
        title_text="probability" if probs else "prediction",
        secondary_y=True,
        showgrid=False,
        **({"range": [0, 1]} if probs else {}),
    )
    return _layout(fig, f"{symbol}: predictions over price (holdout, {price.height:,} bars)")


def scatter_figure(
    y_true: np.ndarray, y_pred: np.ndarray, max_points: int = MAX_SCATTER_POINTS
) -> go.Figure:
    """Predicted vs actual on a seeded subsample that keeps the largest residuals."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    n = y.size
    if n > max_points:
        resid = np.abs(y - p)
        extremes = np.argsort(-np.nan_to_num(resid, nan=-1.0))[: max_points // 20]
        rng = np.random.default_rng(0)
        sample = rng.choice(n, size=max_points - extremes.size, replace=False)
        idx = np.unique(np.concatenate((sample, extremes)))
    else:
        idx = np.arange(n)
    finite = np.isfinite(y) & np.isfinite(p)
    lo = float(np.nanmin(np.r_[y[finite], p[finite]])) if finite.any() else 0.0
    hi = float(np.nanmax(np.r_[y[finite], p[finite]])) if finite.any() else 1.0
    fig = go.Figure(
        [
            go.Scatter(
                x=_f32(y[idx]),
                y=_f32(p[idx]),
                mode="markers",
                name="rows",
                marker={"size": 4, "opacity": 0.45, "color": "#1f77b4"},
            ),
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="y = x",
                line={"dash": "dash", "color": "#90a4ae"},
            ),
        ]
    )
    fig.update_xaxes(title_text="actual")
    fig.update_yaxes(title_text="predicted")
    shown = f"{idx.size:,} of {n:,} rows" if idx.size < n else f"{n:,} rows"
    return _layout(fig, f"Predicted vs actual ({shown})", height=460)


def residual_histogram_figure(y_true: np.ndarray, y_pred: np.ndarray, bins: int = 60) -> go.Figure:
    """Binned in numpy so the file holds ``bins`` bars, not every residual."""
    r = np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)
    r = r[np.isfinite(r)]
    counts, edges = np.histogram(r, bins=bins) if r.size else (np.zeros(0), np.zeros(1))
    centers = (edges[:-1] + edges[1:]) / 2.0
    fig = go.Figure(
        go.Bar(
            x=_f32(centers),
            y=counts,
            width=_f32(np.diff(edges)),
            marker={"color": "#5c6bc0"},
            name="residuals",
        )
    )
    fig.update_xaxes(title_text="actual - predicted")
    fig.update_yaxes(title_text="rows")
    mean = float(r.mean()) if r.size else float("nan")
    sd = float(r.std()) if r.size else float("nan")
    return _layout(fig, f"Residuals (mean {mean:.4g}, std {sd:.4g})", height=360)


# --------------------------------------------------------------------------- backtest


def equity_figure(equity: pl.DataFrame) -> go.Figure:
    """Equity on top, drawdown (as a negative percentage) below, shared time axis."""
    x = epoch_ms(equity["ts"])
    eq = equity["equity"].cast(pl.Float64).to_numpy()
    if "drawdown" in equity.columns:
        dd = equity["drawdown"].cast(pl.Float64).to_numpy()
    else:
        dd = 1.0 - eq / np.fmax.accumulate(eq) if eq.size else eq
    per_trace = min(MAX_TRACE_POINTS, FIGURE_POINT_BUDGET // 2)
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    fig.add_trace(
        _decimated_line(x, eq, per_trace, name="equity", line={"color": "#1f77b4"}), row=1, col=1
    )
    i = minmax_indices(dd, per_trace)
    fig.add_trace(
        go.Scatter(
            x=x[i],
            y=_f32(-100.0 * dd[i]),
            mode="lines",
            name="drawdown %",
            fill="tozeroy",
            line={"color": "#d62728", "width": 1},
        ),
        row=2,
        col=1,
    )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="equity", row=1, col=1)
    fig.update_yaxes(title_text="drawdown %", row=2, col=1)
    return _layout(fig, "Equity and drawdown", height=520)


def trades_price_figure(
    price: pl.DataFrame,
    trades: pl.DataFrame,
    symbol: str,
    max_points: int = MAX_TRACE_POINTS,
    max_markers: int = MAX_TRADE_MARKERS,
) -> go.Figure:
    """Close line with entries (triangles by side) and exits (crosses by close type).

    Beyond ``max_markers`` trades an evenly spaced sample is drawn (the title says so).
    """
    x = epoch_ms(price["ts"])
    fig = go.Figure(
        _decimated_line(
            x,
            price["close"].cast(pl.Float64).to_numpy(),
            min(MAX_TRACE_POINTS, max_points),
            name="close",
            line={"color": "#37474f", "width": 1.1},
        )
    )
    n_trades = trades.height
    if n_trades > max_markers:
        trades = trades[even_indices(n_trades, max(1, max_markers))]
    pnl = (
        trades["pnl"].cast(pl.Float64).to_numpy()
        if "pnl" in trades.columns
        else np.zeros(trades.height)
    )
    sides = (
        trades["side"].cast(pl.String).to_numpy()
        if "side" in trades.columns
        else np.full(trades.height, "long")
    )
    styles = {"long": ("triangle-up", "#2ca02c"), "short": ("triangle-down", "#d62728")}
    for side in np.unique(sides):
        m = sides == side
        symbol_, color = styles.get(str(side), ("circle", "#7f7f7f"))
        fig.add_trace(
            go.Scatter(
                x=epoch_ms(trades["entry_ts"].filter(pl.Series(m))),
                y=_f32(trades["entry_price"].to_numpy()[m]),
                mode="markers",
                name=f"entry {side}",
                customdata=_f32(pnl[m]),
                marker={
                    "symbol": symbol_,
                    "size": 9,
                    "color": color,
                    "line": {"width": 0.5, "color": "white"},
                },
                hovertemplate="entry %{x}<br>price %{y}<br>pnl %{customdata:.2f}<extra></extra>",
            )
        )
    kinds = (
        trades["close_type"].cast(pl.String).to_numpy()
        if "close_type" in trades.columns
        else np.full(trades.height, "exit")
    )
    for k, kind in enumerate(np.unique(kinds)):
        m = kinds == kind
        fig.add_trace(
            go.Scatter(
                x=epoch_ms(trades["exit_ts"].filter(pl.Series(m))),
                y=_f32(trades["exit_price"].to_numpy()[m]),
                mode="markers",
                name=f"exit {kind}",
                customdata=_f32(pnl[m]),
                marker={"symbol": "x", "size": 8, "color": PALETTE[(k + 4) % len(PALETTE)]},
                hovertemplate="exit %{x}<br>price %{y}<br>pnl %{customdata:.2f}<extra></extra>",
            )
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(title_text="close")
    shown = (
        f"{trades.height:,} of {n_trades:,} trades"
        if trades.height < n_trades
        else f"{n_trades:,} trades"
    )
    return _layout(fig, f"{symbol}: trades on price ({shown})", height=460)


def close_type_figure(close_types: Mapping[str, int]) -> go.Figure:
    items = sorted(close_types.items(), key=lambda kv: -kv[1])
    fig = go.Figure(
        go.Bar(
            x=[k for k, _ in items],
            y=[int(v) for _, v in items],
            marker={"color": [PALETTE[i % len(PALETTE)] for i in range(len(items))]},
            text=[int(v) for _, v in items],
            textposition="auto",
        )
    )
    fig.update_xaxes(type="category", title_text="close type")
    fig.update_yaxes(title_text="rows")
    return _layout(fig, "Close types", height=340)
