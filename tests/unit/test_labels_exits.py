"""L6: HYDRA exit-now-vs-hold label and NOVOSKY HOLD/EXIT/ADD on hand-built positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.labels import PositionAction, exit_labels, hold_exit_add

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(close, side, entry, atr=None, high=None, low=None) -> pl.DataFrame:
    n = len(close)
    c = np.asarray(close, dtype=float)
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=15 * i) for i in range(n)],
            "open": c,
            "high": c if high is None else np.asarray(high, dtype=float),
            "low": c if low is None else np.asarray(low, dtype=float),
            "close": c,
            "side": pl.Series(side, dtype=pl.Int8),
            "entry_price": pl.Series(entry, dtype=pl.Float64),
            "atr": pl.Series([1.0] * n if atr is None else atr, dtype=pl.Float64),
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_exit_label_exact():
    close = [102, 101, 101.4, 100, 100]
    out = exit_labels(frame(close, [1, 1, -1, 0, 1], [100, 100, 100, 100, 100]), 2)
    # row0 long: now +2%, in 2 bars +1.4% -> worse by 0.6% > 0.5% -> exit
    assert out["exit"][0] == 1 and out["current_pnl"][0] == pytest.approx(0.02)
    # row1 long: now +1%, later 0% -> worse by 1% -> exit ; drawdown min(101.4,100)/100-1 = 0
    assert out["exit"][1] == 1 and out["max_drawdown"][1] == pytest.approx(0.0)
    # row2 short from 100: now -1.4%, later 0% -> better -> hold
    assert out["exit"][2] == 0 and out["future_pnl"][2] == pytest.approx(0.0)
    assert out["exit"][3] is None  # flat
    assert out["exit"][4] is None  # no full horizon
    assert out["t_end"][0] == T0 + timedelta(minutes=45)


def test_exit_on_drawdown_and_exit_cost_raises_bar():
    out = exit_labels(frame([100, 96, 101], [1, 1, 1], [100, 100, 100]), 2)
    assert out["exit"][0] == 1 and out["max_drawdown"][0] == pytest.approx(-0.04)
    base = exit_labels(frame([100, 100, 99.4], [1, 1, 1], [100, 100, 100]), 2)
    costly = exit_labels(frame([100, 100, 99.4], [1, 1, 1], [100, 100, 100]), 2, exit_cost_bps=20)
    assert base["exit"][0] == 1 and costly["exit"][0] == 0


def test_hold_exit_add():
    close = [100, 100, 100, 100, 100, 100]
    high = [100, 101.5, 100, 100, 100, 100]
    low = [100, 100, 100, 99.0, 100, 100]
    f = frame(close, [1, -1, 1, 1, 1, 1], [None] * 6, high=high, low=low)
    out = hold_exit_add(f, horizon=2, tp_mult=1.2, sl_mult=0.8)
    # row0 long: bar1 high 101.5 >= 101.2 -> TP -> ADD
    assert out["action"][0] == PositionAction.ADD and out["bars"][0] == 1
    # row1 short: SL at 100.8 -> bars 2,3 highs 100 -> no; TP 98.8 -> low 99 no -> HOLD
    assert out["action"][1] == PositionAction.HOLD and out["hit"][1] == 0
    # row2 long: bar3 low 99.0 <= 99.2 -> SL -> EXIT, known at close of bar 3
    assert out["action_name"][2] == "EXIT" and out["t_end"][2] == T0 + timedelta(minutes=60)
    assert out["action"].to_list()[4:] == [None, None]
    # a TP move smaller than the add's round-trip fee is HOLD, not ADD
    tiny = hold_exit_add(f.with_columns(atr=pl.lit(0.001)), horizon=2, fee_bps=50)
    assert tiny["action"][0] == PositionAction.HOLD
