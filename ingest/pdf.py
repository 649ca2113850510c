"""PDFs as a person reads them: each page's text cleaned of extraction debris, its ruled tables as
rows named by their header, scanned or garbled pages read by OCR (or the file refused), and a real title.

PDFium (pypdfium2) gives each page's text line by line, with what the page's fonts encode: ligatures (`ﬁ`),
control and private-use characters, words hyphenated at line ends, running headers and page numbers
on every page, and figure captions between the lines of a paragraph. `clean_pages` turns that into
paragraphs of plain text; `unreadable` says whether a page's text layer is garbage (a broken font
encoding gives `\\x86 \\x00 \\x01 ... n i m z m p`); `pdf_title` picks a title that is not a
generator's placeholder (`paper.dvi`, `Untitled Document`, `Microsoft Word - draft.doc`).
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from ingest.ocr import OCR_DPI, Ocr
from ingest.parts import Read, join_parts
from ingest.tables import merge_header, named_rows
from rag.errors import SourceError
from rag.types import Section

NO_TEXT_LAYER = ("PDF has no text layer (scanned images?); install Tesseract (`make ocr`, RAG_OCR=auto) "
                 "to read it, or run OCR on it first")
_ROW = "\x1f"  # starts a line that is a table row: a block of its own, never joined to its neighbours
_SOFT_HYPHEN = "\u00ad"  # a word broken at a line end (PDFium writes U+FFFE where it joined the two lines)
_LIGATURES = re.compile("[\ufb00-\ufb4f]")  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ and other presentation forms
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\ufffe\uffff]")  # control, private use
_SPACES = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"'”’]$")
_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table|Listing|Algorithm)\s+\d+[.:]?", re.I)
_LIST_ITEM = re.compile(r"^(?:[-*•◦▪]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlc]{1,6})\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_BROKEN_WORD = re.compile(r"([A-Za-z]{2,})(?:-\n|\u00ad\n?)([a-z]{2,})")
_INLINE_HYPHENATED = re.compile(r"(?<![\w-])[A-Za-z]{2,}-[a-z]{2,}(?![\w-])")
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"^(?:[-+±<>~$€£]?\d[\d,.]*[%x]?|[-–—])$")  # a table cell: 93, 47%, 1.2, $40, —
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled\b.*|\(?anonymous\)?|.*\.(?:dvi|tex|doc|docx|ps|eps|pdf|rtf|indd|qxd)"
    r"|microsoft (?:word|powerpoint)\b.*|document\d*|title|slide \d+|short communications?|presentation\d*)$", re.I)
_TABLE_MIN_SEGMENTS = 6  # drawn path segments on a page before it is searched for tables (three rules have 6)
_TEXT_COLUMNS = {"vertical_strategy": "text", "horizontal_strategy": "text"}  # between rules: columns by alignment
_Box = tuple[float, float, float, float]  # left, top, right, bottom, in points from the top left


def read_pdf(data: bytes, ocr: Ocr | None = None) -> Read:
    """A PDF's title, text (pages cleaned, each a section with its number) and sections.

    Refuses an encrypted PDF, one without a text layer, and one whose text layer is garbage on half
    or more of its pages, unless `ocr` reads those pages.
    """
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return _read_with_pypdf(data)
    try:
        raw: list[str] = []
        garbage: dict[int, str] = {}
        first_lines: list[tuple[float, str]] = []
        tables = _Tables(data)
        for index, page in enumerate(document):
            textpage = page.get_textpage()
            try:
                text = textpage.get_text_range()
                why = unreadable(text)
                if ocr is not None and (why or not text.strip()):
                    image = page.render(scale=OCR_DPI / 72).to_pil().convert("L")
                    text, why = ocr.read(image, where=f"page {index + 1} of {len(document)}"), None
                elif text.strip():
                    text = tables.splice(index, page, textpage, text)
                text = text.replace("\r\n", "\n").replace("\r", "\n")
                if text.strip() and why is None and not first_lines:
                    first_lines = _sized_lines(textpage)
            finally:
                textpage.close()
                page.close()
            if why is not None:
                garbage[index] = why
            raw.append(text)
        title = document.get_metadata_value("Title")
    finally:
        tables.close()
        document.close()
    return _pages(raw, garbage, title, first_lines)


def _read_with_pypdf(data: bytes) -> Read:
    """A PDF that PDFium will not open (a password, or damage pypdf tolerates), by pypdf."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise SourceError("encrypted PDF; save a copy without a password and index that")
    raw = [page.extract_text() or "" for page in reader.pages]
    garbage = {i: why for i, text in enumerate(raw) if (why := unreadable(text))}
    meta = reader.metadata
    return _pages(raw, garbage, str(meta.title) if meta and meta.title else "", [])


