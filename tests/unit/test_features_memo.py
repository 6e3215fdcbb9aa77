"""Per-build memoisation and the fused fast paths give exactly the values of the plain paths.

The feature build shares intermediates (MOI sums, returns, vol, profile
levels, ATR, the UTC clock) across features through ``FeatureContext.cached``
and batches rolling windows into one polars query.  None of that may change a
single value: every test here compares bit-for-bit (NaN-equal) against the
feature built alone or against a straightforward reference implementation.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.features import build_features
from hydraquant.features import indicators_nb as ind
from hydraquant.features.inputs import dense_codes, rolling_many
from hydraquant.features.registry import (
    FeatureContext,
    available_inputs,
    feature_sets,
    registry,
)
from hydraquant.features.structure import bin_price, block_profile_levels, price_bins
from hydraquant.timeframes import interval_us
from tests.oracles import block_profile_reference, unique_codes
from tests.unit import feature_data as fd

T0 = datetime(2024, 3, 1, 23, 50, tzinfo=UTC)  # a Friday: bars cross midnight into the weekend
HYDRA_V3 = list(feature_sets()["hydra_v3"])


def synthetic_trade_bars(n: int, interval: str = "250ms", seed: int = 3) -> pl.DataFrame:
    """Random-walk trade bars with gaps (dropped intervals), lot-sized volumes and a 0-volume bar."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([1, 1, 1, 2, 5], size=n)  # some empty intervals dropped, as the seed does
    ts_us = int(T0.timestamp() * 1e6) + np.cumsum(steps) * interval_us(interval)
    close = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 2e-4, n)))
    volume = rng.integers(0, 40, n) * 0.001  # lot sizes: equal volumes, ties in the profile
    buy = np.round(volume * rng.uniform(0, 1, n), 3)
    return pl.DataFrame(
        {
            "ts": pl.Series(ts_us).cast(pl.Datetime("us", "UTC")),
            "open": close * (1 + rng.normal(0, 1e-4, n)),
            "high": close * 1.0002,
            "low": close * 0.9998,
            "close": close,
            "volume": volume,
            "buy_volume": buy,
            "signed_volume": 2 * buy - volume,
            "trade_count": rng.integers(0, 30, n),
        }
    )


