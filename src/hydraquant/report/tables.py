"""Rich tables shared by commands: lake coverage."""

from __future__ import annotations

import polars as pl
from rich.table import Table


def coverage_table(cov: pl.DataFrame, *, title: str) -> Table:
    table = Table(title=title)
    for col in ("exchange", "market", "kind", "symbol", "first", "last", "rows", "days", "missing days", "gaps"):
        table.add_column(col, justify="right" if col in ("rows", "days", "missing days", "gaps") else "left")
    for r in cov.iter_rows(named=True):
        kind = r["kind"] + (f"/{r['interval']}" if r["interval"] else "")
        gaps = f"{r['gaps']} ({r['missing_bars']:,} bars)" if r["gaps"] else "0"
        table.add_row(
            r["exchange"], r["market"], kind, r["symbol"],
            f"{r['first']:%Y-%m-%d %H:%M:%S}", f"{r['last']:%Y-%m-%d %H:%M:%S}",
            f"{r['rows']:,}", str(r["days"]), str(r["missing_days"]), gaps,
        )
    return table