def _pages(raw: list[str], garbage: dict[int, str], metadata_title: str, first_lines: list[tuple[float, str]]) -> Read:
    """The document made of its pages' raw texts (`garbage`: the unreadable ones, with why), or the reason not."""
    with_text = [i for i, text in enumerate(raw) if text.strip()]
    if not with_text:
        raise SourceError(NO_TEXT_LAYER)
    if len(garbage) * 2 >= len(with_text):
        pages = ", ".join(str(i + 1) for i in sorted(garbage)[:5]) + (", ..." if len(garbage) > 5 else "")
        raise SourceError(
            f"text layer unreadable on {len(garbage)} of {len(with_text)} pages (broken font encoding: "
            f"{next(iter(garbage.values()))}; pages {pages}); print it to a new PDF or run OCR on it first")
    # A few unreadable pages (a formula set in a broken font) are left out rather than indexed as junk.
    cleaned = clean_pages(["" if i in garbage else text for i, text in enumerate(raw)])
    text, sections = join_parts((page, Section(0, page=number)) for number, page in enumerate(cleaned, start=1))
    if not sections:
        raise SourceError(NO_TEXT_LAYER)
    return pdf_title(metadata_title, first_lines), text, sections


def _sized_lines(textpage: Any) -> list[tuple[float, str]]:
    """A page's lines of text with the font size most of each line is set in, in reading order."""
    import pypdfium2.raw as pdfium_c

    text = textpage.get_text_range()
    if len(text) != textpage.count_chars():
        return []  # characters outside the BMP: the text does not index the page's characters one to one
    def size(i: int) -> float:  # the font's size times the scale its text is drawn at
        matrix = pdfium_c.FS_MATRIX()
        pdfium_c.FPDFText_GetMatrix(textpage.raw, i, ctypes.byref(matrix))
        return round(float(pdfium_c.FPDFText_GetFontSize(textpage.raw, i)) * math.hypot(matrix.c, matrix.d), 1)

    lines = []
    for line in re.finditer(r"[^\r\n]+", text):
        sized = [(i, size(i)) for i in range(line.start(), line.end()) if not text[i].isspace()]
        if sized:
            usual = Counter(s for _, s in sized).most_common(1)[0][0]
            small = {i for i, s in sized if s < 0.7 * usual}  # a footnote mark or a superscript
            lines.append((usual, "".join(text[i] for i in range(line.start(), line.end()) if i not in small)))
    return lines


class _Tables:
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
                out.append("\n" + "\n".join(_ROW + row for row in found[inside][1]) + "\n")
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
            return " ".join(_tidy("".join(kept)).replace(_SOFT_HYPHEN, "-").split())

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


def clean_pages(pages: Sequence[str]) -> list[str]:
    """The pages' texts as paragraphs: debris out, lines joined, running headers and page numbers gone,
    a table row (a line starting with `_ROW`) a block of its own."""
    lines = [[_tidy(line) for line in page.splitlines()] for page in pages]
    repeated = _running_lines(lines)
    out = []
    for page in lines:
        kept = [line for i, line in enumerate(page) if line and not _furniture(line, i, len(page), repeated)]
        out.append(_paragraphs(kept))
    return [(re.sub(r"(?<!\n)\n(?!\n)", " ", page)).replace(_ROW, "") for page in _join_broken_words(out)]


def _join_broken_words(pages: list[str]) -> list[str]:
    """Words broken at a line end made whole: `mas-` `ter` is `master`, but a compound keeps its hyphen
    where the document writes it with one elsewhere (`well-known`), or writes both halves as words
    and never the two run together (`external-consistency`)."""
    hyphenated = {m.group(0).lower() for page in pages for m in _INLINE_HYPHENATED.finditer(page)}
    words = Counter(w.lower() for page in pages for w in _WORD.findall(_BROKEN_WORD.sub(" ", page)))

    def rejoin(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        whole = f"{head}-{tail}".lower()
        compound = whole in hyphenated or (
            not words[(head + tail).lower()] and len(head) > 2 and words[head.lower()] and words[tail.lower()])
        return f"{head}-{tail}" if compound else head + tail

    return [_BROKEN_WORD.sub(rejoin, page).replace(_SOFT_HYPHEN, "") for page in pages]


def _tidy(line: str) -> str:
    """A line with ligatures spelled out, control and private-use characters dropped, spaces single;
    a table row keeps its mark, a line-end break its soft hyphen."""
    row = line.startswith(_ROW)
    line = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), line.replace("\ufffe", _SOFT_HYPHEN))
    line = _SPACES.sub(" ", _JUNK.sub("", line)).strip()
    return _ROW + line if row and line else line


def _shape(line: str) -> str:
    """A line with its digits masked, so "Page 3 of 12" and "Page 4 of 12" are the same header."""
    return re.sub(r"\d+", "#", line.lower())


