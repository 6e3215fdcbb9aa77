"""The Parquet lake: exchange/market/kind[/interval]/symbol/<period>.parquet.

Why this layout: every question users ask ("what do I have for BTCUSDT 1m on
the um market?", "re-import this month") maps to a directory, files are small
enough to rewrite atomically, and polars can lazily scan only the periods a
time range needs.

Guarantees:
* **Atomic**: a write stages every partition to a temp file, fsyncs, then
  renames them into place; if anything fails before the renames, the lake is
  untouched.  Bad input is rejected by validation *before* any staging.
* **De-duplicating**: re-importing overlapping data merges on the kind's key
  columns (last write wins) and re-sorts, so a re-run never doubles rows.
* **Schema-enforced**: known kinds are conformed to
  :mod:`hydraquant.data.schema`; derived tables (features, labels, datasets)
  keep their own columns but must have ``ts``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from hydraquant.data.lake_stream import StagedWriter, parquet_options
from hydraquant.data.schema import INTERVAL_KINDS, SCHEMAS, TS, conform
from hydraquant.errors import LakeError

log = logging.getLogger(__name__)

# Tables derived by later stages; their columns vary (feature lists), so the
# lake stores them as given (ts + symbol-free columns) with one file per day.
DERIVED_KINDS = frozenset({"features", "labels", "dataset", "predictions"})

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class TableId:
    exchange: str
    market: str
    kind: str
    symbol: str
    interval: str | None = None

    def directory(self, root: Path) -> Path:
        parts = [self.exchange, self.market, self.kind]
        if self.interval:
            parts.append(self.interval)
        parts.append(self.symbol)
        return root.joinpath(*parts)

    def label(self) -> str:
        kind = f"{self.kind}/{self.interval}" if self.interval else self.kind
        return f"{self.exchange}/{self.market}/{kind}/{self.symbol}"


@dataclass(frozen=True)
class WriteResult:
    table: TableId
    rows_in: int
    rows_added: int
    files: tuple[Path, ...]


def _check_name(value: str, what: str) -> str:
    if not value or not _NAME.match(value):
        raise LakeError(
            f"invalid {what} {value!r}",
            hint="use letters, digits, '_', '-' or '.' only (e.g. BTCUSDT, um, 1m)",
        )
    return value


def _period_key(kind: str) -> str:
    schema = SCHEMAS.get(kind)
    return schema.partition if schema else "day"


def _period_of(ts: pl.Expr, partition: str) -> pl.Expr:
    fmt = "%Y-%m" if partition == "month" else "%Y-%m-%d"
    return ts.dt.strftime(fmt)


def parse_time_bound(value: date | datetime | str | None, *, end: bool = False) -> datetime | None:
    """Parse a user bound. A bare date as ``end`` means the whole day is included."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise LakeError(
                f"cannot parse time {value!r}", hint="use ISO format: 2024-01-31 or 2024-01-31T12:00"
            ) from None
        if len(text) == 10:  # a bare date
            value = parsed.date()
        else:
            value = parsed
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    dt = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return dt + timedelta(days=1) if end else dt


#: Tick tables get delta-encoded ids/times and dictionary-encoded prices
#: (:func:`~hydraquant.data.lake_stream.parquet_options`); with those
#: encodings the codec costs little (zstd ~= lz4 ~= snappy in CPU for a 2 M-row
#: day, zstd 10% smaller), so zstd stays the default for every kind.
TICK_KINDS = frozenset({"aggTrades", "trades", "bookTicker"})
DEFAULT_COMPRESSION = "zstd"
_CODECS = frozenset({"zstd", "lz4", "snappy", "gzip", "brotli", "uncompressed"})


