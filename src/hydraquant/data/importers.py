"""Import any supported market-data file into normalised lake tables (SPEC D3).

Why a family registry: real files differ in container (gzip, zip, parquet,
feather, JSON lines), header, time representation and units, and guessing
per column silently mis-reads data (prices x10000, USD volume as coins, a
bar's close stamped as its open).  Each family states how it is detected
and how it maps to our schema, so detection is explicit, documented
(:data:`FAMILIES`, ``docs/data-families.md``) and testable, and a file
that matches nothing is refused with the list of what is supported.

Semantic checks (monotonic time, NaN, OHLC consistency) are not done here:
:mod:`hydraquant.data.validate` runs after import.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from hydraquant.data.formats import archive, derivatives, ohlcv, trades, venues
from hydraquant.data.formats.base import ImportedTable, Parser, Request, Source, open_source
from hydraquant.errors import HydraError

__all__ = ["FAMILIES", "Family", "ImportedTable", "detect_family", "families_table", "import_file"]

log = logging.getLogger(__name__)

KIND_ALIASES = {
    "kline": "klines", "candles": "klines", "ohlcv": "klines",
    "trade": "trades", "aggtrades": "aggTrades", "aggtrade": "aggTrades", "agg_trades": "aggTrades",
    "fundingrate": "funding", "funding_rate": "funding",
    "oi": "open_interest", "openinterest": "open_interest", "metrics": "open_interest",
    "bookticker": "bookTicker", "book_ticker": "bookTicker", "quotes": "bookTicker",
    "liquidation": "liquidations",
    "markpriceklines": "markPriceKlines", "mark": "markPriceKlines",
    "premiumindexklines": "premiumIndexKlines",
}  # fmt: skip


@dataclass(frozen=True)
class Family:
    """One recognised file family: how to spot it and what it becomes.

    ``kinds`` are the lake kinds it can yield.  ``default_kind`` picks the
    kind for ``kind="auto"`` from the file itself; when ``kind_from_file`` is
    set the file alone decides (e.g. a freqtrade ``-mark`` feather is always
    markPriceKlines) and a different request is refused.
    """

    id: str
    description: str
    detection: str
    kinds: tuple[str, ...]
    exchange: str
    market: str
    match: Callable[[Source], bool]
    parse: Parser | None
    refusal: str | None = None
    default_kind: Callable[[Source], str] | None = None
    kind_from_file: bool = False
    caveats: str = ""


def _name_has(*words: str) -> Callable[[Source], bool]:
    return lambda s: any(w in str(s.path).lower() for w in words)


def _lean_default(src: Source) -> str:
    m = venues.lean_minute_match(src)
    return "bookTicker" if m and m.group(2) == "quote" else "klines"


def _archive_default(src: Source) -> str:
    kind, _ = archive.detected_kind(src)
    return {"fundingRate": "funding", "metrics": "open_interest"}.get(kind, kind)


def _json_default(src: Source) -> str:
    return "aggTrades" if re.search(rb'"info"\s*:\s*\{[^}]*"a"\s*:', src.data[:4096]) else "trades"


def _coinglass_default(src: Source) -> str:
    return {"funding": "funding", "liquidation": "liquidations", "oi": "open_interest", "top_ls": "open_interest"}.get(
        derivatives.coinglass_kind(src), "open_interest"
    )


_OHLC = ("open", "high", "low", "close")

FAMILIES: list[Family] = [
    Family(
        "lean-minute", "QuantConnect LEAN minute bars: YYYYMMDD_trade.zip (trade bars) / YYYYMMDD_quote.zip (bid/ask bars)",
        "headerless CSV whose zip or member name is YYYYMMDD_[sym_minute_]trade|quote", ("klines", "bookTicker"),
        "lean", "equity", lambda s: s.container == "csv" and s.header is None and venues.lean_minute_match(s) is not None,
        venues.parse_lean_minute, default_kind=_lean_default, kind_from_file=True,
        caveats="prices /10000; ms since midnight US/Eastern; quote bars -> bookTicker of the closing bid/ask stamped at bar close; "
        "includes pre/post market",
    ),
    Family(
        "lean-bars", "QuantConnect LEAN hour/daily bars (spy.zip)", "headerless CSV whose first field is 'YYYYMMDD HH:MM'",
        ("klines",), "lean", "equity",
        lambda s: s.container == "csv" and s.header is None and bool(s.first_row) and re.fullmatch(r"\d{8} \d{2}:\d{2}", s.first_row[0]) is not None,
        venues.parse_lean_bars, caveats="prices /10000; times US/Eastern; daily bars stamped at local midnight; recent volume scaled differently",
    ),
    Family(
        "binance-archive", "Binance public archive file (data.binance.vision), zip or csv, header or not",
        "archive name SYMBOL-<kind|interval>-YYYY-MM[-DD].csv|zip, or a headerless 12-column numeric CSV",
        ("klines", "aggTrades", "trades", "funding", "open_interest", "bookTicker", "bookDepth", "markPriceKlines", "premiumIndexKlines"),
        "binance", "spot|um|cm (from the folder)", archive.is_archive, archive.parse_archive,
        default_kind=_archive_default, kind_from_file=True,
        caveats="parsed by hydraquant.data.binance_archive.parse_archive_csv; market from the folder path (futures/um, futures/cm), else spot",
    ),
    Family(
        "binanceus-metadata", "Binance.US collection metadata (pair, interval, start/end)", "header pair,interval,start_utc,end_utc",
        (), "binanceus", "spot", lambda s: s.has("pair", "interval", "start_utc", "end_utc"), None,
        refusal="this is a metadata table (pair, interval, date range), not market data; import the per-pair files "
        "BTCUSDT_1m_*.csv.gz instead",
    ),
    Family(
        "binance-klines-closetime-csv", "Binance spot klines stamped only by close time (privet1x collector)",
        "header open,high,low,close,volume,quote_volume,trades,close_datetime", ("klines",), "binance", "spot",
        lambda s: s.has(*_OHLC, "close_datetime"), ohlcv.parse_close_time,
        caveats="ts = close_datetime (with its UTC offset) + 1 ms - interval; interval = modal step",
    ),
    Family(
        "binance-rest-klines-csv", "Binance REST /klines rows (gravestone collector, USD-M futures)",
        "header timestamp,open,high,low,close,volume,quote_volume,trades,close_time", ("klines",), "binance", "um",
        lambda s: s.has("timestamp", *_OHLC, "close_time"), ohlcv.parse_rest, caveats="timestamp = open time (ms)",
    ),
    Family(
        "ftx-ohlcv-csv", "FTX 1m candles (Nautilus fixture; FTX is defunct)",
        "header timestamp,open,high,low,close,volume and 'ftx' in the path", ("klines",), "ftx", "perp",
        lambda s: s.header_is("timestamp", *_OHLC, "volume") and "ftx" in str(s.path).lower(), ohlcv.parse_ftx,
        caveats="volume is USD -> quote_volume; volume (coins) = quote_volume / ((high+low+close)/3), an estimate",
    ),
    Family(
        "ccxt-ohlcv-csv", "OHLCV CSV from ccxt/REST collectors (Binance spot or USD-M)",
        "header timestamp,open,high,low,close,volume[,datetime]; timestamp epoch ms or naive ISO UTC", ("klines",),
        "binance (if in path) else generic", "spot (um if the path says futures)",
        lambda s: s.header_is("timestamp", *_OHLC, "volume") or s.header_is("timestamp", *_OHLC, "volume", "datetime"),
        ohlcv.parse_ccxt, caveats="timestamp = open time; datetime column ignored (redundant)",
    ),
    Family(
        "binanceus-klines-csv", "Binance.US spot 1m klines (NOT Binance.com)", "header open_time,open,high,low,close,volume (ISO UTC)",
        ("klines",), "binanceus", "spot", lambda s: s.header_is("open_time", *_OHLC, "volume"), ohlcv.parse_binanceus,
        caveats="different venue from Binance.com, much lower volume",
    ),
    Family(
        "freqtrade-feather", "freqtrade download-data feather (candles, -mark, -premiumIndex, -funding_rate)",
        "Arrow/feather file with date,open,... columns; candle type from the file name", ("klines", "markPriceKlines",
        "premiumIndexKlines", "funding"), "binance (if in path) else generic", "um for BASE_QUOTE_SETTLE names",
        lambda s: s.container == "ipc" and s.has("date", "open"), ohlcv.parse_freqtrade, default_kind=ohlcv.freqtrade_kind,
        kind_from_file=True, caveats="-funding_rate: rate in 'open'; -mark: mark-price OHLC, volume not imported",
    ),
    Family(
        "binance-rest-funding-csv", "Binance /fapi/v1/fundingRate rows", "header timestamp,symbol,funding_rate", ("funding",),
        "binance", "um", lambda s: s.has("timestamp", "funding_rate"), derivatives.parse_rest_funding,
        caveats="timestamps kept to the ms (settlements land a few ms after the hour)",
    ),
    Family(
        "binance-funding-history-csv", "Binance funding history with raw API names", "header fundingTime,fundingRate[,markPrice]",
        ("funding",), "binance", "um", lambda s: s.has("fundingtime", "fundingrate"), derivatives.parse_funding_history,
        caveats="markPrice empty before 2023-10-31 -> null",
    ),
    Family(
        "ccxt-funding-csv", "ccxt fetch_funding_rate_history dump", "header timestamp,rate", ("funding",), "binance", "um",
        lambda s: s.header_is("timestamp", "rate"), derivatives.parse_ccxt_funding, caveats="symbol from the file name",
    ),
    Family(
        "binance-rest-oi-csv", "Binance /futures/data/openInterestHist rows", "header timestamp,symbol,sum_open_interest,...",
        ("open_interest",), "binance", "um", lambda s: s.has("timestamp", "sum_open_interest"), derivatives.parse_open_interest_hist,
        caveats="no long/short or taker ratios (those are in the archive 'metrics' files); API keeps only ~30 days",
    ),
    Family(
        "coinglass-csv", "Coinglass aggregator series (coinglass_<series>_<interval>_*.csv)",
        "'coinglass' in the file name and a timestamp column; series from the name",
        ("funding", "liquidations", "open_interest"), "coinglass", "aggregate",
        lambda s: "coinglass" in s.path.name.lower() and s.has("timestamp"), derivatives.parse_coinglass,
        default_kind=_coinglass_default, kind_from_file=True,
        caveats="third-party aggregate, not exchange data; ts = bar open + interval (close value); funding in percent -> /100; "
        "oi/top_ls refused (schema requires coin OI); cvd/basis/taker_volume refused (no lake kind)",
    ),
    Family(
        "binance-trades-csv", "Binance trades in the archive 'trades' layout with header (e.g. derived from ws captures)",
        "header id,price,qty,quote_qty,time,is_buyer_maker", ("trades",), "binance", "from the path",
        lambda s: s.has("id", "price", "qty", "time", "is_buyer_maker"), trades.parse_binance_trades,
    ),
    Family(
        "binance-aggtrades-csv", "Binance aggTrades with a header row (REST-derived)",
        "header agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker[,is_best_match]",
        ("aggTrades",), "binance", "from the path", lambda s: s.has("agg_trade_id", "price", "quantity", "transact_time"),
        trades.parse_binance_aggtrades,
    ),
    Family(
        "binance-bookticker-csv", "Binance bookTicker in the archive layout with header",
        "header update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,...", ("bookTicker",), "binance", "from the path",
        lambda s: s.has("best_bid_price", "best_ask_price"), trades.parse_binance_bookticker,
        caveats="ts = transaction_time, else event_time, else local receive time (spot captures)",
    ),
    Family(
        "binance-ws-capture", "Raw Binance websocket capture lines '<local ts> <combined-stream JSON>'",
        "text lines starting with an integer, a space and '{'", ("trades", "bookTicker"), "binance", "from the path",
        lambda s: s.container == "lines", trades.parse_ws_capture, default_kind=lambda s: "trades",
        caveats="--kind picks @trade or @bookTicker; ts = exchange T (else E, else local clock); depth diffs not imported",
    ),
    Family(
        "ccxt-trades-json", "ccxt fetch_trades JSON dump (freqtrade *-trades.json[.gz])", "JSON list of trade dicts",
        ("aggTrades", "trades"), "binance (if in path) else generic", "from the path", lambda s: s.container == "json",
        trades.parse_ccxt_trades_json, default_kind=_json_default, kind_from_file=True,
        caveats="raw Binance aggTrade 'info' (a,p,q,f,l,T,m) -> aggTrades; otherwise unified fields -> trades",
    ),
    Family(
        "hyperliquid-trades-csv", "Hyperliquid official non-market-maker fills (2023)", "header time,user,coin,side,px,sz,crossed",
        ("trades",), "hyperliquid", "perp", lambda s: s.has("time", "user", "coin", "side", "px", "sz", "crossed"),
        trades.parse_hyperliquid_trades,
        caveats="NOT a complete tape (MM-vs-MM trades absent); one table per coin; aggressor from side+crossed; mirrored fills "
        "de-duplicated; trade_id = source row number (no exchange ids)",
    ),
    Family(
        "hyperliquid-liquidations-csv", "Hyperliquid official liquidations (account level)",
        "header time,user,liquidated_ntl_pos,liquidated_account_value,...", ("liquidations",), "hyperliquid", "perp",
        lambda s: s.has("time", "liquidated_ntl_pos"), trades.parse_hyperliquid_liquidations,
        caveats="no coin, price or side: symbol ALL, notional only",
    ),
    Family(
        "nautilus-trades-parquet", "Nautilus Binance trade sample (parquet)", "columns timestamp,trade_id,price,quantity,buyer_maker",
        ("trades",), "binance", "spot", lambda s: s.has("timestamp", "price", "quantity", "buyer_maker"), venues.parse_nautilus_trades,
        caveats="timestamp is a ms UTC timestamp type; buyer_maker stored as text True/False",
    ),
    Family(
        "nautilus-quotes-parquet", "Nautilus Binance quote sample (parquet)", "columns timestamp,symbol,ask_size,ask,bid_size,bid",
        ("bookTicker",), "binance", "spot", lambda s: s.has("timestamp", "bid", "ask", "bid_size", "ask_size"),
        venues.parse_nautilus_quotes,
    ),
    Family(
        "tardis-book-snapshot-csv", "Tardis.dev book_snapshot_N CSV", "header exchange,symbol,timestamp,local_timestamp,asks[0].price,...",
        ("bookTicker",), "binance", "from Tardis exchange id", lambda s: s.has("timestamp", "asks[0].price", "bids[0].price"),
        venues.parse_tardis_snapshot, caveats="best level only (asks[0]/bids[0]); timestamp = exchange time in us",
    ),
    Family(
        "generic-ohlcv", "Any OHLCV CSV/Parquet/feather (MT5 export, Yahoo, Date,Open,High,Low,Close,Volume)",
        "open/high/low/close columns (any case, <> stripped) plus a time column or MT5 <DATE>+<TIME>", ("klines",),
        "generic (binance if in path)", "spot", lambda s: s.has(*_OHLC), ohlcv.parse_generic,
        caveats="naive times read in --tz (default UTC); Yahoo 'Adj Close' ignored; MT5 real volume used unless all zero, "
        "then tick volume; use --map to name odd columns",
    ),
]


def detect_family(source: Source, fmt: str = "auto") -> Family:
    """The first family whose detector accepts ``source`` (or the one named by ``fmt``)."""
    if fmt != "auto":
        for family in FAMILIES:
            if family.id == fmt:
                return family
        raise HydraError(f"unknown format {fmt!r}", hint=f"known formats: auto, {', '.join(f.id for f in FAMILIES)}")
    for family in FAMILIES:
        if family.match(source):
            return family
    header = ", ".join(source.raw_header or ()) if source.raw_header else ("none" if source.container == "csv" else source.container)
    raise HydraError(
        f"{source.where}: unrecognised file (header: {header})",
        hint="rename columns to ts/open/high/low/close/volume with --map SRC=NAME, or pass --format; "
        f"supported: {', '.join(f.id for f in FAMILIES)}",
    )


def _resolve_kind(requested: str, family: Family, source: Source) -> str:
    kind = requested.strip()
    kind = KIND_ALIASES.get(kind.lower(), kind)
    from_file = family.default_kind(source) if family.default_kind else family.kinds[0]
    if kind in ("auto", ""):
        return from_file
    if family.kind_from_file and kind != from_file:
        if kind == "trades" and from_file == "aggTrades":
            log.info("%s holds aggregate trades; importing as aggTrades", source.where)
            return from_file
        raise HydraError(f"{source.where}: this {family.id} file holds {from_file}, not {kind}", hint=f"pass --kind {from_file}")
    if kind not in family.kinds:
        if kind == "trades" and "aggTrades" in family.kinds:
            log.info("%s holds aggregate trades; importing as aggTrades", source.where)
            return "aggTrades"
        raise HydraError(
            f"{source.where}: {family.id} files ({family.description}) yield {', '.join(family.kinds)}, not {kind}",
            hint=f"pass --kind {family.kinds[0]}",
        )
    return kind


def import_file(
    path: Path,
    *,
    kind: str,
    symbol: str | None,
    mapping: dict[str, str] | None = None,
    tz: str | None = None,
    fmt: str = "auto",
) -> list[ImportedTable]:
    """Detect the family of ``path`` and parse it into conformed lake tables.

    ``kind`` is the lake kind wanted (``auto`` takes the file's own);
    ``mapping`` renames source columns before detection; ``tz`` is the zone
    of naive timestamps (default UTC, LEAN defaults to US/Eastern).  Returns
    one table per symbol (several only for multi-coin files such as
    Hyperliquid fills).  Refused families raise HydraError saying why.
    """
    path = Path(path)
    source = open_source(path, dict(mapping or {}))
    family = detect_family(source, fmt)
    if family.refusal is not None or family.parse is None:
        raise HydraError(f"{source.where}: {family.description}: {family.refusal}", hint="see docs/data-families.md")
    resolved = _resolve_kind(kind, family, source)
    request = Request(path=path, kind=resolved, symbol=symbol, tz=tz, mapping=dict(mapping or {}))
    tables = family.parse(source, request, resolved)
    for t in tables:
        log.info("imported %s as %s/%s/%s/%s%s: %d rows", path, t.exchange, t.market, t.kind, t.symbol,
                 f" ({t.interval})" if t.interval else "", t.frame.height)
    return tables


def families_table() -> pl.DataFrame:
    """FAMILIES as a frame, for ``hydraquant import --list-formats`` and the docs."""
    return pl.DataFrame(
        {
            "id": [f.id for f in FAMILIES],
            "description": [f.description for f in FAMILIES],
            "detection": [f.detection for f in FAMILIES],
            "kinds": [", ".join(f.kinds) if f.kinds else "refused" for f in FAMILIES],
            "exchange": [f.exchange for f in FAMILIES],
            "market": [f.market for f in FAMILIES],
            "caveats": [f.refusal or f.caveats for f in FAMILIES],
        }
    )
