"""External signals: parsing, validation errors (file/row/column), mapping onto bars, exact trades."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.backtest import CostConfig, run_backtest
from hydraquant.backtest.signals import (
    BacktestConfig,
    SignalError,
    detect_epoch_unit,
    read_signals,
    signals_to_market,
    trim_market,
    validate_signals,
)
from hydraquant.policy import PolicyConfig

T0 = datetime(2024, 1, 1, tzinfo=UTC)
NO_COSTS = CostConfig(maker_fee=0.0, taker_fee=0.0)
POLICY = PolicyConfig.model_validate(
    {
        "entry": {"conf_threshold": 0.5, "min_prob_diff": 0.0},
        "exit": {"sl_atr_mult": 1.0, "tp_atr_mult": 1.0},
        "sizing": {"mode": "fraction", "fraction": 1.0},
    }
)


def make_bars(
    n: int = 30, symbols: tuple[str, ...] = ("BTCUSDT",), tp_bar: int | None = 22
) -> pl.DataFrame:
    """Flat bars, range 2 (ATR-14 = 2 exactly); bar ``tp_bar`` rallies to 102.5."""
    frames = []
    for sym in symbols:
        o = np.full(n, 100.0)
        h = np.full(n, 101.0)
        lo = np.full(n, 99.0)
        c = np.full(n, 100.0)
        if tp_bar is not None:
            h[tp_bar], lo[tp_bar], c[tp_bar] = 102.5, 99.5, 102.0
            o[tp_bar + 1 :] = c[tp_bar + 1 :] = 102.0
            h[tp_bar + 1 :], lo[tp_bar + 1 :] = 103.0, 101.0
        frames.append(
            pl.DataFrame(
                {
                    "ts": [T0 + timedelta(minutes=i) for i in range(n)],
                    "symbol": [sym] * n,
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "volume": np.ones(n),
                }
            ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
        )
    return pl.concat(frames)


def write(tmp_path: Path, frame: pl.DataFrame, name: str) -> Path:
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    return path


def error_of(path: Path, **kw) -> SignalError:
    with pytest.raises(SignalError) as info:
        read_signals(path, **kw)
    return info.value


# --------------------------------------------------------------------------- exact trade


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_side_signal_gives_exact_trade_entry_next_open_tp_at_level(tmp_path, suffix):
    sig = pl.DataFrame({"ts": ["2024-01-01T00:20:00Z"], "symbol": ["BTCUSDT"], "side": [1]})
    path = write(tmp_path, sig, f"s{suffix}")
    market = signals_to_market(make_bars(), read_signals(path), interval="1m")
    assert market.atr[20, 0] == 2.0
    assert (
        np.isnan(market.p_long[19, 0])
        and market.p_long[20, 0] == 1.0
        and market.p_short[20, 0] == 0.0
    )
    r = run_backtest(market, POLICY, NO_COSTS)
    assert r.trades.height == 1
    t = r.trades.row(0, named=True)
    assert t["side"] == "long"
    assert t["entry_ts"] == T0 + timedelta(minutes=21) and t["entry_price"] == 100.0
    assert t["exit_ts"] == T0 + timedelta(minutes=22) and t["exit_price"] == 102.0
    assert t["close_type"] == "TP_HIT" and t["qty"] == pytest.approx(100.0)
    assert t["pnl"] == pytest.approx(200.0)
    assert r.metrics["final_equity"] == pytest.approx(10_200.0)


def test_csv_and_parquet_inputs_give_identical_results(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    bars = (
        make_bars(n, ("AAA", "BBB"), tp_bar=None)
        .with_columns(
            (pl.col("close") + pl.Series(np.tile(np.cumsum(rng.normal(0, 0.5, n)), 2))).alias(
                "close"
            )
        )
        .with_columns(
            pl.col("close").shift(1).over("symbol").fill_null(100.0).alias("open"),
        )
        .with_columns(
            (pl.max_horizontal("open", "close") + 0.3).alias("high"),
            (pl.min_horizontal("open", "close") - 0.3).alias("low"),
        )
    )
    ts = bars["ts"].dt.epoch("ms")
    p = rng.uniform(0, 1, 2 * n)
    sig = pl.DataFrame({"ts": ts, "symbol": bars["symbol"], "p_long": p, "p_short": 1 - p})
    a = read_signals(write(tmp_path, sig, "s.csv"))
    b = read_signals(write(tmp_path, sig, "s.parquet"))
    assert a.equals(b)
    ra = run_backtest(signals_to_market(bars, a, interval="1m"), POLICY)
    rb = run_backtest(signals_to_market(bars, b, interval="1m"), POLICY)
    assert ra.trades.height > 5
    assert ra.trades.equals(rb.trades) and ra.metrics == rb.metrics


# --------------------------------------------------------------------------- parsing


def test_time_formats_all_read_as_utc_bar_opens():
    texts = [
        "2024-01-01T00:01:00Z",
        "2024-01-01 00:02:00",
        "2024-01-01T02:03:00+02:00",
        "2024-01-01T00:04",
    ]
    out = validate_signals(pl.DataFrame({"ts": texts, "symbol": ["x"] * 4, "side": [1, -1, 0, 1]}))
    assert out["ts"].to_list() == [T0 + timedelta(minutes=k) for k in (1, 2, 3, 4)]
    assert out["symbol"].to_list() == ["X"] * 4 and out["_row"].to_list() == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("scale", "unit"), [(1_000, "milliseconds"), (1, "microseconds"), (1_000_000, "seconds")]
)
def test_epoch_unit_is_detected_and_logged(caplog, scale, unit):
    us = np.array([1_704_067_200_000_000, 1_704_067_260_000_000])
    with caplog.at_level(logging.INFO, logger="hydraquant.backtest.signals"):
        out = validate_signals(
            pl.DataFrame({"ts": us // scale, "symbol": ["A", "A"], "side": [1, 0]})
        )
    assert out["ts"].to_list() == [T0, T0 + timedelta(minutes=1)]
    assert f"epoch {unit}" in caplog.text


def test_detect_epoch_unit_boundaries():
    assert detect_epoch_unit(np.array([1.7e9])) == "s"
    assert detect_epoch_unit(np.array([1.7e12])) == "ms"
    assert detect_epoch_unit(np.array([1.7e15])) == "us"
    assert detect_epoch_unit(np.array([1.7e18])) == "ns"


def test_side_words_and_plus_sign(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "ts,symbol,side\n2024-01-01T00:00:00,A,+1\n2024-01-01T00:01:00,A,short\n"
        "2024-01-01T00:02:00,A,flat\n"
    )
    assert read_signals(path)["side"].to_list() == [1, -1, 0]


def test_probability_classes_mapping_and_binary_long_only():
    bars = make_bars(30, tp_bar=None)
    sig = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=20)],
            "symbol": ["BTCUSDT"],
            "p_0": [0.2],
            "p_1": [0.1],
            "p_2": [0.7],
        }
    )
    m = signals_to_market(
        bars, sig, interval="1m", signal_classes={"long": 2, "short": 0, "flat": 1}
    )
    assert (m.p_long[20, 0], m.p_short[20, 0], m.p_flat[20, 0]) == (0.7, 0.2, 0.1)
    m2 = signals_to_market(
        bars, sig.drop("p_2"), interval="1m", signal_classes={"long": 1, "flat": 0}
    )
    assert (m2.p_long[20, 0], m2.p_short[20, 0], m2.p_flat[20, 0]) == (0.1, 0.0, 0.2)
    assert np.isnan(m2.p_long[21, 0])
    m3 = signals_to_market(
        bars, sig, interval="1m", signal_classes={"long": 2}
    )  # flat = 1 - long - short
    assert (m3.p_long[20, 0], m3.p_short[20, 0]) == (0.7, 0.0) and np.isnan(m3.p_flat[20, 0])


def test_extra_inputs_and_signal_file_extras_are_joined():
    bars = make_bars(30, tp_bar=None)
    sig = pl.DataFrame(
        {"ts": [T0 + timedelta(minutes=5)], "symbol": ["BTCUSDT"], "side": [1], "p_exit": [0.9]}
    )
    extra = pl.DataFrame(
        {"ts": [T0 + timedelta(minutes=6)], "symbol": ["BTCUSDT"], "adx": [31.0], "regime": [3]}
    )
    m = signals_to_market(bars, sig, interval="1m", extra=extra)
    assert m.p_exit[5, 0] == 0.9 and np.isnan(m.p_exit[6, 0])
    assert m.adx[6, 0] == 31.0 and m.regime[6, 0] == 3.0 and np.isnan(m.adx[5, 0])


def test_floor_alignment_moves_to_containing_bar_and_keeps_latest():
    bars = make_bars(30, tp_bar=None)
    sig = pl.DataFrame(
        {
            "ts": [
                T0 + timedelta(minutes=7, seconds=50),
                T0 + timedelta(minutes=7, seconds=10),
                T0 + timedelta(minutes=9, seconds=1),
            ],
            "symbol": ["BTCUSDT"] * 3,
            "side": [-1, 1, 1],
        }
    )
    with pytest.raises(SignalError) as info:
        signals_to_market(bars, sig, interval="1m", source="f.csv")
    assert (info.value.file, info.value.row, info.value.column) == ("f.csv", 1, "ts")
    m = signals_to_market(bars, sig, interval="1m", align="floor")
    assert m.p_short[7, 0] == 1.0 and m.p_long[7, 0] == 0.0  # 00:07:50 is later than 00:07:10
    assert m.p_long[9, 0] == 1.0 and np.isnan(m.p_long[8, 0]) and np.isnan(m.p_long[10, 0])


def test_signals_outside_bars_or_on_gaps_are_dropped(caplog):
    bars = make_bars(30, tp_bar=None).filter(pl.col("ts") != T0 + timedelta(minutes=10))
    sig = pl.DataFrame(
        {
            "ts": [
                T0 - timedelta(minutes=5),
                T0 + timedelta(minutes=10),
                T0 + timedelta(minutes=11),
            ],
            "symbol": ["BTCUSDT"] * 3,
            "side": [1, 1, -1],
        }
    )
    with caplog.at_level(logging.INFO, logger="hydraquant.backtest.signals"):
        m = signals_to_market(bars, sig, interval="1m")
    assert (
        np.isfinite(m.p_long).sum() == 1 and m.p_short[10, 0] == 1.0
    )  # row 10 of the grid = 00:11
    assert "missing bars" in caplog.text and "outside" in caplog.text


def test_trim_market_drops_warmup():
    m = signals_to_market(
        make_bars(30, tp_bar=None),
        pl.DataFrame({"ts": [T0], "symbol": ["BTCUSDT"], "side": [0]}),
        interval="1m",
    )
    t = trim_market(m, T0 + timedelta(minutes=14))
    assert t.shape == (16, 1) and t.atr[0, 0] == 2.0 and t.ts[0] == m.ts[14]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([-1, 0, 1, None]), min_size=30, max_size=30))
def test_side_maps_to_one_hot_probabilities(sides):
    bars = make_bars(30, tp_bar=None)
    keep = [k for k, s in enumerate(sides) if s is not None]
    sig = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=k) for k in keep],
            "symbol": ["BTCUSDT"] * len(keep),
            "side": [sides[k] for k in keep],
        },
        schema_overrides={"side": pl.Int64},
    )
    m = signals_to_market(bars, sig, interval="1m")
    probs = np.stack([m.p_long[:, 0], m.p_short[:, 0], m.p_flat[:, 0]], axis=1)
    has = np.isfinite(probs).all(axis=1)
    assert has.tolist() == [s is not None for s in sides]
    np.testing.assert_array_equal(probs[has].sum(axis=1), 1.0)
    expected = np.array([{1: 0, -1: 1, 0: 2}[sides[k]] for k in keep], dtype=np.int64)
    np.testing.assert_array_equal(np.argmax(probs[has], axis=1), expected)


# --------------------------------------------------------------------------- errors name file/row/column


def csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sig.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "row", "column", "needle"),
    [
        ("symbol,side\nA,1\n", None, "ts", "missing required column 'ts'"),
        ("ts,side\n2024-01-01,1\n", None, "symbol", "missing required column 'symbol'"),
        ("ts,symbol\n2024-01-01,A\n", None, "side", "no signal column"),
        ("ts,symbol,p_long\n2024-01-01,A,0.5\n", None, "p_short", "missing probability column"),
        (
            "ts,symbol,side\n2024-01-01T00:00,A,1\n2024-01-01T00:01,A,1\nyesterday,A,1\n",
            3,
            "ts",
            "cannot parse time 'yesterday'",
        ),
        (
            "ts,symbol,side\n1704067200000,A,1\n1704067260000000,A,1\n",
            1,
            "ts",
            "does not match the detected unit",
        ),
        (
            "ts,symbol,side\n2024-01-01T00:00,A,1\n2024-01-01T00:01,A,2\n",
            2,
            "side",
            "not one of -1, 0, +1",
        ),
        ("ts,symbol,side\n2024-01-01T00:00,A,up\n", 1, "side", "not one of -1, 0, +1"),
        (
            "ts,symbol,p_long,p_short\n2024-01-01T00:00,A,0.5,0.2\n2024-01-01T00:01,A,1.2,0.0\n",
            2,
            "p_long",
            "outside [0, 1]",
        ),
        (
            "ts,symbol,p_long,p_short\n2024-01-01T00:00,A,0.5,0.2\n2024-01-01T00:01,A,0.5,NaN\n",
            2,
            "p_short",
            "NaN probability",
        ),
        ("ts,symbol,p_long,p_short\n2024-01-01T00:00,A,0.5,\n", 1, "p_short", "NaN probability"),
        (
            "ts,symbol,side\n2024-01-01T00:00,A,1\n2024-01-01T00:01,A,1\n2024-01-01T00:00:00Z,a,-1\n",
            3,
            "ts",
            "duplicate signal",
        ),
        (
            "ts,symbol,side,p_long,p_short\n2024-01-01,A,1,0.5,0.5\n",
            None,
            "side",
            "both 'side' and probability",
        ),
        ("ts,symbol,side\n,A,1\n", 1, "ts", "missing timestamp"),
    ],
)
def test_bad_inputs_name_file_row_and_column(tmp_path, text, row, column, needle):
    path = csv(tmp_path, text)
    err = error_of(path)
    assert needle in err.message
    assert err.file == str(path) and err.row == row and err.column == column
    assert str(path) in str(err)


def test_class_columns_without_mapping_explain_the_fix(tmp_path):
    err = error_of(csv(tmp_path, "ts,symbol,p_0,p_1\n2024-01-01,A,0.4,0.6\n"))
    assert "signal_classes" in (err.hint or "") and "p_0" in err.hint
    err = error_of(
        csv(tmp_path, "ts,symbol,p_0,p_1\n2024-01-01,A,0.4,0.6\n"),
        signal_classes={"long": 1, "short": 2},
    )
    assert err.column == "p_2"


def test_unknown_symbol_when_joined_names_row(tmp_path):
    path = csv(
        tmp_path,
        "ts,symbol,side\n2024-01-01T00:05:00Z,BTCUSDT,1\n2024-01-01T00:06:00Z,DOGEUSDT,1\n",
    )
    with pytest.raises(SignalError) as info:
        signals_to_market(make_bars(), read_signals(path), interval="1m", source=str(path))
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 2, "symbol") and "DOGEUSDT" in err.message


def test_missing_file_and_unsupported_format(tmp_path):
    assert "not found" in error_of(tmp_path / "nope.csv").message
    (tmp_path / "s.json").write_text("{}")
    assert "unsupported" in error_of(tmp_path / "s.json").message


def test_backtest_config_defaults_and_strictness():
    cfg = BacktestConfig()
    assert cfg.policy == PolicyConfig() and cfg.gate.n_folds == 3 and cfg.initial_cash == 10_000.0
    cfg2 = BacktestConfig.model_validate(
        {"policy": {"entry": {"conf_threshold": 0.7}}, "initial_cash": 500}
    )
    assert cfg2.policy.entry.conf_threshold == 0.7
    with pytest.raises(ValueError, match="extra"):
        BacktestConfig.model_validate({"polcy": {}})


# --------------------------------------------------------------------------- real data

REAL_1M = "binance-spot-klines-ccxt/BTCUSDT/BTCUSDT_1m_2021-03-26_2021-04-30.csv.gz"  # has 2 exchange gaps


def test_real_bars_with_gaps_sma_signals_fill_next_open(real_data_dir, tmp_path):
    from hydraquant.backtest import market_from_frame
    from tests.conftest import real_file

    raw = pl.read_csv(real_file(REAL_1M))
    bars = raw.with_columns(
        pl.col("timestamp")
        .str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC")
        .dt.cast_time_unit("us")
        .alias("ts"),
        pl.lit("BTCUSDT").alias("symbol"),
    ).drop("timestamp")
    fast, slow = pl.col("close").rolling_mean(20), pl.col("close").rolling_mean(50)
    side = pl.when(fast > slow).then(1).otherwise(-1)
    sig = (
        bars.with_columns(side.alias("side"), slow.alias("slow"))
        .filter(pl.col("slow").is_not_null() & (pl.col("side") != pl.col("side").shift(1)))
        .select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("ts"), "symbol", "side")
    )
    sig.write_csv(tmp_path / "sma.csv")
    policy = PolicyConfig.model_validate(
        {
            "entry": {"conf_threshold": 0.5, "min_prob_diff": 0.0},
            "exit": {"stop_mode": "pct", "sl_pct": 0.01, "tp_pct": 0.02},
            "sizing": {"mode": "fraction", "fraction": 1.0},
        }
    )
    market = signals_to_market(bars, read_signals(tmp_path / "sma.csv"), interval="1m")
    assert market.shape == (bars.height, 1) and np.isfinite(market.p_long).sum() == sig.height
    r = run_backtest(market, policy)
    # independent mapping: side -> one-hot probabilities straight from the bar frame
    hot = bars.join(
        sig.with_columns(pl.col("ts").str.to_datetime(time_zone="UTC").dt.cast_time_unit("us")),
        on=["ts", "symbol"],
        how="left",
    ).with_columns(
        pl.when(pl.col("side").is_null())
        .then(None)
        .otherwise((pl.col("side") == 1).cast(pl.Float64))
        .alias("p_long"),
        pl.when(pl.col("side").is_null())
        .then(None)
        .otherwise((pl.col("side") == -1).cast(pl.Float64))
        .alias("p_short"),
    )
    ref = run_backtest(market_from_frame(hot.drop("side"), interval="1m"), policy)
    assert r.trades.height > 100 and r.trades.drop("confidence").equals(
        ref.trades.drop("confidence")
    )
    # every entry is the bar right after a signal bar (the next bar that exists, across gaps)
    grid = bars["ts"]
    sig_idx = np.searchsorted(
        grid.dt.epoch("us").to_numpy(),
        hot.filter(pl.col("side").is_not_null())["ts"].dt.epoch("us").to_numpy(),
    )
    next_open = set(grid.gather(np.minimum(sig_idx + 1, grid.len() - 1)).to_list())
    assert set(r.trades["entry_ts"].to_list()) <= next_open
    tp = r.trades.filter((pl.col("close_type") == "TP_HIT") & (pl.col("side") == "long"))
    level = tp["entry_price"].to_numpy() * 1.02
    exit_px = tp["exit_price"].to_numpy()
    assert (
        tp.height > 3 and (exit_px >= level - 1e-9).all()
    )  # at the level, or better on a gap open
    assert np.isclose(exit_px, level, rtol=1e-12).mean() > 0.9
