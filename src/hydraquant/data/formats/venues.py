"""Venue/vendor-specific layouts: QuantConnect LEAN zips, Nautilus parquet, Tardis snapshots.

LEAN stores prices as integers in 1/10000 USD and times in US/Eastern
exchange time (minute files: milliseconds since local midnight, date in the
file name).  We divide prices by 10,000 and convert to UTC on import.
"""

from __future__ import annotations

import re
from datetime import date

import polars as pl

from hydraquant.data.formats.base import (
    ImportedTable,
    Request,
    Source,
    as_bool,
    as_float,
    as_int,
    infer_interval,
    localise,
    market_from_path,
    parse_time,
    read_table,
    resolve_symbol,
    table,
)

from hydraquant.errors import DataError, HydraError

LEAN_TZ = "America/New_York"
LEAN_PRICE_SCALE = 10_000.0
_LEAN_MINUTE = re.compile(r"^(\d{8})_(?:[a-z0-9.]+_minute_)?(trade|quote)\.(?:csv|zip)$")


def lean_minute_match(src: Source) -> re.Match[str] | None:
    return _LEAN_MINUTE.match(src.name) or _LEAN_MINUTE.match(src.path.name.lower())


def _lean_symbol(req: Request, src: Source) -> str:
    if req.symbol:
        return req.symbol
    m = re.match(r"^\d{8}_([a-z0-9.]+)_minute_", src.name)
    return (m.group(1) if m else src.path.parent.name).upper()


