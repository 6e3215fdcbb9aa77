"""Shared plumbing for file-family importers: reading, probing, typed parsing.

Why one module: every family needs the same three things done the same way —
open a possibly gzip/zip-wrapped file, turn text into typed columns while
naming the exact row/column that fails, and turn whatever the source calls
time (epoch s/ms/us/ns, ISO with or without offset, exchange-local wall
clock) into ``Datetime("us", "UTC")``.  Doing it once keeps the error
messages and the time conventions identical across families.
"""

from __future__ import annotations

import gzip
import io
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from hydraquant.data.schema import TS, conform
from hydraquant.errors import DataError, HydraError

_US = {"w": 7 * 86_400_000_000, "d": 86_400_000_000, "h": 3_600_000_000, "m": 60_000_000, "s": 1_000_000, "ms": 1_000, "us": 1}

# Fallback formats for strings polars cannot infer (LEAN, MT5, European dates).
_FALLBACK_FORMATS = (
    "%Y%m%d %H:%M",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
)
_NUMERIC = re.compile(r"^\s*-?\d+(\.\d*)?([eE][-+]?\d+)?\s*$")


@dataclass(frozen=True)
class ImportedTable:
    """One normalised table ready for validation and the lake.

    ``exchange``/``market`` are suggestions derived from the file family; the
    CLI may override them.  ``frame`` already has the lake schema of ``kind``.
    """

    kind: str
    symbol: str
    interval: str | None
    exchange: str
    market: str
    frame: pl.DataFrame = field(repr=False)
    source: str
    family: str

    def ingest_item(self, *, exchange: str | None = None, market: str | None = None,
                    interval: str | None = None, source: str | None = None):
        """This table as an :class:`~hydraquant.data.ingest.IngestItem`, with optional overrides."""
        from hydraquant.data.ingest import IngestItem

        return IngestItem(frame=self.frame, exchange=exchange or self.exchange, market=market or self.market,
                          kind=self.kind, symbol=self.symbol, interval=interval or self.interval,
                          source=source or self.source)


@dataclass(frozen=True)
class Request:
    """What the caller asked for, passed to every family parser."""

    path: Path
    kind: str
    symbol: str | None
    tz: str | None
    mapping: dict[str, str]


@dataclass(frozen=True)
class Source:
    """A decompressed file plus the cheap facts detection needs.

    ``container`` is ``csv`` (text table), ``lines`` (text without a table
    shape, e.g. websocket captures), ``json``, ``parquet`` or ``ipc``.
    ``header`` holds the *normalised* column names after ``--map`` renames,
    or ``None`` when the first line is data.
    """

    path: Path
    member: str
    data: bytes
    container: str
    delimiter: str = ","
    header: tuple[str, ...] | None = None
    first_row: tuple[str, ...] = ()
    raw_header: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return self.member.lower()

    @property
    def where(self) -> str:
        plain = self.member in (self.path.name, self.path.name.removesuffix(".gz"))
        return str(self.path) if plain else f"{self.path}!{self.member}"

    def has(self, *columns: str) -> bool:
        return self.header is not None and all(c in self.header for c in columns)

    def header_is(self, *columns: str) -> bool:
        return self.header is not None and tuple(self.header) == columns


# --------------------------------------------------------------------------- reading


def normalise_name(name: str) -> str:
    """``<TICKVOL>`` -> ``tickvol``, ``Adj Close`` -> ``adj_close``: one spelling for matching."""
    name = name.strip().strip("\ufeff").strip("<>").strip()
    return re.sub(r"[\s\-]+", "_", name).lower()


def _rename_map(columns: Sequence[str], mapping: dict[str, str]) -> dict[str, str]:
    """Source column -> normalised/mapped name; mapping keys match exactly or case-insensitively."""
    lower = {k.strip().lower(): v for k, v in mapping.items()}
    out: dict[str, str] = {}
    for col in columns:
        if col in mapping:
            out[col] = mapping[col]
        elif col.strip().lower() in lower:
            out[col] = lower[col.strip().lower()]
        elif normalise_name(col) in lower:
            out[col] = lower[normalise_name(col)]
        else:
            out[col] = normalise_name(col)
    return out


def _unwrap(path: Path, data: bytes) -> tuple[str, bytes]:
    member = path.name
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        member = member[:-3] if member.lower().endswith(".gz") else member
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            if len(names) != 1:
                raise HydraError(
                    f"{path}: zip holds {len(names)} files ({', '.join(names[:5])}); expected exactly one",
                    hint="unzip it and import the member files one by one",
                )
            member = names[0]
            data = zf.read(member)
    return member, data


