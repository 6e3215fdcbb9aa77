"""`hydraquant bars`: time bars from trades, or higher-timeframe klines from lower ones."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from hydraquant.cli.context import app_context, split_symbols


def bars_cmd(
    ctx: typer.Context,
    symbols: Annotated[list[str], typer.Option(help="Symbols (comma or repeat).")],
    interval: Annotated[str, typer.Option(help="Bar interval: 250ms, 1s, 1m, 15m, 4h, 1d ...")],
    source: Annotated[str, typer.Option(help="trades (aggTrades, else trades) or klines (resample).")] = "trades",
    from_interval: Annotated[Optional[str], typer.Option(help="Source kline interval when --source klines.")] = "1m",
    empty: Annotated[Optional[str], typer.Option(help="Empty intervals: drop (default) or ffill.")] = None,
    start: Annotated[Optional[str], typer.Option(help="From (inclusive), ISO date/time.")] = None,
    end: Annotated[Optional[str], typer.Option(help="To; a bare date includes that whole day.")] = None,
    exchange: Annotated[Optional[str], typer.Option(help="Exchange (when ambiguous).")] = None,
    market: Annotated[Optional[str], typer.Option(help="Market (when ambiguous).")] = None,
) -> None:
    """Build bars into the lake (kind bars/<interval>, or klines/<interval> when resampling)."""
    from hydraquant.pipeline.bars_stage import build_bars

    app = app_context(ctx)
    results = build_bars(
        app.lake,
        split_symbols(symbols),
        interval,
        source=source,
        from_interval=from_interval,
        empty=empty or app.config.bars.empty,
        start=start,
        end=end,
        exchange=exchange,
        market=market,
        progress=True,
    )
    table = Table(title=f"bars {interval} from {source}")
    for col in ("table", "bars", "new rows", "first", "last"):
        table.add_column(col)
    for r in results:
        table.add_row(r.table, f"{r.bars:,}", f"{r.rows_added:,}", str(r.first), str(r.last))
    app.console.print(table)


def register(app: typer.Typer) -> None:
    app.command("bars")(bars_cmd)
