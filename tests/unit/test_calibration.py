"""Calibration (SPEC M4): isotonic / Platt / temperature / none, JSON round trips, regression map."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hydraquant.models.calibration import (
    T_MAX,
    T_MIN,
    CalibrationError,
    IsotonicCalibrator,
    RegressionCalibrator,
    calibrator_from_json,
    fit_per_horizon,
    make_calibrator,
)
from hydraquant.validation.metrics import expected_calibration_error, log_loss

METHODS = ["isotonic", "platt", "temperature", "none"]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from the row's probabilities."""
    return (
        (rng.random(p.shape[0])[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, p.shape[1] - 1)
    )


def _overconfident(n: int, k: int, sharpen: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw probabilities softmax(sharpen * z) with labels drawn from the true softmax(z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.2
    y = _draw(_softmax(z), rng)
    return _softmax(sharpen * z), y


def _json_roundtrip(obj):
    return calibrator_from_json(json.loads(json.dumps(obj.to_json())))


# --------------------------------------------------------------------------- quality


@pytest.mark.parametrize("k", [2, 3])
def test_isotonic_lowers_ece_on_separate_slice(k: int) -> None:
    p, y = _overconfident(12_000, k, sharpen=3.0, seed=1)
    fit, test = slice(0, 6000), slice(6000, None)
    classes = list(range(k))
    cal = make_calibrator("isotonic").fit(p[fit], y[fit])
    q = cal.transform(p[test])
    ece_raw, _ = expected_calibration_error(y[test], p[test], classes)
    ece_cal, _ = expected_calibration_error(y[test], q, classes)
    assert ece_raw > 0.08  # the problem really is mis-calibrated
    assert ece_cal < ece_raw / 3
    assert np.allclose(q.sum(axis=1), 1.0)


def test_platt_improves_log_loss_on_separate_slice() -> None:
    p, y = _overconfident(10_000, 3, sharpen=2.5, seed=2)
    cal = make_calibrator("platt").fit(p[:5000], y[:5000])
    classes = [0, 1, 2]
    before = log_loss(y[5000:], p[5000:], classes)
    after = log_loss(y[5000:], cal.transform(p[5000:]), classes)
    assert after < before - 0.05


def test_platt_binary_under_confident_is_sharpened() -> None:
    p, y = _overconfident(8000, 2, sharpen=0.4, seed=3)
    cal = make_calibrator("platt").fit(p, y)
    assert cal.a[0] > 1.5  # slope > 1 sharpens an under-confident model
    q = cal.transform(p)
    assert np.allclose(q[:, 0], 1.0 - q[:, 1])
    assert log_loss(y, q, [0, 1]) < log_loss(y, p, [0, 1])


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_temperature_recovers_known_t(t_true: float) -> None:
    # raw = softmax(t_true * z), truth = softmax(z)  =>  softmax(log(raw) / T) is exact at T = t_true
    p, y = _overconfident(30_000, 3, sharpen=t_true, seed=4)
    cal = make_calibrator("temperature").fit(p, y)
    assert cal.temperature == pytest.approx(t_true, rel=0.06)
    q = cal.transform(p)
    assert np.array_equal(q.argmax(axis=1), p.argmax(axis=1))  # temperature keeps the ranking


@pytest.mark.parametrize(("sharpen", "bound"), [(25.0, T_MAX), (0.02, T_MIN)])
def test_temperature_respects_clamp(sharpen: float, bound: float) -> None:
    p, y = _overconfident(5000, 3, sharpen=sharpen, seed=5)
    cal = make_calibrator("temperature").fit(p, y)
    assert cal.temperature == pytest.approx(bound)
    assert T_MIN <= cal.temperature <= T_MAX
    assert cal.to_json()["temperature"] == cal.temperature


# --------------------------------------------------------------------------- exact values


def test_isotonic_binary_exact_pav_values() -> None:
    p1 = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([0, 1, 0, 1])
    cal = make_calibrator("isotonic").fit(p1, y)  # 1-D input = P(class 1)
    q = cal.transform(np.array([0.1, 0.2, 0.25, 0.3, 0.4, 0.0, 0.9]))
    # PAV pools (0.2, 0.3) -> 0.5; evaluation interpolates and clips outside [0.1, 0.4]
    assert np.allclose(q[:, 1], [0.0, 0.5, 0.5, 0.5, 1.0, 0.0, 1.0])
    assert np.allclose(q[:, 0], 1.0 - q[:, 1])


def test_isotonic_all_zero_row_falls_back_to_raw() -> None:
    maps = [{"x": [0.5, 0.8], "y": [0.0, 1.0]} for _ in range(3)]
    cal = calibrator_from_json({"method": "isotonic", "format": 1, "n_classes": 3, "maps": maps})
    raw = np.array([[0.34, 0.33, 0.33], [0.65, 0.25, 0.10]])
    q = cal.transform(raw)
    assert np.array_equal(q[0], raw[0])  # every map says 0: keep the uncalibrated row
    assert np.allclose(q[1], [1.0, 0.0, 0.0])  # 0.65 -> 0.5, others 0 -> renormalised


def test_none_is_identity() -> None:
    p, y = _overconfident(50, 3, 2.0, seed=6)
    cal = make_calibrator("none").fit(p, y)
    assert np.array_equal(cal.transform(p), p)


# --------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    raw=hnp.arrays(np.float64, (60, 3), elements=st.floats(0.001, 1.0)),
    labels=hnp.arrays(np.int64, 60, elements=st.integers(0, 2)),
    method=st.sampled_from(METHODS),
)
def test_rows_sum_to_one_and_lie_in_unit_interval(
    raw: np.ndarray, labels: np.ndarray, method: str
) -> None:
    p = raw / raw.sum(axis=1, keepdims=True)
    q = make_calibrator(method).fit(p, labels).transform(p)
    assert q.shape == p.shape
    assert np.allclose(q.sum(axis=1), 1.0)
    assert (q >= -1e-12).all() and (q <= 1 + 1e-12).all()


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("k", [2, 4])
def test_json_roundtrip_is_exact(method: str, k: int) -> None:
    p, y = _overconfident(3000, k, 2.0, seed=7)
    cal = make_calibrator(method).fit(p[:2000], y[:2000])
    back = _json_roundtrip(cal)
    assert back.method == method
    assert back.to_json() == cal.to_json()
    assert np.array_equal(back.transform(p[2000:]), cal.transform(p[2000:]))


def test_isotonic_json_matches_sklearn_prediction() -> None:
    from sklearn.isotonic import IsotonicRegression

    p, y = _overconfident(2000, 2, 2.0, seed=8)
    cal = IsotonicCalibrator().fit(p, y)
    ir = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p[:, 1], (y == 1) * 1.0)
    grid = np.linspace(-0.1, 1.1, 301)
    assert np.allclose(_json_roundtrip(cal).transform(grid)[:, 1], ir.predict(grid), atol=1e-12)


# --------------------------------------------------------------------------- per horizon


def test_fit_per_horizon_fits_one_calibrator_each() -> None:
    p0, y0 = _overconfident(8000, 3, 2.0, seed=9)
    p1, y1 = _overconfident(8000, 3, 0.5, seed=10)
    cals = fit_per_horizon({"h1": p0, "h12": p1}, {"h1": y0, "h12": y1}, "temperature")
    assert list(cals) == ["h1", "h12"]
    assert cals["h1"].temperature == pytest.approx(2.0, rel=0.08)
    assert cals["h12"].temperature == pytest.approx(0.5, rel=0.08)
    with pytest.raises(CalibrationError, match="h12"):
        fit_per_horizon({"h1": p0, "h12": p1}, {"h1": y0}, "isotonic")


# --------------------------------------------------------------------------- regression


def test_regression_calibrator_restores_scale_and_roundtrips() -> None:
    rng = np.random.default_rng(11)
    y = rng.normal(size=6000)
    pred = 0.3 * y + 0.1 * rng.normal(size=6000)  # shrunk toward 0, like a tree regressor
    pred[5] = np.nan
    cal = RegressionCalibrator().fit(pred[:3000], y[:3000])
    out = cal.transform(pred[3000:])
    ok = np.isfinite(pred[3000:])
    mse_raw = np.mean((pred[3000:][ok] - y[3000:][ok]) ** 2)
    mse_cal = np.mean((out[ok] - y[3000:][ok]) ** 2)
    assert mse_cal < 0.5 * mse_raw
    assert np.all(np.diff(cal.transform(np.linspace(-1, 1, 50))) >= 0)  # monotone
    assert np.isnan(cal.transform(np.array([np.nan]))[0])
    back = calibrator_from_json(json.loads(json.dumps(cal.to_json())))
    assert isinstance(back, RegressionCalibrator)
    assert np.array_equal(back.transform(pred), cal.transform(pred), equal_nan=True)


# --------------------------------------------------------------------------- errors


def test_errors_are_actionable() -> None:
    p, y = _overconfident(100, 3, 1.0, seed=12)
    with pytest.raises(CalibrationError, match="not fitted"):
        make_calibrator("isotonic").transform(p)
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        make_calibrator("beta")  # type: ignore[arg-type]
    with pytest.raises(CalibrationError, match=r"\[0, 3\)"):
        make_calibrator("platt").fit(p, y + 1)
    cal = make_calibrator("temperature").fit(p, y)
    with pytest.raises(CalibrationError, match="fitted on 3 classes"):
        cal.transform(p[:, :2])
    with pytest.raises(CalibrationError, match="unknown method"):
        calibrator_from_json({"method": "pickle"})
    with pytest.raises(CalibrationError, match="integer class indices"):
        make_calibrator("isotonic").fit(p, y.astype(float))