def assert_same(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, (
        f"{what}: {bad.size} rows differ, first row {bad[0]}: {got[bad[0]]!r} vs {expected[bad[0]]!r}"
    )


def assert_build_equals_alone(bars: pl.DataFrame, names: list[str], interval: str) -> None:
    together = build_features(bars, names, interval=interval)
    assert together.columns[-len(names) :] == names
    for name in names:
        alone = build_features(bars, [name], interval=interval).get_column(name).to_numpy()
        assert_same(together.get_column(name).to_numpy(), alone, name)


# --------------------------------------------------------------------------- memoised build == alone


def test_hydra_v3_memoised_build_equals_each_feature_alone_synthetic() -> None:
    bars = synthetic_trade_bars(6_000)
    assert_build_equals_alone(bars, HYDRA_V3, "250ms")
    # evaluation order cannot matter either: the memo is filled by whichever feature comes first
    fwd = build_features(bars, HYDRA_V3, interval="250ms")
    rev = build_features(bars, HYDRA_V3[::-1], interval="250ms")
    for name in HYDRA_V3:
        assert_same(fwd.get_column(name).to_numpy(), rev.get_column(name).to_numpy(), name)


def test_hydra_v3_memoised_build_equals_each_feature_alone_real_trades(real_data_dir) -> None:
    assert_build_equals_alone(fd.trade_bars("250ms"), HYDRA_V3, "250ms")


def test_every_bar_feature_memoised_equals_alone_on_real_klines(real_data_dir) -> None:
    """Every registered per-symbol feature that needs only bars (a superset of 'a sample')."""
    bars = fd.futures_klines(3_000)
    reg = registry()
    have = available_inputs(fd.futures_kline_bars(10), {})
    names = [n for n, s in reg.items() if s.scope == "symbol" and set(s.inputs) <= have]
    assert len(names) > 80
    assert_build_equals_alone(bars, names, "1m")


def test_multi_symbol_build_equals_per_symbol_builds() -> None:
    a = synthetic_trade_bars(3_000, seed=1).with_columns(pl.lit("AAA").alias("symbol"))
    b = synthetic_trade_bars(2_500, seed=2).with_columns(pl.lit("BBB").alias("symbol"))
    both = pl.concat([b, a]).sample(fraction=1.0, shuffle=True, seed=0)  # unsorted on purpose
    out = build_features(both, HYDRA_V3, interval="250ms")
    assert out.get_column("symbol").to_list() == ["AAA"] * 3_000 + ["BBB"] * 2_500
    for sym, frame in (("AAA", a), ("BBB", b)):
        alone = build_features(frame.drop("symbol"), HYDRA_V3, interval="250ms")
        part = out.filter(pl.col("symbol") == sym)
        assert part.get_column("ts").to_list() == alone.get_column("ts").to_list()
        for name in HYDRA_V3:
            assert_same(part.get_column(name).to_numpy(), alone.get_column(name).to_numpy(), name)


def test_unsorted_single_symbol_frame_is_sorted_before_building() -> None:
    bars = synthetic_trade_bars(2_000)
    shuffled = bars.sample(fraction=1.0, shuffle=True, seed=5)
    got = build_features(shuffled, ["MOI_1s", "vol_1m"], interval="250ms")
    want = build_features(bars, ["MOI_1s", "vol_1m"], interval="250ms")
    assert got.get_column("ts").is_sorted()
    assert_same(got.get_column("MOI_1s").to_numpy(), want.get_column("MOI_1s").to_numpy(), "MOI")
    assert_same(got.get_column("vol_1m").to_numpy(), want.get_column("vol_1m").to_numpy(), "vol")


def test_integer_and_null_outputs_are_normalised_to_float_nan() -> None:
    """Post-processing runs once over all columns: ints become Float64, nulls become NaN."""
    bars = synthetic_trade_bars(300, interval="1m")
    out = build_features(bars, ["ret_1", "sma_20", "is_weekend"], interval="1m")
    for name in ("ret_1", "sma_20", "is_weekend"):
        col = out.get_column(name)
        assert col.dtype == pl.Float64 and col.null_count() == 0
    assert np.isnan(out.get_column("ret_1").to_numpy()[0])  # a polars null (shift) became NaN
    assert np.isnan(out.get_column("sma_20").to_numpy()[:19]).all()


# --------------------------------------------------------------------------- the memo itself


def test_cached_computes_once_shares_across_params_and_freezes_arrays() -> None:
    ctx = FeatureContext(synthetic_trade_bars(50), "250ms")
    calls = []

    def compute() -> tuple[np.ndarray, dict[str, np.ndarray]]:
        calls.append(1)
        return np.arange(3.0), {"x": np.ones(2)}

    first = ctx.cached(("k", 1), compute)
    again = ctx.with_params({"window": "1s"}).cached(("k", 1), compute)
    assert again is first and len(calls) == 1
    assert ctx.with_params({"a": 1}).params == {"a": 1} and ctx.params == {}
    with pytest.raises(ValueError):
        first[0][0] = 5.0  # read-only: a feature cannot change what its neighbours see
    with pytest.raises(ValueError):
        first[1]["x"][0] = 5.0
    other = FeatureContext(ctx.bars, ctx.interval)  # a new build starts with an empty memo
    other.cached(("k", 1), compute)
    assert len(calls) == 2


def test_fcol_converts_integer_columns_once() -> None:
    ctx = FeatureContext(synthetic_trade_bars(20), "250ms")
    tc = ctx.fcol("trade_count")
    assert tc.dtype == np.float64 and ctx.fcol("trade_count") is tc
    np.testing.assert_array_equal(tc, ctx.col("trade_count").astype(np.float64))


# --------------------------------------------------------------------------- fused helpers


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0]),
        ),
        min_size=1,
        max_size=60,
    ),
    n=st.integers(1, 8),
)
def test_rolling_many_equals_one_polars_op_at_a_time(values: list[float], n: int) -> None:
    x = np.asarray(values)
    got = rolling_many([(x, "sum", n), (x, "mean", n), (x, "std", n), (np.abs(x), "sum", n)])
    s = pl.Series(x).fill_nan(None)
    m = max(n, 2)
    want = [
        s.rolling_sum(n, min_samples=n),
        s.rolling_mean(n, min_samples=n),
        s.rolling_std(m, min_samples=m, ddof=1),
        s.abs().rolling_sum(n, min_samples=n),
    ]
    for g, w, what in zip(got, want, ("sum", "mean", "std", "abs sum"), strict=True):
        assert_same(g, w.cast(pl.Float64).fill_null(float("nan")).to_numpy(), what)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(-5, 5).map(float),
            st.sampled_from([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-300]),
        ),
        max_size=50,
    )
)
def test_dense_codes_equal_numpy_unique(values: list[float]) -> None:
    x = np.asarray(values, dtype=np.float64)
    codes, m = dense_codes(x)
    want, want_m = unique_codes(x)
    np.testing.assert_array_equal(codes, want)  # -0.0 and 0.0 share a code
    assert m == want_m


