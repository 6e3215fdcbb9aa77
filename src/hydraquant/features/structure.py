"""F4 market structure: volume-profile POC/LVN, round numbers, the day's high/low.

Volume profile.  Seed 000 cut the bars into 5-minute blocks and gave every
bar of a block the POC (most traded price bin) and LVN (least traded bin
that traded at all) of *that same block* — computed with bars that had not
happened yet.  Two causal replacements:

* block (seed names ``dist_poc``, ``dist_lvn``, ``*_atr``): UTC-aligned
  blocks; a bar in block b uses the profile of block b-1, which is complete
  when block b starts.  No profile (NaN) when block b-1 has no bars.
* rolling (``dist_poc_roll`` ...): the profile of the trailing window ending
  at the current bar (its own volume is known at its close).

Volume is binned at the bar's close price (seed 000 used the last trade
price) on a *relative* grid of ``bin_bps`` basis points instead of the
seed's 10 USD, so the same setting works for BTC and DOGE.  Ties go to the
lowest price bin (pandas idxmax/idxmin on a sorted index did the same).
Distances are absolute price differences, and ``*_atr`` divides by seed
000's 5-minute ATR proxy mean(|return|) * price.
"""

from __future__ import annotations

from functools import partial

import numba as nb
import numpy as np
import polars as pl

from hydraquant.features.inputs import returns, rolling_mean, window
from hydraquant.features.registry import FeatureContext, feature
from hydraquant.features.volatility import atr
from hydraquant.timeframes import interval_us

GROUP = "structure"
PROFILE = {"block": "5m", "bin_bps": 2.0}
ROLL_PROFILE = {"window": "5m", "bin_bps": 2.0}
ATR_PROXY_WINDOW = "5m"
NEAR_ATR = 0.5  # within half an ATR(14) of the day's extreme counts as "near"


# --------------------------------------------------------------------------- bins


def _bin_width(bin_bps: float) -> float:
    return float(np.log1p(bin_bps * 1e-4))


