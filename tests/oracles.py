"""Straightforward formulations that compiled kernels replaced, kept as oracles.

The tests check the kernels against them, and ``bench/features.py`` patches
them back in to measure what each optimisation step bought.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hydraquant.features.structure import bin_price, price_bins


def unique_codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes of the finite values via ``np.unique`` (-1 for NaN/inf), and their count."""
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    codes = np.full(x.shape[0], -1, dtype=np.int64)
    distinct, inverse = np.unique(x[finite], return_inverse=True)
    codes[finite] = inverse
    return codes, int(distinct.shape[0])


def block_profile_reference(
    ts: pl.Series, close: np.ndarray, volume: np.ndarray, *, block_us: int, bin_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The polars block profile (group_by (block, bin), sorts, join): POC and LVN of the previous block."""
    frame = pl.DataFrame(
        {
            "block": ts.dt.epoch("us") // block_us,
            "bin": pl.Series(price_bins(close, bin_bps)).fill_nan(None).cast(pl.Int64),
            "volume": pl.Series(np.asarray(volume, dtype=np.float64)).fill_nan(None),
        }
    )
    prof = frame.drop_nulls().group_by(["block", "bin"]).agg(pl.col("volume").sum())
    poc = (
        prof.sort(["block", "volume", "bin"], descending=[False, True, False])
        .group_by("block", maintain_order=True)
        .first()
        .select("block", pl.col("bin").alias("poc"))
    )
    lvn = (
        prof.sort(["block", "volume", "bin"])
        .group_by("block", maintain_order=True)
        .first()
        .select("block", pl.col("bin").alias("lvn"))
    )
    levels = poc.join(lvn, on="block").with_columns((pl.col("block") + 1).alias("use_in"))
    rows = (
        frame.select("block")
        .with_row_index("_row")
        .join(levels.drop("block"), left_on="block", right_on="use_in", how="left")
        .sort("_row")
    )
    poc_price, lvn_price = (
        bin_price(rows.get_column(c).cast(pl.Float64).fill_null(float("nan")).to_numpy(), bin_bps)
        for c in ("poc", "lvn")
    )
    return poc_price, lvn_price
