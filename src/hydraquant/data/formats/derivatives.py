"""Funding, open interest and Coinglass aggregator series.

Time convention: funding settlements and Binance OI snapshots are *events*,
stamped when they happened.  Coinglass series are OHLC bars stamped at the
bar open whose ``close`` is only known at the bar end, so their event time is
``open + interval`` — using the open would leak up to one bar of the future.
"""

from __future__ import annotations

import polars as pl

from hydraquant.data.formats.base import (
    ImportedTable,
    Request,
    Source,
    as_float,
    infer_interval,
    parse_time,
    read_table,
    resolve_symbol,
    table,
)
from hydraquant.data.schema import schema_for
from hydraquant.errors import HydraError
from hydraquant.timeframes import interval_us


def _symbol_column(frame: pl.DataFrame, req: Request, src: Source) -> str:
    if req.symbol:
        return req.symbol
    if "symbol" in frame.columns:
        values = frame.get_column("symbol").drop_nulls().unique()
        if values.len() == 1:
            return str(values[0])
    return resolve_symbol(req, src)


def parse_rest_funding(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """/fapi/v1/fundingRate rows (``timestamp,symbol,funding_rate``); ms timestamps kept exact."""
    frame = read_table(src, columns=("timestamp", "funding_rate"))
    out = pl.DataFrame([parse_time(frame, "timestamp", src), as_float(frame, "funding_rate", src)])
    return [table(kind, out, symbol=_symbol_column(frame, req, src), interval=None, exchange="binance", market="um", src=src,
                  family="binance-rest-funding-csv")]


def parse_funding_history(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Raw API column names ``fundingTime,fundingRate,markPrice`` (markPrice empty before 2023-10-31)."""
    frame = read_table(src, columns=("fundingtime", "fundingrate"))
    cols = [parse_time(frame, "fundingtime", src), as_float(frame, "fundingrate", src).alias("funding_rate")]
    if "markprice" in frame.columns:
        cols.append(as_float(frame, "markprice", src).alias("mark_price"))
    return [table(kind, pl.DataFrame(cols), symbol=_symbol_column(frame, req, src), interval=None, exchange="binance", market="um",
                  src=src, family="binance-funding-history-csv")]


def parse_ccxt_funding(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """ccxt ``fetch_funding_rate_history`` dumps: ``timestamp`` ISO UTC, ``rate`` per interval."""
    frame = read_table(src, columns=("timestamp", "rate"))
    out = pl.DataFrame([parse_time(frame, "timestamp", src, tz=req.tz), as_float(frame, "rate", src).alias("funding_rate")])
    return [table(kind, out, symbol=resolve_symbol(req, src), interval=None, exchange="binance", market="um", src=src,
                  family="ccxt-funding-csv")]


def parse_open_interest_hist(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """/futures/data/openInterestHist: ``sum_open_interest`` in coins, ``..._value`` in USDT."""
    frame = read_table(src, columns=("timestamp", "sum_open_interest"))
    cols = [parse_time(frame, "timestamp", src), as_float(frame, "sum_open_interest", src).alias("open_interest")]
    if "sum_open_interest_value" in frame.columns:
        cols.append(as_float(frame, "sum_open_interest_value", src).alias("open_interest_value"))
    return [table(kind, pl.DataFrame(cols), symbol=_symbol_column(frame, req, src), interval=None, exchange="binance", market="um",
                  src=src, family="binance-rest-oi-csv")]


# --------------------------------------------------------------------------- Coinglass


def coinglass_kind(src: Source) -> str:
    """Coinglass file names say what the OHLC holds: ``coinglass_<series>_<interval>_...``."""
    name = src.path.name.lower()
    for key in ("top_ls", "taker_volume", "liquidation", "funding", "basis", "cvd", "oi"):
        if f"coinglass_{key}_" in name:
            return key
    return "unknown"


def _bar_end(frame: pl.DataFrame, src: Source, req: Request) -> tuple[pl.Series, str | None]:
    """Event time of a Coinglass bar's close value: open + modal interval."""
    opens = parse_time(frame, "timestamp", src, tz=req.tz)
    step = infer_interval(opens)
    if step is None:
        raise HydraError(f"{src.where}: cannot infer the Coinglass bar interval from one row", hint="import a file with at least two bars")
    end = opens.to_frame().select(pl.col("ts") + pl.duration(microseconds=interval_us(step))).to_series()
    return end, step


def _refuse_open_interest(src: Source, what: str, value_column: str) -> None:
    if "open_interest" in schema_for("open_interest").required:
        raise HydraError(
            f"{src.where}: Coinglass {what} cannot be imported as open_interest: the schema requires "
            "open_interest in contracts/coins, which this aggregator series does not have "
            f"(it only has {value_column})",
            hint="use Binance openInterestHist REST files or archive 'metrics' for open interest; importing this "
            "series needs open_interest to become optional in hydraquant.data.schema",
        )


def parse_coinglass(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    """Coinglass aggregator series (BTC across exchanges unless noted), one parser per file name.

    * ``funding``: OI-weighted funding OHLC **in percent** -> ``funding_rate = close / 100``.
    * ``liquidation``: per-bar USD sums -> two ``liquidations`` rows per bar (side long/short).
    * ``oi`` / ``top_ls``: refused while the open_interest schema requires coin OI.
    * ``cvd`` / ``basis`` / ``taker_volume``: no lake kind holds them; refused.
    """
    series = coinglass_kind(src)
    symbol = req.symbol or "BTC"
    if series in ("cvd", "basis", "taker_volume", "unknown"):
        raise HydraError(
            f"{src.where}: Coinglass '{series}' series has no lake kind (kinds: klines, trades, aggTrades, funding, "
            "open_interest, bookTicker, liquidations)",
            hint="compute taker/CVD features from trades or klines instead, or ask for a schema kind for it",
        )
    frame = read_table(src, columns=("timestamp",))
    ts, step = _bar_end(frame, src, req)
    if series == "funding":
        out = pl.DataFrame([ts, as_float(frame, "close", src, scale=100.0).alias("funding_rate")])
    elif series == "liquidation":
        longs = pl.DataFrame([ts, as_float(frame, "long_usd", src).alias("notional")]).with_columns(side=pl.lit("long"))
        shorts = pl.DataFrame([ts, as_float(frame, "short_usd", src).alias("notional")]).with_columns(side=pl.lit("short"))
        out = pl.concat([longs, shorts], how="vertical").sort("ts", "side", maintain_order=True)
    elif series == "oi":
        _refuse_open_interest(src, "open interest (USD notional, OHLC)", "open_interest_value in USD")
        out = pl.DataFrame([ts, as_float(frame, "close", src).alias("open_interest_value")])
    else:  # top_ls
        _refuse_open_interest(src, "top-trader long/short position ratio", "toptrader_position_long_short_ratio")
        out = pl.DataFrame([ts, as_float(frame, "ratio", src).alias("toptrader_position_long_short_ratio")])
    kind_out = {"funding": "funding", "liquidation": "liquidations", "oi": "open_interest", "top_ls": "open_interest"}[series]
    if kind != kind_out:
        raise HydraError(f"{src.where}: Coinglass '{series}' yields {kind_out}, not {kind}", hint=f"pass --kind {kind_out}")
    return [table(kind_out, out, symbol=symbol, interval=None, exchange="coinglass", market="aggregate", src=src,
                  family="coinglass-csv")]
