"""Policy rules called one bar at a time from Python (as the live engine will)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hydraquant.policy import (
    PolicyConfig,
    after_bar,
    entry_decision,
    exit_decision,
    guard_on_bar,
    guard_on_trade,
    intrabar_exit,
    kelly_fraction,
    liquidation_price,
    open_position,
    position_size,
    round_qty,
    signal_side,
    stop_distances,
)
from hydraquant.policy import state as S
from hydraquant.policy.entries import (
    REFUSE_ADX,
    REFUSE_COOLDOWN,
    REFUSE_GUARD,
    REFUSE_MAX_POSITIONS,
    REFUSE_NONE,
    REFUSE_REGIME,
    REFUSE_SCORER,
)


def cfg(**sections) -> np.ndarray:
    return PolicyConfig.model_validate(sections).to_array()


def test_config_refuses_unknown_keys_and_is_frozen():
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate({"entry": {"conf_treshold": 0.7}})
    p = PolicyConfig()
    with pytest.raises(ValidationError):
        p.entry.conf_threshold = 0.1  # type: ignore[misc]
    a = p.to_array()
    assert (
        a.shape == (S.N_CFG,) and a[S.CFG_CONF_THRESHOLD] == 0.65 and a[S.CFG_MIN_PROB_DIFF] == 0.08
    )


def test_signal_threshold_and_margin():
    c = cfg(entry={"conf_threshold": 0.6, "min_prob_diff": 0.1})
    assert signal_side(c, 0.7, 0.1, 0.2) == (1, 0.7)
    assert signal_side(c, 0.1, 0.7, 0.2) == (-1, 0.7)
    assert signal_side(c, 0.55, 0.05, 0.4)[0] == 0  # below threshold
    assert signal_side(c, 0.62, 0.0, 0.55)[0] == 0  # margin 0.07 < 0.1
    assert signal_side(c, 0.2, 0.1, 0.7)[0] == 0  # flat wins
    assert signal_side(c, 0.75, 0.2, math.nan) == (1, 0.75)  # flat inferred = 0.05
    assert (
        signal_side(cfg(entry={"allow_short": False, "conf_threshold": 0.6}), 0.1, 0.8, 0.1)[0] == 0
    )


def test_filters_and_gates_report_reasons():
    c = cfg(
        entry={
            "conf_threshold": 0.6,
            "allowed_regimes": [1, 3],
            "adx_min": 20.0,
            "scorer_threshold": 0.55,
            "cooldown_bars": 3,
            "max_positions": 2,
        }
    )
    ok = {
        "regime": 3.0,
        "adx": 25.0,
        "p_score": 0.6,
        "bar": 10,
        "last_exit_bar": 5.0,
        "n_active": 1,
        "guard_ok": True,
    }

    def decide(**kw):
        a = {**ok, **kw}
        return entry_decision(
            c,
            0.8,
            0.1,
            0.1,
            a["regime"],
            a["adx"],
            a["p_score"],
            a["bar"],
            a["last_exit_bar"],
            a["n_active"],
            a["guard_ok"],
        )

    assert decide() == (1, 0.8, REFUSE_NONE)
    assert decide(regime=2.0)[2] == REFUSE_REGIME
    assert decide(regime=math.nan)[2] == REFUSE_REGIME
    assert decide(adx=19.9)[2] == REFUSE_ADX
    assert decide(p_score=0.5)[2] == REFUSE_SCORER
    assert decide(last_exit_bar=8.0)[2] == REFUSE_COOLDOWN  # 10 - 8 < 3
    assert decide(last_exit_bar=7.0)[2] == REFUSE_NONE
    assert decide(n_active=2)[2] == REFUSE_MAX_POSITIONS
    assert decide(guard_ok=False)[2] == REFUSE_GUARD


def test_confidence_scaled_sl_tp_follows_seed_formula():
    c = cfg(
        entry={"conf_threshold": 0.6},
        exit={
            "sl_atr_mult": 1.0,
            "tp_atr_mult": 1.5,
            "confidence_scaling": True,
            "confidence_sl_adjust": 0.3,
            "confidence_tp_adjust": 0.5,
        },
    )
    for conf, sl, tp in [(0.6, 1.0, 1.5), (0.8, 0.85, 1.875), (1.0, 0.7, 2.25), (0.5, 1.0, 1.5)]:
        d = stop_distances(c, conf, 10.0, 100.0)
        assert d[0] == pytest.approx(sl * 10) and d[1] == pytest.approx(tp * 10) and d[2] == 0.0
    plain = stop_distances(cfg(exit={"tp_atr_mult": 0.5, "min_tp_atr": 0.8}), 0.9, 10.0, 100.0)
    assert plain[:2] == (10.0, 8.0)  # TP floor
    cat = stop_distances(cfg(exit={"catastrophic_sl": True}), 0.9, 10.0, 100.0)
    assert cat[:2] == (30.0, 50.0)
    pct = stop_distances(
        cfg(exit={"stop_mode": "pct", "sl_pct": 0.01, "tp_pct": 0.0}), 0.9, 10.0, 200.0
    )
    assert pct[0] == 2.0 and math.isnan(pct[1])
    tr = stop_distances(
        cfg(
            entry={"conf_threshold": 0.6},
            exit={"trailing": True, "trail_atr_mult": 1.2, "trail_conf_adjust": 0.5},
        ),
        1.0,
        10.0,
        100.0,
    )
    assert tr[2] == pytest.approx(6.0)  # tightest at full confidence


def test_kelly_with_calibration_penalty():
    assert kelly_fraction(0.5, 1.0, 0.0) == 0.0
    assert kelly_fraction(0.4, 1.0, 0.0) == 0.0
    assert kelly_fraction(0.7, 1.0, 0.0) == pytest.approx(0.4)
    # alpha = 1 - 1.0 * 0.1 / 0.4 = 0.75 -> f = 0.3
    assert kelly_fraction(0.7, 1.0, 0.1) == pytest.approx(0.3)
    # small edge, same RMSE: alpha = max(0, 1 - 0.1/0.06) = 0
    assert kelly_fraction(0.53, 1.0, 0.1) == 0.0
    c = cfg(
        sizing={
            "mode": "kelly",
            "kelly_rmse": 0.1,
            "kelly_mult": 0.5,
            "max_kelly_fraction": 0.5,
            "use_risk_multiplier": False,
        }
    )
    # f = 0.5 * 0.3 = 0.15 of 10k = 1500 notional at price 100
    assert position_size(c, 10_000.0, 100.0, 1.0, 0.7, math.nan, 0.0, 0.0) == pytest.approx(15.0)
    c_cap = cfg(sizing={"mode": "kelly", "max_kelly_fraction": 0.2})
    assert position_size(c_cap, 10_000.0, 100.0, 1.0, 0.9, math.nan, 0.0, 0.0) == pytest.approx(
        20.0
    )


def test_risk_sizing_multiplier_lots_and_leverage():
    c = cfg(
        sizing={
            "mode": "risk",
            "risk_pct": 2.0,
            "lot_step": 0.01,
            "min_qty": 0.05,
            "leverage": 10.0,
        }
    )
    # 2 % of 10k = 200 at risk / SL distance 150 = 1.3333 -> floor to 1.33
    assert position_size(c, 10_000.0, 50_000.0, 150.0, 0.7, math.nan, 0.0, 0.0) == pytest.approx(
        1.33
    )
    # risk multiplier 2.0 is clipped to 1.25 -> 1.6667 -> 1.66
    assert position_size(c, 10_000.0, 50_000.0, 150.0, 0.7, 2.0, 0.0, 0.0) == pytest.approx(1.66)
    assert position_size(c, 10_000.0, 50_000.0, 150.0, 0.7, 0.01, 0.0, 0.0) == pytest.approx(
        0.13
    )  # clip 0.10
    c = cfg(
        sizing={"mode": "risk", "risk_pct": 2.0, "lot_step": 0.01, "min_qty": 0.05, "leverage": 3.0}
    )
    # leverage caps total notional at 30k; 20k already used -> 10k / 50k = 0.2
    assert position_size(
        c, 10_000.0, 50_000.0, 10.0, 0.7, math.nan, 20_000.0, 0.0
    ) == pytest.approx(0.2)
    assert (
        position_size(c, 10_000.0, 50_000.0, 10.0, 0.7, math.nan, 29_000.0, 0.0) == 0.0
    )  # 0.02 < min 0.05
    mn = cfg(sizing={"mode": "fraction", "fraction": 0.001, "min_notional": 20.0})
    assert position_size(mn, 10_000.0, 100.0, 1.0, 0.7, math.nan, 0.0, 0.0) == 0.0


def test_round_qty_rules():
    assert round_qty(1.239, 0.01, 0.0, math.inf) == pytest.approx(1.23)
    assert round_qty(0.3, 0.1, 0.0, math.inf) == pytest.approx(0.3)  # no float floor error
    assert round_qty(7.0, 1.0, 0.0, 5.0) == 5.0
    assert round_qty(0.04, 0.01, 0.05, math.inf) == 0.0
    assert round_qty(-1.0, 0.01, 0.0, math.inf) == 0.0


@given(st.floats(0.001, 1e6), st.sampled_from([0.001, 0.01, 0.1, 1.0]))
def test_round_qty_is_multiple_of_step_and_never_exceeds(qty, step):
    q = round_qty(qty, step, 0.0, math.inf)
    assert q <= qty + 1e-9 * qty
    assert abs(q / step - round(q / step)) < 1e-6
    assert qty - q < step * (1 + 1e-6)


def test_intrabar_resolution_for_one_position():
    c = cfg(exit={"sl_atr_mult": 1.0, "tp_atr_mult": 2.0})
    pos = S.new_positions(1)[0]
    open_position(c, pos, 1, 1.0, 100.0, 0, 0.8, 1.0, 0.0, 0.0)
    assert (pos[S.P_SL], pos[S.P_TP]) == (99.0, 102.0)
    assert intrabar_exit(c, pos, 100.0, 102.5, 98.5)[:2] == (
        S.SL_HIT,
        99.0,
    )  # both touched: SL first
    assert intrabar_exit(c, pos, 98.0, 99.0, 97.0)[:2] == (S.SL_HIT, 98.0)  # gap through SL
    assert intrabar_exit(c, pos, 103.0, 104.0, 102.5)[:2] == (S.TP_HIT, 103.0)  # gap through TP
    assert intrabar_exit(c, pos, 100.0, 102.0, 99.5)[:2] == (S.TP_HIT, 102.0)
    assert intrabar_exit(c, pos, 100.0, 101.0, 99.5)[0] == S.CLOSE_NONE


def test_trailing_and_break_even_ratchet_only_after_bar():
    c = cfg(
        exit={
            "sl_atr_mult": 2.0,
            "tp_atr_mult": 0.0,
            "trailing": True,
            "trail_atr_mult": 1.0,
            "trail_min_profit_atr": 1.0,
            "partial_close": True,
            "partial_at_r": 1.0,
            "breakeven_offset_r": 0.1,
        }
    )
    pos = S.new_positions(1)[0]
    open_position(c, pos, -1, 2.0, 100.0, 0, 0.8, 1.0, 0.0, 0.0)  # short, SL 102, 1R = 2
    assert intrabar_exit(c, pos, 100.0, 100.5, 97.5)[:3] == (S.PARTIAL, 98.0, 1.0)
    pos[S.P_QTY] = 1.0
    pos[S.P_PARTIAL_DONE] = 1.0
    pos[S.P_BE_PENDING] = 1.0
    after_bar(c, pos, 100.5, 99.5)  # best 99.5 (< 1 ATR profit: trail not armed); BE -> 100 - 0.2
    assert pos[S.P_SL] == pytest.approx(99.8) and pos[S.P_TRAIL_ON] == 0.0
    after_bar(c, pos, 99.0, 97.0)  # best 97, trail = 98 < 99.8 -> trail takes over
    assert pos[S.P_SL] == pytest.approx(98.0) and pos[S.P_TRAIL_ON] == 1.0
    after_bar(c, pos, 99.5, 98.5)  # worse bar: stop never loosens
    assert pos[S.P_SL] == pytest.approx(98.0)
    assert intrabar_exit(c, pos, 98.2, 98.4, 97.9)[:2] == (S.TRAIL, 98.2)  # gap above stop -> open


def test_liquidation_price_and_priority():
    assert liquidation_price(1, 100.0, 10.0, 0.005) == pytest.approx(90.5)
    assert liquidation_price(-1, 100.0, 10.0, 0.005) == pytest.approx(109.5)
    c = cfg(exit={"catastrophic_sl": True}, sizing={"leverage": 10.0})
    pos = S.new_positions(1)[0]
    open_position(c, pos, 1, 1.0, 100.0, 0, 0.8, 5.0, 0.0, 0.0)  # SL 85, liq 90.5
    assert intrabar_exit(c, pos, 95.0, 96.0, 80.0)[:2] == (S.LIQUIDATION, pytest.approx(90.5))


def test_exit_decision_priorities():
    c = cfg(exit={"min_bars_held": 3, "max_bars_held": 10, "exit_threshold": 0.8})
    pos = S.new_positions(1)[0]
    open_position(c, pos, 1, 1.0, 100.0, 5, 0.8, 1.0, 0.0, 0.0)
    assert exit_decision(c, pos, 6, 0.9, -1, False) == S.CLOSE_NONE  # held 2 < 3
    assert exit_decision(c, pos, 7, 0.9, -1, False) == S.ML_EXIT
    assert exit_decision(c, pos, 7, 0.5, -1, False) == S.SIGNAL
    assert exit_decision(c, pos, 7, 0.5, 1, False) == S.CLOSE_NONE
    assert exit_decision(c, pos, 14, 0.9, -1, False) == S.TIMEOUT
    assert exit_decision(c, pos, 6, math.nan, 0, True) == S.GUARD


def test_guards_trigger_and_reset():
    c = cfg(
        guards={
            "daily_loss_pct": 3.0,
            "weekly_drawdown_pct": 10.0,
            "max_consecutive_losses": 2,
            "breaker_pause_bars": 5,
            "equity_filter_trades": 3,
            "equity_filter_max_loss_pct": 5.0,
            "equity_filter_pause_bars": 7,
        }
    )
    g = S.new_guard_state(3, 1000.0)
    assert guard_on_bar(c, g, 1000.0, 0, 0, 0) == (True, False)
    # day P&L -30 vs limit 3 % of 970 = 29.1 -> blocked for the rest of day 0
    assert guard_on_bar(c, g, 970.0, 0, 0, 1) == (False, False)
    assert guard_on_bar(c, g, 1000.0, 0, 0, 2)[0] is False
    assert guard_on_bar(c, g, 1000.0, 1, 0, 3)[0] is True  # new day resets
    # weekly: peak 1000 -> 899 is a 10.1 % drawdown (daily guard off here)
    w = cfg(guards={"weekly_drawdown_pct": 10.0})
    gw = S.new_guard_state(0, 1000.0)
    assert guard_on_bar(w, gw, 950.0, 2, 0, 4)[0] is True
    assert guard_on_bar(w, gw, 899.0, 3, 0, 5)[0] is False
    assert guard_on_bar(w, gw, 950.0, 4, 0, 6)[0] is False  # rest of the week
    assert guard_on_bar(w, gw, 899.0, 7, 1, 7)[0] is True  # new week resets
    # breaker: two losses at bar 10 -> pause bars 10..14
    guard_on_trade(c, g, -1.0, 1000.0, 10)
    guard_on_trade(c, g, -1.0, 1000.0, 10)
    assert g[S.G_PAUSE_UNTIL] == 15 and g[S.G_CONSEC] == 0
    assert guard_on_bar(c, g, 1000.0, 1, 0, 14)[0] is False
    assert guard_on_bar(c, g, 1000.0, 1, 0, 15)[0] is True
    # equity filter: last 3 trades sum -1 - (-1) ... window holds [-1, -1, -60] = -62 <= -5 % of 1000
    guard_on_trade(c, g, -60.0, 1000.0, 20)
    assert g[S.G_PAUSE_UNTIL] == 27 and g[S.G_EC_COUNT] == 0
    kill = cfg(guards={"kill_switch": True})
    assert guard_on_bar(kill, S.new_guard_state(0, 1.0), 1.0, 0, 0, 0) == (False, True)


def test_layout_constants_are_unique_and_dense():
    names = [k for k in dir(S) if k.startswith("CFG_") and k != "CFG_FIELDS"]
    values = sorted(getattr(S, k) for k in names)
    assert values == list(range(S.N_CFG))
    pvals = sorted(getattr(S, k) for k in dir(S) if k.startswith("P_"))
    assert pvals == list(range(S.N_POS))
