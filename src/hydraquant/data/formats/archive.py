"""Binance public-archive files (zip or csv, header or not) handed to the archive parser.

The archive fetcher owns the archive's column sets and quirks
(:func:`hydraquant.data.binance_archive.parse_archive_csv`); importing a
single archive file must give byte-for-byte the same frame as fetching it,
so this module only works out *which* kind/market/interval the file is and
delegates the parsing.
"""

from __future__ import annotations

import re

from hydraquant.data.formats.base import ImportedTable, Request, Source, infer_interval, market_from_path, table
from hydraquant.errors import HydraError

ARCHIVE_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9][A-Z0-9_\-]*?)-(?P<what>aggTrades|trades|bookTicker|bookDepth|metrics|fundingRate|"
    r"\d+(?:s|m|h|d|w|mo))-(?P<period>\d{4}-\d{2}(?:-\d{2})?)\.(?:csv|zip)$"
)
_PATH_KINDS = ("aggTrades", "trades", "markPriceKlines", "premiumIndexKlines", "indexPriceKlines", "fundingRate", "metrics",
               "bookTicker", "bookDepth", "klines")
_LAKE = {"fundingRate": "funding", "metrics": "open_interest"}


def archive_name(src: Source) -> re.Match[str] | None:
    return ARCHIVE_NAME.match(src.member) or ARCHIVE_NAME.match(src.path.name.removesuffix(".gz"))


def is_archive(src: Source) -> bool:
    """Archive file name, or a headerless 12-column numeric CSV (the kline layout)."""
    if archive_name(src) is not None:
        return True
    return src.container == "csv" and src.header is None and len(src.first_row) == 12


def detected_kind(src: Source) -> tuple[str, str | None]:
    """(archive kind, interval) from the data.binance.vision folder names, else the file name."""
    parts = src.path.parts
    m = archive_name(src)
    what = m.group("what") if m else None
    interval = what if what and re.fullmatch(r"\d+(?:s|m|h|d|w|mo)", what) else None
    for kind in _PATH_KINDS:
        if kind in parts:
            return kind, interval
    if what and interval is None:
        return what, None
    return "klines", interval


def parse_archive(src: Source, req: Request, kind: str) -> list[ImportedTable]:
    archive_kind, interval = detected_kind(src)
    if archive_kind == "indexPriceKlines":
        raise HydraError(f"{src.where}: indexPriceKlines have no lake kind", hint="import klines or markPriceKlines instead")
    lake_kind = _LAKE.get(archive_kind, archive_kind)
    if kind not in (lake_kind, archive_kind):
        raise HydraError(f"{src.where}: this Binance archive file holds {lake_kind}, not {kind}", hint=f"pass --kind {lake_kind}")
    try:
        from hydraquant.data.binance_archive import parse_archive_csv
    except ImportError as exc:  # pragma: no cover - only while the archive module is absent
        raise HydraError(f"{src.where}: the Binance archive parser is not available ({exc})",
                         hint="install a hydraquant build that includes hydraquant.data.binance_archive") from None
    market = market_from_path(src.path)
    frame = parse_archive_csv(src.data, kind=archive_kind, market=market, source=src.where)
    m = archive_name(src)
    symbol = req.symbol or (m.group("symbol") if m else None)
    if not symbol:
        raise HydraError(f"{src.where}: cannot tell the symbol from the file name", hint="pass --symbol")
    if lake_kind in ("klines", "markPriceKlines", "premiumIndexKlines"):
        interval = interval or infer_interval(frame.get_column("ts"))
    else:
        interval = None
    return [table(lake_kind, frame, symbol=symbol, interval=interval, exchange="binance", market=market, src=src,
                  family="binance-archive")]
