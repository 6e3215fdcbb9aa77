"""Binance public archive (data.binance.vision): file layout, CSV parsing, fetching.

Three jobs live here because they share one table of facts about the archive
(which kinds exist in which market, which need an interval, which column sets
a file may have):

* **Paths** - where a (market, kind, symbol, interval, day/month) file lives.
* **Parsing** - one archive CSV (or zip) into exactly the normalised lake
  schema of :mod:`hydraquant.data.schema`, whatever the quirks of the file:
  header or none, ms/us/ns epochs (spot switched to microseconds on
  2025-01-01; we detect by magnitude, never by date), spot vs futures column
  sets, ``true``/``True`` booleans. Parsing is the hot path (a 2M-row
  aggTrades day), so it is a single polars CSV read with explicit dtypes; the
  slow, row-locating diagnosis only runs after that read has failed.
* **Fetching** - plan the files for a date range, download them through
  :mod:`hydraquant.data.download` (checksums, resume, cache) and hand each
  parsed frame to a caller-supplied sink, so callers never hold more than one
  file in memory.

Semantic checks (monotonic time, NaN, OHLC consistency) are deliberately not
done here: :mod:`hydraquant.data.validate` owns them.
"""

from __future__ import annotations

import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from hydraquant.data import csv_nb
from hydraquant.data.download import DownloadResult, DownloadTask, download_files
from hydraquant.data.schema import TS, conform, schema_for
from hydraquant.errors import ConfigError, DataError, HydraError

try:  # ISA-L inflate: same output as zlib, several times faster on large members
    from isal.isal_zlib import decompress as _inflate
except ImportError:  # pragma: no cover - optional speed-up
    _inflate = zlib.decompress

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"

# --------------------------------------------------------------------------- #
# Markets, kinds, intervals
# --------------------------------------------------------------------------- #

#: canonical market name -> path segment under ``data/``
MARKET_PATHS: dict[str, str] = {"spot": "spot", "um": "futures/um", "cm": "futures/cm"}
_MARKET_ALIASES: dict[str, str] = {
    "spot": "spot",
    "um": "um",
    "futures/um": "um",
    "usdm": "um",
    "usd-m": "um",
    "cm": "cm",
    "futures/cm": "cm",
    "coinm": "cm",
    "coin-m": "cm",
}
FUTURES = frozenset({"um", "cm"})
ALL_MARKETS = frozenset(MARKET_PATHS)

#: kline intervals Binance publishes ("1s" on spot only; months are "1mo")
KLINE_INTERVALS = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h",
    "6h", "8h", "12h", "1d", "3d", "1w", "1mo",
)  # fmt: skip
_SPOT_ONLY_INTERVALS = frozenset({"1s"})

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9_\-]*$")


@dataclass(frozen=True)
class ArchiveKind:
    """What the archive publishes for one kind, and which lake table it feeds."""

    name: str
    lake_kind: str
    markets: frozenset[str]
    daily: bool = True
    monthly: bool = True
    needs_interval: bool = False


ARCHIVE_KINDS: dict[str, ArchiveKind] = {
    k.name: k
    for k in [
        ArchiveKind("aggTrades", "aggTrades", ALL_MARKETS),
        ArchiveKind("trades", "trades", ALL_MARKETS),
        ArchiveKind("klines", "klines", ALL_MARKETS, needs_interval=True),
        ArchiveKind("markPriceKlines", "markPriceKlines", FUTURES, needs_interval=True),
        ArchiveKind("premiumIndexKlines", "premiumIndexKlines", FUTURES, needs_interval=True),
        ArchiveKind("fundingRate", "funding", FUTURES, daily=False),
        ArchiveKind("metrics", "open_interest", FUTURES, monthly=False),
        ArchiveKind("bookTicker", "bookTicker", FUTURES),
        ArchiveKind("bookDepth", "bookDepth", FUTURES, monthly=False),
    ]
}
# Parsing also accepts the lake name of a kind ("funding" for "fundingRate").
_KIND_ALIASES: dict[str, str] = {
    **{k: k for k in ARCHIVE_KINDS},
    **{spec.lake_kind: name for name, spec in ARCHIVE_KINDS.items()},
}


def normalise_market(market: str) -> str:
    """Canonical market name (``spot``, ``um``, ``cm``) or a ConfigError listing them."""
    canonical = _MARKET_ALIASES.get(str(market).strip().lower())
    if canonical is None:
        raise ConfigError(
            f"unknown Binance market {market!r}",
            hint="use 'spot', 'um' (USD-M futures) or 'cm' (COIN-M futures)",
        )
    return canonical


