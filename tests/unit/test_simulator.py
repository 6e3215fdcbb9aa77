"""Market simulator: schema, determinism, stylised facts, null and planted edge, archive files."""

from __future__ import annotations

import hashlib
import io
import math
import time
import zipfile
from datetime import date

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hydraquant.data import simulator as sim
from hydraquant.data import simulator_nb as nb
from hydraquant.data.schema import SCHEMAS
from hydraquant.errors import HydraError
from tests.conftest import real_file

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def market() -> dict[str, pl.DataFrame]:
    """Two symbols, three days, low activity: ~0.5 M trades, enough for every statistic."""
    return sim.simulate(sim.SimConfig(symbols=2, days=3, activity=0.05, seed=7))


def _trades(frames: dict[str, pl.DataFrame], symbol: str) -> pl.DataFrame:
    return frames["aggTrades"].filter(pl.col("symbol") == symbol).drop("symbol")


def _minute_bars(trades: pl.DataFrame) -> pl.DataFrame:
    """1-min close and signed volume on a complete minute grid (empty minutes carry the close)."""
    signed = pl.when(pl.col("is_buyer_maker")).then(-pl.col("qty")).otherwise(pl.col("qty"))
    bars = (
        trades.group_by_dynamic("ts", every="1m")
        .agg(
            pl.col("price").last().alias("close"), signed.sum().alias("signed"), pl.len().alias("n")
        )
        .upsample("ts", every="1m")
        .with_columns(
            pl.col("close").forward_fill(),
            pl.col("signed").fill_null(0.0),
            pl.col("n").fill_null(0),
        )
    )
    return bars.with_columns(pl.col("close").log().diff().alias("ret")).drop_nulls("ret")


def _autocorr(x: np.ndarray, lag: int) -> float:
    return float(np.corrcoef(x[:-lag], x[lag:])[0, 1])


# ----------------------------------------------------------------------------- config & layout


def test_config_refuses_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        sim.SimConfig(symbolz=3)
    with pytest.raises(ValidationError):
        sim.SimConfig(activity=0)
    with pytest.raises(ValidationError):
        sim.SimConfig(planted_edge=2.0)
    cfg = sim.SimConfig()
    assert (cfg.symbols, cfg.days, cfg.seed, cfg.start, cfg.planted_edge) == (
        3,
        1,
        0,
        date(2024, 1, 1),
        0.0,
    )
    with pytest.raises(ValidationError):
        cfg.seed = 3  # frozen


def test_symbol_names_and_levels() -> None:
    specs = sim.symbol_specs(10)
    assert [s.name for s in specs] == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
        "BNBUSDT",
        "XRPUSDT",
        "DOGEUSDT",
        "ADAUSDT",
        "LINKUSDT",
        "SIM00USDT",
        "SIM01USDT",
    ]
    assert specs[0].trades_per_day == max(s.trades_per_day for s in specs)
    for s in specs:  # ticks fine enough that the bid-ask bounce is negligible
        assert s.tick / s.price <= 2e-5
        assert s.decimals == round(-math.log10(s.tick))


def test_chunk_order_and_kinds() -> None:
    chunks = list(sim.iter_simulation(sim.SimConfig(symbols=2, days=2, activity=0.002)))
    assert [(c.day.day, c.symbol, c.kind) for c in chunks] == [
        (d, s, k)
        for d in (1, 2)
        for s in ("BTCUSDT", "ETHUSDT")
        for k in ("aggTrades", "funding", "open_interest")
    ]


