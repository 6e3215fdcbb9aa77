"""Data commands: fetch (Binance archive), import (any file), data status, export."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from hydraquant.cli.context import app_context, split_symbols
from hydraquant.errors import HydraError

fetch_app = typer.Typer(help="Download public market data into the lake.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect the lake.", no_args_is_help=True)

MARKETS = ("spot", "um", "cm")
ARCHIVE_KINDS = (
    "aggTrades", "trades", "klines", "fundingRate", "metrics", "bookTicker",
    "bookDepth", "markPriceKlines", "premiumIndexKlines",
)


def _parse_date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HydraError(f"invalid {name} {value!r}", hint="use YYYY-MM-DD (or YYYY-MM with --monthly)") from None


def _parse_bound(value: str, name: str, monthly: bool, end: bool) -> date:
    if monthly and len(value) == 7:
        y, m = (int(x) for x in value.split("-"))
        if not end:
            return date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)
    return _parse_date(value, name)


@fetch_app.command("binance")
def fetch_binance_cmd(
    ctx: typer.Context,
    market: Annotated[str, typer.Option(help="spot, um (USD-M futures) or cm (COIN-M futures).")],
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(ARCHIVE_KINDS)}.")],
    symbols: Annotated[list[str], typer.Option(help="Symbols, e.g. BTCUSDT ETHUSDT (comma or repeat).")],
    start: Annotated[str, typer.Option(help="First day YYYY-MM-DD (or month YYYY-MM with --monthly).")],
    end: Annotated[str, typer.Option(help="Last day, inclusive.")],
    interval: Annotated[Optional[str], typer.Option(help="Kline interval (klines, markPriceKlines, premiumIndexKlines).")] = None,
    monthly: Annotated[bool, typer.Option("--monthly", help="Use the monthly files instead of daily ones.")] = False,
    base_url: Annotated[Optional[str], typer.Option(help="Archive base URL (default: config binance.base_url).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Parallel downloads (default: config binance.workers).")] = None,
) -> None:
    """Download Binance public-archive files, verify their checksums and ingest them.

    Re-running downloads nothing new; missing days are listed, not fatal.
    """
    from hydraquant.data.binance_archive import fetch_binance
    from hydraquant.data.ingest import ingest_archive

    app = app_context(ctx)
    if market not in MARKETS:
        raise HydraError(f"unknown market {market!r}", hint=f"use one of {', '.join(MARKETS)}")
    syms = split_symbols(symbols)
    lake = app.lake
    written: dict[str, int] = {}

    def file_sink(meta) -> int:
        # streamed: inflate, parse, validate and write chunk by chunk (bounded memory)
        result = ingest_archive(lake, meta.path, kind=meta.archive_kind, market=meta.market, symbol=meta.symbol,
                                interval=meta.interval)
        written[meta.symbol] = written.get(meta.symbol, 0) + result.rows_added
        return result.rows_in

    report = fetch_binance(
        market=market,
        kind=kind,
        symbols=syms,
        start=_parse_bound(start, "--start", monthly, end=False),
        end=_parse_bound(end, "--end", monthly, end=True),
        interval=interval,
        monthly=monthly,
        base_url=base_url or app.config.binance.base_url,
        cache_dir=app.download_dir,
        workers=workers or app.config.binance.workers,
        retries=app.config.binance.retries,
        timeout_s=app.config.binance.timeout_s,
        file_sink=file_sink,
        progress=True,
    )
    table = Table(title=f"binance {market} {kind}{' ' + interval if interval else ''}")
    for col in ("downloaded", "already present", "missing", "failed"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(report.downloaded)), str(len(report.skipped)), str(len(report.missing)), str(len(report.failed))
    )
    app.console.print(table)
    for sym, rows in written.items():
        app.console.print(f"  {sym}: {rows:,} new rows in the lake")
    if report.missing:
        app.console.print(f"[yellow]missing on the server ({len(report.missing)}):[/]")
        for item in report.missing:
            app.console.print(f"  {item}")


def import_cmd(
    ctx: typer.Context,
    file: Annotated[Optional[Path], typer.Argument(help="CSV/CSV.GZ/ZIP/Parquet/Feather/JSON file to import.")] = None,
    kind: Annotated[str, typer.Option(
        help="auto (the file's own kind), klines, trades, aggTrades, funding, open_interest, bookTicker, "
        "liquidations, markPriceKlines.")] = "auto",
    symbol: Annotated[Optional[str], typer.Option(help="Symbol to store under (inferred for some families).")] = None,
    map_: Annotated[Optional[list[str]], typer.Option("--map", help="Rename a source column: --map SOURCE=NAME.")] = None,
    tz: Annotated[Optional[str], typer.Option(help="Timezone of naive timestamps (default UTC; LEAN: US/Eastern).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Force a family id (see --list-formats); default: detect.")] = "auto",
    exchange: Annotated[Optional[str], typer.Option(help="Exchange name in the lake (default: detected).")] = None,
    market: Annotated[Optional[str], typer.Option(help="Market name in the lake (default: detected).")] = None,
    interval: Annotated[Optional[str], typer.Option(help="Kline interval (default: inferred from the data).")] = None,
    repair: Annotated[Optional[list[str]], typer.Option(help="Opt-in repairs: sort, dedupe.")] = None,
    list_formats: Annotated[bool, typer.Option("--list-formats", help="List every supported file family and exit.")] = False,
) -> None:
    """Import a file from any supported source family into the lake (see docs/data-families.md)."""
    from hydraquant.data.importers import families_table, import_file
    from hydraquant.data.ingest import ingest_many

    app = app_context(ctx)
    if list_formats:
        fams = families_table()
        table = Table(title="file families (docs/data-families.md)")
        for col in fams.columns:
            table.add_column(col, overflow="fold")
        for row in fams.iter_rows():
            table.add_row(*("" if v is None else str(v) for v in row))
        app.console.print(table)
        return
    if file is None:
        raise HydraError("no file given", hint="hydraquant import FILE --kind ... (or --list-formats)")
    if not file.exists():
        raise HydraError(f"file {file} not found")
    mapping = {}
    for m in map_ or []:
        if "=" not in m:
            raise HydraError(f"invalid --map {m!r}", hint="use --map SOURCE_COLUMN=OUR_NAME, e.g. --map Date=ts")
        src, dst = m.split("=", 1)
        mapping[src.strip()] = dst.strip()
    tables = import_file(
        file, kind=kind, symbol=symbol.upper() if symbol else None, mapping=mapping or None, tz=tz, fmt=fmt
    )
    items = [t.ingest_item(exchange=exchange, market=market, interval=interval, source=str(file)) for t in tables]
    result = ingest_many(app.lake, items, repairs=repair or [])
    table = Table(title=f"imported {file.name} ({tables[0].family if tables else '?'})")
    for col in ("table", "rows", "new rows", "first", "last", "gaps"):
        table.add_column(col)
    for w, r in zip(result.writes, result.reports):
        table.add_row(w.table.label(), f"{w.rows_in:,}", f"{w.rows_added:,}", str(r.first), str(r.last),
                      f"{len(r.gaps)} ({r.missing_bars} bars)" if r.gaps else "0")
    app.console.print(table)


@data_app.command("status")
def status_cmd(
    ctx: typer.Context,
    kind: Annotated[Optional[str], typer.Option(help="Only this kind.")] = None,
    exchange: Annotated[Optional[str], typer.Option(help="Only this exchange.")] = None,
    symbols: Annotated[Optional[list[str]], typer.Option(help="Only these symbols.")] = None,
) -> None:
    """Coverage per exchange/market/kind/symbol: first, last, rows, missing days, gaps."""
    from hydraquant.data.coverage import coverage
    from hydraquant.report.tables import coverage_table

    app = app_context(ctx)
    cov = coverage(app.lake, kind=kind, exchange=exchange, symbols=split_symbols(symbols) or None)
    if cov.is_empty():
        app.console.print(f"the lake at {app.lake.root} is empty — try `hydraquant quickstart` or `hydraquant fetch`")
        return
    app.console.print(coverage_table(cov, title=f"lake {app.lake.root}"))


def export_cmd(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="Lake kind: aggTrades, trades, klines, bars, funding, open_interest, features, ...")],
    out: Annotated[Path, typer.Option(help="Output file: .csv or .parquet.")],
    symbols: Annotated[Optional[list[str]], typer.Option(help="Symbols (default: all).")] = None,
    interval: Annotated[Optional[str], typer.Option(help="Interval for klines/bars/features.")] = None,
    start: Annotated[Optional[str], typer.Option(help="From (inclusive), ISO date/time.")] = None,
    end: Annotated[Optional[str], typer.Option(help="To; a bare date includes that whole day.")] = None,
    exchange: Annotated[Optional[str], typer.Option(help="Exchange (needed when ambiguous).")] = None,
    market: Annotated[Optional[str], typer.Option(help="Market (needed when ambiguous).")] = None,
) -> None:
    """Write any lake table back out as CSV or Parquet (atomically)."""
    from hydraquant.data.files import check_table_file, write_table_file

    app = app_context(ctx)
    check_table_file(out)
    frame = app.lake.scan(
        kind, split_symbols(symbols) or None, start, end, exchange=exchange, market=market, interval=interval
    ).collect()
    write_table_file(frame, out)
    app.console.print(f"wrote {frame.height:,} rows x {frame.width} columns to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(fetch_app, name="fetch")
    app.add_typer(data_app, name="data")
    app.command("import")(import_cmd)
    app.command("export")(export_cmd)
