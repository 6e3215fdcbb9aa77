"""Numba kernels behind the labelers (vectorbt-style: kernels here, thin typed wrappers elsewhere).

Why kernels at all: forward-looking labels ("highest price in the next 1200
bars", "first bar that touches the take-profit") are O(n*h) when written the
obvious way, which is what made the seed notebooks take tens of minutes per
symbol.  Every kernel here is O(n) (monotone deques, cumulative sums) or
O(n log h) (a sparse table of block maxima searched by binary lifting).

Conventions shared by all kernels:

* arrays are float64 / int64, one symbol, time-ascending;
* "forward window of h bars after i" means bars ``i+1 .. i+h`` (the decision
  is taken at the close of bar ``i``; bar ``i`` itself is already known);
* an index result of ``-1`` means "not found / not defined".
"""

from __future__ import annotations

import numba as nb
import numpy as np

# --------------------------------------------------------------------------- rolling extremes


@nb.njit(cache=True)
def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing max over ``x[k-window+1 .. k]`` (partial at the start), O(n) via a monotone deque."""
    n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    dq = np.empty(n, dtype=np.int64)  # indices, values decreasing
    head = 0
    tail = 0
    for k in range(n):
        v = x[k]
        while tail > head and x[dq[tail - 1]] <= v:
            tail -= 1
        dq[tail] = k
        tail += 1
        if dq[head] <= k - window:
            head += 1
        out[k] = x[dq[head]]
    return out


@nb.njit(cache=True)
def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing min over ``x[k-window+1 .. k]`` (partial at the start), O(n) via a monotone deque."""
    n = x.shape[0]
    out = np.empty(n, dtype=np.float64)
    dq = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for k in range(n):
        v = x[k]
        while tail > head and x[dq[tail - 1]] >= v:
            tail -= 1
        dq[tail] = k
        tail += 1
        if dq[head] <= k - window:
            head += 1
        out[k] = x[dq[head]]
    return out


@nb.njit(cache=True)
def forward_max(x: np.ndarray, horizon: int) -> np.ndarray:
    """Max of ``x[i+1 .. i+horizon]``; NaN where the window runs past the data."""
    n = x.shape[0]
    trail = rolling_max(x, horizon)
    out = np.full(n, np.nan)
    for i in range(n - horizon):
        out[i] = trail[i + horizon]
    return out


@nb.njit(cache=True)
def forward_min(x: np.ndarray, horizon: int) -> np.ndarray:
    """Min of ``x[i+1 .. i+horizon]``; NaN where the window runs past the data."""
    n = x.shape[0]
    trail = rolling_min(x, horizon)
    out = np.full(n, np.nan)
    for i in range(n - horizon):
        out[i] = trail[i + horizon]
    return out


# --------------------------------------------------------------------------- first touch


@nb.njit(cache=True)
def _log2_floor(h: int) -> int:
    k = 0
    while (1 << (k + 1)) <= h:
        k += 1
    return k


@nb.njit(cache=True)
def block_max_table(x: np.ndarray, horizon: int) -> np.ndarray:
    """Sparse table ``T[k, j] = max(x[j .. j+2^k-1])`` for ``2^k <= horizon``.

    Only log2(horizon)+1 levels are built because a query never spans more
    than ``horizon`` bars, which keeps memory at O(n log h).
    """
    n = x.shape[0]
    levels = _log2_floor(max(horizon, 1)) + 1
    table = np.empty((levels, n), dtype=np.float64)
    for j in range(n):
        table[0, j] = x[j]
    for k in range(1, levels):
        half = 1 << (k - 1)
        for j in range(n):
            if j + half < n:
                a = table[k - 1, j]
                b = table[k - 1, j + half]
                table[k, j] = max(a, b)
            else:
                table[k, j] = table[k - 1, j]
    return table


LINEAR_PROBE = 16  # most barriers are touched within a few bars: scan those before lifting


@nb.njit(cache=True)
def _lift(table: np.ndarray, pos: int, hi: int, level: float) -> int:
    """Binary lifting from ``pos``: skip whole blocks whose max is below ``level``; O(log h)."""
    if pos > hi:
        return -1
    top = table.shape[0] - 1
    size = 1 << top
    while pos + size - 1 <= hi and table[top, pos] < level:
        pos += size
    for k in range(top - 1, -1, -1):
        size = 1 << k
        if pos + size - 1 <= hi and table[k, pos] < level:
            pos += size
    if pos <= hi and table[0, pos] >= level:
        return pos
    return -1


