"""Benchmark: seed 000's 28-feature set (``hydra_v3``) vs the seed's own pandas code.

Input: one BTCUSDT-sized simulated day (``hydraquant.data.simulator``,
aggTrades, activity 1.3 -> ~2.1 M trades) turned into 250 ms bars with
``trades_to_bars(..., empty="drop")`` as the seed's ``.dropna(subset=["price"])``
does (~339 k bars, close to the ~330 k of a real BTCUSDT day, so no ffill).

* ours: ``build_features(bars, "hydra_v3", interval="250ms")`` — causal,
  numba/polars kernels; one untimed warm-up call compiles numba, then best of N.
* baseline: :func:`seed000_features`, the feature cell of the seed 000 notebook
  (``compute_enhanced_features`` after its resample) re-expressed for timing
  on the same bars as a pandas DataFrame.  It keeps the seed's per-block Python
  loop for the volume profile (~280 iterations of 1200 bars, a fraction of a
  second, so it is timed on the full day, no extrapolation) and its lookahead: every
  bar of a 5-minute block sees that block's POC/LVN, including bars that have
  not happened yet.  That IS the baseline; our library uses the previous
  complete block instead.

Besides the timing, the script prints the max abs difference on features whose
definitions agree (vol, vol_rank, time, trade intensity, cum delta, flip rate,
and MOI after dividing the seed's raw sums by window volume), names the ones
that deliberately differ, and runs a prefix experiment: recompute both on the
first bars only (cut mid-block) and count prefix rows whose value changed.
A causal feature set changes none.

``--steps`` adds one timing per optimisation step of issue 3, measured by
turning the steps off again, newest first, in the same run (each variant
must return exactly the same features, which the script asserts): without
the compiled kernels (block profile, radix ranking), without the
post-processing changes in the builder, without the fused polars queries,
and without the per-build memo (every feature recomputes its inputs, as
before issue 3).

Run: ``.venv/bin/python bench/features.py [--activity 1.3] [--seed 0] [--repeat 3] [--steps]``
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import polars as pl
from _common import best_of, report, rss_peak_mb

from hydraquant.bars import trades_to_bars
from hydraquant.data.simulator import SimConfig, iter_simulation
from hydraquant.features import build_features
from hydraquant.features.sets import HYDRA_V3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test oracles of the replaced steps
from tests.oracles import block_profile_reference, unique_codes

INTERVAL = "250ms"

# Seed 000's FEATURE_COLS (same names and order as our hydra_v3 set).
FEATURE_COLS = list(HYDRA_V3)

# Features computed the same way by both (up to float summation order).
SAME_DEFINITION = (
    "vol_1m",
    "vol_5m",
    "vol_ratio",
    "vol_rank",
    "hour_sin",
    "hour_cos",
    "is_weekend",
    "trade_intensity",
    "trade_intensity_z",
    "cum_delta_1m",
    "cum_delta_5m",
    # sign of normalised MOI == sign of raw MOI; the seed also counts warm-up NaN -> value as
    # a flip, rows where ours is still NaN, so those are not compared
    "MOI_flip_rate",
)
# Deliberately different, and why (printed with the sanity check).
DIFFERENT = {
    "MOI_*, MOI_z, delta_velocity*, AggressionPersistence, MOI_roc_*, MOI_acceleration": (
        "ours normalise MOI to signed/total volume in [-1, 1]; the seed uses raw signed-qty sums"
    ),
    "absorption_z, price_impact_z": (
        "ours use the relative price move |r|, the seed the absolute USD move"
    ),
    "dist_poc, dist_lvn, dist_*_atr": (
        "ours: PREVIOUS complete 5 m block, 2 bp log bins (causal); "
        "seed: the SAME block incl. future bars, 10 USD bins (lookahead)"
    ),
}


# --------------------------------------------------------------------------- data


def simulated_day(seed: int, activity: float) -> pl.DataFrame:
    """One symbol-day of simulated aggTrades (BTCUSDT is the simulator's first symbol)."""
    cfg = SimConfig(symbols=1, days=1, seed=seed, activity=activity)
    for chunk in iter_simulation(cfg):
        if chunk.kind == "aggTrades":
            return chunk.frame
    raise RuntimeError("simulator produced no aggTrades")


def to_seed_bars(bars: pl.DataFrame) -> pd.DataFrame:
    """Our bars under the seed's names: timestamp, price (last), qty, signed_qty, trade_count."""
    return bars.select(
        pl.col("ts").alias("timestamp"),
        pl.col("close").alias("price"),
        pl.col("volume").alias("qty"),
        pl.col("signed_volume").alias("signed_qty"),
        pl.col("trade_count"),
    ).to_pandas()


# --------------------------------------------------------------------------- baseline


def seed000_features(bars_in: pd.DataFrame, symbol: str = "BTCUSDT") -> pd.DataFrame:
    """Seed 000's ``compute_enhanced_features`` from the point where its 250 ms bars exist.

    Re-expressed for timing only (never library code): rolling windows are
    pandas', the volume profile is the seed's per-block loop and LOOKS AHEAD
    (each bar gets the POC/LVN of its own 5-minute block, later bars included),
    exactly as the notebook did.
    """
    bars = bars_in.copy()
    bars["price"] = bars["price"].ffill()
    bars["symbol"] = symbol

    # order flow
    bars["MOI_250ms"] = bars["signed_qty"].rolling(1).sum()
    bars["MOI_1s"] = bars["signed_qty"].rolling(4).sum()
    bars["MOI_5s"] = bars["signed_qty"].rolling(20).sum()
    bars["MOI_std"] = bars["MOI_1s"].rolling(100).std()
    bars["MOI_z"] = bars["MOI_1s"].abs() / (bars["MOI_std"] + 1e-6)
    bars["delta_velocity"] = bars["MOI_1s"].diff()
    bars["delta_velocity_5s"] = bars["MOI_1s"].diff(20)
    abs_moi = bars["MOI_1s"].abs()
    mean_moi = abs_moi.rolling(100).mean()
    std_moi = abs_moi.rolling(100).std()
    bars["AggressionPersistence"] = mean_moi / (std_moi + 1e-6)
    moi_sign = np.sign(bars["MOI_1s"])
    sign_change = (moi_sign != moi_sign.shift(1)).astype(int)
    bars["MOI_flip_rate"] = sign_change.rolling(240).sum()

    # order-flow momentum
    bars["MOI_roc_1s"] = bars["MOI_1s"].pct_change(4).clip(-10, 10)
    bars["MOI_roc_5s"] = bars["MOI_1s"].pct_change(20).clip(-10, 10)
    bars["MOI_acceleration"] = bars["delta_velocity"].diff()

    # absorption
    price_change = bars["price"].diff().abs().clip(lower=1e-6)
    bars["absorption_raw"] = bars["qty"] / price_change
    bars["absorption_z"] = (bars["absorption_raw"] - bars["absorption_raw"].rolling(500).mean()) / (
        bars["absorption_raw"].rolling(500).std() + 1e-6
    )
    bars["price_impact"] = price_change / (bars["qty"] + 1e-6)
    bars["price_impact_z"] = (bars["price_impact"] - bars["price_impact"].rolling(500).mean()) / (
        bars["price_impact"].rolling(500).std() + 1e-6
    )

    # volatility
    bars["ret"] = bars["price"].pct_change()
    bars["vol_1m"] = bars["ret"].rolling(240).std()
    bars["vol_5m"] = bars["ret"].rolling(1200).std()
    bars["vol_15m"] = bars["ret"].rolling(3600).std()
    bars["vol_ratio"] = bars["vol_1m"] / (bars["vol_5m"] + 1e-8)
    bars["vol_rank"] = bars["vol_5m"].rolling(2000).rank(pct=True)
    bars["vol_regime"] = pd.cut(
        bars["vol_rank"], bins=[-np.inf, 0.3, 0.7, np.inf], labels=["LOW", "MID", "HIGH"]
    )

    # structure: the seed's block volume profile (per-block Python loop, lookahead kept)
    bin_size = 10
    lvn_block = 1200
    bars["price_bin"] = (bars["price"] / bin_size).round() * bin_size
    lvn_price = np.full(len(bars), np.nan)
    poc_price = np.full(len(bars), np.nan)
    for i in range(0, len(bars), lvn_block):
        window = bars.iloc[i : i + lvn_block]
        if window["qty"].sum() == 0:
            continue
        vp = window.groupby("price_bin")["qty"].sum()
        lvn_price[i : i + lvn_block] = vp.idxmin()
        poc_price[i : i + lvn_block] = vp.idxmax()
    bars["LVN_price"] = lvn_price
    bars["POC_price"] = poc_price
    bars["dist_lvn"] = (bars["price"] - bars["LVN_price"]).abs()
    bars["dist_poc"] = (bars["price"] - bars["POC_price"]).abs()
    atr_5m = bars["ret"].abs().rolling(1200).mean() * bars["price"]
    bars["dist_lvn_atr"] = bars["dist_lvn"] / (atr_5m + 1e-6)
    bars["dist_poc_atr"] = bars["dist_poc"] / (atr_5m + 1e-6)

    # time
    bars["hour"] = bars["timestamp"].dt.hour
    bars["hour_sin"] = np.sin(2 * np.pi * bars["hour"] / 24)
    bars["hour_cos"] = np.cos(2 * np.pi * bars["hour"] / 24)
    bars["day_of_week"] = bars["timestamp"].dt.day_of_week  # seed: .dt.dayofweek (deprecated alias)
    bars["is_weekend"] = (bars["day_of_week"] >= 5).astype(int)

    # trade intensity
    bars["trade_intensity"] = bars["trade_count"].rolling(100).mean()
    bars["trade_intensity_z"] = (bars["trade_count"] - bars["trade_count"].rolling(500).mean()) / (
        bars["trade_count"].rolling(500).std() + 1e-6
    )

    # cumulative delta
    bars["cum_delta_1m"] = bars["signed_qty"].rolling(240).sum()
    bars["cum_delta_5m"] = bars["signed_qty"].rolling(1200).sum()
    return bars


def ours(bars: pl.DataFrame) -> pl.DataFrame:
    return build_features(bars, "hydra_v3", interval=INTERVAL)


# --------------------------------------------------------------------------- checks


def _max_abs_diff(a: np.ndarray, b: np.ndarray) -> tuple[float, int, int]:
    """Max |a - b| where both are finite, rows compared, rows off by more than 1e-9 (relative)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return float("nan"), 0, 0
    d = np.abs(a[both] - b[both])
    off = int((d > 1e-9 * np.maximum(np.abs(b[both]), 1.0)).sum())
    return float(d.max()), int(both.sum()), off


def agreement_lines(got: pl.DataFrame, seed: pd.DataFrame) -> list[str]:
    lines = [
        (
            "agreement where the definitions match (max |ours - seed| over rows where both are "
            "finite; rows off by > 1e-9 relative):"
        )
    ]
    for name in SAME_DEFINITION:
        diff, n, off = _max_abs_diff(got.get_column(name).to_numpy(), seed[name].to_numpy())
        lines.append(f"    {name:<20} {diff:.3e}  ({n:,} rows, {off} off)")
    qty = seed["qty"]
    for name, bars_in_window in (("MOI_250ms", 1), ("MOI_1s", 4), ("MOI_5s", 20)):
        # the seed's raw sum over the window volume is our normalised MOI
        total = qty.rolling(bars_in_window).sum().to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            normalised = np.where(total == 0.0, 0.0, seed[name].to_numpy() / total)
        diff, n, off = _max_abs_diff(got.get_column(name).to_numpy(), normalised)
        lines.append(
            f"    {name:<20} {diff:.3e}  ({n:,} rows, {off} off; seed's raw sum / window volume)"
        )
    lines.append(
        "    (vol_rank: pandas' and polars' rolling std differ by ~1e-20 on equal windows, so a "
        "few exact ties in one are near-ties in the other;\n     those rows differ by half a rank "
        "step, 1/4000)"
    )
    lines.append("deliberately different definitions (not compared):")
    lines += [f"    {k}: {v}" for k, v in DIFFERENT.items()]
    return lines


def _changed_rows(full: np.ndarray, prefix: np.ndarray) -> int:
    """Prefix rows whose value differs from the full-data run (NaN-equal, rtol 1e-9)."""
    a = np.asarray(full[: len(prefix)], dtype=np.float64)
    b = np.asarray(prefix, dtype=np.float64)
    same = np.isclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    return int((~same).sum())


def causality_lines(bars: pl.DataFrame, got: pl.DataFrame, seed: pd.DataFrame) -> list[str]:
    """Recompute on a prefix cut mid-block; a causal feature never changes on the prefix."""
    cut = (bars.height // 2 // 1200) * 1200 + 600  # half-way through a seed block
    got_p = ours(bars.head(cut))
    seed_p = seed000_features(to_seed_bars(bars.head(cut)))
    ours_bad = {
        n: _changed_rows(got.get_column(n).to_numpy(), got_p.get_column(n).to_numpy())
        for n in FEATURE_COLS
    }
    seed_bad = {n: _changed_rows(seed[n].to_numpy(), seed_p[n].to_numpy()) for n in FEATURE_COLS}
    ours_leaky = {n: c for n, c in ours_bad.items() if c}
    seed_leaky = {n: c for n, c in seed_bad.items() if c}
    return [
        f"prefix check (first {cut:,} bars vs full day, rows of the prefix that change):",
        f"    ours: {sum(ours_leaky.values())} rows in {len(ours_leaky)} features {ours_leaky}",
        f"    seed: {sum(seed_leaky.values())} rows in {len(seed_leaky)} features {seed_leaky}",
    ]


# --------------------------------------------------------------------------- steps (ablation)


def _step_patches() -> list[tuple[str, Callable[[contextlib.ExitStack], None]]]:
    """(label, patcher) per optimisation step, newest first; each patcher undoes its step."""
    reg = importlib.import_module("hydraquant.features.registry")
    inputs = importlib.import_module("hydraquant.features.inputs")
    structure = importlib.import_module("hydraquant.features.structure")
    calendar = importlib.import_module("hydraquant.features.calendar")
    one_at_a_time = inputs.rolling_many

    def kernels(stack: contextlib.ExitStack) -> None:
        stack.enter_context(
            mock.patch.object(structure, "block_profile_levels", block_profile_reference)
        )
        stack.enter_context(mock.patch.object(inputs, "dense_codes", unique_codes))

    def post_processing(stack: contextlib.ExitStack) -> None:
        def per_column(specs, ctx):  # normalise every column on its own, as before
            return pl.DataFrame([reg._evaluate(spec, ctx) for spec in specs])

        def grouped(frame):  # always regroup, even one symbol
            return [(k[0], b) for k, b in frame.group_by(["symbol"], maintain_order=True)]

        stack.enter_context(mock.patch.object(reg, "evaluate_symbol", per_column))
        stack.enter_context(mock.patch.object(reg, "_by_symbol", grouped))
        stack.enter_context(
            mock.patch.object(reg, "_sort_by_symbol_ts", lambda f: f.sort(["symbol", "ts"]))
        )

    def fused(stack: contextlib.ExitStack) -> None:
        def separately(requests, *, ddof=1):  # one polars query per window statistic
            return [one_at_a_time([r], ddof=ddof)[0] for r in requests]

        stack.enter_context(mock.patch.object(inputs, "rolling_many", separately))
        stack.enter_context(mock.patch.object(calendar, "_utc_clock", lambda ctx: None))

    def memo(stack: contextlib.ExitStack) -> None:
        stack.enter_context(
            mock.patch.object(reg.FeatureContext, "cached", lambda self, key, compute: compute())
        )

    return [
        ("- compiled block profile + radix ranking", kernels),
        ("- one post-processing select, single-symbol path", post_processing),
        ("- fused rolling queries (MOI family, mean+std), clock once", fused),
        ("- per-build memo (= every feature alone, pre-issue-3 structure)", memo),
    ]


def step_lines(bars: pl.DataFrame, got: pl.DataFrame, seed_best: float, repeat: int) -> list[str]:
    """Time the build with the optimisation steps undone one by one (cumulatively)."""
    lines = ["steps (undone cumulatively, newest first; outputs asserted identical):"]
    with contextlib.ExitStack() as stack:
        for label, undo in _step_patches():
            undo(stack)
            t = best_of(lambda: ours(bars), repeat=repeat)
            for name in FEATURE_COLS:
                a, b = got.get_column(name).to_numpy(), t.result.get_column(name).to_numpy()
                assert np.array_equal(a, b, equal_nan=True), f"{label}: {name} changed"
            lines.append(
                f"    {label:<66} {t.best:.3f} s  runs {[round(r, 3) for r in t.runs]}  "
                f"-> {seed_best / t.best:.2f}x vs pandas"
            )
    return lines


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activity", type=float, default=1.3, help="simulator trade-rate scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--steps", action="store_true", help="also time the build with each optimisation undone"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    trades = simulated_day(args.seed, args.activity)
    bars = trades_to_bars(trades, INTERVAL, empty="drop")
    prep_s = time.perf_counter() - start
    pdf = to_seed_bars(bars)
    if trades.height < 2_000_000:
        print(f"note: only {trades.height:,} trades (< 2 M, the issue's size); raise --activity")

    t_ours = best_of(lambda: ours(bars), repeat=args.repeat)  # warm-up call compiles numba
    t_seed = best_of(lambda: seed000_features(pdf), repeat=args.repeat)
    got, seed = t_ours.result, t_seed.result
    assert got.columns[-len(FEATURE_COLS) :] == FEATURE_COLS, got.columns
    assert got.height == len(seed) == bars.height

    ratio = t_seed.best / t_ours.best
    speed = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x SLOWER"
    lines = [
        f"polars {pl.__version__}, pandas {pd.__version__}, numpy {np.__version__}",
        (
            f"data: simulated BTCUSDT day (seed {args.seed}, activity {args.activity:g}): "
            f"{trades.height:,} aggTrades -> {bars.height:,} bars of {INTERVAL} "
            f"(empty intervals dropped, as the seed; simulate+bars {prep_s:.1f} s, not timed)"
        ),
        (
            f"features: {len(FEATURE_COLS)} (hydra_v3 = seed 000 FEATURE_COLS), "
            f"best of {args.repeat} after 1 warm-up"
        ),
        (
            f"ours   build_features(bars, 'hydra_v3'): {t_ours.best:.3f} s  "
            f"runs {[round(r, 3) for r in t_ours.runs]}"
        ),
        (
            f"pandas seed 000 feature code (full day, incl. its block loop): {t_seed.best:.3f} s  "
            f"runs {[round(r, 3) for r in t_seed.runs]}"
        ),
        f"ratio: {speed} (target >= 2x faster while causal: {'OK' if ratio >= 2 else 'MISSED'})",
    ]
    if args.steps:
        lines += step_lines(bars, got, t_seed.best, args.repeat)
    lines += agreement_lines(got, seed)
    lines += causality_lines(bars, got, seed)
    lines.append(f"process peak RSS: {rss_peak_mb():,.0f} MB")
    report(lines)


if __name__ == "__main__":
    main()