def price_bins(close: np.ndarray, bin_bps: float) -> np.ndarray:
    """Index of the log-price bin of each close (float; NaN for missing/non-positive prices)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.log(np.where(close > 0, close, np.nan))
    return np.round(logp / _bin_width(bin_bps))


def bin_price(idx: np.ndarray, bin_bps: float) -> np.ndarray:
    """Price at the centre of a log bin."""
    return np.exp(idx * _bin_width(bin_bps))


# --------------------------------------------------------------------------- block profile


def block_profile_levels(
    ts: pl.Series, close: np.ndarray, volume: np.ndarray, *, block_us: int, bin_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """POC and LVN prices from the PREVIOUS completed UTC block, per bar.

    One compiled pass over the bars in time order: each block's (bin, volume)
    profile is summed in bar order, and its extremes are handed to the bars of
    the block that follows it (block id + 1; NaN after a block without bars).
    Bars with a missing timestamp, price or volume neither count nor get levels.
    """
    epoch = ts.dt.epoch("us")
    has_ts = ~epoch.is_null().to_numpy()
    block = np.floor_divide(epoch.fill_null(0).to_numpy(), int(block_us))
    bins = price_bins(np.asarray(close, dtype=np.float64), bin_bps)
    vol = np.asarray(volume, dtype=np.float64)
    valid = has_ts & np.isfinite(bins) & ~np.isnan(vol)
    ibins = np.where(valid, bins, 0).astype(np.int64)
    order = None
    if block.shape[0] > 1 and (np.diff(block) < 0).any():  # not in time order: work sorted
        order = np.argsort(block, kind="stable")
        block, ibins, valid, vol = block[order], ibins[order], valid[order], vol[order]
    poc_bin, lvn_bin = _block_profile(block, ibins, valid, np.where(valid, vol, 0.0))
    if order is not None:
        poc_bin[order], lvn_bin[order] = poc_bin.copy(), lvn_bin.copy()
    poc_bin[~has_ts] = np.nan
    lvn_bin[~has_ts] = np.nan
    return bin_price(poc_bin, bin_bps), bin_price(lvn_bin, bin_bps)


@nb.njit(cache=True)
def _extremes(bins: np.ndarray, volume: np.ndarray) -> tuple[float, float]:  # pragma: no cover
    """(POC bin, LVN bin) of a profile with ascending bins; ties go to the lowest bin."""
    hi_bin = lo_bin = bins[0]
    hi_vol = lo_vol = volume[0]
    for j in range(1, bins.shape[0]):
        if volume[j] > hi_vol:
            hi_bin, hi_vol = bins[j], volume[j]
        if volume[j] < lo_vol:
            lo_bin, lo_vol = bins[j], volume[j]
    return float(hi_bin), float(lo_bin)


@nb.njit(cache=True)
def _block_profile(
    block: np.ndarray, bins: np.ndarray, valid: np.ndarray, volume: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """POC/LVN bin of the previous block for bars sorted by block id.

    Ties go to the lowest bin; the LVN is the least traded bin that traded
    at all (a bin exists once a valid bar closed in it, even with 0 volume).
    """
    size = block.shape[0]
    poc = np.full(size, np.nan)
    lvn = np.full(size, np.nan)
    have_prev = False
    prev_block = 0
    prev_poc = np.nan
    prev_lvn = np.nan
    start = 0
    while start < size:
        b = block[start]
        end = start + 1
        while end < size and block[end] == b:
            end += 1
        if have_prev and prev_block == b - 1:
            for i in range(start, end):
                poc[i] = prev_poc
                lvn[i] = prev_lvn
        k = 0
        lo = 0
        hi = -1
        for i in range(start, end):
            if valid[i]:
                if k == 0 or bins[i] < lo:
                    lo = bins[i]
                if k == 0 or bins[i] > hi:
                    hi = bins[i]
                k += 1
        have_prev = k > 0
        if have_prev:
            # bins of one block span a narrow price range: sum into a dense scratch row
            # (bar order, as a stable sort would); a wide range (bad ticks) sorts instead
            if hi - lo < 4 * k + 64:
                width = hi - lo + 1
                acc = np.zeros(width)
                seen = np.zeros(width, np.bool_)
                for i in range(start, end):
                    if valid[i]:
                        acc[bins[i] - lo] += volume[i]
                        seen[bins[i] - lo] = True
                prev_poc, prev_lvn = _extremes(np.arange(lo, hi + 1)[seen], acc[seen])
            else:
                sub_bins = np.empty(k, np.int64)
                sub_vol = np.empty(k)
                k = 0
                for i in range(start, end):
                    if valid[i]:
                        sub_bins[k] = bins[i]
                        sub_vol[k] = volume[i]
                        k += 1
                rank = np.argsort(sub_bins, kind="mergesort")  # stable: bar order within a bin
                sub_bins = sub_bins[rank]
                sub_vol = sub_vol[rank]
                distinct = np.empty(k, np.int64)
                sums = np.empty(k)
                m = 0
                j = 0
                while j < k:
                    cur = sub_bins[j]
                    total = 0.0
                    while j < k and sub_bins[j] == cur:
                        total += sub_vol[j]
                        j += 1
                    distinct[m] = cur
                    sums[m] = total
                    m += 1
                prev_poc, prev_lvn = _extremes(distinct[:m], sums[:m])
            prev_block = b
        start = end
    return poc, lvn


# --------------------------------------------------------------------------- rolling profile


@nb.njit(cache=True)
def _rolling_profile(
    bins: np.ndarray, valid: np.ndarray, volume: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """POC/LVN bin over the trailing ``n`` bars (current included), one pass.

    Bin volumes are updated incrementally (add the new bar, drop the bar
    leaving the window); the extreme search scans only the window's bin range.
    """
    size = bins.shape[0]
    poc = np.full(size, np.nan)
    lvn = np.full(size, np.nan)
    lo_all = 0
    hi_all = -1
    first = True
    for i in range(size):
        if valid[i]:
            if first or bins[i] < lo_all:
                lo_all = bins[i]
            if first or bins[i] > hi_all:
                hi_all = bins[i]
            first = False
    if first:
        return poc, lvn
    width = hi_all - lo_all + 1
    vol = np.zeros(width)
    cnt = np.zeros(width, dtype=np.int64)
    for i in range(size):
        if valid[i]:
            b = bins[i] - lo_all
            vol[b] += volume[i]
            cnt[b] += 1
        j = i - n
        if j >= 0 and valid[j]:
            b = bins[j] - lo_all
            vol[b] -= volume[j]
            cnt[b] -= 1
            if cnt[b] == 0:
                vol[b] = 0.0  # no float residue once a bin empties
        if i < n - 1:
            continue
        # the window's bin range: scan its bars (n is small next to the series)
        lo = width
        hi = -1
        for k in range(i - n + 1, i + 1):
            if valid[k]:
                b = bins[k] - lo_all
                lo = min(lo, b)
                hi = max(hi, b)
        best_hi = -1
        best_lo = -1
        for b in range(lo, hi + 1):
            if cnt[b] == 0:
                continue
            if best_hi < 0 or vol[b] > vol[best_hi]:
                best_hi = b
            if best_lo < 0 or vol[b] < vol[best_lo]:
                best_lo = b
        if best_hi >= 0:
            poc[i] = best_hi + lo_all
            lvn[i] = best_lo + lo_all
    return poc, lvn


def rolling_profile_levels(
    close: np.ndarray, volume: np.ndarray, *, n: int, bin_bps: float
) -> tuple[np.ndarray, np.ndarray]:
    """POC and LVN prices of the trailing ``n``-bar volume profile, per bar."""
    bins = price_bins(close, bin_bps)
    vol = np.asarray(volume, dtype=np.float64)
    valid = ~np.isnan(bins) & ~np.isnan(vol)
    ibins = np.where(valid, bins, 0).astype(np.int64)
    poc, lvn = _rolling_profile(ibins, valid, np.where(valid, vol, 0.0), max(1, n))
    return bin_price(poc, bin_bps), bin_price(lvn, bin_bps)


# --------------------------------------------------------------------------- features


def atr_proxy(ctx: FeatureContext) -> np.ndarray:
    """Seed 000's 5-minute ATR: mean |return| over 5 m times price (once per build)."""
    n = window(ctx, ATR_PROXY_WINDOW)
    return ctx.cached(
        ("atr_proxy", n), lambda: rolling_mean(np.abs(returns(ctx)), n) * ctx.fcol("close")
    )


