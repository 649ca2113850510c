"""EPUB e-books: the chapters in reading order, each read as HTML."""

from __future__ import annotations

import io
import re

from ingest.readers.base import Read
from ingest.readers.html import read_html
from ingest.readers.parts import join_sectioned
from rag.errors import SourceError
from rag.types import Section


def read_epub(data: bytes) -> Read:
    """An e-book: its chapters in reading order (the spine), each read as HTML, its headings kept."""
    import zipfile

    from ebooklib import ITEM_DOCUMENT, epub

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        encrypted = archive.read("META-INF/encryption.xml") if "META-INF/encryption.xml" in archive.namelist() else b""
    if re.search(rb"<(?:\w+:)?CipherReference[^>]*URI=\"[^\"]*\.x?html?\"", encrypted):
        raise SourceError("DRM-protected EPUB (its chapters are encrypted); index a copy without DRM")
    book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    chapters = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is not None and item.get_type() == ITEM_DOCUMENT:
            chapter = read_html(item.get_content(), whole=True)
            chapters.append((chapter.text, chapter.sections))
    text, sections = join_sectioned(chapters)
    titles = book.get_metadata("DC", "title")
    return Read(str(titles[0][0]).strip() if titles else "", text, sections or [Section(0)])
