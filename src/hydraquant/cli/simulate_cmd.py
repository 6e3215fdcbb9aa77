"""`hydraquant simulate`: synthetic but realistic markets into the lake (exchange `sim`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Optional

import typer

from hydraquant.cli.context import app_context


def simulate_cmd(
    ctx: typer.Context,
    symbols: Annotated[int, typer.Option(help="Number of symbols (BTCUSDT-like first).")] = 3,
    days: Annotated[int, typer.Option(help="Number of UTC days.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same market).")] = 0,
    planted_edge: Annotated[float, typer.Option(help="Strength of the planted predictable component (0 = none).")] = 0.0,
    start: Annotated[Optional[str], typer.Option(help="First day YYYY-MM-DD.")] = None,
    activity: Annotated[float, typer.Option(help="Scale of trade rates (1.0 = BTC-like 1-3 M trades/day).")] = 1.0,
) -> None:
    """Simulate aggTrades, funding (8 h) and open interest (5 min); see docs/simulator.md."""
    from hydraquant.pipeline.simulate_stage import simulate_into_lake

    app = app_context(ctx)
    summary = simulate_into_lake(
        app.lake,
        symbols=symbols,
        days=days,
        seed=seed,
        planted_edge=planted_edge,
        start=date.fromisoformat(start) if start else None,
        activity=activity,
        progress=True,
    )
    app.console.print(summary.table())


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