def _levels(ctx: FeatureContext) -> tuple[np.ndarray, np.ndarray]:
    """(POC, LVN) prices per bar; one profile per build serves the poc/lvn/raw/atr variants."""
    p = ctx.params
    close, volume = ctx.fcol("close"), ctx.fcol("volume")
    if p["kind"] == "block":
        block_us = max(interval_us(p["block"]), ctx.interval_us)
        ts = ctx.bars.get_column("ts")
        return ctx.cached(
            ("block_profile", block_us, p["bin_bps"]),
            partial(
                block_profile_levels, ts, close, volume, block_us=block_us, bin_bps=p["bin_bps"]
            ),
        )
    n = window(ctx, p["window"])
    return ctx.cached(
        ("rolling_profile", n, p["bin_bps"]),
        partial(rolling_profile_levels, close, volume, n=n, bin_bps=p["bin_bps"]),
    )


def _profile_distance(ctx: FeatureContext) -> np.ndarray:
    """|close - POC or LVN| of a causal volume profile, raw or over the 5 m ATR proxy."""
    poc, lvn = _levels(ctx)
    level = poc if ctx.params["level"] == "poc" else lvn
    dist = np.abs(ctx.fcol("close") - level)
    if ctx.params["atr"]:
        dist = dist / (atr_proxy(ctx) + 1e-6)
    return dist


