"""simulate -> bars -> features -> label -> dataset through the CLI, plus the quickstart."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.cli.main import main
from hydraquant.data.lake import Lake
from hydraquant.features.registry import build_features


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    code = main(["--quiet", "--lake", str(lake), "simulate", "--symbols", "2", "--days", "2", "--seed", "5",
                 "--activity", "0.05"])
    assert code == 0
    return lake


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_simulate_writes_trades_funding_oi(sim_lake):
    lake = Lake(sim_lake)
    kinds = {(t.kind, t.symbol) for t in lake.tables(exchange="sim")}
    assert {("aggTrades", "BTCUSDT"), ("aggTrades", "ETHUSDT"), ("funding", "BTCUSDT"),
            ("open_interest", "ETHUSDT")} <= kinds
    funding = lake.scan("funding", ["BTCUSDT"], exchange="sim").collect()
    assert funding.height == 6 and set(funding["ts"].dt.hour().to_list()) == {0, 8, 16}


def test_bars_features_labels_dataset(sim_lake, capsys, tmp_path):
    L = ["--quiet", "--lake", str(sim_lake)]
    assert run(capsys, *L, "bars", "--symbols", "BTCUSDT,ETHUSDT", "--interval", "1m")[0] == 0
    assert run(capsys, *L, "bars", "--symbols", "BTCUSDT", "--interval", "250ms", "--empty", "ffill")[0] == 0
    lake = Lake(sim_lake)
    bars = lake.scan("bars", ["BTCUSDT"], interval="1m").collect()
    assert bars.height == 2 * 1440
    ffill = lake.scan("bars", ["BTCUSDT"], interval="250ms").collect()
    span = (ffill["ts"].max() - ffill["ts"].min()) // timedelta(milliseconds=250) + 1
    assert ffill.height == span  # every 250 ms interval present, across the day boundary too

    # resample 1m bars' sibling: klines resampling needs klines; bars -> features
    code, out, err = run(capsys, *L, "features", "--set", "hydra_v3", "--symbols", "BTCUSDT,ETHUSDT",
                         "--interval", "1m", "--start", "2024-01-01T12:00", "--end", "2024-01-02")
    assert code == 0, err
    table = lake.tables("features", interval="1m", symbols=["BTCUSDT"])[0]
    names = json.loads(lake.metadata(table)["hydraquant.features"])
    assert len(names) == 28 and names[0] == "MOI_250ms"
    feats = lake.scan("features", ["BTCUSDT"], interval="1m").collect()
    assert feats.columns == ["ts", "symbol", *names]
    assert feats["ts"].min().hour == 12  # warm-up loaded before start, rows from start only
    # the stored values equal a direct computation over the full history (warm-up was honoured)
    direct = build_features(bars, "hydra_v3", interval="1m").filter(pl.col("ts") >= feats["ts"].min())
    direct = direct.filter(pl.col("ts") <= feats["ts"].max())
    for name in ("vol_5m", "MOI_1s", "dist_poc_atr", "trade_intensity_z"):
        np.testing.assert_allclose(feats[name].to_numpy(), direct[name].to_numpy(), rtol=1e-9, atol=1e-12,
                                   equal_nan=True, err_msg=name)

    code, out, err = run(capsys, *L, "label", "--spec", "triple_barrier:tp=0.003,sl=0.0015,horizon=20",
                         "--symbols", "BTCUSDT,ETHUSDT", "--interval", "1m")
    assert code == 0, err
    labels = lake.scan("labels.triple_barrier", ["BTCUSDT"], interval="1m").collect()
    assert {"label", "t_end"} <= set(labels.columns)
    known = labels.filter(pl.col("label").is_not_null())
    assert (known["t_end"] > known["ts"]).all()
    assert labels.tail(20)["label"].null_count() == 20  # horizon runs past the data

    out_file = tmp_path / "ds.parquet"
    code, out, err = run(capsys, *L, "dataset", "--label", "triple_barrier", "--symbols", "BTCUSDT,ETHUSDT",
                         "--interval", "1m", "--weights", "uniqueness,balanced", "--out", str(out_file))
    assert code == 0, err
    ds = pl.read_parquet(out_file)
    assert ds.columns[:2] == ["ts", "symbol"] and ds.columns[-3:] == ["label", "t_end", "weight"]
    assert ds["label"].null_count() == 0 and ds.height > 2000
    assert abs(ds["weight"].mean() - 1.0) < 1e-9 and (ds["weight"] > 0).all()
    # no label column leaks into the features
    assert not set(ds.columns[2:-3]) & {"label", "t_end", "ret_long", "ret_short"}


def test_research_errors_are_clear(sim_lake, capsys):
    L = ["--lake", str(sim_lake)]
    code, _, err = run(capsys, *L, "label", "--spec", "nonsense", "--symbols", "BTCUSDT", "--interval", "1m")
    assert code == 2 and "unknown label spec" in err
    code, _, err = run(capsys, *L, "features", "--set", "funding_z", "--symbols", "BTCUSDT", "--interval", "5m")
    assert code == 2 and "bars or klines" in err
    code, _, err = run(capsys, *L, "features", "--set", "book_imbalance", "--symbols", "BTCUSDT", "--interval", "1m")
    assert code == 2 and "book" in err
    code, out, _ = run(capsys, *L, "features", "--list")
    assert code == 0 and "MOI_1s" in out and "set hydra_v3" in out
    code, out, _ = run(capsys, *L, "label", "--list")
    assert code == 0 and "triple_barrier" in out


@pytest.mark.slow
def test_quickstart_runs_offline(tmp_path, capsys):
    fast = ["--set", "data.simulate.days=1", "--set", "cv.n_splits=2", "--set", "holdout.fraction=0.3",
            "--set", "models.0.learners.0.params.n_estimators=40"]
    code, out, err = run(capsys, "--lake", str(tmp_path / "qs"), "--set", f"registry.root={tmp_path / 'models'}",
                         "quickstart", *fast, "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "direction_30s" in out and "holdout" in out and "report:" in out and "done in" in out
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / "metrics.json").is_file()
    lake = Lake(tmp_path / "qs")
    assert lake.scan("bars", ["BTCUSDT"], interval="5s").collect().height > 10_000
