"""Error family for hydraquant.

Every library error is a :class:`HydraError` whose message says *what* went
wrong, *where* (file, row, column, config key) and *what to do*.  The CLI
prints the message without a traceback (unless ``--debug``) and exits
non-zero, so users see one actionable line instead of a stack dump.
"""

from __future__ import annotations


class HydraError(Exception):
    """Base class: an actionable error a user can fix."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  -> {hint}")


class ConfigError(HydraError):
    """A configuration file, key or override is invalid."""


class DataError(HydraError):
    """Input data is malformed: names the file, row and column."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file, self.row, self.column = file, row, column
        where = []
        if file is not None:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = f"[{', '.join(where)}] " if where else ""
        super().__init__(prefix + message, hint=hint)


class ChecksumError(DataError):
    """A downloaded archive does not match its published sha256."""


class DownloadError(HydraError):
    """A remote file could not be fetched."""


class LakeError(HydraError):
    """The Parquet lake is missing a table or a request cannot be served."""
