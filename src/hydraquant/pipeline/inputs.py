"""Load the bar frame and side inputs a feature/label build needs from the lake.

Bars come from trade bars (``bars/<interval>``) when they exist, else from
klines of that interval (order flow then comes from taker-buy volume).  Side
inputs (funding, open interest, book, liquidations) are loaded from the same
exchange/market when present; features that need an absent input are refused
by the registry with a message naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from hydraquant.data.lake import Lake, TableId, parse_time_bound
from hydraquant.errors import HydraError

SIDE_KINDS = {"funding": "funding", "open_interest": "open_interest", "book": "bookTicker",
              "liquidations": "liquidations"}


@dataclass(frozen=True)
class BarInputs:
    bars: pl.DataFrame  # long: ts, symbol, ...
    side: dict[str, pl.DataFrame]
    source: TableId  # the first symbol's bar table (exchange/market/kind/interval)


def find_bar_tables(
    lake: Lake, symbols: list[str], interval: str, *, source: str = "auto",
    exchange: str | None = None, market: str | None = None,
) -> list[TableId]:
    kinds = {"auto": ("bars", "klines"), "bars": ("bars",), "klines": ("klines",)}.get(source)
    if kinds is None:
        raise HydraError(f"unknown bar source {source!r}", hint="use --source auto, bars or klines")
    out = []
    for symbol in symbols:
        found: list[TableId] = []
        for kind in kinds:
            found = lake.tables(kind, exchange=exchange, market=market, interval=interval, symbols=[symbol])
            if found:
                break
        if not found:
            raise HydraError(
                f"no {interval} bars or klines for {symbol} in the lake at {lake.root}",
                hint=f"build them with `hydraquant bars --symbols {symbol} --interval {interval}` "
                "or fetch/import klines of that interval",
            )
        if len(found) > 1:
            options = ", ".join(f"{t.exchange}/{t.market}" for t in found)
            raise HydraError(f"{symbol} {interval} exists in several places: {options}",
                             hint="pass --exchange/--market to choose one")
        out.append(found[0])
    return out


def load_inputs(
    lake: Lake,
    symbols: list[str],
    interval: str,
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    lookback: timedelta = timedelta(0),
    source: str = "auto",
    exchange: str | None = None,
    market: str | None = None,
) -> BarInputs:
    """Bars from ``start - lookback`` (warm-up) to ``end`` and every side input available."""
    tables = find_bar_tables(lake, symbols, interval, source=source, exchange=exchange, market=market)
    t0 = parse_time_bound(start)
    t1 = parse_time_bound(end, end=True)
    frames = []
    for table in tables:
        lf = lake.scan(table.kind, [table.symbol], t0 - lookback if t0 else None, t1,
                       exchange=table.exchange, market=table.market, interval=interval)
        frames.append(lf.collect())
    bars = pl.concat(frames, how="diagonal_relaxed").sort(["symbol", "ts"])
    if bars.is_empty():
        raise HydraError(f"no {interval} bars for {', '.join(symbols)} in the requested range")
    side: dict[str, pl.DataFrame] = {}
    first = tables[0]
    for name, kind in SIDE_KINDS.items():
        have = lake.tables(kind, exchange=first.exchange, market=first.market, symbols=symbols)
        if not have:
            continue
        syms = sorted({t.symbol for t in have})
        side[name] = lake.scan(kind, syms, None, t1, exchange=first.exchange, market=first.market).collect()
    return BarInputs(bars, side, first)
