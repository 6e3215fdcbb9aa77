"""L6 exit labels for an OPEN position: HYDRA "exit now is better than holding" (seed 001) and NOVOSKY HOLD/EXIT/ADD (seed 004).

The position state at bar ``t`` (side, entry price) comes from the caller —
typically the trades of a backtest or every bar of a simulated holding — as
columns aligned with the bars; rows with no position (side 0 or null) get a
null label.  The decision is at the close of bar ``t``.
"""

from __future__ import annotations

from enum import IntEnum

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
from hydraquant.labels.barriers import HIT_SL, HIT_TP, simulate_both


class PositionAction(IntEnum):
    HOLD = 0
    EXIT = 1
    ADD = 2


def _sides(frame: pl.DataFrame, side_col: str) -> np.ndarray:
    side = column_f64(frame, side_col)
    side = np.where(np.isfinite(side), np.sign(side), 0.0)
    return side.astype(np.int8)


def exit_labels(
    frame: pl.DataFrame,
    horizon: int,
    *,
    side_col: str = "side",
    entry_col: str = "entry_price",
    price_col: str = "close",
    margin: float = 0.005,
    max_drawdown: float = 0.03,
    exit_cost_bps: float = 0.0,
    interval: str | None = None,
) -> pl.DataFrame:
    """HYDRA Exit Predictor label: 1 if exiting at ``close[t]`` beats holding ``horizon`` more bars.

    With ``pnl(p) = side * (p / entry - 1)``: exit (1) if
    ``pnl(close[t+horizon]) < pnl(close[t]) - margin - exit_cost`` or the worst
    close over ``t+1 .. t+horizon`` draws the position below ``-max_drawdown``
    (seed defaults 0.5 % and 3 %).  Fees: exiting now and exiting later each
    pay one exit fee, so the fee cancels; ``exit_cost_bps`` is the EXTRA cost
    of exiting now (e.g. a re-entry round trip, or taker vs maker), which
    raises the bar for calling an exit "better".

    Returns ``ts, exit (Int8), current_pnl, future_pnl, max_drawdown, t_end``.
    """
    horizon = check_horizon(horizon)
    frame = check_bars(frame, [price_col, side_col, entry_col], where="exit_labels")
    if margin < 0 or max_drawdown <= 0 or exit_cost_bps < 0:
        raise LabelError("margin and exit_cost_bps must be >= 0 and max_drawdown > 0")
    step = resolve_interval_us(frame, interval)
    (close,) = positive_prices(frame, [price_col], where="exit_labels")
    side = _sides(frame, side_col)
    entry = column_f64(frame, entry_col)
    n = close.shape[0]
    idx = np.arange(n)
    full = idx + horizon < n
    fut = np.full(n, np.nan)
    fut[: max(n - horizon, 0)] = close[horizon:]
    fmax = nbk.forward_max(close, horizon)
    fmin = nbk.forward_min(close, horizon)
    valid = full & (side != 0) & np.isfinite(entry) & (entry > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        cur = side * (close / entry - 1.0)
        future = side * (fut / entry - 1.0)
        worst = np.where(side > 0, fmin, fmax)
        dd = side * (worst / entry - 1.0)
    should = (future < cur - margin - exit_cost_bps * 1e-4) | (dd < -max_drawdown)
    return pl.DataFrame(
        [
            frame["ts"],
            masked("exit", should.astype(np.int8), valid, pl.Int8),
            masked("current_pnl", cur, valid, pl.Float64),
            masked("future_pnl", future, valid, pl.Float64),
            masked("max_drawdown", dd, valid, pl.Float64),
            t_end_series(ts_us(frame), np.where(valid, idx + horizon, -1), step),
        ]
    )


def hold_exit_add(
    frame: pl.DataFrame,
    *,
    horizon: int = 48,
    tp_mult: float = 1.2,
    sl_mult: float = 0.8,
    side_col: str = "side",
    atr_col: str = "atr",
    fee_bps: float = 0.0,
    interval: str | None = None,
) -> pl.DataFrame:
    """NOVOSKY position label (ATR-aware, seed 004 defaults: TP 1.2 x ATR, SL 0.8 x ATR, 48 bars).

    From ``close[t]`` the open position is run forward with a fresh TP/SL
    bracket (first touch on high/low, same-bar both -> SL):
    EXIT (1) if the stop is hit first; ADD (2) if the target is hit first and
    its return exceeds the round-trip ``fee_bps`` an added unit would pay;
    HOLD (0) otherwise (time-out, or a target too small to pay for adding).

    Returns ``ts, action (Int8), action_name, hit, bars, ret, t_end``.
    """
    horizon = check_horizon(horizon)
    if not (tp_mult > 0 and sl_mult > 0 and fee_bps >= 0):
        raise LabelError("tp_mult and sl_mult must be > 0 and fee_bps >= 0")
    frame = check_bars(
        frame, ["open", "high", "low", "close", atr_col, side_col], where="hold_exit_add"
    )
    step = resolve_interval_us(frame, interval)
    side = _sides(frame, side_col)
    atr = column_f64(frame, atr_col)
    tp_d, sl_d = atr * tp_mult, atr * sl_mult
    lg, sh = simulate_both(frame, tp_d, sl_d, horizon, where="hold_exit_add")
    is_long = side > 0
    hit = np.where(is_long, lg["hit"], sh["hit"])
    exit_idx = np.where(is_long, lg["exit_idx"], sh["exit_idx"])
    ret = np.where(is_long, lg["ret"], sh["ret"])
    valid = (side != 0) & (exit_idx >= 0)
    action = np.where(
        hit == HIT_SL,
        PositionAction.EXIT,
        np.where((hit == HIT_TP) & (ret > fee_bps * 1e-4), PositionAction.ADD, PositionAction.HOLD),
    ).astype(np.int8)
    names = {int(a): a.name for a in PositionAction}
    action_s = masked("action", action, valid, pl.Int8)
    return pl.DataFrame(
        [
            frame["ts"],
            action_s,
            action_s.replace_strict(names, default=None, return_dtype=pl.String).alias(
                "action_name"
            ),
            masked("hit", hit, valid, pl.Int8),
            masked("bars", exit_idx - np.arange(frame.height), valid, pl.Int32),
            masked("ret", ret, valid, pl.Float64),
            t_end_series(ts_us(frame), np.where(valid, exit_idx, -1), step),
        ]
    )
