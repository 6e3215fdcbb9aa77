"""Ingest = conform -> (opt-in repair) -> validate -> atomic lake write.

Every source path (archive fetch, file import, simulator) goes through
:func:`ingest_many`, so validation cannot be skipped by a new source.  All
tables of one call are validated before the first byte is written: a bad
table leaves the lake exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from hydraquant.data.lake import Lake, WriteResult
from hydraquant.data.schema import conform, schema_for
from hydraquant.data.validate import ValidationReport, repair, validate
from hydraquant.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestItem:
    frame: pl.DataFrame
    exchange: str
    market: str
    kind: str
    symbol: str
    source: str
    interval: str | None = None


@dataclass
class IngestResult:
    writes: list[WriteResult] = field(default_factory=list)
    reports: list[ValidationReport] = field(default_factory=list)

    @property
    def rows_added(self) -> int:
        return sum(w.rows_added for w in self.writes)

    @property
    def rows_in(self) -> int:
        return sum(w.rows_in for w in self.writes)


def prepare(item: IngestItem, repairs: Iterable[str] = ()) -> tuple[pl.DataFrame, ValidationReport]:
    """Conform and validate one item; returns the frame ready for the lake."""
    schema = schema_for(item.kind)
    frame = item.frame.drop("symbol") if "symbol" in item.frame.columns else item.frame
    try:
        frame = conform(frame, item.kind)
    except KeyError as exc:
        missing = exc.args[0]
        raise DataError(
            f"required column '{missing}' is missing for kind {item.kind}",
            file=item.source,
            column=missing,
            hint=f"{item.kind} needs {', '.join(schema.required)}; map columns with --map SOURCE=NAME",
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot convert to the {item.kind} schema: {exc}", file=item.source) from None
    actions = set(repairs)
    if actions:
        frame = repair(frame, item.kind, actions)
    report = validate(frame, item.kind, source=item.source, interval=item.interval)
    return frame, report


def ingest_many(lake: Lake, items: Iterable[IngestItem], *, repairs: Iterable[str] = ()) -> IngestResult:
    """Validate every item, then write them all (nothing is written if any is bad)."""
    items = list(items)
    prepared = [(item, *prepare(item, repairs)) for item in items]
    result = IngestResult()
    for item, frame, report in prepared:
        result.reports.append(report)
        result.writes.append(
            lake.write(
                frame,
                exchange=item.exchange,
                market=item.market,
                kind=item.kind,
                symbol=item.symbol,
                interval=item.interval,
                validated=True,
            )
        )
        if report.gaps:
            log.info("%s: %d gap(s), %d missing bars", item.source, len(report.gaps), report.missing_bars)
    return result


def ingest(lake: Lake, item: IngestItem, *, repairs: Iterable[str] = ()) -> IngestResult:
    return ingest_many(lake, [item], repairs=repairs)
