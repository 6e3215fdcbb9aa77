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
from pathlib import Path

import polars as pl

from hydraquant.data.lake import Lake, WriteResult
from hydraquant.data.schema import conform, schema_for
from hydraquant.data.validate import (
    ValidationReport,
    check_unique_keys,
    repair,
    validate,
    validate_chunk,
)
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


def ingest_archive(
    lake: Lake,
    path: str | Path,
    *,
    kind: str,
    market: str,
    symbol: str,
    exchange: str = "binance",
    interval: str | None = None,
    chunk_bytes: int | None = None,
    workers: int | None = None,
    repairs: Iterable[str] = (),
) -> IngestResult:
    """Stream one Binance archive zip into the lake in bounded memory.

    Same contract as ``ingest(lake, IngestItem(parse_archive_zip(path), ...))``
    - every row validated (file-global row numbers in errors), nothing visible
    in the lake unless the whole file is good, re-imports de-duplicated - but
    the member is inflated, parsed, validated and written chunk by chunk
    (:mod:`hydraquant.data.stream`, :mod:`hydraquant.data.lake_stream`), so
    peak memory is a few chunks instead of several copies of the file, and
    inflating, parsing (``workers`` threads, default: cores - 1, at most 8)
    and writing overlap.  ``repairs`` (sort/dedupe) need the whole file, so
    they take the in-memory path.
    """
    from hydraquant.data.binance_archive import archive_kind, parse_archive_zip
    from hydraquant.data.stream import DEFAULT_CHUNK_BYTES, iter_archive_frames

    lake_kind = archive_kind(kind).lake_kind
    source = str(path)
    if set(repairs):
        frame = parse_archive_zip(path, kind=kind, market=market)
        item = IngestItem(frame, exchange, market, lake_kind, symbol, source, interval)
        return ingest(lake, item, repairs=repairs)
    carry = None
    with lake.open_writer(exchange=exchange, market=market, kind=lake_kind, symbol=symbol, interval=interval) as writer:
        for frame, _ in iter_archive_frames(
            path, kind=kind, market=market, chunk_bytes=chunk_bytes or DEFAULT_CHUNK_BYTES, workers=workers
        ):
            carry = validate_chunk(frame, lake_kind, source=source, carry=carry, interval=interval)
            writer.write(frame)
        writer.finish()
        if carry is not None and not carry.key_checked:
            # keys not provably unique chunk by chunk: check them over the staged file(s)
            schema = schema_for(lake_kind)
            keys = pl.read_parquet(writer.staged_files(), columns=list(schema.key))
            check_unique_keys(keys, lake_kind, source=source)
        written = writer.commit()
    report = carry.report() if carry is not None else ValidationReport(0, None, None)
    if report.gaps:
        log.info("%s: %d gap(s), %d missing bars", source, len(report.gaps), report.missing_bars)
    return IngestResult([written], [report])