def parse_lean_minute(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Minute trade bars -> klines; minute quote bars -> bookTicker at each bar's close.

    Quote bars carry OHLC of bid and ask plus the last sizes; we keep the
    closing bid/ask and sizes and stamp them at bar open + 1 minute, the
    instant that closing quote was observed (stamping the open would leak one
    minute of the future into bookTicker consumers).
    """
    m = lean_minute_match(src)
    assert m is not None
    day = date(int(m.group(1)[:4]), int(m.group(1)[4:6]), int(m.group(1)[6:]))
    frame = read_table(src)
    ms = as_int(frame, "column_1", src)
    naive = pl.DataFrame({"ms": ms}).select(
        (pl.lit(day).cast(pl.Datetime("us")) + pl.duration(milliseconds=pl.col("ms"))).alias("ts")
    ).to_series()
    ts = localise(naive, req.tz or LEAN_TZ).alias("ts")
    symbol = _lean_symbol(req, src)
    if m.group(2) == "trade":
        if frame.width != 6:
            raise DataError(f"expected 6 columns in a LEAN minute trade file, found {frame.width}", file=src.where)
        out = pl.DataFrame([
            ts,
            *(as_float(frame, f"column_{i}", src, scale=LEAN_PRICE_SCALE).alias(n) for i, n in zip(range(2, 6), ("open", "high", "low", "close"))),
            as_float(frame, "column_6", src).alias("volume"),
        ])
        produced, interval = "klines", "1m"
    else:
        if frame.width != 11:
            raise DataError(f"expected 11 columns in a LEAN minute quote file, found {frame.width}", file=src.where)
        ts_close = ts.to_frame().select(pl.col("ts") + pl.duration(minutes=1)).to_series()
        out = pl.DataFrame([
            ts_close,
            as_float(frame, "column_5", src, scale=LEAN_PRICE_SCALE).alias("bid_price"),
            as_float(frame, "column_6", src).alias("bid_qty"),
            as_float(frame, "column_10", src, scale=LEAN_PRICE_SCALE).alias("ask_price"),
            as_float(frame, "column_11", src).alias("ask_qty"),
        ])
        produced, interval = "bookTicker", None
    if kind != produced:
        raise HydraError(f"{src.where}: LEAN minute {m.group(2)} file yields {produced}, not {kind}", hint=f"pass --kind {produced}")
    return [table(produced, out, symbol=symbol, interval=interval, exchange="lean", market="equity", src=src, family="lean-minute")]


def parse_lean_bars(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Hour/daily bars ``YYYYMMDD HH:MM,o,h,l,c,v`` in US/Eastern; bar open time.

    Daily bars are stamped at local midnight (LEAN's convention), so the
    session's values are known at the next midnight ET: conservative, causal.
    """
    frame = read_table(src)
    if frame.width != 6:
        raise DataError(f"expected 6 columns in a LEAN hour/daily file, found {frame.width}", file=src.where)
    ts = parse_time(frame, "column_1", src, tz=req.tz or LEAN_TZ)
    out = pl.DataFrame([
        ts,
        *(as_float(frame, f"column_{i}", src, scale=LEAN_PRICE_SCALE).alias(n) for i, n in zip(range(2, 6), ("open", "high", "low", "close"))),
        as_float(frame, "column_6", src).alias("volume"),
    ])
    symbol = req.symbol or src.path.stem.split(".")[0].upper()
    return [table(kind, out, symbol=symbol, interval=infer_interval(ts), exchange="lean", market="equity", src=src, family="lean-bars")]


# --------------------------------------------------------------------------- Nautilus / Tardis


def parse_nautilus_trades(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Nautilus test parquet: ``timestamp`` is a ms UTC timestamp type; ``buyer_maker`` is text."""
    frame = read_table(src, columns=("timestamp", "price", "quantity", "buyer_maker"))
    cols = [
        parse_time(frame, "timestamp", src),
        as_float(frame, "price", src),
        as_float(frame, "quantity", src).alias("qty"),
        as_bool(frame, "buyer_maker", src).alias("is_buyer_maker"),
    ]
    if "trade_id" in frame.columns:
        cols.append(as_int(frame, "trade_id", src))
    return [table(kind, pl.DataFrame(cols), symbol=resolve_symbol(req, src), interval=None, exchange="binance",
                  market=market_from_path(src.path), src=src, family="nautilus-trades-parquet")]


def _row_ids(n: int) -> pl.Series:
    """Source row numbers (1-based) as ``update_id`` where a source has no ids.

    Quotes can share a millisecond; without an id the lake key (ts, update_id)
    would merge distinct updates.  Row numbers are stable across re-imports.
    """
    return pl.Series("update_id", range(1, n + 1), dtype=pl.Int64)


def parse_nautilus_quotes(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    frame = read_table(src, columns=("timestamp", "bid", "bid_size", "ask", "ask_size"))
    out = pl.DataFrame([
        _row_ids(frame.height),
        parse_time(frame, "timestamp", src),
        as_float(frame, "bid", src).alias("bid_price"),
        as_float(frame, "bid_size", src).alias("bid_qty"),
        as_float(frame, "ask", src).alias("ask_price"),
        as_float(frame, "ask_size", src).alias("ask_qty"),
    ])
    fallback = None
    if "symbol" in frame.columns:
        uniq = frame.get_column("symbol").drop_nulls().unique()
        fallback = str(uniq[0]).replace("/", "") if uniq.len() == 1 else None
    return [table(kind, out, symbol=resolve_symbol(req, src, fallback), interval=None, exchange="binance",
                  market=market_from_path(src.path), src=src, family="nautilus-quotes-parquet")]


_TARDIS_VENUES = {"binance": ("binance", "spot"), "binance-futures": ("binance", "um"), "binance-delivery": ("binance", "cm")}


def parse_tardis_snapshot(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Tardis ``book_snapshot_N``: best level = ``asks[0]``/``bids[0]``; ``timestamp`` = exchange time (us)."""
    cols = ("timestamp", "asks[0].price", "asks[0].amount", "bids[0].price", "bids[0].amount")
    frame = read_table(src, columns=cols)
    out = pl.DataFrame([
        _row_ids(frame.height),
        parse_time(frame, "timestamp", src, epoch_unit="us"),
        as_float(frame, "bids[0].price", src).alias("bid_price"),
        as_float(frame, "bids[0].amount", src).alias("bid_qty"),
        as_float(frame, "asks[0].price", src).alias("ask_price"),
        as_float(frame, "asks[0].amount", src).alias("ask_qty"),
    ])
    venue = str(frame.get_column("exchange")[0]) if "exchange" in frame.columns and frame.height else ""
    exchange, market = _TARDIS_VENUES.get(venue, (venue or "tardis", "spot"))
    fallback = None
    if "symbol" in frame.columns and frame.height:
        uniq = frame.get_column("symbol").unique()
        if uniq.len() > 1 and req.symbol is None:
            raise HydraError(f"{src.where}: snapshot mixes symbols {uniq.to_list()}", hint="pass --symbol")
        fallback = str(uniq[0])
    if req.symbol is not None and "symbol" in frame.columns:
        out = out.filter(frame.get_column("symbol").str.to_uppercase() == req.symbol.upper())
    return [table(kind, out, symbol=resolve_symbol(req, src, fallback), interval=None, exchange=exchange, market=market,
                  src=src, family="tardis-book-snapshot-csv")]