def _running_lines(pages: Sequence[Sequence[str]]) -> set[str]:
    """Shapes of lines that stand in the top or bottom three lines of a third of the pages or more (three
    at least): a journal sets one header on even pages and another on odd ones."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for page in pages:
        edges = [line for line in (*page[:3], *page[-3:]) if line and not line.startswith(_ROW)]
        seen.update({_shape(line) for line in edges})
    return {shape for shape, n in seen.items() if n >= max(3, len(pages) / 3)}


def _furniture(line: str, i: int, total: int, repeated: set[str]) -> bool:
    """A running header or footer, or a page number, at the top or bottom of a page."""
    at_edge = (i < 3 or i >= total - 3) and not line.startswith(_ROW)
    return at_edge and (_shape(line) in repeated or bool(_PAGE_NUMBER.match(line)))


def _paragraphs(lines: Sequence[str]) -> str:
    """Lines grouped into paragraphs (a blank line between; a paragraph's lines still one per line);
    captions, list items, table rows (and lines of mostly numbers: rows of a table drawn without
    lines) and short heading-like lines are blocks of their own. A table
    that PDFium reads in the middle of a paragraph (it stands in the other column, or at the top of
    a page where a paragraph goes on) follows that paragraph."""
    lengths = sorted(len(line) for line in lines if not line.startswith(_ROW)) or [0]
    width = lengths[int(0.8 * (len(lengths) - 1))]  # a full line of the body text (not a stray wide one)
    blocks: list[list[str]] = []
    rows: list[str] = []  # table rows met inside a paragraph, placed after it
    for line in lines:
        if line.startswith(_ROW):
            # Inside a paragraph, or at the top of a page whose first paragraph goes on from the last page.
            inside = not blocks or not (blocks[-1][-1].startswith(_ROW) or _SENTENCE_END.search(blocks[-1][-1]))
            (rows.append(line) if inside else blocks.append([line]))
            continue
        if rows and _CAPTION.match(line):
            rows.append(line)  # the table's caption goes with it
            continue
        prev = blocks[-1][-1] if blocks else ""
        starts_block = (not blocks or bool(_CAPTION.match(line) or _LIST_ITEM.match(line))
                        or bool(_CAPTION.match(prev)) or prev.startswith(_ROW) or _tabular(line) or _tabular(prev))
        # A short line that ends a sentence ends its paragraph; so does a very short one followed by a
        # capitalised line (a heading). A line that goes on in lower case continues the sentence.
        goes_on = line[:1].islower()
        ended = not goes_on and len(prev) < 0.7 * width and (
            bool(_SENTENCE_END.search(prev)) or len(prev) < 0.4 * width)
        if starts_block or ended or (rows and not goes_on):
            if blocks or not goes_on:
                blocks.extend([row] for row in rows)
                rows = []
            blocks.append([line])
        else:
            blocks[-1].append(line)
    blocks.extend([row] for row in rows)
    return "\n\n".join("\n".join(block) for block in blocks)  # lines of a block: joined by clean_pages


def _tabular(line: str) -> bool:
    """A row of a table drawn without lines (not found as a table): mostly numbers, three or more."""
    tokens = line.split()
    numbers = sum(1 for token in tokens if _NUMBER.match(token))
    return numbers >= 3 and numbers >= 0.4 * len(tokens)


def unreadable(text: str) -> str | None:
    """Why a page's extracted text is garbage (a broken font encoding), or None when it reads as text."""
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < 40:
        return None  # too little to judge: a title page, a figure
    bad = sum(1 for ch in visible if _JUNK.match(ch) or unicodedata.category(ch) in ("Cn", "Co", "Cc"))
    if bad / len(visible) > 0.05:
        return "control or unassigned characters"
    tokens = text.split()
    latin = sum(1 for ch in visible if ch.isascii() and ch.isalpha())
    single = sum(1 for t in tokens if len(t) == 1 and t.isalpha())
    if latin > 0.5 * len(visible) and len(tokens) >= 20 and single / len(tokens) > 0.5:
        return "letters without words"
    return None


def pdf_title(metadata_title: str, first_page_lines: Sequence[tuple[float, str]]) -> str:
    """The PDF's own title when page 1 shows it, else the largest text at the top of page 1.

    `first_page_lines` are (font size, text) of page 1's lines in reading order (page 1: the first
    page with text). A metadata title that page 1 does not show as a line (or two or three) is a
    placeholder or a leftover of the generator: `paper.dvi`, `Untitled Document`, or a paper titled
    "System Model" by the tool that made it.
    """
    title = " ".join(metadata_title.split())
    wanted = _letters(title)
    lines = [_letters(text) for _, text in first_page_lines]
    shown = any("".join(lines[i:i + n]) == wanted for n in (1, 2, 3) for i in range(len(lines)))
    if title and not _PLACEHOLDER_TITLE.match(title) and (shown or not lines):
        return title
    candidates = [(size, _tidy(text)) for size, text in first_page_lines[:40]]
    candidates = [(size, text) for size, text in candidates if 3 <= len(text) <= 200 and not _PAGE_NUMBER.match(text)]
    if not candidates:
        return ""
    largest = max(size for size, _ in candidates)
    # The title can wrap over several lines of the same size.
    first = next(i for i, (size, _) in enumerate(candidates) if size == largest)
    parts: list[str] = []
    for size, text in candidates[first:]:
        if size != largest or len(" ".join(parts)) > 150:
            break
        parts.append(text)
    return " ".join(parts)[:200]


def _letters(text: str) -> str:
    return "".join(ch for ch in _tidy(text).lower() if ch.isalnum())
