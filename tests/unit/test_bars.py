"""Tests for hydraquant.bars: time bars (B1), causal resampling and joins (B3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.bars import floor_ts, join_higher_timeframe, resample_bars, trades_to_bars
from hydraquant.data.schema import BAR_COLUMNS, TS
from hydraquant.errors import DataError, HydraError
from tests.conftest import real_file

T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def at(ms: float = 0, *, minutes: float = 0) -> datetime:
    return T0 + timedelta(milliseconds=ms, minutes=minutes)


def trades(rows: list[tuple], *, symbol: bool = False) -> pl.DataFrame:
    """rows: (ts, price, qty, is_buyer_maker[, symbol])."""
    cols = ["ts", "price", "qty", "is_buyer_maker"] + (["symbol"] if symbol else [])
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    return frame.with_columns(pl.col("ts").cast(TS))


SIMPLE = [
    (at(100), 10.0, 1.0, False),  # buy
    (at(200), 12.0, 2.0, True),  # sell
    (at(300), 11.0, 3.0, False),  # buy, next 250ms bucket
    (at(1000), 9.0, 4.0, True),  # sell, after two empty buckets
]


# --------------------------------------------------------------------------- trades_to_bars


def test_250ms_bars_exact_values_drop_empty() -> None:
    bars = trades_to_bars(trades(SIMPLE), "250ms")
    assert bars.schema == pl.Schema(BAR_COLUMNS)
    assert bars["ts"].to_list() == [at(0), at(250), at(1000)]
    assert bars["open"].to_list() == [10.0, 11.0, 9.0]
    assert bars["high"].to_list() == [12.0, 11.0, 9.0]
    assert bars["low"].to_list() == [10.0, 11.0, 9.0]
    assert bars["close"].to_list() == [12.0, 11.0, 9.0]
    assert bars["vwap"].to_list() == pytest.approx([34.0 / 3.0, 11.0, 9.0])
    assert bars["volume"].to_list() == [3.0, 3.0, 4.0]
    assert bars["buy_volume"].to_list() == [1.0, 3.0, 0.0]
    assert bars["signed_volume"].to_list() == [-1.0, 3.0, -4.0]
    assert bars["trade_count"].to_list() == [2, 1, 1]
    assert bars["quote_volume"].to_list() == [34.0, 33.0, 36.0]


def test_250ms_bars_ffill_fills_empty_intervals_with_previous_close() -> None:
    bars = trades_to_bars(trades(SIMPLE), "250ms", empty="ffill")
    assert bars["ts"].to_list() == [at(0), at(250), at(500), at(750), at(1000)]
    for col in ("open", "high", "low", "close", "vwap"):
        assert bars[col].to_list()[2:4] == [11.0, 11.0], col
    for col in ("volume", "buy_volume", "signed_volume", "quote_volume"):
        assert bars[col].to_list()[2:4] == [0.0, 0.0], col
    assert bars["trade_count"].to_list() == [2, 1, 0, 0, 1]
    # non-empty rows are identical to the drop mode
    dropped = trades_to_bars(trades(SIMPLE), "250ms")
    assert bars.filter(pl.col("trade_count") > 0).equals(dropped)


def test_aggressor_sign_convention() -> None:
    """is_buyer_maker=True: the maker bought, so the aggressor SOLD -> negative flow."""
    sells = trades([(at(0), 100.0, 2.0, True), (at(10), 100.0, 0.5, True)])
    buys = trades([(at(0), 100.0, 2.0, False), (at(10), 100.0, 0.5, False)])
    s, b = trades_to_bars(sells, "1s"), trades_to_bars(buys, "1s")
    assert (s["buy_volume"].item(), s["signed_volume"].item()) == (0.0, -2.5)
    assert (b["buy_volume"].item(), b["signed_volume"].item()) == (2.5, 2.5)


def test_1m_bars_are_epoch_aligned_and_bucket_is_half_open() -> None:
    rows = [
        (at(minutes=0), 1.0, 1.0, False),
        (at(59_999), 2.0, 1.0, False),  # last microsecond-ish of the first minute
        (at(minutes=1), 3.0, 1.0, False),  # exactly the next open
        (at(minutes=3, ms=1), 4.0, 1.0, True),
    ]
    bars = trades_to_bars(trades(rows), "1m")
    assert bars["ts"].to_list() == [at(minutes=0), at(minutes=1), at(minutes=3)]
    assert bars["close"].to_list() == [2.0, 3.0, 4.0]
    assert bars["trade_count"].to_list() == [2, 1, 1]
    filled = trades_to_bars(trades(rows), "1m", empty="ffill")
    assert filled["ts"].to_list() == [at(minutes=m) for m in range(4)]
    assert filled.row(2, named=True)["close"] == 3.0


def test_multiple_symbols_unsorted_input() -> None:
    rows = [
        (at(300), 20.0, 1.0, False, "ETH"),
        (at(100), 10.0, 1.0, False, "BTC"),
        (at(1100), 22.0, 2.0, True, "ETH"),
        (at(600), 11.0, 1.0, True, "BTC"),
        (at(200), 10.5, 1.0, True, "BTC"),
    ]
    bars = trades_to_bars(trades(rows, symbol=True), "500ms", empty="ffill")
    assert bars.columns == ["ts", "symbol", *list(BAR_COLUMNS)[1:]]
    assert bars.select("ts", "symbol").rows() == [
        (at(0), "BTC"),
        (at(500), "BTC"),
        (at(0), "ETH"),
        (at(500), "ETH"),  # filled, per symbol: never across symbols
        (at(1000), "ETH"),
    ]
    assert bars["open"].to_list() == [10.0, 11.0, 20.0, 20.0, 22.0]
    assert bars["close"].to_list() == [10.5, 11.0, 20.0, 20.0, 22.0]
    assert bars["signed_volume"].to_list() == [0.0, -1.0, 1.0, 0.0, -2.0]
    # per symbol the result equals bars built from that symbol alone
    alone = trades_to_bars(trades([r[:4] for r in rows if r[4] == "ETH"]), "500ms", empty="ffill")
    assert bars.filter(pl.col("symbol") == "ETH").drop("symbol").equals(alone)


def test_ties_keep_input_order_for_open_and_close() -> None:
    rows = [(at(5), 2.0, 1.0, False), (at(5), 1.0, 1.0, False), (at(5), 3.0, 1.0, False)]
    bars = trades_to_bars(trades(rows), "1s")
    assert (bars["open"].item(), bars["close"].item()) == (2.0, 3.0)


def test_quote_qty_is_used_when_present_and_price_qty_fills_nulls() -> None:
    frame = trades(SIMPLE[:2]).with_columns(quote_qty=pl.Series([100.0, None]))
    bars = trades_to_bars(frame.lazy(), "1s")  # LazyFrame input too
    assert bars["quote_volume"].item() == 100.0 + 24.0


def test_naive_and_ms_timestamps_are_taken_as_utc() -> None:
    frame = trades(SIMPLE).with_columns(
        pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("ms")
    )
    assert trades_to_bars(frame, "250ms").equals(trades_to_bars(trades(SIMPLE), "250ms"))


def test_weeks_open_on_monday() -> None:
    wed = pl.DataFrame({"ts": [datetime(2024, 1, 10, 15, tzinfo=UTC)]}).with_columns(
        pl.col("ts").cast(TS)
    )
    assert wed.select(floor_ts(pl.col("ts"), "1w")).item() == datetime(2024, 1, 8, tzinfo=UTC)
    assert wed.select(floor_ts(pl.col("ts"), "1d")).item() == datetime(2024, 1, 10, tzinfo=UTC)


def test_pre_epoch_times_floor_down() -> None:
    frame = trades([(datetime(1969, 12, 31, 23, 59, 59, 900_000, tzinfo=UTC), 1.0, 1.0, False)])
    assert trades_to_bars(frame, "1s")["ts"].item() == datetime(
        1969, 12, 31, 23, 59, 59, tzinfo=UTC
    )


def test_empty_input_gives_empty_frame_with_schema() -> None:
    bars = trades_to_bars(trades(SIMPLE).head(0), "1s")
    assert bars.height == 0 and bars.schema == pl.Schema(BAR_COLUMNS)


def test_errors_name_what_and_where() -> None:
    with pytest.raises(DataError, match="is_buyer_maker"):
        trades_to_bars(trades(SIMPLE).drop("is_buyer_maker"), "1s")
    with pytest.raises(DataError, match=r"row 1.*'qty'"):
        trades_to_bars(trades(SIMPLE).with_columns(qty=pl.Series([1.0, None, 1.0, 1.0])), "1s")
    with pytest.raises(DataError, match="expected a UTC datetime"):
        trades_to_bars(trades(SIMPLE).with_columns(pl.col("ts").cast(pl.Int64)), "1s")
    with pytest.raises(HydraError, match="invalid interval"):
        trades_to_bars(trades(SIMPLE), "1x")
    with pytest.raises(HydraError, match="empty="):
        trades_to_bars(trades(SIMPLE), "1s", empty="zero")  # type: ignore[arg-type]


def _reference_bars(frame: pl.DataFrame, step_us: int) -> pl.DataFrame:
    """Independent implementation (polars group_by) for the property test."""
    buy = pl.when(pl.col("is_buyer_maker")).then(0.0).otherwise(pl.col("qty"))
    sell = pl.when(pl.col("is_buyer_maker")).then(pl.col("qty")).otherwise(0.0)
    return (
        frame.with_columns(b=pl.col("ts").cast(pl.Int64) // step_us * step_us)
        .group_by("symbol", "b", maintain_order=True)
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("qty").sum(),
            buy_volume=buy.sum(),
            signed_volume=buy.sum() - sell.sum(),
            trade_count=pl.len().cast(pl.Int64),
        )
        .sort("symbol", "b", maintain_order=True)
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    seed=st.integers(0, 2**31),
    step_ms=st.sampled_from([250, 1000, 5000]),
)
def test_matches_independent_groupby(n: int, seed: int, step_ms: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "ts": pl.Series(np.sort(rng.integers(0, 60_000_000, n)) + 1_700_000_000_000_000).cast(
                TS
            ),
            "symbol": rng.choice(["A", "B", "C"], n),
            "price": rng.integers(90, 110, n).astype(float),
            "qty": rng.integers(1, 100, n) / 10.0,
            "is_buyer_maker": rng.random(n) < 0.5,
        }
    )
    step = step_ms * 1000
    ours = trades_to_bars(frame, f"{step_ms}ms")
    ref = _reference_bars(frame.sort("symbol", "ts", maintain_order=True), step)
    assert ours["ts"].cast(pl.Int64).to_list() == ref["b"].to_list()
    assert ours["symbol"].to_list() == ref["symbol"].to_list()
    for col in ("open", "high", "low", "close", "trade_count"):
        assert ours[col].to_list() == ref[col].to_list(), col
    for col in ("volume", "buy_volume", "signed_volume"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), atol=1e-9)
    filled = trades_to_bars(frame, f"{step_ms}ms", empty="ffill")
    spans = ref.group_by("symbol").agg(
        ((pl.col("b").max() - pl.col("b").min()) // step + 1).alias("n")
    )
    assert filled.height == spans["n"].sum()
    assert filled["trade_count"].sum() == n
    np.testing.assert_allclose(filled["volume"].sum(), frame["qty"].sum())


# --------------------------------------------------------------------------- resample_bars


def _random_trades(
    seed: int, n: int, minutes: int, symbols: tuple[str, ...] = ("BTC", "ETH")
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "ts": pl.Series(
                np.sort(rng.integers(0, minutes * 60_000_000, n)) + 1_704_067_200_000_000
            ).cast(TS),
            "symbol": rng.choice(list(symbols), n),
            "price": np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2),
            "qty": np.round(rng.lognormal(0, 1, n), 3) + 0.001,
            "is_buyer_maker": rng.random(n) < 0.5,
        }
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_resampled_1m_equals_5m_built_from_trades(seed: int) -> None:
    frame = _random_trades(seed, 3_000, minutes=63)  # sparse enough for empty minutes
    frame = frame.filter(pl.col("ts").dt.minute() % 7 != 3)  # gaps inside 5m bars
    direct = trades_to_bars(frame, "5m")
    resampled = resample_bars(
        trades_to_bars(frame, "1m"), "5m", source_interval="1m", complete_only=False
    )
    assert resampled.columns == direct.columns
    for col in ("ts", "symbol", "open", "high", "low", "close", "trade_count"):
        assert resampled[col].to_list() == direct[col].to_list(), col
    for col in ("vwap", "volume", "buy_volume", "signed_volume", "quote_volume"):
        np.testing.assert_allclose(
            resampled[col].to_numpy(), direct[col].to_numpy(), rtol=1e-12, atol=1e-9
        )
    assert resampled.schema == direct.schema


def test_resample_drops_only_the_incomplete_last_bar() -> None:
    minutes = list(range(0, 3)) + list(range(6, 8))  # 00:00-00:02, gap, 00:06-00:07
    bars = pl.DataFrame(
        {
            "ts": [at(minutes=m) for m in minutes],
            "open": [1.0, 2, 3, 4, 5],
            "high": [1.5, 2.5, 3.5, 4.5, 5.5],
            "low": [0.5, 1.5, 2.5, 3.5, 4.5],
            "close": [2.0, 3, 4, 5, 6],
            "volume": [1.0, 1, 1, 1, 1],
        }
    ).with_columns(pl.col("ts").cast(TS))
    out = resample_bars(bars, "5m")  # source interval inferred: 1m
    # 00:00 bar is interior (later data exist) -> kept despite missing minutes;
    # 00:05 bar ends at 00:08 < 00:10 -> still open -> dropped
    assert out["ts"].to_list() == [at(minutes=0)]
    assert out.row(0) == (at(minutes=0), 1.0, 3.5, 0.5, 4.0, 3.0)
    full = resample_bars(bars, "5m", complete_only=False)
    assert full["ts"].to_list() == [at(minutes=0), at(minutes=5)]
    more = pl.concat([bars, bars.tail(1).with_columns(pl.col("ts") + timedelta(minutes=2))])
    assert resample_bars(more, "5m").height == 2  # 00:09 closes 00:10: complete


def test_resample_klines_sums_and_null_propagation() -> None:
    klines = pl.DataFrame(
        {
            "ts": [at(minutes=m) for m in range(4)],
            "symbol": ["X"] * 4,
            "open": [1.0, 2, 3, 4],
            "high": [2.0, 3, 4, 5],
            "low": [0.5, 1, 2, 3],
            "close": [2.0, 3, 4, 5],
            "volume": [1.0, 2, 3, 4],
            "quote_volume": [1.0, 1, 1, 1],
            "trade_count": pl.Series([1, 2, 3, 4], dtype=pl.Int64),
            "taker_buy_volume": [0.5, None, 1.0, 1.0],
            "taker_buy_quote_volume": [None] * 4,
            "some_feature": [9.0] * 4,
        },
        schema_overrides={"taker_buy_quote_volume": pl.Float64},
    ).with_columns(pl.col("ts").cast(TS))
    out = resample_bars(klines, "2m", source_interval="1m")
    assert "some_feature" not in out.columns
    assert out["volume"].to_list() == [3.0, 7.0]
    assert out["trade_count"].to_list() == [3, 7] and out["trade_count"].dtype == pl.Int64
    assert out["quote_volume"].to_list() == [2.0, 2.0]
    assert out["taker_buy_volume"].to_list() == [None, 2.0]  # a partial sum is not a sum
    assert out["taker_buy_quote_volume"].to_list() == [None, None]


def test_resample_vwap_is_volume_weighted() -> None:
    bars = pl.DataFrame(
        {"ts": [at(0), at(1000)], "close": [1.0, 2.0], "vwap": [10.0, 20.0], "volume": [1.0, 3.0]}
    ).with_columns(pl.col("ts").cast(TS))
    assert resample_bars(bars, "2s", source_interval="1s")["vwap"].item() == pytest.approx(17.5)
    zero = bars.with_columns(volume=pl.lit(0.0))
    assert resample_bars(zero, "2s", source_interval="1s")["vwap"].item() == 2.0  # last close


def test_resample_rejects_non_multiple_interval_and_unknown_source() -> None:
    bars = trades_to_bars(trades(SIMPLE), "250ms", empty="ffill")
    with pytest.raises(HydraError, match="whole multiple"):
        resample_bars(bars, "600ms")
    with pytest.raises(HydraError, match="source_interval"):
        resample_bars(bars.head(1), "1s")


# --------------------------------------------------------------------------- join_higher_timeframe


def _minute_bars(n: int, symbols: tuple[str, ...] = ("X",)) -> pl.DataFrame:
    frames = []
    for k, sym in enumerate(symbols):
        close = 100.0 + 10 * k + np.arange(n, dtype=float)
        frames.append(
            pl.DataFrame(
                {
                    "ts": [at(minutes=m) for m in range(n)],
                    "symbol": [sym] * n,
                    "open": close - 0.5,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close,
                    "volume": np.ones(n),
                }
            )
        )
    return pl.concat(frames).with_columns(pl.col("ts").cast(TS))


def test_higher_bar_visible_only_from_the_lower_row_that_closes_with_it() -> None:
    lower = _minute_bars(31, ("A", "B"))
    higher = resample_bars(lower, "15m", source_interval="1m")
    out = join_higher_timeframe(lower, higher, "15m", lower_interval="1m", prefix="m15_")
    assert out.columns == [
        *lower.columns,
        "m15_ts",
        "m15_open",
        "m15_high",
        "m15_low",
        "m15_close",
        "m15_volume",
    ]
    assert out.select(lower.columns).equals(lower)  # rows and order untouched
    for sym, base in (("A", 100.0), ("B", 110.0)):
        rows = out.filter(pl.col("symbol") == sym)
        seen = rows["m15_ts"].to_list()
        assert seen[:14] == [None] * 14  # rows 00:00..00:13 close before 00:15
        assert seen[14:29] == [at(minutes=0)] * 15  # 00:14 closes at 00:15
        assert seen[29:] == [at(minutes=15)] * 2  # 00:29 closes at 00:30
        assert rows["m15_close"][14] == base + 14  # the 15m close is the 00:14 close
        assert rows["m15_close"][29] == base + 29


def test_join_with_5m_lower_and_missing_higher_bars() -> None:
    lower = _minute_bars(60).filter(pl.col("ts").dt.minute() % 5 == 0)  # 5m grid
    higher = resample_bars(_minute_bars(60), "1h", source_interval="1m", complete_only=False)
    out = join_higher_timeframe(lower, higher, "1h", lower_interval="5m", prefix="h1_")
    # the 1h bar opened 00:00 closes 01:00 = close of the 00:55 5m bar only
    assert out["h1_ts"].to_list() == [None] * 11 + [at(0)]


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_join_on_a_prefix_equals_the_full_join_prefix(seed: int) -> None:
    """Causality: data after the cut can never change what rows before it see."""
    frame = _random_trades(seed, 4_000, minutes=240)
    lower = trades_to_bars(frame, "1m", empty="ffill")
    full = join_higher_timeframe(
        lower,
        resample_bars(lower, "15m", source_interval="1m"),
        "15m",
        lower_interval="1m",
        prefix="h_",
    )
    rng = np.random.default_rng(seed)
    for cut_minutes in rng.integers(1, 240, 5):
        cut = at(minutes=int(cut_minutes)) + (lower["ts"].min() - at(0))
        part = lower.filter(pl.col("ts") < cut)
        joined = join_higher_timeframe(
            part,
            resample_bars(part, "15m", source_interval="1m"),
            "15m",
            lower_interval="1m",
            prefix="h_",
        )
        expected = full.filter(pl.col("ts") < cut)
        assert joined.equals(expected), f"cut at {cut}"
    # no row ever sees a higher bar that closes after the row's own close
    visible = full.drop_nulls("h_ts")
    assert (visible["h_ts"] + timedelta(minutes=15) <= visible["ts"] + timedelta(minutes=1)).all()


def test_join_validates_inputs() -> None:
    lower = _minute_bars(5)
    higher = resample_bars(lower, "5m", source_interval="1m")
    with pytest.raises(HydraError, match="only one of the frames"):
        join_higher_timeframe(lower.drop("symbol"), higher, "5m", lower_interval="1m", prefix="h_")
    with pytest.raises(HydraError, match="already exist"):
        join_higher_timeframe(
            lower.with_columns(h_close=1.0), higher, "5m", lower_interval="1m", prefix="h_"
        )


# --------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_real_trades_to_1s_bars_conserve_volume_and_count(real_data_dir) -> None:
    path = real_file(
        "binance-ws-captures/usdm/BTCUSDT/derived/BTCUSDT-trades-20240719T000000Z-wscapture.csv.gz"
    )
    raw = pl.read_csv(
        path, schema_overrides={"price": pl.Float64, "qty": pl.Float64, "quote_qty": pl.Float64}
    )
    frame = raw.select(
        pl.from_epoch("time", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        "price",
        "qty",
        "quote_qty",
        pl.col("is_buyer_maker").cast(pl.Boolean),
    )
    bars = trades_to_bars(frame, "1s")
    assert bars["trade_count"].sum() == raw.height
    np.testing.assert_allclose(bars["volume"].sum(), raw["qty"].sum(), rtol=1e-12)
    np.testing.assert_allclose(bars["quote_volume"].sum(), raw["quote_qty"].sum(), rtol=1e-12)
    buys = raw.filter(~pl.col("is_buyer_maker").cast(pl.Boolean))["qty"].sum()
    np.testing.assert_allclose(bars["buy_volume"].sum(), buys, rtol=1e-12)
    assert bars["ts"].is_sorted() and bars["ts"].n_unique() == bars.height
    assert (bars["low"] <= bars["vwap"] + 1e-9).all() and (
        bars["vwap"] <= bars["high"] + 1e-9
    ).all()
    assert (bars["ts"].dt.microsecond() == 0).all()
    # the capture covers ~5 minutes: 1s bars fill most seconds of it
    assert 250 <= bars.height <= 301


def _read_klines(path) -> pl.DataFrame:
    raw = pl.read_csv(path)
    ts = raw["timestamp"]
    if ts.dtype == pl.String:
        parsed = ts.str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
    else:
        parsed = pl.from_epoch(ts, time_unit="ms").dt.replace_time_zone("UTC")
    return (
        raw.select("open", "high", "low", "close", "volume")
        .with_columns(ts=parsed.cast(TS))
        .select("ts", "open", "high", "low", "close", "volume")
    )


def _assert_same_bars(ours: pl.DataFrame, theirs: pl.DataFrame, min_rows: int) -> None:
    both = ours.join(theirs, on="ts", suffix="_ref")
    assert both.height >= min_rows
    for col in ("open", "high", "low", "close"):
        assert both[col].to_list() == both[f"{col}_ref"].to_list(), col
    np.testing.assert_allclose(both["volume"].to_numpy(), both["volume_ref"].to_numpy(), rtol=1e-6)


@pytest.mark.realdata
def test_real_1m_klines_resampled_to_1h_match_exchange_1h(real_data_dir) -> None:
    base = "binance-spot-klines-ccxt/BTCUSDT/"
    one_min = _read_klines(real_file(base + "BTCUSDT_1m_2024-10-01_2024-11-04.csv.gz"))
    one_hour = _read_klines(real_file(base + "BTCUSDT_1h_2022-05-25_2024-12-31.csv.gz"))
    hourly = resample_bars(one_min, "1h", source_interval="1m")
    # the 1m file ends 20:19: the 20:00 hour is incomplete and must be gone
    assert hourly["ts"].max() == one_min["ts"].max().replace(minute=0) - timedelta(hours=1)
    minutes_per_hour = one_min.group_by(floor_ts(pl.col("ts"), "1h").alias("ts")).len()
    complete = minutes_per_hour.filter(pl.col("len") == 60).select("ts")
    _assert_same_bars(hourly.join(complete, on="ts"), one_hour, min_rows=800)


@pytest.mark.realdata
def test_real_1d_klines_resampled_to_1w_match_exchange_weeks(real_data_dir) -> None:
    """Weekly bars open on Monday 00:00 UTC, as Binance's 1w klines do."""
    base = "binance-spot-klines-ccxt/BTCUSDT/"
    daily = _read_klines(real_file(base + "BTCUSDT_1d_2020-04-05_2024-12-31.csv.gz"))
    weekly = _read_klines(real_file(base + "BTCUSDT_1w_2020-04-06_2024-12-30.csv.gz"))
    ours = resample_bars(
        daily.filter(pl.col("ts") >= weekly["ts"].min()), "1w", source_interval="1d"
    )
    assert (ours["ts"].dt.weekday() == 1).all()
    _assert_same_bars(ours, weekly, min_rows=240)
