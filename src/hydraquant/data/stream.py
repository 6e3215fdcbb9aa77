"""Streaming read of archive zips: inflate a member in line-aligned chunks, parse each.

Why: a busy aggTrades day is ~130 MB of CSV (tick data for a month is
gigabytes); holding the whole member, its parsed frame and the Parquet
writer's buffers at once made ingest peak at 4x the CSV size.  Chunks of a
few MiB bound memory to a small constant, and inflating runs in its own
thread (ISA-L and zlib release the GIL) while the previous chunk is parsed
and written, which is most of the speed-up on a 2-core box.

Integrity is unchanged: the member's CRC-32 and size are checked after the
last chunk, and callers stage everything they write until the iterator has
finished, so a corrupt tail leaves nothing visible.
"""

from __future__ import annotations

import logging
import os
import queue
import struct
import threading
import zipfile
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from hydraquant.data.binance_archive import (
    CsvPlan,
    csv_members,
    parse_archive_body,
    plan_archive_csv,
    shift_error_rows,
    zip_errors_as_data_error,
)
from hydraquant.errors import DataError

try:  # ISA-L: same output as zlib, ~3x faster; releases the GIL
    from isal.isal_zlib import crc32 as _crc32
    from isal.isal_zlib import decompressobj as _decompressobj
except ImportError:  # pragma: no cover - optional speed-up
    _crc32 = zlib.crc32
    _decompressobj = zlib.decompressobj

logger = logging.getLogger(__name__)

#: inflated bytes per chunk: ~130k aggTrades rows, one Parquet row group each
DEFAULT_CHUNK_BYTES = 8 << 20
_READ_BYTES = 1 << 20


def _member_offset(fh: Any, info: zipfile.ZipInfo) -> int:
    """Byte offset of a member's compressed data (after its local header)."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def inflate_lines(
    path: Path, info: zipfile.ZipInfo, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[bytes]:
    """Yield the member's bytes in pieces of >= ``chunk_bytes`` that end on a line break.

    The last piece holds whatever follows the final line break.  CRC-32 and
    size are verified once the stream ends; a mismatch raises BadZipFile.
    """
    if info.compress_type not in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED):
        raise NotImplementedError(f"{info.filename}: compression method {info.compress_type}")
    inflater = _decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    crc, size = 0, 0
    pending: list[bytes] = []
    pending_len = 0
    # compressed reads small against a chunk (deflate expands ~4-5x on trade CSVs)
    read_size = max(1024, min(_READ_BYTES, chunk_bytes // 8))
    with open(path, "rb") as fh:
        fh.seek(_member_offset(fh, info))
        left = info.compress_size
        while left > 0 or pending:
            if left > 0:
                raw = fh.read(min(read_size, left))
                if not raw:
                    raise EOFError(f"{info.filename}: {left} compressed bytes missing")
                left -= len(raw)
                try:
                    out = inflater.decompress(raw) if inflater is not None else raw
                    if left == 0 and inflater is not None:
                        out += inflater.flush()
                except Exception as exc:  # noqa: BLE001 - isal raises its own error type on corrupt streams
                    raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
                crc = _crc32(out, crc)
                size += len(out)
                if out:
                    pending.append(out)
                    pending_len += len(out)
                if left > 0 and pending_len < chunk_bytes:
                    continue
            block = pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_len = [], 0
            cut = block.rfind(b"\n") + 1 if left > 0 else len(block)
            if cut == 0:  # one line longer than a chunk: keep reading
                pending, pending_len = [block], len(block)
                continue
            if cut < len(block):
                pending, pending_len = [block[cut:]], len(block) - cut
            yield block if cut == len(block) else block[:cut]
    if inflater is not None and not inflater.eof:
        raise zipfile.BadZipFile(f"{info.filename}: deflate stream is truncated")
    if size != info.file_size or (crc & 0xFFFFFFFF) != info.CRC:
        raise zipfile.BadZipFile(f"CRC/size mismatch in {info.filename}")


def read_ahead(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Run ``items`` in a worker thread, ``depth`` items ahead of the consumer.

    Bounded, so memory stays at ``depth + 2`` items; an exception in the
    producer is re-raised in the consumer at the point it would have occurred.
    Abandoning the iterator (consumer error) stops the producer.
    """
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put(("error", exc))

    worker = threading.Thread(target=produce, name="hq-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            tag, value = q.get()
            if tag == "end":
                return
            if tag == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)


