"""Validation (D5): every bad-input case names file, row and column."""

from __future__ import annotations

import polars as pl
import pytest

from hydraquant.data.ingest import IngestItem, prepare
from hydraquant.data.schema import conform
from hydraquant.data.validate import repair, validate
from hydraquant.errors import DataError

T0_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def trades(n: int = 6) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series([T0_MS + 100 * i for i in range(n)]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "trade_id": list(range(1, n + 1)),
            "price": [100.0, 100.5, 101.0, 100.0, 99.5, 99.0][:n],
            "qty": [1.0, 0.2, 0.3, 0.4, 0.5, 0.6][:n],
            "is_buyer_maker": [True, False] * (n // 2),
        }
    )


def klines(n: int = 5) -> pl.DataFrame:
    ts = pl.Series([T0_MS + 60_000 * i for i in range(n)]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return pl.DataFrame({"ts": ts, "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "volume": 5.0})


def check(frame, kind, match, row=None, column=None, interval=None):
    with pytest.raises(DataError, match=match) as info:
        validate(conform(frame, kind), kind, source="input.csv", interval=interval)
    err = info.value
    assert err.file == "input.csv"
    if row is not None:
        assert err.row == row
    if column is not None:
        assert err.column == column
    assert err.hint  # always says what to do


def test_clean_frames_pass_and_report_gaps():
    rep = validate(conform(trades(), "aggTrades"), "aggTrades", source="x")
    assert rep.rows == 6 and rep.gaps == []
    k = klines(5).filter(pl.int_range(5) != 2)
    rep = validate(conform(k, "klines"), "klines", source="x", interval="1m")
    assert len(rep.gaps) == 1 and rep.missing_bars == 1


def test_shuffled_rows():
    df = trades()
    shuffled = pl.concat([df[:2], df[3:4], df[2:3], df[4:]])
    check(shuffled, "aggTrades", "backwards", row=4, column="ts")


def test_duplicated_rows():
    df = trades()
    check(pl.concat([df[:3], df[2:3], df[3:]]), "aggTrades", "duplicated row", row=4)
    k = klines()
    check(pl.concat([k[:2], k[1:2], k[2:]]), "klines", "duplicate timestamp", row=3, column="ts")


def test_nan_and_inf_price():
    df = trades().with_columns(pl.when(pl.int_range(6) == 2).then(float("nan")).otherwise(pl.col("price")).alias("price"))
    check(df, "aggTrades", "NaN", row=3, column="price")
    df = klines().with_columns(pl.when(pl.int_range(5) == 4).then(float("inf")).otherwise(pl.col("volume")).alias("volume"))
    check(df, "klines", "infinite", row=5, column="volume")


def test_negative_and_zero_sizes_and_prices():
    df = trades().with_columns(pl.when(pl.int_range(6) == 1).then(-0.2).otherwise(pl.col("qty")).alias("qty"))
    check(df, "aggTrades", "non-positive size", row=2, column="qty")
    df = trades().with_columns(pl.when(pl.int_range(6) == 5).then(0.0).otherwise(pl.col("price")).alias("price"))
    check(df, "aggTrades", "non-positive price", row=6, column="price")


def test_ohlc_inconsistency():
    df = klines().with_columns(pl.when(pl.int_range(5) == 1).then(8.0).otherwise(pl.col("high")).alias("high"))
    check(df, "klines", "inconsistent OHLC", row=2, column="high")
    df = klines().with_columns(pl.when(pl.int_range(5) == 3).then(11.5).otherwise(pl.col("low")).alias("low"))
    check(df, "klines", "inconsistent OHLC", row=4, column="low")


@pytest.mark.parametrize("unit", ["us_as_ms", "ms_as_us"])
def test_timestamps_in_wrong_unit(unit):
    df = trades()
    raw = [T0_MS + 100 * i for i in range(6)]
    if unit == "ms_as_us":  # milliseconds read as microseconds -> 1970
        ts = pl.Series(raw).cast(pl.Datetime("us"))
    else:  # microseconds read as milliseconds -> year ~55,000
        ts = pl.Series([r * 1000 for r in raw]).cast(pl.Datetime("ms"))
    df = df.with_columns(ts.dt.replace_time_zone("UTC").alias("ts"))
    check(df, "aggTrades", "time unit is probably wrong", row=1, column="ts")


def test_missing_required_column_and_null_values():
    item = IngestItem(trades().drop("price"), "binance", "um", "aggTrades", "X", "t.csv")
    with pytest.raises(DataError, match="required column 'price'"):
        prepare(item)
    df = trades().with_columns(pl.when(pl.int_range(6) == 2).then(None).otherwise(pl.col("qty")).alias("qty"))
    check(df, "aggTrades", "empty value", row=3, column="qty")


def test_explicit_repairs():
    df = trades()
    messy = pl.concat([df[3:], df[:3], df[1:2]])
    fixed = repair(conform(messy, "aggTrades"), "aggTrades", {"sort", "dedupe"})
    assert fixed["trade_id"].to_list() == [1, 2, 3, 4, 5, 6]
    validate(fixed, "aggTrades", source="x")
    with pytest.raises(DataError, match="unknown repair"):
        repair(fixed, "aggTrades", {"magic"})
