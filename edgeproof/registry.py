"""One registry type for models, export formats and runtimes (the timm pattern).

Each kind of thing is a table of named rows; adding one is one registration. Every
registry refuses a duplicate name the same way and names the valid ones when asked
for an unknown name.

Example:
    >>> widgets = Registry("widget", owner="build")
    >>> _ = widgets.add("knob", 1)
    >>> widgets.get("knob")
    1
    >>> widgets.add("knob", 2)
    Traceback (most recent call last):
    ...
    ValueError: widget 'knob' is registered twice
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from edgeproof.validation import check_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Named rows of one kind, kept in registration order.

    Args:
        kind: what a row is (``model``, ``format``, ``runtime``), for messages.
        owner: the caller named in an unknown-name error (``create_model``, ``bench``).
    """

    def __init__(self, kind: str, owner: str):
        self.kind, self.owner = kind, owner
        self._rows: dict[str, T] = {}

    def add(self, name: str, row: T) -> T:
        """Register ``row`` under ``name``; a name taken already is a programming error.

        Example:
            >>> Registry("format", "export").add("onnx-fp32", object()) is not None
            True
        """
        if name in self._rows:
            # A plugin that silently replaced a built-in row would change results unnoticed.
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._rows[name] = row
        return row

    def get(self, name: str) -> T:
        """The row ``name``; an unknown name is a UsageError listing the valid ones.

        Example:
            >>> Registry("runtime", "bench").get("tvm")
            Traceback (most recent call last):
            ...
            edgeproof.errors.UsageError: Unknown runtime 'tvm' for bench. Valid: .
        """
        check_choice(self.kind, name, list(self._rows), self.owner)
        return self._rows[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._rows)

    def rows(self) -> list[T]:
        """Registered rows in registration order."""
        return list(self._rows.values())

    def rows_by_name(self) -> dict[str, T]:
        """``{name: row}`` in registration order (a copy)."""
        return dict(self._rows)

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)
