"""One file made ready for embedding: read (in the reader process), chunked, checked. The local ingest and the
cluster's workers (`ingest.cluster`) both prepare files with `prepare`, so either makes the same chunks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

from ingest import worker
from ingest.chunking import chunk_document
from ingest.limits import Limits, check_chunks
from ingest.ocr import Ocr
from ingest.sources import SourceFile
from rag.errors import SourceError
from rag.settings import Settings
from rag.types import Chunk, FileRecord


class Prepared(NamedTuple):
    """A file read and chunked, waiting to be embedded."""

    sha256: str
    title: str
    chunks: list[Chunk]
    size: int  # bytes on disk
    path: str  # absolute, as found (a link stays the link): removal and re-reading work from its folder

    def record(self, source: str) -> FileRecord:
        """The ledger record of the file, once all its chunks are written."""
        pages = max((c.page or 0 for c in self.chunks), default=0)
        return FileRecord(source, self.sha256, len(self.chunks), self.title, time.time(), pages, self.size, self.path)


def prepare(file: SourceFile, settings: Settings, ocr: Ocr | None, sha256: str) -> Prepared:
    """Read `file` in the reader process under the settings' limits and chunk it; `SourceError` says why not.

    `sha256` is the content the plan hashed: a file that changed since is refused (the next run takes it).
    """
    doc = worker.read(file, settings, ocr)
    chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap)
    if not chunks:
        raise SourceError("no sentences to index in this file")
    check_chunks(len(chunks), Limits.of(settings))
    if doc.sha256 != sha256:
        raise SourceError("file changed while indexing; run ingest again")
    return Prepared(doc.sha256, doc.title, chunks, file_size(file.path), str(file.path.absolute()))


def file_size(path: Path) -> int:
    """The file's bytes on disk now (0 when it is gone)."""
    try:
        return path.stat().st_size
    except OSError:  # gone since it was read: its record says 0 bytes until the next run
        return 0
