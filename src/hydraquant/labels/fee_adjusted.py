"""L3: fee-adjusted maximum favourable excursion / volatility, per direction x volatility regime (Hydra V3, seed 000).

Definition (seed 000, made explicit): at decision bar ``i`` the entry is
``price[i]``; over the next ``horizon`` bars (``i+1 .. i+horizon``)

    up_move   = (max(price) - entry) / entry - 2 * fee_pct
    down_move = (entry - min(price)) / entry - 2 * fee_pct
    up_score  = up_move / vol[i],  down_score = down_move / vol[i]

``vol`` is a causal volatility known at bar ``i`` (seed: ``vol_5m``, the
rolling std of 250 ms returns).  The seed keeps a row only if one direction is
profitable: direction "up" if ``up_move > down_move and up_move > 0``, else
"down" if ``down_move > 0``, else no target; the regression target of model
``<direction>_<regime>`` (e.g. ``up_low``) is that direction's score,
clipped to ``[0, p99]`` and passed through ``log1p``.

Leakage note: the seed takes the 99th percentile over the WHOLE sample, so
the clip applied to training rows depends on validation/test rows.  Here the
percentile is a fitted parameter: :class:`MfeTargetTransform` learns it on
the training portion only (``fit``) and applies it anywhere (``transform``);
fit it inside each CV fold.  Its state is plain JSON (``to_dict``).

The forward extremes are computed in O(n) with monotone deques, so labelling
every bar of a 250 ms day at 60 s and 300 s takes milliseconds (the seed's
per-point loop ran at ~2-15 k points/s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from hydraquant.labels import labels_nb as nbk
from hydraquant.labels._frame import (
    LabelError,
    check_bars,
    check_horizon,
    column_f64,
    masked,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)
from hydraquant.timeframes import interval_us

#: Seed 000: 0.04 % per side, 0.08 % round trip (Binance USD-M taker).
FEE_PCT_PER_SIDE = 0.0004
REGIMES = ("LOW", "MID", "HIGH")
TARGET_KEYS = tuple(f"{d}_{r.lower()}" for d in ("up", "down") for r in REGIMES)
REGIME_DTYPE = pl.Enum(list(REGIMES))
TARGET_KEY_DTYPE = pl.Enum(list(TARGET_KEYS))


def horizon_bars(horizon: int | str, interval: str | None) -> int:
    """A horizon given as bars (int) or as a duration ("60s") on bars of ``interval`` ("250ms" -> 240)."""
    if isinstance(horizon, str):
        if interval is None:
            raise LabelError(
                f"horizon {horizon!r} is a duration but no bar interval was given",
                hint="pass interval='250ms' (the bar size) or give the horizon in bars",
            )
        total, step = interval_us(horizon), interval_us(interval)
        if total % step:
            raise LabelError(f"horizon {horizon!r} is not a whole number of {interval!r} bars")
        return total // step
    return check_horizon(horizon)


def fee_adjusted_mfe(
    frame: pl.DataFrame,
    horizon: int | str,
    *,
    vol_col: str = "vol_5m",
    regime_col: str | None = "vol_regime",
    fee_pct: float = FEE_PCT_PER_SIDE,
    price_col: str = "close",
    use_high_low: bool = False,
    interval: str | None = None,
) -> pl.DataFrame:
    """Raw (unclipped) L3 targets for every bar.

    Parameters
    ----------
    horizon: bars, or a duration such as "60s"/"300s" (needs ``interval``).
    vol_col: causal volatility at the decision bar (same units as returns).
    regime_col: LOW/MID/HIGH volatility regime at the decision bar (a causal
        feature, e.g. the seed's rolling vol rank cut at 0.3/0.7), as names or as
        the ``vol_regime`` feature's codes 0/1/2; None to skip.
    fee_pct: fee PER SIDE; the round trip ``2*fee_pct`` is subtracted.
    use_high_low: seed 000 uses the bar price (close); True uses high/low.

    Returns
    -------
    ``ts, up_move, down_move, up_score, down_score, direction (Int8: 1 up, -1 down,
    null), score, vol_regime (Enum LOW/MID/HIGH), target_key (Enum "up_low" ...
    "down_high", or null), t_end``.
    Rows without a full horizon, or with missing/non-positive vol, are null.
    """
    h = horizon_bars(horizon, interval)
    cols = [price_col, vol_col] + (["high", "low"] if use_high_low else [])
    if regime_col is not None:
        cols.append(regime_col)
    frame = check_bars(frame, cols, where="fee_adjusted_mfe")
    if not fee_pct >= 0:
        raise LabelError(f"fee_pct must be >= 0, got {fee_pct!r}")
    step = resolve_interval_us(frame, interval)
    (entry,) = positive_prices(frame, [price_col], where="fee_adjusted_mfe")
    if use_high_low:
        high, low = positive_prices(frame, ["high", "low"], where="fee_adjusted_mfe")
    else:
        high = low = entry
    n = entry.shape[0]
    fmax = nbk.forward_max(high, h)
    fmin = nbk.forward_min(low, h)
    rt_fee = 2.0 * fee_pct
    up = (fmax - entry) / entry - rt_fee
    down = (entry - fmin) / entry - rt_fee
    vol = column_f64(frame, vol_col)
    idx = np.arange(n)
    full = idx + h < n
    valid = full & np.isfinite(vol) & (vol > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        up_score = up / vol
        down_score = down / vol
    is_up = (up > down) & (up > 0)
    is_down = ~is_up & (down > 0)
    has_dir = valid & (is_up | is_down)
    direction = np.where(is_up, 1, -1).astype(np.int8)
    score = np.where(is_up, up_score, down_score)

    out = pl.DataFrame(
        [
            frame["ts"],
            masked("up_move", up, valid, pl.Float64),
            masked("down_move", down, valid, pl.Float64),
            masked("up_score", up_score, valid, pl.Float64),
            masked("down_score", down_score, valid, pl.Float64),
            masked("direction", direction, has_dir, pl.Int8),
            masked("score", score, has_dir, pl.Float64),
        ]
    )
    if regime_col is not None:
        # integer codes + gather from a fixed Enum: no per-row string building
        rc = np.full(n, -1, dtype=np.int8)
        if frame[regime_col].dtype.is_numeric():
            # the vol_regime feature's codes: 0 = LOW, 1 = MID, 2 = HIGH (NaN in warm-up)
            codes = frame[regime_col].cast(pl.Float64).fill_null(np.nan).to_numpy()
            for code in range(len(REGIMES)):
                rc[codes == code] = code
        else:
            regime = frame[regime_col].cast(pl.String)
            for code, name in enumerate(REGIMES):
                hit = ((regime == name) | (regime == name.lower())).fill_null(False).to_numpy()
                rc[hit] = code
        key_ok = has_dir & (rc >= 0)
        key = np.where(is_up, 0, len(REGIMES)) + np.maximum(rc, 0)
        regime_enum = pl.Series("vol_regime", list(REGIMES), dtype=REGIME_DTYPE)
        key_enum = pl.Series("target_key", list(TARGET_KEYS), dtype=TARGET_KEY_DTYPE)
        out = out.with_columns(
            regime_enum.gather(masked("i", np.maximum(rc, 0), rc >= 0, pl.UInt32)),
            key_enum.gather(masked("i", key, key_ok, pl.UInt32)),
        )
    return out.with_columns(t_end_series(ts_us(frame), np.where(full, idx + h, -1), step))


@dataclass
class MfeTargetTransform:
    """Per-key 99th-percentile clip + log1p, fitted on TRAINING rows only.

    ``fit`` learns ``caps[key] = quantile(score, q)`` (linear interpolation,
    as numpy's percentile) for each ``target_key`` present in the training
    frame; ``transform`` adds ``target = log1p(clip(score, 0, caps[key]))``
    and per-direction ``up_target``/``down_target`` (each direction's score
    clipped with its own key's cap; null where that score is <= 0, as the
    seed only trains a direction on rows where it was profitable).
    Keys never seen in training give null targets rather than a silent
    full-sample cap.
    """

    quantile: float = 0.99
    caps: dict[str, float] = field(default_factory=dict)

    def fit(self, train: pl.DataFrame) -> MfeTargetTransform:
        if not 0 < self.quantile <= 1:
            raise LabelError(f"quantile must be in (0, 1], got {self.quantile!r}")
        for col in ("target_key", "score"):
            if col not in train.columns:
                raise LabelError(
                    f"MfeTargetTransform.fit needs column {col!r}",
                    hint="fit on the output of fee_adjusted_mfe(..., regime_col=...)",
                )
        caps = (
            train.filter(pl.col("target_key").is_not_null() & pl.col("score").is_not_null())
            .group_by("target_key")
            .agg(pl.col("score").quantile(self.quantile, interpolation="linear").alias("cap"))
        )
        self.caps = {str(k): float(v) for k, v in zip(caps["target_key"], caps["cap"], strict=True)}
        return self

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        if not self.caps:
            raise LabelError("MfeTargetTransform is not fitted", hint="call fit(train_rows) first")
        cap_of = (
            pl.col("target_key")
            .cast(pl.String)
            .replace_strict(self.caps, default=None, return_dtype=pl.Float64)
        )

        def _dir_target(direction: str) -> pl.Expr:
            key = (
                pl.col("vol_regime")
                .cast(pl.String)
                .replace_strict(
                    {r: f"{direction}_{r.lower()}" for r in REGIMES},
                    default=None,
                    return_dtype=pl.String,
                )
            )
            cap = key.replace_strict(self.caps, default=None, return_dtype=pl.Float64)
            s = pl.col(f"{direction}_score")
            return (
                pl.when(s > 0)
                .then(s.clip(0.0, cap).log1p())
                .otherwise(None)
                .alias(f"{direction}_target")
            )

        return frame.with_columns(
            pl.col("score").clip(0.0, cap_of).log1p().alias("target"),
            _dir_target("up"),
            _dir_target("down"),
        )

    def fit_transform(self, train: pl.DataFrame) -> pl.DataFrame:
        return self.fit(train).transform(train)

    def to_dict(self) -> dict[str, object]:
        return {"quantile": self.quantile, "caps": dict(self.caps)}

    @classmethod
    def from_dict(cls, state: Mapping[str, object]) -> MfeTargetTransform:
        caps = state.get("caps", {})
        if not isinstance(caps, Mapping):
            raise LabelError("MfeTargetTransform state: 'caps' must be a mapping of key -> float")
        return cls(
            quantile=float(state.get("quantile", 0.99)),
            caps={str(k): float(v) for k, v in caps.items()},
        )