def test_trades_schema_ids_grid_and_seams() -> None:
    cfg = sim.SimConfig(symbols=2, days=2, activity=0.01, seed=3)
    frames = sim.simulate(cfg)
    spec = {s.name: s for s in sim.symbol_specs(2)}
    for symbol in ("BTCUSDT", "ETHUSDT"):
        t = _trades(frames, symbol)
        assert t.schema == pl.Schema(SCHEMAS["aggTrades"].columns)
        assert t.null_count().sum_horizontal().item() == 0
        assert t.get_column("ts").is_sorted()
        ids = t.get_column("trade_id").to_numpy()
        assert np.all(np.diff(ids) == 1)  # contiguous across the day boundary too
        first, last = (
            t.get_column("first_trade_id").to_numpy(),
            t.get_column("last_trade_id").to_numpy(),
        )
        assert np.all(last >= first) and np.all(first[1:] == last[:-1] + 1)
        px, q = t.get_column("price").to_numpy(), t.get_column("qty").to_numpy()
        tick, lot = spec[symbol].tick, spec[symbol].lot
        assert px.min() > 0 and q.min() >= lot
        np.testing.assert_allclose(px / tick, np.round(px / tick), atol=1e-6)
        np.testing.assert_allclose(q / lot, np.round(q / lot), atol=1e-6)
        np.testing.assert_allclose(t.get_column("quote_qty").to_numpy(), px * q, rtol=1e-9)
        assert 0.47 < t.get_column("is_buyer_maker").mean() < 0.53
        # days join without a jump: the first print of day 2 is near the last of day 1
        day = t.get_column("ts").dt.day().to_numpy()
        k = int(np.argmax(day == 2))
        assert abs(math.log(px[k] / px[k - 1])) < 0.002


def test_trade_counts_follow_activity() -> None:
    frames = sim.simulate(sim.SimConfig(symbols=3, days=1, activity=0.02, seed=5))
    n = frames["aggTrades"].group_by("symbol").len().sort("symbol")
    counts = dict(zip(n["symbol"], n["len"], strict=True))
    # BTC-like: 2 M/day at activity 1 -> ~40 k at 0.02 (regimes make it vary)
    assert 15_000 < counts["BTCUSDT"] < 90_000
    assert counts["BTCUSDT"] > counts["ETHUSDT"] > counts["SOLUSDT"]


def test_deterministic_for_a_seed() -> None:
    cfg = sim.SimConfig(symbols=2, days=1, activity=0.01, seed=11, planted_edge=0.2)
    a = sim.simulate(cfg)
    b = sim.simulate(cfg)
    c = sim.simulate(cfg.model_copy(update={"seed": 12}))
    for kind in ("aggTrades", "funding", "open_interest"):
        assert a[kind].equals(b[kind])
    assert not a["aggTrades"].equals(c["aggTrades"])
    assert not a["funding"].equals(c["funding"])


# ----------------------------------------------------------------------------- stylised facts


def test_regime_chain_has_documented_durations() -> None:
    n = 40 * sim.SECONDS_PER_DAY
    reg, ou, z = nb.market_day(
        123,
        n,
        1,
        0.0,
        sim._P_LEAVE,
        sim._REGIME_NEXT,
        True,
        math.exp(-1 / sim._OU_TAU_S),
        sim._OU_SD,
    )
    change = np.flatnonzero(np.diff(reg) != 0)
    spells = np.diff(change)
    states = reg[change[1:]]
    for s, expected in enumerate(sim._REGIME_DURATION_S):
        mean = spells[states == s].mean()
        assert 0.6 * expected < mean < 1.5 * expected, (s, mean, expected)
    share = np.bincount(reg, minlength=3) / n
    np.testing.assert_allclose(share, sim._PI, atol=0.12)
    assert abs(z.std() - 1) < 0.01 and abs(ou.std() - sim._OU_SD) < 0.12


def test_volatility_clustering(market: dict[str, pl.DataFrame]) -> None:
    r = np.abs(_minute_bars(_trades(market, "BTCUSDT")).get_column("ret").to_numpy())
    band = 3 / math.sqrt(len(r))
    acf = np.array([_autocorr(r, lag) for lag in range(1, 61)])
    assert np.all(acf[:30] > band), acf[:30]
    assert acf[:10].mean() > 0.08 and acf.mean() > 0.05
    # the signed returns themselves are not autocorrelated (martingale)
    s = _minute_bars(_trades(market, "BTCUSDT")).get_column("ret").to_numpy()
    assert abs(_autocorr(s, 1)) < band


def test_heavy_tailed_trade_sizes(market: dict[str, pl.DataFrame]) -> None:
    q = _trades(market, "BTCUSDT").get_column("qty").to_numpy()
    z = (q - q.mean()) / q.std()
    assert float(np.mean(z**4)) > 30
    assert q.max() / np.median(q) > 500


