"""Images (a multi-page TIFF: each frame a page), read by OCR and cleaned like paged text."""

from __future__ import annotations

import io

from ingest.ocr import Ocr
from ingest.readers.base import Read
from ingest.readers.paged import clean_pages
from ingest.readers.parts import join_parts
from ingest.readers.text import first_line
from rag.errors import SourceError
from rag.types import Section


def read_image(data: bytes, ocr: Ocr) -> Read:
    """An image (a multi-page TIFF: each frame a page) read by OCR."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        frames = []
        for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
            ocr.allow(number)
            frames.append(ocr.read(frame.convert("L")))
    except Image.DecompressionBombError:
        raise SourceError(f"an image of over {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels (Pillow's guard against "
                          "decompression bombs); scale it down") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise SourceError(f"not a readable image ({type(exc).__name__}); open and re-save it, or remove it") from None
    cleaned = clean_pages(frames)
    text, sections = join_parts((frame, Section(0, page=number if len(cleaned) > 1 else None))
                                for number, frame in enumerate(cleaned, start=1))
    if not sections:
        raise SourceError("no text found in this image by OCR")
    return Read(first_line(text), text, sections)
