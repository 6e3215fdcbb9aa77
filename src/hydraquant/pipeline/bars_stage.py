"""Bars stage: lake trades/klines -> bars -> lake, per symbol and day.

Trades are processed one partition (UTC day) at a time so a month of
BTC-sized tick data never has to fit in memory; bars of every interval that
divides a day never straddle a partition, so chunking changes nothing.
``ffill`` needs to see across day boundaries, so it processes a symbol's whole
range at once (memory grows with the range; it is opt-in).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hydraquant.bars import resample_bars, trades_to_bars
from hydraquant.data.lake import Lake, TableId, parse_time_bound
from hydraquant.errors import HydraError
from hydraquant.timeframes import interval_us

_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class BarsResult:
    table: str
    bars: int
    rows_added: int
    first: datetime | None
    last: datetime | None


def _trade_table(lake: Lake, symbol: str, exchange: str | None, market: str | None) -> TableId:
    for kind in ("aggTrades", "trades"):
        found = lake.tables(kind, exchange=exchange, market=market, symbols=[symbol])
        if len(found) > 1:
            options = ", ".join(f"{t.exchange}/{t.market}" for t in found)
            raise HydraError(f"{kind} for {symbol} exists in several places: {options}",
                             hint="pass --exchange/--market to choose one")
        if found:
            return found[0]
    raise HydraError(f"no trades for {symbol} in the lake at {lake.root}",
                     hint="fetch aggTrades/trades, import a trades file, or run `hydraquant simulate`")


def build_bars(
    lake: Lake,
    symbols: Iterable[str],
    interval: str,
    *,
    source: str = "trades",
    from_interval: str | None = "1m",
    empty: str = "drop",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    exchange: str | None = None,
    market: str | None = None,
    progress: bool = False,
) -> list[BarsResult]:
    """Build bars for each symbol into the lake and return what was written."""
    symbols = list(symbols)
    if not symbols:
        raise HydraError("no symbols given", hint="pass --symbols BTCUSDT,ETHUSDT")
    step = interval_us(interval)
    if source == "klines":
        return [_resample_klines(lake, s, interval, from_interval, start, end, exchange, market) for s in symbols]
    if source != "trades":
        raise HydraError(f"unknown bar source {source!r}", hint="use --source trades or --source klines")
    if empty == "drop" and _DAY_US % step != 0:
        raise HydraError(f"interval {interval} does not divide a day",
                         hint="use an interval like 250ms, 1s, 5s, 1m, 5m, 15m, 1h, 4h or 1d")
    t0, t1 = parse_time_bound(start), parse_time_bound(end, end=True)
    plans = [(s, _trade_table(lake, s, exchange, market)) for s in symbols]
    chunks = [(s, t, [f]) for s, t in plans for f in lake.files(t, t0, t1)] if empty == "drop" else [
        (s, t, lake.files(t, t0, t1)) for s, t in plans
    ]
    written: dict[tuple[str, TableId], list] = {}
    with Progress(
        TextColumn("[bold]bars {task.fields[what]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        disable=not progress, transient=True,
    ) as bar:
        task = bar.add_task("bars", total=len(chunks), what=interval)
        for symbol, table, files in chunks:
            trades = pl.scan_parquet(files).select("ts", "price", "qty", "quote_qty", "is_buyer_maker")
            if t0 is not None:
                trades = trades.filter(pl.col("ts") >= t0)
            if t1 is not None:
                trades = trades.filter(pl.col("ts") < t1)
            bars = trades_to_bars(trades, interval, empty=empty)  # type: ignore[arg-type]
            result = lake.write(bars, exchange=table.exchange, market=table.market, kind="bars",
                                symbol=symbol, interval=interval)
            acc = written.setdefault((symbol, result.table), [0, 0, None, None])
            acc[0] += bars.height
            acc[1] += result.rows_added
            if bars.height:
                acc[2] = bars["ts"][0] if acc[2] is None else min(acc[2], bars["ts"][0])
                acc[3] = bars["ts"][-1] if acc[3] is None else max(acc[3], bars["ts"][-1])
            bar.advance(task)
    return [BarsResult(t.label(), n, added, first, last) for (s, t), (n, added, first, last) in written.items()]


def _resample_klines(
    lake: Lake, symbol: str, interval: str, from_interval: str | None, start, end, exchange, market
) -> BarsResult:
    if not from_interval:
        raise HydraError("--from-interval is required with --source klines")
    if interval_us(interval) <= interval_us(from_interval) or interval_us(interval) % interval_us(from_interval):
        raise HydraError(f"cannot resample {from_interval} klines to {interval}",
                         hint="the target interval must be a multiple of the source interval")
    lf = lake.scan("klines", [symbol], start, end, exchange=exchange, market=market, interval=from_interval)
    found = lake.tables("klines", exchange=exchange, market=market, interval=from_interval, symbols=[symbol])[0]
    klines = lf.collect().drop("symbol")
    out = resample_bars(klines, interval, source_interval=from_interval)
    result = lake.write(out, exchange=found.exchange, market=found.market, kind="klines", symbol=symbol,
                        interval=interval)
    first = out["ts"][0] if out.height else None
    last = out["ts"][-1] if out.height else None
    return BarsResult(result.table.label(), out.height, result.rows_added, first, last)
