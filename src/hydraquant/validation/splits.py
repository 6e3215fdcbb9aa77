"""Time-aware cross-validation splitters with purging and embargo (SPEC V1).

Why: a label at time ``t`` is only known at ``t_end`` (the close of the last
bar it looks at).  A training sample whose label window ``[t, t_end]``
overlaps a test window teaches the model the test outcome; a training sample
that starts right after a test window shares its serially-correlated
features.  Shuffled or plain k-fold splits on time series silently do both.

Every splitter here follows the scikit-learn protocol (``split(X, y=None,
groups=None)`` yielding ``(train_idx, test_idx)`` numpy arrays, and
``get_n_splits``), so it drops into ``cross_val_score(est, X, y, cv=...)``.
Sample times come either from the constructor (``t=``, ``t_end=`` aligned
with X's rows, which is what makes a plain numpy X work) or, when those are
not given, from ``ts``/``t`` and ``t_end`` columns of a polars/pandas X.
Rows must be sorted by ``t`` (ties allowed: a panel sorted by (ts, symbol)).

Conventions (closed intervals, deliberately conservative):

* test window of a contiguous test block = ``[min t, max t_end]``;
* purge: drop training sample ``i`` if ``t_i <= W_end and t_end_i >= W_start``;
* embargo: drop training sample ``i`` that starts in ``(W_end, W_end + embargo]``
  (a duration), or that is among the first ``embargo`` samples with
  ``t > W_end`` (an int: a count of samples).

In walk-forward schemes training always precedes the test block, so purging
removes the tail of the training set whose labels reach into the test block,
and the embargo has nothing to remove; it matters for CPCV, where training
samples also follow test groups.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
import polars as pl

from hydraquant.errors import HydraError
from hydraquant.timeframes import interval_us

log = logging.getLogger(__name__)

Span = int | timedelta | np.timedelta64 | str
"""An embargo: an int counts samples; a timedelta / np.timedelta64 / "2h" is a duration."""

_TIME_COLUMNS = ("ts", "t")


class SplitError(HydraError):
    """A splitter was configured or fed in a way that cannot give leak-free folds."""


# --------------------------------------------------------------------------- sample times


def _as_time_array(values: Any, name: str) -> tuple[np.ndarray, bool]:
    """(values as int64 µs since epoch or float64, is_datetime); nulls rejected."""
    if isinstance(values, pl.Series):
        s = values
    elif isinstance(values, np.ndarray) and values.dtype.kind in "iuf":
        s = None
    else:
        try:
            s = pl.Series(name, values)
        except Exception as exc:  # polars raises several exception types here
            raise SplitError(
                f"cannot read {name} as times ({type(values).__name__})",
                hint="pass datetimes (numpy datetime64, polars/pandas datetime series) or numbers",
            ) from exc
    if s is None:
        arr = np.asarray(values)
        is_dt = False
    else:
        if s.null_count():
            bad = int(s.is_null().arg_max() or 0)
            raise SplitError(
                f"{name} has {s.null_count()} null value(s), first at row {bad}",
                hint="drop rows whose label is unknown (null t_end) before splitting",
            )
        if s.dtype == pl.Date:
            s = s.cast(pl.Datetime("us"))
        if isinstance(s.dtype, pl.Datetime):
            arr = s.dt.epoch("us").to_numpy()
            is_dt = True
        elif s.dtype.is_numeric():
            arr = s.to_numpy()
            is_dt = False
        else:
            raise SplitError(
                f"{name} has dtype {s.dtype}; expected datetimes or numbers",
                hint="convert the column with .str.to_datetime() or pass numeric times",
            )
    if is_dt:
        return arr.astype(np.int64, copy=False), True
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False), False  # exact: no float rounding of big stamps
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise SplitError(
            f"{name} has a non-finite value at row {bad}",
            hint="drop rows whose label is unknown before splitting",
        )
    return arr, False


def sample_times(t: Any, t_end: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Validated ``(t, t_end, is_datetime)``: same length, ``t`` sorted, ``t_end >= t``.

    Datetimes become int64 microseconds since the epoch (naive ones are read
    as UTC), numbers stay float64, so all splitter arithmetic is integer or
    float comparisons on numpy arrays.
    """
    ta, t_dt = _as_time_array(t, "t")
    ea, e_dt = _as_time_array(t_end, "t_end")
    if ta.dtype != ea.dtype and not t_dt:
        ta, ea = ta.astype(np.float64), ea.astype(np.float64)
    if t_dt != e_dt:
        raise SplitError(
            "t and t_end must both be datetimes or both numbers",
            hint="convert them to the same kind (e.g. both Datetime('us','UTC'))",
        )
    if ta.ndim != 1 or ta.shape != ea.shape:
        raise SplitError(
            f"t and t_end must be 1-D and aligned, got shapes {ta.shape} and {ea.shape}",
            hint="pass one t and one t_end per row of X",
        )
    if ta.size > 1:
        bad = np.flatnonzero(np.diff(ta) < 0)
        if bad.size:
            raise SplitError(
                f"samples are not sorted by t (row {int(bad[0]) + 1} is earlier than row {int(bad[0])})",
                hint="sort X, y, t and t_end by t (a panel by (ts, symbol)) before splitting",
            )
    bad = np.flatnonzero(ea < ta)
    if bad.size:
        raise SplitError(
            f"t_end < t at row {int(bad[0])}: a label cannot be known before its decision time",
            hint="t_end must be the time the label becomes known (>= t)",
        )
    return ta, ea, t_dt


