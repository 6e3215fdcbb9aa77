"""Parameter sweeps over a grid of policy settings, in parallel threads.

Why threads: the kernel is compiled with ``nogil=True``, so threads run
truly in parallel without copying the market arrays into worker processes.
Results are returned in grid order whatever the number of workers, so a
sweep is reproducible across job counts.  Keep the row count: it is the
``n_trials`` the deflated Sharpe ratio needs.
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl

from hydraquant.backtest.costs import CostConfig
from hydraquant.backtest.engine import MarketData, run_backtest
from hydraquant.backtest.overfitting import deflated_sharpe_ratio
from hydraquant.errors import ConfigError
from hydraquant.policy.config import PolicyConfig

log = logging.getLogger(__name__)


def with_overrides(base: PolicyConfig, overrides: dict[str, Any]) -> PolicyConfig:
    """Copy of ``base`` with dotted keys replaced (``{"exit.sl_atr_mult": 1.5}``), re-validated."""
    data = base.model_dump()
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in data or name not in data[section]:
            raise ConfigError(
                f"unknown sweep parameter '{key}'", hint="use section.field, e.g. exit.sl_atr_mult"
            )
        data[section][name] = value
    return PolicyConfig.model_validate(data)


def expand_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Cartesian product of the grid in key order."""
    keys = list(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


def sweep(
    market: MarketData,
    base: PolicyConfig,
    grid: dict[str, list[Any]],
    costs: CostConfig | None = None,
    *,
    initial_cash: float = 10_000.0,
    n_jobs: int = 1,
    progress: bool = False,
) -> pl.DataFrame:
    """One row per grid point: the parameters, then the run's metrics, plus a ``dsr`` column.

    ``dsr`` deflates each row's per-bar Sharpe by the number of rows and the
    variance of Sharpe ratios across them (Bailey & Lopez de Prado).
    """
    points = expand_grid(grid)
    configs = [with_overrides(base, p) for p in points]

    def one(cfg: PolicyConfig) -> dict[str, float]:
        res = run_backtest(market, cfg, costs, initial_cash=initial_cash)
        eq = res.equity["equity"].to_numpy()
        return {**res.metrics, "n_obs": float(eq.size)}

    results: list[dict[str, float]] = [{}] * len(configs)
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("sweep", total=len(configs))
        bar.start()
    try:
        with ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool:
            futures = {pool.submit(one, c): k for k, c in enumerate(configs)}
            for fut, k in futures.items():
                results[k] = fut.result()
                if progress:
                    bar.advance(task)
    finally:
        if progress:
            bar.stop()
    frame = pl.DataFrame(
        [
            {**{k.replace(".", "__"): v for k, v in p.items()}, **r}
            for p, r in zip(points, results, strict=True)
        ]
    )
    srs = frame["sharpe_per_bar"].to_numpy()
    var = float(np.nanvar(srs, ddof=1)) if np.isfinite(srs).sum() > 1 else 0.0
    dsr = [
        deflated_sharpe_ratio(s, int(n), len(points), var)[0] if np.isfinite(s) else np.nan
        for s, n in zip(srs, frame["n_obs"].to_numpy(), strict=True)
    ]
    return frame.with_columns(pl.Series("dsr", dsr, dtype=pl.Float64))
