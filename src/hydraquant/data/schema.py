"""Normalised lake schemas: one per data kind, whatever the source.

Every source (Binance archive, REST/ccxt CSVs, LEAN, Nautilus, the simulator)
is parsed into exactly these columns and dtypes before validation, so the rest
of the system never sees source quirks (header/no header, ms vs us
timestamps, spot vs futures column sets, prices x10000).

Conventions (see DESIGN.md):
* ``ts`` is ``Datetime("us", "UTC")``. For bars/klines it is the bar *open*
  time; values are known at ``ts + interval``. For events (trades, funding)
  it is the event time.
* Frames are per symbol inside the lake; :func:`hydraquant.data.lake.Lake.scan`
  adds a ``symbol`` column so frames are long: ``ts, symbol, ...``.
* Columns marked optional may be null when a source lacks them (e.g. REST
  klines without taker-buy volume); required columns never are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Schema:
    """Column layout of one lake kind.

    ``key`` columns identify a row for de-duplication on re-import;
    ``partition`` says whether files are split per UTC day or month.
    """

    kind: str
    columns: dict[str, pl.DataType]
    required: tuple[str, ...]
    key: tuple[str, ...]
    partition: str = "day"  # "day" | "month"
    price_columns: tuple[str, ...] = ()
    size_columns: tuple[str, ...] = ()
    ohlc: bool = False
    description: str = ""
    # at least one of these must be present and non-null on every row
    any_of: tuple[str, ...] = ()
    optional: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "optional", tuple(c for c in self.columns if c not in self.required)
        )

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.columns)


TRADE_COLUMNS: dict[str, pl.DataType] = {
    "ts": TS,
    "trade_id": pl.Int64,
    "price": pl.Float64,
    "qty": pl.Float64,
    "quote_qty": pl.Float64,
    "is_buyer_maker": pl.Boolean,
    "first_trade_id": pl.Int64,
    "last_trade_id": pl.Int64,
}

KLINE_COLUMNS: dict[str, pl.DataType] = {
    "ts": TS,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "quote_volume": pl.Float64,
    "trade_count": pl.Int64,
    "taker_buy_volume": pl.Float64,
    "taker_buy_quote_volume": pl.Float64,
}

BAR_COLUMNS: dict[str, pl.DataType] = {
    "ts": TS,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "vwap": pl.Float64,
    "volume": pl.Float64,
    "buy_volume": pl.Float64,
    "signed_volume": pl.Float64,
    "trade_count": pl.Int64,
    "quote_volume": pl.Float64,
}

SCHEMAS: dict[str, Schema] = {
    s.kind: s
    for s in [
        Schema(
            "aggTrades",
            TRADE_COLUMNS,
            required=("ts", "trade_id", "price", "qty", "is_buyer_maker"),
            key=("trade_id",),
            price_columns=("price",),
            size_columns=("qty",),
            description="aggregate trades; trade_id is the aggregate id; "
            "is_buyer_maker=true means the aggressor SOLD",
        ),
        Schema(
            "trades",
            TRADE_COLUMNS,
            required=("ts", "price", "qty", "is_buyer_maker"),
            key=("trade_id", "ts", "price", "qty"),
            price_columns=("price",),
            size_columns=("qty",),
            description="individual trades; is_buyer_maker=true means the aggressor SOLD",
        ),
        Schema(
            "klines",
            KLINE_COLUMNS,
            required=("ts", "open", "high", "low", "close", "volume"),
            key=("ts",),
            partition="month",
            price_columns=("open", "high", "low", "close"),
            size_columns=("volume",),
            ohlc=True,
            description="OHLCV candles (interval is part of the table name, e.g. klines/1m)",
        ),
        Schema(
            "markPriceKlines",
            KLINE_COLUMNS,
            required=("ts", "open", "high", "low", "close"),
            key=("ts",),
            partition="month",
            price_columns=("open", "high", "low", "close"),
            ohlc=True,
            description="mark-price candles",
        ),
        Schema(
            "premiumIndexKlines",
            KLINE_COLUMNS,
            required=("ts", "open", "high", "low", "close"),
            key=("ts",),
            partition="month",
            ohlc=True,
            description="premium-index candles (values may be negative)",
        ),
        Schema(
            "bars",
            BAR_COLUMNS,
            required=tuple(BAR_COLUMNS),
            key=("ts",),
            price_columns=("open", "high", "low", "close", "vwap"),
            size_columns=("volume",),
            ohlc=True,
            description="time bars built from trades (interval in the table name, e.g. bars/250ms)",
        ),
        Schema(
            "funding",
            {
                "ts": TS,
                "funding_rate": pl.Float64,
                "mark_price": pl.Float64,
                "funding_interval_hours": pl.Float64,
            },
            required=("ts", "funding_rate"),
            key=("ts",),
            partition="month",
            description="perpetual funding settlements (rate per interval, not annualised)",
        ),
        Schema(
            "open_interest",
            {
                "ts": TS,
                "open_interest": pl.Float64,
                "open_interest_value": pl.Float64,
                "toptrader_long_short_ratio": pl.Float64,
                "toptrader_position_long_short_ratio": pl.Float64,
                "long_short_ratio": pl.Float64,
                "taker_buy_sell_ratio": pl.Float64,
            },
            required=("ts",),
            key=("ts",),
            partition="month",
            size_columns=("open_interest", "open_interest_value"),
            any_of=(
                "open_interest",
                "open_interest_value",
                "toptrader_position_long_short_ratio",
                "long_short_ratio",
            ),
            description="open interest (contracts/coins and/or USD value) and, from Binance "
            "'metrics' or aggregators, long/short ratios",
        ),
        Schema(
            "bookTicker",
            {
                "ts": TS,
                "update_id": pl.Int64,
                "bid_price": pl.Float64,
                "bid_qty": pl.Float64,
                "ask_price": pl.Float64,
                "ask_qty": pl.Float64,
            },
            required=("ts", "bid_price", "bid_qty", "ask_price", "ask_qty"),
            key=("ts", "update_id"),
            price_columns=("bid_price", "ask_price"),
            description="best bid/ask updates",
        ),
        Schema(
            "bookDepth",
            {
                "ts": TS,
                "percentage": pl.Float64,
                "depth": pl.Float64,
                "notional": pl.Float64,
            },
            required=("ts", "percentage", "depth", "notional"),
            key=("ts", "percentage"),
            description="cumulative depth within +-percentage of mid (Binance bookDepth)",
        ),
        Schema(
            "liquidations",
            {
                "ts": TS,
                "side": pl.Utf8,
                "price": pl.Float64,
                "qty": pl.Float64,
                "notional": pl.Float64,
            },
            required=("ts", "notional"),
            key=("ts", "side", "notional"),
            partition="month",
            description="forced liquidations (side = side of the liquidated position)",
        ),
    ]
}

# Kinds whose table name carries an interval (klines/1m, bars/250ms, ...).
INTERVAL_KINDS = frozenset({"klines", "markPriceKlines", "premiumIndexKlines", "bars"})


def schema_for(kind: str) -> Schema:
    from hydraquant.errors import LakeError

    try:
        return SCHEMAS[kind]
    except KeyError:
        raise LakeError(
            f"unknown data kind {kind!r}",
            hint=f"known kinds: {', '.join(sorted(SCHEMAS))}",
        ) from None


def conform(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Return ``frame`` with exactly the schema's columns, order and dtypes.

    Missing optional columns are added as nulls; extra columns are dropped.
    Missing *required* columns are an error for the caller to report (see
    :mod:`hydraquant.data.validate`); here they raise ``KeyError``.
    """
    schema = schema_for(kind)
    out = []
    for name, dtype in schema.columns.items():
        if name in frame.columns:
            col = frame.get_column(name)
            if name == "ts" and col.dtype != TS:
                col = col.dt.convert_time_zone("UTC") if getattr(col.dtype, "time_zone", None) else col.dt.replace_time_zone("UTC")
                col = col.dt.cast_time_unit("us")
            out.append(col.cast(dtype).alias(name))
        elif name in schema.required:
            raise KeyError(name)
        else:
            out.append(pl.Series(name, [None] * frame.height, dtype=dtype))
    return pl.DataFrame(out)
