"""The data commands end to end through the real CLI entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from hydraquant.cli.main import main
from tests.conftest import REAL_DATA
from tests.integration.loopback_server import serve_directory

ARCHIVE = REAL_DATA / "binance-vision"


@pytest.fixture()
def archive_server(tmp_path):
    if not ARCHIVE.is_dir():
        pytest.skip(f"real Binance archive files not found at {ARCHIVE}")
    root = tmp_path / "served"
    shutil.copytree(ARCHIVE, root)
    with serve_directory(root) as server:
        yield server


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fetch_status_export_roundtrip(archive_server, tmp_path, capsys):
    lake = tmp_path / "lake"
    args = ["--lake", str(lake), "fetch", "binance", "--market", "um", "--kind", "klines", "--interval", "1m",
            "--symbols", "FILUSDT", "--start", "2024-09", "--end", "2024-11", "--monthly",
            "--base-url", archive_server.url]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert "FILUSDT" in out
    first = lake / "binance/um/klines/1m/FILUSDT"
    assert sorted(p.name for p in first.glob("*.parquet")) == ["2024-09.parquet", "2024-10.parquet", "2024-11.parquet"]

    # a re-run downloads nothing and adds nothing
    archive_server.clear()
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert not [p for p in archive_server.paths_requested() if p.endswith(".zip")]
    assert "0 new rows" in out

    code, out, _ = run(capsys, "--lake", str(lake), "data", "status")
    assert code == 0 and "FILUSDT" in out and "klines/1m" in out and "131,040" in out

    dest = tmp_path / "out" / "fil.parquet"
    code, out, err = run(capsys, "--lake", str(lake), "export", "klines", "--symbols", "FILUSDT", "--interval", "1m",
                         "--start", "2024-10-01", "--end", "2024-10-31", "--out", str(dest))
    assert code == 0, err
    frame = pl.read_parquet(dest)
    assert frame.height == 31 * 1440
    assert frame["ts"].min().isoformat() == "2024-10-01T00:00:00+00:00"
    csv = tmp_path / "fil.csv"
    assert run(capsys, "--lake", str(lake), "export", "klines", "--symbols", "FILUSDT", "--interval", "1m",
               "--start", "2024-11-30", "--end", "2024-11-30", "--out", str(csv))[0] == 0
    assert pl.read_csv(csv).height == 1440


def test_checksum_mismatch_is_an_error_and_stores_nothing(archive_server, tmp_path, capsys):
    served = Path(archive_server.root) / "data/futures/um/monthly/klines/NEARUSDT/1m/NEARUSDT-1m-2024-02.zip"
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF
    served.write_bytes(bytes(data))
    lake = tmp_path / "lake"
    code, _, err = run(capsys, "--lake", str(lake), "fetch", "binance", "--market", "um", "--kind", "klines",
                       "--interval", "1m", "--symbols", "NEARUSDT", "--start", "2024-02", "--end", "2024-02",
                       "--monthly", "--base-url", archive_server.url)
    assert code != 0
    assert "NEARUSDT-1m-2024-02.zip" in err and "checksum" in err.lower()
    assert not list(lake.rglob("*.parquet"))


def test_errors_are_one_clear_line(tmp_path, capsys):
    code, _, err = run(capsys, "--lake", str(tmp_path), "export", "klines", "--symbols", "NOPE", "--interval", "1m",
                       "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "no klines/1m data" in err and "Traceback" not in err
    code, _, err = run(capsys, "--set", "lake.rot=x", "data", "status")
    assert code == 2 and "unknown key 'lake.rot'" in err and "allowed keys in lake: root" in err
    code, _, err = run(capsys, "--lake", str(tmp_path), "fetch", "binance", "--market", "xx", "--kind", "klines",
                       "--symbols", "A", "--start", "2024-01-01", "--end", "2024-01-02")
    assert code == 2 and "market" in err
    code, out, _ = run(capsys, "fetch", "binance", "--help")
    assert code == 0 and "--monthly" in out
