"""Streamed archive ingest: compiled parser, chunk borders, file-global rows, atomicity."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from hydraquant.data import csv_nb
from hydraquant.data.binance_archive import parse_archive_csv, parse_archive_zip
from hydraquant.data.ingest import IngestItem, ingest, ingest_archive
from hydraquant.data.lake import Lake
from hydraquant.data.stream import inflate_lines, iter_archive_frames
from hydraquant.errors import DataError, LakeError
from tests.conftest import real_file

HEADER = b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
T0 = 1709251200000  # 2024-03-01 00:00:00 UTC in ms


def _rows(n: int, *, t0: int = T0) -> list[str]:
    return [
        f"{i + 1},{42000 + i % 7}.5,0.0{i % 9 + 1},{2 * i},{2 * i + 1},{t0 + 10 * i},{'true' if i % 3 else 'false'}"
        for i in range(n)
    ]


def _zip(path: Path, body: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.stem + ".csv", body)
    return path


def _line_len(rows: list[str]) -> int:
    return len(rows[0]) + 1


# --------------------------------------------------------------------------- compiled parser


def test_numeric_parser_exact_values() -> None:
    buf = np.frombuffer(b"7,1.25,true,x\n-3,0.1,FALSE,y\r\n12,5,True,\n", dtype=np.uint8)
    kinds = np.array([csv_nb.INT, csv_nb.FLOAT, csv_nb.BOOL, csv_nb.SKIP], dtype=np.int8)
    parsed, status, ints, floats, bools, slow = csv_nb.parse_numeric_csv(buf, kinds, 3)
    assert (parsed, status, slow.shape[0]) == (3, csv_nb.OK, 0)
    assert ints[0].tolist() == [7, -3, 12]
    assert floats[0].tolist() == [1.25, 0.1, 5.0]
    assert bools[0].tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("line", "bad_row"),
    [
        (b"1,2.0,true\n2,,true\n", 1),  # empty field
        (b"1,2.0,true\n2,2.0,maybe\n", 1),  # bad boolean
        (b"1,2.0\n", 0),  # short row
        (b"1,2.0,true,9\n", 0),  # long row
        (b'1,"2.0",true\n', 0),  # quotes
        (b"1,nan,true\n", 0),  # not a number the fast path knows
    ],
)
def test_numeric_parser_declines_what_it_does_not_handle(line: bytes, bad_row: int) -> None:
    kinds = np.array([csv_nb.INT, csv_nb.FLOAT, csv_nb.BOOL], dtype=np.int8)
    rows = line.count(b"\n")
    parsed, status, *_ = csv_nb.parse_numeric_csv(np.frombuffer(line, dtype=np.uint8), kinds, rows)
    assert status != csv_nb.OK and parsed == bad_row


@given(
    st.lists(
        st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=50,
    )
)
@settings(max_examples=80, deadline=None)
def test_floats_are_bit_identical_to_python(values: list[float]) -> None:
    """Fast path (Clinger) or exact re-parse: every float equals Python's correctly rounded one."""
    text = (
        "".join(f"{v!r}\n" for v in values).encode()
        + b"0.1000000000000000055511151231257827\n123456789.123456789\n"
    )
    buf = np.frombuffer(text, dtype=np.uint8)
    kinds = np.array([csv_nb.FLOAT], dtype=np.int8)
    n = len(values) + 2
    parsed, status, _, floats, _, slow = csv_nb.parse_numeric_csv(buf, kinds, n)
    assert status == csv_nb.OK and parsed == n
    assert csv_nb.fix_slow_floats(buf, floats, slow)
    assert floats[0].tolist() == [
        *values,
        0.1000000000000000055511151231257827,
        123456789.123456789,
    ]


def test_fast_and_polars_paths_agree_with_nulls_fallback() -> None:
    """A layout the compiled parser declines (empty optional field) still parses, via polars."""
    row = b"1700000000000,1.0,2.0,0.5,1.5,10.0,1700000059999,20.0,5,4.0,8.0,0\n"
    clean = parse_archive_csv(row * 3, kind="klines", market="um", source="k")
    holed = parse_archive_csv(
        row.replace(b",20.0,", b",,") * 3, kind="klines", market="um", source="k"
    )
    assert clean.get_column("quote_volume").to_list() == [20.0] * 3
    assert holed.get_column("quote_volume").null_count() == 3
    assert_frame_equal(clean.drop("quote_volume"), holed.drop("quote_volume"))


# --------------------------------------------------------------------------- chunking


