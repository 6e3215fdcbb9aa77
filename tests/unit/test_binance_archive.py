"""Binance archive: paths, argument validation and CSV/zip parsing (no network)."""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hydraquant.data.binance_archive import (
    archive_path,
    archive_url,
    checksum_path,
    parse_archive_csv,
    parse_archive_zip,
    plan_fetch,
    plan_periods,
    validate_request,
)
from hydraquant.data.schema import SCHEMAS, TS
from hydraquant.errors import ConfigError, DataError
from tests.conftest import real_file

MS_2025 = 1735689600000  # 2025-01-01T00:00:00Z in ms


def _ts(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# --------------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (
            ("um", "aggTrades", "BTCUSDT", date(2024, 1, 2)),
            {},
            "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip",
        ),
        (
            ("spot", "klines", "ethusdt", date(2024, 3, 9)),
            {"interval": "1m", "monthly": True},
            "data/spot/monthly/klines/ETHUSDT/1m/ETHUSDT-1m-2024-03.zip",
        ),
        (
            ("cm", "fundingRate", "BTCUSD_PERP", date(2023, 12, 1)),
            {"monthly": True},
            "data/futures/cm/monthly/fundingRate/BTCUSD_PERP/BTCUSD_PERP-fundingRate-2023-12.zip",
        ),
        (
            ("um", "metrics", "BTCUSDT", date(2024, 2, 29)),
            {},
            "data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-02-29.zip",
        ),
        (
            ("futures/um", "markPriceKlines", "BTCUSDT", date(2024, 5, 1)),
            {"interval": "1h"},
            "data/futures/um/daily/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-2024-05-01.zip",
        ),
        (
            ("um", "bookDepth", "BTCUSDT", date(2024, 5, 1)),
            {},
            "data/futures/um/daily/bookDepth/BTCUSDT/BTCUSDT-bookDepth-2024-05-01.zip",
        ),
        (
            ("um", "premiumIndexKlines", "BTCUSDT", date(2024, 5, 7)),
            {"interval": "1mo", "monthly": True},
            "data/futures/um/monthly/premiumIndexKlines/BTCUSDT/1mo/BTCUSDT-1mo-2024-05.zip",
        ),
    ],
)
def test_archive_path_layout(args: tuple, kwargs: dict, expected: str) -> None:
    assert archive_path(*args, **kwargs) == expected


def test_urls_and_checksum_paths() -> None:
    rel = archive_path("spot", "trades", "BTCUSDT", date(2025, 1, 1))
    assert archive_url("http://127.0.0.1:9/", rel) == f"http://127.0.0.1:9/{rel}"
    assert checksum_path(rel).endswith("BTCUSDT-trades-2025-01-01.zip.CHECKSUM")


