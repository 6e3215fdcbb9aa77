"""End-to-end archive fetch against a loopback HTTP server serving the real archive layout.

The served root is a temp copy of ``shared/data/real/binance-vision`` (real
zips + checksums) plus generated spot-layout files: headerless microsecond
aggTrades/trades/klines, and deliberately broken files.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from hydraquant.data.binance_archive import (
    FetchedFile,
    FetchReport,
    archive_path,
    fetch_binance,
    parse_archive_zip,
)
from hydraquant.data.download import DownloadResult, DownloadTask, download_files, part_path
from hydraquant.errors import ChecksumError, ConfigError, DataError
from tests.integration.loopback_server import LoopbackServer, serve_directory

pytestmark = pytest.mark.realdata

# Two spot aggTrades days; the us file is the ms file with epochs x1000.
AGG_MS_ROWS = [
    "3575420512,93576.00000000,0.00005000,4384390001,4384390001,{t0},True,True",
    "3575420513,93576.01000000,0.01000000,4384390002,4384390004,{t1},False,True",
    "3575420514,93575.50000000,1.25000000,4384390005,4384390005,{t2},true,true",
]
DAY_MS = {
    date(2025, 1, 1): 1735689600000,
    date(2025, 1, 2): 1735776000000,
    date(2025, 1, 4): 1735948800000,
}


def _agg_csv(day: date, *, micro: bool) -> bytes:
    base = DAY_MS[day]
    scale = 1000 if micro else 1
    times = {f"t{i}": (base + off) * scale for i, off in enumerate([12, 999, 86_399_998])}
    return ("\n".join(r.format(**times) for r in AGG_MS_ROWS) + "\n").encode()


def _put_zip(root: Path, rel: str, csv: bytes, *, checksum_of: bytes | None = None) -> Path:
    """Write ``rel`` (a zip of ``csv``) and its Binance-style ``.CHECKSUM`` under ``root``."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(path.name.replace(".zip", ".csv"), csv)
    path.write_bytes(buf.getvalue())
    digest = hashlib.sha256(
        checksum_of if checksum_of is not None else path.read_bytes()
    ).hexdigest()
    (root / (rel + ".CHECKSUM")).write_text(f"{digest}  {path.name}\n")
    return path


def _copy_tree(src: Path, dst: Path) -> None:
    """Copy file contents only: the shared tree is read-only and modes must not follow."""
    for dirpath, _, filenames in os.walk(src):
        target = dst / Path(dirpath).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            shutil.copyfile(Path(dirpath) / name, target / name)


@pytest.fixture(scope="module")
def served_root(tmp_path_factory: pytest.TempPathFactory, real_data_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("binance-vision")
    _copy_tree(real_data_dir / "binance-vision", root)

    for day in (date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 4)):  # 01-03 is missing
        _put_zip(
            root, archive_path("spot", "aggTrades", "TESTUSDT", day), _agg_csv(day, micro=True)
        )
        _put_zip(root, archive_path("spot", "aggTrades", "MSUSDT", day), _agg_csv(day, micro=False))
    d1 = date(2025, 1, 1)
    _put_zip(
        root,
        archive_path("spot", "trades", "TESTUSDT", d1),
        b"100,93576.0,0.5,46788.0,1735689600000123,true,true\n"
        b"101,93577.0,0.25,23394.25,1735689600000456,false,true\n",
    )
    _put_zip(
        root,
        archive_path("spot", "klines", "TESTUSDT", d1, interval="1m"),
        b"1735689600000000,93576.0,93600.0,93500.0,93550.0,12.5,1735689659999999,1169375.0,321,6.0,561300.0,0\n"
        b"1735689660000000,93550.0,93580.0,93540.0,93570.0,3.5,1735689719999999,327495.0,99,1.5,140355.0,0\n",
    )
    # Broken files.
    good = _agg_csv(d1, micro=True)
    _put_zip(
        root, archive_path("spot", "aggTrades", "BADSUM", d1), good, checksum_of=b"something else"
    )
    trunc = _put_zip(root, archive_path("spot", "aggTrades", "TRUNC", d1), good * 200)
    trunc.write_bytes(trunc.read_bytes()[:-300])
    (root / (archive_path("spot", "aggTrades", "TRUNC", d1) + ".CHECKSUM")).write_text(
        f"{hashlib.sha256(trunc.read_bytes()).hexdigest()}  {trunc.name}\n"
    )
    _put_zip(
        root,
        archive_path("um", "aggTrades", "MISSCOL", d1),
        b"agg_trade_id,price,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n1,1.0,1,1,1735689600000,true\n",
    )
    _put_zip(
        root,
        archive_path("um", "aggTrades", "TEXTNUM", d1),
        b"agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        b"1,1.0,2.0,1,1,1735689600000,true\n2,1.0,n/a,2,2,1735689600001,true\n",
    )
    return root