def test_inflate_lines_cuts_on_line_breaks_and_checks_crc(tmp_path: Path) -> None:
    body = HEADER + "\n".join(_rows(3000)).encode() + b"\n"
    path = _zip(tmp_path / "a.zip", body)
    info = zipfile.ZipFile(path).infolist()[0]
    chunks = list(inflate_lines(path, info, chunk_bytes=4096))
    assert len(chunks) > 10 and b"".join(chunks) == body
    assert all(c.endswith(b"\n") for c in chunks)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("chunk", [1 << 10, 4 << 10, 1 << 20])
def test_streamed_frames_equal_one_shot(tmp_path: Path, chunk: int, workers: int) -> None:
    rows = _rows(2000)
    path = _zip(tmp_path / "a.zip", HEADER + "\n".join(rows).encode())
    streamed = list(iter_archive_frames(path, kind="aggTrades", market="um", chunk_bytes=chunk, workers=workers))
    offsets = [off for _, off in streamed]
    assert offsets == list(np.cumsum([0] + [f.height for f, _ in streamed[:-1]]))
    whole = pl.concat([f for f, _ in streamed])
    assert_frame_equal(whole, parse_archive_zip(path, kind="aggTrades", market="um"))


def _error_at(tmp_path: Path, rows: list[str], chunk: int, workers: int | None = None) -> DataError:
    path = _zip(tmp_path / "bad.zip", HEADER + "\n".join(rows).encode())
    lake = Lake(tmp_path / "lake")
    with pytest.raises(DataError) as info:
        ingest_archive(
            lake, path, kind="aggTrades", market="um", symbol="BTCUSDT", chunk_bytes=chunk, workers=workers
        )
    assert not any((tmp_path / "lake").rglob("*.parquet")) and not any(
        (tmp_path / "lake").rglob("*.tmp")
    )
    return info.value


@pytest.mark.parametrize("workers", [1, 4])
def test_parse_error_row_is_file_global(tmp_path: Path, workers: int) -> None:
    """Chunks parsed out of order on a pool still report the row counted from the file's start."""
    rows = _rows(3000)
    rows[2500] = rows[2500].replace(".5,", ".5x,", 1)
    err = _error_at(tmp_path, rows, chunk=2048, workers=workers)
    assert (err.row, err.column) == (2501, "price")


