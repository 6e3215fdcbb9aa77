"""Numba event loop: one pass over bars, all symbols sharing one equity.

Timeline of bar i (ts_i = open time):

1. funding settles for positions carried across a funding time in (ts_{i-1}, ts_i];
2. orders decided at the close of bar i-1 fill at open_i (exits first, then entries);
3. stops / targets / partials / liquidation resolve inside bar i
   (:func:`hydraquant.policy.exits.intrabar_exit`);
4. at close_i: mark to market, guards, stop ratchets, then exit and entry
   decisions for bar i+1's open.

All policy logic lives in :mod:`hydraquant.policy`; this module only sequences
it and books cash, fees and funding.  Trades are rows of a float64 table
(``T_*`` columns); one row per close (a partial close is its own row).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hydraquant.backtest.costs import K_FUNDING, K_MAKER, K_TAKER, market_fill_price
from hydraquant.policy import state as S
from hydraquant.policy.entries import entry_decision, signal_side
from hydraquant.policy.exits import (
    after_bar,
    exit_decision,
    intrabar_exit,
    open_position,
    stop_distances,
)
from hydraquant.policy.guards import guard_on_bar, guard_on_trade
from hydraquant.policy.sizing import position_size

T_SYM = 0
T_SIDE = 1
T_ENTRY_BAR = 2
T_ENTRY_PRICE = 3
T_EXIT_BAR = 4
T_EXIT_PRICE = 5
T_QTY = 6
T_PNL = 7
T_FEES = 8
T_FUNDING = 9
T_TYPE = 10
T_CONF = 11
T_REGIME = 12
T_GROSS = 13
N_T = 14


@njit(cache=True, nogil=True, inline="always")
def _at(a, i, s):
    """a[i, s] with single-row inputs (absent optional arrays) broadcast over bars."""
    return a[0, s] if a.shape[0] == 1 else a[i, s]


@njit(cache=True, nogil=True)
def _close(cfg, costs, pos, s, qty, raw, ctype, bar, atr_prev, trades, nt):
    """Book one (partial or full) close; returns (cash_delta, new_nt, fully_closed)."""
    side = pos[S.P_SIDE]
    if ctype == S.TP_HIT or ctype == S.PARTIAL:
        px = raw
        rate = costs[K_MAKER]
    elif ctype == S.LIQUIDATION:
        px = raw
        rate = costs[K_TAKER]
    else:
        px = market_fill_price(costs, raw, -int(side), atr_prev)
        rate = costs[K_TAKER]
    held = pos[S.P_QTY]
    qty = min(qty, held)
    frac = qty / held
    fee_exit = px * qty * rate
    fee_entry = pos[S.P_FEE_LEFT] * frac
    funding = pos[S.P_FUNDING_LEFT] * frac
    gross = side * (px - pos[S.P_ENTRY]) * qty
    pnl = gross - fee_exit - fee_entry - funding
    if nt < trades.shape[0]:
        r = trades[nt]
        r[T_SYM] = s
        r[T_SIDE] = side
        r[T_ENTRY_BAR] = pos[S.P_ENTRY_BAR]
        r[T_ENTRY_PRICE] = pos[S.P_ENTRY]
        r[T_EXIT_BAR] = bar
        r[T_EXIT_PRICE] = px
        r[T_QTY] = qty
        r[T_PNL] = pnl
        r[T_FEES] = fee_exit + fee_entry
        r[T_FUNDING] = funding
        r[T_TYPE] = ctype
        r[T_CONF] = pos[S.P_CONF]
        r[T_REGIME] = pos[S.P_REGIME]
        r[T_GROSS] = gross
    nt += 1
    pos[S.P_FEE_LEFT] -= fee_entry
    pos[S.P_FUNDING_LEFT] -= funding
    pos[S.P_REALIZED] += pnl
    remaining = held - qty
    full = remaining <= held * 1e-12
    if full:
        pos[S.P_SIDE] = 0.0
        pos[S.P_QTY] = 0.0
        pos[S.P_LAST_EXIT_BAR] = bar
        pos[S.P_TP] = math.nan
        pos[S.P_LIQ] = math.nan
    else:
        pos[S.P_QTY] = remaining
    return gross - fee_exit, nt, full


@njit(cache=True, nogil=True)
def simulate_nb(
    cfg,
    costs,
    open_,
    high,
    low,
    close,
    atr,
    adx,
    regime,
    p_long,
    p_short,
    p_flat,
    p_exit,
    p_score,
    risk_mult,
    funding_rate,
    funding_event,
    day_idx,
    week_idx,
    initial_cash,
    trade_cap,
):
    """Run the policy over [n_bars, n_symbols] arrays.

    Optional inputs may be single-row [1, m] arrays, broadcast over all bars.
    Returns (trades[trade_cap, N_T], n_trades, equity[n], n_open[n],
    gross_notional[n], guard_row, position_rows).  ``n_trades > trade_cap``
    means the table overflowed: rerun with a larger cap.
    """
    n, m = close.shape
    pos = np.zeros((m, S.N_POS), dtype=np.float64)
    for s in range(m):
        pos[s, S.P_LAST_EXIT_BAR] = -1e18
        pos[s, S.P_TP] = math.nan
        pos[s, S.P_LIQ] = math.nan
    lookback = int(cfg[S.CFG_EC_LOOKBACK])
    g = np.zeros(S.N_GUARD_HEAD + max(1, lookback), dtype=np.float64)
    g[S.G_DAY] = -1e18
    g[S.G_WEEK] = -1e18
    g[S.G_DAY_START_EQ] = initial_cash
    g[S.G_WEEK_PEAK] = initial_cash
    g[S.G_LAST_EQ] = initial_cash
    g[S.G_PAUSE_UNTIL] = -1e18

    trades = np.empty((trade_cap, N_T), dtype=np.float64)
    equity = np.empty(n, dtype=np.float64)
    n_open = np.zeros(n, dtype=np.int64)
    gross_notional = np.zeros(n, dtype=np.float64)
    nt = 0
    cash = initial_cash
    taker = costs[K_TAKER]
    entry_bar_checks = cfg[S.CFG_STOPS_ON_ENTRY_BAR] != 0.0
    stops_first = cfg[S.CFG_STOPS_BEFORE_EXITS] != 0.0
    last_close = np.full(m, np.nan)

    for i in range(n):
        # 1. funding for positions carried across the funding time
        if funding_event[i]:
            for s in range(m):
                side = pos[s, S.P_SIDE]
                if side != 0.0:
                    rate = _at(funding_rate, i, s)
                    if math.isnan(rate):
                        rate = costs[K_FUNDING]
                    px = open_[i, s]
                    if math.isnan(px):
                        px = last_close[s]
                    f = side * pos[s, S.P_QTY] * px * rate
                    cash -= f
                    pos[s, S.P_FUNDING_LEFT] += f

        # 2. orders decided at the previous close fill at this open
        for s in range(m):
            o = open_[i, s]
            if math.isnan(o):
                continue
            atr_prev = _at(atr, i - 1, s) if i > 0 else math.nan
            pe = pos[s, S.P_PEND_EXIT]
            if pe != 0.0 and not stops_first:
                if pos[s, S.P_SIDE] != 0.0:
                    d, nt, full = _close(
                        cfg, costs, pos[s], s, pos[s, S.P_QTY], o, int(pe), i, atr_prev, trades, nt
                    )
                    cash += d
                    guard_on_trade(cfg, g, pos[s, S.P_REALIZED], g[S.G_LAST_EQ], i)
                pos[s, S.P_PEND_EXIT] = 0.0
            ps = pos[s, S.P_PEND_SIDE]
            if ps != 0.0:
                if pos[s, S.P_SIDE] == 0.0:
                    fill = market_fill_price(costs, o, int(ps), atr_prev)
                    qty = pos[s, S.P_PEND_QTY]
                    fee = fill * qty * taker
                    cash -= fee
                    open_position(
                        cfg,
                        pos[s],
                        int(ps),
                        qty,
                        fill,
                        i,
                        pos[s, S.P_PEND_CONF],
                        pos[s, S.P_PEND_ATR],
                        pos[s, S.P_PEND_REGIME],
                        fee,
                    )
                pos[s, S.P_PEND_SIDE] = 0.0

        # 3. stops, targets, partials and liquidation inside the bar
        for s in range(m):
            if pos[s, S.P_SIDE] == 0.0:
                continue
            if pos[s, S.P_ENTRY_BAR] == i and not entry_bar_checks:
                continue
            o = open_[i, s]
            h = high[i, s]
            lo = low[i, s]
            if math.isnan(o) or math.isnan(h) or math.isnan(lo):
                continue
            atr_prev = _at(atr, i - 1, s) if i > 0 else math.nan
            for _ in range(2):
                ct, px, q = intrabar_exit(cfg, pos[s], o, h, lo)
                if ct == S.CLOSE_NONE:
                    break
                d, nt, full = _close(cfg, costs, pos[s], s, q, px, ct, i, atr_prev, trades, nt)
                cash += d
                if full:
                    guard_on_trade(cfg, g, pos[s, S.P_REALIZED], g[S.G_LAST_EQ], i)
                    break
                pos[s, S.P_PARTIAL_DONE] = 1.0
                pos[s, S.P_BE_PENDING] = 1.0

        # 3b. vectorbt convention: exit orders decided at i-1 fill at open_i only if no stop fired
        if stops_first:
            for s in range(m):
                pe = pos[s, S.P_PEND_EXIT]
                if pe == 0.0 or math.isnan(open_[i, s]):
                    continue
                if pos[s, S.P_SIDE] != 0.0:
                    atr_prev = _at(atr, i - 1, s) if i > 0 else math.nan
                    d, nt, full = _close(
                        cfg,
                        costs,
                        pos[s],
                        s,
                        pos[s, S.P_QTY],
                        open_[i, s],
                        int(pe),
                        i,
                        atr_prev,
                        trades,
                        nt,
                    )
                    cash += d
                    guard_on_trade(cfg, g, pos[s, S.P_REALIZED], g[S.G_LAST_EQ], i)
                pos[s, S.P_PEND_EXIT] = 0.0

        # 4. close: mark to market, guards, stop ratchets, decisions
        unreal = 0.0
        notional = 0.0
        active = 0
        for s in range(m):
            if not math.isnan(close[i, s]):
                last_close[s] = close[i, s]
            side = pos[s, S.P_SIDE]
            if side != 0.0:
                c = last_close[s]
                if math.isnan(c):
                    c = pos[s, S.P_ENTRY]
                unreal += side * pos[s, S.P_QTY] * (c - pos[s, S.P_ENTRY])
                notional += pos[s, S.P_QTY] * c
                active += 1
        eq = cash + unreal
        equity[i] = eq
        n_open[i] = active
        gross_notional[i] = notional
        allowed, close_all = guard_on_bar(cfg, g, eq, day_idx[i], week_idx[i], i)
        if i == n - 1:
            break
        for s in range(m):
            c = close[i, s]
            if math.isnan(c):
                continue
            sig, conf = signal_side(cfg, _at(p_long, i, s), _at(p_short, i, s), _at(p_flat, i, s))
            if pos[s, S.P_SIDE] != 0.0:
                after_bar(cfg, pos[s], high[i, s], low[i, s])
                ct = exit_decision(cfg, pos[s], i, _at(p_exit, i, s), sig, close_all)
                if ct != S.CLOSE_NONE:
                    pos[s, S.P_PEND_EXIT] = ct
                continue
            if sig == 0:
                continue
            side_e, conf, _reason = entry_decision(
                cfg,
                _at(p_long, i, s),
                _at(p_short, i, s),
                _at(p_flat, i, s),
                _at(regime, i, s),
                _at(adx, i, s),
                _at(p_score, i, s),
                i,
                pos[s, S.P_LAST_EXIT_BAR],
                active,
                allowed,
            )
            if side_e == 0:
                continue
            a = _at(atr, i, s)
            sl_d, tp_d, _tw = stop_distances(cfg, conf, a, c)
            if not sl_d > 0.0:
                continue
            qty = position_size(cfg, eq, c, sl_d, conf, _at(risk_mult, i, s), notional, taker)
            if qty > 0.0:
                pos[s, S.P_PEND_SIDE] = side_e
                pos[s, S.P_PEND_QTY] = qty
                pos[s, S.P_PEND_SL_DIST] = sl_d
                pos[s, S.P_PEND_TP_DIST] = tp_d
                pos[s, S.P_PEND_CONF] = conf
                pos[s, S.P_PEND_ATR] = a
                pos[s, S.P_PEND_REGIME] = _at(regime, i, s)
                active += 1
                notional += qty * c

    # positions still open at the end close at the last close (END)
    last = n - 1
    for s in range(m):
        if pos[s, S.P_SIDE] != 0.0:
            c = last_close[s]
            if math.isnan(c):
                c = pos[s, S.P_ENTRY]
            d, nt, full = _close(
                cfg,
                costs,
                pos[s],
                s,
                pos[s, S.P_QTY],
                c,
                S.END,
                last,
                _at(atr, last, s),
                trades,
                nt,
            )
            cash += d
        pos[s, S.P_PEND_SIDE] = 0.0
        pos[s, S.P_PEND_EXIT] = 0.0
    if n > 0:
        equity[last] = cash
    return trades, nt, equity, n_open, gross_notional, g, pos