@pytest.fixture
def server(served_root: Path) -> Iterator[LoopbackServer]:
    with serve_directory(served_root) as srv:
        yield srv


class Collect:
    """A sink that keeps every (frame, meta) it is given."""

    def __init__(self) -> None:
        self.items: list[tuple[pl.DataFrame, FetchedFile]] = []

    def __call__(self, frame: pl.DataFrame, meta: FetchedFile) -> None:
        self.items.append((frame, meta))

    def by_period(self) -> dict[str, pl.DataFrame]:
        return {m.period: f for f, m in self.items}


def _fetch(server: LoopbackServer, cache: Path, sink: Collect, **kwargs) -> FetchReport:
    params = {"workers": 4, "progress": False, "retries": 2, **kwargs}
    return fetch_binance(base_url=server.url, cache_dir=cache, sink=sink, **params)


def _spot_agg(server: LoopbackServer, cache: Path, sink: Collect, symbol: str = "TESTUSDT", **kw):
    """Spot aggTrades for ``symbol``, 2025-01-01..04 unless overridden (01-03 is not published)."""
    span = {"start": date(2025, 1, 1), "end": date(2025, 1, 4), **kw}
    return _fetch(server, cache, sink, market="spot", kind="aggTrades", symbols=[symbol], **span)


# --------------------------------------------------------------------------- real files


def test_real_usdm_klines_months_with_gaps(server: LoopbackServer, tmp_path: Path) -> None:
    sink = Collect()
    report = _fetch(
        server, tmp_path, sink, market="um", kind="klines", symbols=["FILUSDT", "NEARUSDT"],
        start=date(2023, 2, 10), end=date(2023, 6, 3), interval="1m", monthly=True,
    )  # fmt: skip
    got = [(m.symbol, m.period, f.height) for f, m in sink.items]
    assert got == [
        ("FILUSDT", "2023-02", 40320),
        ("FILUSDT", "2023-04", 43200),
        ("FILUSDT", "2023-05", 44640),
        ("FILUSDT", "2023-06", 43200),
        ("NEARUSDT", "2023-02", 40320),
        ("NEARUSDT", "2023-04", 43200),
        ("NEARUSDT", "2023-05", 44640),
    ]
    assert [(m.symbol, m.period) for m in report.missing] == [
        ("FILUSDT", "2023-03"),
        ("NEARUSDT", "2023-03"),
        ("NEARUSDT", "2023-06"),
    ]
    assert len(report.downloaded) == 7 and not report.failed and report.rows == 299_520
    frames = {(m.symbol, m.period): f for f, m in sink.items}
    fil02, fil06, near05 = (
        frames["FILUSDT", "2023-02"],
        frames["FILUSDT", "2023-06"],
        frames["NEARUSDT", "2023-05"],
    )
    assert fil02.row(0) == (
        datetime(2023, 2, 1, tzinfo=UTC),
        5.233,
        5.238,
        5.229,
        5.233,
        35462.8,
        185580.3531,
        403,
        21211.2,
        111005.4733,
    )
    assert fil02.row(-1) == (
        datetime(2023, 2, 28, 23, 59, tzinfo=UTC), 6.469, 6.483, 6.469, 6.483, 20296.1, 131477.0081, 314,
        11802.6, 76453.4766,
    )  # fmt: skip
    assert fil06.row(-1)[:5] == (
        datetime(2023, 6, 30, 23, 59, tzinfo=UTC),
        3.948,
        3.951,
        3.945,
        3.946,
    )
    assert near05.row(0)[:6] == (
        datetime(2023, 5, 1, tzinfo=UTC),
        1.928,
        1.931,
        1.926,
        1.928,
        142502.0,
    )
    meta = sink.items[0][1]
    assert (meta.market, meta.kind, meta.archive_kind, meta.interval, meta.day, meta.monthly) == (
        "um",
        "klines",
        "klines",
        "1m",
        date(2023, 2, 1),
        True,
    )
    assert (
        meta.path == tmp_path / "data/futures/um/monthly/klines/FILUSDT/1m/FILUSDT-1m-2023-02.zip"
    )
    assert meta.path.is_file() and Path(str(meta.path) + ".CHECKSUM").is_file()