def test_intraday_seasonality_in_hourly_counts() -> None:
    frames = sim.simulate(
        sim.SimConfig(symbols=1, days=4, activity=0.02, seed=2, regime_switching=False)
    )
    hourly = frames["aggTrades"].group_by(pl.col("ts").dt.hour().alias("h")).len().sort("h")
    counts = hourly.get_column("len").to_numpy().astype(float)
    profile = sim.intraday_profile(np.arange(24) * 3600 + 1800)
    assert np.corrcoef(counts, profile)[0, 1] > 0.85
    assert counts[14] > 1.8 * counts[4] and counts[8] > 1.2 * counts[4]
    np.testing.assert_allclose(sim.intraday_profile(np.arange(86_400)).mean(), 1.0, rtol=1e-9)


def test_arrivals_cluster_beyond_seasonality() -> None:
    """Self-excitation shows as short-lag count autocorrelation in excess of the slow
    (seasonal / log-vol) level that a plain Poisson stream with the same rate path has."""

    def excess_acf(branching: float) -> float:
        cfg = sim.SimConfig(
            symbols=1, days=1, activity=0.05, seed=4, branching=branching, regime_switching=False
        )
        t = sim.simulate(cfg)["aggTrades"].get_column("ts").cast(pl.Int64).to_numpy()
        counts = np.bincount(t // 1_000_000 - t[0] // 1_000_000).astype(float)
        return _autocorr(counts, 1) - _autocorr(counts, 60)

    assert excess_acf(0.5) > 0.07
    assert abs(excess_acf(0.0)) < 0.03


def test_order_flow_moves_prices_now_but_predicts_nothing(market: dict[str, pl.DataFrame]) -> None:
    bars = _minute_bars(_trades(market, "BTCUSDT"))
    r, v = bars.get_column("ret").to_numpy(), bars.get_column("signed").to_numpy()
    band = 3 / math.sqrt(len(r))
    assert np.corrcoef(r, v)[0, 1] > 0.3
    assert abs(np.corrcoef(r[1:], v[:-1])[0, 1]) < band


def test_cross_symbol_correlation(market: dict[str, pl.DataFrame]) -> None:
    a = _minute_bars(_trades(market, "BTCUSDT")).select("ts", "ret")
    b = _minute_bars(_trades(market, "ETHUSDT")).select("ts", pl.col("ret").alias("ret_b"))
    j = a.join(b, on="ts")
    c = np.corrcoef(j["ret"].to_numpy(), j["ret_b"].to_numpy())[0, 1]
    assert 0.45 < c < 0.8


def test_funding_schedule_and_drift_link() -> None:
    frames = sim.simulate(sim.SimConfig(symbols=1, days=60, activity=0.001, seed=9))
    f = frames["funding"]
    assert f.height == 180
    assert set(f.get_column("ts").dt.hour().unique().to_list()) == {0, 8, 16}
    assert (f.get_column("ts").dt.minute() == 0).all()
    rate = f.get_column("funding_rate").to_numpy()
    assert 0 < np.median(rate) < 3e-4 and np.abs(rate).max() <= 3e-3
    assert np.all(f.get_column("mark_price").to_numpy() > 0)
    assert (f.get_column("funding_interval_hours") == 8.0).all()
    mark = f.get_column("mark_price").to_numpy()
    drift = np.diff(np.log(mark))  # return over the 8 h before each settlement
    assert np.corrcoef(rate[1:], drift)[0, 1] > 0.3  # rises after the price rose
    assert _autocorr(rate, 1) > 0.3  # mean-reverting, not white noise


def test_open_interest_grid_and_co_movement(market: dict[str, pl.DataFrame]) -> None:
    oi = market["open_interest"].filter(pl.col("symbol") == "BTCUSDT")
    assert oi.height == 3 * 288
    assert oi.get_column("ts").diff().drop_nulls().dt.total_minutes().unique().to_list() == [5]
    assert oi.schema == pl.Schema(
        {
            "ts": pl.Datetime("us", "UTC"),
            "symbol": pl.String,
            **{k: v for k, v in SCHEMAS["open_interest"].columns.items() if k != "ts"},
        }
    )
    assert (oi.get_column("open_interest") > 0).all()
    # the change into ts reflects the 5 minutes before ts
    vol = (
        _trades(market, "BTCUSDT")
        .group_by_dynamic("ts", every="5m", label="right", closed="left")
        .agg(pl.col("qty").sum().alias("vol"))
    )
    j = oi.with_columns(pl.col("open_interest").log().diff().alias("d")).join(vol, on="ts")
    assert (
        np.corrcoef(j["d"].drop_nulls().to_numpy(), j.drop_nulls("d")["vol"].to_numpy())[0, 1] > 0.4
    )


# ----------------------------------------------------------------------------- planted edge


def test_planted_signal_hand_computed() -> None:
    base = 1_704_067_200_000_000
    trades = pl.DataFrame(
        {
            "ts": pl.Series([base + 1_000_000, base + 6_000_000, base + 9_000_000]).cast(
                pl.Datetime("us", "UTC")
            ),
            "qty": [4.0, 1.0, 9.0],
            "is_buyer_maker": [False, True, False],
        }
    )
    at = np.array([base + 500_000, base + 9_000_000, base + 10_000_000, base + 11_000_000])
    s = sim.planted_signal(trades, at, horizon_s=10.0)
    assert math.isnan(s[0])
    np.testing.assert_allclose(
        s[1:], [-0.3 / math.sqrt(0.65), 2.3 / math.sqrt(7.69), 1.9 / math.sqrt(6.01)], rtol=1e-12
    )
    with pytest.raises(HydraError):
        sim.planted_signal(trades, at[::-1], horizon_s=10.0)


def test_gaussian_auc_closed_form() -> None:
    assert sim.gaussian_auc(0.0) == 0.5
    rho = 1 / math.sqrt(3)
    assert sim.gaussian_auc(1.0) == pytest.approx(0.5 + 2 / math.pi * math.asin(rho / math.sqrt(2)))
    assert sim.gaussian_auc(0.2) == pytest.approx(0.58686, abs=1e-4)
    assert sim.gaussian_auc(-0.2) == pytest.approx(1 - sim.gaussian_auc(0.2))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.booleans()), min_size=2, max_size=40))
