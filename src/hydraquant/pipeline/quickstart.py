"""The offline quickstart: simulate -> ingest -> bars -> summary (what `make quickstart` runs).

Later stages (features, labels, training, backtest) extend it as they land.
"""

from __future__ import annotations

import time

import polars as pl
from rich.console import Console
from rich.table import Table

from hydraquant.config import QuickstartConfig
from hydraquant.data.coverage import coverage
from hydraquant.data.lake import Lake
from hydraquant.pipeline.bars_stage import build_bars
from hydraquant.pipeline.simulate_stage import SIM_EXCHANGE, SIM_MARKET, simulate_into_lake


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


def run_quickstart(lake: Lake, cfg: QuickstartConfig, *, console: Console) -> None:
    from hydraquant.cli.data_cmd import coverage_table

    t0 = time.perf_counter()
    console.rule("[bold]hydraquant quickstart (offline)")
    console.print(
        f"1/3 simulating {cfg.symbols} symbol(s) x {cfg.days} day(s) (seed {cfg.seed}, activity {cfg.activity}) "
        f"into {lake.root}"
    )
    summary = simulate_into_lake(
        lake, symbols=cfg.symbols, days=cfg.days, seed=cfg.seed, planted_edge=cfg.planted_edge,
        activity=cfg.activity, progress=True,
    )
    symbols = summary.symbols
    for i, interval in enumerate(cfg.intervals, start=2):
        console.print(f"{i}/{len(cfg.intervals) + 1} building {interval} bars from trades")
        build_bars(lake, symbols, interval, exchange=SIM_EXCHANGE, market=SIM_MARKET, progress=True)
    console.print(coverage_table(coverage(lake, exchange=SIM_EXCHANGE), title=f"lake coverage ({lake.root})"))
    for interval in cfg.intervals:
        bars = lake.scan("bars", symbols, exchange=SIM_EXCHANGE, market=SIM_MARKET, interval=interval).collect()
        console.print(bar_summary(bars, interval))
    console.print(f"[green]done in {time.perf_counter() - t0:.1f} s[/] — explore with "
                  f"`hydraquant --lake {lake.root} data status` or `hydraquant --lake {lake.root} export bars ...`")
