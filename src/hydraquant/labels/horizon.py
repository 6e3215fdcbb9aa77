"""L1 fixed-horizon direction and L2 fee-adjusted profitable trade (HYDRA Direction Predictor / Signal Scorer).

Both compare the close at the decision bar ``i`` (the entry: we decide at the
close of bar ``i`` and take that close as the entry price) with the close of
bar ``i+horizon``.  The label is known at the close of bar ``i+horizon``, so
``t_end = ts[i+horizon] + interval``.  The last ``horizon`` rows have no full
horizon and are null — a partial-horizon label would be a different target
and biases the tail of every training set.

Horizons are in BARS: on gap-free bars N bars is N intervals; on bars with
gaps (e.g. 250 ms bars that drop empty slots, as seed 000 does) it is N
traded bars, and ``t_end`` reports the true wall-clock time.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hydraquant.labels._frame import (
    LabelError,
    check_bars,
    check_horizon,
    masked,
    positive_prices,
    resolve_interval_us,
    t_end_series,
    ts_us,
)


def _forward_return(frame: pl.DataFrame, horizon: int, price_col: str, where: str):
    (price,) = positive_prices(frame, [price_col], where=where)
    n = price.shape[0]
    idx = np.arange(n)
    valid = idx + horizon < n
    ret = np.full(n, np.nan)
    if n > horizon:
        ret[: n - horizon] = price[horizon:] / price[: n - horizon] - 1.0
    last = np.where(valid, idx + horizon, -1)
    return ret, valid, last


def fixed_horizon_direction(
    frame: pl.DataFrame,
    horizon: int,
    *,
    dead_zone: float | None = None,
    price_col: str = "close",
    interval: str | None = None,
) -> pl.DataFrame:
    """L1: did the price rise over the next ``horizon`` bars?

    Parameters
    ----------
    frame: one symbol's bars (``ts`` + ``price_col``), ts ascending.
    horizon: bars ahead (``close[i+horizon]`` vs ``close[i]``).
    dead_zone: None -> binary label (1 if the return is > 0, else 0, as the
        HYDRA seed: "1 if future_price > current_price").  A fraction
        (0.001 = 0.1 %) -> 3 classes: 1 if ret > dead_zone, -1 if
        ret < -dead_zone, 0 inside the band.
    interval: bar length ("1m"); inferred from the smallest ts step if None.

    Returns
    -------
    ``ts, label (Int8), ret (Float64: simple return over the horizon), t_end``.
    """
    horizon = check_horizon(horizon)
    frame = check_bars(frame, [price_col], where="fixed_horizon_direction")
    if dead_zone is not None and not dead_zone >= 0:
        raise LabelError(f"dead_zone must be >= 0 (a fraction), got {dead_zone!r}")
    step = resolve_interval_us(frame, interval)
    ret, valid, last = _forward_return(frame, horizon, price_col, "fixed_horizon_direction")
    if dead_zone is None:
        label = (ret > 0).astype(np.int8)
    else:
        label = np.where(ret > dead_zone, 1, np.where(ret < -dead_zone, -1, 0)).astype(np.int8)
    return pl.DataFrame(
        [
            frame["ts"],
            masked("label", label, valid, pl.Int8),
            masked("ret", ret, valid, pl.Float64),
            t_end_series(ts_us(frame), last, step),
        ]
    )


def profitable_trade(
    frame: pl.DataFrame,
    horizon: int,
    *,
    fee_bps: float = 10.0,
    price_col: str = "close",
    interval: str | None = None,
) -> pl.DataFrame:
    """L2 (HYDRA Signal Scorer): would a long / a short held ``horizon`` bars have been profitable after fees?

    ``fee_bps`` is the ROUND-TRIP cost in basis points (HYDRA: ~0.1 % = 10 bps),
    subtracted from the gross return; profitable means net return > 0.
    Both sides are returned so the caller picks the one matching the signal.

    Returns ``ts, long_profitable, short_profitable (Int8 1/0),
    long_ret_net, short_ret_net (Float64), t_end``.
    """
    horizon = check_horizon(horizon)
    frame = check_bars(frame, [price_col], where="profitable_trade")
    if not fee_bps >= 0:
        raise LabelError(f"fee_bps must be >= 0, got {fee_bps!r}")
    step = resolve_interval_us(frame, interval)
    ret, valid, last = _forward_return(frame, horizon, price_col, "profitable_trade")
    fee = fee_bps * 1e-4
    long_net = ret - fee
    short_net = -ret - fee
    return pl.DataFrame(
        [
            frame["ts"],
            masked("long_profitable", (long_net > 0).astype(np.int8), valid, pl.Int8),
            masked("short_profitable", (short_net > 0).astype(np.int8), valid, pl.Int8),
            masked("long_ret_net", long_net, valid, pl.Float64),
            masked("short_ret_net", short_net, valid, pl.Float64),
            t_end_series(ts_us(frame), last, step),
        ]
    )
