"""Lake: atomic writes, de-duplication, partitioning, scans and coverage."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import polars as pl
import pytest

from hydraquant.data.coverage import coverage, missing_days
from hydraquant.data.ingest import IngestItem, ingest, ingest_many
from hydraquant.data.lake import Lake, scan
from hydraquant.errors import DataError, LakeError


def klines(start: str, n: int, step: str = "1m", price: float = 100.0) -> pl.DataFrame:
    t0 = datetime.fromisoformat(start).replace(tzinfo=timezone.utc)
    ts = pl.datetime_range(t0, t0.replace(year=t0.year + 1), step, eager=True, time_unit="us").head(n)
    close = [price + i for i in range(n)]
    return pl.DataFrame(
        {"ts": ts, "open": close, "high": [c + 1 for c in close], "low": [c - 1 for c in close],
         "close": close, "volume": [1.0] * n}
    )


def trades(start_ms: int, n: int, first_id: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series([start_ms + 10 * i for i in range(n)]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "trade_id": list(range(first_id, first_id + n)),
            "price": [100.0 + i for i in range(n)],
            "qty": [0.5] * n,
            "is_buyer_maker": [i % 2 == 0 for i in range(n)],
        }
    )


def item(frame, kind="klines", symbol="BTCUSDT", interval="1m", source="test.csv", market="um"):
    return IngestItem(frame, "binance", market, kind, symbol, source, interval)


def test_monthly_partitions_and_roundtrip(tmp_path):
    lake = Lake(tmp_path)
    df = klines("2024-01-31 23:58:00", 5)
    result = ingest(lake, item(df))
    assert result.rows_added == 5
    files = sorted(p.name for p in (tmp_path / "binance/um/klines/1m/BTCUSDT").glob("*.parquet"))
    assert files == ["2024-01.parquet", "2024-02.parquet"]
    back = lake.scan("klines", "BTCUSDT", interval="1m").collect()
    assert back.columns[:2] == ["ts", "symbol"]
    assert back["close"].to_list() == df["close"].to_list()
    assert back["ts"].dtype == pl.Datetime("us", "UTC")


def test_reimport_deduplicates_and_overlapping_merge(tmp_path):
    lake = Lake(tmp_path)
    ingest(lake, item(klines("2024-01-01", 10)))
    again = ingest(lake, item(klines("2024-01-01", 10)))
    assert again.rows_added == 0
    overlap = ingest(lake, item(klines("2024-01-01 00:05:00", 10, price=105)))
    assert overlap.rows_added == 5
    back = lake.scan("klines", "BTCUSDT", interval="1m").collect()
    assert back.height == 15
    assert back["ts"].is_sorted()


def test_trades_daily_partitions_dedupe_by_id(tmp_path):
    lake = Lake(tmp_path)
    day_ms = 1_704_067_200_000  # 2024-01-01
    ingest(lake, item(trades(day_ms - 50, 10), kind="aggTrades", interval=None))
    ingest(lake, item(trades(day_ms - 50, 10), kind="aggTrades", interval=None))
    names = sorted(p.name for p in (tmp_path / "binance/um/aggTrades/BTCUSDT").glob("*.parquet"))
    assert names == ["2023-12-31.parquet", "2024-01-01.parquet"]
    back = lake.scan("aggTrades", ["BTCUSDT"]).collect()
    assert back["trade_id"].to_list() == list(range(10))


def test_scan_time_range_end_date_inclusive(tmp_path):
    lake = Lake(tmp_path)
    ingest(lake, item(klines("2024-01-01", 3 * 1440)))
    got = lake.scan("klines", "BTCUSDT", "2024-01-02", "2024-01-02", interval="1m").collect()
    assert got.height == 1440
    assert got["ts"].min() == datetime(2024, 1, 2, tzinfo=timezone.utc)
    got = lake.scan("klines", "BTCUSDT", "2024-01-02T12:00", "2024-01-02T13:00", interval="1m").collect()
    assert got.height == 60


def test_scan_api_uses_env(tmp_path, monkeypatch):
    ingest(Lake(tmp_path), item(klines("2024-01-01", 3)))
    monkeypatch.setenv("HYDRAQUANT_LAKE", str(tmp_path))
    assert scan("klines", ["BTCUSDT"], interval="1m").collect().height == 3


def test_scan_refuses_ambiguous_markets(tmp_path):
    lake = Lake(tmp_path)
    ingest(lake, item(klines("2024-01-01", 3), market="um"))
    ingest(lake, item(klines("2024-01-01", 3), market="spot"))
    with pytest.raises(LakeError, match="several places"):
        lake.scan("klines", "BTCUSDT", interval="1m")
    assert lake.scan("klines", "BTCUSDT", interval="1m", market="spot").collect().height == 3


def test_scan_missing_data_is_clear(tmp_path):
    with pytest.raises(LakeError, match="no klines/1m data"):
        Lake(tmp_path).scan("klines", "BTCUSDT", interval="1m")


def test_bad_table_in_batch_writes_nothing(tmp_path):
    lake = Lake(tmp_path)
    good = item(klines("2024-01-01", 5), symbol="ETHUSDT")
    bad_df = klines("2024-01-01", 5).with_columns(pl.when(pl.int_range(5) == 3).then(-1.0).otherwise(pl.col("low")).alias("low"))
    bad_df = bad_df.with_columns(pl.when(pl.int_range(5) == 3).then(float("nan")).otherwise(pl.col("close")).alias("close"))
    with pytest.raises(DataError, match="row 4"):
        ingest_many(lake, [good, item(bad_df, source="bad.csv")])
    assert not any(tmp_path.rglob("*.parquet"))


def test_failed_write_leaves_existing_files_untouched(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    ingest(lake, item(klines("2024-01-31 23:00:00", 120)))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def flaky(self, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(self, path, *a, **k)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError):
        ingest(lake, item(klines("2024-01-31 23:30:00", 120, price=500)))
    after = {p: p.read_bytes() for p in tmp_path.rglob("*.parquet")}
    assert after == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_coverage_reports_gaps_and_missing_days(tmp_path):
    lake = Lake(tmp_path)
    df = klines("2024-01-01", 3 * 1440)
    df = df.filter((pl.col("ts").dt.day() != 2) & (pl.col("ts") != datetime(2024, 1, 3, 5, tzinfo=timezone.utc)))
    ingest(lake, item(df))
    cov = coverage(lake)
    row = cov.row(0, named=True)
    assert (row["rows"], row["days"], row["missing_days"]) == (2 * 1440 - 1, 2, 1)
    assert row["gaps"] == 2 and row["missing_bars"] == 1440 + 1
    table = lake.tables("klines")[0]
    assert [str(d) for d in missing_days(lake, table)] == ["2024-01-02"]


def test_invalid_names_rejected(tmp_path):
    with pytest.raises(LakeError, match="invalid symbol"):
        Lake(tmp_path).write(klines("2024-01-01", 2), exchange="binance", market="um", kind="klines",
                             symbol="../evil", interval="1m")
    with pytest.raises(LakeError, match="needs an interval"):
        Lake(tmp_path).write(klines("2024-01-01", 2), exchange="binance", market="um", kind="klines", symbol="X")
    with pytest.raises(LakeError, match="unknown lake kind"):
        Lake(tmp_path).write(klines("2024-01-01", 2), exchange="binance", market="um", kind="candles", symbol="X")
    assert not any(tmp_path.rglob("*.parquet"))
    assert os.listdir(tmp_path) == []
