"""Readers, one module per format, and the registry that picks one by a file's ending.

Each reader takes a file's bytes and gives a `Read` (title, text, sections) or raises `SourceError`
saying what is wrong with the file. Images are read only with OCR; PDFs use it for scanned pages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial

from ingest.ocr import Ocr
from ingest.readers.asciidoc import read_adoc
from ingest.readers.base import Read
from ingest.readers.docx import read_docx
from ingest.readers.epub import read_epub
from ingest.readers.html import read_html
from ingest.readers.image import read_image
from ingest.readers.markdown import read_md, read_mdx
from ingest.readers.office import read_pptx, read_xlsx
from ingest.readers.pdf import read_pdf
from ingest.readers.rst import read_rst
from ingest.readers.text import read_csv, read_txt
from rag.errors import SourceError

Reader = Callable[[bytes], Read]

READERS: dict[str, Reader] = {
    ".txt": read_txt, ".md": read_md, ".mdx": read_mdx, ".rst": read_rst, ".adoc": read_adoc, ".asciidoc": read_adoc,
    ".html": read_html, ".htm": read_html, ".pdf": read_pdf,
    ".docx": read_docx, ".csv": read_csv, ".xlsx": read_xlsx, ".pptx": read_pptx, ".epub": read_epub,
}
FORMATS = tuple(READERS)
IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # read only with OCR
# An HTML page whatever its name: a doctype, <html> or <head> first (after a byte order mark, blanks, comments).
_HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head)[\s>]", re.I | re.S)


def supported(ocr: Ocr | None) -> tuple[str, ...]:
    """The file name endings read: images too when there is OCR."""
    return FORMATS + IMAGE_FORMATS if ocr is not None else FORMATS


def format_of(name: str, formats: tuple[str, ...] = FORMATS, head: bytes = b"") -> str | None:
    """The format a file is read as (one of `formats`), or None: its ending; HTML also by an Apache-style
    name (`install.html.en`, `page.html.de.utf8`) or, for a name that says nothing, by its first bytes."""
    lower = name.lower()
    for ending in formats:
        if lower.endswith(ending):
            return ending
    if ".html" in formats and ({"html", "htm"} & set(lower.split(".")[1:-1]) or _HTML_START.match(head[:4096])):
        return ".html"
    return None


def reader_for(suffix: str, ocr: Ocr | None = None) -> Reader:
    """The reader of files ending in `suffix` (lower case, with its dot), with `ocr` where it reads scans."""
    if suffix == ".pdf":
        return partial(read_pdf, ocr=ocr)
    if suffix in IMAGE_FORMATS:
        if ocr is None:
            raise SourceError("an image: reading it needs OCR; install Tesseract (`make ocr`, RAG_OCR=auto)")
        return partial(read_image, ocr=ocr)
    if suffix not in READERS:
        raise SourceError(f"unsupported format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return READERS[suffix]
