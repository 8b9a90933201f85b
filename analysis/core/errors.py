"""Errors the pipeline raises for bad input, and how the CLI reports them."""
from __future__ import annotations

from pathlib import Path

from analysis.core.paths import ROOT


class DataError(Exception):
    """Bad or missing input: a one-line message naming file, column and row.

    The CLI prints the message alone (no traceback) and exits non-zero.
    """

    def __init__(self, message: str, *, file: str | None = None,
                 column: str | None = None, row: int | None = None,
                 hint: str | None = None) -> None:
        parts = []
        if file is not None:
            parts.append(f"{file}")
        if column is not None:
            parts.append(f"column '{column}'")
        if row is not None:
            parts.append(f"row {row}")
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)
        self.file, self.column, self.row = file, column, row


class DesignError(DataError):
    """The study design file is inconsistent (unknown LA, measure, impossible design)."""


def relative_path(path: str | Path) -> str:
    """A path relative to the repository root for messages (as given when outside it)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
