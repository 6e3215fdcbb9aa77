"""Engine rules on hand-built bars with exact fills, prices and P&L."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.backtest import CostConfig, MarketData, market_from_frame, run_backtest
from hydraquant.backtest.engine import calendar_indices, funding_events
from hydraquant.policy import PolicyConfig

MIN = 60_000_000
HOUR = 3_600_000_000
NO_COSTS = CostConfig(maker_fee=0.0, taker_fee=0.0)


def market(
    bars, *, p_long=None, p_short=None, p_exit=None, atr=2.0, start=0, step=MIN, **kw
) -> MarketData:
    a = np.asarray(bars, dtype=np.float64)
    n = a.shape[0]
    col = lambda x: None if x is None else np.asarray(x, dtype=np.float64).reshape(n, 1)
    pl_ = np.zeros(n) if p_long is None else np.asarray(p_long, dtype=np.float64)
    ps = np.zeros(n) if p_short is None else np.asarray(p_short, dtype=np.float64)
    return MarketData(
        ts=start + np.arange(n, dtype=np.int64) * step,
        symbols=("X",),
        open=a[:, :1],
        high=a[:, 1:2],
        low=a[:, 2:3],
        close=a[:, 3:4],
        atr=np.full((n, 1), atr),
        p_long=col(pl_),
        p_short=col(ps),
        p_exit=col(p_exit),
        **kw,
    )


def policy(**sections) -> PolicyConfig:
    base = {
        "entry": {"conf_threshold": 0.5, "min_prob_diff": 0.0},
        "exit": {"sl_atr_mult": 1.0, "tp_atr_mult": 1.0},
        "sizing": {"mode": "fraction", "fraction": 1.0},
    }
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return PolicyConfig.model_validate(base)


def signal_at(n, *idx, p=1.0):
    x = np.zeros(n)
    x[list(idx)] = p
    return x


FLAT = [100.0, 100.5, 99.5, 100.0]


def test_entry_at_next_open_and_sl_first_when_bar_touches_both():
    bars = [FLAT, [100, 101, 99, 100], [100, 103, 97, 100], FLAT]
    r = run_backtest(market(bars, p_long=signal_at(4, 0)), policy(), NO_COSTS)
    t = r.trades.row(0, named=True)
    assert r.trades.height == 1
    assert t["entry_ts"] == datetime(1970, 1, 1, 0, 1, tzinfo=UTC)  # bar 1 open
    assert t["entry_price"] == 100.0 and t["qty"] == pytest.approx(100.0)
    assert t["close_type"] == "SL_HIT" and t["exit_price"] == 98.0 and t["bars_held"] == 1
    assert t["pnl"] == pytest.approx(-200.0)
    assert r.metrics["final_equity"] == pytest.approx(9800.0)


@pytest.mark.parametrize(
    ("bar2", "ctype", "price"),
    [
        ([96, 97, 95, 96], "SL_HIT", 96.0),
        ([105, 106, 104.5, 105], "TP_HIT", 105.0),
        ([100, 102.5, 99, 102], "TP_HIT", 102.0),
    ],
)
def test_gaps_fill_at_open_and_targets_at_level(bar2, ctype, price):
    bars = [FLAT, [100, 100.5, 99.5, 100], bar2, FLAT]
    r = run_backtest(market(bars, p_long=signal_at(4, 0)), policy(), NO_COSTS)
    t = r.trades.row(0, named=True)
    assert (t["close_type"], t["exit_price"]) == (ctype, price)
    assert t["pnl"] == pytest.approx((price - 100.0) * 100.0)


def test_short_side_mirrors_stops():
    bars = [FLAT, [100, 100.5, 99.5, 100], [100, 100.5, 97.5, 98], FLAT]
    r = run_backtest(market(bars, p_short=signal_at(4, 0)), policy(), NO_COSTS)
    t = r.trades.row(0, named=True)
    assert (t["side"], t["close_type"], t["exit_price"]) == ("short", "TP_HIT", 98.0)
    assert t["pnl"] == pytest.approx(200.0)


def test_fees_spread_and_slippage_exact():
    bars = [FLAT, [100, 100.5, 99.5, 100], [100, 102.5, 99.9, 102], FLAT]
    costs = CostConfig(maker_fee=0.0005, taker_fee=0.001, spread_bps=10.0, slippage_bps=5.0)
    r = run_backtest(market(bars, p_long=signal_at(4, 0)), policy(), costs)
    t = r.trades.row(0, named=True)
    fill = 100.0 * (1 + 0.0005 + 0.0005)  # half spread + slippage on the market entry
    qty = 10_000 / 1.001 / 100.0  # sized at the decision close, entry fee fits in equity
    tp = fill + 2.0  # TP is 1 ATR from the fill; limit order: maker fee, no spread
    fees = fill * qty * 0.001 + tp * qty * 0.0005
    assert t["entry_price"] == pytest.approx(fill)
    assert t["exit_price"] == pytest.approx(tp) and t["close_type"] == "TP_HIT"
    assert t["qty"] == pytest.approx(qty)
    assert t["fees"] == pytest.approx(fees)
    assert t["pnl"] == pytest.approx(2.0 * qty - fees)
    assert r.metrics["final_equity"] == pytest.approx(10_000 + t["pnl"])


def test_volatility_scaled_slippage_uses_previous_atr():
    bars = [FLAT, [100, 100.5, 99.5, 100], FLAT, FLAT]
    costs = CostConfig(maker_fee=0.0, taker_fee=0.0, slippage_atr_frac=0.1)
    r = run_backtest(
        market(bars, p_long=signal_at(4, 0), atr=2.0), policy(exit={"tp_atr_mult": 5.0}), costs
    )
    assert r.trades["entry_price"][0] == pytest.approx(100.0 * (1 + 0.1 * 2.0 / 100.0))


def test_funding_charged_at_8h_boundaries_on_carried_positions():
    start = 6 * HOUR  # bars open 06:00, 07:00, 08:00, 09:00, 10:00
    bars = [FLAT, FLAT, [101, 101.5, 100.5, 101], FLAT, FLAT]
    costs = CostConfig(maker_fee=0.0, taker_fee=0.0, funding_rate=0.0001)
    m = market(bars, p_long=signal_at(5, 0), start=start, step=HOUR)
    r = run_backtest(m, policy(exit={"tp_atr_mult": 0.0, "sl_atr_mult": 5.0}), costs)
    t = r.trades.row(0, named=True)
    assert t["close_type"] == "END"
    assert t["funding"] == pytest.approx(100.0 * 101.0 * 0.0001)  # one event, at 08:00, on open 101
    assert t["pnl"] == pytest.approx(0.0 - t["funding"])
    ev = funding_events(np.array([7, 8, 9, 16, 25]) * HOUR - HOUR // 2, 8 * HOUR)
    assert ev.tolist() == [
        False,
        False,
        True,
        False,
        True,
    ]  # 08:00 in (07:30, 08:30], 24:00 in (15:30, 24:30]


def test_stops_on_entry_bar_switch():
    bars = [FLAT, [100, 100.5, 97, 100], FLAT, FLAT]
    on = run_backtest(market(bars, p_long=signal_at(4, 0)), policy(), NO_COSTS)
    off = run_backtest(
        market(bars, p_long=signal_at(4, 0)), policy(exit={"stops_on_entry_bar": False}), NO_COSTS
    )
    assert on.trades["close_type"].to_list() == ["SL_HIT"] and on.trades["bars_held"][0] == 0
    assert off.trades["close_type"].to_list() == ["END"]


def test_trailing_stop_ratchets_after_each_bar():
    bars = [
        FLAT,
        [100, 101, 99.5, 100.8],
        [100.8, 103, 100.5, 102.8],
        [102.5, 102.6, 101, 101.5],
        FLAT,
    ]
    pol = policy(
        exit={
            "sl_atr_mult": 2.0,
            "tp_atr_mult": 0.0,
            "trailing": True,
            "trail_atr_mult": 1.0,
            "trail_min_profit_atr": 0.5,
        }
    )
    r = run_backtest(market(bars, p_long=signal_at(5, 0), atr=1.0), pol, NO_COSTS)
    t = r.trades.row(0, named=True)
    assert (t["close_type"], t["exit_price"], t["bars_held"]) == ("TRAIL", 102.0, 2)
    assert t["pnl"] == pytest.approx(200.0)


def test_partial_close_then_break_even():
    bars = [FLAT, [100, 101.5, 99.5, 101], [101, 101.2, 99.8, 100], FLAT]
    pol = policy(
        exit={
            "sl_atr_mult": 1.0,
            "tp_atr_mult": 3.0,
            "partial_close": True,
            "partial_at_r": 1.0,
            "partial_fraction": 0.5,
        }
    )
    r = run_backtest(market(bars, p_long=signal_at(4, 0), atr=1.0), pol, NO_COSTS)
    rows = r.trades.select("close_type", "exit_price", "qty", "pnl").rows()
    assert rows == [
        ("PARTIAL", 101.0, 50.0, pytest.approx(50.0)),
        ("SL_HIT", 100.0, 50.0, pytest.approx(0.0)),
    ]
    assert (
        r.metrics["trades"] == 1 and r.metrics["win_rate"] == 1.0
    )  # partials merge into one position


def test_timeout_and_ml_exit_respect_holding_rules():
    bars = [FLAT] * 6
    pol = policy(exit={"tp_atr_mult": 0.0, "sl_atr_mult": 5.0, "max_bars_held": 2})
    r = run_backtest(market(bars, p_long=signal_at(6, 0)), pol, NO_COSTS)
    assert r.trades.select("close_type", "bars_held").rows() == [("TIMEOUT", 2)]
    pol = policy(
        exit={"tp_atr_mult": 0.0, "sl_atr_mult": 5.0, "min_bars_held": 2, "exit_threshold": 0.8}
    )
    p_exit = np.array([np.nan, 0.9, 0.9, np.nan, np.nan, np.nan])
    r = run_backtest(market(bars, p_long=signal_at(6, 0), p_exit=p_exit), pol, NO_COSTS)
    assert r.trades.select("close_type", "bars_held").rows() == [("ML_EXIT", 2)]


def test_opposite_signal_closes_with_signal_type():
    bars = [FLAT] * 5
    r = run_backtest(
        market(bars, p_long=signal_at(5, 0), p_short=signal_at(5, 2)),
        policy(exit={"tp_atr_mult": 0.0, "sl_atr_mult": 5.0}),
        NO_COSTS,
    )
    assert r.trades["close_type"].to_list()[0] == "SIGNAL"
    assert r.trades["exit_ts"][0] == datetime(1970, 1, 1, 0, 3, tzinfo=UTC)


def test_liquidation_with_leverage():
    bars = [FLAT, FLAT, [99, 99.5, 89, 90], FLAT]
    pol = policy(
        exit={
            "catastrophic_sl": True,
            "catastrophic_sl_atr_mult": 3.0,
            "emergency_tp_atr_mult": 0.0,
        },
        sizing={"fraction": 5.0, "leverage": 10.0, "maintenance_margin": 0.005},
    )
    r = run_backtest(market(bars, p_long=signal_at(4, 0), atr=5.0), pol, NO_COSTS)
    t = r.trades.row(0, named=True)
    assert (t["close_type"], t["exit_price"]) == ("LIQUIDATION", pytest.approx(90.5))
    assert t["pnl"] == pytest.approx(-9.5 * 500.0)


def test_consecutive_loss_breaker_pauses_entries():
    bars = [[100, 100.5, 97, 100]] * 10
    pol = policy(guards={"max_consecutive_losses": 2, "breaker_pause_bars": 3})
    r = run_backtest(market(bars, p_long=np.ones(10)), pol, NO_COSTS)
    entry_minutes = [t.minute for t in r.trades["entry_ts"].to_list()]
    assert entry_minutes == [1, 2, 6, 7]
    assert r.metrics["guard_triggers"] == 2


def test_pause_and_kill_switch_block_everything():
    bars = [[100, 100.5, 97, 100]] * 5
    for g in ({"paused": True}, {"kill_switch": True}):
        r = run_backtest(market(bars, p_long=np.ones(5)), policy(guards=g), NO_COSTS)
        assert r.trades.height == 0 and r.metrics["final_equity"] == 10_000


def test_daily_loss_guard_blocks_until_next_day_and_closes_if_asked():
    # 12h bars: day 0 = bars 0,1; day 1 = bars 2,3; ...
    bars = [FLAT, [100, 100.5, 97, 97.5], [97.5, 98, 97, 97.5], FLAT, FLAT, FLAT]
    pol = policy(
        exit={"tp_atr_mult": 0.0, "sl_atr_mult": 10.0},
        guards={"daily_loss_pct": 1.0, "close_positions_on_breach": True},
    )
    r = run_backtest(market(bars, p_long=np.ones(6), step=12 * HOUR), pol, NO_COSTS)
    t = r.trades.row(0, named=True)
    assert t["close_type"] == "GUARD" and t["exit_price"] == 97.5  # decided at close of bar 1
    # next entry is decided in day 1 (bar 2 close) -> fills at bar 3 open
    assert r.trades["entry_ts"].to_list()[1].hour == 12


def test_max_positions_shared_across_symbols_and_long_frame_pivot():
    ts = [datetime(2024, 1, 1, 0, i, tzinfo=UTC) for i in range(4)]
    rows = []
    for sym in ("AAA", "BBB"):
        for i, t in enumerate(ts):
            if sym == "BBB" and i == 3:
                continue  # missing bar -> NaN row for BBB
            rows.append(
                {
                    "ts": t,
                    "symbol": sym,
                    "open": 100.0,
                    "high": 100.5,
                    "low": 99.5,
                    "close": 100.0,
                    "atr": 2.0,
                    "p_long": 1.0 if i == 0 else 0.0,
                    "p_short": 0.0,
                }
            )
    frame = pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    m = market_from_frame(frame, interval="1m")
    assert m.symbols == ("AAA", "BBB") and np.isnan(m.close[3, 1])
    r = run_backtest(m, policy(entry={"max_positions": 1}, sizing={"fraction": 0.5}), NO_COSTS)
    assert r.trades["symbol"].to_list() == ["AAA"]
    r2 = run_backtest(m, policy(entry={"max_positions": 2}, sizing={"fraction": 0.5}), NO_COSTS)
    assert sorted(r2.trades["symbol"].to_list()) == ["AAA", "BBB"]


def test_calendar_indices_week_starts_monday():
    monday = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000  # a Monday
    ts = np.array([monday - 1, monday, monday + 6 * 86_400_000_000], dtype=np.int64)
    day, week = calendar_indices(ts, 0.0)
    assert day[1] - day[0] == 1 and week[1] - week[0] == 1 and week[2] == week[1]
    day7, _ = calendar_indices(ts, 7.0)  # WIB midnight = 17:00 UTC
    assert day7[0] == day7[1]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    trailing=st.booleans(),
    partial=st.booleans(),
    short=st.booleans(),
)
def test_accounting_identity_and_fill_bounds(seed, trailing, partial, short):
    rng = np.random.default_rng(seed)
    n = 120
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate(([100.0], c[:-1])) * np.exp(rng.normal(0, 0.002, n))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    p_long = rng.uniform(0, 1, n)
    p_short = (1 - p_long) * rng.uniform(0, 1, n) if short else np.zeros(n)
    m = MarketData(
        ts=np.arange(n) * MIN,
        symbols=("X",),
        open=o[:, None],
        high=h[:, None],
        low=lo[:, None],
        close=c[:, None],
        atr=np.full((n, 1), 1.0),
        p_long=p_long[:, None],
        p_short=p_short[:, None],
    )
    pol = policy(
        entry={"conf_threshold": 0.6},
        exit={
            "trailing": trailing,
            "partial_close": partial,
            "trail_min_profit_atr": 0.2,
            "partial_at_r": 0.5,
        },
    )
    costs = CostConfig(maker_fee=0.0002, taker_fee=0.0005, funding_rate=0.0001)
    r = run_backtest(m, pol, costs)
    t = r.trades
    assert r.metrics["final_equity"] == pytest.approx(10_000 + t["pnl"].sum(), rel=1e-9)
    assert (t["exit_ts"] >= t["entry_ts"]).all()
    if t.height:
        exit_idx = ((t["exit_ts"].dt.epoch("us").to_numpy()) // MIN).astype(int)
        px = t["exit_price"].to_numpy()
        stop_like = t["close_type"].is_in(["TP_HIT", "PARTIAL"]).to_numpy()
        assert np.all(px[stop_like] <= h[exit_idx[stop_like]] + 1e-9)
        assert np.all(px[stop_like] >= lo[exit_idx[stop_like]] - 1e-9)
        # one position at a time per symbol: next entry never before previous full exit
        full = t.filter(pl.col("close_type") != "PARTIAL")
        assert (full["entry_ts"][1:].to_numpy() >= full["exit_ts"][:-1].to_numpy()).all()