def _span(
    embargo: Span | None, is_datetime: bool, name: str = "embargo"
) -> tuple[str, int | float]:
    """Normalise an embargo to ("count", n) or ("time", µs)."""
    if embargo is None:
        return "count", 0
    if isinstance(embargo, bool):
        raise SplitError(f"{name} must be an int count or a duration, got {embargo!r}")
    if isinstance(embargo, (int, np.integer)) and not isinstance(embargo, np.timedelta64):
        if embargo < 0:
            raise SplitError(f"{name} must be >= 0, got {embargo}")
        return "count", int(embargo)
    if isinstance(embargo, str):
        us: int | float = interval_us(embargo)
    elif isinstance(embargo, timedelta):
        us = embargo // timedelta(microseconds=1)
    elif isinstance(embargo, np.timedelta64):
        us = int(embargo.astype("timedelta64[us]").astype(np.int64))
    else:
        raise SplitError(
            f"{name} must be an int (samples) or a duration, got {type(embargo).__name__}",
            hint="use e.g. 10, timedelta(hours=2) or '2h'",
        )
    if us < 0:
        raise SplitError(f"{name} must be >= 0, got {embargo!r}")
    if not is_datetime and us:
        raise SplitError(
            f"{name} is a duration but t is numeric",
            hint="pass datetime t/t_end, or give the embargo as a count of samples",
        )
    return "time", us


def _time_scalar(value: Any, is_datetime: bool, name: str) -> int | float:
    """A holdout boundary in the same units as ``sample_times`` output."""
    if not is_datetime:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
        raise SplitError(f"{name} must be a number when t is numeric, got {value!r}")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise SplitError(
                f"{name}={value!r} is not an ISO date/time", hint="use e.g. '2024-06-01'"
            ) from exc
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[us]").astype(np.int64))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    raise SplitError(f"{name} must be a datetime, ISO string or numpy datetime64, got {value!r}")


def _frame_times(X: Any) -> tuple[Any, Any]:
    """``(t, t_end)`` columns of a polars/pandas frame X."""
    columns = list(getattr(X, "columns", []))
    tcol = next((c for c in _TIME_COLUMNS if c in columns), None)
    if tcol is None or "t_end" not in columns:
        raise SplitError(
            "sample times unknown: pass t= and t_end= to the splitter, or give X "
            f"'ts' (or 't') and 't_end' columns (X has {columns[:10]})",
            hint="inside cross_val_score X is usually numpy: construct the splitter with t=..., t_end=...",
        )
    return X[tcol], X["t_end"]


