"""S3 position sizing: fraction of equity, risk % with SL distance, or penalised Kelly.

Why the Kelly penalty (seed 003): f* = 2p - 1 assumes p is calibrated; with
calibration error RMSE the edge is uncertain by about that much, so
alpha = max(0, 1 - c*RMSE/|f*|) shrinks small edges to zero and leaves large
ones nearly intact -- miscalibrated models automatically bet less.
"""

from __future__ import annotations

import math

from numba import njit

from hydraquant.policy import state as S


@njit(cache=True, nogil=True)
def kelly_fraction(p: float, c: float, rmse: float) -> float:
    """Penalised Kelly fraction alpha * f* (0 when there is no edge)."""
    if math.isnan(p):
        return 0.0
    f_star = 2.0 * p - 1.0
    if f_star <= 0.0:
        return 0.0
    alpha = max(0.0, 1.0 - c * rmse / abs(f_star))
    return alpha * f_star


@njit(cache=True, nogil=True)
def round_qty(qty: float, step: float, min_qty: float, max_qty: float) -> float:
    """Exchange lot rules: floor to the step, cap at max, 0 if below min."""
    if not qty > 0.0:
        return 0.0
    qty = min(qty, max_qty)
    if step > 0.0:
        qty = math.floor(qty / step + 1e-9) * step
    if qty < min_qty or qty <= 0.0:
        return 0.0
    return qty


@njit(cache=True, nogil=True)
def risk_multiplier(cfg, m: float) -> float:
    """The risk model's lot multiplier clipped to its documented range (1 when absent)."""
    if cfg[S.CFG_USE_RISK_MULT] == 0.0 or math.isnan(m):
        return 1.0
    return min(cfg[S.CFG_RISK_MULT_MAX], max(cfg[S.CFG_RISK_MULT_MIN], m))


@njit(cache=True, nogil=True)
def position_size(
    cfg,
    equity: float,
    price: float,
    sl_dist: float,
    conf: float,
    risk_mult: float,
    used_notional: float,
    fee_rate: float,
) -> float:
    """Order quantity in base units (0 = do not trade).

    fraction: notional = fraction*equity/(1+fee) (the entry fee fits in equity,
    as vectorbt's size=inf does); risk: qty = equity*risk%/SL distance; kelly:
    notional = min(kelly_mult*alpha*f*, max_kelly_fraction)*equity.  Then the
    risk-model multiplier, the leverage cap on total notional, lot rounding and
    the min-notional check.
    """
    if not equity > 0.0 or not price > 0.0:
        return 0.0
    mode = cfg[S.CFG_SIZING_MODE]
    mult = risk_multiplier(cfg, risk_mult)
    if mode == S.SIZING_RISK:
        if not sl_dist > 0.0:
            return 0.0
        notional = equity * cfg[S.CFG_RISK_PCT] / 100.0 * mult / sl_dist * price
    elif mode == S.SIZING_KELLY:
        f = cfg[S.CFG_KELLY_MULT] * kelly_fraction(conf, cfg[S.CFG_KELLY_C], cfg[S.CFG_KELLY_RMSE])
        f = min(f, cfg[S.CFG_MAX_KELLY_FRACTION])
        notional = f * equity * mult
    else:
        notional = cfg[S.CFG_FRACTION] * equity * mult / (1.0 + fee_rate)
    cap = equity * cfg[S.CFG_LEVERAGE] - used_notional
    notional = min(notional, cap)
    if not notional > 0.0:
        return 0.0
    qty = round_qty(notional / price, cfg[S.CFG_LOT_STEP], cfg[S.CFG_MIN_QTY], cfg[S.CFG_MAX_QTY])
    if qty * price < cfg[S.CFG_MIN_NOTIONAL]:
        return 0.0
    return qty
