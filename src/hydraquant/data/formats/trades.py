"""Trade-level and top-of-book files: Binance CSVs/websocket captures, ccxt JSON, Hyperliquid.

Aggressor convention everywhere: ``is_buyer_maker = True`` means the buyer
was the resting order, i.e. the aggressor SOLD (Binance's ``m`` flag).
"""

from __future__ import annotations

import io

import polars as pl

from hydraquant.data.formats.base import (
    ImportedTable,
    Request,
    Source,
    as_bool,
    as_float,
    as_int,
    market_from_path,
    parse_time,
    read_table,
    resolve_symbol,
    table,
)
from hydraquant.data.formats.ohlcv import exchange_hint
from hydraquant.errors import DataError, HydraError


def parse_binance_trades(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Archive ``trades`` layout with header (``id,price,qty,quote_qty,time,is_buyer_maker``)."""
    frame = read_table(src, columns=("id", "price", "qty", "time", "is_buyer_maker"))
    cols = [
        parse_time(frame, "time", src),
        as_int(frame, "id", src).alias("trade_id"),
        as_float(frame, "price", src),
        as_float(frame, "qty", src),
        as_bool(frame, "is_buyer_maker", src),
    ]
    if "quote_qty" in frame.columns:
        cols.append(as_float(frame, "quote_qty", src))
    return [table(kind, pl.DataFrame(cols), symbol=resolve_symbol(req, src), interval=None, exchange=exchange_hint(src, "binance"),
                  market=market_from_path(src.path), src=src, family="binance-trades-csv")]


def parse_binance_aggtrades(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Archive ``aggTrades`` layout with a header; ``is_best_match`` (spot only) is dropped."""
    frame = read_table(src, columns=("agg_trade_id", "price", "quantity", "transact_time", "is_buyer_maker"))
    cols = [
        parse_time(frame, "transact_time", src),
        as_int(frame, "agg_trade_id", src).alias("trade_id"),
        as_float(frame, "price", src),
        as_float(frame, "quantity", src).alias("qty"),
        as_bool(frame, "is_buyer_maker", src),
    ]
    for c in ("first_trade_id", "last_trade_id"):
        if c in frame.columns:
            cols.append(as_int(frame, c, src))
    return [table(kind, pl.DataFrame(cols), symbol=resolve_symbol(req, src), interval=None, exchange=exchange_hint(src, "binance"),
                  market=market_from_path(src.path), src=src, family="binance-aggtrades-csv")]


def parse_binance_bookticker(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Archive ``bookTicker`` layout; time = transaction_time, else event_time, else local receive ns."""
    frame = read_table(src, columns=("best_bid_price", "best_bid_qty", "best_ask_price", "best_ask_qty"))
    time_col = next((c for c in ("transaction_time", "event_time", "local_receive_ts_ns") if c in frame.columns), None)
    if time_col is None:
        raise DataError("no time column", file=src.where, column="transaction_time", hint="--map SOURCE=transaction_time")
    cols = [
        parse_time(frame, time_col, src),
        as_float(frame, "best_bid_price", src).alias("bid_price"),
        as_float(frame, "best_bid_qty", src).alias("bid_qty"),
        as_float(frame, "best_ask_price", src).alias("ask_price"),
        as_float(frame, "best_ask_qty", src).alias("ask_qty"),
    ]
    if "update_id" in frame.columns:
        cols.append(as_int(frame, "update_id", src))
    return [table(kind, pl.DataFrame(cols), symbol=resolve_symbol(req, src), interval=None, exchange=exchange_hint(src, "binance"),
                  market=market_from_path(src.path), src=src, family="binance-bookticker-csv")]


# --------------------------------------------------------------------------- raw websocket capture

_TRADE_EVENT = pl.Struct({"s": pl.String, "t": pl.Int64, "p": pl.String, "q": pl.String, "T": pl.Int64, "E": pl.Int64, "m": pl.Boolean})
_BOOK_EVENT = pl.Struct({"s": pl.String, "u": pl.Int64, "b": pl.String, "B": pl.String, "a": pl.String, "A": pl.String, "T": pl.Int64, "E": pl.Int64})


def parse_ws_capture(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """``<local receive ts> <combined-stream JSON>`` lines (hftbacktest captures).

    The local clock is not synced to the exchange, so event time is the
    exchange ``T`` (trade / transaction time), falling back to ``E`` and only
    then to the local stamp (spot bookTicker events carry no exchange time).
    ``kind`` picks the stream: ``trades`` from ``@trade``, ``bookTicker`` from
    ``@bookTicker``; depth diffs need a snapshot and are not imported.
    """
    lines = pl.read_csv(io.BytesIO(src.data), has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
                        new_columns=["line"]).get_column("line")
    parts = lines.str.splitn(" ", 2).struct.rename_fields(["local", "json"]).struct.unnest()
    stream = "@trade" if kind == "trades" else "@bookTicker"
    picked = parts.with_row_index("row").filter(pl.col("json").str.contains(f'"stream":"[^"]*{stream}"', literal=False))
    if picked.height == 0:
        raise HydraError(f"{src.where}: no {stream} events in this capture", hint="pass --kind trades or --kind bookTicker to pick a stream that exists")
    data = picked.select("row", "local", pl.col("json").str.json_path_match("$.data").alias("data"))
    dtype = _TRADE_EVENT if kind == "trades" else _BOOK_EVENT
    try:
        ev = data.with_columns(pl.col("data").str.json_decode(dtype)).unnest("data")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"malformed JSON event: {str(exc).splitlines()[0]}", file=src.where, hint="the capture is truncated or not a Binance combined stream") from None
    local = parse_time(ev, "local", src)
    exch_ms = ev.select(pl.coalesce("T", "E")).to_series()
    exch = (exch_ms.cast(pl.Int64) * 1_000).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    ts = pl.Series("ts", exch).fill_null(local)
    symbol = req.symbol or _single(ev.get_column("s"), src) or resolve_symbol(req, src)
    if kind == "trades":
        out = pl.DataFrame([
            ts,
            ev.get_column("t").alias("trade_id"),
            as_float(ev, "p", src).alias("price"),
            as_float(ev, "q", src).alias("qty"),
            ev.get_column("m").alias("is_buyer_maker"),
        ])
    else:
        out = pl.DataFrame([
            ts,
            ev.get_column("u").alias("update_id"),
            as_float(ev, "b", src).alias("bid_price"),
            as_float(ev, "B", src).alias("bid_qty"),
            as_float(ev, "a", src).alias("ask_price"),
            as_float(ev, "A", src).alias("ask_qty"),
        ])
    if req.symbol is None and ev.get_column("s").n_unique() > 1:
        raise HydraError(f"{src.where}: capture mixes symbols {sorted(ev.get_column('s').unique().to_list())}", hint="pass --symbol to pick one")
    if req.symbol is not None:
        keep = ev.get_column("s").str.to_uppercase() == req.symbol.upper()
        out = out.filter(keep)
    return [table(kind, out, symbol=symbol, interval=None, exchange="binance", market=market_from_path(src.path),
                  src=src, family="binance-ws-capture")]


def _single(values: pl.Series, src: Source) -> str | None:
    uniq = values.drop_nulls().unique()
    return str(uniq[0]) if uniq.len() == 1 else None


# --------------------------------------------------------------------------- ccxt JSON


def parse_ccxt_trades_json(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """ccxt ``fetch_trades`` dump (a JSON list of trade dicts).

    When ``info`` is a raw Binance ``/aggTrades`` record (``a,p,q,f,l,T,m``)
    the exact exchange strings are used and the table is ``aggTrades``;
    otherwise ccxt's unified fields give ``trades`` (``side == "sell"`` ->
    aggressor sold -> ``is_buyer_maker``).
    """
    try:
        frame = pl.read_json(io.BytesIO(src.data), infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"not a JSON list of trades: {str(exc).splitlines()[0]}", file=src.where) from None
    info_fields = []
    if "info" in frame.columns and isinstance(frame.schema["info"], pl.Struct):
        info_fields = [f.name for f in frame.schema["info"].fields]
    symbol = req.symbol or (_single(frame.get_column("symbol"), src) or "").replace("/", "") or resolve_symbol(req, src)
    if {"a", "p", "q", "T", "m"} <= set(info_fields):
        info = frame.get_column("info").struct.unnest()
        cols = [
            parse_time(info, "T", src, epoch_unit="ms"),
            as_int(info, "a", src).alias("trade_id"),
            as_float(info, "p", src).alias("price"),
            as_float(info, "q", src).alias("qty"),
            as_bool(info, "m", src).alias("is_buyer_maker"),
        ]
        if "f" in info_fields and "l" in info_fields:
            cols += [as_int(info, "f", src).alias("first_trade_id"), as_int(info, "l", src).alias("last_trade_id")]
        produced = "aggTrades"
    else:
        for col in ("timestamp", "price", "amount", "side"):
            if col not in frame.columns:
                raise DataError("missing field in ccxt trade dicts", file=src.where, column=col)
        cols = [
            parse_time(frame, "timestamp", src, epoch_unit="ms"),
            as_float(frame, "price", src),
            as_float(frame, "amount", src).alias("qty"),
            (frame.get_column("side").str.to_lowercase() == "sell").alias("is_buyer_maker"),
        ]
        if "id" in frame.columns:
            cols.append(as_int(frame, "id", src).alias("trade_id"))
        if "cost" in frame.columns:
            cols.append(as_float(frame, "cost", src).alias("quote_qty"))
        produced = "trades"
    if kind != produced:
        raise HydraError(f"{src.where}: this ccxt JSON yields {produced}, not {kind}", hint=f"pass --kind {produced}")
    return [table(produced, pl.DataFrame(cols), symbol=symbol, interval=None, exchange=exchange_hint(src, "binance"),
                  market=market_from_path(src.path), src=src, family="ccxt-trades-json")]


# --------------------------------------------------------------------------- Hyperliquid


def parse_hyperliquid_trades(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Hyperliquid ``non_mm_trades``: one row per *fill of a user*, not per trade.

    Aggressor: ``crossed`` = the user's order took liquidity, so the aggressor
    bought iff (side == Bid) == crossed; ``is_buyer_maker = not that``.  A
    fill between two non-MM users appears twice (taker row and mirrored maker
    row, same time/coin/px/sz/aggressor); per such key we keep
    max(#taker rows, #maker rows) rows, dropping the mirrored maker rows.  The
    file omits MM-vs-MM trades, so it is NOT a complete tape.  It has no trade
    ids and second-resolution times, so distinct fills can look identical;
    ``trade_id`` is the 1-based source row number, which keeps them distinct
    under the lake's de-duplication and is stable across re-imports.
    """
    frame = read_table(src, columns=("time", "coin", "side", "px", "sz", "crossed"))
    side = frame.get_column("side").str.strip_chars().str.to_lowercase()
    bad = (~side.is_in(["bid", "ask", "b", "a", "buy", "sell"])).arg_true()
    if bad.len():
        row = int(bad[0])
        raise DataError(f"cannot read side {frame.get_column('side')[row]!r} (expected Bid/Ask)", file=src.where, row=row + 1, column="side")
    crossed = as_bool(frame, "crossed", src)
    user_bought = side.is_in(["bid", "b", "buy"])
    base = pl.DataFrame([
        parse_time(frame, "time", src, tz=req.tz),
        frame.get_column("coin").str.strip_chars().alias("coin"),
        as_float(frame, "px", src).alias("price"),
        as_float(frame, "sz", src).alias("qty"),
        (user_bought != crossed).alias("is_buyer_maker"),
        crossed.alias("crossed"),
    ]).with_row_index("row")
    key = ["ts", "coin", "price", "qty", "is_buyer_maker"]
    base = base.with_columns(
        n_taker=pl.col("crossed").sum().over(key),
        rank=pl.col("row").rank("ordinal").over([*key, "crossed"]),
    )
    kept = (
        base.filter(pl.col("crossed") | (pl.col("rank") > pl.col("n_taker")))
        .sort("row")
        .with_columns(trade_id=(pl.col("row") + 1).cast(pl.Int64))
    )
    coins = sorted(kept.get_column("coin").unique().to_list())
    if req.symbol is not None:
        wanted = req.symbol.upper()
        coins = [c for c in coins if c.upper() == wanted]
        if not coins:
            raise HydraError(f"{src.where}: no trades for coin {req.symbol!r}", hint="Hyperliquid symbols are coin names (BTC, ETH, ARB, ...)")
    return [
        table("trades", kept.filter(pl.col("coin") == coin), symbol=coin, interval=None, exchange="hyperliquid",
              market="perp", src=src, family="hyperliquid-trades-csv")
        for coin in coins
    ]


def parse_hyperliquid_liquidations(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Account-level liquidations: no coin, price or side in the file -> symbol ``ALL``, notional only."""
    frame = read_table(src, columns=("time", "liquidated_ntl_pos"))
    out = pl.DataFrame([parse_time(frame, "time", src, tz=req.tz), as_float(frame, "liquidated_ntl_pos", src).alias("notional")])
    return [table("liquidations", out, symbol=req.symbol or "ALL", interval=None, exchange="hyperliquid", market="perp", src=src,
                  family="hyperliquid-liquidations-csv")]
