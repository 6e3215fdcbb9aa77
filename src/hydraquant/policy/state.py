"""Flat numeric layouts shared by the numba kernel, the live engine and Python callers.

Why flat float64 records: numba compiles fastest and runs fastest on plain
arrays, a float64 row can be persisted (SQL, JSON) and restored bit-for-bit,
and a live engine can call the very same ``@njit`` policy functions on a
single row per bar.  The index constants below are the one place that names
every slot; numba freezes module-level ints as compile-time constants.

Three records:

* the **policy config** (``CFG_*``, built by :meth:`PolicyConfig.to_array`);
* one **position row** per symbol (``P_*``): the open position, its stops,
  and the order decided at the last close that fills at the next open;
* one **guard row** per account (``G_*``): daily/weekly anchors, circuit
  breaker counters and a ring buffer of recent trade P&L.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- close types
#: Every close (full or partial) carries one of these codes.
CLOSE_NONE = 0
TP_HIT = 1  # take-profit limit filled (at the TP price, or at the open if gapped through)
SL_HIT = 2  # stop-loss (initial, break-even or catastrophic) filled
TRAIL = 3  # trailing stop filled (the trail had ratcheted above the initial/BE stop)
ML_EXIT = 4  # exit model probability >= exit_threshold at a bar close; fills next open
TIMEOUT = 5  # max holding bars reached at a bar close; fills next open
GUARD = 6  # a risk guard / kill switch closed the position; fills next open
LIQUIDATION = 7  # price reached the liquidation price; fills at that price
SIGNAL = 8  # opposite entry signal at a bar close; fills next open
END = 9  # still open at the last bar: closed at the last close
PARTIAL = 10  # partial take-profit (the rest stays open with a break-even stop)

CLOSE_TYPE_NAMES: tuple[str, ...] = (
    "NONE",
    "TP_HIT",
    "SL_HIT",
    "TRAIL",
    "ML_EXIT",
    "TIMEOUT",
    "GUARD",
    "LIQUIDATION",
    "SIGNAL",
    "END",
    "PARTIAL",
)

# ------------------------------------------------------------- policy config
CFG_CONF_THRESHOLD = 0
CFG_MIN_PROB_DIFF = 1
CFG_ALLOW_LONG = 2
CFG_ALLOW_SHORT = 3
CFG_REGIME_MASK = 4  # bit r set -> regime r allowed; < 0 -> filter off
CFG_ADX_MIN = 5
CFG_ADX_MAX = 6
CFG_SCORER_THRESHOLD = 7
CFG_COOLDOWN_BARS = 8
CFG_MAX_POSITIONS = 9
CFG_STOP_MODE = 10  # 0 = ATR multiples, 1 = percent of entry price
CFG_SL_ATR_MULT = 11
CFG_TP_ATR_MULT = 12
CFG_SL_PCT = 13
CFG_TP_PCT = 14
CFG_CONF_SCALE = 15
CFG_CONF_SL_ADJUST = 16
CFG_CONF_TP_ADJUST = 17
CFG_MIN_TP_ATR = 18
CFG_TRAIL_ENABLED = 19
CFG_TRAIL_ATR_MULT = 20
CFG_TRAIL_MIN_PROFIT_ATR = 21
CFG_TRAIL_CONF_ADJUST = 22
CFG_PARTIAL_ENABLED = 23
CFG_PARTIAL_AT_R = 24
CFG_PARTIAL_FRACTION = 25
CFG_BE_OFFSET_R = 26
CFG_MIN_BARS_HELD = 27
CFG_MAX_BARS_HELD = 28
CFG_EXIT_THRESHOLD = 29
CFG_CATASTROPHIC = 30
CFG_CAT_SL_ATR_MULT = 31
CFG_EMERGENCY_TP_ATR_MULT = 32
CFG_CLOSE_ON_OPPOSITE = 33
CFG_STOPS_ON_ENTRY_BAR = 34
CFG_SIZING_MODE = 35  # 0 = fraction of equity, 1 = risk % with SL distance, 2 = Kelly
CFG_FRACTION = 36
CFG_RISK_PCT = 37
CFG_KELLY_C = 38
CFG_KELLY_RMSE = 39
CFG_KELLY_MULT = 40
CFG_MAX_KELLY_FRACTION = 41
CFG_USE_RISK_MULT = 42
CFG_RISK_MULT_MIN = 43
CFG_RISK_MULT_MAX = 44
CFG_LOT_STEP = 45
CFG_MIN_QTY = 46
CFG_MAX_QTY = 47
CFG_MIN_NOTIONAL = 48
CFG_LEVERAGE = 49
CFG_MAINT_MARGIN = 50
CFG_DAILY_LOSS_PCT = 51
CFG_WEEKLY_DD_PCT = 52
CFG_MAX_CONSEC_LOSSES = 53
CFG_CB_PAUSE_BARS = 54
CFG_EC_LOOKBACK = 55
CFG_EC_MAX_LOSS_PCT = 56
CFG_EC_PAUSE_BARS = 57
CFG_PAUSED = 58
CFG_KILL_SWITCH = 59
CFG_GUARD_CLOSE_POSITIONS = 60
CFG_STOPS_BEFORE_EXITS = 61  # 1 = vectorbt: a stop hit in bar i beats an exit order at open_i
N_CFG = 62

SIZING_FRACTION = 0
SIZING_RISK = 1
SIZING_KELLY = 2
STOP_ATR = 0
STOP_PCT = 1

# ------------------------------------------------------------- position row
P_SIDE = 0  # +1 long, -1 short, 0 flat
P_QTY = 1  # remaining quantity (base units, > 0)
P_ENTRY = 2  # entry fill price
P_ENTRY_BAR = 3
P_SL = 4  # current protective stop (initial, break-even or trail)
P_TP = 5  # take-profit price; NaN = none
P_SL_DIST = 6  # initial SL distance (price units): 1R
P_TRAIL_W = 7  # trailing width (price units); 0 = no trailing
P_BEST = 8  # best price reached up to the previous bar (trailing anchor)
P_TRAIL_ON = 9  # 1 when the trail defines P_SL (close type TRAIL)
P_PARTIAL_DONE = 10
P_CONF = 11  # entry confidence
P_FEE_LEFT = 12  # entry fee not yet allocated to a close row
P_FUNDING_LEFT = 13  # funding paid not yet allocated to a close row
P_LIQ = 14  # liquidation price; NaN = none
P_ATR = 15  # ATR at the entry decision
P_REGIME = 16  # regime at the entry decision
P_BE_PENDING = 17  # partial filled this bar: move SL to break-even after the bar
P_LAST_EXIT_BAR = 18  # bar of the last full close (cooldown); kept while flat
P_REALIZED = 19  # net P&L realised so far by this position (partials)
P_PEND_SIDE = 20  # order decided at the last close: entry side (+1/-1), 0 none
P_PEND_QTY = 21
P_PEND_SL_DIST = 22
P_PEND_TP_DIST = 23  # NaN = no TP
P_PEND_TRAIL_W = 24
P_PEND_CONF = 25
P_PEND_ATR = 26
P_PEND_REGIME = 27
P_PEND_EXIT = 28  # close type of a pending market exit, 0 none
P_MAX_QTY = 29  # quantity at entry
N_POS = 30

# ---------------------------------------------------------------- guard row
G_DAY = 0
G_DAY_START_EQ = 1
G_WEEK = 2
G_WEEK_PEAK = 3
G_CONSEC = 4
G_PAUSE_UNTIL = 5  # entries blocked while bar < this
G_DAY_BLOCK = 6
G_WEEK_BLOCK = 7
G_EC_COUNT = 8
G_EC_POS = 9
G_LAST_EQ = 10
G_TRIGGERS = 11  # how many times any guard fired (diagnostics)
N_GUARD_HEAD = 16  # the ring buffer of recent trade P&L follows


def new_positions(n_symbols: int) -> np.ndarray:
    """Fresh position rows: flat, no pending orders, never exited (no cooldown)."""
    pos = np.zeros((n_symbols, N_POS), dtype=np.float64)
    pos[:, P_LAST_EXIT_BAR] = -1e18
    pos[:, P_TP] = np.nan
    pos[:, P_LIQ] = np.nan
    return pos


def new_guard_state(ec_lookback: int, equity: float) -> np.ndarray:
    """Fresh guard row anchored at ``equity``; day/week start on the first bar seen."""
    g = np.zeros(N_GUARD_HEAD + max(1, int(ec_lookback)), dtype=np.float64)
    g[G_DAY] = -1e18
    g[G_WEEK] = -1e18
    g[G_DAY_START_EQ] = equity
    g[G_WEEK_PEAK] = equity
    g[G_LAST_EQ] = equity
    g[G_PAUSE_UNTIL] = -1e18
    return g
