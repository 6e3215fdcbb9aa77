"""OHLCV candle files: ccxt/REST CSVs, Binance.US, FTX, freqtrade feather, any generic CSV/Parquet.

Why one module: they differ only in where time comes from (open time as
epoch or ISO, or a *close* time that must be turned back into the open) and
in which optional columns exist; the kline frame they produce is the same.
"""

from __future__ import annotations

import re

import polars as pl

from hydraquant.data.formats.base import (
    ImportedTable,
    Request,
    Source,
    as_float,
    as_int,
    infer_interval,
    market_from_path,
    parse_time,
    read_table,
    require,
    resolve_symbol,
    table,
)
from hydraquant.errors import DataError
from hydraquant.timeframes import interval_us

OHLC = ("open", "high", "low", "close")
TIME_ALIASES = ("ts", "timestamp", "datetime", "date_time", "open_time", "time", "date", "gmt_time", "local_time", "time_utc")
VOLUME_ALIASES = ("volume", "vol", "real_volume", "tickvol", "tick_volume", "tick_vol")
OPTIONAL_ALIASES = {
    "quote_volume": ("quote_volume", "quote_asset_volume", "quote_av", "volume_quote"),
    "trade_count": ("trade_count", "trades", "count", "number_of_trades", "num_trades"),
    "taker_buy_volume": ("taker_buy_volume", "taker_buy_base_asset_volume", "taker_buy_base", "tb_base_av"),
    "taker_buy_quote_volume": ("taker_buy_quote_volume", "taker_buy_quote_asset_volume", "taker_buy_quote", "tb_quote_av"),
}
_NAME_INTERVAL = re.compile(r"[-_.](\d+(?:ms|s|m|h|d|w))[-_.]")


def exchange_hint(src: Source, default: str = "generic") -> str:
    p = str(src.path).lower()
    if "binance-us" in p or "binanceus" in p or "binance.us" in p:
        return "binanceus"
    if "binance" in p:
        return "binance"
    return default


def interval_of(ts: pl.Series, src: Source) -> str | None:
    """Modal step; single-row files fall back to an interval in the file name (``_1h_``)."""
    found = infer_interval(ts)
    if found is None:
        m = _NAME_INTERVAL.search(src.path.name)
        return m.group(1) if m else None
    return found


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    return next((a for a in aliases if a in columns), None)


def kline_frame(frame: pl.DataFrame, ts: pl.Series, src: Source, *, volume: str | None = "volume") -> pl.DataFrame:
    """Typed kline columns from a string/typed source frame plus a parsed ``ts``."""
    cols: dict[str, pl.Series] = {"ts": ts}
    for c in OHLC:
        cols[c] = as_float(frame, c, src)
    if volume is not None:
        cols["volume"] = as_float(frame, volume, src)
    for target, aliases in OPTIONAL_ALIASES.items():
        name = _pick(frame.columns, aliases)
        if name is not None:
            cols[target] = as_int(frame, name, src) if target == "trade_count" else as_float(frame, name, src)
    return pl.DataFrame([s.alias(k) for k, s in cols.items()])


def _time_column(frame: pl.DataFrame, src: Source, req: Request) -> pl.Series:
    """Find the bar-open time: one column, or MT5-style separate date + time columns."""
    cols = frame.columns
    if "date" in cols and "time" in cols and "ts" not in cols and "timestamp" not in cols:
        combined = frame.select(
            (pl.col("date").cast(pl.String).str.strip_chars() + " " + pl.col("time").cast(pl.String).str.strip_chars()).alias("date_time")
        )
        return parse_time(combined, "date_time", src, tz=req.tz)
    name = _pick(cols, TIME_ALIASES)
    if name is None:
        raise DataError(
            f"no time column (found: {', '.join(cols)})",
            file=src.where,
            column="ts",
            hint="rename the bar-open time column with --map SOURCE=ts",
        )
    return parse_time(frame, name, src, tz=req.tz)


def _volume_column(frame: pl.DataFrame, src: Source) -> str:
    """Prefer real volume; MT5 exports real ``vol`` as zeros for FX/CFDs, then tick volume is used."""
    present = [a for a in VOLUME_ALIASES if a in frame.columns]
    if not present:
        raise DataError(
            f"no volume column (found: {', '.join(frame.columns)})",
            file=src.where,
            column="volume",
            hint="rename it with --map SOURCE=volume",
        )
    for name in present:
        values = as_float(frame, name, src)
        if values.len() and (values.fill_null(0.0) != 0.0).any():
            return name
    return present[0]


def parse_generic(src: Source, req: Request, kind: str, *, family: str = "generic-ohlcv", exchange: str | None = None, market: str | None = None) -> list[ImportedTable]:
    frame = read_table(src, columns=OHLC)
    ts = _time_column(frame, src, req)
    out = kline_frame(frame, ts, src, volume=_volume_column(frame, src))
    return [
        table(kind, out, symbol=resolve_symbol(req, src), interval=interval_of(ts, src),
              exchange=exchange or exchange_hint(src), market=market or market_from_path(src.path), src=src, family=family)
    ]