# --------------------------------------------------------------------------- block profile


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 10_000),
    bad_tick=st.booleans(),
    shuffle=st.booleans(),
)
def test_block_profile_kernel_equals_polars_reference(
    n: int, seed: int, bad_tick: bool, shuffle: bool
) -> None:
    rng = np.random.default_rng(seed)
    ts_us = 1_700_000_000_000_000 + np.cumsum(rng.choice([1, 1, 3, 40], size=n)) * 1_000_000
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 3e-4, n)))
    volume = rng.integers(0, 4, n).astype(np.float64)  # small integers: many exact ties
    close[rng.random(n) < 0.03] = np.nan
    volume[rng.random(n) < 0.03] = np.nan
    if bad_tick:  # a far-away price forces the sorting path of the kernel
        close[rng.integers(0, n)] = 1e-3
    ts = pl.Series(ts_us).cast(pl.Datetime("us", "UTC"))
    if shuffle:
        order = rng.permutation(n)
        ts, close, volume = ts.gather(order), close[order], volume[order]
    got = block_profile_levels(ts, close, volume, block_us=60_000_000, bin_bps=5.0)
    want = block_profile_reference(ts, close, volume, block_us=60_000_000, bin_bps=5.0)
    assert_same(got[0], want[0], "poc")
    assert_same(got[1], want[1], "lvn")


def test_block_profile_levels_by_hand() -> None:
    """Block 0: bin of 100 gets 3, bin of 101 gets 1+2 (tie -> lowest bin for POC and LVN)."""
    ts = (pl.Series([0, 10, 20, 60, 70, 200]) * 1_000_000).cast(pl.Datetime("us", "UTC"))
    close = np.array([100.0, 101.0, 101.0, 105.0, 106.0, 107.0])
    volume = np.array([3.0, 1.0, 2.0, 1.0, 5.0, 1.0])
    poc, lvn = block_profile_levels(ts, close, volume, block_us=60_000_000, bin_bps=1.0)
    p100 = bin_price(price_bins(np.array([100.0]), 1.0), 1.0)[0]
    p105, p106 = bin_price(price_bins(np.array([105.0, 106.0]), 1.0), 1.0)
    assert np.isnan(poc[:3]).all() and np.isnan(lvn[:3]).all()  # no previous block
    np.testing.assert_array_equal(poc[3:5], [p100, p100])
    np.testing.assert_array_equal(lvn[3:5], [p100, p100])
    assert np.isnan(poc[5]) and np.isnan(lvn[5])  # block 3 follows the empty block 2
    assert p105 != p106


