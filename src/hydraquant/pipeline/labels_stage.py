"""Labels stage: ``--spec NAME:key=value,...`` -> labeler over lake bars -> lake ``labels.<name>``.

Some labelers read indicator columns (L3 needs vol_5m/vol_regime, ATR barriers
need atr_14, the 4-state regime needs adx_14/atr_percentile); those are
computed here with the *causal* feature library, so a label never depends on
a centred or full-sample statistic it did not ask for.  Labels are targets:
they are stored apart from features and never enter a feature table.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from hydraquant import labels as L
from hydraquant.data.lake import Lake, parse_time_bound
from hydraquant.errors import HydraError
from hydraquant.features.registry import build_features
from hydraquant.pipeline.inputs import load_inputs


@dataclass(frozen=True)
class Labeler:
    func: Callable[..., pl.DataFrame]
    description: str
    needs: Callable[[dict[str, Any]], dict[str, str]] = lambda p: {}  # feature -> keyword it fills
    defaults: dict[str, Any] = field(default_factory=dict)
    positional: str | None = None  # first positional argument name (e.g. horizon)


def _atr_needs(p: dict[str, Any]) -> dict[str, str]:
    return {"atr_14": "atr_col"} if p.get("unit") == "atr" else {}


def _exit_from_lagged_entry(frame: pl.DataFrame, horizon: int, *, side: int = 1, entry_lag: int = 12,
                            interval: str | None = None, **kwargs: Any) -> pl.DataFrame:
    """L6 on hypothetical positions: at every bar, a ``side`` position opened ``entry_lag`` bars earlier.

    The entry price is the close ``entry_lag`` bars back — known at t, so the
    label's inputs stay causal; only the label itself looks ``horizon`` ahead.
    """
    if side not in (1, -1) or entry_lag < 1:
        raise HydraError(f"exit label: side must be 1 or -1 and entry_lag >= 1 (got {side}, {entry_lag})")
    positions = frame.with_columns(pl.lit(side, dtype=pl.Int8).alias("side"),
                                   pl.col("close").shift(entry_lag).alias("entry_price"))
    table = L.exit_labels(positions.filter(pl.col("entry_price").is_not_null()), horizon, interval=interval, **kwargs)
    return frame.select("ts").join(table, on="ts", how="left")


LABELERS: dict[str, Labeler] = {
    "direction": Labeler(L.fixed_horizon_direction, "L1 up over the next N bars (dead_zone -> 3 class)",
                         defaults={"horizon": 12}, positional="horizon"),
    "profitable": Labeler(L.profitable_trade, "L2 fee-adjusted profitable long/short at a holding period",
                          defaults={"horizon": 12}, positional="horizon"),
    "mfe": Labeler(L.fee_adjusted_mfe, "L3 seed 000 fee-adjusted MFE / volatility per direction x regime",
                   needs=lambda p: {"vol_5m": "vol_col", "vol_regime": "regime_col"},
                   defaults={"horizon": "60s"}, positional="horizon"),
    "triple_barrier": Labeler(L.triple_barrier, "L4 TP/SL/max-hold barriers (pct or ATR), long/short/none",
                              needs=_atr_needs, defaults={"tp": 0.02, "sl": 0.01, "horizon": 60}),
    "hydra_regime": Labeler(L.hydra_regime, "L5 HYDRA 7-class regime (forward label by default)",
                            defaults={"window": 60}, positional="window"),
    "trend_regime": Labeler(L.trend_regime, "L5 3-class ranging/up/down (seed 002)"),
    "market_state": Labeler(L.market_state, "L5 4-state STRONG_TREND/RANGING/VOLATILE/CHOPPY",
                            needs=lambda p: {"adx_14": "adx_col", "atr_percentile": "atr_pct_col"}),
    "exit": Labeler(_exit_from_lagged_entry, "L6 exit-now-beats-holding for a position opened entry_lag bars ago",
                    defaults={"horizon": 12}, positional="horizon"),
    "turning_points": Labeler(L.turning_points, "L7 Peak/Slope/Bottom over horizons H0-H5 (seed 003)"),
    "cusum": Labeler(L.cusum_filter, "L9 CUSUM event filter", defaults={"threshold": 0.005},
                     positional="threshold"),
}


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"triple_barrier:tp=0.02,sl=0.01,horizon=60"`` -> name and typed parameters."""
    name, _, rest = spec.partition(":")
    name = name.strip()
    if name not in LABELERS:
        raise HydraError(f"unknown label spec {name!r}", hint=f"use one of: {', '.join(LABELERS)}")
    params: dict[str, Any] = dict(LABELERS[name].defaults)
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, raw = item.partition("=")
        if not eq:
            raise HydraError(f"invalid label parameter {item!r} in {spec!r}", hint="use key=value, e.g. horizon=60")
        try:
            params[key.strip()] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            params[key.strip()] = raw.strip()
    return name, params


def label_frame(bars: pl.DataFrame, name: str, params: dict[str, Any], interval: str) -> pl.DataFrame:
    """Run one labeler on one symbol's bars; returns ts, labels, t_end, side info."""
    labeler = LABELERS[name]
    kwargs = dict(params)
    needs = labeler.needs(kwargs)
    if needs:
        feats = build_features(bars.drop("symbol", strict=False), list(needs), interval=interval)
        bars = bars.with_columns(feats.select(list(needs)))
        for feature, keyword in needs.items():
            kwargs.setdefault(keyword, feature)
    args = [kwargs.pop(labeler.positional)] if labeler.positional else []
    try:
        return labeler.func(bars, *args, interval=interval, **kwargs)
    except TypeError as exc:
        raise HydraError(f"label spec {name}: {exc}", hint=f"see `help(hydraquant.labels.{labeler.func.__name__})`") from None


def build_label_table(
    lake: Lake,
    spec: str,
    symbols: list[str],
    interval: str,
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    source: str = "auto",
    exchange: str | None = None,
    market: str | None = None,
) -> dict[str, pl.DataFrame]:
    name, params = parse_spec(spec)
    inputs = load_inputs(lake, symbols, interval, start=start, end=end, source=source,
                         exchange=exchange, market=market)
    t0 = parse_time_bound(start)
    out = {}
    for (symbol,), bars in inputs.bars.group_by(["symbol"], maintain_order=True):
        table = label_frame(bars, name, params, interval)
        if t0 is not None:
            table = table.filter(pl.col("ts") >= t0)
        lake.write(table, exchange=inputs.source.exchange, market=inputs.source.market, kind=f"labels.{name}",
                   symbol=str(symbol), interval=interval, metadata={"hydraquant.label_spec": spec})
        out[str(symbol)] = table
    return out
