"""L3 (seed 000): exact fee-adjusted MFE/vol, naive per-point reference, train-only percentile clip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hydraquant.labels import LabelError, MfeTargetTransform, fee_adjusted_mfe, horizon_bars
from hydraquant.labels import labels_nb as nbk

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(close, vol, regime, step_ms=250) -> pl.DataFrame:
    n = len(close)
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(milliseconds=step_ms * i) for i in range(n)],
            "close": np.asarray(close, dtype=float),
            "vol_5m": pl.Series(vol, dtype=pl.Float64),
            "vol_regime": regime,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def test_exact_values_and_direction_rule():
    f = frame([100, 100.5, 99.7, 100.2, 100], [0.001] * 5, ["LOW", "MID", "HIGH", "LOW", "LOW"])
    out = fee_adjusted_mfe(f, 2, fee_pct=0.0004)
    r0 = out.row(0, named=True)
    assert r0["up_move"] == pytest.approx(0.005 - 0.0008)
    assert r0["down_move"] == pytest.approx(0.003 - 0.0008)
    assert r0["up_score"] == pytest.approx((0.005 - 0.0008) / 0.001)
    assert r0["direction"] == 1 and r0["target_key"] == "up_low"
    # row 1: entry 100.5, window [99.7, 100.2]: up negative, down = 0.796% - fee
    r1 = out.row(1, named=True)
    assert r1["direction"] == -1 and r1["target_key"] == "down_mid"
    assert r1["score"] == pytest.approx(((100.5 - 99.7) / 100.5 - 0.0008) / 0.001)
    assert out["t_end"][0] == T0 + timedelta(milliseconds=750)
    assert out["up_move"].to_list()[3:] == [None, None]


def test_no_profitable_direction_and_bad_vol_are_null():
    f = frame([100, 100.01, 99.99, 100], [0.001, None, 0.001, 0.001], ["LOW"] * 4)
    out = fee_adjusted_mfe(f, 1)
    assert out["direction"][0] is None and out["score"][0] is None  # 0.01% < 0.08% fee
    assert out["up_score"][1] is None  # vol unknown


def test_horizon_as_duration():
    assert horizon_bars("60s", "250ms") == 240
    assert horizon_bars("300s", "250ms") == 1200
    with pytest.raises(LabelError):
        horizon_bars("1s", "300ms")
    with pytest.raises(LabelError):
        horizon_bars("60s", None)


def seed_loop(price, vol, regime, horizon, fee):
    """The seed's per-decision-point loop, without its leaks: returns {row: (key, score)}."""
    out = {}
    for idx in range(len(price)):
        if idx + horizon >= len(price):
            continue
        entry, v = price[idx], vol[idx]
        if not v > 0:
            continue
        fut = price[idx + 1 : idx + horizon + 1]
        up = (fut.max() - entry) / entry - 2 * fee
        down = (entry - fut.min()) / entry - 2 * fee
        if max(up, down) < 0:
            continue
        if up > down and up > 0:
            out[idx] = (f"up_{regime[idx].lower()}", up / v)
        elif down > 0:
            out[idx] = (f"down_{regime[idx].lower()}", down / v)
    return out


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=2, max_size=60),
    st.integers(1, 15),
    st.randoms(use_true_random=False),
)
def test_matches_seed_loop(steps, horizon, rnd):
    price = 100 * np.exp(np.cumsum(np.asarray(steps) * 0.001))
    vol = np.array([rnd.choice([0.0, 0.001, 0.002]) for _ in steps])
    regime = [rnd.choice(["LOW", "MID", "HIGH"]) for _ in steps]
    out = fee_adjusted_mfe(frame(price, vol, regime), horizon, interval="250ms")
    ref = seed_loop(price, vol, regime, horizon, 0.0004)
    keys, scores = out["target_key"].to_list(), out["score"].to_list()
    for i in range(len(price)):
        if i in ref:
            assert keys[i] == ref[i][0]
            assert scores[i] == pytest.approx(ref[i][1], rel=1e-12)
        else:
            assert keys[i] is None


def test_clip_fitted_on_train_only_and_json_roundtrip():
    rng = np.random.default_rng(3)
    n = 4000
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    f = frame(price, np.full(n, 0.001), list(rng.choice(["LOW", "MID", "HIGH"], n)))
    raw = fee_adjusted_mfe(f, 20)
    train, test = raw[:2000], raw[2000:]
    tr = MfeTargetTransform().fit(train)
    for key, cap in tr.caps.items():
        s = train.filter(pl.col("target_key") == key)["score"].to_numpy()
        assert cap == pytest.approx(
            np.percentile(s, 99)
        )  # numpy linear percentile, train rows only
    # refitting on the full sample changes the caps -> the full-sample clip would leak
    assert MfeTargetTransform().fit(raw).caps != tr.caps
    out = tr.transform(test)
    row = out.filter(pl.col("target_key").is_not_null()).row(0, named=True)
    assert row["target"] == pytest.approx(
        np.log1p(min(max(row["score"], 0), tr.caps[row["target_key"]]))
    )
    assert out["target"].max() <= np.log1p(max(tr.caps.values())) + 1e-12
    assert (
        out.filter(pl.col("up_score") <= 0)["up_target"].null_count()
        == out.filter(pl.col("up_score") <= 0).height
    )
    again = MfeTargetTransform.from_dict(json.loads(json.dumps(tr.to_dict())))
    assert again.transform(test)["target"].equals(out["target"])
    with pytest.raises(LabelError):
        MfeTargetTransform().transform(test)


def test_forward_extremes_kernel_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    for h in (1, 7, 64):
        fm, fn = nbk.forward_max(x, h), nbk.forward_min(x, h)
        for i in range(500 - h):
            assert fm[i] == x[i + 1 : i + h + 1].max() and fn[i] == x[i + 1 : i + h + 1].min()
        assert np.isnan(fm[500 - h :]).all()


def test_numeric_regime_codes_from_the_feature_map_to_keys() -> None:
    """The vol_regime feature emits 0/1/2 codes; they must give the same keys as LOW/MID/HIGH names."""
    from datetime import datetime, timedelta

    n = 40
    close = 100.0 + np.sin(np.arange(n)) * 2
    ts = [datetime(2024, 1, 1) + timedelta(minutes=i) for i in range(n)]
    names = ["LOW", "MID", "HIGH"]
    codes = np.arange(n) % 3
    base = pl.DataFrame({"ts": ts, "close": close, "vol_5m": np.full(n, 0.01)}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
    by_code = fee_adjusted_mfe(base.with_columns(pl.Series("vol_regime", codes.astype(float))), 3, interval="1m")
    by_name = fee_adjusted_mfe(base.with_columns(pl.Series("vol_regime", [names[c] for c in codes])), 3,
                               interval="1m")
    assert by_code["target_key"].drop_nulls().len() > 0
    assert by_code["target_key"].to_list() == by_name["target_key"].to_list()
