"""Writing an index: one writer at a time, through `IndexWriter`, publishing what it wrote so that readers
switch at once.

Readers (`rag.retrieve.Retriever`) answer from the chunks their published BM25 snapshot holds, so
a writer can write chunks while they read; publishing makes the new snapshot live in one write and
deletes what it replaced only after `RAG_PUBLISH_GRACE_S`, when every reader has moved on.
Ingest, removal and the benchmarks' synthetic indexes all write through `IndexWriter.open`, so the
sequence (lock, open or create, check, write, record, publish) exists once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from rag.errors import IngestLockedError
from rag.files import LockHeld, locked
from rag.index.lexical import build_from_index, drop_older, lexical_folder
from rag.index.server import server_writer_lock
from rag.index.store import Index, Store
from rag.types import Chunk, FileRecord, Progress, Quiet


@contextmanager
def writer_lock(store: Store) -> Iterator[None]:
    """Be the only writer of the store's index while the block runs: a file lock in RAG_HOME, or a
    lock held inside the Chroma server (`rag.index.server.server_writer_lock`).

    Two writers of one index would delete each other's unrecorded chunks as orphans, or drop each
    other's generations, so a Chroma server shared by several machines needs a lock of its own.

    Raises:
        IngestLockedError: another writer holds the lock.
    """
    settings = store.settings
    if settings.chroma_url:
        with server_writer_lock(store.client(), settings.collection, store.location, settings.lock_ttl_s):
            yield
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        with locked(settings.home / "ingest.lock", wait=False):
            yield
    except LockHeld as held:
        raise IngestLockedError(
            f"another ingest (pid {held.holder or 'unknown'}) is writing to {settings.home}; wait for it to finish"
        ) from None


class IndexWriter:
    """The one way to change an index, held while its writer lock is: write chunks, record finished files,
    take files out of the ledger, publish.

    `live` is the published generation the write extends (None on a first run or a rebuild), already
    checked against the settings; `start` gives the generation being written (`live`, or a new one).
    """

    def __init__(self, store: Store, live: Index | None) -> None:
        self.store = store
        self.live = live
        self._index: Index | None = None

    @classmethod
    @contextmanager
    def open(cls, store: Store, *, rebuild: bool = False) -> Iterator[IndexWriter]:
        """Take the writer lock and open the live generation (unless `rebuild`), checked against the settings.

        Raises:
            IngestLockedError: another writer holds the lock.
            IndexMismatchError: the live index was built with other settings (refused before any model loads).
        """
        with writer_lock(store):
            yield cls(store, None if rebuild else store.checked())

    @property
    def index(self) -> Index:
        """The generation being written (`start` must have been called)."""
        if self._index is None:
            raise RuntimeError("IndexWriter.start was not called")
        return self._index

    def start(self, dimension: int | None = None) -> Index:
        """The generation to write vectors of `dimension` into: the live one, or a new, empty one (not live
        until `publish`; a new one needs the `dimension`), checked against the settings and the dimension."""
        if self._index is None:
            if self.live is None and dimension is None:
                raise RuntimeError("a new index generation needs the embedding dimension")
            self._index = self.live or self.store.create(int(dimension or 0))
            self._index.check(self.store.settings, dimension)
        return self._index

    def write(self, chunks: Sequence[Chunk], vectors: np.ndarray[Any, Any], sha256: Sequence[str]) -> None:
        """Write chunks with their vectors and their file's content hash (by id: writing one twice changes nothing)."""
        self.index.upsert(chunks, vectors, sha256)

    def finish(self, records: Sequence[FileRecord]) -> None:
        """Record files whose chunks are all written as done."""
        self.index.finish_files(records)

    def unrecord(self, sources: Sequence[str]) -> None:
        """Take files out of the ledger: their chunks leave the index at the next `publish`."""
        self.index.unrecord(sources)

    def note(self, **metadata: Any) -> None:
        """Merge `metadata` into the generation's metadata without publishing."""
        self.index.set_metadata(**metadata)

    def publish(self, progress: Progress | None = None, records: dict[str, FileRecord] | None = None,
                **metadata: Any) -> None:
        """Merge `metadata` into the generation's, then publish what the ledger accounts for (`_publish`);
        `records`: the ledger as the caller has just read it, so that it is not read again."""
        if metadata:
            self.note(**metadata)
        _publish(self.store, self.index, self.index.files() if records is None else records, progress)


def _publish(store: Store, index: Index, records: dict[str, FileRecord], progress: Progress | None = None) -> None:
    """Build and save BM25 over the chunks the ledger accounts for, make it live, then drop the rest.

    Readers answer from the chunks their BM25 snapshot holds, so until the new stamp is live they
    keep seeing the old versions. Old versions and the previous generation are deleted only once
    every reader has had time to notice the new stamp (`RAG_PUBLISH_GRACE_S`). Called under the
    writer lock (`IndexWriter.publish`).
    """
    active = store.active()
    rebuilt = active is not None and active[0] != index.name  # the old generation goes too
    progress = progress or Quiet()
    progress.start("BM25 index", 1)
    lexical, orphans = build_from_index(index, records)
    stamp = f"{time.time_ns()}"
    folder = lexical_folder(store.settings.bm25, index.name, stamp)
    lexical.save(folder)
    store.activate(index, stamp)
    if orphans or rebuilt:
        time.sleep(store.settings.publish_grace_s)  # readers in other processes move to the new stamp meanwhile
    index.delete_chunks(orphans)  # old versions, removed files, and chunks left by a killed run
    store.drop_stale_generations()
    drop_older(folder)
    progress.advance(1)
