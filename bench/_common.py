"""Small timing helpers shared by the bench scripts.

Why one module: every benchmark must report the same things the same way —
best-of-N wall time (the least noisy estimate on a shared machine), a peak
memory figure, and a ratio against a baseline timed *in the same run* (never
against numbers from another machine or day).  Scripts import it as
``from _common import ...`` (they run as ``python bench/NAME.py``).
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Best and all wall times (seconds) of repeated calls, plus the last result."""

    best: float
    runs: tuple[float, ...]
    result: Any


def best_of(fn: Callable[[], T], *, repeat: int = 3, warmup: int = 1) -> Timing:
    """Call ``fn`` ``warmup`` times untimed (JIT, caches), then ``repeat`` times timed.

    Garbage is collected before each timed call so one run's garbage is not
    billed to the next.
    """
    result: Any = None
    for _ in range(warmup):
        result = fn()
    runs = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return Timing(min(runs), tuple(runs), result)


def traced_peak_mb(fn: Callable[[], T]) -> tuple[T, float]:
    """Peak MB allocated through Python's allocator (incl. numpy) while ``fn`` runs.

    Memory that native libraries allocate themselves (polars/arrow buffers) is
    NOT seen; use :func:`rss_peak_mb` for the process-wide high-water mark.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 1e6


def rss_peak_mb() -> float:
    """Process-wide peak resident memory so far, in MB (monotonic over the process)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, KiB on Linux


def machine() -> str:
    """One line describing where the numbers were measured."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    python = platform.python_version()
    return f"{platform.machine()} {cores} cores, Python {python}, {platform.system()}"


def ratio_line(
    label: str, ours: Timing, baseline: Timing, *, baseline_name: str, target: float | None = None
) -> str:
    """``label: ours 0.052 s vs pandas 0.410 s -> 7.9x faster (target >= 5x: OK)``."""
    ratio = baseline.best / ours.best if ours.best > 0 else float("inf")
    verdict = ""
    if target is not None:
        verdict = f" (target >= {target:g}x: {'OK' if ratio >= target else 'MISSED'})"
    return (
        f"{label}: ours {ours.best:.4f} s vs {baseline_name} {baseline.best:.4f} s "
        f"-> {ratio:.1f}x faster{verdict}"
    )


def report(lines: list[str]) -> None:
    """Print a block of result lines headed by the machine description."""
    print(f"# {machine()}")
    for line in lines:
        print(line)
