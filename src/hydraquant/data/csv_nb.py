"""Compiled parser for the fixed, unquoted numeric CSV layouts of the Binance archive.

Why a dedicated parser: a day of aggTrades is ~130 MB of text made only of
digits, ``.``, ``,``, ``-`` and ``true``/``false``.  A general CSV reader
spends most of its time on machinery this layout never needs (quoting,
type inference, string buffers); one compiled pass straight from the
inflated bytes into numpy columns is ~2x faster than polars' reader and
releases the GIL, so it overlaps with inflating and writing.

Contract: :func:`parse_numeric_csv` either parses *every* line exactly or
reports "not handled" (status != 0) with the first line it could not
handle.  It never guesses: anything unusual (empty field, quote, blank,
wrong field count, a number it cannot round correctly, >18-digit integers)
makes the caller fall back to the general polars reader, which produces the
precise (row, column) error message or the nulls.  Floats use Clinger's
fast path (mantissa < 2**53 and <= 22 fractional digits: one correctly
rounded IEEE division), so values are bit-identical to a correctly rounded
parser; the few fields outside it are returned for an exact re-parse.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: field kinds of the ``kinds`` array
SKIP, INT, FLOAT, BOOL = 0, 1, 2, 3

#: statuses
OK, UNHANDLED, SLOW_OVERFLOW = 0, 1, 2

_POW10 = np.array([10.0**i for i in range(23)], dtype=np.float64)
_MAX_EXACT = 1 << 53


@nb.njit(nogil=True, cache=True, boundscheck=False)
def _parse(buf, cap, kinds, slots, ints, floats, bools, slow_pos, pow10):
    n = buf.size
    ncols = kinds.size
    row = 0
    i = 0
    n_slow = 0
    while i < n:
        if row >= cap:
            return row, UNHANDLED, n_slow  # more lines than the caller counted
        for c in range(ncols):
            kind = kinds[c]
            last = c == ncols - 1
            start = i
            if kind == 0:  # skipped column: anything but a separator
                while i < n and buf[i] != 44 and buf[i] != 10:
                    i += 1
                stop = i
                if last and stop > start and buf[stop - 1] == 13:
                    stop -= 1
            elif kind == 1:
                neg = False
                if i < n and buf[i] == 45:
                    neg = True
                    i += 1
                v = 0
                digits = 0
                while i < n:
                    ch = buf[i] - 48
                    if ch > 9 or ch < 0:
                        break
                    v = v * 10 + ch
                    digits += 1
                    i += 1
                if digits == 0 or digits > 18:
                    return row, UNHANDLED, n_slow
                ints[slots[c], row] = -v if neg else v
            elif kind == 2:
                neg = False
                if i < n and buf[i] == 45:
                    neg = True
                    i += 1
                m = 0
                digits = 0
                frac = 0
                seen_dot = False
                while i < n:
                    ch = buf[i]
                    d = ch - 48
                    if 0 <= d <= 9:
                        if digits < 18:
                            m = m * 10 + d
                            if m > 0:
                                digits += 1
                            if seen_dot:
                                frac += 1
                        else:
                            digits = 99  # too many significant digits for the fast path
                        i += 1
                    elif ch == 46 and not seen_dot:
                        seen_dot = True
                        i += 1
                    else:
                        break
                stop = i
                if stop == start + (1 if neg else 0) or (
                    seen_dot and stop == start + 1 + (1 if neg else 0)
                ):
                    return row, UNHANDLED, n_slow  # empty field or a lone '.'
                if i < n and buf[i] != 44 and buf[i] != 10 and buf[i] != 13:
                    # exponent or other text: re-parse exactly outside, or give up
                    while i < n and buf[i] != 44 and buf[i] != 10:
                        i += 1
                    stop = i
                    if last and stop > start and buf[stop - 1] == 13:
                        stop -= 1
                    digits = 99
                while frac > 0 and m % 10 == 0 and m > 0 and digits < 99:
                    m //= 10
                    frac -= 1
                if digits < 99 and m <= 9007199254740992 and frac <= 22:
                    x = m / pow10[frac]
                    floats[slots[c], row] = -x if neg else x
                else:
                    if n_slow >= slow_pos.shape[0]:
                        return row, SLOW_OVERFLOW, n_slow
                    slow_pos[n_slow, 0] = row
                    slow_pos[n_slow, 1] = slots[c]
                    slow_pos[n_slow, 2] = start
                    slow_pos[n_slow, 3] = stop
                    n_slow += 1
                    floats[slots[c], row] = np.nan
            else:  # boolean: true/false in any letter case
                if (
                    i + 4 <= n
                    and (buf[i] | 32) == 116
                    and (buf[i + 1] | 32) == 114
                    and (buf[i + 2] | 32) == 117
                    and (buf[i + 3] | 32) == 101
                ):
                    bools[slots[c], row] = 1
                    i += 4
                elif (
                    i + 5 <= n
                    and (buf[i] | 32) == 102
                    and (buf[i + 1] | 32) == 97
                    and (buf[i + 2] | 32) == 108
                    and (buf[i + 3] | 32) == 115
                    and (buf[i + 4] | 32) == 101
                ):
                    bools[slots[c], row] = 0
                    i += 5
                else:
                    return row, UNHANDLED, n_slow
            # separator after the field
            if last:
                if i < n and buf[i] == 13:
                    i += 1
                if i < n:
                    if buf[i] != 10:
                        return row, UNHANDLED, n_slow
                    i += 1
            else:
                if i >= n or buf[i] != 44:
                    return row, UNHANDLED, n_slow
                i += 1
        row += 1
    return row, OK, n_slow


def parse_numeric_csv(
    buf: np.ndarray, kinds: np.ndarray, rows: int
) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parse the newline-terminated lines of ``buf`` (uint8, no header); at most ``rows`` of them.

    ``rows`` sizes the output (an exact count or any upper bound: the arrays
    are allocated uninitialised, so untouched capacity costs address space,
    not memory); more lines than that is reported as not handled.

    ``kinds[j]`` is SKIP/INT/FLOAT/BOOL for file column ``j``.  Returns
    ``(rows_parsed, status, ints, floats, bools, slow)``: one output row per
    INT/FLOAT/BOOL column in file order (shape ``(k, rows)``), and ``slow``
    the ``(row, float_slot, start, stop)`` byte ranges of floats outside the
    exact fast path (NaN in ``floats`` until :func:`fix_slow_floats`).
    ``status`` is :data:`OK` or the first line (``rows_parsed``) not handled.
    ``buf`` must not end in a partial line without its data (a final line
    without ``\\n`` is fine).
    """
    kinds = np.ascontiguousarray(kinds, dtype=np.int8)
    slots = np.zeros(kinds.size, dtype=np.int64)
    counts = {INT: 0, FLOAT: 0, BOOL: 0}
    for j, k in enumerate(kinds.tolist()):
        if k != SKIP:
            slots[j] = counts[k]
            counts[k] += 1
    ints = np.empty((counts[INT], rows), dtype=np.int64)
    floats = np.empty((counts[FLOAT], rows), dtype=np.float64)
    bools = np.empty((counts[BOOL], rows), dtype=np.uint8)
    slow = np.empty((max(64, rows // 64), 4), dtype=np.int64)
    if rows == 0:
        return 0, OK, ints, floats, bools, slow[:0]
    parsed, status, n_slow = _parse(buf, rows, kinds, slots, ints, floats, bools, slow, _POW10)
    # ``rows`` may be a capacity (an upper bound on the lines): hand back only what was parsed
    return parsed, status, ints[:, :parsed], floats[:, :parsed], bools[:, :parsed], slow[:n_slow]


def fix_slow_floats(buf: np.ndarray, floats: np.ndarray, slow: np.ndarray) -> bool:
    """Re-parse the few floats outside the fast path exactly; False if any is not a number.

    Python's ``float`` is correctly rounded, like polars' reader.
    """
    raw = buf.tobytes() if slow.shape[0] > 256 else None
    for row, slot, start, stop in slow.tolist():
        text = raw[start:stop] if raw is not None else buf[start:stop].tobytes()
        try:
            floats[slot, row] = float(text)
        except ValueError:
            return False
        if text.strip().lower().lstrip(b"+-") in (b"nan", b"inf", b"infinity"):
            return False  # polars reads these too; let it decide (validation rejects them)
    return True


__all__ = ["BOOL", "FLOAT", "INT", "OK", "SKIP", "fix_slow_floats", "parse_numeric_csv"]
