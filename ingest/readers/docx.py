"""Word documents: paragraphs and tables in order, heading styles as sections."""

from __future__ import annotations

import io
import re

from ingest.readers.base import Read
from ingest.readers.tables import table_rows
from ingest.readers.text import merge_sections
from rag.types import Section


def read_docx(data: bytes) -> Read:
    """A .docx file: its core title (or its Title paragraph, or its first heading), its paragraphs and tables,
    its headings."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    parts: list[str] = []
    sections, pos, title, title_styled = [Section(0)], 0, "", False
    path: list[tuple[int, str]] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = para.text.strip()
            style = para.style.name if para.style is not None else ""
            level = _docx_heading_level(style)
            if text and level:
                # The document's first heading, whatever its level (a cover set in Heading 2), unless a
                # paragraph styled Title comes later.
                title = text if style == "Title" and not title_styled else title or text
                title_styled = title_styled or style == "Title"
                path = [p for p in path if p[0] < level] + [(level, text)]
                sections.append(Section(pos + 2 * bool(parts), tuple(h for _, h in path)))
        elif tag == "tbl":
            text = table_rows([[c.text for c in row.cells] for row in Table(child, document).rows])
        else:
            continue
        if text:
            pos += 2 * bool(parts) + len(text)
            parts.append(text)
    core_title = (document.core_properties.title or "").strip()
    return Read(core_title or title, "\n\n".join(parts), merge_sections(sections))


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    m = re.fullmatch(r"Heading (\d)", style)
    return int(m.group(1)) if m else 0
