"""Policy configuration: validated pydantic models flattened to one float64 record.

Why two forms: users and presets write readable, validated TOML sections
(unknown keys are refused, so a typo never silently disables a guard); the
numba kernel and the live engine read the same values from a flat array whose
layout lives in :mod:`hydraquant.policy.state`.  Defaults follow the NOVOSKY
seed (004 §16, §21): conf 0.65, prob_diff 0.08, risk 2 %, SL = TP = 1 ATR,
circuit breaker 7, half-Kelly cap 0.5; every optional rule is off by default.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hydraquant.policy import state as S

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class EntryConfig(BaseModel):
    """S1: when a prediction becomes an order."""

    model_config = _FROZEN

    conf_threshold: float = Field(0.65, ge=0.0, le=1.0)
    min_prob_diff: float = Field(0.08, ge=0.0, le=1.0, description="best minus second-best class")
    allow_long: bool = True
    allow_short: bool = True
    allowed_regimes: tuple[int, ...] | None = Field(
        None, description="regime codes 0..50; None = any"
    )
    adx_min: float = Field(0.0, ge=0.0, description="enter only if ADX >= this; 0 = off")
    adx_max: float = Field(math.inf, gt=0.0, description="enter only if ADX <= this; inf = off")
    scorer_threshold: float = Field(0.0, ge=0.0, le=1.0, description="signal-scorer gate; 0 = off")
    cooldown_bars: int = Field(0, ge=0, description="bars after a full close before re-entering")
    max_positions: int = Field(10, ge=1, description="open + pending positions across symbols")

    @model_validator(mode="after")
    def _regimes_fit_mask(self) -> EntryConfig:
        if self.allowed_regimes is not None and any(not 0 <= r <= 50 for r in self.allowed_regimes):
            raise ValueError("allowed_regimes must be integer codes between 0 and 50")
        return self


class ExitConfig(BaseModel):
    """S2: stops, targets and discretionary exits."""

    model_config = _FROZEN

    stop_mode: Literal["atr", "pct"] = "atr"
    sl_atr_mult: float = Field(1.0, gt=0.0)
    tp_atr_mult: float = Field(1.0, ge=0.0, description="0 = no take-profit")
    sl_pct: float = Field(0.01, gt=0.0, description="used when stop_mode='pct' (0.01 = 1 %)")
    tp_pct: float = Field(0.02, ge=0.0, description="used when stop_mode='pct'; 0 = no TP")
    confidence_scaling: bool = Field(False, description="seed 004 §21.1 ml_sltp formula")
    confidence_sl_adjust: float = Field(0.3, ge=0.0, le=1.0)
    confidence_tp_adjust: float = Field(0.5, ge=0.0)
    min_tp_atr: float = Field(0.0, ge=0.0, description="TP distance floor in ATR")
    trailing: bool = False
    trail_atr_mult: float = Field(1.2, gt=0.0)
    trail_min_profit_atr: float = Field(0.8, ge=0.0, description="profit before the trail arms")
    trail_conf_adjust: float = Field(0.0, ge=0.0, le=1.0, description="tighter trail at high conf")
    partial_close: bool = False
    partial_at_r: float = Field(1.0, gt=0.0, description="profit in R (initial SL distances)")
    partial_fraction: float = Field(0.5, gt=0.0, lt=1.0)
    breakeven_offset_r: float = Field(0.0, ge=0.0)
    min_bars_held: int = Field(0, ge=0, description="before ML_EXIT / SIGNAL may fire")
    max_bars_held: int = Field(0, ge=0, description="TIMEOUT after this many bars; 0 = off")
    exit_threshold: float = Field(0.8, ge=0.0, description="exit-model probability; > 1 = off")
    catastrophic_sl: bool = Field(False, description="seed 004 §21.4 position-as-primary-exit")
    catastrophic_sl_atr_mult: float = Field(3.0, gt=0.0)
    emergency_tp_atr_mult: float = Field(5.0, ge=0.0)
    close_on_opposite: bool = True
    stops_on_entry_bar: bool = Field(
        True, description="check SL/TP inside the fill bar (False = vectorbt convention)"
    )
    stops_before_exits: bool = Field(
        False,
        description="a stop touched in bar i wins over an exit order for open_i (True = vectorbt)",
    )


class SizingConfig(BaseModel):
    """S3: how big."""

    model_config = _FROZEN

    mode: Literal["fraction", "risk", "kelly"] = "risk"
    fraction: float = Field(1.0, gt=0.0, description="notional / equity in 'fraction' mode")
    risk_pct: float = Field(2.0, gt=0.0, le=100.0, description="% of equity lost at the SL")
    kelly_c: float = Field(1.0, ge=0.0, description="calibration conservatism c (1..2)")
    kelly_rmse: float = Field(0.0, ge=0.0, description="calibration RMSE of the model")
    kelly_mult: float = Field(1.0, gt=0.0, description="Kelly fraction (0.5 = half Kelly)")
    max_kelly_fraction: float = Field(0.5, gt=0.0, description="cap on f (notional / equity)")
    use_risk_multiplier: bool = Field(True, description="apply the risk model's multiplier")
    risk_mult_min: float = Field(0.10, ge=0.0)
    risk_mult_max: float = Field(1.25, gt=0.0)
    lot_step: float = Field(0.0, ge=0.0, description="quantity step; 0 = continuous")
    min_qty: float = Field(0.0, ge=0.0)
    max_qty: float = Field(math.inf, gt=0.0)
    min_notional: float = Field(0.0, ge=0.0)
    leverage: float = Field(1.0, gt=0.0, description="cap on total notional / equity")
    maintenance_margin: float = Field(0.005, ge=0.0, lt=1.0)


class GuardConfig(BaseModel):
    """S4: when to stop trading."""

    model_config = _FROZEN

    daily_loss_pct: float = Field(0.0, ge=0.0, description="of current equity; 0 = off")
    weekly_drawdown_pct: float = Field(0.0, ge=0.0, description="from the week's peak; 0 = off")
    max_consecutive_losses: int = Field(0, ge=0, description="circuit breaker; 0 = off")
    breaker_pause_bars: int = Field(96, ge=0)
    equity_filter_trades: int = Field(0, ge=0, description="last N trades; 0 = off")
    equity_filter_max_loss_pct: float = Field(5.0, ge=0.0)
    equity_filter_pause_bars: int = Field(96, ge=0)
    paused: bool = Field(False, description="no new entries")
    kill_switch: bool = Field(False, description="no entries and close everything")
    close_positions_on_breach: bool = Field(False, description="daily/weekly breach closes all")
    day_offset_hours: float = Field(0.0, ge=-24.0, le=24.0, description="local day start vs UTC")


class PolicyConfig(BaseModel):
    """The complete trading policy; ``to_array()`` feeds the compiled functions."""

    model_config = _FROZEN

    entry: EntryConfig = EntryConfig()
    exit: ExitConfig = ExitConfig()
    sizing: SizingConfig = SizingConfig()
    guards: GuardConfig = GuardConfig()

    def to_array(self) -> np.ndarray:
        """Flat float64 record in the :mod:`hydraquant.policy.state` ``CFG_*`` layout."""
        e, x, z, g = self.entry, self.exit, self.sizing, self.guards
        a = np.zeros(S.N_CFG, dtype=np.float64)
        a[S.CFG_CONF_THRESHOLD] = e.conf_threshold
        a[S.CFG_MIN_PROB_DIFF] = e.min_prob_diff
        a[S.CFG_ALLOW_LONG] = float(e.allow_long)
        a[S.CFG_ALLOW_SHORT] = float(e.allow_short)
        a[S.CFG_REGIME_MASK] = (
            -1.0
            if e.allowed_regimes is None
            else float(sum(1 << r for r in set(e.allowed_regimes)))
        )
        a[S.CFG_ADX_MIN] = e.adx_min
        a[S.CFG_ADX_MAX] = e.adx_max
        a[S.CFG_SCORER_THRESHOLD] = e.scorer_threshold
        a[S.CFG_COOLDOWN_BARS] = e.cooldown_bars
        a[S.CFG_MAX_POSITIONS] = e.max_positions
        a[S.CFG_STOP_MODE] = S.STOP_ATR if x.stop_mode == "atr" else S.STOP_PCT
        a[S.CFG_SL_ATR_MULT] = x.sl_atr_mult
        a[S.CFG_TP_ATR_MULT] = x.tp_atr_mult
        a[S.CFG_SL_PCT] = x.sl_pct
        a[S.CFG_TP_PCT] = x.tp_pct
        a[S.CFG_CONF_SCALE] = float(x.confidence_scaling)
        a[S.CFG_CONF_SL_ADJUST] = x.confidence_sl_adjust
        a[S.CFG_CONF_TP_ADJUST] = x.confidence_tp_adjust
        a[S.CFG_MIN_TP_ATR] = x.min_tp_atr
        a[S.CFG_TRAIL_ENABLED] = float(x.trailing)
        a[S.CFG_TRAIL_ATR_MULT] = x.trail_atr_mult
        a[S.CFG_TRAIL_MIN_PROFIT_ATR] = x.trail_min_profit_atr
        a[S.CFG_TRAIL_CONF_ADJUST] = x.trail_conf_adjust
        a[S.CFG_PARTIAL_ENABLED] = float(x.partial_close)
        a[S.CFG_PARTIAL_AT_R] = x.partial_at_r
        a[S.CFG_PARTIAL_FRACTION] = x.partial_fraction
        a[S.CFG_BE_OFFSET_R] = x.breakeven_offset_r
        a[S.CFG_MIN_BARS_HELD] = x.min_bars_held
        a[S.CFG_MAX_BARS_HELD] = x.max_bars_held
        a[S.CFG_EXIT_THRESHOLD] = x.exit_threshold
        a[S.CFG_CATASTROPHIC] = float(x.catastrophic_sl)
        a[S.CFG_CAT_SL_ATR_MULT] = x.catastrophic_sl_atr_mult
        a[S.CFG_EMERGENCY_TP_ATR_MULT] = x.emergency_tp_atr_mult
        a[S.CFG_CLOSE_ON_OPPOSITE] = float(x.close_on_opposite)
        a[S.CFG_STOPS_ON_ENTRY_BAR] = float(x.stops_on_entry_bar)
        a[S.CFG_STOPS_BEFORE_EXITS] = float(x.stops_before_exits)
        a[S.CFG_SIZING_MODE] = {
            "fraction": S.SIZING_FRACTION,
            "risk": S.SIZING_RISK,
            "kelly": S.SIZING_KELLY,
        }[z.mode]
        a[S.CFG_FRACTION] = z.fraction
        a[S.CFG_RISK_PCT] = z.risk_pct
        a[S.CFG_KELLY_C] = z.kelly_c
        a[S.CFG_KELLY_RMSE] = z.kelly_rmse
        a[S.CFG_KELLY_MULT] = z.kelly_mult
        a[S.CFG_MAX_KELLY_FRACTION] = z.max_kelly_fraction
        a[S.CFG_USE_RISK_MULT] = float(z.use_risk_multiplier)
        a[S.CFG_RISK_MULT_MIN] = z.risk_mult_min
        a[S.CFG_RISK_MULT_MAX] = z.risk_mult_max
        a[S.CFG_LOT_STEP] = z.lot_step
        a[S.CFG_MIN_QTY] = z.min_qty
        a[S.CFG_MAX_QTY] = z.max_qty
        a[S.CFG_MIN_NOTIONAL] = z.min_notional
        a[S.CFG_LEVERAGE] = z.leverage
        a[S.CFG_MAINT_MARGIN] = z.maintenance_margin
        a[S.CFG_DAILY_LOSS_PCT] = g.daily_loss_pct
        a[S.CFG_WEEKLY_DD_PCT] = g.weekly_drawdown_pct
        a[S.CFG_MAX_CONSEC_LOSSES] = g.max_consecutive_losses
        a[S.CFG_CB_PAUSE_BARS] = g.breaker_pause_bars
        a[S.CFG_EC_LOOKBACK] = g.equity_filter_trades
        a[S.CFG_EC_MAX_LOSS_PCT] = g.equity_filter_max_loss_pct
        a[S.CFG_EC_PAUSE_BARS] = g.equity_filter_pause_bars
        a[S.CFG_PAUSED] = float(g.paused)
        a[S.CFG_KILL_SWITCH] = float(g.kill_switch)
        a[S.CFG_GUARD_CLOSE_POSITIONS] = float(g.close_positions_on_breach)
        return a
