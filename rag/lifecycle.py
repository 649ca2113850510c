"""Writing an index: one writer at a time, and publishing what it wrote so that readers switch at once.

Readers (`rag.retrieve.Retriever`) answer from the chunks their published BM25 snapshot holds, so
an ingest can write chunks while they read; `publish` makes the new snapshot live in one write and
deletes what it replaced only after `RAG_PUBLISH_GRACE_S`, when every reader has moved on.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rag.chroma_server import server_writer_lock
from rag.errors import IngestLockedError
from rag.lexical import build_from_index, lexical_folder
from rag.store import FileRecord, Index, Store
from rag.types import Progress, Quiet


@contextmanager
def writer_lock(store: Store) -> Iterator[None]:
    """Be the only writer of the store's index while the block runs: a file lock in RAG_HOME, or a
    lock held inside the Chroma server (`rag.chroma_server.server_writer_lock`).

    Two writers of one index would delete each other's unrecorded chunks as orphans, or drop each
    other's generations, so a Chroma server shared by several machines needs a lock of its own.

    Raises:
        IngestLockedError: another writer holds the lock.
    """
    settings = store.settings
    if settings.chroma_url:
        with server_writer_lock(store):
            yield
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "ingest.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            raise IngestLockedError(
                f"another ingest (pid {pid}) is writing to {settings.home}; wait for it to finish"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(store: Store, index: Index, records: dict[str, FileRecord], progress: Progress | None = None) -> None:
    """Build and save BM25 over the chunks the ledger accounts for, make it live, then drop the rest.

    Readers answer from the chunks their BM25 snapshot holds, so until the new stamp is live they
    keep seeing the old versions. Old versions and the previous generation are deleted only once
    every reader has had time to notice the new stamp (`RAG_PUBLISH_GRACE_S`).
    """
    active = store.active()
    rebuilt = active is not None and active[0] != index.name  # the old generation goes too
    progress = progress or Quiet()
    progress.start("BM25 index", 1)
    lexical, orphans = build_from_index(index, records)
    stamp = f"{time.time_ns()}"
    folder = lexical_folder(store.settings.home, index.name, stamp)
    lexical.save(folder)
    store.activate(index, stamp)
    if orphans or rebuilt:
        time.sleep(store.settings.publish_grace_s)  # readers in other processes move to the new stamp meanwhile
    index.delete_chunks(orphans)  # old versions, removed files, and chunks left by a killed run
    store.drop_stale_generations()
    for old in folder.parent.iterdir():
        if old != folder and old.name.startswith(f"{store.settings.collection}-g"):
            shutil.rmtree(old, ignore_errors=True)
    progress.advance(1)
