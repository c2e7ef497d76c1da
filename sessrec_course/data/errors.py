"""The one exception type for bad input data."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data: says which file, which column, and what was expected."""

    def __init__(self, message: str, *, source: str | None = None, column: str | None = None,
                 expected: str | None = None) -> None:
        parts = [message]
        if source:
            parts.append(f"file/source: {source}")
        if column:
            parts.append(f"column: {column!r}")
        if expected:
            parts.append(f"expected: {expected}")
        super().__init__("; ".join(parts))
        self.source, self.column, self.expected = source, column, expected