# --------------------------------------------------------------------------- clock fast path


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-2_000_000_000, 4_000_000_000), min_size=1, max_size=40))
def test_clock_features_equal_the_polars_calendar(seconds: list[int]) -> None:
    """Epoch arithmetic gives dt.hour()/dt.weekday() exactly, pre-1970 included."""
    ts = (pl.Series(sorted(seconds), dtype=pl.Int64) * 1_000_000).cast(pl.Datetime("us", "UTC"))
    bars = pl.DataFrame({"ts": ts, "close": np.ones(ts.len())})
    ctx = FeatureContext(bars, "1m")
    reg = registry()
    expected = bars.select(
        (2 * np.pi * pl.col("ts").dt.hour().cast(pl.Float64) / 24.0).sin().alias("hour_sin"),
        (2 * np.pi * pl.col("ts").dt.hour().cast(pl.Float64) / 24.0).cos().alias("hour_cos"),
        (pl.col("ts").dt.weekday() >= 6).cast(pl.Float64).alias("is_weekend"),
    )
    for name in ("hour_sin", "hour_cos", "is_weekend"):
        spec = reg[name]
        got = spec.func(ctx.with_params(spec.params))
        if isinstance(got, pl.Expr):  # a single bar keeps the polars expression
            got = bars.select(got).to_series().to_numpy()
        assert_same(np.asarray(got), expected.get_column(name).to_numpy(), name)


def test_clock_features_of_other_time_zones_use_local_time() -> None:
    ts = pl.Series([datetime(2024, 3, 1, 23, 30, tzinfo=UTC)]).dt.convert_time_zone("Asia/Tokyo")
    bars = pl.DataFrame({"ts": ts, "close": [1.0]})
    spec = registry()["is_weekend"]
    value = spec.func(FeatureContext(bars, "1m").with_params(spec.params))
    assert bars.select(value).item() == 1.0  # Saturday 08:30 in Tokyo


# --------------------------------------------------------------------------- one ATR kernel


def test_one_wilder_atr_kernel_restarts_or_keeps_state_after_a_nan_bar() -> None:
    high = np.array([10.0, 12.0, 11.0, np.nan, 15.0, 13.0, 14.0])
    low = np.array([8.0, 9.0, 10.0, 9.0, 11.0, 12.0, 12.0])
    close = np.array([9.0, 11.0, 10.5, 10.0, 14.0, 12.5, 13.0])
    # TR: 2, 3, 1, NaN, then (prev close 10) max(4, 5, 1)=5, max(1, 1, 2)=2, max(2, 1.5, 0.5)=2
    a2 = (2 + 3 + 1) / 3
    keep = ind.atr(high, low, close, 3)
    k4 = (a2 * 2 + 5) / 3
    k5 = (k4 * 2 + 2) / 3
    assert_same(keep, [np.nan, np.nan, a2, np.nan, k4, k5, (k5 * 2 + 2) / 3], "keep state")
    restart = ind.atr(high, low, close, 3, restart_after_nan=True)
    assert_same(restart, [np.nan, np.nan, a2, np.nan, np.nan, np.nan, (5 + 2 + 2) / 3], "restart")
    # without missing bars the flag changes nothing
    h, lo, c = np.delete(high, 3), np.delete(low, 3), np.delete(close, 3)
    assert_same(ind.atr(h, lo, c, 3), ind.atr(h, lo, c, 3, restart_after_nan=True), "no NaN")


def test_empty_frame_gives_the_feature_columns_and_no_rows() -> None:
    out = build_features(synthetic_trade_bars(10).head(0), ["MOI_1s", "hour_sin"], interval="250ms")
    assert out.columns == ["ts", "MOI_1s", "hour_sin"] and out.height == 0
    assert out.schema["MOI_1s"] == pl.Float64
