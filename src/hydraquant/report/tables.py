"""Rich tables shared by commands and the quickstart: lake coverage, bar summaries."""

from __future__ import annotations

import polars as pl
from rich.table import Table


def coverage_table(cov: pl.DataFrame, *, title: str) -> Table:
    table = Table(title=title)
    for col in ("exchange", "market", "kind", "symbol", "first", "last", "rows", "days", "missing days", "gaps"):
        table.add_column(col, justify="right" if col in ("rows", "days", "missing days", "gaps") else "left")
    for r in cov.iter_rows(named=True):
        kind = r["kind"] + (f"/{r['interval']}" if r["interval"] else "")
        gaps = f"{r['gaps']} ({r['missing_bars']:,} bars)" if r["gaps"] else "0"
        table.add_row(
            r["exchange"], r["market"], kind, r["symbol"],
            f"{r['first']:%Y-%m-%d %H:%M:%S}", f"{r['last']:%Y-%m-%d %H:%M:%S}",
            f"{r['rows']:,}", str(r["days"]), str(r["missing_days"]), gaps,
        )
    return table


def bar_summary(bars: pl.DataFrame, interval: str) -> Table:
    stats = (
        bars.group_by("symbol", maintain_order=True)
        .agg(
            pl.len().alias("bars"),
            pl.col("close").first().alias("first_close"),
            pl.col("close").last().alias("last_close"),
            (pl.col("close").log().diff().std() * 100).alias("ret_std_pct"),
            pl.col("volume").sum().alias("volume"),
            (pl.col("signed_volume").sum() / pl.col("volume").sum()).alias("net_flow"),
            pl.col("trade_count").mean().alias("trades_per_bar"),
        )
        .sort("symbol")
    )
    table = Table(title=f"{interval} bars")
    for col in ("symbol", "bars", "first close", "last close", "ret std %", "volume", "net flow", "trades/bar"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for r in stats.iter_rows(named=True):
        table.add_row(
            r["symbol"], f"{r['bars']:,}", f"{r['first_close']:,.4f}", f"{r['last_close']:,.4f}",
            f"{r['ret_std_pct']:.4f}", f"{r['volume']:,.2f}", f"{r['net_flow']:+.4f}", f"{r['trades_per_bar']:.2f}",
        )
    return table
