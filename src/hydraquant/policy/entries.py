"""S1 entry rules as numba functions of scalars (callable from the kernel and from Python).

A prediction is three class probabilities (long, short, flat).  Why a margin
test on top of the threshold: a 0.66 / 0.30 split is a conviction, a
0.66 / 0.64 split (possible with per-class calibration) is a coin flip.
Filters (regime, ADX, scorer) and gates (cooldown, max positions, guards) are
separate functions so a live engine can log *which* rule said no.
"""

from __future__ import annotations

import math

from numba import njit

from hydraquant.policy import state as S

# Reasons an entry was refused (live logging / diagnostics).
REFUSE_NONE = 0
REFUSE_SIGNAL = 1
REFUSE_REGIME = 2
REFUSE_ADX = 3
REFUSE_SCORER = 4
REFUSE_COOLDOWN = 5
REFUSE_MAX_POSITIONS = 6
REFUSE_GUARD = 7


@njit(cache=True, nogil=True)
def signal_side(cfg, p_long: float, p_short: float, p_flat: float) -> tuple[int, float]:
    """Side (+1 long, -1 short, 0 none) and confidence from class probabilities.

    ``p_flat`` NaN means "binary/two-sided model": flat = max(0, 1 - long - short).
    The best class must be long or short, reach ``conf_threshold`` and beat the
    second-best class by ``min_prob_diff``.
    """
    if math.isnan(p_long) or math.isnan(p_short):
        return 0, 0.0
    pf = max(0.0, 1.0 - p_long - p_short) if math.isnan(p_flat) else p_flat
    if p_long >= p_short and p_long >= pf:
        best, side = p_long, 1
        second = max(p_short, pf)
    elif p_short > p_long and p_short >= pf:
        best, side = p_short, -1
        second = max(p_long, pf)
    else:
        return 0, 0.0
    if best < cfg[S.CFG_CONF_THRESHOLD] or best - second < cfg[S.CFG_MIN_PROB_DIFF]:
        return 0, best
    if side == 1 and cfg[S.CFG_ALLOW_LONG] == 0.0:
        return 0, best
    if side == -1 and cfg[S.CFG_ALLOW_SHORT] == 0.0:
        return 0, best
    return side, best


@njit(cache=True, nogil=True)
def filters_reason(cfg, regime: float, adx: float, p_score: float) -> int:
    """First market filter that refuses the entry, or REFUSE_NONE.

    An unknown (NaN) regime/ADX/score fails an *enabled* filter: warm-up bars
    must not trade on a filter the user asked for.
    """
    mask = cfg[S.CFG_REGIME_MASK]
    if mask >= 0.0:
        if math.isnan(regime) or regime < 0.0 or regime > 50.0:
            return REFUSE_REGIME
        if (int(mask) >> int(regime)) & 1 == 0:
            return REFUSE_REGIME
    adx_min = cfg[S.CFG_ADX_MIN]
    adx_max = cfg[S.CFG_ADX_MAX]
    enabled = adx_min > 0.0 or adx_max < math.inf
    if enabled and (math.isnan(adx) or adx < adx_min or adx > adx_max):
        return REFUSE_ADX
    thr = cfg[S.CFG_SCORER_THRESHOLD]
    if thr > 0.0 and (math.isnan(p_score) or p_score < thr):
        return REFUSE_SCORER
    return REFUSE_NONE


@njit(cache=True, nogil=True)
def gates_reason(cfg, bar: int, last_exit_bar: float, n_active: int, guard_ok: bool) -> int:
    """First account-level gate that refuses the entry, or REFUSE_NONE.

    Cooldown counts bars between the full close and the decision bar: with
    ``cooldown_bars = k`` a symbol closed during bar b may be re-entered by a
    decision at the close of bar b + k (fill at b + k + 1).
    """
    if not guard_ok:
        return REFUSE_GUARD
    if bar - last_exit_bar < cfg[S.CFG_COOLDOWN_BARS]:
        return REFUSE_COOLDOWN
    if n_active >= cfg[S.CFG_MAX_POSITIONS]:
        return REFUSE_MAX_POSITIONS
    return REFUSE_NONE


@njit(cache=True, nogil=True)
def entry_decision(
    cfg,
    p_long: float,
    p_short: float,
    p_flat: float,
    regime: float,
    adx: float,
    p_score: float,
    bar: int,
    last_exit_bar: float,
    n_active: int,
    guard_ok: bool,
) -> tuple[int, float, int]:
    """(side, confidence, refuse_reason) for a flat symbol at a bar close."""
    side, conf = signal_side(cfg, p_long, p_short, p_flat)
    if side == 0:
        return 0, conf, REFUSE_SIGNAL
    reason = filters_reason(cfg, regime, adx, p_score)
    if reason != REFUSE_NONE:
        return 0, conf, reason
    reason = gates_reason(cfg, bar, last_exit_bar, n_active, guard_ok)
    if reason != REFUSE_NONE:
        return 0, conf, reason
    return side, conf, REFUSE_NONE
