"""The offline quickstart: simulate -> ingest -> bars -> summary (what `make quickstart` runs).

Later stages (features, labels, training, backtest) extend it as they land.
"""

from __future__ import annotations

import time

from rich.console import Console

from hydraquant.config import QuickstartConfig
from hydraquant.data.coverage import coverage
from hydraquant.data.lake import Lake
from hydraquant.pipeline.bars_stage import build_bars
from hydraquant.pipeline.simulate_stage import SIM_EXCHANGE, SIM_MARKET, simulate_into_lake
from hydraquant.report.tables import bar_summary, coverage_table


def run_quickstart(lake: Lake, cfg: QuickstartConfig, *, console: Console) -> None:
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