# --------------------------------------------------------------------------- purging core


def _purge_mask(
    keep: np.ndarray,
    lo: int,
    hi: int,
    t: np.ndarray,
    t_end: np.ndarray,
    embargo: tuple[str, int | float],
) -> None:
    """Clear, in place, training rows that overlap or are embargoed by test block ``[lo, hi)``."""
    w0 = t[lo:hi].min()
    w1 = t_end[lo:hi].max()
    # t sorted: rows with t <= w1 are a prefix, so only that prefix can overlap.
    stop = int(np.searchsorted(t, w1, side="right"))
    keep[:stop] &= t_end[:stop] < w0
    kind, amount = embargo
    if kind == "count":
        keep[stop : stop + int(amount)] = False
    elif amount:
        emb_stop = int(np.searchsorted(t, w1 + amount, side="right"))
        keep[stop:emb_stop] = False


def _runs(sorted_idx: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous ``[lo, hi)`` runs of a sorted index array."""
    if sorted_idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(sorted_idx) != 1)
    starts = np.concatenate(([sorted_idx[0]], sorted_idx[breaks + 1]))
    ends = np.concatenate((sorted_idx[breaks], [sorted_idx[-1]])) + 1
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def purge_train(
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    t: Any,
    t_end: Any,
    embargo: Span = 0,
) -> np.ndarray:
    """Training indices left after purging/embargoing around every contiguous run of ``test_idx``.

    For custom split schemes: the same rule the splitters use, applied to any
    (train, test) pair over rows sorted by ``t``.
    """
    ta, ea, is_dt = sample_times(t, t_end)
    emb = _span(embargo, is_dt)
    keep = np.zeros(ta.size, dtype=bool)
    keep[np.asarray(train_idx, dtype=np.int64)] = True
    test = np.unique(np.asarray(test_idx, dtype=np.int64))
    keep[test] = False
    for lo, hi in _runs(test):
        _purge_mask(keep, lo, hi, ta, ea, emb)
    return np.flatnonzero(keep)


# --------------------------------------------------------------------------- splitters


class _PurgedSplitter:
    """Shared protocol: times from the constructor or X, a fold layout, purge + embargo."""

    def __init__(self, *, t: Any = None, t_end: Any = None, embargo: Span = 0) -> None:
        if (t is None) != (t_end is None):
            raise SplitError("pass both t and t_end, or neither (then X must carry them)")
        self.embargo = embargo
        self._times = sample_times(t, t_end) if t is not None else None
        if self._times is not None:
            _span(embargo, self._times[2])  # fail at construction, not mid-CV

    # -- subclasses define the fold layout over n sorted rows
    def _layout(self, n: int) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        """[(train candidate mask, [test blocks [lo, hi)]), ...] before purging."""
        raise NotImplementedError

    def _resolve(self, X: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        if self._times is not None:
            n = self._times[0].size
            if X is not None and _n_rows(X) != n:
                raise SplitError(
                    f"X has {_n_rows(X)} rows but the splitter was given {n} sample times",
                    hint="t and t_end must be aligned with X's rows",
                )
            return self._times
        if X is None:
            raise SplitError(
                "sample times unknown: pass t= and t_end= or an X with ts/t_end columns"
            )
        return sample_times(*_frame_times(X))

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)``; ``y`` and ``groups`` are accepted for sklearn and ignored."""
        t, t_end, is_dt = self._resolve(X)
        emb = _span(self.embargo, is_dt)
        for k, (train_mask, blocks) in enumerate(self._layout(t.size)):
            keep = train_mask.copy()
            for lo, hi in blocks:
                keep[lo:hi] = False
            for lo, hi in blocks:
                _purge_mask(keep, lo, hi, t, t_end, emb)
            train = np.flatnonzero(keep)
            test = np.concatenate([np.arange(lo, hi) for lo, hi in blocks])
            if train.size == 0:
                raise SplitError(
                    f"{type(self).__name__}: split {k} has no training samples left after purging",
                    hint="use fewer splits, a shorter embargo, or labels with shorter horizons",
                )
            purged = int(train_mask.sum()) - int(train_mask[test].sum()) - train.size
            log.debug(
                "%s split %d: train=%d test=%d purged+embargoed=%d",
                type(self).__name__,
                k,
                train.size,
                test.size,
                purged,
            )
            yield train, test

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of splits ``split`` yields for this X."""
        if self._times is not None:
            n = self._times[0].size
        elif X is not None:
            n = _n_rows(X)
        else:
            raise SplitError("get_n_splits needs X (or t/t_end given to the constructor)")
        return len(self._layout(n))

    def _params(self) -> dict[str, Any]:
        return {"embargo": self.embargo}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        given = "" if self._times is None else f", t=<{self._times[0].size} times>"
        return f"{type(self).__name__}({args}{given})"


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


def _check_positive(value: Any, name: str, minimum: int = 1) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise SplitError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _prefix_mask(n: int, lo: int, hi: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[lo:hi] = True
    return mask


class PurgedWalkForward(_PurgedSplitter):
    """Walk-forward: test blocks march forward in time, training is everything before (purged).

    Like ``sklearn.model_selection.TimeSeriesSplit``: the last
    ``n_splits * test_size`` rows form ``n_splits`` consecutive test blocks;
    split ``k`` trains on all rows before block ``k`` (at most
    ``max_train_size`` of them), minus those whose label window reaches into
    the block.  ``test_size`` defaults to ``n // (n_splits + 1)``, or to
    ``(n - min_train_size) // n_splits`` when ``min_train_size`` is given.
    """

    def __init__(
        self,
        n_splits: int = 5,
        embargo: Span = 0,
        test_size: int | None = None,
        min_train_size: int | None = None,
        max_train_size: int | None = None,
        *,
        t: Any = None,
        t_end: Any = None,
    ) -> None:
        self.n_splits = _check_positive(n_splits, "n_splits")
        self.test_size = None if test_size is None else _check_positive(test_size, "test_size")
        self.min_train_size = (
            None if min_train_size is None else _check_positive(min_train_size, "min_train_size")
        )
        self.max_train_size = (
            None if max_train_size is None else _check_positive(max_train_size, "max_train_size")
        )
        super().__init__(t=t, t_end=t_end, embargo=embargo)

    def _test_size(self, n: int) -> int:
        if self.test_size is not None:
            return self.test_size
        if self.min_train_size is not None:
            return (n - self.min_train_size) // self.n_splits
        return n // (self.n_splits + 1)

    def _layout(self, n: int) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        size = self._test_size(n)
        first = n - self.n_splits * size
        need = self.min_train_size or 1
        if size < 1 or first < need:
            raise SplitError(
                f"{type(self).__name__}: {n} samples cannot hold {self.n_splits} test blocks of "
                f"{size} after a first training set of >= {need}",
                hint="use fewer splits, a smaller test_size/min_train_size, or more data",
            )
        out = []
        for k in range(self.n_splits):
            lo = first + k * size
            start = 0 if self.max_train_size is None else max(0, lo - self.max_train_size)
            out.append((_prefix_mask(n, start, lo), [(lo, lo + size)]))
        return out

    def _params(self) -> dict[str, Any]:
        return {
            "n_splits": self.n_splits,
            "embargo": self.embargo,
            "test_size": self.test_size,
            "min_train_size": self.min_train_size,
            "max_train_size": self.max_train_size,
        }


class ExpandingWindow(_PurgedSplitter):
    """Seed 003's walk-forward: cut the data into ``n_splits + 1`` equal blocks; fold k trains on
    blocks ``0..k`` (growing) and tests on block ``k + 1``; purged and embargoed."""

    def __init__(
        self, n_splits: int = 3, embargo: Span = 0, *, t: Any = None, t_end: Any = None
    ) -> None:
        self.n_splits = _check_positive(n_splits, "n_splits")
        super().__init__(t=t, t_end=t_end, embargo=embargo)

    def _layout(self, n: int) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        if n < self.n_splits + 1:
            raise SplitError(f"ExpandingWindow: {n} samples cannot form {self.n_splits + 1} blocks")
        edges = np.linspace(0, n, self.n_splits + 2).astype(np.int64)
        return [
            (_prefix_mask(n, 0, int(edges[k + 1])), [(int(edges[k + 1]), int(edges[k + 2]))])
            for k in range(self.n_splits)
        ]

    def _params(self) -> dict[str, Any]:
        return {"n_splits": self.n_splits, "embargo": self.embargo}


class RollingWindow(_PurgedSplitter):
    """Fixed-length training window sliding forward: train on the ``train_size`` rows just before
    each test block of ``test_size`` rows (the purge trims the window's tail); blocks advance by
    ``step`` (default ``test_size``); only full test blocks are used."""

    def __init__(
        self,
        train_size: int,
        test_size: int,
        step: int | None = None,
        embargo: Span = 0,
        *,
        t: Any = None,
        t_end: Any = None,
    ) -> None:
        self.train_size = _check_positive(train_size, "train_size")
        self.test_size = _check_positive(test_size, "test_size")
        self.step = self.test_size if step is None else _check_positive(step, "step")
        super().__init__(t=t, t_end=t_end, embargo=embargo)

    def _layout(self, n: int) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        starts = np.arange(self.train_size, n - self.test_size + 1, self.step)
        if starts.size == 0:
            raise SplitError(
                f"RollingWindow: {n} samples cannot hold train_size={self.train_size} + test_size={self.test_size}",
                hint="shrink the windows or provide more data",
            )
        return [
            (_prefix_mask(n, int(s) - self.train_size, int(s)), [(int(s), int(s) + self.test_size)])
            for s in starts
        ]

    def _params(self) -> dict[str, Any]:
        return {
            "train_size": self.train_size,
            "test_size": self.test_size,
            "step": self.step,
            "embargo": self.embargo,
        }


class CombinatorialPurgedCV(_PurgedSplitter):
    """Combinatorial purged CV (Lopez de Prado, AFML ch. 12).

    Rows are cut into ``n_groups`` contiguous groups; each of the
    ``C(n_groups, k_test_groups)`` splits tests on one combination of groups
    and trains on every other row, purged and embargoed around *each* test
    group (so training rows after a test group are embargoed too).  Every
    group is tested in ``C(n-1, k-1)`` splits, which stitch into
    ``phi = k/n * C(n, k)`` complete out-of-sample backtest paths
    (:meth:`backtest_paths`), giving a distribution of path Sharpe ratios
    instead of one.
    """

    def __init__(
        self,
        n_groups: int = 6,
        k_test_groups: int = 2,
        embargo: Span = 0,
        *,
        t: Any = None,
        t_end: Any = None,
    ) -> None:
        self.n_groups = _check_positive(n_groups, "n_groups", 2)
        self.k_test_groups = _check_positive(k_test_groups, "k_test_groups")
        if self.k_test_groups >= self.n_groups:
            raise SplitError(
                f"k_test_groups={k_test_groups} must be < n_groups={n_groups}",
                hint="leave at least one group for training",
            )
        super().__init__(t=t, t_end=t_end, embargo=embargo)

    def test_group_combinations(self) -> list[tuple[int, ...]]:
        """Test groups of each split, in split order."""
        return list(combinations(range(self.n_groups), self.k_test_groups))

    def group_bounds(self, n: int) -> np.ndarray:
        """``n_groups + 1`` row edges: group g is rows ``[edges[g], edges[g+1])``."""
        if n < self.n_groups:
            raise SplitError(
                f"CombinatorialPurgedCV: {n} samples cannot form {self.n_groups} groups"
            )
        return np.linspace(0, n, self.n_groups + 1).astype(np.int64)

    def _layout(self, n: int) -> list[tuple[np.ndarray, list[tuple[int, int]]]]:
        edges = self.group_bounds(n)
        everything = np.ones(n, dtype=bool)
        return [
            (everything, [(int(edges[g]), int(edges[g + 1])) for g in combo])
            for combo in self.test_group_combinations()
        ]

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return comb(self.n_groups, self.k_test_groups)

    @property
    def n_paths(self) -> int:
        """phi = k/n * C(n, k) = C(n-1, k-1)."""
        return comb(self.n_groups - 1, self.k_test_groups - 1)

    def backtest_paths(self) -> np.ndarray:
        """``(n_paths, n_groups)`` int array: entry ``[p, g]`` is the split whose test predictions
        for group ``g`` belong to path ``p``.  Group g's j-th test split (in split order) feeds
        path j, so each path covers every group exactly once."""
        combos = np.array(self.test_group_combinations())  # (n_splits, k)
        member = np.zeros((combos.shape[0], self.n_groups), dtype=bool)
        member[np.arange(combos.shape[0])[:, None], combos] = True
        # for each group (column), the splits testing it, in order
        order = np.argsort(~member, axis=0, kind="stable")[: self.n_paths]
        return order.astype(np.int64)

    def assemble_paths(self, split_predictions: Sequence[np.ndarray], n: int) -> np.ndarray:
        """Stitch per-split test predictions (each aligned with that split's ``test_idx``) into an
        ``(n_paths, n)`` array of out-of-sample predictions, one row per backtest path."""
        if len(split_predictions) != self.get_n_splits():
            raise SplitError(
                f"expected {self.get_n_splits()} split predictions, got {len(split_predictions)}",
                hint="pass the test-fold predictions of every split, in split order",
            )
        edges = self.group_bounds(n)
        combos = self.test_group_combinations()
        paths = np.full((self.n_paths, n), np.nan)
        for p, row in enumerate(self.backtest_paths()):
            for g, s in enumerate(row):
                pred = np.asarray(split_predictions[s], dtype=np.float64)
                sizes = [int(edges[h + 1] - edges[h]) for h in combos[s]]
                if pred.shape[0] != sum(sizes):
                    raise SplitError(
                        f"split {s}: {pred.shape[0]} predictions for {sum(sizes)} test rows"
                    )
                offset = int(sum(sizes[: combos[s].index(g)]))
                paths[p, edges[g] : edges[g + 1]] = pred[
                    offset : offset + sizes[combos[s].index(g)]
                ]
        return paths

    def _params(self) -> dict[str, Any]:
        return {
            "n_groups": self.n_groups,
            "k_test_groups": self.k_test_groups,
            "embargo": self.embargo,
        }


class DatedHoldout(_PurgedSplitter):
    """One split: test on rows with ``start <= t (< end)``, train on rows whose whole label window
    ends before ``start`` (``t_end < start``) — the final untouched out-of-sample check."""

    def __init__(self, start: Any, end: Any = None, *, t: Any = None, t_end: Any = None) -> None:
        self.start = start
        self.end = end
        super().__init__(t=t, t_end=t_end, embargo=0)

    def split(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        t, t_end, is_dt = self._resolve(X)
        start = _time_scalar(self.start, is_dt, "start")
        test_mask = t >= start
        if self.end is not None:
            test_mask &= t < _time_scalar(self.end, is_dt, "end")
        train = np.flatnonzero((t < start) & (t_end < start))
        test = np.flatnonzero(test_mask)
        if train.size == 0 or test.size == 0:
            raise SplitError(
                f"DatedHoldout(start={self.start!r}): {train.size} training and {test.size} test rows",
                hint="choose a start inside the data range, with labelled rows on both sides",
            )
        yield train, test

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return 1

    def _params(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}
