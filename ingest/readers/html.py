"""HTML: the visible text as blocks, tables as rows named by their header, headings as sections."""

from __future__ import annotations

import re

from ingest.readers.base import Read
from ingest.readers.tables import table_rows
from ingest.readers.text import merge_sections
from rag.errors import SourceError
from rag.types import Section

_HTML_BLOCKS = (
    "p", "div", "li", "ul", "ol", "pre", "blockquote", "section", "article", "header", "footer",
    "table", "tr", "td", "th", "dt", "dd", "figcaption", "caption", "h1", "h2", "h3", "h4", "h5", "h6",
)


def read_html(data: bytes) -> Read:
    """An HTML page: its `<title>` (or first `<h1>`), its text without scripts and styles, its headings."""
    from bs4 import BeautifulSoup

    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("binary file, not HTML; remove it or convert it")
    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "title"]):
        tag.decompose()
    for table in reversed(soup.find_all("table")):  # innermost first: a nested table becomes one cell's text
        rows = [[cell.get_text(" ") for cell in row.find_all(["th", "td"], recursive=False)]
                for row in table.find_all("tr")]
        table.replace_with(f"\n\n{table_rows(rows)}\n\n")
    headings = [(int(h.name[1]), " ".join(h.get_text().split())) for h in soup.find_all(re.compile("^h[1-6]$"))]
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    raw = soup.get_text()
    raw = re.sub(r"[ \t\xa0]+", " ", raw)
    text = re.sub(r"\s*\n\s*\n\s*", "\n\n", re.sub(r" ?\n ?", "\n", raw)).strip()
    sections, pos = [Section(0)], 0
    path: list[tuple[int, str]] = []
    for level, heading in headings:
        # A heading is a block of its own: match whole lines only (not a mention of it in a
        # paragraph above), and let its words wrap as they did in the HTML source.
        words = r"\s+".join(map(re.escape, heading.split()))
        found = re.compile(rf"^{words}$", re.M).search(text, pos) if words else None
        if found is None:
            continue
        at, pos = found.span()
        path = [p for p in path if p[0] < level] + [(level, heading)]
        sections.append(Section(at, tuple(h for _, h in path)))
    title = title or next((h for level, h in headings if level == 1), "")
    return Read(title, text, merge_sections(sections))
