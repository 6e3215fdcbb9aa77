"""Benchmark: one aggTrades day zip (>= 2 M rows) into the lake vs pandas.read_csv.

Ours, two ways: ``stream`` = ``ingest_archive`` (inflate in a thread, compiled
CSV parser, chunked validation with carry-over, row groups written by a
background thread, atomic rename: the default ingest path) and ``oneshot`` =
``parse_archive_zip`` + ``ingest`` (whole file in memory).  Both validate every
row (D5) and write the Parquet partition atomically.  Baseline: the seed 000 way — ``pd.read_csv`` on
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
import shutil
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

mode, zip_path, lake_dir, warm = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "warm"
workers = int(sys.argv[5]) if sys.argv[5] != "auto" else None
if mode == "pandas":
    import pandas as pd

    def work(lake_dir):
        df = pd.read_csv(zip_path)
        df = df.rename(columns={"quantity": "qty", "transact_time": "timestamp", "is_buyer_maker": "is_sell"})
        df["timestamp"] = pd.to_datetime(df["timestamp"], unit="ms")
        df["price"] = df["price"].astype("float32")
        df["qty"] = df["qty"].astype("float32")
        df["is_sell"] = df["is_sell"].astype("int8")
        df = df.sort_values("timestamp").reset_index(drop=True)
        return df
else:
    import polars  # noqa
    from hydraquant.data.binance_archive import parse_archive_zip
    from hydraquant.data.ingest import IngestItem, ingest, ingest_archive
    from hydraquant.data.lake import Lake

    def work(lake_dir):
        if mode == "stream":
            return ingest_archive(Lake(lake_dir), zip_path, kind="aggTrades", market="um", symbol="BTCUSDT", workers=workers)
        frame = parse_archive_zip(zip_path, kind="aggTrades", market="um")
        return ingest(Lake(lake_dir), IngestItem(frame, "binance", "um", "aggTrades", "BTCUSDT", zip_path))
if warm:  # steady state: a process that already ingested one file (JIT cache loaded, pools warm)
    work(lake_dir + "-warmup")
    import gc; gc.collect()
base = rss("VmRSS")
c = time.process_time()
t = time.perf_counter()
result = work(lake_dir)
elapsed = time.perf_counter() - t
cpu = time.process_time() - c
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "peak_growth_mib": rss("VmHWM") - base}))
"""


def run_child(mode: str, zip_path: Path, lake_dir: Path, warm: bool = False, workers: int | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(zip_path), str(lake_dir), "warm" if warm else "cold",
         "auto" if workers is None else str(workers)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2_000_000, help="minimum trades in the day")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="parse threads (default: cores - 1, at most 8)")
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
    # one untimed call loads/compiles the numba parser cache, as after any install
    run_child("stream", zip_path, work / f"lake{next(counter)}")
    runs = {
        mode: [run_child(mode, zip_path, work / f"lake{next(counter)}", workers=args.workers) for _ in range(args.repeat)]
        for mode in ("stream", "oneshot", "pandas")
    }
    warm_runs = {
        mode: [run_child(mode, zip_path, work / f"lake{next(counter)}", warm=True, workers=args.workers)
               for _ in range(args.repeat)]
        for mode in ("stream", "pandas")
    }
    shutil.rmtree(work, ignore_errors=True)
    best = {m: min(r["seconds"] for r in rs) for m, rs in runs.items()}
    cpu = {m: min(r["cpu_seconds"] for r in rs) for m, rs in runs.items()}
    mem = {m: max(r["peak_growth_mib"] for r in rs) for m, rs in runs.items()}
    print(f"machine: {machine()}")
    print(f"day zip: {rows:,} aggTrades, CSV {csv_mb:.1f} MiB uncompressed")
    labels = {
        "stream": "ours, streamed (ingest_archive)",
        "oneshot": "ours, one-shot (parse_archive_zip + ingest)",
        "pandas": "pandas (read_csv + seed dtype conversions, no write)",
    }
    for mode, label in labels.items():
        print(f"{label}: {best[mode]:.3f} s (cpu {cpu[mode]:.3f} s), peak +{mem[mode]:.0f} MiB")
    w_best = {m: min(r["seconds"] for r in rs) for m, rs in warm_runs.items()}
    w_mem = {m: max(r["peak_growth_mib"] for r in rs) for m, rs in warm_runs.items()}
    print(
        f"steady state (second file in the same process): stream {w_best['stream']:.3f} s +{w_mem['stream']:.0f} MiB, "
        f"pandas {w_best['pandas']:.3f} s +{w_mem['pandas']:.0f} MiB -> {w_best['pandas'] / w_best['stream']:.2f}x, "
        f"memory {w_mem['stream'] / csv_mb:.2f}x CSV"
    )
    for mode in ("stream", "oneshot"):
        print(
            f"{mode}: speed ratio pandas/ours {best['pandas'] / best[mode]:.2f}x (target >= 5x), "
            f"cpu ratio {cpu['pandas'] / cpu[mode]:.2f}x, memory ours/CSV {mem[mode] / csv_mb:.2f}x (target <= 2x)"
        )

if __name__ == "__main__":
    main()
