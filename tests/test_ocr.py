"""OCR of scanned PDF pages and images with the real Tesseract (installed by `make test`), and its cache."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from ingest.limits import Limits
from ingest.ocr import Ocr, ocr_for
from ingest.readers import supported
from ingest.readers.pdf import NO_TEXT_LAYER
from ingest.sources import SourceFile, discover, read_document
from rag.errors import SettingsError, SourceError
from rag.settings import Settings
from rag.types import Quiet
from tests.helpers import run_rag

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

LINES = ["The Brellin ferry crosses the Ostra fjord four times a day.",
         "In winter the first crossing leaves at seven in the morning."]


def scanned_page() -> Image.Image:
    """A page of text as a scanner gives it: an image, no text layer (rendered by PDFium, no fonts needed)."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("Helvetica", 14)
    for i, line in enumerate(LINES):
        c.drawString(72, 720 - 24 * i, line)
    c.save()
    page = pdfium.PdfDocument(buf.getvalue())[0]
    return page.render(scale=200 / 72).to_pil().convert("L")


def scanned_pdf(path: Path) -> None:
    image = scanned_page()
    c = canvas.Canvas(str(path))
    c.drawImage(ImageReader(image), 0, 0, width=595, height=842)
    c.showPage()
    c.save()


def read(path: Path, ocr: Ocr | None) -> str:
    return read_document(SourceFile(path, f"scans/{path.name}"), Limits(), ocr).text


def test_a_scanned_pdf_is_read_by_ocr_and_refused_without_it(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    scanned_pdf(path)
    text = read(path, Ocr(tmp_path / "cache"))
    assert "Brellin ferry crosses the Ostra fjord four times a day." in text
    assert "first crossing leaves at seven" in text
    with pytest.raises(SourceError, match=r"no text layer .*install Tesseract"):
        read(path, None)
    assert NO_TEXT_LAYER.startswith("PDF has no text layer")


def test_ocr_text_is_cached_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "scan.pdf"
    scanned_pdf(path)
    ocr = Ocr(tmp_path / "cache")
    first = read(path, ocr)
    assert len(list((tmp_path / "cache").glob("*.txt"))) == 1

    def fail(*args: object, **kwargs: object) -> str:
        raise AssertionError("Tesseract ran again")

    monkeypatch.setattr("pytesseract.image_to_string", fail)
    assert read(path, ocr) == first  # a re-index does not repeat the OCR


def test_images_are_documents_only_with_ocr(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    scanned_page().save(scans / "ferry.png")
    (scans / "notes.txt").write_text("Plain notes.\n")
    assert [f.source for f in discover([scans], supported(None)).files] == ["scans/notes.txt"]
    ocr = Ocr(None)
    assert [f.source for f in discover([scans], supported(ocr)).files] == ["scans/ferry.png", "scans/notes.txt"]
    doc = read_document(SourceFile(scans / "ferry.png", "scans/ferry.png"), Limits(), ocr)
    assert doc.title.startswith(LINES[0]) and "seven in the morning" in doc.text
    with pytest.raises(SourceError, match="needs OCR"):
        read_document(SourceFile(scans / "ferry.png", "scans/ferry.png"), Limits(), None)
    (scans / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(SourceError, match="not a readable image"):
        read_document(SourceFile(scans / "broken.png", "scans/broken.png"), Limits(), ocr)


def test_rag_ocr_off_turns_it_off(tmp_path: Path) -> None:
    assert ocr_for(Settings.load(home=tmp_path, ocr="off")) is None
    assert ocr_for(Settings.load(home=tmp_path)) == Ocr(tmp_path / "ocr")  # Tesseract is installed here


def test_an_ocr_language_without_its_data_is_named_with_the_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"RAG_OCR_LANG=eng\+xho: Tesseract has no data for xho .*"
                                            r"apt-get install tesseract-ocr-xho"):
        ocr_for(Settings.load(home=tmp_path, ocr_lang="eng+xho"))
    with pytest.raises(SettingsError, match="RAG_OCR_LANG: String should match pattern"):
        Settings.load(home=tmp_path, ocr_lang="eng; rm -rf /")
    assert ocr_for(Settings.load(home=tmp_path, ocr_lang="eng")) is not None


class Notes(Quiet):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


def test_each_page_read_by_ocr_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    image = ImageReader(scanned_page())
    c = canvas.Canvas(str(path))
    for shift in (0, -200):  # two pages that differ (the same image twice is read once: the cache)
        c.drawImage(image, 0, shift, width=595, height=842)
        c.showPage()
    c.save()
    notes = Notes()
    ocr = ocr_for(Settings.load(home=tmp_path), notes)
    assert ocr is not None
    read(path, replace(ocr, label="scans/scan.pdf"))
    assert notes.notes == ["OCR scans/scan.pdf page 1 of 2", "OCR scans/scan.pdf page 2 of 2"]
    read(path, replace(ocr, label="scans/scan.pdf"))  # read from the cache: nothing to wait for, nothing noted
    assert len(notes.notes) == 2


def test_a_scanned_pdf_is_answered_from_end_to_end(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    scanned_pdf(corpus / "timetable.pdf")
    scanned_page().save(corpus / "notice.png")
    home = tmp_path / ".rag"
    planned = run_rag("ingest", str(corpus), "--dry-run", home=home)
    assert "would add 2," in planned.stdout and not home.exists()  # read by OCR, nothing written (no cache)
    out = run_rag("ingest", str(corpus), home=home)
    assert out.returncode == 0 and "added 2," in out.stdout, out.stderr
    answer = run_rag("ask", "How often does the ferry cross the fjord?", home=home)
    assert ("four times a day" in answer.stdout and "corpus/timetable.pdf" in answer.stdout + answer.stderr) or \
        "corpus/notice.png" in answer.stdout
