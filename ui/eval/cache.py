"""An embedder wrapped with a cache of every vector it computes on disk, keyed by model and text hash."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import Embedded, Embedder


class CachedEmbedder:
    """An `Embedder` (`inner`) with a SQLite cache: a text seen before (by this model) is never embedded again.

    Used by `rag eval` and `rag bench` so that a second run over the same data takes seconds. Word-piece
    vectors (`embed_pieces`) are not cached on disk: they come from `inner`.
    """

    def __init__(self, path: Path, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.batch_size, self.backend = inner.name, inner.batch_size, inner.backend
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")
        self._db_lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def dimension(self) -> int:
        """Length of the vectors (loads the model)."""
        return self.inner.dimension

    def embed_pieces(self, texts: Sequence[str]) -> list[Embedded]:
        """`inner`'s texts with their word pieces (kept in its memory, not on disk)."""
        return self.inner.embed_pieces(texts)

    def _key(self, text: str) -> bytes:
        model = self.name if self.backend == "torch" else f"{self.name}\0{self.backend}"  # torch: keys as before
        return hashlib.sha256(f"{model}\0{text}".encode()).digest()

    def embed(self, texts: Sequence[str], progress: Callable[[int], Any] | None = None
              ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Vectors from the cache where known; the rest embedded (in batches) and stored."""
        keys = [self._key(t) for t in texts]
        found: dict[bytes, np.ndarray[Any, np.dtype[np.float32]]] = {}
        with self._db_lock:
            for i in range(0, len(keys), 500):
                part = keys[i:i + 500]
                rows = self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        self.hits += len(texts) - len(todo)
        self.misses += len(todo)
        if progress and len(texts) > len(todo):
            progress(len(texts) - len(todo))
        if todo:
            vectors = self.inner.embed(todo, progress)
            fresh = {self._key(t): v for t, v in zip(todo, vectors, strict=True)}
            with self._db_lock:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                     [(k, v.astype(np.float32).tobytes()) for k, v in fresh.items()])
                self._db.commit()
            found.update(fresh)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)
