"""F7 calendar/session features: hour and weekday cycles, weekend, trading sessions, funding clock.

Why: crypto liquidity and volatility follow the clock (Asian/London/New York
hand-overs, weekend thin books, 8-hourly funding settlements).  All values
derive from the bar's own timestamp, so they are causal by construction.

Conventions:

* Clock features (hour, weekday, sessions) use the bar OPEN time ``ts`` in
  UTC, as seed 000 (``hour_sin = sin(2 pi hour / 24)`` with the integer hour).
  ``session_hour_sin/cos`` (seed 004) use the fractional hour
  (hour + minute/60 + ...), which distinguishes the four M15 bars of an hour.
* ``dow``: Monday = 0 ... Sunday = 6 (pandas ``dayofweek``); weekend = Sat/Sun.
* Sessions in fixed UTC hours, no daylight-saving shift (documented choice):
  Asia [00:00, 09:00), London [07:00, 16:00), New York [13:00, 22:00);
  they overlap, as the real sessions do.
* ``minutes_to_funding``: minutes from the bar CLOSE (``ts + interval``) to
  the next Binance USD-M settlement at 00/08/16 UTC strictly after it (a bar
  closing exactly at 08:00 sees 480: that settlement has just happened).

Names: seed 000 ``hour_sin``/``hour_cos``/``is_weekend``; seed 004
``is_asian_session``/``is_london_session``/``is_ny_session`` and
``session_hour_sin/cos``; seed 001 ``hour_of_day_*``/``day_of_week_*`` and the
brief's ``session_asia``/``session_london``/``session_ny`` are registered as
aliases (group "aliases") so every preset can name its seed's columns.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from hydraquant.features.registry import FeatureContext, feature
from hydraquant.timeframes import interval_us

GROUP = "calendar"
ALIAS_GROUP = "aliases"
TWO_PI = 2.0 * math.pi

SESSIONS = {"asia": (0, 9), "london": (7, 16), "ny": (13, 22)}
FUNDING_HOURS = 8  # Binance USD-M settles at 00:00, 08:00 and 16:00 UTC
_US_PER_HOUR = 3_600_000_000

_ts = pl.col("ts")


def _utc_clock(ctx: FeatureContext) -> tuple[np.ndarray, np.ndarray] | None:
    """(UTC hour 0-23, weekday Monday = 0) of every bar open, by integer arithmetic on the epoch.

    Why: the same numbers as ``dt.hour()``/``dt.weekday()`` for UTC (or naive)
    timestamps at a fraction of the cost of a calendar conversion, computed
    once per build for all clock features.  None (callers use the polars
    expression) for other time zones or missing timestamps.
    """
    ts = ctx.bars.get_column("ts")
    if not (isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone in (None, "UTC")):
        return None
    if ts.null_count():
        return None

    def compute() -> tuple[np.ndarray, np.ndarray]:
        hours = np.floor_divide(ts.dt.epoch("us").to_numpy(), _US_PER_HOUR)
        return np.mod(hours, 24), np.mod(np.floor_divide(hours, 24) + 3, 7)  # 1970-01-01: Thu

    return ctx.cached(("utc_clock",), compute)


def _hour_cycle(ctx: FeatureContext) -> pl.Series | pl.Expr:
    """sin/cos of the integer UTC hour of the bar open (seed 000)."""
    clock = _utc_clock(ctx)
    if clock is None or ctx.bars.height < 2:
        # (polars evaluates a 1-row frame with scalar kernels whose last bit can differ from
        # its column kernels, so a single bar keeps the expression to stay bit-identical)
        angle = TWO_PI * _ts.dt.hour().cast(pl.Float64) / 24.0
        return angle.sin() if ctx.params["fn"] == "sin" else angle.cos()
    # the expression's float ops, run by polars on the 24 possible hours, then looked up per bar
    angle = TWO_PI * pl.Series(np.arange(24, dtype=np.float64)) / 24.0
    table = (angle.sin() if ctx.params["fn"] == "sin" else angle.cos()).to_numpy()
    return table[clock[0]]


def _session_hour_cycle(ctx: FeatureContext) -> pl.Expr:
    """sin/cos of the fractional UTC hour of the bar open (seed 004 session_hour_*)."""
    us_of_day = (_ts - _ts.dt.truncate("1d")).dt.total_microseconds().cast(pl.Float64)
    angle = TWO_PI * us_of_day / 86_400e6
    return angle.sin() if ctx.params["fn"] == "sin" else angle.cos()


def _dow_cycle(ctx: FeatureContext) -> pl.Expr:
    """sin/cos of the weekday (Monday = 0)."""
    angle = TWO_PI * (_ts.dt.weekday() - 1).cast(pl.Float64) / 7.0
    return angle.sin() if ctx.params["fn"] == "sin" else angle.cos()


def _session(ctx: FeatureContext) -> pl.Expr:
    """1.0 while the bar opens inside the session's UTC hours, else 0.0."""
    start, end = SESSIONS[ctx.params["session"]]
    hour = _ts.dt.hour()
    return ((hour >= start) & (hour < end)).cast(pl.Float64)


for _fn in ("sin", "cos"):
    feature(f"hour_{_fn}", group=GROUP, params={"fn": _fn})(_hour_cycle)
    feature(f"dow_{_fn}", group=GROUP, params={"fn": _fn})(_dow_cycle)
    feature(f"session_hour_{_fn}", group=GROUP, params={"fn": _fn})(_session_hour_cycle)
    feature(
        f"hour_of_day_{_fn}",
        group=ALIAS_GROUP,
        params={"fn": _fn},
        description=f"alias of hour_{_fn} (seed 001 name)",
    )(_hour_cycle)
    feature(
        f"day_of_week_{_fn}",
        group=ALIAS_GROUP,
        params={"fn": _fn},
        description=f"alias of dow_{_fn} (seed 001 name)",
    )(_dow_cycle)

for _name, _seed_name in (
    ("asia", "is_asian_session"),
    ("london", "is_london_session"),
    ("ny", "is_ny_session"),
):
    feature(_seed_name, group=GROUP, params={"session": _name})(_session)
    feature(
        f"session_{_name}",
        group=ALIAS_GROUP,
        params={"session": _name},
        description=f"alias of {_seed_name}",
    )(_session)


@feature("is_weekend", group=GROUP)
def is_weekend(ctx: FeatureContext) -> pl.Expr | np.ndarray:
    """1.0 on Saturday and Sunday (UTC), else 0.0."""
    clock = _utc_clock(ctx)
    if clock is None:
        return (_ts.dt.weekday() >= 6).cast(pl.Float64)
    return (clock[1] >= 5).astype(np.float64)


@feature("minutes_to_funding", group=GROUP, params={"every_hours": FUNDING_HOURS})
def minutes_to_funding(ctx: FeatureContext) -> pl.Expr:
    """Minutes from the bar close to the next funding settlement (00/08/16 UTC)."""
    period_us = int(ctx.params["every_hours"]) * 3_600_000_000
    close = _ts + pl.duration(microseconds=interval_us(ctx.interval))
    since_midnight = (close - close.dt.truncate("1d")).dt.total_microseconds()
    into_period = since_midnight % period_us
    return (period_us - into_period).cast(pl.Float64) / 60e6
