"""Spreadsheets and slides: `.xlsx` (each sheet a section of header-named rows) and `.pptx` (each slide a page)."""

from __future__ import annotations

import io
import re
from typing import Any

from ingest.readers.base import Read
from ingest.readers.parts import join_parts
from ingest.readers.tables import table_rows
from rag.types import Section

_DEFAULT_TITLE = re.compile(r"^(?:PowerPoint Presentation|Presentation\d*|Slide \d+|Title|Untitled.*)$", re.I)


def read_xlsx(data: bytes) -> Read:
    """Each sheet is a section headed by its name; its first non-empty row is the header of the others."""
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        text, sections = join_parts(
            (table_rows([["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]),
             Section(0, (sheet.title,)))
            for sheet in workbook.worksheets)
        title = (workbook.properties.title or "").strip()
    finally:
        workbook.close()
    return Read(title, text, sections or [Section(0)])


def read_pptx(data: bytes) -> Read:
    """Each slide is a page (its number is the citation's page); its title placeholder is its heading."""
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    slides = []
    for number, slide in enumerate(deck.slides, start=1):
        heading = _slide_title(slide)
        title_shape = slide.shapes.title
        # The title is one block, exactly its heading (so that it is known as the heading, not quoted as a fact).
        blocks = [heading] if heading else []
        blocks += [text for shape in slide.shapes if not _same(shape, title_shape) and (text := _shape_text(shape))]
        notes = slide.notes_slide.notes_text_frame.text.strip() if slide.has_notes_slide else ""
        slides.append(("\n\n".join(blocks + ([notes] if notes else [])),
                       Section(0, (heading,) if heading else (), page=number)))
    text, sections = join_parts(slides)
    first_title = next((s.headings[0] for _, s in slides if s.headings), "")
    title = (deck.core_properties.title or "").strip()
    if not title or _DEFAULT_TITLE.match(title):  # PowerPoint's own placeholder, not the deck's title
        title = first_title if len(first_title) <= 120 else ""
    return Read(title, text, sections or [Section(0)])


def _slide_title(slide: Any) -> str:
    """The title placeholder's text on one line: its paragraphs and line breaks are spaces."""
    shape = slide.shapes.title
    return " ".join(shape.text_frame.text.split()) if shape is not None and shape.has_text_frame else ""


def _same(shape: Any, other: Any) -> bool:
    return other is not None and shape.shape_id == other.shape_id


def _shape_text(shape: Any) -> str:
    """A shape's text: its paragraphs (one block each), a table's rows with their header, a group's parts."""
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        return "\n\n".join(text for inner in shape.shapes if (text := _shape_text(inner)))
    if getattr(shape, "has_table", False) and shape.has_table:
        return table_rows([[cell.text for cell in row.cells] for row in shape.table.rows])
    if shape.has_text_frame:
        # A paragraph's text with its line breaks (a vertical tab in python-pptx) as spaces: "Throw Out\va
        # Challenge" is not "Throw Outa Challenge"; each paragraph is a block of its own.
        return "\n\n".join(p for para in shape.text_frame.paragraphs if (p := " ".join(para.text.split())))
    return ""
