"""S2 exit rules: stop/target distances, intrabar resolution, trailing, discretionary exits.

Why intrabar resolution is conservative: a bar's OHLC does not say whether
the high or the low came first, so when a bar touches both the stop and the
target we assume the stop.  Stops that move (trailing, break-even) are
recomputed from bar i's extremes only *after* bar i, so the level that can be
hit inside a bar was known at its open -- no intrabar look-ahead.
"""

from __future__ import annotations

import math

from numba import njit

from hydraquant.policy import state as S


@njit(cache=True, nogil=True)
def confidence_norm(cfg, conf: float) -> float:
    """Seed 004 §21.1: clamp((conf - threshold) / (1 - threshold), 0, 1)."""
    thr = cfg[S.CFG_CONF_THRESHOLD]
    if thr >= 1.0 or math.isnan(conf):
        return 0.0
    x = (conf - thr) / (1.0 - thr)
    return min(1.0, max(0.0, x))


@njit(cache=True, nogil=True)
def stop_distances(cfg, conf: float, atr: float, ref_price: float) -> tuple[float, float, float]:
    """(sl_dist, tp_dist, trail_width) in price units; tp_dist NaN = no target.

    ATR mode: SL = sl_mult*ATR*(1 - cn*sl_adj), TP = tp_mult*ATR*(1 + cn*tp_adj)
    with cn the normalised confidence when confidence scaling is on (seed
    §21.1), TP floored at min_tp_atr*ATR.  Catastrophic mode (§21.4) replaces
    both with the wide safety-net multiples.  Percent mode uses ``ref_price``
    (the fill price, so stops sit at a fixed % from the actual entry).
    NaN ATR in ATR mode gives NaN distances: no trade.
    """
    cn = confidence_norm(cfg, conf) if cfg[S.CFG_CONF_SCALE] != 0.0 else 0.0
    if cfg[S.CFG_CATASTROPHIC] != 0.0:
        sl = cfg[S.CFG_CAT_SL_ATR_MULT] * atr
        tpm = cfg[S.CFG_EMERGENCY_TP_ATR_MULT]
        tp = tpm * atr if tpm > 0.0 else math.nan
    elif cfg[S.CFG_STOP_MODE] == S.STOP_PCT:
        sl = cfg[S.CFG_SL_PCT] * ref_price * (1.0 - cn * cfg[S.CFG_CONF_SL_ADJUST])
        tpp = cfg[S.CFG_TP_PCT]
        tp = tpp * ref_price * (1.0 + cn * cfg[S.CFG_CONF_TP_ADJUST]) if tpp > 0.0 else math.nan
    else:
        sl = cfg[S.CFG_SL_ATR_MULT] * atr * (1.0 - cn * cfg[S.CFG_CONF_SL_ADJUST])
        tpm = cfg[S.CFG_TP_ATR_MULT]
        if tpm > 0.0:
            tp = tpm * atr * (1.0 + cn * cfg[S.CFG_CONF_TP_ADJUST])
            floor = cfg[S.CFG_MIN_TP_ATR] * atr
            tp = max(tp, floor)
        else:
            tp = math.nan
    trail = 0.0
    if cfg[S.CFG_TRAIL_ENABLED] != 0.0 and atr > 0.0:
        cn_t = confidence_norm(cfg, conf)
        trail = cfg[S.CFG_TRAIL_ATR_MULT] * atr * (1.0 - cn_t * cfg[S.CFG_TRAIL_CONF_ADJUST])
    return sl, tp, trail


@njit(cache=True, nogil=True)
def liquidation_price(side: int, entry: float, leverage: float, maint_margin: float) -> float:
    """Isolated-margin liquidation price: the move that eats 1/leverage minus maintenance."""
    if leverage <= 0.0:
        return math.nan
    if side > 0:
        p = entry * (1.0 - 1.0 / leverage + maint_margin)
        return p if p > 0.0 else math.nan
    return entry * (1.0 + 1.0 / leverage - maint_margin)


@njit(cache=True, nogil=True)
def open_position(
    cfg,
    pos,
    side: int,
    qty: float,
    fill: float,
    bar: int,
    conf: float,
    atr: float,
    regime: float,
    fee: float,
) -> None:
    """Write a freshly filled position into its row (stops measured from the fill)."""
    sl_d, tp_d, tr_w = stop_distances(cfg, conf, atr, fill)
    pos[S.P_SIDE] = side
    pos[S.P_QTY] = qty
    pos[S.P_MAX_QTY] = qty
    pos[S.P_ENTRY] = fill
    pos[S.P_ENTRY_BAR] = bar
    pos[S.P_SL_DIST] = sl_d
    pos[S.P_SL] = fill - side * sl_d
    pos[S.P_TP] = fill + side * tp_d  # NaN stays NaN
    pos[S.P_TRAIL_W] = tr_w
    pos[S.P_BEST] = fill
    pos[S.P_TRAIL_ON] = 0.0
    pos[S.P_PARTIAL_DONE] = 0.0
    pos[S.P_BE_PENDING] = 0.0
    pos[S.P_CONF] = conf
    pos[S.P_ATR] = atr
    pos[S.P_REGIME] = regime
    pos[S.P_FEE_LEFT] = fee
    pos[S.P_FUNDING_LEFT] = 0.0
    pos[S.P_REALIZED] = 0.0
    lev = cfg[S.CFG_LEVERAGE]
    pos[S.P_LIQ] = (
        liquidation_price(side, fill, lev, cfg[S.CFG_MAINT_MARGIN]) if lev > 1.0 else math.nan
    )