def test_roc_auc_matches_pairwise_definition(pairs: list[tuple[int, bool]]) -> None:
    score = np.array([p[0] for p in pairs], dtype=float)
    label = np.array([p[1] for p in pairs])
    if label.all() or not label.any():
        with pytest.raises(HydraError):
            sim.roc_auc(score, label)
        return
    pos, neg = score[label], score[~label]
    brute = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert sim.roc_auc(score, label) == pytest.approx(brute)
    assert sim.roc_auc(-score, label) == pytest.approx(1 - brute)


def test_null_market_is_unpredictable(market: dict[str, pl.DataFrame]) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT"):
        of = sim.oracle_frame(_trades(market, symbol), horizon_s=30.0)
        assert of.height > 200_000
        # signal is unit-variance whatever the rate, and carries no information
        assert 0.85 < of.get_column("signal").std() < 1.15
        assert abs(sim.achievable_auc(_trades(market, symbol), horizon_s=30.0) - 0.5) < 0.02


@pytest.mark.parametrize("edge", [0.1, 0.3])
def test_planted_edge_matches_documented_auc(edge: float) -> None:
    cfg = sim.SimConfig(symbols=1, days=2, activity=0.2, seed=21, planted_edge=edge)
    auc = sim.achievable_auc(sim.simulate(cfg)["aggTrades"].drop("symbol"), horizon_s=30.0)
    # measured sits ~0.005-0.015 below the Gaussian value (see docs/simulator.md)
    assert -0.025 < auc - sim.gaussian_auc(edge) < 0.01, (auc, sim.gaussian_auc(edge))


def test_planted_edge_needs_its_own_horizon() -> None:
    """A 30 s edge is invisible to a signal with the wrong sign; stronger edge, higher AUC."""
    trades = sim.simulate(
        sim.SimConfig(symbols=1, days=1, activity=0.2, seed=5, planted_edge=0.25)
    )["aggTrades"].drop("symbol")
    of = sim.oracle_frame(trades, horizon_s=30.0)
    label = of.get_column("ret").to_numpy() > 0
    auc = sim.roc_auc(of.get_column("signal").to_numpy(), label)
    assert auc > 0.57
    assert sim.roc_auc(-of.get_column("signal").to_numpy(), label) == pytest.approx(
        1 - auc, abs=0.01
    )


# ----------------------------------------------------------------------------- archive files


