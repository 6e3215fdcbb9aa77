"""Dataset stage: features + labels + sample weights -> one training table.

Keyed by (ts, symbol), carrying ``t_end`` so the purged splitters can drop
every training row whose label window overlaps a test fold.  Rows whose label
is not yet known (the tail) are dropped; feature warm-up NaNs are kept as NaN
(models see them as missing) — nothing is back-filled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from hydraquant import labels as L
from hydraquant.data.lake import Lake
from hydraquant.errors import HydraError
from hydraquant.pipeline.features_stage import META_FEATURES, stored_feature_list

WEIGHTS = ("balanced", "recency", "uniqueness")


@dataclass(frozen=True)
class DatasetResult:
    frame: pl.DataFrame
    features: list[str]
    target: str
    features_kind: str = "features"


def _weights(part: pl.DataFrame, grid: pl.Series, kinds: list[str], half_life: str) -> pl.Series:
    """Per-symbol weights: label uniqueness (overlapping windows, on the full bar grid) and recency."""
    w = pl.Series("weight", [1.0] * part.height)
    if "uniqueness" in kinds:
        w = w * L.label_uniqueness(part["ts"], part["t_end"], grid_ts=grid)
    if "recency" in kinds:
        w = w * L.recency_weights(part["ts"], half_life, normalize=False)
    return w.alias("weight")


def build_dataset(
    lake: Lake,
    symbols: list[str],
    interval: str,
    *,
    label: str,
    target: str = "label",
    features_kind: str = "features",
    weights: list[str] = (),
    half_life: str = "30d",
    exchange: str | None = None,
    market: str | None = None,
) -> DatasetResult:
    feats = lake.scan(features_kind, symbols, exchange=exchange, market=market, interval=interval).collect()
    names = stored_feature_list(lake, features_kind, interval, symbols[0], exchange=exchange, market=market)
    labs = lake.scan(f"labels.{label}", symbols, exchange=exchange, market=market, interval=interval).collect()
    return assemble_dataset(feats, labs, names, target=target, weights=weights, half_life=half_life,
                            features_kind=features_kind, source=f"labels.{label}")


def assemble_dataset(
    feats: pl.DataFrame,
    labs: pl.DataFrame,
    names: list[str],
    *,
    target: str = "label",
    weights: list[str] | tuple[str, ...] = (),
    half_life: str = "30d",
    keep: list[str] | tuple[str, ...] = (),
    features_kind: str = "features",
    source: str = "labels",
) -> DatasetResult:
    """Join labels (``ts, symbol, <target>, t_end`` + ``keep`` side columns) onto features, add weights.

    Rows whose label is unknown are dropped; ``keep`` carries label side
    columns (e.g. ``target_key``) for row selection — they are never features.
    """
    unknown = set(weights) - set(WEIGHTS)
    if unknown:
        raise HydraError(f"unknown weight kind(s) {sorted(unknown)}", hint=f"use {', '.join(WEIGHTS)}")
    if target not in labs.columns:
        cols = [c for c in labs.columns if c not in ("ts", "symbol", "t_end")]
        raise HydraError(f"label table {source} has no column {target!r}", hint=f"choose the target from {cols}")
    extra = [c for c in keep if c != target]
    labs = labs.select("ts", "symbol", pl.col(target), "t_end", *extra).filter(pl.col(target).is_not_null())
    joined = labs.join(feats.select("ts", "symbol", *names), on=["ts", "symbol"], how="inner")
    parts = []
    for (symbol,), part in joined.sort(["symbol", "ts"]).group_by(["symbol"], maintain_order=True):
        if weights:
            grid = feats.filter(pl.col("symbol") == symbol).get_column("ts").sort()
            part = part.with_columns(_weights(part, grid, list(weights), half_life))
        parts.append(part)
    frame = pl.concat(parts) if parts else joined
    if weights:
        if "balanced" in weights:  # across all symbols: the model sees one pooled class mix
            frame = frame.with_columns(pl.col("weight") * L.class_balanced_weights(frame[target]))
        frame = frame.with_columns(L.normalize_mean(frame["weight"]))
    ordered = ["ts", "symbol", *names, target, "t_end"] + (["weight"] if weights else []) + extra
    return DatasetResult(frame.select(ordered), names, target, features_kind)


def store_dataset(
    lake: Lake,
    result: DatasetResult,
    name: str,
    interval: str,
    *,
    exchange: str | None = None,
    market: str | None = None,
) -> str:
    """Write the training table as ``dataset.<name>`` next to its feature tables; returns the kind."""
    kind = f"dataset.{name}"
    meta = {META_FEATURES: json.dumps(result.features), "hydraquant.target": result.target}
    symbols = result.frame.get_column("symbol").unique().to_list()
    sources = {t.symbol: t for t in lake.tables(result.features_kind, exchange=exchange, market=market,
                                                interval=interval, symbols=symbols)}
    for (symbol,), part in result.frame.group_by(["symbol"], maintain_order=True):
        src = sources[str(symbol)]
        lake.write(part, exchange=src.exchange, market=src.market, kind=kind, symbol=str(symbol),
                   interval=interval, metadata=meta)
    return kind