def archive_kind(kind: str) -> ArchiveKind:
    """The archive kind for ``kind`` (archive or lake spelling) or a ConfigError."""
    name = _KIND_ALIASES.get(kind)
    if name is None:
        raise ConfigError(
            f"unknown Binance archive kind {kind!r}",
            hint=f"known kinds: {', '.join(ARCHIVE_KINDS)}",
        )
    return ARCHIVE_KINDS[name]


def validate_request(
    market: str, kind: str, *, interval: str | None = None, monthly: bool = False
) -> tuple[str, ArchiveKind]:
    """Check that the archive publishes ``kind`` for this market/period/interval.

    Done before any network traffic so a typo fails in milliseconds with a
    message saying what is allowed, instead of as a list of 404s.
    """
    market = normalise_market(market)
    spec = archive_kind(kind)
    if market not in spec.markets:
        raise ConfigError(
            f"Binance {market} does not publish {spec.name} files",
            hint=f"{spec.name} exists for: {', '.join(sorted(spec.markets))}",
        )
    if monthly and not spec.monthly:
        raise ConfigError(
            f"{spec.name} is published as daily files only", hint="call with monthly=False"
        )
    if not monthly and not spec.daily:
        raise ConfigError(
            f"{spec.name} is published as monthly files only", hint="call with monthly=True"
        )
    if spec.needs_interval:
        if not interval:
            raise ConfigError(
                f"{spec.name} needs an interval",
                hint=f"pass interval=, one of {', '.join(KLINE_INTERVALS)}",
            )
        if interval not in KLINE_INTERVALS or (
            interval in _SPOT_ONLY_INTERVALS and market != "spot"
        ):
            allowed = [
                i for i in KLINE_INTERVALS if market == "spot" or i not in _SPOT_ONLY_INTERVALS
            ]
            raise ConfigError(
                f"Binance {market} has no {interval!r} {spec.name}",
                hint=f"use one of {', '.join(allowed)}",
            )
    elif interval is not None:
        raise ConfigError(
            f"{spec.name} files have no interval (got interval={interval!r})",
            hint="drop the interval argument",
        )
    return market, spec


def _normalise_symbol(symbol: str) -> str:
    sym = str(symbol).strip().upper()
    if not _SYMBOL.match(sym):
        raise ConfigError(
            f"invalid Binance symbol {symbol!r}",
            hint="use the exchange spelling, e.g. BTCUSDT or BTCUSD_PERP",
        )
    return sym


# --------------------------------------------------------------------------- #
# Paths
# --------------------------------------------------------------------------- #


def period_label(day: date, *, monthly: bool) -> str:
    """``YYYY-MM-DD`` for daily files, ``YYYY-MM`` for monthly ones."""
    return f"{day:%Y-%m}" if monthly else f"{day:%Y-%m-%d}"


def archive_path(
    market: str,
    kind: str,
    symbol: str,
    day: date,
    *,
    interval: str | None = None,
    monthly: bool = False,
) -> str:
    """Relative path of one zip in the archive layout.

    e.g. ``data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01-02.zip``.
    The same relative path is used under the base URL and under the local
    cache, so the cache is a mirror a loopback server can serve back.
    """
    market, spec = validate_request(market, kind, interval=interval, monthly=monthly)
    symbol = _normalise_symbol(symbol)
    period = "monthly" if monthly else "daily"
    stem = interval if spec.needs_interval else spec.name
    folder = f"data/{MARKET_PATHS[market]}/{period}/{spec.name}/{symbol}"
    if spec.needs_interval:
        folder += f"/{interval}"
    return f"{folder}/{symbol}-{stem}-{period_label(day, monthly=monthly)}.zip"


def checksum_path(path: str) -> str:
    return path + ".CHECKSUM"


def archive_url(base_url: str, path: str) -> str:
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


def plan_periods(start: date, end: date, *, monthly: bool) -> list[date]:
    """Every day (or first-of-month) whose file overlaps ``[start, end]``."""
    if end < start:
        raise ConfigError(f"end {end} is before start {start}", hint="swap start and end")
    if not monthly:
        return [start + timedelta(days=i) for i in range((end - start).days + 1)]
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


# --------------------------------------------------------------------------- #
# Column layouts
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Col:
    """One archive column: its header name, CSV dtype and normalised name.

    ``target=None`` drops the column (read as text so its content never fails
    a parse); ``time`` marks epoch integers (``"epoch"``) or
    ``YYYY-MM-DD HH:MM:SS`` strings (``"text"``) that become ``ts``.
    """

    name: str
    dtype: pl.DataType
    target: str | None
    time: str | None = None


