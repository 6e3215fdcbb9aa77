"""Benchmark: trades -> 250ms bars, hydraquant vs pandas resample (same run, best of 3).

Synthetic but realistic day of trades: sorted random arrival times, a random
walk price, lognormal sizes and a random aggressor side.  The pandas baseline
computes exactly the same columns (OHLC, vwap, volume, buy volume, signed
volume, trade count, quote volume) and drops empty intervals, as
``trades_to_bars(..., empty="drop")`` does; results are checked equal before
any number is printed.

Run: ``.venv/bin/python bench/bars.py [--trades 2000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import polars as pl
from _common import best_of, ratio_line, report, rss_peak_mb, traced_peak_mb

from hydraquant.bars import resample_bars, trades_to_bars

DAY_US = 86_400_000_000
START_US = 1_721_347_200_000_000  # 2024-07-19 00:00 UTC


def synthetic_trades(n: int, seed: int = 7) -> pl.DataFrame:
    """One UTC day of ``n`` trades for one symbol (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.integers(0, DAY_US, n)) + START_US
    price = np.round(60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-5, n))), 1)
    qty = np.round(rng.lognormal(-4.5, 1.5, n), 3) + 0.001
    return pl.DataFrame(
        {
            "ts": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "price": price,
            "qty": qty,
            "is_buyer_maker": rng.random(n) < 0.5,
        }
    )


def pandas_bars(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    """The idiomatic pandas way (seed 000 style), computing the same columns as ours."""
    sign = np.where(df["is_buyer_maker"].to_numpy(), -1.0, 1.0)
    work = df.assign(
        pq=df["price"] * df["qty"],
        buy=np.where(sign > 0, df["qty"], 0.0),
        signed=sign * df["qty"],
    )
    out = (
        work.set_index("ts")
        .resample(rule)
        .agg(
            open=("price", "first"),
            high=("price", "max"),
            low=("price", "min"),
            close=("price", "last"),
            pq=("pq", "sum"),
            volume=("qty", "sum"),
            buy_volume=("buy", "sum"),
            signed_volume=("signed", "sum"),
            trade_count=("qty", "count"),
        )
    )
    out = out[out["trade_count"] > 0]
    out["vwap"] = out["pq"] / out["volume"]
    out["quote_volume"] = out.pop("pq")
    return out


def check_equal(ours: pl.DataFrame, theirs: pd.DataFrame) -> None:
    assert ours.height == len(theirs), (ours.height, len(theirs))
    np.testing.assert_array_equal(
        ours["ts"].dt.epoch("us").to_numpy(),
        theirs.index.asi8 // 1_000 if theirs.index.unit == "ns" else theirs.index.asi8,
    )
    for name in ("open", "high", "low", "close", "trade_count"):
        np.testing.assert_array_equal(ours[name].to_numpy(), theirs[name].to_numpy())
    for name in ("vwap", "volume", "buy_volume", "signed_volume", "quote_volume"):
        np.testing.assert_allclose(
            ours[name].to_numpy(), theirs[name].to_numpy(), rtol=1e-9, atol=1e-9
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    trades = synthetic_trades(args.trades)
    trades_pd = trades.to_pandas()

    ours = best_of(lambda: trades_to_bars(trades, "250ms"), repeat=args.repeat)
    theirs = best_of(lambda: pandas_bars(trades_pd, "250ms"), repeat=args.repeat)
    check_equal(ours.result, theirs.result)
    ffill = best_of(lambda: trades_to_bars(trades, "250ms", empty="ffill"), repeat=args.repeat)
    bars_1s = trades_to_bars(trades, "1s", empty="ffill")
    resampled = best_of(
        lambda: resample_bars(bars_1s, "1m", source_interval="1s"), repeat=args.repeat
    )
    _, traced = traced_peak_mb(lambda: trades_to_bars(trades, "250ms"))

    report(
        [
            f"trades: {trades.height:,} over one day -> "
            f"{ours.result.height:,} bars of 250ms (drop empty)",
            ratio_line(
                "trades_to_bars 250ms", ours, theirs, baseline_name="pandas resample", target=5.0
            ),
            f"trades_to_bars 250ms empty='ffill': {ffill.best:.4f} s, {ffill.result.height:,} bars",
            f"resample_bars 1s -> 1m ({bars_1s.height:,} -> {resampled.result.height:,} bars): "
            f"{resampled.best:.4f} s",
            f"peak traced (numpy) memory of one trades_to_bars call: {traced:.0f} MB; "
            f"process peak RSS: {rss_peak_mb():.0f} MB",
        ]
    )


if __name__ == "__main__":
    main()