def test_real_coinm_aggtrades_month(server: LoopbackServer, tmp_path: Path) -> None:
    sink = Collect()
    report = _fetch(
        server, tmp_path, sink, market="cm", kind="aggTrades", symbols=["BTCUSD_260327"],
        start=date(2025, 9, 1), end=date(2025, 9, 30), monthly=True,
    )  # fmt: skip
    assert [m.status for m in report.files] == ["downloaded"]
    frame = sink.items[0][0]
    assert frame.height == 32959
    assert frame.row(0) == (
        datetime(2025, 9, 26, 8, 11, 37, 571000, tzinfo=UTC),
        1,
        113498.1,
        6.0,
        None,
        False,
        1,
        1,
    )
    assert frame.row(-1) == (
        datetime(2025, 9, 30, 23, 53, 56, 656000, tzinfo=UTC),
        32959,
        118371.2,
        27.0,
        None,
        False,
        62643,
        62643,
    )


# --------------------------------------------------------------------------- cache and resume


def test_rerun_makes_no_requests_and_delivers_same_frames(
    server: LoopbackServer, tmp_path: Path
) -> None:
    first, second = Collect(), Collect()
    r1 = _spot_agg(server, tmp_path, first)
    assert len(r1.downloaded) == 3 and len(server.paths_requested(".zip")) == 3
    server.clear()
    r2 = _spot_agg(server, tmp_path, second)
    # Missing days are asked again (one small .CHECKSUM probe), cached zips never.
    assert server.paths_requested(".zip") == []
    assert server.paths_requested() == [
        "/" + archive_path("spot", "aggTrades", "TESTUSDT", date(2025, 1, 3)) + ".CHECKSUM"
    ]
    assert [m.status for m in r2.files] == ["skipped", "skipped", "missing", "skipped"]
    assert len(second.items) == 3
    for (f1, _), (f2, _) in zip(first.items, second.items, strict=True):
        assert_frame_equal(f1, f2)


def test_cached_zip_with_lost_sidecar_is_reverified_without_zip_request(
    server: LoopbackServer, tmp_path: Path
) -> None:
    _spot_agg(server, tmp_path, Collect(), end=date(2025, 1, 1))
    zip_path = tmp_path / archive_path("spot", "aggTrades", "TESTUSDT", date(2025, 1, 1))
    Path(str(zip_path) + ".CHECKSUM").unlink()
    server.clear()
    report = _spot_agg(server, tmp_path, Collect(), end=date(2025, 1, 1))
    assert report.skipped and server.paths_requested(".zip") == []
    assert len(server.paths_requested(".CHECKSUM")) == 1