def parse_workers(requested: int | None = None) -> int:
    """Threads that parse chunks: one core is left to inflating and writing; at most 8.

    On 2 cores that is one parse thread: a second one bought no speed (the
    box is CPU-bound) and held two more chunks in memory (BENCHMARKS.md).
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"workers must be >= 1, got {requested}")
        return requested
    return max(1, min(8, (os.cpu_count() or 1) - 1))


def iter_archive_frames(
    path: Path | str,
    *,
    kind: str,
    market: str,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    workers: int | None = None,
) -> Iterator[tuple[pl.DataFrame, int]]:
    """Parse every CSV member of an archive zip chunk by chunk.

    Yields ``(frame, row_offset)``: frames in the lake schema, in file order,
    and the number of data rows before each (so validation can report
    file-global rows).  Concatenated, the frames equal
    :func:`hydraquant.data.binance_archive.parse_archive_zip`'s result.
    Errors are :class:`DataError` exactly as there.

    Chunks after a member's first are parsed ``workers`` at a time on a
    thread pool (the compiled parser and polars release the GIL), so on a
    many-core machine parsing keeps up with inflating; results still come
    out in file order and at most ``workers + 1`` chunks are in flight.
    """
    path = Path(path)
    n_workers = parse_workers(workers)
    rows_before = 0
    with zip_errors_as_data_error(path):
        with zipfile.ZipFile(path) as zf:
            members = csv_members(zf, path)
        with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="hq-parse") as pool:
            for info in members:
                member_rows = 0
                for frame in _member_frames(path, info, kind, market, chunk_bytes, pool, n_workers):
                    yield frame, rows_before + member_rows
                    member_rows += frame.height
                rows_before += member_rows


def _member_frames(
    path: Path, info: zipfile.ZipInfo, kind: str, market: str, chunk_bytes: int, pool: ThreadPoolExecutor, depth: int
) -> Iterator[pl.DataFrame]:
    """One member's frames in file order; the first data chunk is awaited alone (it fixes the epoch unit)."""
    source = f"{path}:{info.filename}"
    blocks = read_ahead(inflate_lines(path, info, chunk_bytes))
    plan: CsvPlan | None = None
    unit: int | None = None
    pending: deque[Future[tuple[pl.DataFrame, int | None]]] = deque()
    rows_done = 0

    def finish(future: Future[tuple[pl.DataFrame, int | None]]) -> pl.DataFrame:
        nonlocal rows_done, unit
        try:
            frame, unit = future.result()
        except DataError as exc:
            for _ in blocks:  # garbage from a damaged stream reads as a bad row: say "corrupt" if the CRC disagrees
                pass
            raise shift_error_rows(exc, rows_done) from None
        rows_done += frame.height
        return frame

    try:
        for block in blocks:
            start = 0
            if plan is None:
                plan = plan_archive_csv(block, kind=kind, market=market, source=source)
                if plan is None:
                    continue
                start = plan.body_start
            end = _body_end(block, start)
            if end <= start:
                continue
            first = rows_done == 0 and not pending
            pending.append(pool.submit(parse_archive_body, block, start, end, plan, source=source, unit=unit))
            if first or len(pending) > depth:
                yield finish(pending.popleft())
        while pending:
            yield finish(pending.popleft())
    finally:
        for future in pending:
            future.cancel()


def _body_end(block: bytes, start: int) -> int:
    """End of the data lines: trailing line breaks and blanks dropped."""
    end = len(block)
    while end > start and block[end - 1] in b"\r\n\t ":
        end -= 1
    return end


__all__ = ["DEFAULT_CHUNK_BYTES", "inflate_lines", "iter_archive_frames", "parse_workers", "read_ahead"]
