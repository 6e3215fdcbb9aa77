"""Incremental, staged lake writes: chunks in, Parquet row groups out, rename at the end.

Why: tick files are too big to hold whole (see :mod:`hydraquant.data.stream`).
Each validated chunk becomes one row group of a staged temp file per
partition, written by a background thread while the next chunk is parsed;
nothing is visible in the lake until :meth:`StagedWriter.commit` renames the
files into place, and :meth:`StagedWriter.abort` (or an exception inside the
``with`` block) deletes them.  A partition that already exists is merged
(de-duplicated on the kind's key, last write wins) at commit, exactly like
:meth:`hydraquant.data.lake.Lake.write`.

Encoding: timestamps and integer ids of tick data are monotone, so
DELTA_BINARY_PACKED shrinks them to a few bits per row before the codec
runs; prices and sizes repeat, so they keep dictionary encoding.  For a 2 M-row
day that is 10.5 MiB instead of 18.2 MiB (zstd) at ~half the write CPU of
polars' default-encoded writer (BENCHMARKS.md, Ingest).
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from hydraquant.errors import LakeError

if TYPE_CHECKING:
    from hydraquant.data.lake import TableId, WriteResult

log = logging.getLogger(__name__)


def parquet_options(schema: pa.Schema, compression: str) -> dict[str, Any]:
    """Writer options: delta-encode integer/time columns, dictionary for the rest."""
    delta = {
        f.name: "DELTA_BINARY_PACKED"
        for f in schema
        if pa.types.is_integer(f.type) or pa.types.is_timestamp(f.type)
    }
    dictionary = [f.name for f in schema if f.name not in delta]
    return {
        "compression": compression,
        "use_dictionary": dictionary,
        "column_encoding": delta,
        "write_statistics": True,
    }


class StagedWriter:
    """Append validated chunks (in time order) of one lake table; commit or abort atomically.

    Not thread-safe; one producer.  Partitions follow ``ts`` (day or month),
    so a chunk may close one partition and open the next.
    """

    def __init__(
        self,
        table: TableId,
        directory: Path,
        *,
        partition: str,
        key: list[str],
        compression: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.table = table
        self.directory = directory
        self._fmt = "%Y-%m" if partition == "month" else "%Y-%m-%d"
        self._key = key
        self._compression = compression
        self._metadata = metadata
        self._staged: dict[str, Path] = {}  # period -> temp file, in write order
        self._writer: pq.ParquetWriter | None = None
        self._period: str | None = None
        self._rows = 0
        self._queue: queue.Queue[tuple[str, pa.Table] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="hq-lake-writer", daemon=True)
        self._thread.start()
        self._done = False

    # ------------------------------------------------------------ producer side
    def write(self, frame: pl.DataFrame) -> None:
        """Queue one chunk (already conformed and validated) for writing."""
        self._raise_pending()
        if frame.height == 0:
            return
        self._rows += frame.height
        ts = frame.get_column("ts")
        first, last = ts[0].strftime(self._fmt), ts[-1].strftime(self._fmt)
        if first == last:  # the common case: formatting two values, not every row
            self._put(first, frame)
            return
        bucket = ts.dt.year().cast(pl.Int32) * 12 + ts.dt.month().cast(pl.Int32)
        if self._fmt == "%Y-%m-%d":
            bucket = ts.dt.epoch("d").cast(pl.Int32)
        starts = [0, *(bucket.diff().fill_null(0) != 0).arg_true().to_list(), frame.height]
        for lo, hi in itertools.pairwise(starts):
            part = frame.slice(lo, hi - lo)
            self._put(part.get_column("ts")[0].strftime(self._fmt), part)

    def _put(self, period: str, frame: pl.DataFrame) -> None:
        self._queue.put((period, frame.to_arrow()))

    def staged_files(self) -> list[Path]:
        """Temp files written so far, in file order (call after :meth:`finish`)."""
        return list(self._staged.values())

    def finish(self) -> None:
        """Wait until every queued chunk is on disk (files still staged)."""
        if not self._done:
            self._done = True
            self._queue.put(None)
            self._thread.join()
        self._raise_pending()

    def commit(self) -> WriteResult:
        """Finish, merge into existing partitions, fsync and rename every staged file into place."""
        from hydraquant.data.lake import WriteResult

        self.finish()
        added = 0
        targets: list[tuple[Path, Path]] = []
        try:
            for period, tmp in self._staged.items():
                target = self.directory / f"{period}.parquet"
                new_rows = pq.ParquetFile(tmp).metadata.num_rows
                if target.exists():
                    existing = pl.read_parquet(target)
                    merged = pl.concat([existing, pl.read_parquet(tmp)], how="diagonal_relaxed")
                    merged = merged.unique(subset=self._key, keep="last", maintain_order=True)
                    merged = merged.sort(
                        ["ts", *[k for k in self._key if k != "ts"]], maintain_order=True
                    )
                    self._write_whole(merged, tmp)
                    added += merged.height - existing.height
                else:
                    added += new_rows
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                targets.append((tmp, target))
        except BaseException:
            self.abort()
            raise
        for tmp, target in targets:
            os.replace(tmp, target)
        self._staged.clear()
        log.info("lake: %s +%d rows (%d files, streamed)", self.table.label(), added, len(targets))
        return WriteResult(self.table, self._rows, added, tuple(t for _, t in targets))

    def abort(self) -> None:
        """Drop everything staged; the lake is left as it was."""
        if not self._done:
            self._done = True
            self._queue.put(None)
            self._thread.join()
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None or self._staged:
            self.abort()

    # ------------------------------------------------------------ writer thread
    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise LakeError(f"cannot write {self.table.label()}: {error}") from error

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self._error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self._write_chunk(*item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producer
                self._error = exc
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        except BaseException as exc:  # noqa: BLE001
            self._error = self._error or exc

    def _write_chunk(self, period: str, table: pa.Table) -> None:
        if period != self._period:
            if self._writer is not None:
                self._writer.close()
            if period in self._staged:
                raise LakeError(
                    f"{self.table.label()}: rows of {period} arrived after a later period"
                )
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{period}.{uuid.uuid4().hex}.tmp"
            self._staged[period] = tmp
            schema = table.schema.with_metadata(self._metadata) if self._metadata else table.schema
            self._writer = pq.ParquetWriter(
                tmp, schema, **parquet_options(schema, self._compression)
            )
            self._period = period
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=table.num_rows)

    def _write_whole(self, frame: pl.DataFrame, path: Path) -> None:
        table = frame.to_arrow()
        if self._metadata:
            table = table.replace_schema_metadata(self._metadata)
        pq.write_table(table, path, **parquet_options(table.schema, self._compression))


__all__ = ["StagedWriter", "parquet_options"]
