"""Benchmark: one aggTrades day zip (>= 2 M rows) into the lake vs pandas.read_csv.

Ours: parse the archive zip (polars), validate every row (D5), write the
Parquet partition atomically.  Baseline: the seed 000 way — ``pd.read_csv`` on
the zip, rename, ``to_datetime``, float32/int8 casts, sort — which does not
even validate or persist.  Targets: >= 5x faster; peak memory of the ingest
<= 2x the uncompressed CSV size (measured in a fresh subprocess as the growth
of the resident-set high-water mark over the post-import baseline, so the
interpreter and library code are not billed).

Run: .venv/bin/python bench/ingest.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

CHILD = r"""
import json, sys, time
from pathlib import Path

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")

mode, zip_path, lake_dir = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "ours":
    from hydraquant.data.binance_archive import parse_archive_zip
    from hydraquant.data.ingest import IngestItem, ingest
    from hydraquant.data.lake import Lake
    import polars  # noqa
    base = rss("VmRSS")
    t = time.perf_counter()
    frame = parse_archive_zip(zip_path, kind="aggTrades", market="um")
    ingest(Lake(lake_dir), IngestItem(frame, "binance", "um", "aggTrades", "BTCUSDT", zip_path))
    elapsed = time.perf_counter() - t
else:
    import pandas as pd
    base = rss("VmRSS")
    t = time.perf_counter()
    df = pd.read_csv(zip_path)
    df = df.rename(columns={"quantity": "qty", "transact_time": "timestamp", "is_buyer_maker": "is_sell"})
    df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms")
    df["price"] = df["price"].astype("float32")
    df["qty"] = df["qty"].astype("float32")
    df["is_sell"] = df["is_sell"].astype("int8")
    df = df.sort_values("timestamp").reset_index(drop=True)
    elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "peak_growth_mib": rss("VmHWM") - base}))
"""


def run_child(mode: str, zip_path: Path, lake_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(zip_path), str(lake_dir)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000, help="minimum trades in the day")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from hydraquant.data.simulator import SimConfig, iter_simulation, write_archive_zip

    work = Path(tempfile.mkdtemp(prefix="hq-bench-ingest-"))
    activity = 1.0
    while True:
        cfg = SimConfig(symbols=1, days=1, seed=11, activity=activity, start=date(2024, 3, 1))
        day = next(c for c in iter_simulation(cfg) if c.kind == "aggTrades")
        if day.frame.height >= args.rows:
            break
        activity *= 1.25 * args.rows / day.frame.height
    zip_path = work / "BTCUSDT-aggTrades-2024-03-01.zip"
    write_archive_zip(day.frame, zip_path, symbol="BTCUSDT", day=day.day, market="um")
    with zipfile.ZipFile(zip_path) as zf:
        csv_mb = sum(i.file_size for i in zf.infolist()) / 2**20
    rows = day.frame.height
    del day

    counter = iter(range(1000))
    ours_runs = [run_child("ours", zip_path, work / f"lake{next(counter)}") for _ in range(args.repeat)]
    pandas_runs = [run_child("pandas", zip_path, work / "unused") for _ in range(args.repeat)]
    t_ours = min(r["seconds"] for r in ours_runs)
    t_pd = min(r["seconds"] for r in pandas_runs)
    mem = max(r["peak_growth_mib"] for r in ours_runs)
    mem_pd = max(r["peak_growth_mib"] for r in pandas_runs)
    print(f"machine: {machine()}")
    print(f"day zip: {rows:,} aggTrades, CSV {csv_mb:.1f} MiB uncompressed")
    print(f"ours   (parse + validate + atomic Parquet write): {t_ours:.3f} s, peak +{mem:.0f} MiB")
    print(f"pandas (read_csv + seed dtype conversions, no write): {t_pd:.3f} s, peak +{mem_pd:.0f} MiB")
    print(f"speed ratio pandas/ours: {t_pd / t_ours:.2f}x (target >= 5x)")
    print(f"memory ratio ours/CSV: {mem / csv_mb:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