@dataclass(frozen=True)
class Layout:
    """One column set a file of some kind may have (header names in file order)."""

    kind: str
    markets: frozenset[str]
    columns: tuple[Col, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_I, _F, _B, _S = pl.Int64(), pl.Float64(), pl.Boolean(), pl.String()


def _agg_cols(best_match: bool) -> tuple[Col, ...]:
    cols = (
        Col("agg_trade_id", _I, "trade_id"),
        Col("price", _F, "price"),
        Col("quantity", _F, "qty"),
        Col("first_trade_id", _I, "first_trade_id"),
        Col("last_trade_id", _I, "last_trade_id"),
        Col("transact_time", _I, "ts", "epoch"),
        Col("is_buyer_maker", _B, "is_buyer_maker"),
    )
    return cols + ((Col("is_best_match", _S, None),) if best_match else ())


def _trade_cols(third: Col, best_match: bool) -> tuple[Col, ...]:
    cols = (
        Col("id", _I, "trade_id"),
        Col("price", _F, "price"),
        Col("qty", _F, "qty"),
        third,
        Col("time", _I, "ts", "epoch"),
        Col("is_buyer_maker", _B, "is_buyer_maker"),
    )
    return cols + ((Col("is_best_match", _S, None),) if best_match else ())


_KLINE_COLS = (
    Col("open_time", _I, "ts", "epoch"),
    Col("open", _F, "open"),
    Col("high", _F, "high"),
    Col("low", _F, "low"),
    Col("close", _F, "close"),
    Col("volume", _F, "volume"),
    Col("close_time", _S, None),
    Col("quote_volume", _F, "quote_volume"),
    Col("count", _I, "trade_count"),
    Col("taker_buy_volume", _F, "taker_buy_volume"),
    Col("taker_buy_quote_volume", _F, "taker_buy_quote_volume"),
    Col("ignore", _S, None),
)

_SPOT = frozenset({"spot"})

LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "aggTrades": (
        Layout("aggTrades", FUTURES, _agg_cols(best_match=False)),
        Layout("aggTrades", _SPOT, _agg_cols(best_match=True)),
    ),
    "trades": (
        Layout("trades", frozenset({"um"}), _trade_cols(Col("quote_qty", _F, "quote_qty"), False)),
        # COIN-M trades carry base_qty (coins) where USD-M has quote_qty.
        Layout("trades", frozenset({"cm"}), _trade_cols(Col("base_qty", _S, None), False)),
        Layout("trades", _SPOT, _trade_cols(Col("quote_qty", _F, "quote_qty"), True)),
    ),
    "klines": (Layout("klines", ALL_MARKETS, _KLINE_COLS),),
    "markPriceKlines": (Layout("markPriceKlines", FUTURES, _KLINE_COLS),),
    "premiumIndexKlines": (Layout("premiumIndexKlines", FUTURES, _KLINE_COLS),),
    "fundingRate": (
        Layout(
            "fundingRate",
            FUTURES,
            (
                Col("calc_time", _I, "ts", "epoch"),
                Col("funding_interval_hours", _F, "funding_interval_hours"),
                Col("last_funding_rate", _F, "funding_rate"),
            ),
        ),
    ),
    "metrics": (
        Layout(
            "metrics",
            FUTURES,
            (
                Col("create_time", _S, "ts", "text"),
                Col("symbol", _S, None),
                Col("sum_open_interest", _F, "open_interest"),
                Col("sum_open_interest_value", _F, "open_interest_value"),
                Col("count_toptrader_long_short_ratio", _F, "toptrader_long_short_ratio"),
                Col("sum_toptrader_long_short_ratio", _F, "toptrader_position_long_short_ratio"),
                Col("count_long_short_ratio", _F, "long_short_ratio"),
                Col("sum_taker_long_short_vol_ratio", _F, "taker_buy_sell_ratio"),
            ),
        ),
    ),
    "bookTicker": (
        Layout(
            "bookTicker",
            FUTURES,
            (
                Col("update_id", _I, "update_id"),
                Col("best_bid_price", _F, "bid_price"),
                Col("best_bid_qty", _F, "bid_qty"),
                Col("best_ask_price", _F, "ask_price"),
                Col("best_ask_qty", _F, "ask_qty"),
                Col("transaction_time", _I, "ts", "epoch"),
                Col("event_time", _S, None),
            ),
        ),
    ),
    "bookDepth": (
        Layout(
            "bookDepth",
            FUTURES,
            (
                Col("timestamp", _S, "ts", "text"),
                Col("percentage", _F, "percentage"),
                Col("depth", _F, "depth"),
                Col("notional", _F, "notional"),
            ),
        ),
    ),
}

FIX_HINT = (
    "re-download the file (delete it from the cache and fetch again); if the "
    "published file itself is bad, exclude that day"
)

# --------------------------------------------------------------------------- #
# Parsing
# --------------------------------------------------------------------------- #


