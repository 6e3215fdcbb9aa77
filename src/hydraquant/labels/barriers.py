"""L4 triple barrier: profit target before stop, long/short/none (seed 002; NOVOSKY ATR-aware labels, seed 004).

At each decision bar ``i`` two hypothetical trades are opened at ``close[i]``:
a long (TP above, SL below) and a short (TP below, SL above).  Barriers are a
fraction of the entry (``unit="pct"``: ``tp=0.015`` is 1.5 %) or multiples of
a causal ATR known at bar ``i`` (``unit="atr"``).  Bars ``i+1 .. i+horizon``
are scanned with their high/low; the first touch wins; a bar that touches
both barriers counts as STOP-LOSS (the intrabar order is unknown, so assume
the worse); nothing touched -> time-out at ``close[i+horizon]``.

Seed 002 computes "future high >= target and future low > stop" over the
whole window, which calls a trade a winner even when the stop was hit before
the target; we resolve the actual first touch.

Combined label: 1 (long) if the long trade hits TP first, -1 (short) if the
short trade does, 0 otherwise.  Both can only win when ``tp < sl``; the one
whose TP comes first wins, and a tie (same bar) is 0 — we refuse to guess.

``t_end`` is the close of the later of the two resolution bars (the label
needs both outcomes).  Rows whose horizon runs past the data are null even if
a barrier was already touched: keeping only early-resolved tail rows would
over-represent fast hits.  Complexity O(n log h) (sparse-table first touch).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from hydraquant.labels import labels_nb as nbk
from hydraquant.labels._frame import (
    LabelError,
    check_bars,
    check_horizon,
    column_f64,
    masked,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)

Unit = Literal["pct", "atr"]
HIT_TP, HIT_SL, HIT_TIMEOUT = 1, -1, 0


def barrier_distances(
    frame: pl.DataFrame, close: np.ndarray, tp: float, sl: float, unit: Unit, atr_col: str
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute TP/SL distances from the entry for every bar (NaN where the ATR is missing)."""
    if not (tp > 0 and sl > 0):
        raise LabelError(f"tp and sl must be > 0, got tp={tp!r}, sl={sl!r}")
    if unit == "pct":
        return close * tp, close * sl
    if unit == "atr":
        atr = column_f64(frame, atr_col)
        return atr * tp, atr * sl
    raise LabelError(f"unit must be 'pct' or 'atr', got {unit!r}")


def simulate_both(
    frame: pl.DataFrame,
    tp_dist: np.ndarray,
    sl_dist: np.ndarray,
    horizon: int,
    *,
    where: str,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the barrier kernel once for both sides; returns (long, short) dicts of hit/exit_idx/ret/valid."""
    open_, high, low, close = positive_prices(frame, ["open", "high", "low", "close"], where=where)
    hit, exit_idx, exit_price = nbk.barrier_trades(
        open_,
        high,
        low,
        close,
        np.ascontiguousarray(tp_dist),
        np.ascontiguousarray(sl_dist),
        horizon,
    )
    sides = []
    for s, sign in ((0, 1.0), (1, -1.0)):
        sides.append(
            {
                "hit": hit[s],
                "exit_idx": exit_idx[s],
                "ret": sign * (exit_price[s] / close - 1.0),
                "valid": exit_idx[s] >= 0,
            }
        )
    return sides[0], sides[1]


def triple_barrier(
    frame: pl.DataFrame,
    *,
    tp: float,
    sl: float,
    horizon: int,
    unit: Unit = "pct",
    atr_col: str = "atr",
    fee_bps: float = 0.0,
    interval: str | None = None,
) -> pl.DataFrame:
    """Triple-barrier labels for every bar of one symbol.

    Parameters
    ----------
    frame: bars with ts/open/high/low/close (+ ``atr_col`` when ``unit="atr"``).
    tp, sl: barrier distances (fractions for "pct", ATR multiples for "atr").
    horizon: maximum holding period in bars (the vertical barrier).
    fee_bps: round-trip cost subtracted from ``long_ret``/``short_ret`` (the
        barriers themselves are on price).

    Returns
    -------
    ``ts, label (Int8 1/-1/0), long_hit, short_hit (Int8: 1 TP, -1 SL, 0 time-out),
    long_bars, short_bars (bars held), long_ret, short_ret (net return at exit), t_end``.
    """
    horizon = check_horizon(horizon)
    cols = ["open", "high", "low", "close"] + ([atr_col] if unit == "atr" else [])
    frame = check_bars(frame, cols, where="triple_barrier")
    step = resolve_interval_us(frame, interval)
    close = column_f64(frame, "close")
    tp_d, sl_d = barrier_distances(frame, close, tp, sl, unit, atr_col)
    lg, sh = simulate_both(frame, tp_d, sl_d, horizon, where="triple_barrier")
    valid = lg["valid"] & sh["valid"]
    long_win = lg["hit"] == HIT_TP
    short_win = sh["hit"] == HIT_TP
    both = long_win & short_win
    label = np.where(long_win & ~short_win, 1, np.where(short_win & ~long_win, -1, 0))
    label = np.where(both & (lg["exit_idx"] < sh["exit_idx"]), 1, label)
    label = np.where(both & (sh["exit_idx"] < lg["exit_idx"]), -1, label)
    idx = np.arange(close.shape[0])
    last = np.where(valid, np.maximum(lg["exit_idx"], sh["exit_idx"]), -1)
    fee = fee_bps * 1e-4
    return pl.DataFrame(
        [
            frame["ts"],
            masked("label", label, valid, pl.Int8),
            masked("long_hit", lg["hit"], valid, pl.Int8),
            masked("short_hit", sh["hit"], valid, pl.Int8),
            masked("long_bars", lg["exit_idx"] - idx, valid, pl.Int32),
            masked("short_bars", sh["exit_idx"] - idx, valid, pl.Int32),
            masked("long_ret", lg["ret"] - fee, valid, pl.Float64),
            masked("short_ret", sh["ret"] - fee, valid, pl.Float64),
            t_end_series(ts_us(frame), last, step),
        ]
    )