@pytest.mark.parametrize(
    ("market", "kind", "kwargs", "fragment"),
    [
        ("binance", "aggTrades", {}, "unknown Binance market"),
        ("um", "candles", {}, "unknown Binance archive kind"),
        ("um", "klines", {}, "needs an interval"),
        ("um", "klines", {"interval": "7m"}, "no '7m'"),
        ("um", "klines", {"interval": "1s"}, "no '1s'"),
        ("um", "aggTrades", {"interval": "1m"}, "have no interval"),
        ("um", "fundingRate", {}, "monthly files only"),
        ("um", "metrics", {"monthly": True}, "daily files only"),
        ("um", "bookDepth", {"monthly": True}, "daily files only"),
        ("spot", "fundingRate", {"monthly": True}, "does not publish"),
        ("spot", "metrics", {}, "does not publish"),
        ("spot", "markPriceKlines", {"interval": "1m"}, "does not publish"),
    ],
)
def test_validate_request_rejects(market: str, kind: str, kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        validate_request(market, kind, **kwargs)


def test_validate_request_accepts_and_normalises() -> None:
    market, spec = validate_request("USD-M", "funding", monthly=True)
    assert (market, spec.name, spec.lake_kind) == ("um", "fundingRate", "funding")
    assert validate_request("spot", "klines", interval="1s")[0] == "spot"


def test_plan_periods_daily_and_monthly() -> None:
    assert plan_periods(date(2024, 2, 28), date(2024, 3, 1), monthly=False) == [
        date(2024, 2, 28),
        date(2024, 2, 29),
        date(2024, 3, 1),
    ]
    assert plan_periods(date(2023, 11, 15), date(2024, 2, 3), monthly=True) == [
        date(2023, 11, 1),
        date(2023, 12, 1),
        date(2024, 1, 1),
        date(2024, 2, 1),
    ]
    with pytest.raises(ConfigError, match="before start"):
        plan_periods(date(2024, 1, 2), date(2024, 1, 1), monthly=False)


def test_plan_fetch_orders_by_symbol_then_date(tmp_path: Path) -> None:
    plan = plan_fetch(
        market="um",
        kind="aggTrades",
        symbols=["ethusdt", "BTCUSDT", "ETHUSDT"],
        start=date(2024, 1, 1),
        end=date(2024, 1, 2),
        base_url="http://127.0.0.1:1",
        cache_dir=tmp_path,
    )
    assert [(f.symbol, f.period) for f in plan] == [
        ("ETHUSDT", "2024-01-01"),
        ("ETHUSDT", "2024-01-02"),
        ("BTCUSDT", "2024-01-01"),
        ("BTCUSDT", "2024-01-02"),
    ]
    assert plan[0].path == tmp_path / archive_path("um", "aggTrades", "ETHUSDT", date(2024, 1, 1))
    assert plan[0].url.startswith("http://127.0.0.1:1/data/futures/um/daily/")
    with pytest.raises(ConfigError, match="no symbols"):
        plan_fetch(
            market="um", kind="aggTrades", symbols=[], start=date(2024, 1, 1),
            end=date(2024, 1, 1), cache_dir=tmp_path,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="invalid Binance symbol"):
        plan_fetch(
            market="um", kind="aggTrades", symbols=["BTC/USDT"], start=date(2024, 1, 1),
            end=date(2024, 1, 1), cache_dir=tmp_path,
        )  # fmt: skip


# --------------------------------------------------------------------------- parsing

SPOT_AGG_US = (
    b"3575420512,93576.00000000,0.00005000,4384390001,4384390001,1735689600012345,True,True\n"
    b"3575420513,93576.01000000,0.01000000,4384390002,4384390004,1735689600999999,False,True\n"
)
SPOT_AGG_MS = (
    b"3575420512,93576.00000000,0.00005000,4384390001,4384390001,1735689600012,True,True\n"
    b"3575420513,93576.01000000,0.01000000,4384390002,4384390004,1735689600999,False,True\n"
)
UM_AGG_HEADER = (
    b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
)


def test_spot_aggtrades_microseconds_exact() -> None:
    df = parse_archive_csv(SPOT_AGG_US, kind="aggTrades", market="spot", source="t.csv")
    assert df.schema == pl.Schema(SCHEMAS["aggTrades"].columns)
    assert df.get_column("ts").to_list() == [
        datetime(2025, 1, 1, 0, 0, 0, 12345, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
    ]
    assert df.get_column("trade_id").to_list() == [3575420512, 3575420513]
    assert df.get_column("price").to_list() == [93576.0, 93576.01]
    assert df.get_column("qty").to_list() == [0.00005, 0.01]
    assert df.get_column("is_buyer_maker").to_list() == [True, False]
    assert df.get_column("first_trade_id").to_list() == [4384390001, 4384390002]
    assert df.get_column("last_trade_id").to_list() == [4384390001, 4384390004]
    assert df.get_column("quote_qty").null_count() == 2


def test_ms_us_ns_epochs_give_identical_ts() -> None:
    ms = parse_archive_csv(SPOT_AGG_MS, kind="aggTrades", market="spot", source="ms")
    us_rows = SPOT_AGG_MS.replace(b",1735689600012,", b",1735689600012000,").replace(
        b",1735689600999,", b",1735689600999000,"
    )
    ns_rows = SPOT_AGG_MS.replace(b",1735689600012,", b",1735689600012000000,").replace(
        b",1735689600999,", b",1735689600999000000,"
    )
    us = parse_archive_csv(us_rows, kind="aggTrades", market="spot", source="us")
    ns = parse_archive_csv(ns_rows, kind="aggTrades", market="spot", source="ns")
    assert_frame_equal(ms, us)
    assert_frame_equal(ms, ns)
    assert ms.get_column("ts")[0] == datetime(2025, 1, 1, 0, 0, 0, 12000, tzinfo=UTC)


def test_header_and_no_header_give_identical_frames() -> None:
    rows = b"1,113498.1,6.0,1,1,1758874297571,false\n2,113518.1,107.0,2,3,1758874297571,true\n"
    with_header = parse_archive_csv(UM_AGG_HEADER + rows, kind="aggTrades", market="um", source="a")
    without = parse_archive_csv(rows, kind="aggTrades", market="um", source="b")
    assert_frame_equal(with_header, without)
    assert with_header.height == 2


def test_header_columns_matched_by_name_not_position() -> None:
    header = b"price,agg_trade_id,quantity,first_trade_id,last_trade_id,is_buyer_maker,transact_time,extra\n"
    rows = b"100.5,7,2.0,10,11,TRUE,1700000000000,zzz\n"
    df = parse_archive_csv(header + rows, kind="aggTrades", market="um", source="x")
    assert df.row(0, named=True) == {
        "ts": _ts(2023, 11, 14, 22, 13, 20),
        "trade_id": 7,
        "price": 100.5,
        "qty": 2.0,
        "quote_qty": None,
        "is_buyer_maker": True,
        "first_trade_id": 10,
        "last_trade_id": 11,
    }


def test_crlf_bom_and_trailing_blank_lines() -> None:
    data = (
        b"\xef\xbb\xbf"
        + (UM_AGG_HEADER + b"1,2.5,3.0,4,4,1700000000000,False\n").replace(b"\n", b"\r\n")
        + b"\r\n\r\n"
    )
    df = parse_archive_csv(data, kind="aggTrades", market="um", source="x")
    assert df.height == 1 and df.get_column("is_buyer_maker").to_list() == [False]


def test_spot_and_futures_trades() -> None:
    spot = parse_archive_csv(
        b"100,50000.5,0.1,5000.05,1735689600000001,true,true\n",
        kind="trades", market="spot", source="s",
    )  # fmt: skip
    um = parse_archive_csv(
        b"id,price,qty,quote_qty,time,is_buyer_maker\n100,50000.5,0.1,5000.05,1735689600000,True\n",
        kind="trades", market="um", source="u",
    )  # fmt: skip
    cm = parse_archive_csv(
        b"id,price,qty,base_qty,time,is_buyer_maker\n100,50000.5,3,0.006,1735689600000,false\n",
        kind="trades", market="cm", source="c",
    )  # fmt: skip
    assert spot.row(0) == (
        datetime(2025, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        100,
        50000.5,
        0.1,
        5000.05,
        True,
        None,
        None,
    )
    assert um.row(0) == (_ts(2025, 1, 1), 100, 50000.5, 0.1, 5000.05, True, None, None)
    assert cm.row(0) == (_ts(2025, 1, 1), 100, 50000.5, 3.0, None, False, None, None)


def test_other_market_layout_is_a_fallback() -> None:
    """A spot mirror without is_best_match still parses (futures column set)."""
    rows = b"1,1.5,2.0,1,1,1735689600000000,true\n"
    spot = parse_archive_csv(rows, kind="aggTrades", market="spot", source="s")
    um = parse_archive_csv(rows, kind="aggTrades", market="um", source="u")
    assert_frame_equal(spot, um)
    assert spot.get_column("ts").to_list() == [_ts(2025, 1, 1)]


KLINE_ROW = b"1730419200000,3.958,3.959,3.956,3.958,45103.8,1730419259999,178487.4969,306,26031.0,103016.3016,0\n"


@pytest.mark.parametrize("kind", ["klines", "markPriceKlines", "premiumIndexKlines"])
def test_klines_exact(kind: str) -> None:
    df = parse_archive_csv(KLINE_ROW, kind=kind, market="um", source="k")
    assert df.columns == list(SCHEMAS[kind].columns)
    assert df.row(0) == (
        _ts(2024, 11, 1),
        3.958,
        3.959,
        3.956,
        3.958,
        45103.8,
        178487.4969,
        306,
        26031.0,
        103016.3016,
    )


def test_spot_klines_microseconds_match_ms() -> None:
    us_row = KLINE_ROW.replace(b"1730419200000,", b"1730419200000000,").replace(
        b"1730419259999,", b"1730419259999999,"
    )
    assert_frame_equal(
        parse_archive_csv(us_row, kind="klines", market="spot", source="us"),
        parse_archive_csv(KLINE_ROW, kind="klines", market="spot", source="ms"),
    )


def test_funding_rate() -> None:
    data = (
        b"calc_time,funding_interval_hours,last_funding_rate\n"
        b"1704067200000,8,0.00037409\n1704096000000,8,-0.00010000\n"
    )
    df = parse_archive_csv(data, kind="fundingRate", market="um", source="f")
    assert df.schema == pl.Schema(SCHEMAS["funding"].columns)
    assert df.rows() == [
        (_ts(2024, 1, 1, 0), 0.00037409, None, 8.0),
        (_ts(2024, 1, 1, 8), -0.0001, None, 8.0),
    ]


def test_metrics_open_interest() -> None:
    data = (
        b"create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
        b"sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
        b"2024-01-01 00:05:00,BTCUSDT,81234.5,3450000000.1,1.5,1.6,1.7,0.9\n"
        b"2024-01-01 00:10:00,BTCUSDT,81240.0,3460000000.0,,1.61,1.71,\n"
    )
    df = parse_archive_csv(data, kind="metrics", market="um", source="m")
    assert df.schema == pl.Schema(SCHEMAS["open_interest"].columns)
    assert df.rows() == [
        (_ts(2024, 1, 1, 0, 5), 81234.5, 3450000000.1, 1.5, 1.6, 1.7, 0.9),
        (_ts(2024, 1, 1, 0, 10), 81240.0, 3460000000.0, None, 1.61, 1.71, None),
    ]


def test_book_ticker_and_book_depth() -> None:
    ticker = parse_archive_csv(
        b"update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
        b"4567,42000.1,1.5,42000.2,0.3,1704067200123,1704067200125\n",
        kind="bookTicker", market="um", source="bt",
    )  # fmt: skip
    assert ticker.row(0) == (
        datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=UTC),
        4567,
        42000.1,
        1.5,
        42000.2,
        0.3,
    )
    depth = parse_archive_csv(
        b"timestamp,percentage,depth,notional\n"
        b"2024-01-01 00:00:08,-5,1234.5,51000000.25\n2024-01-01 00:00:08,1,10.0,420000.0\n",
        kind="bookDepth", market="um", source="bd",
    )  # fmt: skip
    assert depth.schema == pl.Schema(SCHEMAS["bookDepth"].columns)
    assert depth.rows() == [
        (_ts(2024, 1, 1, 0, 0, 8), -5.0, 1234.5, 51000000.25),
        (_ts(2024, 1, 1, 0, 0, 8), 1.0, 10.0, 420000.0),
    ]


@pytest.mark.parametrize("data", [b"", UM_AGG_HEADER, b"\n\n"])
def test_empty_files_give_empty_schema_frames(data: bytes) -> None:
    df = parse_archive_csv(data, kind="aggTrades", market="um", source="e")
    assert df.height == 0
    assert df.schema == pl.Schema(SCHEMAS["aggTrades"].columns)


# --------------------------------------------------------------------------- bad input


def _err(data: bytes, kind: str = "aggTrades", market: str = "um") -> DataError:
    with pytest.raises(DataError) as info:
        parse_archive_csv(data, kind=kind, market=market, source="f.zip:f.csv")
    return info.value


def test_text_in_numeric_column_names_first_bad_row_and_column() -> None:
    rows = [f"{i},1.5,2.0,{i},{i},1700000000000,true" for i in range(1, 200)]
    rows[150] = "151,1.5,abc,151,151,1700000000000,true"
    rows[170] = "171,oops,2.0,171,171,1700000000000,true"
    err = _err(UM_AGG_HEADER + "\n".join(rows).encode())
    assert (err.file, err.row, err.column) == ("f.zip:f.csv", 151, "quantity")
    assert "'abc'" in str(err) and "f.zip:f.csv" in str(err)


def test_bad_boolean_is_located() -> None:
    err = _err(b"1,1.5,2.0,1,1,1700000000000,true\n2,1.5,2.0,2,2,1700000000000,maybe\n")
    assert (err.row, err.column) == (2, "is_buyer_maker")


def test_short_row_is_wrong_column_count() -> None:
    err = _err(UM_AGG_HEADER + b"1,1.5,2.0,1,1,1700000000000,true\n2,1.5,2.0,2,2,1700000000000\n")
    assert err.row == 2 and "wrong column count" in str(err) and "found 6" in str(err)


def test_long_row_is_wrong_column_count() -> None:
    err = _err(
        b"1,1.5,2.0,1,1,1700000000000,true\n2,1.5,2.0,2,2,1700000000000,true,9\n3,1,1,3,3,1,true"
    )
    assert err.row == 2 and "found 8" in str(err)


def test_headerless_file_of_unknown_width() -> None:
    err = _err(b"1,1.5,2.0,1,1\n")
    assert err.row == 1 and "found 5" in str(err) and "7" in str(err)


def test_missing_header_column() -> None:
    data = b"agg_trade_id,price,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n1,1,1,1,1,true\n"
    err = _err(data)
    assert err.column == "quantity" and "missing column" in str(err)


def test_empty_required_value() -> None:
    err = _err(b"1,1.5,2.0,1,1,1700000000000,true\n2,,2.0,2,2,1700000000000,true\n")
    assert (err.row, err.column) == (2, "price") and "empty value" in str(err)


def test_bad_time_text() -> None:
    err = _err(
        b"timestamp,percentage,depth,notional\n2024-01-01 00:00:08,1,1,1\n2024-13-01 00:00:08,1,1,1\n",
        kind="bookDepth",
    )
    assert (err.row, err.column) == (2, "timestamp")


def test_zip_errors(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", {"x.csv": SPOT_AGG_US})
    assert parse_archive_zip(good, kind="aggTrades", market="spot").height == 2

    no_csv = _zip(tmp_path / "nocsv.zip", {"readme.txt": b"hi"})
    with pytest.raises(DataError, match="no CSV") as info:
        parse_archive_zip(no_csv, kind="aggTrades", market="spot")
    assert info.value.file == str(no_csv)

    truncated = tmp_path / "trunc.zip"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataError, match="corrupt or truncated") as info:
        parse_archive_zip(truncated, kind="aggTrades", market="spot")
    assert info.value.file == str(truncated)

    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(DataError, match="corrupt or truncated"):
        parse_archive_zip(garbage, kind="aggTrades", market="spot")

    # Flip bytes inside the compressed stream: CRC/zlib failure, not a crash.
    raw = bytearray(_zip(tmp_path / "big.zip", {"x.csv": SPOT_AGG_US * 500}).read_bytes())
    raw[60:90] = bytes(30)
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt or truncated"):
        parse_archive_zip(corrupt, kind="aggTrades", market="spot")


# --------------------------------------------------------------------------- properties


_trade_rows = st.lists(
    st.tuples(
        st.integers(0, 2**53),
        st.floats(1e-8, 1e7, allow_nan=False, allow_infinity=False),
        st.floats(1e-8, 1e6, allow_nan=False, allow_infinity=False),
        st.integers(0, 2**53),
        st.integers(MS_2025 - 10**11, MS_2025 + 10**11),
        st.booleans(),
        st.sampled_from(["true", "True", "TRUE", "false", "False", "FALSE"]),
    ),
    min_size=1,
    max_size=40,
)


@given(rows=_trade_rows, header=st.booleans(), micro=st.booleans())
@settings(max_examples=60, deadline=None)
def test_roundtrip_any_aggtrades(rows: list[tuple], header: bool, micro: bool) -> None:
    """Whatever the header/epoch-unit/boolean spelling, values come back exactly."""
    lines = []
    for agg, price, qty, first, ms, is_bm, _ in rows:
        t = ms * 1000 + 7 if micro else ms
        lines.append(
            f"{agg},{price!r},{qty!r},{first},{first + 1},{t},{'True' if is_bm else 'false'}"
        )
    data = (UM_AGG_HEADER if header else b"") + "\n".join(lines).encode()
    df = parse_archive_csv(data, kind="aggTrades", market="um", source="p")
    assert df.height == len(rows)
    assert df.get_column("trade_id").to_list() == [r[0] for r in rows]
    assert df.get_column("price").to_list() == [r[1] for r in rows]
    assert df.get_column("qty").to_list() == [r[2] for r in rows]
    assert df.get_column("last_trade_id").to_list() == [r[3] + 1 for r in rows]
    assert df.get_column("is_buyer_maker").to_list() == [r[5] for r in rows]
    expected_us = [r[4] * 1000 + (7 if micro else 0) for r in rows]
    got_us = df.get_column("ts").cast(pl.Int64).to_list()
    assert got_us == expected_us
    assert df.get_column("ts").dtype == TS


@given(flag=st.sampled_from(["true", "True", "TRUE", "false", "False", "FALSE"]))
@settings(max_examples=6, deadline=None)
def test_boolean_spellings(flag: str) -> None:
    df = parse_archive_csv(
        f"1,1.0,1.0,1,1,1700000000000,{flag},{flag}\n".encode(),
        kind="aggTrades", market="spot", source="b",
    )  # fmt: skip
    assert df.get_column("is_buyer_maker").to_list() == [flag.lower() == "true"]


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_coinm_aggtrades_zip(real_data_dir: Path) -> None:
    path = real_file(
        "binance-vision/data/futures/cm/monthly/aggTrades/BTCUSD_260327/BTCUSD_260327-aggTrades-2025-09.zip"
    )
    df = parse_archive_zip(path, kind="aggTrades", market="cm")
    assert df.height == 32959
    assert df.row(0) == (
        datetime(2025, 9, 26, 8, 11, 37, 571000, tzinfo=UTC),
        1,
        113498.1,
        6.0,
        None,
        False,
        1,
        1,
    )
    assert df.row(-1) == (
        datetime(2025, 9, 30, 23, 53, 56, 656000, tzinfo=UTC), 32959, 118371.2, 27.0, None, False,
        62643, 62643,
    )  # fmt: skip


@pytest.mark.realdata
def test_real_usdm_klines_zip(real_data_dir: Path) -> None:
    path = real_file(
        "binance-vision/data/futures/um/monthly/klines/DOTUSDT/1m/DOTUSDT-1m-2024-11.zip"
    )
    df = parse_archive_zip(path, kind="klines", market="um")
    assert df.height == 43200
    assert df.row(0) == (
        _ts(2024, 11, 1),
        3.958,
        3.959,
        3.956,
        3.958,
        45103.8,
        178487.4969,
        306,
        26031.0,
        103016.3016,
    )
    assert df.get_column("ts")[-1] == _ts(2024, 11, 30, 23, 59)
    diffs = df.get_column("ts").diff().drop_nulls().unique().to_list()
    assert [d.total_seconds() for d in diffs] == [60.0]


# --------------------------------------------------------------------------- speed


@pytest.mark.slow
def test_two_million_row_day_parses_fast() -> None:
    """The hot path: a busy spot aggTrades day (2M rows, us epochs, no header)."""
    n = 2_000_000
    rng = np.random.default_rng(7)
    frame = pl.DataFrame(
        {
            "a": np.arange(n, dtype=np.int64) + 3_000_000_000,
            "p": np.round(90_000 + rng.standard_normal(n).cumsum(), 2),
            "q": np.round(rng.exponential(0.05, n), 5),
            "f": np.arange(n, dtype=np.int64) * 2,
            "l": np.arange(n, dtype=np.int64) * 2 + 1,
            "t": MS_2025 * 1000 + np.sort(rng.integers(0, 86_400_000_000, n)),
            "m": np.where(rng.random(n) < 0.5, "True", "False"),
            "b": ["True"] * n,
        }
    )
    buf = io.BytesIO()
    frame.write_csv(buf, include_header=False)
    data = buf.getvalue()
    parse_archive_csv(
        data[:10_000].rsplit(b"\n", 1)[0], kind="aggTrades", market="spot", source="w"
    )
    t0 = time.perf_counter()
    df = parse_archive_csv(data, kind="aggTrades", market="spot", source="big")
    elapsed = time.perf_counter() - t0
    assert df.height == n
    assert df.get_column("ts").cast(pl.Int64)[0] == int(frame.get_column("t")[0])
    assert df.get_column("trade_id")[-1] == 3_000_000_000 + n - 1
    assert df.get_column("ts").cast(pl.Int64)[-1] == int(frame.get_column("t")[-1])
    # ~0.4 s on an idle core; generous bound for a shared CI machine.
    assert elapsed < 4.0, f"2M-row parse took {elapsed:.2f}s"
