"""Simulator stage: stream simulated symbol-days through validation into the lake."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hydraquant.data.ingest import IngestItem, ingest
from hydraquant.data.lake import Lake

SIM_EXCHANGE = "sim"
SIM_MARKET = "um"


@dataclass
class SimSummary:
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (symbol, kind) -> rows

    def add(self, symbol: str, kind: str, n: int) -> None:
        self.rows[(symbol, kind)] = self.rows.get((symbol, kind), 0) + n

    @property
    def symbols(self) -> list[str]:
        return sorted({s for s, _ in self.rows})

    def table(self) -> Table:
        kinds = sorted({k for _, k in self.rows})
        table = Table(title=f"simulated market ({SIM_EXCHANGE}/{SIM_MARKET})")
        table.add_column("symbol")
        for k in kinds:
            table.add_column(k, justify="right")
        for s in self.symbols:
            table.add_row(s, *(f"{self.rows.get((s, k), 0):,}" for k in kinds))
        return table


def simulate_into_lake(
    lake: Lake,
    *,
    symbols: int,
    days: int,
    seed: int,
    planted_edge: float = 0.0,
    start: date | None = None,
    activity: float = 1.0,
    edge_horizon_s: float | None = None,
    progress: bool = False,
) -> SimSummary:
    """Generate and ingest the simulated market; every chunk is validated like real data."""
    from hydraquant.data.simulator import SimConfig, iter_simulation

    params = dict(symbols=symbols, days=days, seed=seed, planted_edge=planted_edge, activity=activity)
    if start is not None:
        params["start"] = start
    if edge_horizon_s is not None:
        params["edge_horizon_s"] = edge_horizon_s
    cfg = SimConfig(**params)
    summary = SimSummary()
    with Progress(
        TextColumn("[bold]simulate[/] {task.fields[what]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=not progress, transient=True,
    ) as bar:
        task = bar.add_task("simulate", total=symbols * days, what="")
        for chunk in iter_simulation(cfg):
            ingest(
                lake,
                IngestItem(
                    frame=chunk.frame,
                    exchange=SIM_EXCHANGE,
                    market=SIM_MARKET,
                    kind=chunk.kind,
                    symbol=chunk.symbol,
                    source=f"simulator seed={seed} {chunk.symbol} {chunk.day} {chunk.kind}",
                ),
            )
            summary.add(chunk.symbol, chunk.kind, chunk.frame.height)
            if chunk.kind == "aggTrades":
                bar.update(task, advance=1, what=f"{chunk.symbol} {chunk.day}")
    return summary
