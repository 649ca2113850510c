"""PDFs as a person reads them: each page's text cleaned (`ingest.readers.paged`), its ruled tables as rows
named by their header (`ingest.readers.pdf_tables`), scanned or garbled pages read by OCR (or the file refused),
and a real title: `pdf_title` picks one that is not a generator's placeholder (`paper.dvi`, `Untitled
Document`, `Microsoft Word - draft.doc`).
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any

from ingest.ocr import OCR_DPI, Ocr
from ingest.readers.base import Read
from ingest.readers.paged import HEADING, clean_pages, tidy, unreadable
from ingest.readers.parts import join_parts
from ingest.readers.pdf_tables import Tables
from ingest.readers.text import title_line
from rag.errors import SourceError
from rag.types import Section

NO_TEXT_LAYER = ("PDF has no text layer (scanned images?); install Tesseract (`make ocr`, RAG_OCR=auto) "
                 "to read it, or run OCR on it first")
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled\b.*|\(?anonymous\)?|.*\.(?:dvi|tex|doc|docx|ps|eps|pdf|rtf|indd|qxd)"
    r"|microsoft (?:word|powerpoint)\b.*|document\d*|title|slide \d+|short communications?|presentation\d*"
    r"|[\d\s.,:/-]*)$", re.I)  # a bare number (a Federal Register page: 47698) is no title


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
        sizes: list[list[tuple[float, str]]] = []  # each page's lines with their font sizes
        garbage: dict[int, str] = {}
        first_lines: list[tuple[float, str]] = []
        tables = Tables(data)
        ocr_pages = 0
        for index, page in enumerate(document):
            textpage = page.get_textpage()
            line_sizes: list[tuple[float, str]] = []  # none for a page read by OCR
            try:
                text = textpage.get_text_range()
                why = unreadable(text)
                if ocr is not None and (why or not text.strip()) and _drawn(page):
                    ocr_pages += 1
                    ocr.allow(ocr_pages)
                    image = page.render(scale=OCR_DPI / 72).to_pil().convert("L")
                    text, why = ocr.read(image, where=f"page {index + 1} of {len(document)}"), None
                elif text.strip():
                    line_sizes = _line_sizes(textpage, text)
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
            sizes.append(line_sizes)
        title = document.get_metadata_value("Title")
    finally:
        tables.close()
        document.close()
    return _pages(_mark_headings(raw, sizes), garbage, title, first_lines)


def _drawn(page: Any) -> bool:
    """Whether anything is drawn on the page: a blank one (no objects at all) is not worth rendering for OCR."""
    import pypdfium2.raw as pdfium_c

    return bool(pdfium_c.FPDFPage_CountObjects(page.raw))


def _line_sizes(textpage: Any, text: str) -> list[tuple[float, str]]:
    """Each line of a page's text with its font size (its middle character's: one call per line)."""
    if len(text) != textpage.count_chars():
        return []  # characters outside the BMP: the text does not index the page's characters one to one
    return [(_char_size(textpage, (line.start() + line.end()) // 2), line.group(0).strip())
            for line in re.finditer(r"[^\r\n]+", text)]


def _char_size(textpage: Any, i: int) -> float:
    """A character's font size times the scale its text is drawn at."""
    import pypdfium2.raw as pdfium_c

    matrix = pdfium_c.FS_MATRIX()
    pdfium_c.FPDFText_GetMatrix(textpage.raw, i, ctypes.byref(matrix))
    return round(float(pdfium_c.FPDFText_GetFontSize(textpage.raw, i)) * math.hypot(matrix.c, matrix.d), 1)


def _mark_headings(raw: list[str], sizes: list[list[tuple[float, str]]]) -> list[str]:
    """The pages' texts with each line set larger than the body text (1.15 times its most common size, by
    characters) marked as a heading, so that it is never run into the paragraph under it."""
    weight: Counter[float] = Counter()
    for page in sizes:
        for size, line in page:
            weight[size] += len(line)
    if not weight:
        return raw
    body = weight.most_common(1)[0][0]
    return [_marked(text, {line for size, line in page
                           if size >= 1.15 * body and len(line) <= 120 and any(c.isalpha() for c in line)})
            for text, page in zip(raw, sizes, strict=True)]


def _marked(text: str, headings: set[str]) -> str:
    """A page's text with its lines that are `headings` marked as such."""
    if not headings:
        return text
    return re.sub(r"(?m)^[ \t]*(\S[^\r\n]*?)[ \t]*(?=\r?$)",
                  lambda m: HEADING + m.group(0) if m.group(1) in headings else m.group(0), text)


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
    return Read(pdf_title(metadata_title, first_lines) or _first_line_title(cleaned), text, sections)


def _first_line_title(pages: Sequence[str]) -> str:
    """The first line of the first page with text, once cleaned (running lines and margin numbers gone), when
    nothing on page 1 is set larger: a title line as a text file has one ("IN THE SUPREME COURT OF THE UNITED
    STATES"), not a table's row (`Date | Company`), a sentence or a caption's run."""
    first = title_line(next((page for page in pages if page.strip()), ""))
    ok = 3 <= len(first) <= 120 and _wordy(first) and not _PLACEHOLDER_TITLE.match(first) and "|" not in first
    return first if ok and not first.endswith((".", ",", ":", ";")) else ""


def _sized_lines(textpage: Any) -> list[tuple[float, str]]:
    """A page's lines of text with the font size most of each line is set in, in reading order."""
    text = textpage.get_text_range()
    if len(text) != textpage.count_chars():
        return []  # characters outside the BMP: the text does not index the page's characters one to one
    size = partial(_char_size, textpage)
    lines = []
    for line in re.finditer(r"[^\r\n]+", text):
        sized = [(i, size(i)) for i in range(line.start(), line.end()) if not text[i].isspace()]
        if sized:
            usual = Counter(s for _, s in sized).most_common(1)[0][0]
            small = {i for i, s in sized if s < 0.7 * usual}  # a footnote mark or a superscript
            lines.append((usual, "".join(text[i] for i in range(line.start(), line.end()) if i not in small)))
    return lines


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
    candidates = [(size, tidy(text)) for size, text in first_page_lines[:40]]
    candidates = [(size, text) for size, text in candidates
                  if 3 <= len(text) <= 200 and _wordy(text) and not _PLACEHOLDER_TITLE.match(text)]
    if not candidates:
        return ""
    largest = max(size for size, _ in candidates)
    usual = Counter(size for size, _ in first_page_lines).most_common(1)[0][0]
    if largest <= usual and len(first_page_lines) > 5:
        return ""  # nothing set larger than the text: a table or a form, not a titled page (the file name)
    # The title can wrap over several lines of the same size (not into a caption's column: "HEALTH AND :").
    first = next(i for i, (size, _) in enumerate(candidates) if size == largest)
    parts: list[str] = []
    for size, text in candidates[first:]:
        if size != largest or len(" ".join([*parts, text])) > 120 or (parts and text.endswith(":")):
            break
        parts.append(text)
    return " ".join(parts) or candidates[first][1][:120]


def _wordy(text: str) -> bool:
    """Mostly letters: a title's line, not a table row of numbers or a rule of dashes (`- - - x`)."""
    visible = [ch for ch in text if not ch.isspace()]
    return sum(ch.isalpha() for ch in visible) >= 0.6 * len(visible)


def _letters(text: str) -> str:
    return "".join(ch for ch in tidy(text).lower() if ch.isalnum())
