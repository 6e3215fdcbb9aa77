"""What every command gets: the effective config, the lake, a console."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer
from rich.console import Console

from hydraquant.config import HydraConfig
from hydraquant.data.lake import Lake


@dataclass(frozen=True)
class AppContext:
    config: HydraConfig
    debug: bool
    console: Console
    err: Console

    @property
    def lake(self) -> Lake:
        return Lake(self.config.lake.root)

    @property
    def download_dir(self) -> Path:
        return self.config.binance.cache_dir or (Path(self.config.lake.root) / "_downloads" / "binance")


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext), "CLI context not initialised"
    return obj


def split_symbols(values: list[str] | None) -> list[str]:
    """Accept ``--symbols A B``, ``--symbols A,B`` or repeated flags."""
    out: list[str] = []
    for v in values or []:
        out.extend(s.strip().upper() for s in v.split(",") if s.strip())
    return out