def parse_ccxt(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """``timestamp`` is the bar open (epoch ms or naive ISO UTC); ``datetime`` is a redundant copy."""
    frame = read_table(src, columns=("timestamp", *OHLC, "volume"))
    ts = parse_time(frame, "timestamp", src, tz=req.tz)
    out = kline_frame(frame, ts, src)
    return [table(kind, out, symbol=resolve_symbol(req, src), interval=interval_of(ts, src), exchange=exchange_hint(src),
                  market=market_from_path(src.path), src=src, family="ccxt-ohlcv-csv")]


def parse_close_time(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Only the close is stamped: ``close_datetime`` = open + interval - 1 ms (Binance close_time).

    The close carries its own UTC offset (+01:00 in the real files), so it is
    read as an absolute instant; the open is ``close + 1 ms - interval`` where
    the interval is the modal step between closes.
    """
    frame = read_table(src, columns=(*OHLC, "volume", "close_datetime"))
    close = parse_time(frame, "close_datetime", src, tz=req.tz)
    interval = interval_of(close, src)
    if interval is None:
        raise DataError("cannot infer the bar interval from a single close time", file=src.where, column="close_datetime",
                        hint="import a file with at least two bars")
    ts = close.to_frame().select(pl.col("ts") + pl.duration(microseconds=1_000 - interval_us(interval))).to_series()
    out = kline_frame(frame, ts, src)
    return [table(kind, out, symbol=resolve_symbol(req, src), interval=interval, exchange=exchange_hint(src),
                  market=market_from_path(src.path), src=src, family="binance-klines-closetime-csv")]


def parse_rest(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Binance /klines rows: ``timestamp`` = open time (ms); ``close_time`` = open + interval - 1 ms."""
    frame = read_table(src, columns=("timestamp", *OHLC, "volume"))
    ts = parse_time(frame, "timestamp", src, epoch_unit=None)
    out = kline_frame(frame, ts, src)
    return [table(kind, out, symbol=resolve_symbol(req, src), interval=interval_of(ts, src), exchange=exchange_hint(src, "binance"),
                  market=market_from_path(src.path, "um"), src=src, family="binance-rest-klines-csv")]


def parse_binanceus(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    frame = read_table(src, columns=("open_time", *OHLC, "volume"))
    ts = parse_time(frame, "open_time", src, tz=req.tz)
    out = kline_frame(frame, ts, src)
    return [table(kind, out, symbol=resolve_symbol(req, src), interval=interval_of(ts, src), exchange="binanceus",
                  market="spot", src=src, family="binanceus-klines-csv")]


def parse_ftx(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """FTX ``volume`` is USD notional: it becomes ``quote_volume``.

    The schema requires a base-asset ``volume``; we estimate it as
    ``quote_volume / typical price`` with typical = (high+low+close)/3, a
    standard VWAP proxy.  It is an estimate, not exchange data.
    """
    frame = read_table(src, columns=("timestamp", *OHLC, "volume"))
    ts = parse_time(frame, "timestamp", src, tz=req.tz)
    out = kline_frame(frame, ts, src, volume=None)
    usd = as_float(frame, "volume", src)
    typical = (out.get_column("high") + out.get_column("low") + out.get_column("close")) / 3.0
    out = out.with_columns(quote_volume=usd, volume=usd / typical)
    symbol = req.symbol or _ftx_symbol(src)
    return [table(kind, out, symbol=symbol, interval=interval_of(ts, src), exchange="ftx", market="perp", src=src, family="ftx-ohlcv-csv")]


def _ftx_symbol(src: Source) -> str:
    m = re.match(r"^([a-z0-9]+)-(perp)", src.path.name.lower())
    return f"{m.group(1).upper()}-PERP" if m else resolve_symbol(Request(src.path, "", None, None, {}), src)


FREQTRADE_CANDLES = {"mark": "markPriceKlines", "premiumindex": "premiumIndexKlines", "funding_rate": "funding"}


def freqtrade_kind(src: Source) -> str:
    m = re.search(r"-(\d+[a-zA-Z]+)-([a-zA-Z_]+)\.feather$", src.path.name)
    return FREQTRADE_CANDLES.get(m.group(2).lower(), "klines") if m else "klines"


def parse_freqtrade(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """freqtrade ``download-data`` feather: candles keyed by ``date`` (bar open, UTC).

    ``-funding_rate`` files carry the rate in ``open`` (other columns 0);
    ``-mark`` files are mark-price candles whose volume is meaningless, so it
    is not imported.
    """
    frame = read_table(src, columns=("date", "open"))
    ts = parse_time(frame, "date", src, tz=req.tz)
    market = "um" if re.match(r"^[A-Za-z0-9]+_[A-Za-z]+_[A-Za-z]+-", src.path.name) else "spot"
    symbol = resolve_symbol(req, src)
    if kind == "funding":
        out = pl.DataFrame([ts, as_float(frame, "open", src).alias("funding_rate")])
        return [table(kind, out, symbol=symbol, interval=None, exchange=exchange_hint(src), market=market, src=src, family="freqtrade-feather")]
    require(frame, OHLC, src)
    out = kline_frame(frame, ts, src, volume=None if kind != "klines" else "volume")
    return [table(kind, out, symbol=symbol, interval=interval_of(ts, src), exchange=exchange_hint(src), market=market, src=src, family="freqtrade-feather")]
