"""Real-data loaders shared by the feature tests (read from shared/data/real, never copied).

Each loader skips the calling test (via ``real_file``) when its file is
missing, and caches nothing on disk.
"""

from __future__ import annotations

import io
import zipfile
from functools import lru_cache

import polars as pl

from hydraquant.features.inputs import prepare_bars
from tests.conftest import real_file

FUTURES_KLINES = "binance-vision/data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2024-10.zip"
SPOT_KLINES = "binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2024-10-01_2024-11-04.csv.gz"
TRADES = "binance-ws-captures/usdm/BTCUSDT/derived/BTCUSDT-trades-20240808T235415Z-wscapture.csv.gz"
FUNDING = (
    "binance-um-futures-funding-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2019-09-10_2024-12-31.csv.gz"
)

_TS = pl.Datetime("us", "UTC")


def _ms_to_ts(col: str) -> pl.Expr:
    return pl.from_epoch(pl.col(col).cast(pl.Int64), time_unit="ms").cast(_TS)


@lru_cache(maxsize=4)
def _futures_klines_cached(rel: str) -> pl.DataFrame:
    path = real_file(rel)
    with zipfile.ZipFile(path) as zf:
        raw = zf.read(zf.namelist()[0])
    frame = pl.read_csv(io.BytesIO(raw))
    return frame.select(
        _ms_to_ts("open_time").alias("ts"),
        *[
            pl.col(c).cast(pl.Float64)
            for c in ("open", "high", "low", "close", "volume", "quote_volume")
        ],
        pl.col("count").cast(pl.Int64).alias("trade_count"),
        pl.col("taker_buy_volume").cast(pl.Float64),
        pl.col("taker_buy_quote_volume").cast(pl.Float64),
    ).sort("ts")


def futures_klines(n: int | None = None, rel: str = FUTURES_KLINES) -> pl.DataFrame:
    """USD-M 1m klines in the lake's kline schema (with taker_buy_volume), first ``n`` rows."""
    frame = _futures_klines_cached(rel)
    return frame.head(n) if n else frame


def futures_kline_bars(n: int | None = None) -> pl.DataFrame:
    """The futures klines with buy/signed volume derived, as the builder sees them."""
    return prepare_bars(futures_klines(n))


@lru_cache(maxsize=1)
def _spot_klines_cached() -> pl.DataFrame:
    frame = pl.read_csv(real_file(SPOT_KLINES))
    ts = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us", time_zone="UTC")
    return frame.select(
        ts.alias("ts"),
        *[pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")],
    ).sort("ts")


def spot_klines(n: int | None = None) -> pl.DataFrame:
    """Binance spot BTCUSDT 1m OHLCV only (no taker volume, no trade count)."""
    frame = _spot_klines_cached()
    return frame.head(n) if n else frame


@lru_cache(maxsize=1)
def trades() -> pl.DataFrame:
    """~6 minutes of real USD-M BTCUSDT trades in the lake's trade schema."""
    frame = pl.read_csv(real_file(TRADES))
    return frame.select(
        _ms_to_ts("time").alias("ts"),
        pl.col("id").cast(pl.Int64).alias("trade_id"),
        pl.col("price").cast(pl.Float64),
        pl.col("qty").cast(pl.Float64),
        pl.col("quote_qty").cast(pl.Float64),
        pl.col("is_buyer_maker").cast(pl.Boolean),
    ).sort("ts", "trade_id")


def aggregate_trades(frame: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Local time-bar aggregation (non-empty intervals only) used when hydraquant.bars is absent."""
    from hydraquant.timeframes import polars_every

    buy = pl.when(~pl.col("is_buyer_maker")).then(pl.col("qty")).otherwise(0.0)
    return (
        frame.with_columns(pl.col("ts").dt.truncate(polars_every(interval)).alias("ts"))
        .group_by("ts", maintain_order=True)
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            (pl.col("quote_qty").sum() / pl.col("qty").sum()).alias("vwap"),
            pl.col("qty").sum().alias("volume"),
            buy.sum().alias("buy_volume"),
            (2.0 * buy - pl.col("qty")).sum().alias("signed_volume"),
            pl.len().cast(pl.Int64).alias("trade_count"),
            pl.col("quote_qty").sum().alias("quote_volume"),
        )
        .sort("ts")
    )


def trade_bars(interval: str = "250ms") -> pl.DataFrame:
    """Real trade bars: ``hydraquant.bars.trades_to_bars`` if present, else a local aggregation."""
    try:
        from hydraquant.bars import trades_to_bars  # type: ignore[attr-defined]
    except ImportError:
        return aggregate_trades(trades(), interval)
    cols = [
        "ts",
        "open",
        "high",
        "low",
        "close",
        "vwap",
        "volume",
        "buy_volume",
        "signed_volume",
        "trade_count",
    ]
    return trades_to_bars(trades(), interval).select(cols).sort("ts")


@lru_cache(maxsize=1)
def funding() -> pl.DataFrame:
    """BTCUSDT funding-rate history (every 8 h) with ``ts`` = funding time."""
    frame = pl.read_csv(real_file(FUNDING), schema_overrides={"markPrice": pl.Float64})
    return frame.select(
        _ms_to_ts("fundingTime").alias("ts"),
        pl.col("fundingRate").cast(pl.Float64).alias("funding_rate"),
        pl.col("markPrice").cast(pl.Float64).alias("mark_price"),
    ).sort("ts")
