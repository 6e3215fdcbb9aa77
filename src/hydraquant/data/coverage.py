"""Coverage of the lake per table: first, last, rows, days, missing days, gaps.

Computed from the Parquet files themselves (row counts from metadata, times
from the ``ts`` column only), so it is always true to what is on disk.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pyarrow.parquet as pq

from hydraquant.data.lake import Lake, TableId
from hydraquant.data.schema import INTERVAL_KINDS
from hydraquant.timeframes import interval_us

COVERAGE_SCHEMA = {
    "exchange": pl.Utf8,
    "market": pl.Utf8,
    "kind": pl.Utf8,
    "interval": pl.Utf8,
    "symbol": pl.Utf8,
    "first": pl.Datetime("us", "UTC"),
    "last": pl.Datetime("us", "UTC"),
    "rows": pl.Int64,
    "days": pl.Int64,
    "missing_days": pl.Int64,
    "gaps": pl.Int64,
    "missing_bars": pl.Int64,
}


def table_coverage(lake: Lake, table: TableId) -> dict:
    files = lake.files(table)
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    ts = pl.scan_parquet(files).select("ts").collect().get_column("ts").sort()
    first, last = ts.min(), ts.max()
    days = ts.dt.date().unique()
    span_days = (last.date() - first.date()).days + 1 if rows else 0
    gaps = missing_bars = 0
    if table.interval and table.kind in INTERVAL_KINDS and rows > 1:
        step = interval_us(table.interval)
        diffs = ts.dt.epoch("us").diff().drop_nulls()
        big = diffs.filter(diffs > step)
        gaps = big.len()
        missing_bars = int(((big // step) - 1).sum()) if gaps else 0
    return {
        "exchange": table.exchange,
        "market": table.market,
        "kind": table.kind,
        "interval": table.interval,
        "symbol": table.symbol,
        "first": first,
        "last": last,
        "rows": rows,
        "days": days.len(),
        "missing_days": span_days - days.len(),
        "gaps": gaps,
        "missing_bars": missing_bars,
    }


def coverage(lake: Lake, **filters) -> pl.DataFrame:
    """One row per lake table (optionally filtered by kind/exchange/market/interval/symbols)."""
    rows = [table_coverage(lake, t) for t in lake.tables(**filters)]
    return pl.DataFrame(rows, schema=COVERAGE_SCHEMA)


def missing_days(lake: Lake, table: TableId) -> list:
    """Calendar days between first and last with no rows (e.g. missing archive days)."""
    ts = pl.scan_parquet(lake.files(table)).select(pl.col("ts").dt.date().unique()).collect().to_series().sort()
    if ts.is_empty():
        return []
    have = set(ts.to_list())
    day, out = ts[0], []
    while day <= ts[-1]:
        if day not in have:
            out.append(day)
        day += timedelta(days=1)
    return out
