"""Offline OCR with Tesseract (Debian's `tesseract-ocr`, through pytesseract), its text cached by content.

Chosen by measurement on these 2-core machines (README, Ingest): on generated 200-dpi scans with
noise, blur and a slight tilt, Tesseract 5.3 read 0.37 pages a second with a character error rate
of 0.0%; RapidOCR (onnxruntime, models in its wheel) 0.65 pages a second but 42% errors, as it
runs English words together. `RAG_OCR=auto` uses Tesseract when it is installed (`make ocr`,
which `make demo` and `make test` run, installs it); `off` never does. `RAG_OCR_LANG` names the
languages (`eng+deu`); each needs Tesseract's data for it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import SettingsError, SourceError
from rag.files import write_atomic
from rag.settings import Settings
from rag.types import Progress, Quiet

if TYPE_CHECKING:
    from PIL.Image import Image

OCR_DPI = 300  # Tesseract reads body text best at about 300 dots per inch
_ENGINE = "tesseract-eng-v1"  # part of the cache key: bump when the OCR call changes


@dataclass(frozen=True)
class Ocr:
    """Reads the text of page images; keeps what it read under `cache` (one file per image content).

    Each page it reads is noted on `progress` as `OCR <label> <where>` (`OCR scans/a.pdf page 3 of 20`).
    """

    cache: Path | None
    language: str = "eng"
    progress: Progress = field(default_factory=Quiet, compare=False)
    label: str = ""
    max_pages: int = 500  # RAG_MAX_OCR_PAGES: pages of one file it reads at most (`allow`)

    def allow(self, pages: int) -> None:
        """Refuse a file once more than `max_pages` of its pages need OCR (a reader calls this as it goes)."""
        if pages > self.max_pages:
            raise SourceError(f"more than {self.max_pages:,} of its pages need OCR (RAG_MAX_OCR_PAGES); split the "
                              "file, run OCR on it first, or raise the limit")

    def read(self, image: Image, where: str = "") -> str:
        """The text Tesseract reads in `image` (from the cache when this image was read before)."""
        key = hashlib.sha256(f"{_ENGINE}\0{self.language}\0{image.size}\0".encode() + image.tobytes()).hexdigest()
        cached = self.cache / f"{key}.txt" if self.cache is not None else None
        if cached is not None and cached.is_file():
            return cached.read_text(encoding="utf-8")
        import pytesseract

        # Tesseract's OpenMP threads cost more than they give: one page took 4.4 s with them and 0.6 s on one
        # thread here (2 cores; README, Ingest). One thread per page; more pages at once come from a cluster.
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.progress.note(" ".join(part for part in ("OCR", self.label, where) if part))
        try:
            text = str(pytesseract.image_to_string(image, lang=self.language))
        except (pytesseract.TesseractError, OSError) as exc:
            raise SourceError(f"OCR failed ({type(exc).__name__}: {' '.join(str(exc).split())[:150]}); "
                              "set RAG_OCR=off to skip scanned pages") from None
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, text)  # a reader never sees half a file
        return text


def ocr_for(settings: Settings, progress: Progress | None = None) -> Ocr | None:
    """The OCR the settings ask for, or None: `RAG_OCR=off`, or Tesseract is not installed.

    Raises `SettingsError` when a language of `RAG_OCR_LANG` has no Tesseract data here.
    """
    if settings.ocr == "off" or shutil.which("tesseract") is None:
        return None
    installed = _languages(shutil.which("tesseract") or "")
    missing = [lang for lang in settings.ocr_lang.split("+") if lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang.lower().replace('_', '-')}" for lang in missing)
        raise SettingsError(f"RAG_OCR_LANG={settings.ocr_lang}: Tesseract has no data for {', '.join(missing)} "
                       f"(installed: {', '.join(sorted(installed)) or 'none'}); install it "
                       f"(`apt-get install {packages}`) or set RAG_OCR_LANG to installed languages")
    return Ocr(settings.home / "ocr", settings.ocr_lang, progress or Quiet(), max_pages=settings.max_ocr_pages)


@functools.cache
def _languages(tesseract: str) -> frozenset[str]:
    """The languages this Tesseract has data for (asked once per process: it runs Tesseract)."""
    import pytesseract

    return frozenset(pytesseract.get_languages(config=""))
