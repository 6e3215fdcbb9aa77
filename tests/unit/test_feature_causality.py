"""V4: every registered feature is causal — on real data, at random cut points.

One parametrised test over ``registry()`` (features added by anyone are
covered automatically) plus leak traps proving the checker catches the
classic leaks (next-bar return, full-sample z-score, centred window).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest

from hydraquant.features.causality import check_causality, check_features
from hydraquant.features.inputs import prepare_bars
from hydraquant.features.registry import FeatureContext, available_inputs, feature, registry
from tests.unit import feature_data as fd

N_KLINES = 4000
SEED = 20240808
registry_mod = importlib.import_module(
    "hydraquant.features.registry"
)  # the package re-exports registry()
SYMBOL_FEATURES = {"ohlcv", "orderflow", "trade_count"}


def _cuts(n: int, k: int = 3, seed: int = SEED) -> list[int]:
    """Random cut points in the second half, where every window is warm."""
    rng = np.random.default_rng(seed)
    return sorted(int(c) for c in rng.integers(n // 2, n - 1, size=k))


def _synthetic_side(ts: pl.Series) -> dict[str, pl.DataFrame]:
    """Plausible open interest, book and liquidation tables over the bars' span (seeded)."""
    rng = np.random.default_rng(SEED)
    start, end = ts.min(), ts.max()
    oi_ts = pl.datetime_range(start, end, "5m", eager=True, time_zone="UTC")
    oi = 1e7 * np.exp(np.cumsum(rng.normal(0, 0.002, oi_ts.len())))
    open_interest = pl.DataFrame(
        {
            "ts": oi_ts,
            "open_interest": oi,
            "open_interest_value": oi * 4.0,
            "toptrader_long_short_ratio": rng.uniform(0.8, 1.5, oi_ts.len()),
            "toptrader_position_long_short_ratio": rng.uniform(0.8, 1.5, oi_ts.len()),
            "long_short_ratio": rng.uniform(0.8, 1.5, oi_ts.len()),
            "taker_buy_sell_ratio": rng.uniform(0.7, 1.3, oi_ts.len()),
        }
    )
    book_ts = pl.datetime_range(start, end, "20s", eager=True, time_zone="UTC")
    mid = 4.0 * np.exp(np.cumsum(rng.normal(0, 5e-4, book_ts.len())))
    book = pl.DataFrame(
        {
            "ts": book_ts,
            "update_id": np.arange(book_ts.len(), dtype=np.int64),
            "bid_price": mid - 0.001,
            "bid_qty": rng.exponential(500.0, book_ts.len()),
            "ask_price": mid + 0.001,
            "ask_qty": rng.exponential(500.0, book_ts.len()),
        }
    )
    n_liq = 600
    offsets = np.sort(rng.uniform(0, (end - start).total_seconds(), n_liq))
    liq = pl.DataFrame(
        {
            "ts": [start + np.timedelta64(int(o * 1e6), "us").item() for o in offsets],
            "side": rng.choice(["long", "short"], n_liq),
            "price": rng.uniform(3.5, 4.5, n_liq),
            "qty": rng.exponential(1000.0, n_liq),
        }
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        (pl.col("price") * pl.col("qty")).alias("notional"),
    )
    try:
        from hydraquant.features.derivatives import prepare_liquidations

        liq = prepare_liquidations(liq)
    except ImportError:
        pass
    return {"open_interest": open_interest, "book": book, "liquidations": liq}


@pytest.fixture(scope="module")
def klines(real_data_dir: object) -> pl.DataFrame:
    return fd.futures_klines(N_KLINES)