@njit(cache=True, nogil=True)
def intrabar_exit(cfg, pos, o: float, h: float, low: float) -> tuple[int, float, float]:
    """(close_type, raw price, qty) of the first stop/target event inside a bar, or (0, nan, 0).

    Order, long side (short mirrored): liquidation if it sits above the stop;
    stop gapped through at the open -> open; target gapped -> open; stop
    touched -> stop (SL first when a bar touches both); partial level ->
    partial; target touched -> target.  Liquidation fills at the liquidation
    price even through a gap (isolated margin: the loss is the margin).
    Call again after a PARTIAL: the rest may still reach the target.
    """
    side = pos[S.P_SIDE]
    qty = pos[S.P_QTY]
    if side == 0.0 or qty <= 0.0:
        return S.CLOSE_NONE, math.nan, 0.0
    sl = pos[S.P_SL]
    tp = pos[S.P_TP]
    liq = pos[S.P_LIQ]
    stop_type = S.TRAIL if pos[S.P_TRAIL_ON] != 0.0 else S.SL_HIT
    has_tp = not math.isnan(tp)
    do_partial = cfg[S.CFG_PARTIAL_ENABLED] != 0.0 and pos[S.P_PARTIAL_DONE] == 0.0
    ppx = pos[S.P_ENTRY] + side * cfg[S.CFG_PARTIAL_AT_R] * pos[S.P_SL_DIST]
    pqty = min(qty, pos[S.P_MAX_QTY] * cfg[S.CFG_PARTIAL_FRACTION])
    if side > 0:
        if not math.isnan(liq) and liq > sl and low <= liq:
            return S.LIQUIDATION, liq, qty
        if o <= sl:
            return stop_type, o, qty
        if has_tp and o >= tp:
            return S.TP_HIT, o, qty
        if low <= sl:
            return stop_type, sl, qty
        if do_partial and h >= ppx and (not has_tp or ppx < tp):
            return S.PARTIAL, max(ppx, o), pqty
        if has_tp and h >= tp:
            return S.TP_HIT, tp, qty
    else:
        if not math.isnan(liq) and liq < sl and h >= liq:
            return S.LIQUIDATION, liq, qty
        if o >= sl:
            return stop_type, o, qty
        if has_tp and o <= tp:
            return S.TP_HIT, o, qty
        if h >= sl:
            return stop_type, sl, qty
        if do_partial and low <= ppx and (not has_tp or ppx > tp):
            return S.PARTIAL, min(ppx, o), pqty
        if has_tp and low <= tp:
            return S.TP_HIT, tp, qty
    return S.CLOSE_NONE, math.nan, 0.0


@njit(cache=True, nogil=True)
def after_bar(cfg, pos, h: float, low: float) -> None:
    """Ratchet stops with bar i's extremes; they apply from bar i+1.

    Break-even (after a partial) moves the stop to entry + offset*R; the trail
    arms once the best excursion reaches trail_min_profit_atr*ATR and then
    sits trail_width behind the best price.  Stops only ever tighten.
    """
    side = pos[S.P_SIDE]
    if side == 0.0:
        return
    if side > 0:
        pos[S.P_BEST] = max(pos[S.P_BEST], h)
    else:
        pos[S.P_BEST] = min(pos[S.P_BEST], low)
    entry = pos[S.P_ENTRY]
    if pos[S.P_BE_PENDING] != 0.0:
        be = entry + side * cfg[S.CFG_BE_OFFSET_R] * pos[S.P_SL_DIST]
        if side * (be - pos[S.P_SL]) > 0.0:
            pos[S.P_SL] = be
            pos[S.P_TRAIL_ON] = 0.0
        pos[S.P_BE_PENDING] = 0.0
    w = pos[S.P_TRAIL_W]
    if w > 0.0:
        best = pos[S.P_BEST]
        if side * (best - entry) >= cfg[S.CFG_TRAIL_MIN_PROFIT_ATR] * pos[S.P_ATR]:
            trail = best - side * w
            if side * (trail - pos[S.P_SL]) > 0.0:
                pos[S.P_SL] = trail
                pos[S.P_TRAIL_ON] = 1.0


@njit(cache=True, nogil=True)
def exit_decision(cfg, pos, bar: int, p_exit: float, signal: int, force: bool) -> int:
    """Market exit decided at the close of ``bar`` (fills next open), or 0.

    Priority GUARD > TIMEOUT > ML_EXIT > SIGNAL.  ``held`` counts completed
    bars in the position including the fill bar, so min_bars_held=4 lets the
    exit model act at the close of the 4th bar.
    """
    side = pos[S.P_SIDE]
    if side == 0.0:
        return S.CLOSE_NONE
    if force:
        return S.GUARD
    held = bar - pos[S.P_ENTRY_BAR] + 1
    mx = cfg[S.CFG_MAX_BARS_HELD]
    if mx > 0.0 and held >= mx:
        return S.TIMEOUT
    if held >= cfg[S.CFG_MIN_BARS_HELD]:
        if not math.isnan(p_exit) and p_exit >= cfg[S.CFG_EXIT_THRESHOLD]:
            return S.ML_EXIT
        if cfg[S.CFG_CLOSE_ON_OPPOSITE] != 0.0 and signal != 0 and signal == -side:
            return S.SIGNAL
    return S.CLOSE_NONE