def test_resume_partial_download_uses_range(
    served_root: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    rel = "data/futures/um/monthly/klines/DOTUSDT/1m/DOTUSDT-1m-2024-11.zip"
    full = (served_root / rel).read_bytes()
    dest = tmp_path / rel
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(full[: len(full) // 3])
    sink = Collect()
    report = _fetch(
        server, tmp_path, sink, market="um", kind="klines", symbols=["DOTUSDT"],
        start=date(2024, 11, 1), end=date(2024, 11, 30), interval="1m", monthly=True,
    )  # fmt: skip
    zip_requests = [r for r in server.log() if r.path.endswith(".zip")]
    assert [(r.range, r.status) for r in zip_requests] == [(f"bytes={len(full) // 3}-", 206)]
    assert report.downloaded[0].status == "downloaded"
    assert dest.read_bytes() == full and not part_path(dest).exists()
    assert sink.items[0][0].height == 43200


def test_server_ignoring_range_restarts_cleanly(
    served_root: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    rel = archive_path("spot", "aggTrades", "TESTUSDT", date(2025, 1, 2))
    dest = tmp_path / rel
    dest.parent.mkdir(parents=True)
    part_path(dest).write_bytes(b"stale bytes of an older download")
    server.ignore_range = True
    sink = Collect()
    _spot_agg(server, tmp_path, sink, start=date(2025, 1, 2), end=date(2025, 1, 2))
    assert [(r.range is not None, r.status) for r in server.log() if r.path.endswith(".zip")] == [
        (True, 200)
    ]
    assert dest.read_bytes() == (served_root / rel).read_bytes()
    assert sink.items[0][0].height == 3


def test_dropped_connection_resumes_and_503_is_retried(
    served_root: Path, server: LoopbackServer, tmp_path: Path
) -> None:
    rel = "data/futures/um/monthly/klines/LINKUSDT/1m/LINKUSDT-1m-2023-02.zip"
    server.fail_next["/" + rel + ".CHECKSUM"] = [503]
    server.fail_next["/" + rel] = [502]
    server.cut_after["/" + rel] = 100_000
    report = download_files(
        [DownloadTask(f"{server.url}/{rel}", tmp_path / rel, f"{server.url}/{rel}.CHECKSUM")],
        workers=1, retries=3, backoff_s=0.01,
    )  # fmt: skip
    result = report.results[0]
    assert result.status == "downloaded" and result.resumed
    log = [(r.path.rsplit(".", 1)[-1], r.range, r.status) for r in server.log()]
    assert log == [
        ("CHECKSUM", None, 503),
        ("CHECKSUM", None, 200),
        ("zip", None, 502),
        ("zip", None, 200),  # cut after 100 kB
        ("zip", "bytes=100000-", 206),
    ]
    assert (tmp_path / rel).read_bytes() == (served_root / rel).read_bytes()


# --------------------------------------------------------------------------- failures


def test_checksum_mismatch_raises_after_others_and_keeps_nothing(
    server: LoopbackServer, tmp_path: Path
) -> None:
    sink = Collect()
    with pytest.raises(ChecksumError, match="sha256 mismatch") as info:
        _fetch(
            server, tmp_path, sink, market="spot", kind="aggTrades",
            symbols=["BADSUM", "TESTUSDT"], start=date(2025, 1, 1), end=date(2025, 1, 2),
        )  # fmt: skip
    bad = tmp_path / archive_path("spot", "aggTrades", "BADSUM", date(2025, 1, 1))
    assert info.value.file == str(bad)
    assert not bad.exists() and not part_path(bad).exists()
    assert not Path(str(bad) + ".CHECKSUM").exists()
    # The good symbol was still delivered, and the report travels with the error.
    assert [(m.symbol, m.period) for _, m in sink.items] == [
        ("TESTUSDT", "2025-01-01"),
        ("TESTUSDT", "2025-01-02"),
    ]
    report: FetchReport = info.value.report  # type: ignore[attr-defined]
    assert [(m.symbol, m.status) for m in report.files] == [
        ("BADSUM", "failed"), ("BADSUM", "missing"), ("TESTUSDT", "downloaded"), ("TESTUSDT", "downloaded")
    ]  # fmt: skip


def test_missing_days_listed_others_delivered(server: LoopbackServer, tmp_path: Path) -> None:
    sink = Collect()
    report = _spot_agg(server, tmp_path, sink, end=date(2025, 1, 5))
    assert [m.period for m in report.missing] == ["2025-01-03", "2025-01-05"]
    assert [m.period for _, m in sink.items] == ["2025-01-01", "2025-01-02", "2025-01-04"]
    assert report.summary() == "5 files: 3 downloaded, 0 cached, 2 missing, 0 failed; 9 rows"


def test_truncated_zip_with_matching_checksum(server: LoopbackServer, tmp_path: Path) -> None:
    sink = Collect()
    with pytest.raises(DataError, match="corrupt or truncated") as info:
        _fetch(
            server, tmp_path, sink, market="spot", kind="aggTrades", symbols=["TRUNC", "TESTUSDT"],
            start=date(2025, 1, 1), end=date(2025, 1, 1),
        )  # fmt: skip
    assert info.value.file.endswith("TRUNC-aggTrades-2025-01-01.zip")
    assert [m.symbol for _, m in sink.items] == ["TESTUSDT"]


@pytest.mark.parametrize(
    ("symbol", "row", "column", "fragment"),
    [("MISSCOL", None, "quantity", "missing column"), ("TEXTNUM", 2, "quantity", "'n/a'")],
)
def test_bad_csv_content_named_by_file_row_column(
    server: LoopbackServer, tmp_path: Path, symbol: str, row: int | None, column: str, fragment: str
) -> None:
    with pytest.raises(DataError, match=fragment) as info:
        _fetch(
            server, tmp_path, Collect(), market="um", kind="aggTrades", symbols=[symbol],
            start=date(2025, 1, 1), end=date(2025, 1, 1),
        )  # fmt: skip
    err = info.value
    assert (err.row, err.column) == (row, column)
    assert f"{symbol}-aggTrades-2025-01-01.zip" in err.file


def test_invalid_arguments_fail_before_any_request(server: LoopbackServer, tmp_path: Path) -> None:
    for kwargs in (
        {"market": "spot", "kind": "fundingRate", "monthly": True},
        {"market": "um", "kind": "klines"},
        {"market": "um", "kind": "fundingRate"},
        {"market": "eu", "kind": "aggTrades"},
        {"market": "um", "kind": "aggTrades", "workers": 0},
    ):
        with pytest.raises(ConfigError):
            _fetch(
                server,
                tmp_path,
                Collect(),
                symbols=["X"],
                start=date(2025, 1, 1),
                end=date(2025, 1, 1),
                **kwargs,
            )
    assert server.log() == []


# --------------------------------------------------------------------------- format equivalence


def test_ms_and_us_files_give_identical_frames(server: LoopbackServer, tmp_path: Path) -> None:
    us, ms = Collect(), Collect()
    _spot_agg(server, tmp_path, us, symbol="TESTUSDT")
    _spot_agg(server, tmp_path, ms, symbol="MSUSDT")
    assert len(us.items) == len(ms.items) == 3
    for (fu, _), (fm, _) in zip(us.items, ms.items, strict=True):
        assert_frame_equal(fu, fm)
    first = us.items[0][0]
    assert first.get_column("ts").to_list() == [
        datetime(2025, 1, 1, 0, 0, 0, 12000, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 0, 999000, tzinfo=UTC),
        datetime(2025, 1, 1, 23, 59, 59, 998000, tzinfo=UTC),
    ]
    assert first.get_column("is_buyer_maker").to_list() == [True, False, True]


def test_header_and_headerless_zips_give_identical_frames(
    tmp_path: Path, served_root: Path
) -> None:
    real = (
        served_root
        / "data/futures/cm/monthly/aggTrades/BTCUSD_260327/BTCUSD_260327-aggTrades-2025-09.zip"
    )
    with zipfile.ZipFile(real) as zf:
        csv = zf.read(zf.namelist()[0])
    headerless = tmp_path / "headerless.zip"
    with zipfile.ZipFile(headerless, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.csv", csv.split(b"\n", 1)[1])
    a = parse_archive_zip(real, kind="aggTrades", market="cm")
    b = parse_archive_zip(headerless, kind="aggTrades", market="cm")
    assert a.height == 32959
    assert_frame_equal(a, b)


def test_spot_trades_and_klines(server: LoopbackServer, tmp_path: Path) -> None:
    trades, klines = Collect(), Collect()
    _fetch(server, tmp_path, trades, market="spot", kind="trades", symbols=["TESTUSDT"],
           start=date(2025, 1, 1), end=date(2025, 1, 1))  # fmt: skip
    _fetch(server, tmp_path, klines, market="spot", kind="klines", symbols=["TESTUSDT"], interval="1m",
           start=date(2025, 1, 1), end=date(2025, 1, 1))  # fmt: skip
    assert trades.items[0][0].rows() == [
        (
            datetime(2025, 1, 1, 0, 0, 0, 123, tzinfo=UTC),
            100,
            93576.0,
            0.5,
            46788.0,
            True,
            None,
            None,
        ),
        (
            datetime(2025, 1, 1, 0, 0, 0, 456, tzinfo=UTC),
            101,
            93577.0,
            0.25,
            23394.25,
            False,
            None,
            None,
        ),
    ]
    kl, meta = klines.items[0]
    assert meta.path.name == "TESTUSDT-1m-2025-01-01.zip" and meta.interval == "1m"
    assert kl.get_column("ts").to_list() == [
        datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 1, tzinfo=UTC),
    ]
    assert kl.row(0)[1:] == (
        93576.0,
        93600.0,
        93500.0,
        93550.0,
        12.5,
        1169375.0,
        321,
        6.0,
        561300.0,
    )


def test_progress_callback_sees_every_file(server: LoopbackServer, tmp_path: Path) -> None:
    seen: list[DownloadResult] = []
    tasks = [
        DownloadTask(
            f"{server.url}/{archive_path('spot', 'aggTrades', 'TESTUSDT', d)}",
            tmp_path / f"{d}.zip",
            f"{server.url}/{archive_path('spot', 'aggTrades', 'TESTUSDT', d)}.CHECKSUM",
        )
        for d in (date(2025, 1, 1), date(2025, 1, 3))
    ]
    report = download_files(tasks, workers=2, progress=seen.append)
    assert sorted(r.status for r in seen) == ["downloaded", "missing"]
    assert [r.status for r in report.results] == ["downloaded", "missing"]
    assert report.results[0].bytes == (tmp_path / "2025-01-01.zip").stat().st_size


def test_rich_progress_bar_mode(server: LoopbackServer, tmp_path: Path) -> None:
    """progress=True (the CLI default) renders a bar and changes nothing else."""
    sink = Collect()
    report = _spot_agg(server, tmp_path, sink, progress=True)
    assert [m.status for m in report.files] == ["downloaded", "downloaded", "missing", "downloaded"]
    assert sum(f.height for f, _ in sink.items) == 9