def _sniff_delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in ("\t", ";", ",", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _split(line: str, delimiter: str) -> tuple[str, ...]:
    return tuple(f.strip().strip('"') for f in line.split(delimiter))


def _looks_numeric(fields: Sequence[str]) -> bool:
    return bool(fields) and all(_NUMERIC.match(f) for f in fields if f != "")


def open_source(path: Path, mapping: dict[str, str]) -> Source:
    """Read ``path`` (plain, .gz, .zip), classify the container and probe its header."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HydraError(f"cannot read {path}: {exc.strerror or exc}", hint="check the path") from None
    if not raw:
        raise DataError("file is empty", file=str(path), hint="nothing to import")
    try:
        member, data = _unwrap(path, raw)
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"corrupt compressed file: {exc}", file=str(path), hint="re-download it") from None
    if data[:4] == b"PAR1":
        cols = pl.read_parquet_schema(io.BytesIO(data)).keys()
        return _frame_source(path, member, data, "parquet", list(cols), mapping)
    if data[:6] == b"ARROW1" or data[:4] == b"FEA1":
        cols = pl.read_ipc_schema(io.BytesIO(data)).keys()
        return _frame_source(path, member, data, "ipc", list(cols), mapping)
    text_head = data[:65536].decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text_head.lstrip()
    if stripped[:1] in "[{":
        return Source(path, member, data, "json")
    first_line = text_head.splitlines()[0] if text_head.splitlines() else ""
    if re.match(r"^\d+ \{", first_line):
        return Source(path, member, data, "lines", first_row=(first_line[:200],))
    delim = _sniff_delimiter(first_line)
    fields = _split(first_line, delim)
    if _looks_numeric(fields) or re.match(r"^\d{8} \d{2}:\d{2}", fields[0] if fields else ""):
        return Source(path, member, data, "csv", delim, None, fields, None)
    renames = _rename_map(fields, mapping)
    header = tuple(renames[f] for f in fields)
    lines = text_head.splitlines()
    first_row = _split(lines[1], delim) if len(lines) > 1 else ()
    return Source(path, member, data, "csv", delim, header, first_row, fields)


def _frame_source(path: Path, member: str, data: bytes, container: str, cols: list[str], mapping: dict[str, str]) -> Source:
    renames = _rename_map(cols, mapping)
    return Source(path, member, data, container, header=tuple(renames[c] for c in cols), raw_header=tuple(cols))


def read_table(src: Source, *, columns: Sequence[str] | None = None) -> pl.DataFrame:
    """The whole table with normalised/mapped names; CSV columns stay strings for exact errors."""
    try:
        if src.container == "parquet":
            frame = pl.read_parquet(io.BytesIO(src.data))
        elif src.container == "ipc":
            frame = pl.read_ipc(io.BytesIO(src.data))
        elif src.container == "csv":
            frame = pl.read_csv(
                io.BytesIO(src.data),
                has_header=src.header is not None,
                separator=src.delimiter,
                infer_schema=False,
                truncate_ragged_lines=False,
                new_columns=None if src.header is not None else [f"column_{i + 1}" for i in range(len(src.first_row))],
            )
        else:
            raise HydraError(f"{src.where}: not a table ({src.container})")
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"cannot parse file as a table: {str(exc).splitlines()[0]}", file=src.where,
                        hint="check the delimiter and that every line has the same number of fields") from None
    if src.raw_header is not None:
        frame = frame.rename(dict(zip(frame.columns, src.header or ())))
    if frame.columns and len(set(frame.columns)) != len(frame.columns):
        raise DataError("duplicate column names after --map", file=src.where, hint="map each column to a distinct name")
    if columns is not None:
        require(frame, columns, src)
    return frame


def require(frame: pl.DataFrame, columns: Sequence[str], src: Source) -> None:
    for col in columns:
        if col not in frame.columns:
            raise DataError(
                f"missing column (found: {', '.join(frame.columns)})",
                file=src.where,
                column=col,
                hint=f"rename the source column with --map SOURCE={col}",
            )


# --------------------------------------------------------------------------- typed columns


def _first_failure(original: pl.Series, parsed: pl.Series) -> int | None:
    bad = original.is_not_null() & parsed.is_null()
    if original.dtype == pl.String:
        bad = bad & (original.str.strip_chars() != "")
    idx = bad.arg_true()
    return int(idx[0]) if idx.len() else None


def _raise_at(src: Source, original: pl.Series, row: int, column: str, what: str, hint: str) -> None:
    raise DataError(f"cannot read {original[row]!r} as {what}", file=src.where, row=row + 1, column=column, hint=hint)


def as_float(frame: pl.DataFrame, column: str, src: Source, *, scale: float | None = None) -> pl.Series:
    """Column as Float64; text that is not a number raises DataError at its row."""
    s = frame.get_column(column)
    if s.dtype == pl.String:
        parsed = s.str.strip_chars().cast(pl.Float64, strict=False)
    elif s.dtype == pl.Boolean:
        parsed = s.cast(pl.Float64)
    else:
        parsed = s.cast(pl.Float64, strict=False)
    row = _first_failure(s, parsed)
    if row is not None:
        _raise_at(src, s, row, column, "a number", "fix or remove that row")
    return parsed / scale if scale else parsed


def as_int(frame: pl.DataFrame, column: str, src: Source) -> pl.Series:
    s = frame.get_column(column)
    if s.dtype == pl.String:
        parsed = s.str.strip_chars().cast(pl.Int64, strict=False)
    elif s.dtype.is_float():
        parsed = s.cast(pl.Int64, strict=False)
    else:
        parsed = s.cast(pl.Int64, strict=False)
    row = _first_failure(s, parsed)
    if row is not None:
        _raise_at(src, s, row, column, "an integer", "fix or remove that row")
    return parsed


def as_bool(frame: pl.DataFrame, column: str, src: Source) -> pl.Series:
    """``true/false``, ``True/False``, ``1/0`` and ``t/f`` all read as booleans."""
    s = frame.get_column(column)
    if s.dtype == pl.Boolean:
        return s
    if s.dtype.is_numeric():
        parsed = pl.Series(column, s.cast(pl.Float64)).replace_strict({1.0: True, 0.0: False}, default=None, return_dtype=pl.Boolean)
    else:
        parsed = s.cast(pl.String).str.strip_chars().str.to_lowercase().replace_strict(
            {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False},
            default=None,
            return_dtype=pl.Boolean,
        )
    row = _first_failure(s, parsed)
    if row is not None:
        _raise_at(src, s, row, column, "a boolean", "use true/false")
    return parsed


def _epoch_to_us(values: pl.Series) -> pl.Series:
    """Epoch numbers to microseconds, unit chosen per value by magnitude.

    Thresholds sit between the magnitudes of dates in 1973..5138 for each unit
    (s ~1e9, ms ~1e12, us ~1e15, ns ~1e18), so files that switch unit mid-way
    (Binance spot ms -> us on 2025-01-01) normalise correctly.
    """
    frame = pl.DataFrame({"v": values})
    if values.dtype.is_integer():
        v = pl.col("v").cast(pl.Int64)
        a = v.abs()
        expr = (
            pl.when(a < 100_000_000_000).then(v * 1_000_000)
            .when(a < 100_000_000_000_000).then(v * 1_000)
            .when(a < 100_000_000_000_000_000).then(v)
            .otherwise(v // 1_000)
        )
    else:
        v = pl.col("v").cast(pl.Float64)
        a = v.abs()
        expr = (
            pl.when(a < 1e11).then(v * 1e6)
            .when(a < 1e14).then(v * 1e3)
            .when(a < 1e17).then(v)
            .otherwise(v / 1e3)
        ).round(0).cast(pl.Int64)
    return frame.select(expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")).to_series()


def localise(s: pl.Series, tz: str | None) -> pl.Series:
    if getattr(s.dtype, "time_zone", None):
        return s.dt.convert_time_zone("UTC")
    zone = tz or "UTC"
    try:
        local = s.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    except pl.exceptions.PolarsError as exc:
        raise HydraError(f"unknown time zone {zone!r}: {str(exc).splitlines()[0]}", hint="use an IANA name such as UTC, America/New_York, Europe/London") from None
    return local.dt.convert_time_zone("UTC")


def parse_time(frame: pl.DataFrame, column: str, src: Source, *, tz: str | None = None, epoch_unit: str | None = None) -> pl.Series:
    """Any time representation to ``Datetime("us", "UTC")``.

    Naive wall-clock values are read in ``tz`` (default UTC); values with an
    offset or ``Z`` ignore ``tz``.  Epoch numbers use ``epoch_unit`` when the
    format fixes it, else magnitude detection.  The first unreadable value
    raises DataError naming its row.
    """
    s = frame.get_column(column)
    if s.dtype == pl.String:
        s_clean = s.str.strip_chars()
        nonnull = s_clean.filter(s_clean.is_not_null() & (s_clean != ""))
        if nonnull.len() and nonnull.str.contains(r"^-?\d+(\.\d+)?$").all():
            numeric = s_clean.cast(pl.Float64 if nonnull.str.contains(r"\.").any() else pl.Int64, strict=False)
            out = _numeric_time(numeric, epoch_unit)
        else:
            out = _string_time(s_clean, nonnull, tz)
    elif isinstance(s.dtype, pl.Datetime):
        out = localise(s, tz)
    elif s.dtype == pl.Date:
        out = localise(s.cast(pl.Datetime("us")), tz)
    elif s.dtype.is_numeric():
        out = _numeric_time(s, epoch_unit)
    else:
        raise DataError(f"cannot read a time from a {s.dtype} column", file=src.where, column=column)
    out = out.cast(TS)
    row = _first_failure(s, out)
    if row is not None:
        why = "a time (or it does not exist in that time zone)" if tz else "a time"
        _raise_at(src, s, row, column, why, "use ISO 8601 (2024-01-31 13:00:00[+00:00]) or epoch s/ms/us/ns")
    return out.alias("ts")


def _numeric_time(s: pl.Series, epoch_unit: str | None) -> pl.Series:
    if epoch_unit is None:
        return _epoch_to_us(s)
    factor = {"s": 1_000_000, "ms": 1_000, "us": 1}.get(epoch_unit)
    if factor is None:  # ns
        v = s.cast(pl.Int64, strict=False) // 1_000
    else:
        v = (s.cast(pl.Float64, strict=False) * factor).round(0).cast(pl.Int64) if s.dtype.is_float() else s.cast(pl.Int64, strict=False) * factor
    return v.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _string_time(s: pl.Series, nonnull: pl.Series, tz: str | None) -> pl.Series:
    if nonnull.len() == 0:
        return pl.Series(s.name, [None] * s.len(), dtype=TS)
    try:
        parsed = s.str.to_datetime(time_unit="us", strict=False)
        if parsed.is_not_null().any():
            return localise(parsed, tz)
    except pl.exceptions.PolarsError:
        pass
    for fmt in _FALLBACK_FORMATS:
        probe = nonnull.head(1).str.to_datetime(fmt, time_unit="us", strict=False)
        if probe.is_not_null().all():
            return localise(s.str.to_datetime(fmt, time_unit="us", strict=False), tz)
    return pl.Series(s.name, [None] * s.len(), dtype=TS)


# --------------------------------------------------------------------------- intervals, symbols


def format_interval(us: int) -> str:
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        if us % _US[unit] == 0:
            return f"{us // _US[unit]}{unit}"
    return f"{us}us"


def infer_interval(ts: pl.Series) -> str | None:
    """Modal step between consecutive timestamps (robust to gaps and weekends)."""
    steps = ts.sort().diff().dt.total_microseconds().drop_nulls()
    steps = steps.filter(steps > 0)
    if steps.len() == 0:
        return None
    counts = steps.value_counts(sort=True)
    top = counts.get_column("count").max()
    mode = int(counts.filter(pl.col("count") == top).get_column(steps.name).min())
    return format_interval(mode)


def symbol_from_name(name: str) -> str | None:
    """``btcusdt-trades.parquet`` / ``ADABTC-1m-2021.csv`` / ``BTC_USDT_USDT-8h-mark`` -> symbol."""
    stem = re.split(r"\.", Path(name).name)[0]
    m = re.match(r"^([A-Za-z0-9]+)_([A-Za-z]+)(?:_[A-Za-z]+)?-(?:\d+[A-Za-z]+[-.]|trades\b)", Path(name).name)  # freqtrade pairs
    if m:
        return (m.group(1) + m.group(2)).upper()
    token = re.split(r"[-_]", stem)[0]
    if re.fullmatch(r"[A-Za-z0-9]{2,24}", token) and re.search(r"[A-Za-z]", token):
        return token.upper()
    return None


def resolve_symbol(req: Request, src: Source, fallback: str | None = None) -> str:
    symbol = req.symbol or fallback or symbol_from_name(src.path.name)
    if not symbol:
        raise HydraError(f"{src.where}: cannot tell the symbol from the file", hint="pass --symbol")
    return symbol


def market_from_path(path: Path, default: str = "spot") -> str:
    """Binance market from folder names: futures/um, futures/cm, or the repo folder names."""
    p = str(path).lower().replace("\\", "/")
    if "/cm/" in p or "coin-m" in p or "cm-futures" in p:
        return "cm"
    if "/um/" in p or "um-futures" in p or "usdm" in p or "/futures/" in p:
        return "um"
    return default


def table(kind: str, frame: pl.DataFrame, *, symbol: str, interval: str | None, exchange: str, market: str, src: Source, family: str) -> ImportedTable:
    """Conform ``frame`` to the lake schema of ``kind`` and wrap it."""
    try:
        conformed = conform(frame, kind)
    except KeyError as exc:
        raise DataError(f"source lacks required column for {kind}", file=src.where, column=str(exc.args[0])) from None
    return ImportedTable(kind, symbol, interval, exchange, market, conformed, str(src.path), family)


Parser = Callable[[Source, Request, str], list[ImportedTable]]