def parse_archive_csv(data: bytes, *, kind: str, market: str, source: str) -> pl.DataFrame:
    """Parse one archive CSV's bytes into the normalised schema of its lake kind.

    Parameters
    ----------
    data:
        The CSV bytes (as stored inside the zip).
    kind:
        Archive kind (``aggTrades``, ``fundingRate``, ...) or its lake name.
    market:
        ``spot``, ``um`` or ``cm``; picks between column sets that have the
        same width (USD-M vs COIN-M trades).
    source:
        Name used in error messages (the zip path and member).

    Returns
    -------
    A frame with exactly the columns and dtypes of
    ``hydraquant.data.schema.SCHEMAS[lake_kind]``, rows in file order.

    Raises
    ------
    DataError
        Naming ``source``, the 1-based data row and the column for a wrong
        column count, missing header column, empty required value or text in
        a numeric column.
    """
    plan = plan_archive_csv(data, kind=kind, market=market, source=source)
    if plan is None:
        return schema_for(archive_kind(kind).lake_kind).empty()
    end = len(data)
    while end > plan.body_start and data[end - 1] in b"\r\n\t ":
        end -= 1
    if end <= plan.body_start:
        return schema_for(plan.lake_kind).empty()
    frame, _ = parse_archive_body(data, plan.body_start, end, plan, source=source)
    return frame


@dataclass(frozen=True)
class CsvPlan:
    """How to read the data lines of one archive CSV, decided from its first line.

    ``body_start`` is the byte offset of the first data line (after a BOM and
    header); ``fast_kinds`` is the per-column field kind for the compiled
    parser (:mod:`hydraquant.data.csv_nb`), or None for layouts it does not
    cover (text timestamps).
    """

    layout: Layout
    lake_kind: str
    width: int
    wanted: tuple[tuple[int, Col], ...]
    body_start: int
    has_header: bool
    fast_kinds: np.ndarray | None = field(default=None, compare=False)


def plan_archive_csv(head: bytes, *, kind: str, market: str, source: str) -> CsvPlan | None:
    """Read the BOM/header of ``head`` (the file's first bytes) into a :class:`CsvPlan`.

    ``head`` must hold at least the whole first line.  Returns None for a file
    with no lines at all.
    """
    market = normalise_market(market)
    spec = archive_kind(kind)
    native = [lay for lay in LAYOUTS[spec.name] if market in lay.markets]
    if not native:
        raise ConfigError(f"Binance {market} does not publish {spec.name} files")
    # The market's own column sets win ties (USD-M vs COIN-M trades have the
    # same width); the other markets' sets are a fallback for odd mirrors.
    layouts = native + [lay for lay in LAYOUTS[spec.name] if lay not in native]
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    if start >= len(head) or not head[start:].strip():
        return None
    first_end = head.find(b"\n", start)
    line_end = len(head) if first_end < 0 else first_end
    first_line = head[start:line_end].rstrip(b"\r\t ").decode("utf-8", "replace")
    fields = [f.strip() for f in first_line.split(",")]
    has_header = bool(fields[0]) and (fields[0][0].isalpha() or fields[0][0] == "_")
    if has_header:
        layout, positions = _match_header(fields, layouts, source)
        body_start = len(head) if first_end < 0 else first_end + 1
    else:
        layout = _match_width(len(fields), layouts, source)
        positions = list(range(len(layout.columns)))
        body_start = start
    width = len(fields)
    wanted = tuple((pos, col) for pos, col in zip(positions, layout.columns, strict=True) if col.target)
    fast: np.ndarray | None = None
    if all(col.time in (None, "epoch") and col.dtype in (_I, _F, _B) for _, col in wanted):
        codes = {_I: csv_nb.INT, _F: csv_nb.FLOAT, _B: csv_nb.BOOL}
        fast = np.full(width, csv_nb.SKIP, dtype=np.int8)
        for pos, col in wanted:
            fast[pos] = codes[col.dtype]
    return CsvPlan(layout, spec.lake_kind, width, wanted, body_start, has_header, fast)


