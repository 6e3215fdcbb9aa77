"""Bar-input preparation and the causal rolling primitives every feature group shares.

Why one module: klines and trade bars name their order-flow columns
differently, and every feature group needs the same trailing-window
statistics.  Writing the window maths once (trailing, full-window warm-up,
NaN in -> NaN out, never back-filled) means a causality bug is fixed in one
place, and the other feature modules stay declarative.

All window helpers take numpy arrays and return float64 arrays of the same
length; row ``i`` depends on rows ``<= i`` only.
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit
import polars as pl

from hydraquant.features.registry import FeatureContext

log = logging.getLogger(__name__)

EPS = 1e-6  # the seed's denominator guard for z-scores and ratios


def prepare_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Give klines the trade-bar order-flow columns so order-flow features work on both.

    Binance klines carry ``taker_buy_volume`` (aggressive buys).  The
    aggressive sells are the rest of the volume, hence
    ``signed_volume = buy - sell = 2 * taker_buy_volume - volume``.
    Existing ``buy_volume``/``signed_volume`` columns are never overwritten;
    frames without taker volume are returned unchanged (order-flow features
    then report their missing input).
    """
    cols = set(frame.columns)
    if "taker_buy_volume" not in cols or "volume" not in cols:
        return frame
    derived = []
    if "buy_volume" not in cols:
        derived.append(pl.col("taker_buy_volume").cast(pl.Float64).alias("buy_volume"))
    if "signed_volume" not in cols:
        derived.append(
            (
                2.0 * pl.col("taker_buy_volume").cast(pl.Float64)
                - pl.col("volume").cast(pl.Float64)
            ).alias("signed_volume")
        )
    return frame.with_columns(derived) if derived else frame


# --------------------------------------------------------------------------- windows


def window(ctx: FeatureContext, duration: str, *, min_bars: int = 1) -> int:
    """Bars covering ``duration`` on this context's interval, never fewer than ``min_bars``.

    A window shorter than one bar (``MOI_250ms`` on 1m klines) collapses to
    the 1-bar value; statistics that need two points (std) pass ``min_bars=2``.
    """
    return max(min_bars, ctx.n_bars(duration))


def _series(x: np.ndarray) -> pl.Series:
    # NaN -> null so a window containing a missing value yields NaN instead of
    # silently averaging over fewer points (min_samples = full window).
    return pl.Series(np.asarray(x, dtype=np.float64)).fill_nan(None)


def _out(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Float64).fill_null(float("nan")).to_numpy().astype(np.float64, copy=False)


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    return _out(_series(x).rolling_sum(n, min_samples=n))


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    return _out(_series(x).rolling_mean(n, min_samples=n))


def rolling_std(x: np.ndarray, n: int, *, ddof: int = 1) -> np.ndarray:
    """Trailing sample std (ddof=1 as pandas, the seed's reference); NaN until full."""
    n = max(n, ddof + 1)
    return _out(_series(x).rolling_std(n, min_samples=n, ddof=ddof))


def rolling_z(x: np.ndarray, n: int, *, eps: float = EPS) -> np.ndarray:
    """(x - trailing mean) / (trailing std + eps): the seed's z-score, made causal."""
    n = max(n, 2)
    return (np.asarray(x, dtype=np.float64) - rolling_mean(x, n)) / (rolling_std(x, n) + eps)


def rolling_pct_rank(x: np.ndarray, n: int) -> np.ndarray:
    """Percentile rank of the current value within its trailing ``n`` values, in (0, 1].

    Ties get the average rank, as pandas ``rolling(n).rank(pct=True)``: the
    seed's vol_rank.  Only the past window is ranked — never the full sample.
    """
    x = np.asarray(x, dtype=np.float64)
    finite = np.isfinite(x)
    codes = np.full(x.shape[0], -1, dtype=np.int64)
    distinct, inverse = np.unique(x[finite], return_inverse=True)
    codes[finite] = inverse
    return _rolling_rank_kernel(codes, int(n), int(distinct.shape[0]))


@njit(cache=True)
def _rolling_rank_kernel(codes: np.ndarray, n: int, m: int) -> np.ndarray:  # pragma: no cover - numba
    """Average-tie percentile rank over a trailing window with a Fenwick tree: O(len * log m).

    ``codes`` are the dense ranks of the values (-1 for NaN); a window holding
    a NaN gives NaN, as polars/pandas do with ``min_samples=n``.
    """
    size = codes.shape[0]
    tree = np.zeros(m + 1, np.int64)
    out = np.full(size, np.nan)
    nan_in = 0
    for i in range(size):
        c = codes[i]
        if c < 0:
            nan_in += 1
        else:
            j = c + 1
            while j <= m:
                tree[j] += 1
                j += j & -j
        k = i - n
        if k >= 0:
            old = codes[k]
            if old < 0:
                nan_in -= 1
            else:
                j = old + 1
                while j <= m:
                    tree[j] -= 1
                    j += j & -j
        if i >= n - 1 and nan_in == 0:
            less_equal = 0
            j = c + 1
            while j > 0:
                less_equal += tree[j]
                j -= j & -j
            less = 0
            j = c
            while j > 0:
                less += tree[j]
                j -= j & -j
            out[i] = (less + (less_equal - less + 1) / 2.0) / n
    return out


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """Value ``k`` rows earlier (k >= 1), NaN for the first ``k`` rows."""
    if k < 1:
        raise ValueError(f"shift needs k >= 1 to stay causal, got {k}")
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    out[k:] = x[:-k]
    return out


def diff(x: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) - shift(x, k)


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with x/0 -> +-inf and 0/0 -> NaN, without numpy warnings."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num, dtype=np.float64) / np.asarray(den, dtype=np.float64)


def pct_change(x: np.ndarray, k: int) -> np.ndarray:
    """(x_t - x_{t-k}) / x_{t-k} as pandas: a zero base gives +-inf, 0/0 gives NaN."""
    base = shift(x, k)
    return safe_div(np.asarray(x, dtype=np.float64) - base, base)


def simple_returns(close: np.ndarray) -> np.ndarray:
    return pct_change(close, 1)


def log_returns(close: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(safe_div(close, shift(close, 1)))