class Lake:
    """A Parquet lake rooted at ``root`` (created on first write).

    ``compression`` picks the Parquet codec: one name for every kind, or a
    ``{kind: codec}`` mapping overriding the default (zstd).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, compression: str | Mapping[str, str] | None = None
    ) -> None:
        self.root = Path(root).expanduser()
        given = {"*": compression} if isinstance(compression, str) else dict(compression or {})
        bad = sorted(c for c in given.values() if c not in _CODECS)
        if bad:
            raise LakeError(f"unknown Parquet compression {bad[0]!r}", hint=f"use one of {', '.join(sorted(_CODECS))}")
        self._compression = given

    def codec(self, kind: str) -> str:
        """The Parquet codec used for ``kind``'s partition files."""
        if kind in self._compression:
            return self._compression[kind]
        if "*" in self._compression:
            return self._compression["*"]
        return DEFAULT_COMPRESSION

    # ------------------------------------------------------------------ write
    def write(
        self,
        frame: pl.DataFrame,
        *,
        exchange: str,
        market: str,
        kind: str,
        symbol: str,
        interval: str | None = None,
        metadata: dict[str, str] | None = None,
        validated: bool = False,
    ) -> WriteResult:
        """Merge ``frame`` (one symbol, already validated) into the lake atomically.

        ``metadata`` (string key/values, e.g. the ordered feature list) is
        stored in every partition file's Parquet footer; read it back with
        :meth:`metadata`.  ``validated`` promises the frame is sorted by time
        with unique keys (what :func:`hydraquant.data.validate.validate`
        checks), so a brand-new partition is written without re-sorting.
        """
        table = self._table(exchange, market, kind, symbol, interval)
        if "symbol" in frame.columns:
            frame = frame.drop("symbol")
        if kind in SCHEMAS:
            frame = conform(frame, kind)
        elif "ts" not in frame.columns:
            raise LakeError(f"table {table.label()} needs a 'ts' column")
        if frame.height == 0:
            return WriteResult(table, 0, 0, ())
        key = self._key(kind, frame)
        partition = _period_key(kind)
        directory = table.directory(self.root)
        staged: list[tuple[Path, Path]] = []
        added = 0
        try:
            with_period = frame.with_columns(_period_of(pl.col("ts"), partition).alias("_period"))
            for (period,), part in with_period.group_by(["_period"], maintain_order=True):
                part = part.drop("_period")
                target = directory / f"{period}.parquet"
                before = 0
                if target.exists():
                    existing = pl.read_parquet(target)
                    before = existing.height
                    part = pl.concat([existing, part], how="diagonal_relaxed")
                    part = part.unique(subset=key, keep="last", maintain_order=True)
                    part = part.sort(["ts", *[k for k in key if k != "ts"]], maintain_order=True)
                elif not validated:
                    part = part.unique(subset=key, keep="last", maintain_order=True)
                    part = part.sort(["ts", *[k for k in key if k != "ts"]], maintain_order=True)
                added += part.height - before
                tmp = directory / f".{period}.{uuid.uuid4().hex}.tmp"
                directory.mkdir(parents=True, exist_ok=True)
                self._write_file(part, tmp, kind, metadata)
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                staged.append((tmp, target))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, target in staged:
            os.replace(tmp, target)
        log.info("lake: %s +%d rows (%d files)", table.label(), added, len(staged))
        return WriteResult(table, frame.height, added, tuple(t for _, t in staged))

    def _write_file(self, frame: pl.DataFrame, path: Path, kind: str, metadata: dict[str, str] | None) -> None:
        """Tick kinds get the streamed writer's encodings (delta ids/times), others polars' defaults."""
        if kind in TICK_KINDS:
            table = frame.to_arrow()
            if metadata:
                table = table.replace_schema_metadata(metadata)
            pq.write_table(table, path, **parquet_options(table.schema, self.codec(kind)))
        else:
            frame.write_parquet(path, compression=self.codec(kind), statistics=True, metadata=metadata)

    def open_writer(
        self,
        *,
        exchange: str,
        market: str,
        kind: str,
        symbol: str,
        interval: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StagedWriter:
        """A :class:`~hydraquant.data.lake_stream.StagedWriter` for chunked, validated input.

        Chunks must arrive in time order with the kind's schema; nothing is
        visible until ``commit()``.  Used by streamed archive ingest.
        """
        table = self._table(exchange, market, kind, symbol, interval)
        key = [c for c in SCHEMAS[kind].key] if kind in SCHEMAS else ["ts"]
        if kind == "trades":
            key = ["trade_id", "ts", "price", "qty"]
        return StagedWriter(
            table,
            table.directory(self.root),
            partition=_period_key(kind),
            key=key,
            compression=self.codec(kind),
            metadata=metadata,
        )

    @staticmethod
    def _key(kind: str, frame: pl.DataFrame) -> list[str]:
        if kind in SCHEMAS:
            key = [c for c in SCHEMAS[kind].key if c in frame.columns]
            # trades without ids: fall back to the full row identity
            if kind == "trades" and frame.get_column("trade_id").null_count() == frame.height:
                key = ["ts", "price", "qty", "is_buyer_maker"]
            return key
        return ["ts"]

    def _table(self, exchange: str, market: str, kind: str, symbol: str, interval: str | None) -> TableId:
        if kind not in SCHEMAS and not is_derived(kind):
            raise LakeError(
                f"unknown lake kind {kind!r}",
                hint=f"known kinds: {', '.join(sorted(set(SCHEMAS) | DERIVED_KINDS))}",
            )
        if kind in INTERVAL_KINDS and not interval:
            raise LakeError(f"kind {kind!r} needs an interval (e.g. 1m, 250ms)")
        if interval:
            _check_name(interval, "interval")
        return TableId(
            _check_name(exchange, "exchange"),
            _check_name(market, "market"),
            kind,
            _check_name(symbol, "symbol"),
            interval,
        )

    # ------------------------------------------------------------------ read
    def tables(
        self,
        kind: str | None = None,
        *,
        exchange: str | None = None,
        market: str | None = None,
        interval: str | None = None,
        symbols: Sequence[str] | None = None,
    ) -> list[TableId]:
        """Every table in the lake matching the filters (sorted)."""
        out: list[TableId] = []
        if not self.root.is_dir():
            return out
        for ex_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if exchange and ex_dir.name != exchange:
                continue
            for mk_dir in sorted(p for p in ex_dir.iterdir() if p.is_dir()):
                if market and mk_dir.name != market:
                    continue
                for kd_dir in sorted(p for p in mk_dir.iterdir() if p.is_dir()):
                    if kind and kd_dir.name != kind:
                        continue
                    k = kd_dir.name
                    interval_dirs = (
                        [(p.name, p) for p in sorted(kd_dir.iterdir()) if p.is_dir()]
                        if k in INTERVAL_KINDS or is_derived(k) and _has_interval_level(kd_dir)
                        else [(None, kd_dir)]
                    )
                    for iv, iv_dir in interval_dirs:
                        if interval and iv != interval:
                            continue
                        for sym_dir in sorted(p for p in iv_dir.iterdir() if p.is_dir()):
                            if symbols and sym_dir.name not in symbols:
                                continue
                            if any(sym_dir.glob("*.parquet")):
                                out.append(TableId(ex_dir.name, mk_dir.name, k, sym_dir.name, iv))
        return out

    def files(self, table: TableId, start: datetime | None = None, end: datetime | None = None) -> list[Path]:
        """Partition files of ``table`` that can hold rows in [start, end)."""
        directory = table.directory(self.root)
        files = sorted(directory.glob("*.parquet"))
        if start is None and end is None:
            return files
        partition = _period_key(table.kind)
        fmt = "%Y-%m" if partition == "month" else "%Y-%m-%d"
        lo = start.strftime(fmt) if start else ""
        hi = end.strftime(fmt) if end else "~"
        return [f for f in files if lo <= f.stem <= hi]

    def scan(
        self,
        kind: str,
        symbols: str | Iterable[str] | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        *,
        exchange: str | None = None,
        market: str | None = None,
        interval: str | None = None,
    ) -> pl.LazyFrame:
        """Lazy long frame ``ts, symbol, ...`` of one kind over [start, end).

        A bare date as ``end`` includes that whole day.  When a symbol exists
        in several exchanges/markets, pass ``exchange``/``market`` — mixing
        spot and futures prices silently would be a bug, so it is refused.
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        symbols = list(symbols) if symbols is not None else None
        t0, t1 = parse_time_bound(start), parse_time_bound(end, end=True)
        tables = self.tables(kind, exchange=exchange, market=market, interval=interval, symbols=symbols)
        if not tables:
            what = f"{kind}{'/' + interval if interval else ''}"
            raise LakeError(
                f"no {what} data in the lake at {self.root} for "
                f"{', '.join(symbols) if symbols else 'any symbol'}"
                + (f" (exchange={exchange})" if exchange else "")
                + (f" (market={market})" if market else ""),
                hint="check `hydraquant data status`, then fetch, import or simulate the data",
            )
        by_symbol: dict[str, list[TableId]] = {}
        for t in tables:
            by_symbol.setdefault(t.symbol, []).append(t)
        if symbols:
            missing = [s for s in symbols if s not in by_symbol]
            if missing:
                raise LakeError(
                    f"no {kind} data for {', '.join(missing)} in the lake at {self.root}",
                    hint="check `hydraquant data status`",
                )
        frames = []
        for sym, found in by_symbol.items():
            if len(found) > 1:
                options = ", ".join(f"{t.exchange}/{t.market}" + (f"/{t.interval}" if t.interval else "") for t in found)
                raise LakeError(
                    f"{kind} for {sym} exists in several places: {options}",
                    hint="pass --exchange/--market (and --interval) to choose one",
                )
            files = self.files(found[0], t0, t1)
            if not files:
                continue
            lf = pl.scan_parquet(files).with_columns(pl.lit(sym).alias("symbol"))
            frames.append(lf)
        if not frames:
            schema = SCHEMAS[kind].columns if kind in SCHEMAS else {"ts": TS}
            return pl.DataFrame(schema={"ts": TS, "symbol": pl.Utf8, **{k: v for k, v in schema.items() if k != "ts"}}).lazy()
        lf = pl.concat(frames, how="diagonal_relaxed")
        if t0 is not None:
            lf = lf.filter(pl.col("ts") >= t0)
        if t1 is not None:
            lf = lf.filter(pl.col("ts") < t1)
        cols = lf.collect_schema().names()
        ordered = ["ts", "symbol"] + [c for c in cols if c not in ("ts", "symbol")]
        return lf.select(ordered).sort(["symbol", "ts"])

    def metadata(self, table: TableId) -> dict[str, str]:
        """Key/value metadata of the table's newest partition file."""
        files = self.files(table)
        if not files:
            raise LakeError(f"table {table.label()} has no files in {self.root}")
        return dict(pl.read_parquet_metadata(files[-1]))

    def delete(self, table: TableId) -> None:
        shutil.rmtree(table.directory(self.root), ignore_errors=True)


def is_derived(kind: str) -> bool:
    """Derived tables: ``features``, ``labels``, ... optionally named: ``labels.triple_barrier``."""
    base, _, name = kind.partition(".")
    return base in DERIVED_KINDS and (not name or bool(_NAME.match(name)))


def _has_interval_level(kind_dir: Path) -> bool:
    """Derived tables may be stored with an interval level (features/250ms/SYM)."""
    for child in kind_dir.iterdir():
        if child.is_dir() and any(p.is_dir() for p in child.iterdir()):
            return True
    return False


def scan(
    kind: str,
    symbols: str | Iterable[str] | None = None,
    start: date | datetime | str | None = None,
    end: date | datetime | str | None = None,
    *,
    root: str | os.PathLike[str] | None = None,
    **filters: str | None,
) -> pl.LazyFrame:
    """Python API shortcut: ``scan("klines", ["BTCUSDT"], "2024-01-01", "2024-01-31", interval="1m")``.

    ``root`` defaults to ``$HYDRAQUANT_LAKE`` or ``./lake``.
    """
    root = root or os.environ.get("HYDRAQUANT_LAKE", "lake")
    return Lake(root).scan(kind, symbols, start, end, **filters)