def parse_archive_body(
    data: bytes | memoryview,
    start: int,
    end: int,
    plan: CsvPlan,
    *,
    source: str,
    row_offset: int = 0,
    unit: int | None = None,
) -> tuple[pl.DataFrame, int | None]:
    """Parse the complete data lines ``data[start:end]`` into the lake schema.

    ``row_offset`` (data lines before ``start``) keeps error rows file-global
    when a file is parsed in chunks; ``unit`` fixes the epoch unit (us per
    tick) decided on an earlier chunk.  Returns the frame and the unit used.
    The compiled parser handles clean numeric layouts; anything it declines
    goes through polars, which also produces the precise error messages.
    """
    if end <= start:
        return schema_for(plan.lake_kind).empty(), unit
    if plan.fast_kinds is not None:
        buf = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        # exact line count: a cheap upper bound (bytes / shortest line) saves this pass but
        # over-allocates ~4x, and freed buffers that were touched raise peak memory by a third
        rows = data.count(b"\n", start, end) + (0 if data[end - 1] == 10 else 1)
        parsed, status, ints, floats, bools, slow = csv_nb.parse_numeric_csv(buf, plan.fast_kinds, rows)
        if status == csv_nb.OK and (slow.shape[0] == 0 or csv_nb.fix_slow_floats(buf, floats, slow)):
            columns: dict[str, pl.Series] = {}
            slots = {csv_nb.INT: 0, csv_nb.FLOAT: 0, csv_nb.BOOL: 0}
            for pos, col in sorted(plan.wanted, key=lambda pc: pc[0]):
                code = int(plan.fast_kinds[pos])
                slot = slots[code]
                slots[code] += 1
                values = (ints, floats, bools)[code - 1][slot]
                columns[col.target] = pl.Series(col.target, values.view(np.bool_) if code == csv_nb.BOOL else values)
            time_col = next(col.target for _, col in plan.wanted if col.time)
            ts, unit = _epoch_to_ts(columns[time_col], unit)
            columns[time_col] = ts.alias(time_col)
            return conform(pl.DataFrame([columns[c.target] for _, c in plan.wanted]), plan.lake_kind), unit
        logger.debug("%s: compiled parser declined line %d; using polars", source, row_offset + parsed + 1)
    try:
        return _parse_body_polars(bytes(data[start:end]), plan, source, unit)
    except DataError as exc:
        raise shift_error_rows(exc, row_offset) from None


def shift_error_rows(exc: DataError, row_offset: int) -> DataError:
    """``exc`` with its row moved by the data lines parsed before its chunk (file-global rows)."""
    if not row_offset or exc.row is None:
        return exc
    return DataError(
        exc.message.partition("] ")[2] if exc.message.startswith("[") else exc.message,
        file=exc.file, row=exc.row + row_offset, column=exc.column, hint=exc.hint,
    )


