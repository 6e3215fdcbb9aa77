"""L8 sample weights: class-balanced, recency (exponential half-life), label uniqueness (AFML 4.4).

Why uniqueness: overlapping labels (a 300 s horizon on 250 ms bars overlaps
1200 neighbours) are not independent samples; weighting each by its average
uniqueness ``mean(1 / concurrency)`` over the bars it spans stops a model
from over-counting runs of near-identical labels.  Concurrency is built from
cumulative counts, O(n + m log n) for m labels on n bars.

All functions return a Float64 ``pl.Series`` named ``weight``; rows without a
label (null class / null ``t_end``) get a null weight so they cannot silently
enter training.  Weights are combined by multiplication (then
:func:`normalize_mean`), e.g. ``balanced * uniqueness``.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl

from hydraquant.labels._frame import TS_DTYPE, LabelError
from hydraquant.timeframes import interval_us


def _as_series(values: pl.Series | np.ndarray | list, name: str) -> pl.Series:
    return values if isinstance(values, pl.Series) else pl.Series(name, values)


def class_balanced_weights(labels: pl.Series | np.ndarray | list) -> pl.Series:
    """``n / (n_classes * count[class])`` (scikit-learn's "balanced"), over non-null labels only."""
    s = _as_series(labels, "label")
    present = s.drop_nulls()
    if present.len() == 0:
        return pl.Series("weight", [None] * s.len(), dtype=pl.Float64)
    counts = present.value_counts()
    k = counts.height
    n = present.len()
    table = {key: n / (k * c) for key, c in zip(counts[s.name], counts["count"], strict=True)}
    return s.replace_strict(table, default=None, return_dtype=pl.Float64).alias("weight")


def recency_weights(
    ts: pl.Series,
    half_life: str | timedelta | int,
    *,
    reference: pl.Series | None = None,
    normalize: bool = True,
) -> pl.Series:
    """``0.5 ** (age / half_life)`` so recent samples count more (NOVOSKY recency weighting).

    ``half_life`` is a duration ("7d", timedelta) measured on ``ts``, or an int
    number of ROWS.  Age is measured from ``reference`` (a one-element
    Datetime series; default: the latest ``ts``), which should be the END of
    the training window, never a test-period time.  ``normalize`` rescales to
    mean 1 so learning rates/regularisation keep their meaning.
    """
    if isinstance(half_life, int):
        if half_life <= 0:
            raise LabelError(f"half_life must be > 0 rows, got {half_life}")
        age = (ts.len() - 1 - np.arange(ts.len())) / half_life
    else:
        hl_us = (
            interval_us(half_life)
            if isinstance(half_life, str)
            else int(half_life / timedelta(microseconds=1))
        )
        if hl_us <= 0:
            raise LabelError(f"half_life must be positive, got {half_life!r}")
        t = ts.cast(TS_DTYPE).dt.epoch("us").to_numpy().astype(np.float64)
        ref = (
            float(t.max())
            if reference is None
            else float(reference.cast(TS_DTYPE).dt.epoch("us")[0])
        )
        age = (ref - t) / hl_us
    w = np.power(0.5, age)
    if normalize and w.size:
        w = w / w.mean()
    return pl.Series("weight", w, dtype=pl.Float64)


def label_uniqueness(
    ts: pl.Series,
    t_end: pl.Series,
    *,
    grid_ts: pl.Series | None = None,
) -> pl.Series:
    """Average uniqueness of each label over the bars it spans.

    A label decided at the close of bar ``ts`` spans the grid bars strictly
    after ``ts`` whose open is before ``t_end`` (i.e. up to the bar whose close
    is ``t_end``).  ``grid_ts`` is the full bar grid (default: ``ts`` itself);
    pass it when ``ts`` is a sampled subset (events), since concurrency is
    counted only among the labels given.
    """
    if ts.len() != t_end.len():
        raise LabelError(f"ts ({ts.len()}) and t_end ({t_end.len()}) differ in length")
    start_t = ts.cast(TS_DTYPE).dt.epoch("us").to_numpy()
    end_null = t_end.is_null().to_numpy()
    end_t = t_end.cast(TS_DTYPE).dt.epoch("us").fill_null(0).to_numpy()
    grid = start_t if grid_ts is None else grid_ts.cast(TS_DTYPE).dt.epoch("us").to_numpy()
    if grid.size > 1 and np.any(np.diff(grid) <= 0):
        raise LabelError("grid_ts must be strictly increasing")
    g = grid.shape[0]
    s = np.searchsorted(grid, start_t, side="right")
    e = np.searchsorted(grid, end_t, side="left") - 1
    valid = ~end_null & (e >= s)
    sv, ev = s[valid], e[valid]
    delta = (
        np.bincount(sv, minlength=g + 1)[: g + 1] - np.bincount(ev + 1, minlength=g + 1)[: g + 1]
    )
    conc = np.cumsum(delta)[:g]
    inv = np.where(conc > 0, 1.0 / np.maximum(conc, 1), 0.0)
    prefix = np.concatenate(([0.0], np.cumsum(inv)))
    out = np.full(start_t.shape[0], np.nan)
    out[valid] = (prefix[ev + 1] - prefix[sv]) / (ev - sv + 1)
    return pl.Series("weight", out, dtype=pl.Float64, nan_to_null=True)


def normalize_mean(weights: pl.Series) -> pl.Series:
    """Rescale non-null weights to mean 1 (keeps nulls)."""
    mean = weights.mean()
    if mean is None or mean <= 0:
        raise LabelError("cannot normalise weights: no positive non-null weight")
    return (weights / mean).alias("weight")
