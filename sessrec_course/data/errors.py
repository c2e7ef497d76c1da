"""The one exception type for bad input data."""

from __future__ import annotations

from typing import Any


class DataError(ValueError):
    """Bad input data: says which file, column and row, and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None,
                 row: Any = None, expected: str | None = None) -> None:
        parts = [message, f"file/source: {source}" if source else "", f"column: {column!r}" if column else "",
                 f"row: {row}" if row is not None else "", f"expected: {expected}" if expected else ""]
        super().__init__("; ".join(p for p in parts if p))
        self.source, self.column, self.row, self.expected = source, column, row, expected