def _parse_body_polars(body: bytes, plan: CsvPlan, source: str, unit: int | None) -> tuple[pl.DataFrame, int | None]:
    """General path: polars' CSV reader with explicit dtypes (any layout, nulls allowed)."""
    width, wanted = plan.width, plan.wanted
    lines = body.count(b"\n") + 1
    if body.count(b",") != lines * (width - 1):
        width_error = _width_error(body, width, source)
        if width_error is not None:
            raise width_error
    csv_schema = {f"c{i}": _S for i in range(width)}
    for pos, col in wanted:
        csv_schema[f"c{pos}"] = col.dtype
    projection = sorted(pos for pos, _ in wanted)
    try:
        raw = pl.read_csv(
            body,
            has_header=False,
            schema=csv_schema,
            columns=projection,
            quote_char=None,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as exc:
        raise _diagnose(body, list(wanted), width, source, exc) from None

    lake = schema_for(plan.lake_kind)
    exprs: list[pl.Expr | pl.Series] = []
    for pos, col in wanted:
        name = f"c{pos}"
        if col.target in lake.required and raw.get_column(name).null_count():
            row = int(raw.get_column(name).is_null().arg_max() or 0) + 1
            raise DataError(
                "empty value in a required column",
                file=source,
                row=row,
                column=col.name,
                hint=FIX_HINT,
            )
        if col.time == "epoch":
            ts, unit = _epoch_to_ts(raw.get_column(name), unit)
            exprs.append(ts.alias(col.target))
        elif col.time == "text":
            exprs.append(_text_to_ts(raw.get_column(name), source, col.name).alias(col.target))
        else:
            exprs.append(pl.col(name).alias(col.target))
    return conform(raw.select(exprs), plan.lake_kind), unit


def parse_archive_zip(path: Path | str, *, kind: str, market: str) -> pl.DataFrame:
    """Parse every CSV inside one archive zip (Binance ships exactly one).

    A truncated or corrupt zip raises :class:`DataError` naming the file, since
    a zip whose checksum matched can still be damaged at the source.
    """
    path = Path(path)
    frames = []
    with zip_errors_as_data_error(path), zipfile.ZipFile(path) as zf:
        for info in csv_members(zf, path):
            data = _read_member(path, zf, info)
            frames.append(parse_archive_csv(data, kind=kind, market=market, source=f"{path}:{info.filename}"))
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def csv_members(zf: zipfile.ZipFile, path: Path) -> list[zipfile.ZipInfo]:
    """The CSV members of an archive zip; a zip without one is a :class:`DataError`."""
    members = [i for i in zf.infolist() if i.filename.lower().endswith(".csv")]
    if not members:
        raise DataError(f"zip holds no CSV file (members: {zf.namelist() or 'none'})", file=str(path),
                        hint=FIX_HINT)
    return members


@contextmanager
def zip_errors_as_data_error(path: Path) -> Iterator[None]:
    """Turn what a damaged zip raises while being read into one :class:`DataError` naming the file."""
    try:
        yield
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise DataError(f"corrupt or truncated zip ({type(exc).__name__}: {exc})", file=str(path),
                        hint=FIX_HINT) from None


def _read_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Inflate one zip member with ISA-L when available (~3x faster than zlib), CRC-checked.

    Decompression is the largest single cost of ingesting a day of trades;
    the member's CRC-32 and size are verified exactly as :mod:`zipfile` would.
    """
    if info.compress_type != zipfile.ZIP_DEFLATED or _inflate is zlib.decompress:
        return zf.read(info)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        fh.seek(name_len + extra_len, 1)
        raw = fh.read(info.compress_size)
    if len(raw) != info.compress_size:
        raise EOFError(f"{info.filename}: expected {info.compress_size} compressed bytes, got {len(raw)}")
    try:
        data = _inflate(raw, wbits=-15)
    except Exception as exc:  # isal raises its own error type for corrupt streams
        raise zipfile.BadZipFile(f"{info.filename}: {exc}") from None
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile(f"CRC/size mismatch in {info.filename}")
    return data


def _match_header(
    fields: list[str], layouts: list[Layout], source: str
) -> tuple[Layout, list[int]]:
    """Pick the layout whose columns all appear in the header; map them to positions.

    Matching by name (not position) tolerates reordered or extra columns.
    """
    index = {name.lower(): i for i, name in enumerate(fields)}
    best: tuple[int, Layout, list[str]] | None = None
    for layout in layouts:
        missing = [c.name for c in layout.columns if c.target and c.name.lower() not in index]
        if not missing:
            positions = [index.get(c.name.lower(), -1) for c in layout.columns]
            return layout, positions
        if best is None or len(missing) < best[0]:
            best = (len(missing), layout, missing)
    assert best is not None
    _, layout, missing = best
    raise DataError(
        f"missing column {missing[0]!r} in header {','.join(fields)!r} "
        f"(a {layout.kind} file needs {','.join(layout.names)})",
        file=source,
        column=missing[0],
        hint="check that the file matches the requested kind and market; " + FIX_HINT,
    )


def _match_width(width: int, layouts: list[Layout], source: str) -> Layout:
    for layout in layouts:
        if len(layout.columns) == width:
            return layout
    expected = " or ".join(sorted({str(len(lay.columns)) for lay in layouts}))
    raise DataError(
        f"wrong column count: found {width}, a headerless {layouts[0].kind} file has {expected} "
        f"({' | '.join(','.join(lay.names) for lay in layouts)})",
        file=source,
        row=1,
        hint="check that the file matches the requested kind and market; " + FIX_HINT,
    )


def _width_error(body: bytes, width: int, source: str) -> DataError | None:
    """Every line must have ``width`` fields; polars would silently null-pad short rows.

    Callers first compare two ``bytes.count`` totals and come here only when
    they disagree. Equal totals cannot hide a short row for long: its partner
    long row makes polars fail, and :func:`_diagnose` then calls us.
    """
    if not body:
        return None
    bad = _first_bad_line(body, width)
    if bad is None:
        return None
    line, found = bad
    return DataError(
        f"wrong column count: found {found} fields, expected {width}",
        file=source,
        row=line + 1,
        hint=FIX_HINT,
    )


def _first_bad_line(body: bytes, width: int) -> tuple[int, int] | None:
    """(0-based data line, field count) of the first line without ``width`` fields."""
    buf = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    commas = np.flatnonzero(buf == 44)
    ends = np.append(newlines, buf.size)
    per_line = np.diff(np.searchsorted(commas, ends), prepend=0)
    bad = np.flatnonzero(per_line != width - 1)
    if bad.size == 0:
        return None
    return int(bad[0]), int(per_line[bad[0]]) + 1


def _diagnose(
    body: bytes, wanted: list[tuple[int, Col]], width: int, source: str, exc: Exception
) -> DataError:
    """Find the first (row, column) that failed to parse; slow, only after a failure."""
    width_error = _width_error(body, width, source)
    if width_error is not None:
        return width_error
    text = pl.read_csv(
        body,
        has_header=False,
        schema={f"c{i}": _S for i in range(width)},
        columns=sorted(pos for pos, _ in wanted),
        quote_char=None,
    )
    first: tuple[int, str, str, str] | None = None
    for pos, col in wanted:
        s = text.get_column(f"c{pos}")
        if col.dtype == _B:
            ok = s.str.to_lowercase().is_in(["true", "false"])
        elif col.dtype == _S:
            continue
        else:
            ok = s.cast(col.dtype, strict=False).is_not_null()
        bad = s.is_not_null() & ~ok
        if bad.any():
            row = int(bad.arg_max() or 0)
            if first is None or row < first[0]:
                first = (row, col.name, str(s[row]), str(col.dtype))
    if first is None:
        return DataError(f"CSV could not be parsed: {exc}", file=source, hint=FIX_HINT)
    row, name, value, dtype = first
    return DataError(
        f"cannot read {value!r} as {dtype}",
        file=source,
        row=row + 1,
        column=name,
        hint=FIX_HINT,
    )


def _epoch_unit(max_abs: int) -> int:
    """Microseconds per tick for an epoch column, judged by its magnitude.

    Present-day epochs are ~1.7e9 s, 1.7e12 ms, 1.7e15 us, 1.7e18 ns; the
    thresholds sit three orders of magnitude apart so any date between 1973
    and 5138 is classified correctly.
    """
    if max_abs < 10**11:
        return 1_000_000  # seconds
    if max_abs < 10**14:
        return 1_000  # milliseconds
    if max_abs < 10**17:
        return 1  # microseconds
    return 0  # nanoseconds (divide)


def _epoch_to_ts(values: pl.Series, unit: int | None = None) -> tuple[pl.Series, int | None]:
    """Epoch integers to ``ts``; the unit is judged on ``values`` unless given.

    Chunked parsing passes the unit of the first chunk, so a file is read in
    one unit throughout, as when it is parsed in one go.
    """
    if values.len() == 0:
        return values.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), unit
    if unit is None:
        unit = _epoch_unit(int(values.abs().max() or 0))  # type: ignore[arg-type]
    us = values // 1_000 if unit == 0 else values * unit
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), unit


def _text_to_ts(values: pl.Series, source: str, column: str) -> pl.Series:
    """``YYYY-MM-DD HH:MM:SS[.f]`` strings (metrics, bookDepth), or epoch digits."""
    if values.len() == 0:
        return pl.Series(values.name, [], dtype=TS)
    if values.str.contains(r"^\d+$").all():
        return _epoch_to_ts(values.cast(pl.Int64))[0]
    parsed = values.str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC", strict=False
    )
    bad = parsed.is_null() & values.is_not_null()
    if bad.any():
        row = int(bad.arg_max() or 0)
        raise DataError(
            f"cannot read {values[row]!r} as a 'YYYY-MM-DD HH:MM:SS' UTC time",
            file=source,
            row=row + 1,
            column=column,
            hint=FIX_HINT,
        )
    return parsed


# --------------------------------------------------------------------------- #
# Fetching
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FetchedFile:
    """One planned archive file and what became of it.

    ``kind`` is the normalised lake kind (``funding`` for ``fundingRate``);
    ``day`` is the file's date (first of month for monthly files) and
    ``period`` its label as in the file name.
    """

    market: str
    kind: str
    archive_kind: str
    symbol: str
    interval: str | None
    day: date
    monthly: bool
    url: str
    path: Path
    status: str = "planned"  # downloaded | skipped | missing | failed
    rows: int = 0
    error: str | None = None

    @property
    def period(self) -> str:
        return period_label(self.day, monthly=self.monthly)


@dataclass
class FetchReport:
    """Outcome of :func:`fetch_binance`: every planned file with its status."""

    files: list[FetchedFile] = field(default_factory=list)

    def _with(self, status: str) -> list[FetchedFile]:
        return [f for f in self.files if f.status == status]

    @property
    def downloaded(self) -> list[FetchedFile]:
        return self._with("downloaded")

    @property
    def skipped(self) -> list[FetchedFile]:
        """Already verified in the cache; no network request was made for the zip."""
        return self._with("skipped")

    @property
    def missing(self) -> list[FetchedFile]:
        """Not published (404): listed, never fatal."""
        return self._with("missing")

    @property
    def failed(self) -> list[FetchedFile]:
        return self._with("failed")

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def summary(self) -> str:
        return (
            f"{len(self.files)} files: {len(self.downloaded)} downloaded, "
            f"{len(self.skipped)} cached, {len(self.missing)} missing, "
            f"{len(self.failed)} failed; {self.rows} rows"
        )


def plan_fetch(
    *,
    market: str,
    kind: str,
    symbols: Iterable[str],
    start: date,
    end: date,
    interval: str | None = None,
    monthly: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    cache_dir: Path,
) -> list[FetchedFile]:
    """All files of a request, ordered by (symbol, date); validates every argument."""
    market, spec = validate_request(market, kind, interval=interval, monthly=monthly)
    syms = [_normalise_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
    if not syms:
        raise ConfigError("no symbols given", hint="pass at least one symbol, e.g. ['BTCUSDT']")
    if not str(base_url).startswith(("http://", "https://")):
        raise ConfigError(f"base_url {base_url!r} is not an http(s) URL")
    planned = []
    for sym in dict.fromkeys(syms):
        for day in plan_periods(start, end, monthly=monthly):
            rel = archive_path(market, spec.name, sym, day, interval=interval, monthly=monthly)
            planned.append(
                FetchedFile(
                    market=market,
                    kind=spec.lake_kind,
                    archive_kind=spec.name,
                    symbol=sym,
                    interval=interval,
                    day=day,
                    monthly=monthly,
                    url=archive_url(base_url, rel),
                    path=Path(cache_dir) / rel,
                )
            )
    return planned


Sink = Callable[[pl.DataFrame, FetchedFile], None]
FileSink = Callable[[FetchedFile], int]
"""Takes a verified zip (``meta.path``) and ingests it itself (e.g. streamed); returns its rows."""


def fetch_binance(
    *,
    market: str,
    kind: str,
    symbols: Sequence[str] | str,
    start: date,
    end: date,
    interval: str | None = None,
    monthly: bool = False,
    base_url: str = DEFAULT_BASE_URL,
    cache_dir: Path,
    workers: int = 8,
    sink: Sink | None = None,
    file_sink: FileSink | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout_s: float = 60.0,
) -> FetchReport:
    """Download, verify and parse archive files, handing each frame to ``sink``
    (or each verified zip to ``file_sink``, which ingests it itself, e.g. streamed).
    Exactly one of the two must be given.

    Files are downloaded in parallel into ``cache_dir`` (mirroring the URL
    path), then parsed one at a time in (symbol, date) order so memory holds
    a single file. Missing files (404) are listed in the report only. Any
    failure (checksum mismatch, unreadable zip, HTTP error) is raised *after*
    every other file was delivered, as the first failure's own HydraError
    with the :class:`FetchReport` attached as ``exc.report``.
    """
    if workers < 1:
        raise ConfigError(f"workers must be >= 1 (got {workers})")
    planned = plan_fetch(
        market=market,
        kind=kind,
        symbols=symbols,
        start=start,
        end=end,
        interval=interval,
        monthly=monthly,
        base_url=base_url,
        cache_dir=cache_dir,
    )
    tasks = [
        DownloadTask(url=f.url, dest=f.path, checksum_url=checksum_path(f.url)) for f in planned
    ]
    if (sink is None) == (file_sink is None):
        raise HydraError("fetch_binance needs exactly one of sink= or file_sink=")
    dl = download_files(
        tasks, workers=workers, retries=retries, timeout_s=timeout_s, progress=progress
    )
    by_dest: dict[Path, DownloadResult] = {r.task.dest: r for r in dl.results}

    errors: list[HydraError] = []
    files: list[FetchedFile] = []
    for planned_file in planned:
        result = by_dest[planned_file.path]
        meta = replace(planned_file, status=result.status)
        if result.status in ("downloaded", "skipped"):
            try:
                if file_sink is not None:
                    meta = replace(meta, rows=file_sink(meta))
                else:
                    frame = parse_archive_zip(meta.path, kind=meta.archive_kind, market=meta.market)
                    meta = replace(meta, rows=frame.height)
                    sink(frame, meta)
            except DataError as exc:
                errors.append(exc)
                meta = replace(meta, status="failed", error=str(exc))
        elif result.status == "failed":
            err = result.error or HydraError(f"download of {meta.url} failed")
            errors.append(err)
            meta = replace(meta, error=str(err))
        else:
            logger.info("not published: %s", meta.url)
        files.append(meta)

    report = FetchReport(files)
    logger.info("Binance %s %s: %s", market, kind, report.summary())
    if errors:
        first = errors[0]
        first.report = report  # type: ignore[attr-defined]
        if len(errors) > 1:
            first.add_note(
                f"{len(errors) - 1} more file(s) failed: "
                + "; ".join(f.path.name for f in report.failed[1:])
            )
        raise first
    return report


__all__ = [
    "ARCHIVE_KINDS",
    "DEFAULT_BASE_URL",
    "KLINE_INTERVALS",
    "LAYOUTS",
    "ArchiveKind",
    "FetchReport",
    "FetchedFile",
    "archive_kind",
    "archive_path",
    "archive_url",
    "checksum_path",
    "fetch_binance",
    "normalise_market",
    "parse_archive_csv",
    "parse_archive_zip",
    "plan_fetch",
    "plan_periods",
    "shift_error_rows",
    "validate_request",
]
