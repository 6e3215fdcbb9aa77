"""Parallel HTTP file download with sha256 verification, resume and a local cache.

Why its own module: the Binance archive is one user, but anything served as
"file + checksum sidecar" over HTTP (mirrors, a loopback test server) goes
through the same rules:

* **Atomic.** Bytes go to ``dest.part``; only a verified file is renamed to
  ``dest``. A crash leaves at worst a ``.part`` that the next run resumes.
* **Verified cache.** A file counts as cached only when ``dest`` and its
  ``dest.CHECKSUM`` sidecar are both present and the sha256 matches; then no
  request at all is made, so a re-run costs disk reads only.
* **Resume.** An existing ``.part`` is continued with an HTTP Range request;
  a server that ignores Range (answers 200) makes us start over cleanly.
* **Not fatal.** 404 is recorded as *missing*; a checksum mismatch or HTTP
  error fails that file only, the others still finish. Callers decide.
* **Retries** with exponential backoff on connection errors, 429 and 5xx.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from hydraquant.errors import ChecksumError, DownloadError, HydraError

logger = logging.getLogger(__name__)

Status = Literal["downloaded", "skipped", "missing", "failed"]
ProgressCallback = Callable[["DownloadResult"], None]

_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class DownloadTask:
    """One file to fetch; with ``checksum_url`` it is verified against a sha256 sidecar."""

    url: str
    dest: Path
    checksum_url: str | None = None


@dataclass(frozen=True)
class DownloadResult:
    """What happened to one task. ``bytes`` counts bytes received over the network."""

    task: DownloadTask
    status: Status
    bytes: int = 0
    resumed: bool = False
    error: HydraError | None = None


@dataclass
class DownloadReport:
    results: list[DownloadResult] = field(default_factory=list)

    def _with(self, status: Status) -> list[DownloadResult]:
        return [r for r in self.results if r.status == status]

    @property
    def downloaded(self) -> list[DownloadResult]:
        return self._with("downloaded")

    @property
    def skipped(self) -> list[DownloadResult]:
        return self._with("skipped")

    @property
    def missing(self) -> list[DownloadResult]:
        return self._with("missing")

    @property
    def failed(self) -> list[DownloadResult]:
        return self._with("failed")

    def raise_for_failures(self) -> None:
        """Raise the first failure's error (others attached as a note), if any."""
        failed = self.failed
        if not failed:
            return
        first = failed[0].error or DownloadError(f"download of {failed[0].task.url} failed")
        if len(failed) > 1:
            first.add_note(
                f"{len(failed) - 1} more failed: " + ", ".join(r.task.url for r in failed[1:])
            )
        raise first


# --------------------------------------------------------------------------- #
# Checksums and the local cache
# --------------------------------------------------------------------------- #


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(text: str, *, source: str) -> str:
    """The hex digest of a ``<sha256>  <name>`` sidecar (lower-cased)."""
    token = text.strip().split()[0] if text.strip() else ""
    if not _SHA256.match(token):
        raise ChecksumError(
            f"malformed checksum file (expected '<sha256>  <name>', got {text[:80]!r})",
            file=source,
            hint="delete the .CHECKSUM file and download again",
        )
    return token.lower()


def checksum_sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".CHECKSUM")


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def is_cached(dest: Path) -> bool:
    """True when ``dest`` and its sidecar exist and agree (reads the file once)."""
    sidecar = checksum_sidecar(dest)
    if not (dest.is_file() and sidecar.is_file()):
        return False
    try:
        expected = parse_checksum(sidecar.read_text(), source=str(sidecar))
    except ChecksumError:
        return False
    return sha256_file(dest) == expected


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- #
# One task
# --------------------------------------------------------------------------- #


class _MissingError(Exception):
    """404: the file is not published."""


@dataclass(frozen=True)
class _Policy:
    retries: int
    backoff_s: float


def _sleep_backoff(policy: _Policy, attempt: int) -> None:
    time.sleep(min(policy.backoff_s * (2**attempt), _MAX_BACKOFF_S))