@nb.njit(cache=True)
def first_at_or_above(table: np.ndarray, lo: int, hi: int, level: float) -> int:
    """Smallest ``j`` in ``[lo, hi]`` with ``x[j] >= level`` (``table`` from block_max_table), else -1.

    A short linear probe first (cache-friendly, catches early touches), then
    binary lifting; O(log h) per query.
    """
    if lo > hi:
        return -1
    probe_end = min(hi, lo + LINEAR_PROBE - 1)
    for j in range(lo, probe_end + 1):
        if table[0, j] >= level:
            return j
    return _lift(table, probe_end + 1, hi, level)


@nb.njit(cache=True)
def barrier_trades(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    tp_dist: np.ndarray,
    sl_dist: np.ndarray,
    horizon: int,
):
    """Simulate a long AND a short trade per bar: entry ``close[i]``, TP/SL at ``close[i] +- dist``, max ``horizon`` bars.

    Bars ``i+1 .. i+horizon`` are scanned with high/low; the first touch wins
    and a bar touching both barriers counts as stop-loss (the intrabar order
    is unknown, so assume the worse one).  A stop fills at the worse of the
    barrier and the bar's open (a gap through the stop fills at the open); a
    take-profit fills at the barrier (no credit for favourable gaps).  Rows
    without a full horizon, or with a NaN/non-positive distance, stay
    undefined (exit index -1).  Each trade is probed linearly for
    ``LINEAR_PROBE`` bars (both barriers in one pass), then resolved with
    sparse-table binary lifting, so the worst case is O(n log h).

    Returns ``(hit, exit_idx, exit_price)``, each shaped (2, n): row 0 long,
    row 1 short; hit 1=TP, -1=SL, 0=time-out.
    """
    n = close.shape[0]
    hit = np.zeros((2, n), dtype=np.int8)
    exit_idx = np.full((2, n), -1, dtype=np.int64)
    exit_price = np.full((2, n), np.nan)
    hi_table = block_max_table(high, horizon)
    lo_table = block_max_table(-low, horizon)  # low[j] <= level  <=>  -low[j] >= -level
    for i in range(n - horizon):
        c = close[i]
        tp = tp_dist[i]
        sl = sl_dist[i]
        if not (tp > 0.0 and sl > 0.0):
            continue
        lo = i + 1
        hi = i + horizon
        probe_end = min(hi, lo + LINEAR_PROBE - 1)
        for s in range(2):
            if s == 0:
                tp_level = c + tp
                sl_level = c - sl
            else:
                tp_level = c - tp
                sl_level = c + sl
            j_tp = -1
            j_sl = -1
            for j in range(lo, probe_end + 1):
                if s == 0:
                    if low[j] <= sl_level:
                        j_sl = j
                        break
                    if high[j] >= tp_level:
                        j_tp = j
                        break
                else:
                    if high[j] >= sl_level:
                        j_sl = j
                        break
                    if low[j] <= tp_level:
                        j_tp = j
                        break
            if j_sl < 0 and j_tp < 0 and probe_end < hi:
                start = probe_end + 1
                if s == 0:
                    j_tp = _lift(hi_table, start, hi, tp_level)
                    # a stop touched after the target is irrelevant: search only up to j_tp
                    j_sl = _lift(lo_table, start, hi if j_tp < 0 else j_tp, -sl_level)
                else:
                    j_tp = _lift(lo_table, start, hi, -tp_level)
                    j_sl = _lift(hi_table, start, hi if j_tp < 0 else j_tp, sl_level)
            if j_sl >= 0:
                hit[s, i] = -1
                exit_idx[s, i] = j_sl
                o = open_[j_sl]
                if s == 0:
                    exit_price[s, i] = min(sl_level, o)
                else:
                    exit_price[s, i] = max(sl_level, o)
            elif j_tp >= 0:
                hit[s, i] = 1
                exit_idx[s, i] = j_tp
                exit_price[s, i] = tp_level
            else:
                exit_idx[s, i] = hi
                exit_price[s, i] = close[hi]
    return hit, exit_idx, exit_price


# --------------------------------------------------------------------------- event filters


@nb.njit(cache=True)
def cusum_events(diff: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Symmetric CUSUM filter (Lopez de Prado, AFML 2.5.2.1): +1/-1 where a run crosses, else 0.

    ``diff`` is the per-bar change (log return); ``threshold`` may vary per bar
    but must itself be causal.  NaN inputs are skipped without resetting.
    """
    n = diff.shape[0]
    out = np.zeros(n, dtype=np.int8)
    s_pos = 0.0
    s_neg = 0.0
    for t in range(n):
        d = diff[t]
        h = threshold[t]
        if np.isnan(d) or np.isnan(h):
            continue
        s_pos = max(0.0, s_pos + d)
        s_neg = min(0.0, s_neg + d)
        if s_neg < -h:
            s_neg = 0.0
            out[t] = -1
        elif s_pos > h:
            s_pos = 0.0
            out[t] = 1
    return out
