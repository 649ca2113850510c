"""Watched folders: the index follows files as they are created, edited, renamed and deleted.

watchfiles (inotify, or polling with `RAG_WATCH_POLL` for network filesystems) reports changes;
a burst of them (an editor's save-to-temp-then-rename, a file still being copied, a thousand files
dropped at once) becomes one sync once the folders have been quiet for `RAG_WATCH_QUIET_S`. A
sync is the normal incremental, kill-safe ingest of the watched folders under its writer lock, so
every rule of `rag ingest` holds: a folder that suddenly holds nothing is refused, not emptied; a
file read while it changes is reported and read again at the next sync; a sync killed half way
leaves the last published index answering, and the next one completes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.ignore import IGNORE_FILE
from ingest.pipeline import Report, ingest
from rag.embedding import Embedder
from rag.errors import IngestLockedError, RagError
from rag.settings import Settings
from rag.types import Progress

LOCKED_RETRY_S = 2.0  # another ingest holds the writer lock: try again this much later


@dataclass
class WatchState:
    """What a watcher is doing, for `rag serve`'s status: folders, changes waiting, the last sync."""

    folders: list[str]
    pending: int = 0  # changed paths seen and not synced yet
    syncing: bool = False
    last_sync: float | None = None
    last_summary: str = ""
    last_error: str = ""
    syncs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"folders": self.folders, "pending": self.pending, "syncing": self.syncing,
                    "last_sync": datetime.fromtimestamp(self.last_sync, UTC).isoformat(timespec="seconds")
                    if self.last_sync else None,
                    "last_summary": self.last_summary, "last_error": self.last_error, "syncs": self.syncs}


class Watcher:
    """Keeps the index in step with `folders` until `stop()`; `on_sync` hears each sync's report."""

    def __init__(self, folders: Iterable[Path], settings: Settings, embedder: Embedder | None = None,
                 on_sync: Callable[[Report | None, str], None] | None = None,
                 progress: Progress | None = None) -> None:
        self.folders = [folder.resolve() for folder in folders]
        missing = [str(folder) for folder in self.folders if not folder.is_dir()]
        if missing:
            raise RagError(f"{', '.join(missing)}: no such folder to watch; give rag watch existing folders")
        self.settings, self.embedder, self.progress = settings, embedder, progress
        self.on_sync = on_sync or (lambda report, error: None)
        self.state = WatchState([str(folder) for folder in self.folders])
        self._stop = threading.Event()
        self._home = settings.home.resolve()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Sync once, then after every quiet burst of changes, until `stop()` (or Ctrl-C)."""
        import watchfiles

        self.sync()
        changes = watchfiles.watch(
            *self.folders, watch_filter=self._wanted, step=int(self.settings.watch_quiet_s * 1000),
            debounce=max(int(self.settings.watch_quiet_s * 1000) * 20, 10_000), stop_event=self._stop,
            force_polling=self.settings.watch_poll or None, raise_interrupt=False,
            ignore_permission_denied=True)
        for batch in changes:
            with self.state.lock:
                self.state.pending += len(batch)
            self.sync()

    def start(self) -> threading.Thread:
        """Run in a daemon thread (for `rag serve --watch`)."""
        thread = threading.Thread(target=self.run, name="rag-watch", daemon=True)
        thread.start()
        return thread

    def sync(self) -> Report | None:
        """One incremental ingest of the watched folders (retried while another ingest holds the lock)."""
        with self.state.lock:
            self.state.syncing, pending = True, self.state.pending
        report, error = None, ""
        try:
            while not self._stop.is_set():
                try:
                    report = ingest(list(self.folders), self.settings, embedder=self.embedder,
                                    progress=self.progress)
                    break
                except IngestLockedError:
                    self._stop.wait(LOCKED_RETRY_S)
        except RagError as exc:  # a vanished folder, an unreadable .ragignore: say so, keep watching
            error = str(exc)
        except Exception as exc:  # a store or disk error: said the same way; the next change tries again
            error = f"sync failed ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
        with self.state.lock:
            self.state.syncing = False
            self.state.pending = max(0, self.state.pending - pending)
            self.state.last_sync, self.state.syncs = time.time(), self.state.syncs + 1
            self.state.last_summary = report.summary() if report is not None else ""
            self.state.last_error = error
        self.on_sync(report, error)
        return report

    def _wanted(self, change: Any, path: str) -> bool:
        """A change worth a sync: not inside the index's own folder, not a hidden or temporary file
        (an upload in progress, an editor's swap file), except `.ragignore` itself."""
        where = Path(path)
        if where == self._home or self._home in where.parents:
            return False
        name = where.name
        below = next((where.relative_to(f).parts for f in self.folders if f in where.parents), (name,))
        if any(part.startswith(".") for part in below[:-1]):  # inside a hidden folder (.git): never indexed
            return False
        return name == IGNORE_FILE or not (name.startswith(".") or name.endswith(("~", ".swp", ".tmp")))