def test_write_archive_zip_round_trip(tmp_path) -> None:
    trades = sim.simulate(sim.SimConfig(symbols=1, activity=0.001))["aggTrades"].drop("symbol")
    day = date(2024, 1, 1)
    rel = sim.archive_relpath("BTCUSDT", day)
    assert rel == "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip"
    path = sim.write_archive_zip(trades, tmp_path / rel, symbol="BTCUSDT", day=day)
    digest, name = (tmp_path / (rel + ".CHECKSUM")).read_text().split()
    assert name == path.name and digest == hashlib.sha256(path.read_bytes()).hexdigest()
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["BTCUSDT-aggTrades-2024-01-01.csv"]
        raw = zf.read(zf.namelist()[0])
    lines = raw.decode().splitlines()
    assert (
        lines[0]
        == "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker"
    )
    assert lines[1].split(",")[-1] in ("true", "false")
    back = pl.read_csv(io.BytesIO(raw))
    assert back.height == trades.height
    np.testing.assert_array_equal(
        back["transact_time"].to_numpy(), trades["ts"].cast(pl.Int64).to_numpy() // 1000
    )
    np.testing.assert_array_equal(back["price"].to_numpy(), trades["price"].to_numpy())
    np.testing.assert_array_equal(
        back["is_buyer_maker"].to_numpy(), trades["is_buyer_maker"].to_numpy()
    )
    # identical bytes on rewrite (deterministic zip, usable as a fixture)
    again = sim.write_archive_zip(trades, tmp_path / "again.zip", symbol="BTCUSDT", day=day)
    assert again.read_bytes() == path.read_bytes()


def test_write_archive_zip_spot_flavour(tmp_path) -> None:
    trades = sim.simulate(sim.SimConfig(symbols=1, activity=0.0005, start=date(2025, 1, 2)))[
        "aggTrades"
    ].drop("symbol")
    path = sim.write_archive_zip(
        trades, tmp_path / "s.zip", symbol="BTCUSDT", day=date(2025, 1, 2), market="spot"
    )
    with zipfile.ZipFile(path) as zf:
        first = zf.read(zf.namelist()[0]).decode().splitlines()[0].split(",")
    assert len(first) == 8 and first[6] in ("True", "False") and first[7] == "True"
    assert int(first[5]) == trades["ts"].cast(pl.Int64)[0]  # microseconds from 2025
    with pytest.raises(HydraError):
        sim.write_archive_zip(
            trades, tmp_path / "x.zip", symbol="X", day=date(2025, 1, 2), market="eu"
        )


@pytest.mark.realdata
def test_archive_format_matches_real_binance_file(real_data_dir, tmp_path) -> None:
    real = real_file(
        "binance-vision/data/futures/cm/monthly/aggTrades/BTCUSD_260327/"
        "BTCUSD_260327-aggTrades-2025-09.zip"
    )
    with zipfile.ZipFile(real) as zf:
        real_lines = zf.read(zf.namelist()[0]).decode().splitlines()[:2]
    trades = sim.simulate(sim.SimConfig(symbols=1, activity=0.0005))["aggTrades"].drop("symbol")
    ours = sim.write_archive_zip(trades, tmp_path / "x.zip", symbol="BTCUSDT", day=date(2024, 1, 1))
    with zipfile.ZipFile(ours) as zf:
        our_lines = zf.read(zf.namelist()[0]).decode().splitlines()[:2]
    assert our_lines[0] == real_lines[0]
    real_row, our_row = real_lines[1].split(","), our_lines[1].split(",")
    assert len(real_row) == len(our_row) == 7
    assert len(real_row[5]) == len(our_row[5]) == 13  # millisecond epoch
    assert real_row[6] in ("true", "false") and our_row[6] in ("true", "false")


# ----------------------------------------------------------------------------- performance


@pytest.mark.slow
def test_full_btc_day_count_and_speed() -> None:
    list(sim.iter_simulation(sim.SimConfig(symbols=1, activity=0.001)))  # compile / load cache
    t0 = time.perf_counter()
    chunk = next(sim.iter_simulation(sim.SimConfig(symbols=1, days=1, seed=1)))
    elapsed = time.perf_counter() - t0
    assert chunk.kind == "aggTrades"
    assert 1_000_000 <= chunk.frame.height <= 3_000_000
    assert elapsed < 10.0
