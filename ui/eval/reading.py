"""How cleanly documents are read: extraction debris per 1,000 characters of the text we index.

`rag eval reading DIR` reads every document under DIR with the product's readers (nothing is
indexed) and counts, per 1,000 characters, what a person would not see on the page: ligature
characters, control and private-use characters, line-end hyphens and line breaks left inside
sentences, words run together (18 letters or more), words split in two (`ex ploring`: the two
halves are not words of the document, the joined word is), captions spliced into a sentence, and
running headers or footers left in (a PDF's lines that stand at the top or bottom of many pages).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from ingest.ocr import ocr_for
from ingest.readers import supported
from ingest.sources import discover, read_document
from rag.errors import SourceError
from rag.settings import Settings

PROBLEMS: dict[str, re.Pattern[str]] = {
    "ligatures": re.compile("[\ufb00-\ufb4f]"),
    "control or private-use": re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\ufffe]"),
    "line-end hyphens": re.compile(r"[a-z]-\n[a-z]"),
    "line breaks in sentences": re.compile(r"[a-z,]\n[a-z]"),
    "words run together": re.compile(r"\b[a-z]{18,}\b", re.I),
    "captions spliced": re.compile(r"[a-z,][ \n](?:Figure|Fig\.|Table) \d+:"),
}
_WORD = re.compile(r"[A-Za-z]+")


def evaluate_reading(folder: Path, settings: Settings, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Per document: title, characters and problems per 1,000 characters; and the totals."""
    ocr = ocr_for(settings)
    files = discover([folder], supported(ocr)).files
    documents: dict[str, Any] = {}
    totals: Counter[str] = Counter()
    characters = 0
    for file in files:
        try:
            doc = read_document(file, settings.max_file_bytes, ocr)
        except SourceError as exc:
            documents[file.source] = {"error": str(exc)}
            say(f"failed: {file.source}: {exc}")
            continue
        counts = {name: len(pattern.findall(doc.text)) for name, pattern in PROBLEMS.items()}
        counts["words split in two"] = _split_words(doc.text)
        counts["running headers left"] = _headers_left(file.path, doc.text) if file.path.suffix.lower() == ".pdf" else 0
        totals.update(counts)
        characters += len(doc.text)
        per_1000 = {k: round(1000 * v / max(len(doc.text), 1), 2) for k, v in counts.items()}
        documents[file.source] = {"title": doc.title, "characters": len(doc.text), "counts": counts,
                                  "per_1000": per_1000}
    return {"documents": documents, "characters": characters, "counts": dict(totals),
            "per_1000": {k: round(1000 * v / max(characters, 1), 3) for k, v in totals.items()}}


def _split_words(text: str) -> int:
    """Neighbouring fragments whose join is a word of the document and which are not words of it themselves."""
    words = [w.lower() for w in _WORD.findall(text)]
    vocabulary = Counter(words)
    return sum(1 for a, b in pairwise(words)
               if len(a + b) >= 6 and vocabulary[a + b] and vocabulary[b] <= 1 and vocabulary[a] <= 2)


def _headers_left(path: Path, text: str) -> int:
    """How often lines that PDFium finds at the top or bottom of 30% of the pages or more (three at
    least) are still in the text (digits masked, so page numbers inside them do not matter)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        seen: Counter[str] = Counter()
        for page in document:
            lines = [line.strip() for line in page.get_textpage().get_text_range().splitlines() if line.strip()]
            seen.update({re.sub(r"\d+", "#", line) for line in lines[:2] + lines[-2:]})
        pages = len(document)
    finally:
        document.close()
    masked = re.sub(r"\d+", "#", text)
    return sum(masked.count(line) for line, n in seen.items() if len(line) > 8 and n >= max(3, 0.3 * pages))
