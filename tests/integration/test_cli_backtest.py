"""`hydraquant backtest` end to end on a simulated lake with SMA-cross signals."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import polars as pl
import pytest

from hydraquant.backtest import run_backtest
from hydraquant.backtest.signals import (
    BacktestConfig,
    load_bars,
    read_signals,
    signals_to_market,
    trim_market,
)
from hydraquant.cli.backtest_cmd import (
    backtest_config,
    parse_classes,
    parse_sweep,
    parse_values,
    rank_sweep,
)
from hydraquant.cli.main import main
from hydraquant.config import HydraConfig
from hydraquant.data.lake import Lake
from hydraquant.errors import ConfigError
from hydraquant.pipeline.bars_stage import build_bars
from hydraquant.pipeline.simulate_stage import simulate_into_lake

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("bt_lake")
    lake = Lake(root)
    simulate_into_lake(lake, symbols=2, days=2, seed=5, activity=0.05)
    build_bars(lake, SYMBOLS, "1m")
    return root


@pytest.fixture(scope="module")
def signal_files(lake_dir, tmp_path_factory):
    """20/50 SMA cross: +1 above, -1 below, written on each change (ts = bar open, epoch ms)."""
    bars = Lake(lake_dir).scan("bars", SYMBOLS, interval="1m").collect().sort(["symbol", "ts"])
    sig = (
        bars.with_columns(
            fast=pl.col("close").rolling_mean(20).over("symbol"),
            slow=pl.col("close").rolling_mean(50).over("symbol"),
        )
        .filter(pl.col("slow").is_not_null())
        .with_columns(side=pl.when(pl.col("fast") > pl.col("slow")).then(1).otherwise(-1))
        .filter(pl.col("side") != pl.col("side").shift(1).over("symbol").fill_null(0))
        .select(pl.col("ts").dt.epoch("ms"), "symbol", "side")
    )
    out = tmp_path_factory.mktemp("signals")
    sig.write_csv(out / "sma.csv")
    sig.with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC"))).write_parquet(out / "sma.parquet")
    return out / "sma.csv", out / "sma.parquet"


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_backtest_writes_results_equal_to_library_run(lake_dir, signal_files, capsys, tmp_path):
    csv_file, _ = signal_files
    out = tmp_path / "res"
    code, stdout, err = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--signals",
        str(csv_file),
        "--interval",
        "1m",
        "--out",
        str(out),
    )
    assert code == 0, err
    assert {"trades.parquet", "equity.parquet", "metrics.json"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    trades = pl.read_parquet(out / "trades.parquet")
    equity = pl.read_parquet(out / "equity.parquet")
    report = json.loads((out / "metrics.json").read_text())
    assert "buy & hold" in stdout and "close types" in stdout and "SL_HIT" in stdout

    # the same pipeline through the library gives the same trades
    sig = read_signals(csv_file)
    bars = load_bars(Lake(lake_dir), SYMBOLS, "1m", sig["ts"].min(), None, warmup_bars=64)
    market = trim_market(signals_to_market(bars, sig, interval="1m"), sig["ts"].min())
    direct = run_backtest(market, BacktestConfig().policy, BacktestConfig().costs)
    assert trades.height > 20 and trades.equals(direct.trades)
    assert equity.height == market.shape[0] == report["bars"]
    assert report["metrics"]["trades"] == direct.metrics["trades"]
    assert report["metrics"]["final_equity"] == pytest.approx(equity["equity"][-1])
    assert sum(report["close_types"].values()) == trades.height
    assert (
        report["symbols"] == SYMBOLS
        and report["config"]["policy"]["entry"]["conf_threshold"] == 0.65
    )
    # every entry is the open of the bar after a signal (decision at close, fill at next open)
    sig_ts = set(sig["ts"].to_list())
    assert all(
        t - (equity["ts"][1] - equity["ts"][0]) in sig_ts for t in trades["entry_ts"].to_list()
    )


def test_csv_and_parquet_signals_give_identical_runs(lake_dir, signal_files, capsys, tmp_path):
    results = []
    for k, f in enumerate(signal_files):
        out = tmp_path / f"r{k}"
        code, _, err = run(
            capsys,
            "--lake",
            str(lake_dir),
            "backtest",
            "--signals",
            str(f),
            "--interval",
            "1m",
            "--out",
            str(out),
        )
        assert code == 0, err
        results.append(pl.read_parquet(out / "trades.parquet"))
    assert results[0].equals(results[1])


def test_sweep_rows_in_grid_order_reproducible_across_jobs(
    lake_dir, signal_files, capsys, tmp_path
):
    frames = []
    for jobs in (1, 2):
        out = tmp_path / f"s{jobs}"
        code, stdout, err = run(
            capsys,
            "--lake",
            str(lake_dir),
            "backtest",
            "--signals",
            str(signal_files[0]),
            "--interval",
            "1m",
            "--sweep",
            "sl_atr=1:2:0.5",
            "--sweep",
            "window=0,30",
            "--jobs",
            str(jobs),
            "--out",
            str(out),
        )
        assert code == 0, err
        assert "top 6 of 6 configurations" in stdout
        frames.append(pl.read_parquet(out / "sweep.parquet"))
    a, b = frames
    assert a.height == 6 and a.equals(b)
    assert a["config"].to_list() == list(range(6))
    assert a["exit__sl_atr_mult"].to_list() == [1.0, 1.0, 1.5, 1.5, 2.0, 2.0]
    assert a["exit__max_bars_held"].to_list() == [0, 30] * 3
    assert a["dsr"].is_not_nan().all()
    ranked = rank_sweep(a)["sharpe"].to_numpy()
    assert (np.diff(ranked) <= 0).all()


def test_surface_and_gate_strict(lake_dir, signal_files, capsys, tmp_path):
    out = tmp_path / "surf"
    code, stdout, _ = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--signals",
        str(signal_files[0]),
        "--interval",
        "1m",
        "--surface",
        "sl_atr=1:2:1",
        "--window",
        "10,30,60",
        "--gate-strict",
        "--gate-folds",
        "2",
        "--gate-weeks",
        "0.1",
        "--out",
        str(out),
    )
    surface = pl.read_parquet(out / "surface.parquet")
    assert surface.shape[0] == 6 and surface["window"].to_list() == [10, 30, 60] * 2
    html = (out / "surface.html").read_text()
    assert "plotly" in html.lower() and len(html) > 100_000  # self-contained
    report = json.loads((out / "metrics.json").read_text())
    assert "walk-forward OOS folds" in stdout and len(report["gate"]["folds"]) == 2
    if report["gate"]["passed"]:
        assert code == 0 and "OOS gate: PASS" in stdout
    else:
        assert code == 3 and "OOS gate: FAIL" in stdout and report["gate"]["reasons"]


def test_gate_without_enough_data_fails_with_reason_exit_zero(lake_dir, signal_files, capsys):
    code, stdout, err = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--signals",
        str(signal_files[0]),
        "--interval",
        "1m",
        "--gate",
    )
    assert code == 0, err
    assert "OOS gate: FAIL" in stdout and "gate needs 3 x 4.0 weeks" in stdout


def test_bad_signals_exit_2_naming_file_row_column(lake_dir, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "ts,symbol,side\n2024-01-01T01:00:00Z,BTCUSDT,1\n2024-01-01T01:00:30Z,BTCUSDT,-1\n"
    )
    code, _, err = run(
        capsys, "--lake", str(lake_dir), "backtest", "--signals", str(bad), "--interval", "1m"
    )
    assert (
        code == 2
        and "row 2" in err
        and "column 'ts'" in err
        and "bad.csv" in err
        and "--align floor" in err
    )
    code, _, err = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--signals",
        str(bad),
        "--interval",
        "1m",
        "--align",
        "floor",
    )
    assert code == 0, err
    unknown = tmp_path / "unknown.csv"
    unknown.write_text(
        "ts,symbol,side\n2024-01-01T01:00:00Z,BTCUSDT,1\n2024-01-01T01:00:00Z,XRPUSDT,1\n"
    )
    code, _, err = run(
        capsys, "--lake", str(lake_dir), "backtest", "--signals", str(unknown), "--interval", "1m"
    )
    assert code == 2 and "XRPUSDT" in err and "row 2" in err and "column 'symbol'" in err


def test_option_errors_are_clear(lake_dir, signal_files, capsys):
    L = ["--lake", str(lake_dir), "backtest", "--interval", "1m"]
    code, _, err = run(capsys, *L)
    assert code == 2 and "exactly one of --signals" in err
    code, _, err = run(capsys, *L, "--signals", str(signal_files[0]), "--sweep", "nope=1,2")
    assert code == 2 and "unknown sweep parameter 'nope'" in err
    code, _, err = run(capsys, *L, "--model", "no_such_model")
    assert code != 0 and "internal error" not in err and "Traceback" not in err


def test_parse_helpers():
    assert parse_values("0.55:0.85:0.05") == [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85]
    assert parse_values("30:120:30") == [30, 60, 90, 120]
    assert parse_values("1.5, 2,true") == [1.5, 2, True]
    assert parse_sweep("conf=0.6,0.7") == ("entry.conf_threshold", [0.6, 0.7])
    assert parse_sweep("exit.trailing=true,false") == ("exit.trailing", [True, False])
    assert parse_classes("long=2, short=0,flat=1") == {"long": "2", "short": "0", "flat": "1"}
    for bad in ("1:0:0.1", "0:1:0", "0:1", "a:b:c", ""):
        with pytest.raises(ConfigError):
            parse_values(bad)
    with pytest.raises(ConfigError):
        parse_sweep("conf")


def test_config_defaults_until_hydraconfig_has_a_backtest_section():
    app = SimpleNamespace(config=HydraConfig())
    assert backtest_config(app) == BacktestConfig()
    custom = BacktestConfig.model_validate({"initial_cash": 123.0})
    assert (
        backtest_config(SimpleNamespace(config=SimpleNamespace(backtest=custom))).initial_cash
        == 123.0
    )


def test_model_option_uses_predictor_and_manifest_classes(
    lake_dir, signal_files, capsys, tmp_path, monkeypatch
):
    """--model wiring: Predictor.load + predict_lake, the manifest's signal_classes, warm-up NaN rows dropped."""
    import hydraquant.models.predictor as predictor_mod

    sig = read_signals(signal_files[0])
    side = sig["side"].to_numpy()
    preds = pl.DataFrame(
        {
            "ts": sig["ts"],
            "symbol": sig["symbol"],
            "p_-1": np.where(side < 0, 0.9, 0.05),
            "p_0": 0.05,
            "p_1": np.where(side > 0, 0.9, 0.05),
        }
    )
    warmup = preds.head(2).with_columns(
        pl.col("ts").dt.offset_by("-1h"), pl.lit(float("nan")).alias("p_1")
    )
    calls = {}

    class FakePredictor:
        interval = "1m"
        manifest: ClassVar[dict] = {
            "signal_classes": {"long": 1, "short": -1, "flat": 0},
            "data": {"symbols": SYMBOLS},
        }

        @classmethod
        def load(cls, registry, ref):
            calls["ref"] = ref
            return cls()

    def fake_predict_lake(lake, predictor, symbols, start=None, end=None, **kw):
        calls["symbols"] = list(symbols)
        return pl.concat([warmup, preds])

    monkeypatch.setattr(predictor_mod, "Predictor", FakePredictor)
    monkeypatch.setattr(predictor_mod, "predict_lake", fake_predict_lake)
    out_m, out_s = tmp_path / "m", tmp_path / "s"
    code, _, err = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--model",
        "sma@v0001",
        "--interval",
        "1m",
        "--start",
        "2024-01-01T00:49",
        "--out",
        str(out_m),
    )
    assert code == 0, err
    assert calls == {"ref": "sma@v0001", "symbols": SYMBOLS}
    code, _, err = run(
        capsys,
        "--lake",
        str(lake_dir),
        "backtest",
        "--signals",
        str(signal_files[0]),
        "--interval",
        "1m",
        "--start",
        "2024-01-01T00:49",
        "--out",
        str(out_s),
    )
    assert code == 0, err
    # 0.9 vs 0.05 clears the default conf 0.65 / margin 0.08 exactly where side did: same trades
    model_trades = pl.read_parquet(out_m / "trades.parquet")
    assert (model_trades["confidence"] == 0.9).all()
    assert model_trades.drop("confidence").equals(
        pl.read_parquet(out_s / "trades.parquet").drop("confidence")
    )
