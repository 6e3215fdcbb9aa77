"""Numba kernels for recursive indicators (EMA, Wilder smoothing, RSI, ATR, ADX, streaks).

Why numba: these indicators are recursive (each value depends on the previous
one), so they cannot be written as a rolling window; a compiled single pass is
O(n) and as fast as C.  Every kernel is causal by construction (it only walks
forward) and returns NaN during its warm-up instead of a half-initialised value.

Conventions (shared by every kernel, documented once):

* **Seeding.** Exponential averages are seeded with the simple mean of their
  first ``n`` valid inputs and emitted from that row on (the classic Wilder /
  TA-Lib convention).  pandas ``ewm(adjust=False)`` -- used by the ``ta``
  library -- instead starts from the first input; both converge, and the
  difference decays like ``(1 - alpha) ** k``; see
  tests/unit/test_indicator_crosscheck.py.
* **Leading NaNs** are skipped: the series starts at its first finite value.
* **Interior NaNs** produce NaN at that row and leave the state untouched, so
  one missing bar does not erase hours of history (``wilder_atr_nb`` can
  instead restart after one: ``restart_after_nan``, used by ``atr_14``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

_NB = {"cache": True, "nogil": True}


@nb.njit(**_NB)
def ema_nb(x: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """Exponential average with smoothing ``alpha``, SMA-seeded over the first ``n`` values."""
    out = np.full(x.shape[0], np.nan)
    count = 0
    acc = 0.0
    state = np.nan
    for i in range(x.shape[0]):
        v = x[i]
        if not np.isfinite(v):
            continue
        if count < n:
            acc += v
            count += 1
            if count == n:
                state = acc / n
                out[i] = state
        else:
            state = state + alpha * (v - state)
            out[i] = state
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Standard EMA (alpha = 2/(n+1)); first value at the n-th valid input."""
    return ema_nb(np.ascontiguousarray(x, dtype=np.float64), int(n), 2.0 / (n + 1.0))


