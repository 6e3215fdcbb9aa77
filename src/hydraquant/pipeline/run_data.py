"""Run data stage: make sure the lake holds the run's bars, then load them with their side inputs.

Three sources (``data.source``): the simulator (trades -> bars at the run
interval), real files imported with the generic importers (klines resampled
when finer than the run interval), or tables already in the lake.  Whatever
the source, the rest of the run reads bars through :func:`load_inputs`, the
same path ``hydraquant features`` uses, so a run sees exactly what a user
would build by hand.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from hydraquant.data.lake import Lake
from hydraquant.errors import HydraError
from hydraquant.pipeline.inputs import BarInputs, load_inputs
from hydraquant.pipeline.run_config import DataSpec
from hydraquant.timeframes import interval_us


@dataclass(frozen=True)
class RunData:
    inputs: BarInputs
    symbols: list[str]
    interval: str
    exchange: str
    market: str
    content_sha256: str
    sim_summary: dict | None = None


def _resolve_files(patterns: tuple[str, ...], config_dir: Path | None) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        bases = [Path.cwd()] + ([config_dir] if config_dir else [])
        found: list[str] = []
        for base in bases:
            full = pattern if Path(pattern).is_absolute() else str(base / pattern)
            found = sorted(glob.glob(full))
            if found:
                break
        if not found:
            raise HydraError(
                f"data file(s) {pattern!r} not found (looked relative to {', '.join(map(str, bases))})",
                hint="presets on real data read ../shared/data/real from the project root; run from there "
                "or pass --set data.files=[...] with your own files",
            )
        out.extend(Path(f) for f in found)
    return out


def _import_files(lake: Lake, spec: DataSpec, config_dir: Path | None) -> tuple[list[str], str, str]:
    from hydraquant.data.importers import import_file
    from hydraquant.data.ingest import ingest_many

    items = [t.ingest_item(exchange=spec.exchange, market=spec.market, source=str(path))
             for path in _resolve_files(spec.files, config_dir) for t in import_file(path, kind="auto", symbol=None)]
    result = ingest_many(lake, items)
    tables = [w.table for w in result.writes if w.table.kind == "klines"]
    if not tables:
        raise HydraError("data.files contained no klines", hint="list kline files (1m, 15m, ...) in data.files")
    symbols = sorted({t.symbol for t in tables})
    if spec.symbols:
        missing = set(spec.symbols) - set(symbols)
        if missing:
            raise HydraError(f"data.symbols {sorted(missing)} not found in data.files (have {symbols})")
        symbols = list(spec.symbols)
    exchange, market = tables[0].exchange, tables[0].market
    src_interval = spec.file_interval or tables[0].interval
    if src_interval and src_interval != spec.interval:
        from hydraquant.pipeline.bars_stage import build_bars

        if interval_us(spec.interval) < interval_us(src_interval):
            raise HydraError(f"cannot build {spec.interval} bars from {src_interval} klines",
                             hint="choose data.interval >= the files' interval")
        build_bars(lake, symbols, spec.interval, source="klines", from_interval=src_interval,
                   exchange=exchange, market=market)
    return symbols, exchange, market


def _simulate(lake: Lake, spec: DataSpec, progress: bool) -> tuple[list[str], str, str, dict]:
    from hydraquant.pipeline.bars_stage import build_bars
    from hydraquant.pipeline.simulate_stage import SIM_EXCHANGE, SIM_MARKET, simulate_into_lake

    # Re-running the same config rewrites identical partitions (the lake de-duplicates), so a
    # repeated run sees exactly the same market.
    params = spec.simulate.model_dump(exclude_none=True)
    summary = simulate_into_lake(lake, progress=progress, **params)
    symbols = summary.symbols
    build_bars(lake, symbols, spec.interval, exchange=SIM_EXCHANGE, market=SIM_MARKET, progress=progress)
    return symbols, SIM_EXCHANGE, SIM_MARKET, params


def content_hash(bars: pl.DataFrame) -> str:
    """sha256 over the bars' time and OHLCV values, per symbol in order: the data a model saw."""
    h = hashlib.sha256()
    for (symbol,), part in bars.sort(["symbol", "ts"]).group_by(["symbol"], maintain_order=True):
        h.update(str(symbol).encode())
        h.update(np.ascontiguousarray(part["ts"].dt.epoch("us").to_numpy()).tobytes())
        for col in ("open", "high", "low", "close", "volume"):
            if col in part.columns:
                h.update(np.ascontiguousarray(part[col].cast(pl.Float64).to_numpy()).tobytes())
    return h.hexdigest()


def prepare_run_data(lake: Lake, spec: DataSpec, *, config_dir: Path | None = None,
                     progress: bool = False) -> RunData:
    sim_summary = None
    if spec.source == "simulate":
        symbols, exchange, market, sim_summary = _simulate(lake, spec, progress)
        source = "bars"
    elif spec.source == "files":
        symbols, exchange, market = _import_files(lake, spec, config_dir)
        source = "klines"
    else:
        symbols, exchange, market = list(spec.symbols), spec.exchange, spec.market
        source = spec.bars
    inputs = load_inputs(lake, symbols, spec.interval, start=spec.start, end=spec.end, source=source,
                         exchange=exchange, market=market)
    return RunData(inputs=inputs, symbols=symbols, interval=spec.interval,
                   exchange=inputs.source.exchange, market=inputs.source.market,
                   content_sha256=content_hash(inputs.bars), sim_summary=sim_summary)