for _level in ("poc", "lvn"):
    for _atr in (False, True):
        _sfx = "_atr" if _atr else ""
        feature(
            f"dist_{_level}{_sfx}",
            group=GROUP,
            params={"kind": "block", "level": _level, "atr": _atr, **PROFILE},
            warmup=1,
            warmup_time="10m",
            description=f"|close - {_level.upper()}| of the previous complete 5 m block's profile"
            + (" / 5 m ATR proxy" if _atr else ""),
        )(_profile_distance)
        feature(
            f"dist_{_level}_roll{_sfx}",
            group=GROUP,
            params={"kind": "rolling", "level": _level, "atr": _atr, **ROLL_PROFILE},
            warmup=1,
            warmup_time="5m",
            description=f"|close - {_level.upper()}| of the trailing 5 m volume profile"
            + (" / 5 m ATR proxy" if _atr else ""),
        )(_profile_distance)


def round_step(close: np.ndarray) -> np.ndarray:
    """The 'round number' grid for a price: one decade below its magnitude (60 000 -> 1 000)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 10.0 ** (np.floor(np.log10(np.where(close > 0, close, np.nan))) - 1.0)


@feature("dist_to_round_number", group=GROUP, params={"step": None})
def dist_to_round_number(ctx: FeatureContext) -> np.ndarray:
    """Distance from close to the nearest round level, in units of the level spacing (0..0.5).

    The spacing is ``params["step"]`` when given, else one decade below the
    price's magnitude (BTC 60 000 -> 1 000, ETH 2 500 -> 100).
    """
    close = ctx.fcol("close")
    step = ctx.params.get("step")
    spacing = np.full_like(close, float(step)) if step else round_step(close)
    units = close / spacing
    return np.abs(units - np.round(units))


def day_extremes(ctx: FeatureContext) -> tuple[np.ndarray, np.ndarray]:
    """The current UTC day's high and low so far, including the current bar (once per build)."""
    return ctx.cached(("day_extremes",), lambda: _day_extremes(ctx))


def _day_extremes(ctx: FeatureContext) -> tuple[np.ndarray, np.ndarray]:
    out = ctx.bars.select(
        pl.col("high").cum_max().over(pl.col("ts").dt.truncate("1d")).alias("hi"),
        pl.col("low").cum_min().over(pl.col("ts").dt.truncate("1d")).alias("lo"),
    )
    f = np.float64
    return out.get_column("hi").to_numpy().astype(f), out.get_column("lo").to_numpy().astype(f)


@feature("dist_daily_high_atr", group=GROUP, warmup=13)
def dist_daily_high_atr(ctx: FeatureContext) -> np.ndarray:
    """(day's high so far - close) / ATR(14): room below the intraday high."""
    hi, _ = day_extremes(ctx)
    return (hi - ctx.fcol("close")) / atr(ctx)


@feature("dist_daily_low_atr", group=GROUP, warmup=13)
def dist_daily_low_atr(ctx: FeatureContext) -> np.ndarray:
    """(close - day's low so far) / ATR(14): room above the intraday low."""
    _, lo = day_extremes(ctx)
    return (ctx.fcol("close") - lo) / atr(ctx)


def _near(dist: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(dist), np.nan, (dist <= NEAR_ATR).astype(np.float64))


@feature("near_daily_high", group=GROUP, warmup=13)
def near_daily_high(ctx: FeatureContext) -> np.ndarray:
    """1 when close is within 0.5 ATR(14) of the UTC day's high so far, else 0."""
    return _near(dist_daily_high_atr(ctx))


@feature("near_daily_low", group=GROUP, warmup=13)
def near_daily_low(ctx: FeatureContext) -> np.ndarray:
    """1 when close is within 0.5 ATR(14) of the UTC day's low so far, else 0."""
    return _near(dist_daily_low_atr(ctx))


@feature("near_daily_high_low", group=GROUP, warmup=13)
def near_daily_high_low(ctx: FeatureContext) -> np.ndarray:
    """Seed 004's combined flag: +1 near the day's high, -1 near its low, 0 neither or both."""
    return near_daily_high(ctx) - near_daily_low(ctx)
