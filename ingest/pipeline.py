"""Bring the index in line with the files: diff by content hash, embed in batches, upsert, record, publish.

Kill safety: a file's chunks are upserted (by content-derived id) before its ledger record is
written. Nothing is deleted before `publish`: it builds BM25 over the chunks the ledger accounts
for, makes that snapshot live, and only then deletes the other chunks (old versions, removed
files, leftovers of a killed run). A run killed anywhere leaves the last published snapshot
whole; the next run redoes the unrecorded files and ends where an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest import worker
from ingest.ocr import ocr_for
from ingest.prepare import Prepared, prepare
from ingest.readers import supported
from ingest.sources import SourceFile, discover, read_bytes, skipped_summary
from rag.embedding import Embedder, embedder_for
from rag.errors import IndexMissingError, SourceError
from rag.index.store import Index, Store
from rag.index.writer import IndexWriter
from rag.settings import Settings
from rag.types import Chunk, FileRecord, Progress, Quiet

if TYPE_CHECKING:
    from ingest.cluster import Done

MAX_FAILED_LISTED = 200  # files that failed in the last run, kept in the index for `rag status`


@dataclass
class Plan:
    """What an ingest run will do, file by file."""

    add: list[SourceFile] = field(default_factory=list)
    update: list[SourceFile] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # files of formats not read, by ending


@dataclass
class Report:
    """The outcome of an ingest run."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # files of formats not read, by ending
    chunks: int = 0
    seconds: float = 0.0
    write_seconds: float = 0.0
    store_seconds: float = 0.0  # of those, in the store's writes (chunks and ledger records)

    @property
    def chunks_per_second(self) -> float:
        """Chunks embedded and written per second of writing (model loading and reading excluded)."""
        return self.chunks / self.write_seconds if self.write_seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when every file made it in, 1 when some failed (the index is still consistent)."""
        return 1 if self.failed else 0

    def summary(self) -> str:
        """One line for people (and a second naming the files of formats not read, if any)."""
        line = (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"deleted {self.deleted}, failed {len(self.failed)} files; {self.chunks} chunks written, "
            f"{self.seconds:.1f} s in all ({self.chunks_per_second:.1f} chunks/s while writing)"
        )
        skipped = skipped_summary(self.skipped)
        return f"{line}\n{skipped}" if skipped else line


def make_plan(paths: list[Path], index: Index | None, settings: Settings, force: Collection[str] = ()) -> Plan:
    """Hash every file under `paths` and sort it into add / update / unchanged / delete / failed
    (the sources in `force` are updated even when unchanged)."""
    found = discover(paths, supported(ocr_for(settings)))
    files, scopes = found.files, found.scopes
    records = index.files() if index is not None else {}
    # A record counts only if all its chunks are there (not so after a kill, then a revert). When under a third of
    # the ledger's files are found (new files added to a large index), only their chunks are read, else all are
    # (a filtered read costs about twice as much per chunk: Index.chunk_counts).
    known = [f.source for f in files if f.source in records]
    counts = Counter() if index is None or not known else index.chunk_counts(
        known if len(known) * 3 < len(records) else None)
    plan = Plan(skipped=dict(sorted(found.skipped.items())))
    max_bytes = settings.max_file_bytes
    for file in files:
        try:
            digest = hashlib.sha256(read_bytes(file.path, max_bytes)).hexdigest()
        except SourceError as exc:
            plan.failed[file.source] = str(exc)
            continue
        plan.hashes[file.source] = digest
        record = records.get(file.source)
        if record is None:
            plan.add.append(file)
        elif record.sha256 != digest or counts[(record.source, digest)] != record.chunks or file.source in force:
            plan.update.append(file)
        else:
            plan.unchanged.append(file.source)
    seen = {f.source for f in files}
    _refuse_vanished_folders(paths, scopes, seen, records)
    plan.delete = sorted(
        s for s in records
        if s not in seen and any(s == scope or (scope.endswith("/") and s.startswith(scope)) for scope in scopes)
    )
    return plan


def _refuse_vanished_folders(
    paths: list[Path], scopes: list[str], seen: set[str], records: dict[str, FileRecord]
) -> None:
    """Refuse a folder that now holds no document at all while the index holds documents from it.

    An unmounted disk or an emptied sync folder looks like one whose files were all deleted;
    removing all of them from the index on that evidence would lose them without a word.
    """
    for path, scope in zip(paths, scopes, strict=True):
        if not scope.endswith("/") or any(s.startswith(scope) for s in seen):
            continue
        held = sum(1 for s in records if s.startswith(scope))
        if held:
            raise SourceError(
                f"{path}: the folder holds no documents now (or its .ragignore leaves them all out), "
                f"but the index holds {held} from it; "
                "if it is an unmounted disk or a moved folder, put it back; to drop them on purpose, "
                "run `rag ingest --rebuild` with the folders to keep"
            )


def dry_run(paths: list[Path], settings: Settings, rebuild: bool = False) -> Plan:
    """What `ingest` would do, without creating or changing anything.

    The files it would add or update are read (not embedded), so that those it could not read are
    listed as failed, with the reason, rather than as to be added.
    """
    plan = make_plan(paths, None if rebuild else Store(settings).checked(), settings)
    ocr = ocr_for(settings)
    ocr = replace(ocr, cache=None) if ocr is not None else None  # writes nothing, not even the OCR cache
    for files in (plan.add, plan.update):
        for file in list(files):
            try:
                worker.read(file, settings, ocr)
            except SourceError as exc:
                plan.failed[file.source] = str(exc)
                files.remove(file)
    return plan


def ingest(
    paths: list[Path], settings: Settings, *, rebuild: bool = False,
    progress: Progress | None = None, embedder: Embedder | None = None, force: Collection[str] = (),
    cluster: str | None = None,
) -> Report:
    """Index the files under `paths` incrementally (or from scratch with `rebuild`); the sources in
    `force` are read again even when unchanged. With `cluster` (a Ray address: `rag ingest --cluster`,
    `RAG_CLUSTER`), files are read and embedded on that cluster (`ingest.cluster`) and written here.

    Returns a `Report`; bad files are listed in `report.failed` and skipped.
    """
    began = time.perf_counter()
    progress = progress or Quiet()
    store = Store(settings)
    worker.warm(settings)  # the reader process starts while the model loads
    embedder = embedder or embedder_for(settings)
    with IndexWriter.open(store, rebuild=rebuild) as writer:
        live = writer.live
        index = writer.start(embedder.dimension)
        plan = make_plan(paths, index, settings, force)
        report = Report(unchanged=len(plan.unchanged), failed=dict(plan.failed), skipped=plan.skipped)
        for source, reason in plan.failed.items():
            progress.failed(source, reason)
        if cluster:
            from ingest.cluster import Identity, prepare_on_cluster  # Ray is imported for a cluster ingest only

            results = prepare_on_cluster(plan.add + plan.update, plan.hashes, settings,
                                         Identity.of(settings, embedder), progress, cluster)
            written = _write_prepared(writer, results, settings.embed_group, progress, report)
        else:
            documents = _read(plan.add + plan.update, plan.hashes, settings, report, progress)
            _write(writer, documents, embedder, settings.embed_group, progress, report)
            written = set(documents)
        report.added = sum(1 for f in plan.add if f.source in written)
        report.updated = sum(1 for f in plan.update if f.source in written)
        writer.unrecord(plan.delete)
        report.deleted = len(plan.delete)
        # Nothing to publish when nothing changed and no killed run left chunks behind.
        records = index.files()
        in_ledger = sum(r.chunks for r in records.values())
        # The files that could not be read stay listed (`rag status`) until a run reads them.
        failed = json.dumps(dict(sorted(report.failed.items())[:MAX_FAILED_LISTED]))
        skipped = json.dumps(report.skipped)
        if live is None or report.chunks or report.deleted or index.count() != in_ledger:
            writer.publish(progress, records, last_ingest=time.time(), last_failed=failed, last_skipped=skipped)
        elif (index.metadata.get("last_failed", "{}"), index.metadata.get("last_skipped", "{}")) != (failed, skipped):
            writer.note(last_failed=failed, last_skipped=skipped)
    report.seconds = time.perf_counter() - began
    return report


def remove(sources: Collection[str], settings: Settings, progress: Progress | None = None,
           prepare: Callable[[], None] | None = None) -> list[str]:
    """Take documents out of the index now; returns those that were indexed.

    Their chunks leave the published index at once (answers stop citing them); the files themselves
    come back with the next ingest of their folder unless they are gone or ignored by then.
    `prepare` (deleting or ignoring the files) runs once this process holds the writer lock, so a
    refused removal (another ingest writing) has changed nothing, and no sync can read the files
    between it and the removal.
    """
    store = Store(settings)
    with IndexWriter.open(store) as writer:
        if writer.live is None:
            raise IndexMissingError(f"no index at {store.location}; run `rag ingest` first")
        index = writer.start()
        records = index.files()
        gone = sorted(s for s in sources if s in records)
        if prepare is not None:
            prepare()
        if gone:
            writer.unrecord(gone)
            writer.publish(progress, last_ingest=time.time())
    return gone


def _read(
    files: list[SourceFile], hashes: dict[str, str], settings: Settings, report: Report, progress: Progress
) -> dict[str, Prepared]:
    """Prepare (read in the reader process, chunk) each file, by source. Failures go to the report."""
    out = {}
    ocr = ocr_for(settings, progress)
    progress.start("reading", len(files))
    for file in files:
        try:
            out[file.source] = prepare(file, settings, replace(ocr, label=file.source) if ocr is not None else None,
                                       hashes[file.source])
        except SourceError as exc:
            report.failed[file.source] = str(exc)
            progress.failed(file.source, str(exc))
        progress.advance(1)
    return out


def _write(
    writer: IndexWriter, documents: dict[str, Prepared], embedder: Embedder, group: int,
    progress: Progress, report: Report,
) -> None:
    """Embed the chunks in groups of `group` (`RAG_EMBED_GROUP`); write each group while the next one is embedded.

    A group is embedded shortest chunk first, in batches, so that little is padded: the larger the group, the
    closer to one encode of everything (README, Embedding backends). Writes happen one at a time, in order, on
    one thread: a group's chunks, then the ledger records of the files whose last chunk it held. An error in a
    write stops the run at the next group.
    """
    total = sum(len(doc.chunks) for doc in documents.values())
    began = time.perf_counter()
    progress.start("embedding", total)
    pending = {source: len(doc.chunks) for source, doc in documents.items()}

    def write(batch: list[tuple[Chunk, str]], vectors: np.ndarray[Any, Any]) -> None:
        started = time.perf_counter()
        writer.write([c for c, _ in batch], vectors, [sha for _, sha in batch])
        done = []
        for chunk, _ in batch:
            pending[chunk.source] -= 1
            if pending[chunk.source] == 0:
                done.append(documents[chunk.source].record(chunk.source))
        writer.finish(done)
        report.store_seconds += time.perf_counter() - started
        report.chunks += len(batch)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as pool:
        writing: Future[None] | None = None
        for batch in _batches(documents, group):
            vectors = embedder.embed([c.embed_text() for c, _ in batch], progress=progress.advance)
            if writing is not None:
                writing.result()
            writing = pool.submit(write, batch, vectors)
        if writing is not None:
            writing.result()
    report.write_seconds = time.perf_counter() - began


def _write_prepared(
    writer: IndexWriter, results: Iterator[tuple[str, Done | str]], group: int, progress: Progress, report: Report,
) -> set[str]:
    """Write files prepared and embedded elsewhere (`ingest.cluster`) as they come, about `group` chunks at a
    time: their chunks, then their ledger records. Returns the sources written; failures go to the report.
    `report.write_seconds` is the whole run here (reading and embedding overlap the writes)."""
    began = time.perf_counter()
    written: set[str] = set()
    waiting: list[tuple[str, Done]] = []

    def flush() -> None:
        started = time.perf_counter()
        chunks = [(c, done.prepared.sha256) for _, done in waiting for c in done.prepared.chunks]
        if chunks:
            writer.write([c for c, _ in chunks], np.vstack([done.vectors for _, done in waiting]),
                         [sha for _, sha in chunks])
        writer.finish([done.prepared.record(source) for source, done in waiting])
        written.update(source for source, _ in waiting)
        report.store_seconds += time.perf_counter() - started
        report.chunks += len(chunks)
        waiting.clear()

    for source, outcome in results:
        if isinstance(outcome, str):
            report.failed[source] = outcome
            progress.failed(source, outcome)
            continue
        waiting.append((source, outcome))
        if sum(len(done.prepared.chunks) for _, done in waiting) >= group:
            flush()
    flush()
    report.write_seconds = time.perf_counter() - began
    return written


def _batches(
    documents: dict[str, Prepared], size: int
) -> Iterator[list[tuple[Chunk, str]]]:
    batch: list[tuple[Chunk, str]] = []
    for doc in documents.values():
        for chunk in doc.chunks:
            batch.append((chunk, doc.sha256))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch
