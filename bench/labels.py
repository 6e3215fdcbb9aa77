"""Benchmark: labelers vs the seeds' per-point Python loops (same run, best of 3).

(a) Seed 000 fee-adjusted MFE / vol targets at 60 s and 300 s (240 and 1200
    bars) on EVERY bar of a synthetic 250 ms day (345,600 bars), against the
    seed's loop (``iterrows`` + ``iloc`` window slice per decision point),
    timed on a subsample and extrapolated to points/s.  Values are checked
    equal on the subsample before anything is printed.
(b) Triple barrier (both sides, first touch on high/low) on 1,000,000 one-minute
    bars, against seed 002's loop (``iloc`` window per row), timed on a
    subsample and extrapolated.

Run: ``.venv/bin/python bench/labels.py [--loop-points 3000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import polars as pl
from _common import best_of, report, rss_peak_mb

from hydraquant.labels import fee_adjusted_mfe, triple_barrier

START_US = 1_721_347_200_000_000  # 2024-07-19 00:00 UTC
FEE = 0.0004


def synthetic_250ms_day(seed: int = 11) -> pl.DataFrame:
    n = 345_600
    rng = np.random.default_rng(seed)
    price = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-4, n)))
    ts = START_US + np.arange(n, dtype=np.int64) * 250_000
    f = pl.DataFrame({"ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")), "close": price})
    # regime is an input column; its values do not affect timing, so draw it at random
    return f.with_columns(
        vol_5m=pl.col("close").pct_change().rolling_std(1200),
        vol_regime=pl.Series(rng.choice(["LOW", "MID", "HIGH"], n)),
    )


def synthetic_minutes(n: int, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 40_000.0 * np.exp(np.cumsum(rng.normal(0.0, 8e-4, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.exponential(3e-4, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(3e-4, n))
    ts = START_US + np.arange(n, dtype=np.int64) * 60_000_000
    return pl.DataFrame(
        {
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
        }
    )


def seed000_loop(bars: pd.DataFrame, points: np.ndarray, horizon: int) -> dict[int, float]:
    """Seed 000's per-decision-point labelling loop (minus the model plumbing)."""
    dec = bars.iloc[points].copy()
    dec["bar_idx"] = dec.index
    out: dict[int, float] = {}
    for _, row in dec.iterrows():
        idx = int(row["bar_idx"])
        if idx + horizon >= len(bars):
            continue
        entry = bars.loc[idx, "close"]
        vol = bars.loc[idx, "vol_5m"]
        if pd.isna(vol) or vol <= 0:
            continue
        future = bars.iloc[idx + 1 : idx + horizon + 1]
        up = (future["close"].max() - entry) / entry - 2 * FEE
        down = (entry - future["close"].min()) / entry - 2 * FEE
        if max(up, down) < 0:
            continue
        if up > down and up > 0:
            out[idx] = up / vol
        elif down > 0:
            out[idx] = down / vol
    return out


def seed002_loop(df: pd.DataFrame, rows: np.ndarray, lookahead: int) -> None:
    """Seed 002's future-high/low loop (``iloc`` slice per row)."""
    fh = np.full(len(rows), np.nan)
    fl = np.full(len(rows), np.nan)
    for k, i in enumerate(rows):
        s = df.iloc[i + 1 : i + lookahead + 1]
        fh[k] = s["high"].max()
        fl[k] = s["low"].min()


def bench_mfe(loop_points: int, repeat: int) -> list[str]:
    bars = synthetic_250ms_day()
    n = bars.height

    def ours():
        return [fee_adjusted_mfe(bars, h, interval="250ms") for h in ("60s", "300s")]

    t_ours = best_of(ours, repeat=repeat)
    labels = 2 * n
    ours_rate = labels / t_ours.best

    pdf = bars.select("close", "vol_5m").to_pandas()
    rng = np.random.default_rng(0)
    points = np.sort(rng.choice(np.arange(1200, n - 1200), loop_points, replace=False))
    loop_rates = []
    for h, res in zip((240, 1200), t_ours.result, strict=True):
        start = time.perf_counter()
        ref = seed000_loop(pdf, points, h)
        loop_rates.append(loop_points / (time.perf_counter() - start))
        got = res["score"].to_numpy()
        for idx, v in ref.items():  # identical targets before any timing is trusted
            assert abs(got[idx] - v) <= 1e-9 * abs(v), (h, idx)
        assert res["score"].gather(list(points)).null_count() == loop_points - len(ref)
    loop_rate = labels / sum(labels / 2 / r for r in loop_rates)
    ratio = ours_rate / loop_rate
    return [
        f"(a) fee-adjusted MFE/vol, 60 s + 300 s on every bar of a 250 ms day ({n:,} bars, {labels:,} labels)",
        (
            f"    ours: {t_ours.best:.4f} s -> {ours_rate / 1e6:.1f} M labels/s (target >= 10 M: "
            f"{'OK' if ours_rate >= 10e6 else 'MISSED'})"
        ),
        (
            f"    seed 000 loop on {loop_points:,} points per horizon: {loop_rates[0]:,.0f} / "
            f"{loop_rates[1]:,.0f} points/s (60 s / 300 s) -> {labels / loop_rate:,.0f} s extrapolated"
        ),
        f"    ratio: {ratio:,.0f}x faster (target >= 1000x: {'OK' if ratio >= 1000 else 'MISSED'})",
    ]


def bench_barrier(n: int, loop_points: int, repeat: int) -> list[str]:
    bars = synthetic_minutes(n)
    horizon = 60

    def ours():
        return triple_barrier(bars, tp=0.005, sl=0.003, horizon=horizon, interval="1m")

    t_ours = best_of(ours, repeat=repeat)
    rate = n / t_ours.best
    pdf = bars.select("high", "low").to_pandas()
    rows = np.sort(np.random.default_rng(1).choice(n - horizon - 1, loop_points, replace=False))
    start = time.perf_counter()
    seed002_loop(pdf, rows, horizon)
    loop_rate = loop_points / (time.perf_counter() - start)
    counts = t_ours.result["label"].value_counts().sort("label")
    return [
        f"(b) triple barrier (long+short, first touch, horizon {horizon}) on {n:,} one-minute bars",
        f"    ours: {t_ours.best:.4f} s -> {rate / 1e6:.1f} M bars/s (target >= 5 M: {'OK' if rate >= 5e6 else 'MISSED'})",
        (
            f"    seed 002 window loop (max/min only, no first touch) on {loop_points:,} rows: "
            f"{loop_rate:,.0f} rows/s -> ratio {rate / loop_rate:,.0f}x faster"
        ),
        f"    label counts: {dict(zip(counts['label'].to_list(), counts['count'].to_list(), strict=True))}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop-points", type=int, default=3000)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lines = bench_mfe(args.loop_points, args.repeat)
    lines += bench_barrier(args.bars, args.loop_points, args.repeat)
    lines.append(f"peak RSS {rss_peak_mb():.0f} MB")
    report(lines)


if __name__ == "__main__":
    main()
