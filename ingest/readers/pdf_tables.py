"""A PDF page's ruled tables (found by pdfplumber between drawn rules), spliced into its text as rows named by
their header, so that a quote from a row keeps the column names it needs."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

from ingest.readers.paged import ROW, SOFT_HYPHEN, tidy
from ingest.readers.tables import merge_header, named_rows

_TABLE_MIN_SEGMENTS = 6  # drawn path segments on a page before it is searched for tables (three rules have 6)
_TEXT_COLUMNS = {"vertical_strategy": "text", "horizontal_strategy": "text"}  # between rules: columns by alignment
_Box = tuple[float, float, float, float]  # left, top, right, bottom, in points from the top left


class Tables:
    """Tables drawn with lines, found by pdfplumber's table finder on pages that draw enough lines,
    and spliced into PDFium's page text as one line per row: a grid of lines between rows and
    columns, or rows set between three horizontal rules (columns then found by the text's alignment)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._plumber: Any = None  # opened on the first page that draws lines

    def splice(self, index: int, page: Any, textpage: Any, text: str) -> str:
        """The page's text with each table's characters replaced, where the table starts, by its rows."""
        if not self._draws_lines(page) or len(text) != textpage.count_chars():
            return text
        height = page.get_height()
        centres: list[tuple[float, float] | None] = []  # of each character, from the top left (as pdfplumber)
        for i in range(len(text)):
            left, bottom, right, top = textpage.get_charbox(i)
            centres.append(((left + right) / 2, height - (bottom + top) / 2) if right > left else None)
        found = self._find(index, text, centres)
        if not found:
            return text
        out, placed = [], set()
        for i, ch in enumerate(text):
            inside = next((k for k, (box, _) in enumerate(found) if _within(centres[i], box)), None)
            if inside is None:
                out.append(ch)
            elif inside not in placed:
                placed.add(inside)
                out.append("\n" + "\n".join(ROW + row for row in found[inside][1]) + "\n")
        return "".join(out)

    def close(self) -> None:
        if self._plumber is not None:
            self._plumber.close()

    @staticmethod
    def _draws_lines(page: Any) -> bool:
        import pypdfium2.raw as pdfium_c

        segments = 0
        for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_PATH], max_depth=3):
            segments += max(pdfium_c.FPDFPath_CountSegments(obj.raw), 0)
            if segments >= _TABLE_MIN_SEGMENTS:
                return True
        return False

    def _find(self, index: int, text: str, centres: list[tuple[float, float] | None]) -> list[tuple[_Box, list[str]]]:
        """(bounding box, rows) of each table on the page; boxes of figures that only look like grids
        left out. The grid is pdfplumber's; a cell's text is PDFium's characters whose centre is in it
        (pdfminer runs words together, and a box's edge cuts through the next row's letters)."""
        import pdfplumber

        logging.getLogger("pdfminer").setLevel(logging.ERROR)
        if self._plumber is None:
            self._plumber = pdfplumber.open(io.BytesIO(self.data))
        page = self._plumber.pages[index]

        def cell_text(box: _Box) -> str:
            inside = {i for i, centre in enumerate(centres) if _within(centre, box)}
            if not inside:
                return ""
            kept = (text[i] if i in inside else " " if text[i].isspace() else ""
                    for i in range(min(inside), max(inside) + 1))
            return " ".join(tidy("".join(kept)).replace(SOFT_HYPHEN, "-").split())

        try:
            tables = [(table.bbox, [row.cells for row in table.rows]) for table in page.find_tables()]
            for region in _rule_groups(page.edges):
                if not any(_overlap(region, box) for box, _ in tables):
                    # Columns found by alignment end where their words do: the last one reaches the rules' end.
                    tables += [(region, [[cell if cell is None or column < len(row) - 1 else
                                          (cell[0], cell[1], region[2], cell[3]) for column, cell in enumerate(row)]
                                         for row in (r.cells for r in table.rows)])
                               for table in page.crop(region).find_tables(_TEXT_COLUMNS)]
            found: list[tuple[_Box, list[str]]] = []
            for box, cells in tables:
                titles, grid = _trim(_grid(cells, cell_text))
                if _looks_like_a_table(grid):
                    found.append((box, titles + named_rows(merge_header(grid))))
            return found
        finally:
            page.close()


def _rule_groups(edges: list[dict[str, Any]]) -> list[_Box]:
    """Where a table is set between horizontal rules only (LaTeX's booktabs: a rule above, one under
    the header, one below): three or more horizontal lines of the same extent, 20 points apart or more."""
    groups: dict[tuple[int, int], list[float]] = {}
    for edge in edges:
        if edge["orientation"] == "h" and edge["x1"] - edge["x0"] > 60:
            groups.setdefault((round(edge["x0"] / 3), round(edge["x1"] / 3)), []).append(edge["top"])
    boxes = []
    for (left, right), tops in groups.items():
        rules = sorted({round(top, 1) for top in tops})
        if len(rules) >= 3 and rules[-1] - rules[0] >= 20:
            boxes.append((3.0 * left - 3, rules[0] - 1, 3.0 * right + 3, rules[-1] + 1))
    return boxes


def _overlap(a: _Box, b: _Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _within(point: tuple[float, float] | None, box: _Box) -> bool:
    return point is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _grid(cells: list[list[_Box | None]], text: Callable[[_Box], str]) -> list[list[str | None]]:
    """The text of each cell; a cell spanning columns (pdfplumber gives its box once, then None) repeated
    over them; None left where a cell is merged with the one above."""
    lefts: dict[int, float] = {}
    for row in cells:
        for column, box in enumerate(row):
            if box is not None:
                lefts[column] = min(lefts.get(column, box[0]), box[0])
    grid: list[list[str | None]] = []
    for row in cells:
        out: list[str | None] = []
        owner: tuple[_Box, str] | None = None
        for column, box in enumerate(row):
            if box is not None:
                owner = (box, text(box))
                out.append(owner[1])
            elif owner is not None and column in lefts and owner[0][2] > lefts[column] + 1:
                out.append(owner[1])  # the cell on the left reaches over this column
            else:
                out.append(None)
        grid.append(out)
    return grid


def _trim(grid: list[list[str | None]]) -> tuple[list[str], list[list[str | None]]]:
    """A grid without its empty rows and columns, and the titles drawn inside its frame (a first row of
    one text across all its cells, such as the caption) taken out of it."""
    grid = [row for row in grid if any(row)]
    keep = [column for column in range(max(map(len, grid), default=0))
            if any(column < len(row) and row[column] for row in grid)]
    grid = [[row[column] if column < len(row) else "" for column in keep] for row in grid]
    titles = []
    while grid and len(grid[0]) > 1 and all(grid[0]) and len(set(grid[0])) == 1:  # one text over every cell
        titles.append(str(grid.pop(0)[0]))
    return titles, grid


def _looks_like_a_table(grid: list[list[str | None]]) -> bool:
    """Two rows and two columns or more, most cells filled with short text, a header of two cells or more
    (a framed figure or a boxed paragraph is not a table)."""
    if len(grid) < 2 or len(grid[0]) < 2:
        return False
    cells = [cell for row in grid for cell in row]
    filled = [cell for cell in cells if cell]
    return (len(filled) >= 0.6 * len(cells) and max(map(len, filled)) <= 120
            and sum(1 for cell in grid[0] if cell) >= 2)
