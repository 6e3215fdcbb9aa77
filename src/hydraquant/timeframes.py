"""Interval strings ("250ms", "1s", "15m", "4h", "1d", "1w") <-> durations.

One parser for the whole package so bars, resampling, features and the
Binance archive agree on what "1m" means (minutes; months are "1M" as in
Binance's kline intervals).
"""

from __future__ import annotations

import re
from datetime import timedelta

from hydraquant.errors import HydraError

_UNIT_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 7 * 86_400_000_000,
}
_PATTERN = re.compile(r"^(\d+)(us|ms|s|m|h|d|w)$")


def interval_us(interval: str) -> int:
    """Length of ``interval`` in microseconds; raises a clear error if malformed."""
    match = _PATTERN.match(interval.strip())
    if not match or int(match.group(1)) <= 0:
        raise HydraError(
            f"invalid interval {interval!r}",
            hint="use a positive number and a unit: 250ms, 1s, 5s, 1m, 15m, 1h, 4h, 1d, 1w",
        )
    return int(match.group(1)) * _UNIT_US[match.group(2)]


def interval_timedelta(interval: str) -> timedelta:
    return timedelta(microseconds=interval_us(interval))


def polars_every(interval: str) -> str:
    """The same interval in polars duration syntax (``1m`` -> ``1m``, ``250ms`` -> ``250ms``).

    Polars uses ``m`` for minutes and ``mo`` for months, as we do, but spells
    weeks ``w`` and microseconds ``us``; we normalise through microseconds so
    any valid interval maps to an exact duration.
    """
    return f"{interval_us(interval)}us"
