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
from collections.abc import Sequence

import numpy as np
import polars as pl
from numba import njit

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


def _window_expr(name: str, op: str, n: int, ddof: int) -> pl.Expr:
    # NaN -> null so a window containing a missing value yields NaN instead of
    # silently averaging over fewer points (min_samples = full window).
    col = pl.col(name).fill_nan(None)
    if op == "sum":
        out = col.rolling_sum(n, min_samples=n)
    elif op == "mean":
        out = col.rolling_mean(n, min_samples=n)
    elif op == "std":
        n = max(n, ddof + 1)
        out = col.rolling_std(n, min_samples=n, ddof=ddof)
    else:
        raise ValueError(f"unknown rolling op {op!r}: use 'sum', 'mean' or 'std'")
    # NaN for warm-up inside the query, so the result converts to numpy without a copy
    return out.fill_null(float("nan"))


def rolling_many(
    requests: Sequence[tuple[np.ndarray, str, int]], *, ddof: int = 1
) -> list[np.ndarray]:
    """Several trailing-window statistics ``(x, "sum" | "mean" | "std", n)`` in ONE polars query.

    Why: each statistic alone is a few milliseconds of work plus a query's
    fixed cost, and they run one after another; in one query polars runs
    them in parallel and converts each input once.  The values are exactly
    those of the one-at-a-time helpers (same kernels).
    """
    results: list[np.ndarray | None] = [None] * len(requests)
    columns: dict[str, np.ndarray] = {}
    names: dict[int, str] = {}
    exprs = []
    for i, (x, op, n) in enumerate(requests):
        if int(n) == 1 and op in ("sum", "mean"):
            # a 1-bar window is the value itself (polars gives the same; + 0.0 folds -0.0 as it does)
            results[i] = np.asarray(x, dtype=np.float64) + 0.0
            continue
        key = id(x)
        if key not in names:
            names[key] = f"x{len(names)}"
            columns[names[key]] = np.asarray(x, dtype=np.float64)
        exprs.append(_window_expr(names[key], op, int(n), ddof).alias(str(i)))
    if exprs:
        for s in pl.DataFrame(columns).select(exprs).iter_columns():
            results[int(s.name)] = s.to_numpy()
    return results  # type: ignore[return-value]


def rolling_sum(x: np.ndarray, n: int) -> np.ndarray:
    return rolling_many([(x, "sum", n)])[0]


def rolling_mean(x: np.ndarray, n: int) -> np.ndarray:
    return rolling_many([(x, "mean", n)])[0]


def rolling_std(x: np.ndarray, n: int, *, ddof: int = 1) -> np.ndarray:
    """Trailing sample std (ddof=1 as pandas, the seed's reference); NaN until full."""
    return rolling_many([(x, "std", n)], ddof=ddof)[0]


