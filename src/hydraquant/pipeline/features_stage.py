"""Features stage: lake bars (+ side inputs) -> causal features -> lake ``features`` table.

The ordered feature list is written into every Parquet footer (key
``hydraquant.features``) so a model trained on the table can insist on
exactly these columns in exactly this order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from hydraquant.data.lake import Lake, parse_time_bound
from hydraquant.errors import LakeError
from hydraquant.features.inputs import prepare_bars
from hydraquant.features.registry import available_inputs, build_features, registry, resolve
from hydraquant.pipeline.inputs import load_inputs
from hydraquant.timeframes import interval_us

META_FEATURES = "hydraquant.features"
META_SET = "hydraquant.feature_set"


@dataclass(frozen=True)
class FeatureTableResult:
    features: list[str]
    rows: dict[str, int]
    kind: str
    interval: str


def warmup_span(names: list[str], interval: str) -> timedelta:
    reg = registry()
    bars = max((reg[n].warmup_bars(interval) for n in names), default=0)
    return timedelta(microseconds=bars * interval_us(interval))


def build_feature_table(
    lake: Lake,
    sets: list[str],
    symbols: list[str],
    interval: str,
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    source: str = "auto",
    exchange: str | None = None,
    market: str | None = None,
    name: str | None = None,
) -> FeatureTableResult:
    """Compute the named sets/groups/features and store them (one table per symbol)."""
    # Warm-up is sized from the requested names before any data is read ("all"
    # may include features whose inputs turn out to be absent: a little more
    # history than needed, never less), so the lake is read once.
    lookback = warmup_span(resolve(sets), interval) if start is not None else timedelta(0)
    inputs = load_inputs(lake, symbols, interval, start=start, end=end, lookback=lookback, source=source,
                         exchange=exchange, market=market)
    names = resolve(sets, have=available_inputs(prepare_bars(inputs.bars), inputs.side))
    table = build_features(inputs.bars, names, interval=interval, side=inputs.side)
    t0 = parse_time_bound(start)
    if t0 is not None:
        table = table.filter(pl.col("ts") >= t0)
    kind = f"features.{name}" if name else "features"
    meta = {META_FEATURES: json.dumps(names), META_SET: json.dumps(sets)}
    rows: dict[str, int] = {}
    for (symbol,), part in table.group_by(["symbol"], maintain_order=True):
        lake.write(part, exchange=inputs.source.exchange, market=inputs.source.market, kind=kind,
                   symbol=str(symbol), interval=interval, metadata=meta)
        rows[str(symbol)] = part.height
    return FeatureTableResult(names, rows, kind, interval)


def stored_feature_list(lake: Lake, kind: str, interval: str, symbol: str, **filters) -> list[str]:
    tables = lake.tables(kind, interval=interval, symbols=[symbol], **filters)
    if not tables:
        raise LakeError(f"no {kind}/{interval} table for {symbol}", hint="build it with `hydraquant features`")
    return json.loads(lake.metadata(tables[0])[META_FEATURES])