def _get_text(client: httpx.Client, url: str, policy: _Policy) -> str:
    """GET a small file with retries; 404 raises _MissingError."""
    for attempt in range(policy.retries + 1):
        try:
            resp = client.get(url)
        except httpx.TransportError as exc:
            if attempt == policy.retries:
                raise DownloadError(
                    f"cannot reach {url}: {exc}", hint="check the network/base URL and retry"
                ) from None
            _sleep_backoff(policy, attempt)
            continue
        if resp.status_code == 404:
            raise _MissingError(url)
        if resp.status_code in _RETRY_STATUS and attempt < policy.retries:
            _sleep_backoff(policy, attempt)
            continue
        if resp.status_code != 200:
            raise DownloadError(f"GET {url} answered HTTP {resp.status_code}", hint="retry later")
        return resp.text
    raise AssertionError("unreachable")  # pragma: no cover


def _content_range_start(value: str | None) -> int | None:
    match = re.match(r"bytes (\d+)-", value or "")
    return int(match.group(1)) if match else None


def _download_to_part(
    client: httpx.Client,
    url: str,
    part: Path,
    policy: _Policy,
    on_bytes: Callable[[int], None] | None,
) -> tuple[int, bool]:
    """Fill ``part`` with the whole body of ``url``; returns (bytes received, resumed).

    Each attempt continues from the current size of ``part`` so a dropped
    connection costs only the bytes not yet written.
    """
    received, resumed = 0, False
    for attempt in range(policy.retries + 1):
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with client.stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                if status == 404:
                    raise _MissingError(url)
                if status == 416 and offset:
                    # Our part is already as long as the file (or longer): let
                    # the checksum decide; a bad part is discarded by the caller.
                    return received, True
                if status in _RETRY_STATUS:
                    if attempt == policy.retries:
                        raise DownloadError(
                            f"GET {url} answered HTTP {status} after {attempt + 1} tries",
                            hint="the server is unhealthy; retry later",
                        )
                    _sleep_backoff(policy, attempt)
                    continue
                if status == 206:
                    if _content_range_start(resp.headers.get("content-range")) != offset:
                        # A range we did not ask for: unusable, start over.
                        part.unlink(missing_ok=True)
                        continue
                    mode, resumed = "ab", True
                    logger.debug("resuming %s at byte %d", url, offset)
                elif status == 200:
                    # Fresh download, or a server that ignored our Range: restart.
                    mode = "wb"
                else:
                    raise DownloadError(f"GET {url} answered HTTP {status}", hint="retry later")
                with open(part, mode) as fh:
                    # No chunk_size: a buffered chunk would be lost if the link drops.
                    for chunk in resp.iter_bytes():
                        fh.write(chunk)
                        received += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
            return received, resumed
        except httpx.TransportError as exc:
            if attempt == policy.retries:
                raise DownloadError(
                    f"download of {url} kept failing: {exc}",
                    hint="check the network/base URL; re-running resumes from the partial file",
                ) from None
            logger.debug("retrying %s after %s", url, exc)
            _sleep_backoff(policy, attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_one(
    client: httpx.Client,
    task: DownloadTask,
    *,
    retries: int = 4,
    backoff_s: float = 0.5,
    on_bytes: Callable[[int], None] | None = None,
) -> DownloadResult:
    """Bring one task's file into the verified cache; never raises for HydraErrors."""
    policy = _Policy(retries, backoff_s)
    dest = Path(task.dest)
    try:
        if task.checksum_url is None:
            if dest.is_file():
                return DownloadResult(task, "skipped")
            dest.parent.mkdir(parents=True, exist_ok=True)
            received, resumed = _download_to_part(
                client, task.url, part_path(dest), policy, on_bytes
            )
            os.replace(part_path(dest), dest)
            return DownloadResult(task, "downloaded", received, resumed)

        if is_cached(dest):
            return DownloadResult(task, "skipped")
        checksum_text = _get_text(client, task.checksum_url, policy)
        expected = parse_checksum(checksum_text, source=task.checksum_url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_file() and sha256_file(dest) == expected:
            _atomic_write_text(checksum_sidecar(dest), checksum_text)
            return DownloadResult(task, "skipped")

        part = part_path(dest)
        received, resumed = _download_to_part(client, task.url, part, policy, on_bytes)
        actual = sha256_file(part)
        if actual != expected and resumed:
            # The partial file may come from an older version of the file or a
            # broken transfer: one clean retry before blaming the server.
            logger.info("resumed %s failed its checksum; downloading from scratch", task.url)
            part.unlink(missing_ok=True)
            more, _ = _download_to_part(client, task.url, part, policy, on_bytes)
            received += more
            resumed = False
            actual = sha256_file(part)
        if actual != expected:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"sha256 mismatch: published {expected}, downloaded file has {actual}; "
                "the file was not kept",
                file=str(dest),
                hint=f"retry later; if it persists the archive file at {task.url} is corrupt",
            )
        os.replace(part, dest)
        _atomic_write_text(checksum_sidecar(dest), checksum_text)
        return DownloadResult(task, "downloaded", received, resumed)
    except _MissingError:
        return DownloadResult(task, "missing")
    except HydraError as exc:
        logger.warning("%s", exc)
        return DownloadResult(task, "failed", error=exc)
    except httpx.HTTPError as exc:  # protocol/decoding errors outside the retry set
        return DownloadResult(
            task,
            "failed",
            error=DownloadError(f"download of {task.url} failed: {exc}", hint="retry later"),
        )
    except OSError as exc:
        return DownloadResult(
            task,
            "failed",
            error=DownloadError(
                f"cannot write {dest}: {exc}", hint="check disk space and permissions"
            ),
        )


# --------------------------------------------------------------------------- #
# Many tasks
# --------------------------------------------------------------------------- #


def download_files(
    tasks: Sequence[DownloadTask],
    *,
    workers: int = 8,
    retries: int = 4,
    backoff_s: float = 0.5,
    timeout_s: float = 60.0,
    progress: bool | ProgressCallback = False,
    client: httpx.Client | None = None,
) -> DownloadReport:
    """Fetch ``tasks`` with a thread pool; results come back in task order.

    ``progress=True`` shows a rich progress bar (files and bytes); a callable
    is called with each :class:`DownloadResult` as it finishes, for callers
    with their own UI; ``False`` is silent (library use, tests).
    """
    if workers < 1:
        raise DownloadError(f"workers must be >= 1 (got {workers})")
    dests = [Path(t.dest) for t in tasks]
    if len(set(dests)) != len(dests):
        raise DownloadError("two download tasks share one destination path")
    if not tasks:
        return DownloadReport([])

    own_client = client is None
    if client is None:
        client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        )
    bar = _RichBar(len(tasks)) if progress is True else None
    callback = progress if callable(progress) else None
    results: dict[int, DownloadResult] = {}
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download") as pool:
            futures = {
                pool.submit(
                    fetch_one,
                    client,
                    task,
                    retries=retries,
                    backoff_s=backoff_s,
                    on_bytes=bar.add_bytes if bar else None,
                ): i
                for i, task in enumerate(tasks)
            }
            for fut in as_completed(futures):
                result = fut.result()
                results[futures[fut]] = result
                if bar is not None:
                    bar.file_done(result)
                if callback is not None:
                    callback(result)
    finally:
        if bar is not None:
            bar.close()
        if own_client:
            client.close()
    report = DownloadReport([results[i] for i in range(len(tasks))])
    logger.info(
        "downloads: %d new, %d cached, %d missing, %d failed",
        len(report.downloaded),
        len(report.skipped),
        len(report.missing),
        len(report.failed),
    )
    return report


class _RichBar:
    """A files + bytes progress bar; rich's Progress is thread-safe for updates."""

    def __init__(self, total: int) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        self._bytes = Progress(DownloadColumn(), TransferSpeedColumn())
        self._files_id = self._progress.add_task("download", total=total, detail="")
        self._bytes_id = self._bytes.add_task("bytes", total=None)
        self._counts = {"downloaded": 0, "skipped": 0, "missing": 0, "failed": 0}
        from rich.console import Group
        from rich.live import Live

        self._live = Live(Group(self._progress, self._bytes), refresh_per_second=8, transient=False)
        self._live.start()

    def add_bytes(self, n: int) -> None:
        self._bytes.update(self._bytes_id, advance=n)

    def file_done(self, result: DownloadResult) -> None:
        self._counts[result.status] += 1
        detail = ", ".join(f"{v} {k}" for k, v in self._counts.items() if v)
        self._progress.update(self._files_id, advance=1, detail=detail)

    def close(self) -> None:
        self._live.stop()


__all__ = [
    "DownloadReport",
    "DownloadResult",
    "DownloadTask",
    "checksum_sidecar",
    "download_files",
    "fetch_one",
    "is_cached",
    "parse_checksum",
    "part_path",
    "sha256_file",
]