def rolling_mean_std(x: np.ndarray, n: int, *, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and std over the same ``n`` bars, computed together in one query."""
    mean, std = rolling_many([(x, "mean", n), (x, "std", n)], ddof=ddof)
    return mean, std


def rolling_z(x: np.ndarray, n: int, *, eps: float = EPS) -> np.ndarray:
    """(x - trailing mean) / (trailing std + eps): the seed's z-score, made causal."""
    n = max(n, 2)
    mean, std = rolling_mean_std(x, n)
    return (np.asarray(x, dtype=np.float64) - mean) / (std + eps)


def rolling_pct_rank(x: np.ndarray, n: int) -> np.ndarray:
    """Percentile rank of the current value within its trailing ``n`` values, in (0, 1].

    Ties get the average rank, as pandas ``rolling(n).rank(pct=True)``: the
    seed's vol_rank.  Only the past window is ranked — never the full sample.

    Values are ranked after rounding to ``RANK_MANTISSA_BITS`` significant
    bits (~8 decimal digits).  Why: the ranked inputs are rolling sums whose
    last bits depend on where the history starts, and exact ties are common
    (a window of zero returns entering and leaving); without rounding, the
    same bar ranked from a warm-up window (``predict``, live) and from the
    full history (the run) disagreed on up to ~19 % of rows of a quiet
    market.  Rounding makes them agree; values closer than 1e-8 relative are
    ranked as ties, far below any meaningful difference in volatility.
    """
    codes, m = dense_codes(round_mantissa(x, RANK_MANTISSA_BITS))
    # a tree node counts at most n values: the narrowest integer keeps the tree in cache
    dtype = np.int16 if n < 2**15 else np.int32 if n < 2**31 else np.int64
    return _rolling_rank_kernel(codes, int(n), np.zeros(m + 1, dtype), np.zeros(max(m, 1), dtype))


#: significant bits kept before ranking (float64 has 53)
RANK_MANTISSA_BITS = 28


def round_mantissa(x: np.ndarray, bits: int) -> np.ndarray:
    """``x`` rounded to ``bits`` significant binary digits (nearest, ties away from zero); NaN/inf kept."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    drop = 52 - bits
    if drop <= 0:
        return x
    raw = x.view(np.uint64)
    rounded = ((raw + np.uint64(1 << (drop - 1))) & ~np.uint64((1 << drop) - 1)).view(np.float64)
    return np.where(np.isfinite(x), rounded, x)


def dense_codes(x: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank of each value from 0 (equal values share a code; -1 for NaN/inf), and the count.

    Same codes as ``np.unique(x[finite], return_inverse=True)``, from a
    compiled LSD radix sort on the float bits: 4-5x faster than numpy's or
    polars' comparison sorts on 300 k values, which made the ranking of the
    rolling rank cost more than the rank itself.
    """
    x = np.ascontiguousarray(x, dtype=np.float64) + 0.0  # -0.0 -> 0.0: the two zeros compare equal
    return _radix_dense_codes(x.view(np.uint64), np.isfinite(x))


@njit(cache=True)
def _radix_dense_codes(
    bits: np.ndarray, finite: np.ndarray
) -> tuple[np.ndarray, int]:  # pragma: no cover - numba
    size = bits.shape[0]
    keys = np.empty(size, np.uint64)
    rows = np.empty(size, np.int64)
    m = 0
    sign = np.uint64(1) << np.uint64(63)
    for i in range(size):
        if finite[i]:
            u = bits[i]
            # order-preserving map of IEEE doubles onto unsigned integers
            keys[m] = ~u if u & sign else u | sign
            rows[m] = i
            m += 1
    keys = keys[:m]
    rows = rows[:m]
    keys_tmp = np.empty(m, np.uint64)
    rows_tmp = np.empty(m, np.int64)
    start = np.empty(65536, np.int64)
    for p in range(4):  # 16 bits per pass, least significant first (stable)
        shift = np.uint64(16 * p)
        start[:] = 0
        for i in range(m):
            start[(keys[i] >> shift) & np.uint64(0xFFFF)] += 1
        total = 0
        for b in range(65536):
            c = start[b]
            start[b] = total
            total += c
        for i in range(m):
            b = (keys[i] >> shift) & np.uint64(0xFFFF)
            j = start[b]
            start[b] = j + 1
            keys_tmp[j] = keys[i]
            rows_tmp[j] = rows[i]
        keys, keys_tmp = keys_tmp, keys
        rows, rows_tmp = rows_tmp, rows
    codes = np.full(size, -1, np.int64)
    code = -1
    for j in range(m):
        if j == 0 or keys[j] != keys[j - 1]:
            code += 1
        codes[rows[j]] = code
    return codes, code + 1


@njit(cache=True)
def _rolling_rank_kernel(
    codes: np.ndarray, n: int, tree: np.ndarray, count: np.ndarray
) -> np.ndarray:  # pragma: no cover - numba
    """Average-tie percentile rank over a trailing window with a Fenwick tree: O(len * log m).

    ``codes`` are the dense ranks of the values (-1 for NaN); a window holding
    a NaN gives NaN, as polars/pandas do with ``min_samples=n``.  Besides the
    tree (counts of codes below), a plain count per code gives the ties
    directly, so each bar costs two tree updates and one prefix query.
    ``tree`` (m + 1 zeros) and ``count`` (m zeros) are the caller's scratch arrays.
    """
    m = tree.shape[0] - 1
    size = codes.shape[0]
    out = np.full(size, np.nan)
    nan_in = 0
    for i in range(size):
        c = codes[i]
        if c < 0:
            nan_in += 1
        else:
            count[c] += 1
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
                count[old] -= 1
                j = old + 1
                while j <= m:
                    tree[j] -= 1
                    j += j & -j
        if i >= n - 1 and nan_in == 0:
            less = 0
            j = c
            while j > 0:
                less += tree[j]
                j -= j & -j
            out[i] = (less + (count[c] + 1) / 2.0) / n
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


def returns(ctx: FeatureContext) -> np.ndarray:
    """Simple close-to-close returns of the context's bars, computed once per build."""
    return ctx.cached(("returns",), lambda: simple_returns(ctx.fcol("close")))


def log_returns(close: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(safe_div(close, shift(close, 1)))
