"""Readers, one module per format, and the registry that picks one by a file's ending.

Each reader takes a file's bytes and gives a `Read` (title, text, sections) or raises `SourceError`
saying what is wrong with the file. Images are read only with OCR; PDFs use it for scanned pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ingest.ocr import Ocr
from ingest.readers.base import Read
from ingest.readers.docx import read_docx
from ingest.readers.epub import read_epub
from ingest.readers.html import read_html
from ingest.readers.image import read_image
from ingest.readers.markdown import read_md
from ingest.readers.office import read_pptx, read_xlsx
from ingest.readers.pdf import read_pdf
from ingest.readers.text import read_csv, read_txt
from rag.errors import SourceError

Reader = Callable[[bytes], Read]

READERS: dict[str, Reader] = {
    ".txt": read_txt, ".md": read_md, ".html": read_html, ".htm": read_html, ".pdf": read_pdf,
    ".docx": read_docx, ".csv": read_csv, ".xlsx": read_xlsx, ".pptx": read_pptx, ".epub": read_epub,
}
FORMATS = tuple(READERS)
IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # read only with OCR


def supported(ocr: Ocr | None) -> tuple[str, ...]:
    """The file name endings read: images too when there is OCR."""
    return FORMATS + IMAGE_FORMATS if ocr is not None else FORMATS


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
