"""Importers: detection, exact parsing on hand-built files, every real file family."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.data.formats.base import Source, format_interval, infer_interval, parse_time
from hydraquant.data.importers import FAMILIES, families_table, import_file
from hydraquant.data.schema import SCHEMAS, TS
from hydraquant.errors import DataError, HydraError
from tests.conftest import REPO_ROOT, real_file

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str, *, gz: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def one(path: Path, kind: str = "auto", symbol: str | None = None, **kw) -> pl.DataFrame:
    tables = import_file(path, kind=kind, symbol=symbol, **kw)
    assert len(tables) == 1
    return tables[0].frame


def _src() -> Source:
    return Source(Path("x.csv"), "x.csv", b"", "csv")


# --------------------------------------------------------------------------- time parsing


def test_epoch_units_detected_by_magnitude() -> None:
    expected = utc(2024, 1, 2, 3, 4, 5)
    s = int(expected.timestamp())
    frame = pl.DataFrame({"t": [s, s * 1_000, s * 1_000_000, s * 1_000_000_000]})
    out = parse_time(frame, "t", _src())
    assert out.dtype == TS
    assert out.to_list() == [expected] * 4


def test_epoch_switch_ms_to_us_mid_file() -> None:
    # Binance spot switched from ms to us on 2025-01-01: both must land right.
    frame = pl.DataFrame({"t": ["1735689599999", "1735689600000000"]})
    assert parse_time(frame, "t", _src()).to_list() == [utc(2024, 12, 31, 23, 59, 59, 999000), utc(2025, 1, 1)]


def test_iso_strings_with_offset_and_naive_in_tz() -> None:
    with_offset = pl.DataFrame({"t": ["2024-12-01 00:00:59.999000+01:00", "2024-07-01T00:00:00Z"]})
    assert parse_time(with_offset, "t", _src(), tz="Asia/Tokyo").to_list() == [
        utc(2024, 11, 30, 23, 0, 59, 999000),
        utc(2024, 7, 1),
    ]
    naive = pl.DataFrame({"t": ["2024-01-15 09:30:00", "2024-07-15 09:30:00"]})
    assert parse_time(naive, "t", _src(), tz="America/New_York").to_list() == [utc(2024, 1, 15, 14, 30), utc(2024, 7, 15, 13, 30)]
    assert parse_time(naive, "t", _src()).to_list() == [utc(2024, 1, 15, 9, 30), utc(2024, 7, 15, 9, 30)]


def test_unparseable_time_names_row_and_column() -> None:
    frame = pl.DataFrame({"when": ["2024-01-01 00:00:00", "2024-01-01 00:01:00", "yesterday"]})
    with pytest.raises(DataError) as err:
        parse_time(frame, "when", _src())
    assert (err.value.row, err.value.column) == (3, "when")
    assert "yesterday" in str(err.value)


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    st.sampled_from([("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)]),
)
def test_epoch_roundtrip_property(moment: datetime, unit: tuple[str, int]) -> None:
    moment = moment.replace(tzinfo=UTC, microsecond=0 if unit[0] == "s" else moment.microsecond // 1000 * 1000 if unit[0] == "ms" else moment.microsecond)
    us = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    value = us * unit[1] // 1_000_000
    assert parse_time(pl.DataFrame({"t": [value]}), "t", _src()).item() == moment


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from([60_000_000, 300_000_000, 3_600_000_000, 4 * 3_600_000_000, 86_400_000_000, 7 * 86_400_000_000, 8 * 3_600_000_000]),
    st.integers(min_value=5, max_value=60),
    st.integers(min_value=1, max_value=3),
)
def test_interval_is_modal_step_despite_gaps(step_us: int, n: int, gap: int) -> None:
    offsets = [i * step_us for i in range(n)]
    offsets = offsets[: n // 2] + [o + gap * step_us for o in offsets[n // 2 :]]  # one gap in the middle
    ts = pl.Series([utc(2024, 1, 1) + timedelta(microseconds=o) for o in offsets]).cast(TS)
    assert infer_interval(ts) == format_interval(step_us)


def test_format_interval_names() -> None:
    assert [format_interval(x) for x in (60_000_000, 3_600_000_000 * 4, 86_400_000_000, 7 * 86_400_000_000, 250_000)] == [
        "1m", "4h", "1d", "1w", "250ms",
    ]  # fmt: skip


# --------------------------------------------------------------------------- generic OHLCV, mapping, errors


def test_yahoo_style_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "SPY.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,472.16,473.67,470.49,472.65,466.0,123623700\n2024-01-03,470.43,471.19,468.17,468.79,462.2,103585900\n")
    [t] = import_file(path, kind="klines", symbol=None, tz="America/New_York")
    assert (t.family, t.symbol, t.interval, t.exchange) == ("generic-ohlcv", "SPY", "1d", "generic")
    assert t.frame.get_column("ts").to_list() == [utc(2024, 1, 2, 5), utc(2024, 1, 3, 5)]
    assert t.frame.get_column("close").to_list() == [472.65, 468.79]  # unadjusted close, not Adj Close
    assert t.frame.get_column("volume").to_list() == [123623700.0, 103585900.0]


def test_mt5_tab_export_uses_tick_volume_when_real_volume_is_zero(tmp_path: Path) -> None:
    text = (
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t00:00:00\t2062.90\t2064.10\t2061.50\t2063.00\t812\t0\t25\n"
        "2024.01.02\t00:15:00\t2063.00\t2065.30\t2062.80\t2064.90\t640\t0\t25\n"
    )
    [t] = import_file(write(tmp_path, "XAUUSD_M15.csv", text), kind="klines", symbol="XAUUSD", tz="Europe/Athens")
    assert t.interval == "15m"
    assert t.frame.get_column("ts").to_list() == [utc(2024, 1, 1, 22, 0), utc(2024, 1, 1, 22, 15)]
    assert t.frame.get_column("volume").to_list() == [812.0, 640.0]
    assert t.frame.get_column("high").to_list() == [2064.10, 2065.30]


def test_mapping_renames_odd_headers_before_detection(tmp_path: Path) -> None:
    path = write(tmp_path, "odd.csv", "when;o;h;l;c;qty\n1704067200;1;2;0.5;1.5;10\n1704067260;1.5;2.5;1;2;20\n")
    with pytest.raises(HydraError, match="unrecognised file"):
        import_file(path, kind="klines", symbol="X")
    mapping = {"when": "ts", "o": "open", "h": "high", "l": "low", "c": "close", "QTY": "volume"}
    frame = one(path, "klines", "X", mapping=mapping)
    assert frame.get_column("ts").to_list() == [utc(2024, 1, 1), utc(2024, 1, 1, 0, 1)]
    assert frame.get_column("close").to_list() == [1.5, 2.0]
    assert frame.columns == list(SCHEMAS["klines"].columns)


def test_generic_parquet(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD.parquet"
    pl.DataFrame({
        "Datetime": [datetime(2024, 3, 1, 9), datetime(2024, 3, 1, 10)],
        "Open": [1.08, 1.081], "High": [1.082, 1.083], "Low": [1.079, 1.08], "Close": [1.081, 1.082], "Volume": [100, 120],
    }).write_parquet(path)  # fmt: skip
    [t] = import_file(path, kind="klines", symbol=None, tz="Europe/London")
    assert (t.symbol, t.interval) == ("EURUSD", "1h")
    assert t.frame.get_column("ts").to_list() == [utc(2024, 3, 1, 9), utc(2024, 3, 1, 10)]


def test_text_in_numeric_column_names_file_row_column(tmp_path: Path) -> None:
    path = write(tmp_path, "BTCUSDT_1m.csv", "timestamp,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n1704067260000,1,2,abc,1.5,10\n")
    with pytest.raises(DataError) as err:
        import_file(path, kind="klines", symbol=None)
    assert (err.value.row, err.value.column) == (2, "low")
    assert str(path) in str(err.value) and "'abc'" in str(err.value)


def test_missing_required_column_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, "X.csv", "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n")
    with pytest.raises(DataError) as err:
        import_file(path, kind="klines", symbol=None)
    assert err.value.column == "volume" and "--map" in str(err.value)


def test_kind_mismatch_and_unknown_format_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "BTCUSDT_1h.csv", "timestamp,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,10\n")
    with pytest.raises(HydraError, match="yield klines, not funding"):
        import_file(path, kind="funding", symbol=None)
    with pytest.raises(HydraError, match="unknown format"):
        import_file(path, kind="klines", symbol=None, fmt="nope")
    garbage = write(tmp_path, "notes.txt", "hello,world\nfoo,bar\n")
    with pytest.raises(HydraError, match="unrecognised file"):
        import_file(garbage, kind="klines", symbol="X")


def test_close_time_family_derives_open_time(tmp_path: Path) -> None:
    text = (
        "open,high,low,close,volume,quote_volume,trades,close_datetime\n"
        "10,11,9,10.5,1,10.5,3,2024-12-01 00:14:59.999000+01:00\n"
        "10.5,12,10,11,2,22,4,2024-12-01 00:29:59.999000+01:00\n"
    )
    [t] = import_file(write(tmp_path, "BTCUSDT_15m.csv.gz", text, gz=True), kind="klines", symbol=None)
    assert (t.family, t.interval) == ("binance-klines-closetime-csv", "15m")
    assert t.frame.get_column("ts").to_list() == [utc(2024, 11, 30, 23, 0), utc(2024, 11, 30, 23, 15)]
    assert t.frame.get_column("trade_count").to_list() == [3, 4]


def test_ftx_volume_is_usd(tmp_path: Path) -> None:
    text = "timestamp,open,high,low,close,volume\n2021-12-31 23:01:00.000000,100,120,90,90,3000\n2021-12-31 23:02:00.000000,90,95,85,90,900\n"
    ftx = tmp_path / "ftx"
    ftx.mkdir()
    [t] = import_file(write(ftx, "btc-perp-1m.csv", text), kind="klines", symbol=None)
    assert (t.exchange, t.market, t.symbol) == ("ftx", "perp", "BTC-PERP")
    assert t.frame.get_column("quote_volume").to_list() == [3000.0, 900.0]
    assert t.frame.get_column("volume").to_list() == [pytest.approx(30.0), pytest.approx(10.0)]  # usd / hlc3


# --------------------------------------------------------------------------- trades, quotes, captures


def test_ws_capture_lines(tmp_path: Path) -> None:
    lines = [
        '1721347201291825027 {"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":7,"s":"BTCUSDT","b":"100.5","B":"2","a":"100.6","A":"3","T":1721347202812,"E":1721347202813}}',
        '1721347201292005428 {"stream":"btcusdt@trade","data":{"e":"trade","E":1721347202813,"T":1721347202812,"s":"BTCUSDT","t":11,"p":"100.6","q":"0.5","X":"MARKET","m":false}}',
        '1721347201302842343 {"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","b":[],"a":[]}}',
        '1721347201402842343 {"stream":"btcusdt@trade","data":{"e":"trade","E":1721347202900,"T":1721347202899,"s":"BTCUSDT","t":12,"p":"100.5","q":"1.25","X":"MARKET","m":true}}',
    ]
    usdm = tmp_path / "usdm"
    usdm.mkdir()
    path = write(usdm, "btcusdt_20240719.gz", "\n".join(lines) + "\n", gz=True)
    [t] = import_file(path, kind="trades", symbol=None)
    assert (t.family, t.symbol, t.market) == ("binance-ws-capture", "BTCUSDT", "um")
    f = t.frame
    assert f.get_column("ts").to_list() == [utc(2024, 7, 19, 0, 0, 2, 812000), utc(2024, 7, 19, 0, 0, 2, 899000)]
    assert f.select("trade_id", "price", "qty", "is_buyer_maker").rows() == [(11, 100.6, 0.5, False), (12, 100.5, 1.25, True)]
    [b] = import_file(path, kind="bookTicker", symbol=None)
    assert b.frame.select("update_id", "bid_price", "bid_qty", "ask_price", "ask_qty").rows() == [(7, 100.5, 2.0, 100.6, 3.0)]


def test_ccxt_unified_trades_json(tmp_path: Path) -> None:
    trades = [
        {"timestamp": 1570752011620, "symbol": "XRP/ETH", "id": "5", "side": "sell", "price": 0.5, "amount": 2.0, "cost": 1.0},
        {"timestamp": 1570752012620, "symbol": "XRP/ETH", "id": "6", "side": "buy", "price": 0.6, "amount": 1.0, "cost": 0.6},
    ]
    path = write(tmp_path, "XRP_ETH-trades.json", json.dumps(trades))
    [t] = import_file(path, kind="trades", symbol=None)
    assert (t.kind, t.symbol) == ("trades", "XRPETH")
    assert t.frame.select("trade_id", "price", "qty", "quote_qty", "is_buyer_maker").rows() == [(5, 0.5, 2.0, 1.0, True), (6, 0.6, 1.0, 0.6, False)]


def test_hyperliquid_aggressor_and_mirror_dedup(tmp_path: Path) -> None:
    text = (
        "time,user,coin,side,px,sz,crossed\n"
        "2023-03-01T00:00:00Z,0xa,ETH,Bid,10,1,true\n"   # taker bought
        "2023-03-01T00:00:00Z,0xb,ETH,Ask,10,1,false\n"  # its mirrored maker row -> dropped
        "2023-03-01T00:00:05Z,0xc,ETH,Bid,9,2,false\n"   # maker bid filled by an MM seller: aggressor sold
        "2023-03-01T00:00:06Z,0xd,BTC,Ask,20,3,true\n"   # taker sold
    )
    tables = import_file(write(tmp_path, "non_mm_trades.csv", text), kind="trades", symbol=None)
    by = {t.symbol: t.frame for t in tables}
    assert sorted(by) == ["BTC", "ETH"]
    assert by["ETH"].select("price", "qty", "is_buyer_maker").rows() == [(10.0, 1.0, False), (9.0, 2.0, True)]
    assert by["BTC"].select("price", "is_buyer_maker").rows() == [(20.0, True)]
    assert by["ETH"].get_column("trade_id").to_list() == [1, 3]  # source row numbers (no exchange ids)
    [eth] = import_file(write(tmp_path, "non_mm_trades2.csv", text), kind="trades", symbol="eth")
    assert eth.symbol == "ETH" and eth.frame.height == 2


def test_lean_minute_trade_zip_dst_and_scale(tmp_path: Path) -> None:
    folder = tmp_path / "minute" / "spy"
    folder.mkdir(parents=True)
    for day, first_utc in (("20240110", utc(2024, 1, 10, 14, 30)), ("20240710", utc(2024, 7, 10, 13, 30))):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(f"{day}_spy_minute_trade.csv", "34200000,4700000,4701000,4699000,4700500,1200\n34260000,4700500,4702000,4700000,4701000,800\n")
        path = folder / f"{day}_trade.zip"
        path.write_bytes(buf.getvalue())
        [t] = import_file(path, kind="klines", symbol=None)
        assert (t.symbol, t.interval, t.exchange, t.market) == ("SPY", "1m", "lean", "equity")
        assert t.frame.get_column("ts").to_list() == [first_utc, first_utc + timedelta(minutes=1)]
        assert t.frame.get_column("open").to_list() == [470.0, 470.05]
        with pytest.raises(HydraError, match="holds klines, not bookTicker"):
            import_file(path, kind="bookTicker", symbol=None)


# --------------------------------------------------------------------------- registry


def test_families_are_described_and_documented() -> None:
    ids = [f.id for f in FAMILIES]
    assert len(ids) == len(set(ids))
    for family in FAMILIES:
        assert family.description and family.detection
        assert set(family.kinds) <= set(SCHEMAS), family.id
        assert (family.parse is None) == (family.refusal is not None), family.id
    assert families_table().height == len(FAMILIES)
    doc = (REPO_ROOT / "docs" / "data-families.md").read_text()
    missing = [i for i in ids if f"`{i}`" not in doc]
    assert not missing, f"docs/data-families.md lacks {missing}"


# --------------------------------------------------------------------------- real files

CCXT = "binance-spot-klines-ccxt/BTCUSDT/"


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("rel", "family", "interval", "rows", "first", "last", "first_close"),
    [
        (CCXT + "BTCUSDT_1d_2020-04-05_2024-12-31.csv.gz", "ccxt-ohlcv-csv", "1d", 1732, utc(2020, 4, 5), utc(2024, 12, 31), 6772.78),
        (CCXT + "BTCUSDT_1d_2020-05-31_2024-12-31.csv.gz", "ccxt-ohlcv-csv", "1d", 1676, utc(2020, 5, 31), utc(2024, 12, 31), 9446.43),
        (CCXT + "BTCUSDT_1w_2020-04-06_2024-12-30.csv.gz", "ccxt-ohlcv-csv", "1w", 248, utc(2020, 4, 6), utc(2024, 12, 30), None),
        (CCXT + "BTCUSDT_4h_2020-04-05_2024-12-31.csv.gz", "ccxt-ohlcv-csv", "4h", 10392, utc(2020, 4, 5), utc(2024, 12, 31, 20), None),
        (CCXT + "BTCUSDT_5m_2021-03-19_2021-04-22.csv.gz", "ccxt-ohlcv-csv", "5m", 10000, utc(2021, 3, 19, 3), utc(2021, 4, 22, 22, 45), None),
        (CCXT + "BTCUSDT_1m_2021-03-26_2021-04-30.csv.gz", "ccxt-ohlcv-csv", "1m", 50000, utc(2021, 3, 26, 3), utc(2021, 4, 30, 3, 33), 51827.72),
        (CCXT + "BTCUSDT_1m_2024-11-30_2024-12-29_with_trades.csv.gz", "binance-klines-closetime-csv", "1m", 41761, utc(2024, 11, 30, 23), utc(2024, 12, 29, 23), 96440.0),
        (CCXT + "BTCUSDT_15m_2023-12-31_2024-12-29_with_trades.csv.gz", "binance-klines-closetime-csv", "15m", 34945, utc(2023, 12, 31, 23), utc(2024, 12, 29, 23), 42230.13),
        ("binance-um-futures-klines-ccxt/LTCUSDT/LTCUSDT_1h_2020-01-09_2024-12-31.csv.gz", "ccxt-ohlcv-csv", "1h", 43648, utc(2020, 1, 9, 8), utc(2024, 12, 31, 23), 45.22),
        ("binance-um-futures-rest/BTCUSDT/BTCUSDT-klines-4h-REST_2024-02-28_2024-12-31.csv.gz", "binance-rest-klines-csv", "4h", 1843, utc(2024, 2, 28, 20), utc(2024, 12, 31, 20), 62487.9),
        ("binance-um-futures-rest/BTCUSDT/BTCUSDT-klines-1d-REST_2024-01-10_2024-12-31.csv.gz", "binance-rest-klines-csv", "1d", 357, utc(2024, 1, 10), utc(2024, 12, 31), 46662.9),
        ("binance-us-spot-klines-1m/BTCUSD_1m_20230301_20230321.csv.gz", "binanceus-klines-csv", "1m", 30240, utc(2023, 3, 1), utc(2023, 3, 21, 23, 59), 23143.72),
        ("nautilus-test-data/ftx-btc-perp-1m/btc-perp-20211231-20220201_1m.csv.gz", "ftx-ohlcv-csv", "1m", 45031, utc(2021, 12, 31, 23, 1), utc(2022, 2, 1, 5, 31), 46377.0),
        ("lean-equity-bars/daily/spy/spy.zip", "lean-bars", "1d", 5849, utc(1998, 1, 2, 5), utc(2021, 3, 31, 4), 97.36),
        ("lean-equity-bars/hour/spy/spy.zip", "lean-bars", "1h", 40832, utc(1998, 1, 2, 14), utc(2021, 3, 31, 19), 97.03),
        ("lean-equity-bars/minute/spy/20131004_trade.zip", "lean-minute", "1m", 711, utc(2013, 10, 4, 8, 6), utc(2013, 10, 4, 23, 59), 167.65),
    ],
)
def test_real_kline_families(rel, family, interval, rows, first, last, first_close) -> None:
    [t] = import_file(real_file(rel), kind="klines", symbol=None)
    f = t.frame
    assert (t.family, t.interval, f.height) == (family, interval, rows)
    assert (f.get_column("ts")[0], f.get_column("ts")[-1]) == (first, last)
    if first_close is not None:
        assert f.get_column("close")[0] == pytest.approx(first_close)
    assert f.schema == pl.Schema(SCHEMAS["klines"].columns)


@pytest.mark.realdata
def test_real_kline_metadata() -> None:
    [us] = import_file(real_file("binance-us-spot-klines-1m/BTCUSDT_1m_20230301_20230321.csv.gz"), kind="klines", symbol=None)
    assert (us.exchange, us.market, us.symbol) == ("binanceus", "spot", "BTCUSDT")
    [fut] = import_file(real_file("binance-um-futures-klines-ccxt/LTCUSDT/LTCUSDT_1d_2020-01-09_2024-12-31.csv.gz"), kind="klines", symbol=None)
    assert (fut.exchange, fut.market, fut.symbol) == ("binance", "um", "LTCUSDT")
    [rest] = import_file(real_file("binance-um-futures-rest/BTCUSDT/BTCUSDT-klines-1d-REST_2024-01-10_2024-12-31.csv.gz"), kind="klines", symbol=None)
    assert rest.frame.row(0, named=True)["trade_count"] == 7930762
    assert rest.frame.row(0, named=True)["quote_volume"] == pytest.approx(30628280360.85305)
    with pytest.raises(HydraError, match="metadata"):
        import_file(real_file("binance-us-spot-klines-1m/metadata_range_1m_20230301_20230321.csv"), kind="klines", symbol=None)


@pytest.mark.realdata
def test_real_lean_quotes_to_bookticker() -> None:
    [t] = import_file(real_file("lean-equity-bars/minute/spy/20131004_quote.zip"), kind="bookTicker", symbol=None)
    f = t.frame
    assert (t.kind, t.symbol, f.height) == ("bookTicker", "SPY", 855)
    # first row: bar 04:00 ET (08:00 UTC), closing quote stamped at 08:01 UTC
    assert f.row(0) == (utc(2013, 10, 4, 8, 1), None, 167.56, 20000.0, 167.6, 20000.0)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("rel", "family", "rows", "first", "last", "first_rate", "exchange"),
    [
        ("binance-um-futures-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2026-01-12_2026-03-20.csv.gz", "binance-rest-funding-csv", 200, utc(2026, 1, 12, 16), utc(2026, 3, 20, 0, 0, 0, 2000), 0.0000465, "binance"),
        ("binance-um-futures-funding-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2019-09-10_2024-12-31.csv.gz", "binance-funding-history-csv", 5819, utc(2019, 9, 10, 8), utc(2024, 12, 31, 16), 0.0001, "binance"),
        ("binance-um-futures-funding-rest/ACEUSDT/ACEUSDT-fundingRate-ccxt_2024-04-05_2024-12-31.csv.gz", "ccxt-funding-csv", 1624, utc(2024, 4, 5, 8), utc(2024, 12, 31, 20), 0.00005, "binance"),
        ("freqtrade-binance-futures/freqtrade-testdata/XRP_USDT_USDT-8h-funding_rate.feather", "freqtrade-feather", 91, utc(2021, 11, 18, 0, 0, 0, 17000), utc(2021, 12, 18, 0, 0, 0, 14000), 0.0001, "binance"),
        ("coinglass-btc-derivatives/coinglass_funding_1d_2020-03-31_2024-12-31.csv.gz", "coinglass-csv", 1737, utc(2020, 4, 1), utc(2025, 1, 1), -0.0002801456, "coinglass"),
    ],
)
def test_real_funding_families(rel, family, rows, first, last, first_rate, exchange) -> None:
    [t] = import_file(real_file(rel), kind="funding", symbol=None)
    f = t.frame
    assert (t.family, t.kind, t.interval, t.exchange, f.height) == (family, "funding", None, exchange, rows)
    assert (f.get_column("ts")[0], f.get_column("ts")[-1]) == (first, last)
    assert f.get_column("funding_rate")[0] == pytest.approx(first_rate)


@pytest.mark.realdata
def test_real_funding_history_mark_price_and_symbols() -> None:
    [t] = import_file(real_file("binance-um-futures-funding-rest/BTCUSDT/BTCUSDT-fundingRate-REST_2019-09-10_2024-12-31.csv.gz"), kind="funding", symbol=None)
    assert t.symbol == "BTCUSDT"
    assert t.frame.get_column("mark_price")[0] is None
    assert t.frame.get_column("mark_price")[-1] == pytest.approx(95389.4)
    [ft] = import_file(real_file("freqtrade-binance-futures/cyft_trader/BTC_USDT_USDT-8h-funding_rate.feather"), kind="funding", symbol=None)
    assert (ft.symbol, ft.market, ft.frame.height) == ("BTCUSDT", "um", 1498)


@pytest.mark.realdata
def test_real_freqtrade_mark_klines() -> None:
    [t] = import_file(real_file("freqtrade-binance-futures/cyft_trader/BTC_USDT_USDT-8h-mark.feather"), kind="auto", symbol=None)
    assert (t.kind, t.interval, t.symbol, t.frame.height) == ("markPriceKlines", "8h", "BTCUSDT", 1498)
    assert t.frame.row(0, named=True)["open"] == 16537.6
    assert t.frame.get_column("volume").null_count() == 1498
    with pytest.raises(HydraError, match="holds markPriceKlines, not klines"):
        import_file(real_file("freqtrade-binance-futures/cyft_trader/BTC_USDT_USDT-8h-mark.feather"), kind="klines", symbol=None)


@pytest.mark.realdata
def test_real_open_interest_and_coinglass() -> None:
    [oi] = import_file(real_file("binance-um-futures-rest/BTCUSDT/BTCUSDT-openInterestHist-4h-REST_2026-02-20_2026-03-20.csv.gz"), kind="open_interest", symbol=None)
    assert (oi.family, oi.symbol, oi.frame.height) == ("binance-rest-oi-csv", "BTCUSDT", 168)
    assert oi.frame.row(0)[:3] == (utc(2026, 2, 20, 4), 80485.615, pytest.approx(5419496040.188065))
    [cg_oi] = import_file(real_file("coinglass-btc-derivatives/coinglass_oi_1d_2020-02-27_2024-12-31.csv.gz"), kind="open_interest", symbol=None)
    assert cg_oi.frame.get_column("open_interest").null_count() == cg_oi.frame.height  # USD value only
    assert cg_oi.frame.get_column("open_interest_value").null_count() == 0
    assert cg_oi.frame.row(0, named=True)["ts"] == utc(2020, 2, 28)  # stamped at bar close
    [top] = import_file(real_file("coinglass-btc-derivatives/coinglass_top_ls_1d_2020-05-16_2024-12-31.csv.gz"), kind="open_interest", symbol=None)
    assert top.frame.row(0, named=True)["toptrader_position_long_short_ratio"] == 1.14
    for name in ("coinglass_cvd_1d_2013-12-09_2024-12-31.csv.gz", "coinglass_basis_1d_2023-07-10_2024-12-31.csv.gz", "coinglass_taker_volume_4h_2025-10-06_2026-01-31.csv.gz"):
        with pytest.raises(HydraError, match="no lake kind"):
            import_file(real_file(f"coinglass-btc-derivatives/{name}"), kind="auto", symbol=None)
    [liq] = import_file(real_file("coinglass-btc-derivatives/coinglass_liquidation_4h_2025-10-06_2026-01-31.csv.gz"), kind="liquidations", symbol=None)
    assert liq.frame.height == 2 * 705
    crash = liq.frame.filter(pl.col("ts") == utc(2025, 10, 11, 0)).get_column("notional").sum()  # bar 10-10 20:00 ends at 00:00
    assert crash > 300e6


@pytest.mark.realdata
def test_real_ws_capture_equals_derived_csvs() -> None:
    raw = real_file("binance-ws-captures/usdm/BTCUSDT/btcusdt_20240719.gz")
    folder = "binance-ws-captures/usdm/BTCUSDT/derived/"
    [trades] = import_file(raw, kind="trades", symbol=None)
    [derived] = import_file(real_file(folder + "BTCUSDT-trades-20240719T000000Z-wscapture.csv.gz"), kind="trades", symbol=None)
    cols = ["ts", "trade_id", "price", "qty", "is_buyer_maker"]
    assert trades.frame.height == derived.frame.height == 9727
    assert trades.frame.select(cols).equals(derived.frame.select(cols))
    assert derived.frame.row(0, named=True)["quote_qty"] == pytest.approx(19827.6)
    [book] = import_file(raw, kind="bookTicker", symbol=None)
    [dbook] = import_file(real_file(folder + "BTCUSDT-bookTicker-20240719T000000Z-wscapture.csv.gz"), kind="bookTicker", symbol=None)
    assert book.frame.height == 45147
    assert book.frame.equals(dbook.frame)


@pytest.mark.realdata
def test_real_aggtrades_csv_and_ccxt_json_agree() -> None:
    [csv] = import_file(real_file("binance-spot-aggtrades-rest/XRPETH/XRPETH-aggTrades-REST_2019-10-11_2019-10-13.csv.gz"), kind="trades", symbol=None)
    [js] = import_file(real_file("binance-spot-aggtrades-rest/XRPETH/XRP_OLD-trades.json.gz"), kind="aggTrades", symbol=None)
    assert (csv.kind, js.kind, csv.symbol, js.symbol) == ("aggTrades", "aggTrades", "XRPETH", "XRPETH")
    assert csv.frame.height == js.frame.height == 12477
    assert csv.frame.equals(js.frame)
    assert csv.frame.row(0) == (utc(2019, 10, 11, 0, 0, 11, 620000), 13519807, 0.00141342, 23.0, None, True, 15373518, 15373518)
    assert csv.frame.get_column("trade_id")[-1] == 13532283


@pytest.mark.realdata
def test_real_hyperliquid() -> None:
    path = real_file("hyperliquid-official-2023/non_mm_trades.csv.gz")
    tables = import_file(path, kind="trades", symbol=None)
    assert {t.exchange for t in tables} == {"hyperliquid"} and len(tables) == 14
    raw_rows = 35691
    assert raw_rows - 1000 < sum(t.frame.height for t in tables) < raw_rows  # mirrored maker rows dropped
    [eth] = import_file(path, kind="trades", symbol="ETH")
    assert eth.frame.row(0)[:6] == (utc(2023, 2, 27, 15, 2, 26), 1, 1655.5, 0.0452, None, True)
    [liq] = import_file(real_file("hyperliquid-official-2023/liquidations.csv.gz"), kind="liquidations", symbol=None)
    assert (liq.symbol, liq.frame.height) == ("ALL", 62)
    assert liq.frame.row(0) == (utc(2023, 2, 28, 21, 10, 23), None, None, None, 356.80015)


@pytest.mark.realdata
def test_real_nautilus_and_tardis() -> None:
    [tr] = import_file(real_file("nautilus-test-data/binance-spot-trades-sample/btcusdt-trades.parquet"), kind="trades", symbol=None)
    assert (tr.symbol, tr.market, tr.frame.height) == ("BTCUSDT", "spot", 2001)
    assert tr.frame.row(0)[:6] == (utc(2021, 1, 8, 0, 0, 0, 278000), 553287559, 39432.48, 0.000263, None, True)
    [q] = import_file(real_file("nautilus-test-data/binance-spot-quotes-sample/btcusdt-quotes.parquet"), kind="bookTicker", symbol=None)
    assert (q.symbol, q.frame.height) == ("BTCUSDT", 451)
    assert q.frame.row(0) == (utc(2021, 1, 8, 0, 0, 1, 76000), 1, 39432.99, 0.0031, 39433.62, 0.066851)
    [bk] = import_file(real_file("nautilus-test-data/tardis-binance-futures-book-snapshots/binance-futures_book_snapshot_5_BTCUSDT.csv.gz"), kind="bookTicker", symbol=None)
    assert (bk.exchange, bk.market, bk.symbol, bk.frame.height) == ("binance", "um", "BTCUSDT", 10)
    assert bk.frame.row(0) == (utc(2020, 9, 1, 0, 0, 3, 696000), 1, 11657.07, 10.896, 11657.08, 1.714)


def _archive_parser_present() -> bool:
    try:
        from hydraquant.data.binance_archive import parse_archive_csv  # noqa: F401
    except ImportError:
        return False
    return True


needs_archive = pytest.mark.skipif(not _archive_parser_present(), reason="hydraquant.data.binance_archive.parse_archive_csv not available")


@needs_archive
@pytest.mark.realdata
def test_real_archive_files_delegate() -> None:
    [ada] = import_file(real_file("nautilus-test-data/binance-spot-klines-1m-archive-format/ADABTC-1m-2021-11-27.csv"), kind="klines", symbol=None)
    assert (ada.family, ada.symbol, ada.interval, ada.market, ada.frame.height) == ("binance-archive", "ADABTC", "1m", "spot", 10)
    assert ada.frame.row(0, named=True)["close"] == 0.00002854
    assert ada.frame.get_column("ts")[-1] == utc(2021, 11, 27, 0, 9)
    [dot] = import_file(real_file("binance-vision/data/futures/um/monthly/klines/DOTUSDT/1m/DOTUSDT-1m-2024-11.zip"), kind="klines", symbol=None)
    assert (dot.symbol, dot.market, dot.interval, dot.frame.height) == ("DOTUSDT", "um", "1m", 43200)
    [cm] = import_file(real_file("binance-vision/data/futures/cm/monthly/aggTrades/BTCUSD_260327/BTCUSD_260327-aggTrades-2025-09.zip"), kind="trades", symbol=None)
    assert (cm.kind, cm.market, cm.symbol, cm.frame.height) == ("aggTrades", "cm", "BTCUSD_260327", 32959)
    assert cm.frame.get_column("ts")[0] == utc(2025, 9, 26, 8, 11, 37, 571000)


@pytest.mark.realdata
def test_real_id_less_sources_pass_validation() -> None:
    """Sources without exchange ids must not collapse distinct events (lake key) nor fail validate."""
    from hydraquant.data.validate import validate

    for rel, kind in (
        ("hyperliquid-official-2023/non_mm_trades.csv.gz", "trades"),
        ("nautilus-test-data/binance-spot-quotes-sample/btcusdt-quotes.parquet", "bookTicker"),
        ("coinglass-btc-derivatives/coinglass_liquidation_4h_2025-10-06_2026-01-31.csv.gz", "liquidations"),
    ):
        for t in import_file(real_file(rel), kind=kind, symbol=None):
            report = validate(t.frame, t.kind, source=t.source, interval=t.interval)
            assert report.rows == t.frame.height