def wilder(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder's smoothing (alpha = 1/n), the average behind RSI, ATR and ADX."""
    return ema_nb(np.ascontiguousarray(x, dtype=np.float64), int(n), 1.0 / n)


@nb.njit(**_NB)
def rsi_nb(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder RSI in [0, 100]; first value at row n (needs n price changes).

    A window with no movement at all (avg gain = avg loss = 0) is 50, not NaN:
    a flat market is neither overbought nor oversold.
    """
    size = close.shape[0]
    out = np.full(size, np.nan)
    prev = np.nan
    count = 0
    gain = 0.0
    loss = 0.0
    for i in range(size):
        c = close[i]
        if not np.isfinite(c):
            continue
        if not np.isfinite(prev):
            prev = c
            continue
        d = c - prev
        prev = c
        up = d if d > 0 else 0.0
        dn = -d if d < 0 else 0.0
        if count < n:
            gain += up
            loss += dn
            count += 1
            if count < n:
                continue
            gain /= n
            loss /= n
        else:
            gain += (up - gain) / n
            loss += (dn - loss) / n
        if loss == 0.0:
            out[i] = 50.0 if gain == 0.0 else 100.0
        else:
            out[i] = 100.0 - 100.0 / (1.0 + gain / loss)
    return out


def rsi(close: np.ndarray, n: int = 14) -> np.ndarray:
    return rsi_nb(np.ascontiguousarray(close, dtype=np.float64), int(n))


@nb.njit(**_NB)
def wilder_atr_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int, restart_after_nan: bool
) -> np.ndarray:
    """Wilder ATR: the mean of the first ``n`` true ranges, then
    ATR_t = (ATR_{t-1} * (n - 1) + TR_t) / n (``ta``'s recurrence, so both agree
    to the last bits from the first value on).

    A bar without a true range (missing high/low) is NaN.  ``restart_after_nan``
    picks what happens next: True re-seeds from the following n bars (the
    volatility group's ``atr_14``: an ATR spanning a data hole is not trusted);
    False keeps the state, as every other kernel here (one missing bar does
    not erase hours of history).  The bar after a missing close uses high - low.
    """
    size = high.shape[0]
    out = np.full(size, np.nan)
    count = 0
    acc = 0.0
    prev_close = np.nan
    for i in range(size):
        tr = high[i] - low[i]
        if np.isfinite(prev_close):
            tr = max(tr, abs(high[i] - prev_close), abs(low[i] - prev_close))
        prev_close = close[i]
        if not np.isfinite(tr):
            if restart_after_nan:
                count = 0
                acc = 0.0
            continue
        if count < n:
            acc += tr
            count += 1
            if count == n:
                acc = acc / n
                out[i] = acc
        else:
            acc = (acc * (n - 1) + tr) / n
            out[i] = acc
    return out


def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    n: int = 14,
    *,
    restart_after_nan: bool = False,
) -> np.ndarray:
    """Wilder ATR; first value at row n-1 (mean of the first n true ranges, as in ``ta``)."""
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return wilder_atr_nb(h, lo, c, int(n), bool(restart_after_nan))


@nb.njit(**_NB)
def adx_nb(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's ADX, +DI and -DI in [0, 100].

    +DI/-DI start at row n (TR and DM need a previous bar, then n of them are
    summed); ADX is the Wilder average of DX seeded by the mean of the first n
    DX values, so it starts at row 2n-1.
    """
    size = high.shape[0]
    adx = np.full(size, np.nan)
    pdi = np.full(size, np.nan)
    mdi = np.full(size, np.nan)
    s_tr = 0.0
    s_p = 0.0
    s_m = 0.0
    k = 0  # number of (TR, DM) pairs seen
    dx_count = 0
    dx_acc = 0.0
    a = np.nan
    for i in range(1, size):
        up = high[i] - high[i - 1]
        dn = low[i - 1] - low[i]
        pc = close[i - 1]
        tr = max(high[i] - low[i], abs(high[i] - pc), abs(low[i] - pc))
        if not (np.isfinite(up) and np.isfinite(dn) and np.isfinite(tr)):
            continue
        p = up if (up > dn and up > 0.0) else 0.0
        m = dn if (dn > up and dn > 0.0) else 0.0
        if k < n:
            s_tr += tr
            s_p += p
            s_m += m
            k += 1
            if k < n:
                continue
        else:
            s_tr = s_tr - s_tr / n + tr
            s_p = s_p - s_p / n + p
            s_m = s_m - s_m / n + m
        if s_tr > 0.0:
            dp = 100.0 * s_p / s_tr
            dm = 100.0 * s_m / s_tr
        else:
            dp = 0.0
            dm = 0.0
        pdi[i] = dp
        mdi[i] = dm
        dx = 100.0 * abs(dp - dm) / (dp + dm) if dp + dm > 0.0 else 0.0
        if dx_count < n:
            dx_acc += dx
            dx_count += 1
            if dx_count == n:
                a = dx_acc / n
                adx[i] = a
        else:
            a = (a * (n - 1) + dx) / n
            adx[i] = a
    return adx, pdi, mdi


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ADX, +DI, -DI) on the 0-100 scale."""
    h, lo, c = (np.ascontiguousarray(a, dtype=np.float64) for a in (high, low, close))
    return adx_nb(h, lo, c, int(n))


@nb.njit(**_NB)
def streak_nb(direction: np.ndarray) -> np.ndarray:
    """Signed run length of equal non-zero directions: +3 = third up bar in a row.

    A zero (doji) or NaN direction resets the run to 0.
    """
    size = direction.shape[0]
    out = np.zeros(size)
    run = 0.0
    for i in range(size):
        d = direction[i]
        if d > 0:
            run = run + 1.0 if run > 0 else 1.0
        elif d < 0:
            run = run - 1.0 if run < 0 else -1.0
        else:
            run = 0.0
        out[i] = run
    return out


def streak(direction: np.ndarray) -> np.ndarray:
    return streak_nb(np.ascontiguousarray(direction, dtype=np.float64))


def macd(
    close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(MACD line, signal line, histogram); the signal EMA starts once the line exists."""
    line = ema(close, fast) - ema(close, slow)
    sig = ema(line, signal)
    return line, sig, line - sig
