"""Execution costs: maker/taker fees, spread, slippage (fixed or volatility-scaled), funding.

Why market and limit fills differ: entries, stops, model/timeout/guard exits
and liquidations cross the spread and pay taker fees; take-profits and
partial closes rest as limit orders (maker fee, no spread, no slippage).
Volatility-scaled slippage adds ``slippage_atr_frac * ATR / price`` using the
ATR known at the previous close -- a fill cannot know its own bar's ATR.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from pydantic import BaseModel, ConfigDict, Field

K_MAKER = 0
K_TAKER = 1
K_SPREAD_BPS = 2
K_SLIP_BPS = 3
K_SLIP_ATR = 4
K_FUNDING = 5
N_COST = 6


class CostConfig(BaseModel):
    """Fees and frictions; fractions (0.0004 = 4 bps) except the *_bps fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    maker_fee: float = Field(0.0002, ge=0.0, lt=0.1)
    taker_fee: float = Field(0.0004, ge=0.0, lt=0.1)
    spread_bps: float = Field(0.0, ge=0.0, description="full bid-ask spread; half is paid per fill")
    slippage_bps: float = Field(0.0, ge=0.0, description="fixed slippage per market fill")
    slippage_atr_frac: float = Field(0.0, ge=0.0, description="extra slippage = k * ATR / price")
    funding_rate: float = Field(0.0, description="per funding event when no rate array is given")
    funding_interval: str = Field("8h", description="funding settles at multiples of this (UTC)")

    def to_array(self) -> np.ndarray:
        a = np.zeros(N_COST, dtype=np.float64)
        a[K_MAKER] = self.maker_fee
        a[K_TAKER] = self.taker_fee
        a[K_SPREAD_BPS] = self.spread_bps
        a[K_SLIP_BPS] = self.slippage_bps
        a[K_SLIP_ATR] = self.slippage_atr_frac
        a[K_FUNDING] = self.funding_rate
        return a


@njit(cache=True, nogil=True)
def market_fill_price(costs, raw: float, direction: int, atr: float) -> float:
    """Price of a market/stop fill: buys (direction +1) pay up, sells (-1) receive less."""
    slip = costs[K_SPREAD_BPS] * 0.5e-4 + costs[K_SLIP_BPS] * 1e-4
    k = costs[K_SLIP_ATR]
    if k > 0.0 and not math.isnan(atr) and raw > 0.0:
        slip += k * atr / raw
    return raw * (1.0 + direction * slip)


@njit(cache=True, nogil=True)
def fee_rate(costs, is_maker: bool) -> float:
    return costs[K_MAKER] if is_maker else costs[K_TAKER]
