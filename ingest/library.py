"""The documents as a user manages them: add (uploads), remove for good, read again, and the original file
and its text.

Uploads (the chat page and `POST /v1/documents`) are checked, saved into the corpus folder under a
safe name, then ingested incrementally: an extension allow-list, the `RAG_MAX_FILE_MB` size limit,
a plain file name (no folders, no hidden files), never silently replacing a different document of
the same name, and a file that cannot be read is refused before it reaches the corpus folder.

Removing a document takes its chunks out of the index at once and makes sure no later ingest or
sync brings it back: a file that was uploaded (remembered in `RAG_HOME/uploads.json`) is deleted
from the corpus folder; any other file is left on disk and added to its folder's `.ragignore`
(delete that line to index it again). The ui only translates these to pages, routes and tools.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ingest import worker
from ingest.chunking import chunk_document
from ingest.ignore import IGNORE_FILE, Ignore, add_to_ignore
from ingest.limits import Limits, check_before_reading, check_chunks
from ingest.ocr import Ocr, ocr_for
from ingest.pipeline import Report, ingest, remove
from ingest.readers import FORMATS, format_of, supported
from ingest.sources import SourceFile
from rag.assistant import Assistant
from rag.errors import IngestLockedError, RagError, SourceError
from rag.files import locked, write_atomic
from rag.settings import Settings
from rag.types import FileRecord, Progress

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
    with _ledger_lock, locked(settings.home / "uploads.lock"):
        write_atomic(path, json.dumps(sorted(change(uploaded(settings)))))


def document_text(assistant: Assistant, source: str) -> tuple[FileRecord, str, bool]:
    """The indexed document, its text as the readers make it (what quotes' character spans point into),
    and whether its file is still the version that was indexed."""
    record = find(assistant, source)
    settings = assistant.settings
    document = worker.read(SourceFile(_file(record), source), settings, ocr_for(settings))
    return record, document.text, document.sha256 == record.sha256


_UNSAFE = re.compile(r"[^\w.\- ()+,]")
LOCK_WAIT_S = 60.0  # an upload waits this long for another ingest (a watched sync) before giving up
_one_writer = threading.Lock()  # uploads in one server take turns instead of failing on the ingest lock


@dataclass(frozen=True)
class Upload:
    """The outcome for one uploaded file: `outcome` is added|updated|unchanged|refused|failed."""

    name: str
    outcome: str
    reason: str = ""
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome in ("added", "updated", "unchanged")


def safe_name(name: str, formats: tuple[str, ...] = FORMATS) -> str:
    """The file name to store an upload under, or `SourceError` saying why there is none.

    Only the last path component is kept (`../../etc/x.md` -> `x.md`, `C:\\a\\b.md` -> `b.md`);
    characters outside letters, digits and `.-_ ()+,` become `_`.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = _UNSAFE.sub("_", base)
    if not base or base.startswith(".") or len(base) > 200:
        raise SourceError("not a usable file name; rename the file (no leading dot, at most 200 characters)")
    if format_of(base, formats) is None:  # by its name: `.md`, also `install.html.en`
        raise SourceError(f"file type not accepted; upload one of {', '.join(formats)}")
    return base


def add_documents(assistant: Assistant, files: list[tuple[str, bytes]], replace: bool = False,
                  progress: Progress | None = None) -> list[Upload]:
    """Check and save each `(name, content)` in the corpus folder, then index them in one ingest run.

    A name already used by a different document is refused unless `replace` is true.
    Raises:
        IngestLockedError: another ingest is writing to this index.
    """
    settings = assistant.settings
    folder = settings.corpus.resolve()
    results: list[Upload] = []
    saved: dict[int, tuple[Path, str]] = {}  # by position in `files`: two uploads may share a name
    ocr = ocr_for(settings, progress)
    with _one_writer:
        for i, (name, data) in enumerate(files):
            try:
                base = safe_name(name, supported(ocr))
                if Ignore(folder).ignores(base):
                    raise SourceError(f"{folder.name}/.ragignore leaves out {base} (it was removed from the index); "
                                      "delete that line to upload it again")
                if any(path.name == base for path, _ in saved.values()):
                    raise SourceError("uploaded twice at once; upload it once")
                saved[i] = _save(folder, base, data, settings, replace, ocr)
            except (SourceError, OSError) as exc:
                results.append(Upload(name, "refused", _reason(exc)))
                continue
            results.append(Upload(name, "pending"))
        if saved:
            report = _ingest_when_free([path for path, _ in saved.values()], assistant, progress)
            assistant.refresh()
            for i, (path, outcome) in saved.items():
                source, name = f"{folder.name}/{path.name}", files[i][0]
                if source in report.failed:
                    results[i] = Upload(name, "failed", report.failed[source], source)
                else:
                    if outcome != "unchanged":  # we wrote it: removing it later deletes the file
                        remember_upload(settings, source)
                    results[i] = Upload(name, outcome, f"indexed as {source}", source)
    return results


def _ingest_when_free(paths: list[Path], assistant: Assistant, progress: Progress | None) -> Report:
    """Ingest the saved uploads, waiting a while for another writer (a watched folder's sync) to finish."""
    waited = 0.0
    while True:
        try:
            return ingest(paths, assistant.settings, progress=progress, embedder=assistant.embedder)
        except IngestLockedError:
            if waited >= LOCK_WAIT_S:
                raise
            time.sleep(1.0)
            waited += 1.0


def _save(folder: Path, base: str, data: bytes, settings: Settings, replace: bool,
          ocr: Ocr | None) -> tuple[Path, str]:
    """Write one upload into `folder` once it has been read successfully; return its path and outcome."""
    if len(data) > settings.max_file_bytes:
        raise SourceError(f"larger than the {settings.max_file_mb:g} MB limit (RAG_MAX_FILE_MB); "
                          "split the file or raise the limit")
    if not data:
        raise SourceError("the file is empty; nothing to index")
    # A decompression bomb or a file of too many pages is refused before anything is written.
    check_before_reading(data, format_of(base, supported(ocr), data) or "", Limits.of(settings))
    target = folder / base
    outcome = "added"
    if target.exists() or target.is_symlink():
        if not target.is_file() or target.is_symlink():
            raise SourceError(f"{folder.name}/{base} exists and is not a plain file; rename the upload")
        if target.read_bytes() == data:
            return target, "unchanged"
        if not replace:
            raise SourceError(f"{folder.name}/{base} already holds a different document; rename the file, "
                              "or upload it again with replace")
        outcome = "updated"
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".upload-", suffix=target.suffix, dir=folder)  # hidden: ingest skips it
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)  # like a file copied in by hand (mkstemp makes it private)
        source = f"{folder.name}/{base}"
        doc = worker.read(SourceFile(Path(temp), source), settings,
                          dataclasses.replace(ocr, label=source) if ocr is not None else None)
        chunks = chunk_document(doc, settings.chunk_tokens, settings.chunk_overlap)
        if not chunks:
            raise SourceError("no sentences to index in this file")
        check_chunks(len(chunks), Limits.of(settings))
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target, outcome


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"could not be saved ({exc.strerror or exc}); check that RAG_CORPUS is writable"
    return str(exc)
