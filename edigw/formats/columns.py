"""Rows of named columns, as the CSV and Excel readers yield them.

Both formats index a row's cells by header name; what they share lives here so that the
mapping engine's fast paths (``values_of``, ``rows_of``, see ``edigw.formats``) behave the
same whichever of the two read the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

Getter = Callable[[list[Any]], Sequence[Any]]


class Columns:
    """The column index of one file or sheet, and the cell getters made from it."""

    __slots__ = ()
    index: dict[str, int]
    getters: dict[tuple[str, ...], Getter | None]

    def getter(self, selectors: tuple[str, ...]) -> Getter | None:
        """Cells at ``selectors`` in one call; None when one of them is not a column."""
        try:
            return self.getters[selectors]
        except KeyError:
            pass
        getter: Getter | None
        if not all(s in self.index for s in selectors):
            getter = None
        elif len(selectors) == 1:
            position = self.index[selectors[0]]
            getter = lambda cells: (cells[position],)  # noqa: E731
        else:
            getter = itemgetter(*(self.index[s] for s in selectors))
        self.getters[selectors] = getter
        return getter


class ColumnRecord:
    """One row of cells read through its sheet's getters (``values_of``, ``rows_of``)."""

    __slots__ = ()
    _sheet: Columns
    cells: list[Any]

    def values_of(self, selectors: tuple[str, ...]) -> Sequence[Any] | None:
        """The raw cells at ``selectors`` ('' when empty); None when the row is short or a
        selector is not a column (``value`` then says what is wrong)."""
        getter = self._sheet.getter(selectors)
        if getter is None:
            return None
        try:
            return getter(self.cells)
        except IndexError:
            return None

    def rows_of(
        self, records: Sequence[ColumnRecord], selectors: tuple[str, ...]
    ) -> list[Sequence[Any]] | None:
        """``values_of`` for each of ``records`` (rows of the same file or sheet as this one)."""
        sheet = self._sheet
        getter = sheet.getter(selectors)
        if getter is None:
            return None
        try:
            return [getter(r.cells) for r in records if r._sheet is sheet]
        except (IndexError, AttributeError):
            return None
