"""L9 event sampling: Hydra V3 decision points (seed 000) and the symmetric CUSUM filter.

Both decide AT bar ``t`` from data up to its close, so an event mask is a
causal row filter (``t_end = ts + interval``: known when the bar closes).
Labels are then computed for every bar and filtered by the mask, which keeps
the labelers independent of the sampling.

Seed 000's thresholds are rolling quantiles over the previous 2000 bars
(including the current one) — causal as written; we keep them rolling and
never substitute full-sample quantiles.  A NaN/null threshold or input (warm-up)
makes that condition false, exactly as pandas comparisons with NaN do.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hydraquant.labels import labels_nb as nbk
from hydraquant.labels._frame import (
    LabelError,
    check_bars,
    column_f64,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)


def _known_at_close(frame: pl.DataFrame, step: int) -> pl.Series:
    return t_end_series(ts_us(frame), np.arange(frame.height), step)


def decision_points(
    frame: pl.DataFrame,
    *,
    moi_col: str = "MOI_1s",
    lvn_col: str = "dist_lvn_atr",
    absorption_col: str = "absorption_z",
    vol_ratio_col: str = "vol_ratio",
    window: int = 2000,
    flow_quantile: float = 0.8,
    lvn_quantile: float = 0.2,
    absorption_quantile: float = 0.8,
    vol_ratio_threshold: float = 1.5,
    interval: str | None = None,
) -> pl.DataFrame:
    """Seed 000 decision mask: at least one of four conditions, each against a ROLLING quantile.

    near_lvn: ``dist_lvn_atr < q20`` (price near a low-volume node);
    absorption: ``|absorption_z| > q80(|absorption_z|)``;
    strong_flow: ``|MOI_1s| > q80(|MOI_1s|)``;
    vol_expansion: ``vol_ratio > 1.5``.
    Quantiles use linear interpolation over the trailing ``window`` bars and
    need a full window (pandas ``rolling(window)`` semantics).  Seed 000 drops
    feature warm-up rows before rolling; pass such a frame to match it exactly.

    Returns ``ts, is_event, near_lvn, absorption, strong_flow, vol_expansion, t_end``.
    """
    if window < 2:
        raise LabelError(f"window must be >= 2 bars, got {window}")
    frame = check_bars(
        frame, [moi_col, lvn_col, absorption_col, vol_ratio_col], where="decision_points"
    )
    step = resolve_interval_us(frame, interval)

    def rq(expr: pl.Expr, q: float) -> pl.Expr:
        return expr.rolling_quantile(
            q, window_size=window, min_samples=window, interpolation="linear"
        )

    moi = pl.col(moi_col).cast(pl.Float64).fill_nan(None).abs()
    lvn = pl.col(lvn_col).cast(pl.Float64).fill_nan(None)
    absz = pl.col(absorption_col).cast(pl.Float64).fill_nan(None).abs()
    vr = pl.col(vol_ratio_col).cast(pl.Float64).fill_nan(None)
    out = frame.select(
        "ts",
        (lvn < rq(lvn, lvn_quantile)).fill_null(False).alias("near_lvn"),
        (absz > rq(absz, absorption_quantile)).fill_null(False).alias("absorption"),
        (moi > rq(moi, flow_quantile)).fill_null(False).alias("strong_flow"),
        (vr > vol_ratio_threshold).fill_null(False).alias("vol_expansion"),
    )
    out = out.with_columns(
        (
            pl.col("near_lvn")
            | pl.col("absorption")
            | pl.col("strong_flow")
            | pl.col("vol_expansion")
        ).alias("is_event")
    ).select("ts", "is_event", "near_lvn", "absorption", "strong_flow", "vol_expansion")
    return out.with_columns(_known_at_close(frame, step))


def cusum_filter(
    frame: pl.DataFrame,
    threshold: float | str,
    *,
    price_col: str = "close",
    interval: str | None = None,
) -> pl.DataFrame:
    """Symmetric CUSUM filter on log returns: an event when the cumulative up/down run exceeds ``threshold``.

    ``threshold`` is a log-return size (0.01 ~ 1 %) or the name of a column
    holding a per-bar threshold (e.g. 2 x a trailing volatility — it must be
    causal).  After an event the triggering run resets, so events are spaced
    by at least one threshold-sized move: the sampling López de Prado
    recommends instead of every bar.  O(n).

    Returns ``ts, is_event (Boolean), direction (Int8: +1 up run, -1 down run, null), t_end``.
    """
    cols = [price_col] + ([threshold] if isinstance(threshold, str) else [])
    frame = check_bars(frame, cols, where="cusum_filter")
    step = resolve_interval_us(frame, interval)
    (price,) = positive_prices(frame, [price_col], where="cusum_filter")
    diff = np.empty_like(price)
    diff[0] = np.nan
    diff[1:] = np.diff(np.log(price))
    if isinstance(threshold, str):
        h = column_f64(frame, threshold)
    else:
        if not threshold > 0:
            raise LabelError(f"threshold must be > 0, got {threshold!r}")
        h = np.full(price.shape[0], float(threshold))
    direction = nbk.cusum_events(diff, h)
    d = pl.Series("direction", direction, dtype=pl.Int8)
    return pl.DataFrame(
        [
            frame["ts"],
            (d != 0).alias("is_event"),
            d.set(d == 0, None),
            _known_at_close(frame, step),
        ]
    )
