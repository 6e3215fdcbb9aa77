"""Seed 001 rule-based fallbacks: exact values and causality."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from hydraquant.models.rules import rule_based_regime, rule_based_signal_score


def test_signal_score_rules_exact() -> None:
    conf = [0.5, 0.5, 0.5, 0.5, 0.95, np.nan]
    regime = [1, 2, 0, 1, 1, 1]
    funding = [0.0, 0.0, 0.001, 0.001, 0.001, 0.0]
    cascade = [0.0, 0.5, 0.0, 0.5, 0.0, 0.0]
    got = rule_based_signal_score(conf, regime, funding, cascade)
    want = [0.5 * 1.1, 0.5 * 0.8 * 0.7, 0.5 * 1.1, 0.5 * 1.1 * 1.1 * 0.7, 1.0, np.nan]
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


def test_signal_score_accepts_names_and_missing_inputs() -> None:
    by_name = rule_based_signal_score([0.6, 0.6, 0.6], ["normal", "HIGH", "low"])
    np.testing.assert_allclose(by_name, [0.66, 0.48, 0.6])
    nan_inputs = rule_based_signal_score([0.6], [0], funding_rate=[np.nan], cascade_probability=[np.nan])
    assert nan_inputs[0] == pytest.approx(0.6)


def test_rule_regime_is_causal() -> None:
    rng = np.random.default_rng(0)
    n = 400
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    ts = [datetime(2024, 1, 1) + timedelta(minutes=5 * i) for i in range(n)]
    bars = pl.DataFrame({"ts": ts, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"))
    full = rule_based_regime(bars, window=20, interval="5m", vol_lookback=100)["regime"]
    prefix = rule_based_regime(bars.head(250), window=20, interval="5m", vol_lookback=100)["regime"]
    assert full.head(250).to_list() == prefix.to_list()
    assert full.drop_nulls().n_unique() >= 2