@pytest.fixture(scope="module")
def side(klines: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Real BTCUSDT funding over the klines' dates, synthetic OI / book / liquidations."""
    ts = klines.get_column("ts")
    real_funding = fd.funding().filter(
        (pl.col("ts") >= ts.min() - pl.duration(days=3)) & (pl.col("ts") <= ts.max())
    )
    return {"funding": real_funding, **_synthetic_side(ts)}


@pytest.fixture(scope="module")
def trade_bars(real_data_dir: object) -> pl.DataFrame:
    return fd.trade_bars("250ms")


def _panel(frame: pl.DataFrame) -> pl.DataFrame:
    """Two symbols on one clock: the data and a noisy copy (panel features rank across them)."""
    rng = np.random.default_rng(SEED)
    other = frame.with_columns(
        (pl.col(c) * pl.Series(rng.uniform(0.98, 1.02, frame.height))).alias(c)
        for c in ("open", "high", "low", "close")
    ).with_columns(pl.col("volume") * 1.7, pl.col("taker_buy_volume") * 1.7)
    return pl.concat(
        [
            frame.with_columns(pl.lit("A").alias("symbol")),
            other.with_columns(pl.lit("B").alias("symbol")),
        ]
    )


def _names() -> Iterator[str]:
    yield from sorted(registry())


@pytest.mark.parametrize("name", list(_names()))
def test_feature_is_causal(
    name: str, klines: pl.DataFrame, side: dict[str, pl.DataFrame], trade_bars: pl.DataFrame
) -> None:
    spec = registry()[name]
    deps = [registry()[d] for d in spec.depends_on] if spec.scope == "panel" else [spec]
    needed = set().union(*(set(d.inputs) for d in deps))
    have = available_inputs(prepare_bars(klines), side)
    if not needed <= have:
        pytest.skip(f"{name} needs {sorted(needed - have)}, absent from the causality test data")
    frame = _panel(klines) if spec.scope == "panel" else klines
    used_side = {k: v for k, v in side.items() if k in needed}
    problems = check_causality(spec, frame, "1m", used_side, _cuts(N_KLINES))
    assert problems == [], "\n".join(problems)
    if (
        spec.scope == "symbol"
        and needed <= SYMBOL_FEATURES
        and spec.group in ("orderflow", "absorption")
    ):
        # order flow on real 250 ms trade bars as well (sub-second windows are real there)
        problems = check_causality(spec, trade_bars, "250ms", {}, _cuts(trade_bars.height))
        assert problems == [], "\n".join(problems)


# --------------------------------------------------------------------------- leak traps


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A temporary copy of the registry, so trap features never leak into other tests."""
    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod.registry()))


def _small(klines: pl.DataFrame) -> pl.DataFrame:
    return klines.head(600)


def test_leak_trap_next_bar_return_is_detected(
    scratch_registry: None, klines: pl.DataFrame
) -> None:
    @feature("trap_next_return", group="trap")
    def next_return(ctx: FeatureContext) -> pl.Expr:
        return pl.col("close").shift(-1) / pl.col("close") - 1.0

    problems = check_causality(
        registry()["trap_next_return"], _small(klines), "1m", {}, [200, 400, 500]
    )
    # the prefix leaves its last row NaN and perturbing bar t+1 moves row t: both fire
    assert any("prefix" in p for p in problems)
    assert any("perturbing" in p for p in problems)
    assert "trap_next_return" in problems[0] and "later bars" in problems[0]


def test_leak_trap_full_sample_zscore_is_detected(
    scratch_registry: None, klines: pl.DataFrame
) -> None:
    @feature("trap_global_z", group="trap")
    def global_z(ctx: FeatureContext) -> np.ndarray:
        v = ctx.col("volume")
        return (v - v.mean()) / v.std()

    problems = check_causality(registry()["trap_global_z"], _small(klines), "1m", {}, [300])
    assert len(problems) == 2


def test_leak_trap_centred_window_is_detected(scratch_registry: None, klines: pl.DataFrame) -> None:
    @feature("trap_centred_mean", group="trap")
    def centred(ctx: FeatureContext) -> pl.Expr:
        return pl.col("close").rolling_mean(5, center=True)

    assert check_causality(registry()["trap_centred_mean"], _small(klines), "1m", {}, [250])


def test_leak_trap_side_input_from_the_future_is_detected(
    scratch_registry: None, klines: pl.DataFrame, side: dict[str, pl.DataFrame]
) -> None:
    """A side table joined on bar OPEN + 1 bar ahead sees events after the close."""

    @feature("trap_oi_ahead", group="trap", inputs=("open_interest",))
    def oi_ahead(ctx: FeatureContext) -> np.ndarray:
        return np.roll(ctx.side["open_interest"].get_column("open_interest").to_numpy(), -5)

    problems = check_causality(
        registry()["trap_oi_ahead"],
        _small(klines),
        "1m",
        {"open_interest": side["open_interest"]},
        [300],
    )
    assert problems


def test_causal_reference_passes_and_check_features_reports_only_leaks(
    scratch_registry: None, klines: pl.DataFrame
) -> None:
    @feature("trap_past_return", group="trap")
    def past_return(ctx: FeatureContext) -> pl.Expr:
        return pl.col("close") / pl.col("close").shift(1) - 1.0

    @feature("trap_future_max", group="trap")
    def future_max(ctx: FeatureContext) -> pl.Expr:
        return pl.col("high").reverse().cum_max().reverse()

    leaks = check_features(
        ["trap_past_return", "trap_future_max"], _small(klines), "1m", None, [150, 450]
    )
    assert list(leaks) == ["trap_future_max"]