def test_backwards_time_exactly_at_a_chunk_border(tmp_path: Path) -> None:
    rows = _rows(3000)
    chunk = 2048
    per_chunk = -(-chunk // _line_len(rows))  # lines in the first chunk
    border = per_chunk  # first row of the second chunk (0-based)
    frames = list(
        iter_archive_frames(
            _zip(tmp_path / "ok.zip", HEADER + "\n".join(rows).encode()),
            kind="aggTrades",
            market="um",
            chunk_bytes=chunk,
        )
    )
    border = frames[1][1]
    fields = rows[border].split(",")
    fields[5] = str(T0 + 10 * (border - 1) - 1)  # 1 ms before the previous chunk's last row
    rows[border] = ",".join(fields)
    err = _error_at(tmp_path, rows, chunk)
    assert (err.row, err.column) == (border + 1, "ts") and "backwards" in str(err)


def test_duplicate_id_across_a_chunk_border(tmp_path: Path) -> None:
    rows = _rows(3000)
    chunk = 2048
    frames = list(
        iter_archive_frames(
            _zip(tmp_path / "ok.zip", HEADER + "\n".join(rows).encode()),
            kind="aggTrades",
            market="um",
            chunk_bytes=chunk,
        )
    )
    border = frames[1][1]
    fields = rows[border].split(",")
    fields[0] = rows[border - 1].split(",")[0]  # same aggregate id as the row before the border
    rows[border] = ",".join(fields)
    err = _error_at(tmp_path, rows, chunk)
    assert (err.row, err.column) == (border + 1, "trade_id") and "duplicated" in str(err)


def test_duplicate_id_far_apart_in_non_monotone_ids(tmp_path: Path) -> None:
    """Ids not increasing: uniqueness is checked over the whole staged file before commit."""
    rows = _rows(3000)
    ids = list(range(1, 3001))
    ids[10], ids[11] = ids[11], ids[10]  # non-monotone but unique so far
    ids[2900] = ids[5]  # duplicates a row many chunks earlier
    rows = [",".join([str(i), *r.split(",")[1:]]) for i, r in zip(ids, rows, strict=True)]
    err = _error_at(tmp_path, rows, chunk=2048)
    assert (err.row, err.column) == (2901, "trade_id")


def test_corrupt_tail_leaves_lake_untouched(tmp_path: Path) -> None:
    body = HEADER + "\n".join(_rows(20000)).encode()
    raw = bytearray(_zip(tmp_path / "a.zip", body).read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 40] = bytes(40)
    (tmp_path / "c.zip").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupt or truncated"):
        ingest_archive(
            Lake(tmp_path / "lake"),
            tmp_path / "c.zip",
            kind="aggTrades",
            market="um",
            symbol="X",
            chunk_bytes=4096,
        )
    assert not any((tmp_path / "lake").rglob("*.*"))


def test_reimport_is_idempotent_and_merges(tmp_path: Path) -> None:
    rows = _rows(3000)
    first = _zip(tmp_path / "a.zip", HEADER + "\n".join(rows[:2000]).encode())
    second = _zip(tmp_path / "b.zip", HEADER + "\n".join(rows[1000:]).encode())
    lake = Lake(tmp_path / "lake")
    assert (
        ingest_archive(
            lake, first, kind="aggTrades", market="um", symbol="X", chunk_bytes=4096
        ).rows_added
        == 2000
    )
    assert (
        ingest_archive(
            lake, second, kind="aggTrades", market="um", symbol="X", chunk_bytes=4096
        ).rows_added
        == 1000
    )
    assert ingest_archive(lake, second, kind="aggTrades", market="um", symbol="X").rows_added == 0
    stored = lake.scan("aggTrades", "X").collect()
    assert stored.get_column("trade_id").to_list() == list(range(1, 3001))


def test_month_file_splits_into_day_partitions(tmp_path: Path) -> None:
    rows = _rows(3000, t0=T0 - 15_000)  # 15 s before midnight: two days
    path = _zip(tmp_path / "m.zip", HEADER + "\n".join(rows).encode())
    result = ingest_archive(
        Lake(tmp_path / "lake"), path, kind="aggTrades", market="um", symbol="X", chunk_bytes=2048
    )
    assert [p.name for p in result.writes[0].files] == ["2024-02-29.parquet", "2024-03-01.parquet"]
    back = pl.concat([pl.read_parquet(p) for p in result.writes[0].files])
    assert_frame_equal(back, parse_archive_zip(path, kind="aggTrades", market="um"))


def test_lake_compression_is_configurable(tmp_path: Path) -> None:
    assert Lake(tmp_path).codec("aggTrades") == "zstd"
    assert Lake(tmp_path, compression="lz4").codec("klines") == "lz4"
    assert Lake(tmp_path, compression={"aggTrades": "snappy"}).codec("aggTrades") == "snappy"
    with pytest.raises(LakeError, match="unknown Parquet compression"):
        Lake(tmp_path, compression="zip")
    rows = _rows(500)
    path = _zip(tmp_path / "a.zip", HEADER + "\n".join(rows).encode())
    result = ingest_archive(
        Lake(tmp_path / "l", compression="snappy"), path, kind="aggTrades", market="um", symbol="X"
    )
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(result.writes[0].files[0]).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_files_streamed_equal_one_shot(real_data_dir: Path, tmp_path: Path) -> None:
    """Every real archive zip: streamed lake contents == one-shot ingest, in small chunks."""
    zips = sorted((real_data_dir / "binance-vision").rglob("*.zip"))[:8]
    zips.append(
        real_file(
            "binance-vision/data/futures/cm/monthly/aggTrades/BTCUSD_260327/BTCUSD_260327-aggTrades-2025-09.zip"
        )
    )
    for path in dict.fromkeys(zips):
        kind = "aggTrades" if "aggTrades" in path.name else "klines"
        market = "cm" if "/cm/" in str(path) else "um"
        interval = None if kind == "aggTrades" else "1m"
        a, b = Lake(tmp_path / f"{path.stem}-a"), Lake(tmp_path / f"{path.stem}-b")
        streamed = ingest_archive(
            a, path, kind=kind, market=market, symbol="S", interval=interval, chunk_bytes=64 << 10
        )
        frame = parse_archive_zip(path, kind=kind, market=market)
        one = ingest(b, IngestItem(frame, "binance", market, kind, "S", str(path), interval))
        assert streamed.rows_added == one.rows_added == frame.height
        assert streamed.reports[0].missing_bars == one.reports[0].missing_bars
        assert [p.name for p in streamed.writes[0].files] == [p.name for p in one.writes[0].files]
        for fa, fb in zip(streamed.writes[0].files, one.writes[0].files, strict=True):
            assert_frame_equal(pl.read_parquet(fa), pl.read_parquet(fb))
