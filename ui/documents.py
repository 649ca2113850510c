"""What is indexed, document by document: list, remove (for good), read again, and the original file.

Removing a document takes its chunks out of the index at once and makes sure no later ingest or
sync brings it back: a file that was uploaded through the page or the API is deleted from the
corpus folder (uploads are remembered in `RAG_HOME/uploads.json`); any other file is left on disk
and added to its folder's `.ragignore` (delete that line to index it again).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.ignore import IGNORE_FILE, add_to_ignore
from ingest.ocr import ocr_for
from ingest.pipeline import Report, ingest, remove
from ingest.sources import SourceFile, read_document
from rag.assistant import Assistant
from rag.errors import RagError
from rag.settings import Settings
from rag.types import FileRecord, Progress
from ui.render import document_json

_ledger_lock = threading.Lock()


class DocumentNotFoundError(RagError):
    """No indexed document has this source."""


@dataclass(frozen=True)
class Removal:
    """What removing a document did: `how` is `deleted` (an upload) or `ignored` (added to `.ragignore`)."""

    source: str
    how: str
    detail: str


def find(assistant: Assistant, source: str) -> FileRecord:
    """The indexed document `source`, or `DocumentNotFoundError`."""
    record = assistant.documents().get(source)
    if record is None:
        raise DocumentNotFoundError(f"{source!r} is not an indexed document; `rag documents` lists them")
    return record


def listing(assistant: Assistant, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """The indexed documents a page at a time, their total, and the files the last ingest could not read
    (as `GET /v1/documents` and the MCP tool `list_documents` return them)."""
    documents = assistant.documents()
    failed = assistant.failed()
    uploads = uploaded(assistant.settings)
    page = list(documents.values())[offset:offset + limit]
    return {"documents": [document_json(r, r.source in uploads) for r in page], "total": len(documents),
            "offset": offset, "limit": limit, "failed": failed}


def original(assistant: Assistant, source: str) -> Path:
    """The file an indexed document was read from (only indexed documents: no other path is reachable)."""
    return _file(find(assistant, source))


def _file(record: FileRecord) -> Path:
    path = Path(record.path) if record.path else None
    if path is None or not path.is_file():
        raise DocumentNotFoundError(f"{record.source}: its file is no longer at {record.path or 'a recorded place'}; "
                                    "run `rag ingest` to bring the index up to date")
    return path


def remove_document(assistant: Assistant, source: str) -> Removal:
    """Take `source` out of the index now and for good (see the module's docstring)."""
    record = find(assistant, source)
    settings = assistant.settings
    path = Path(record.path) if record.path else None
    corpus = settings.corpus.absolute()
    # Deleted only when we wrote it: an upload, still in the corpus folder, still the version we indexed.
    ours = (path is not None and source in uploaded(settings) and corpus in path.parents
            and _sha256(path) in (record.sha256, None))
    done: list[Removal] = []

    def prepare() -> None:
        if ours:
            assert path is not None
            path.unlink(missing_ok=True)
            _forget(settings, source)
            done.append(Removal(source, "deleted", f"deleted the uploaded file {path}"))
        else:
            root, relative = _root(record)
            add_to_ignore(root, relative)
            done.append(Removal(source, "ignored", f"left the file alone and added it to {root / IGNORE_FILE}"))

    remove([source], settings, prepare=prepare)
    assistant.refresh()
    return done[0]


def reindex_document(assistant: Assistant, source: str, progress: Progress | None = None) -> Report:
    """Read `source` again from its file, even if it did not change (a file directly in its folder is read by
    itself; one deeper down was indexed with its folder, which is brought up to date on the way)."""
    record = find(assistant, source)
    root, relative = _root(record)
    target = root / relative if "/" not in relative else root
    if not target.exists():
        raise DocumentNotFoundError(f"{source}: {target} is gone; run `rag ingest` on where it is now")
    report = ingest([target], assistant.settings, embedder=assistant.embedder, force={source}, progress=progress)
    assistant.refresh()
    return report


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _root(record: FileRecord) -> tuple[Path, str]:
    """The folder that was ingested (the source's first part names it) and the path below it."""
    if not record.path:
        raise DocumentNotFoundError(f"{record.source}: the index does not record where its file is "
                                    "(indexed by an older version); run `rag ingest --rebuild`")
    relative = record.source.split("/", 1)[1]
    root = Path(record.path)
    for _ in relative.split("/"):
        root = root.parent
    return root, relative


def uploaded(settings: Settings) -> set[str]:
    """The sources that were uploaded through the page or the API (and so may be deleted by removal)."""
    try:
        return set(json.loads((settings.home / "uploads.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return set()


def remember_upload(settings: Settings, source: str) -> None:
    _change_ledger(settings, lambda sources: sources | {source})


def _forget(settings: Settings, source: str) -> None:
    _change_ledger(settings, lambda sources: sources - {source})


def _change_ledger(settings: Settings, change: Callable[[set[str]], set[str]]) -> None:
    """Read, change and write the uploads ledger under a lock that other processes respect too."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "uploads.json"
    with _ledger_lock, open(settings.home / "uploads.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sources = change(uploaded(settings))
        handle, temp = tempfile.mkstemp(dir=settings.home, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(json.dumps(sorted(sources)))
        os.replace(temp, path)


def document_text(assistant: Assistant, source: str) -> tuple[FileRecord, str, bool]:
    """The indexed document, its text as the readers make it (what quotes' character spans point into),
    and whether its file is still the version that was indexed."""
    record = find(assistant, source)
    settings = assistant.settings
    document = read_document(SourceFile(_file(record), source), settings.max_file_bytes, ocr_for(settings))
    return record, document.text, document.sha256 == record.sha256
