"""Dense (Chroma) and BM25 retrieval, fused (standardised scores or reciprocal ranks), capped per source."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from rag.embedding import Embedder
from rag.errors import IndexMissingError
from rag.lexical import LexicalIndex, build_from_index, lexical_folder
from rag.settings import Settings
from rag.store import Index, Store
from rag.types import Chunk, Hit

Mode = Literal["dense", "bm25", "hybrid"]
RECHECK_S = 1.0  # how often a reader looks for a newer index


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> dict[str, float]:
    """Reciprocal rank fusion: each id scores the sum of 1 / (k + rank) over the rankings."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return dict(scores)


def zfuse(lists: Sequence[tuple[float, Sequence[tuple[str, float]]]]) -> dict[str, float]:
    """Convex fusion of standardised scores: each list's scores become z-scores, weighted and summed.

    An id missing from a list counts as that list's lowest z-score (it was not among its candidates).
    """
    ids = {item for _, scored in lists for item, _ in scored}
    fused = dict.fromkeys(ids, 0.0)
    for weight, scored in lists:
        if not scored:
            continue
        values = np.array([score for _, score in scored], dtype=np.float64)
        spread = float(values.std()) or 1.0
        z = {item: (score - float(values.mean())) / spread for item, score in scored}
        low = min(z.values())
        for item in ids:
            fused[item] += weight * z.get(item, low)
    return fused


def cap_per_source(ranked: Sequence[str], source_of: dict[str, str], cap: int, k: int) -> list[str]:
    """The first `k` ids of `ranked`, taking at most `cap` from any one source."""
    taken: dict[str, int] = defaultdict(int)
    out = []
    for item in ranked:
        source = source_of[item]
        if taken[source] < cap:
            taken[source] += 1
            out.append(item)
            if len(out) == k:
                break
    return out


@dataclass(frozen=True)
class _Loaded:
    key: tuple[str, str]
    index: Index
    lexical: LexicalIndex


class Retriever:
    """Finds the passages for a question; picks up a newer index without a restart.

    The published BM25 index is the snapshot a reader answers from: dense hits outside it (written
    by an ingest that has not published yet) are left out, so a reader sees the old index or the
    new one, never a mix.
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._checked = 0.0

    def current(self) -> tuple[Index, LexicalIndex]:
        """The live index and its BM25 index, reloaded when an ingest has published a new one."""
        with self._lock:
            now = time.monotonic()
            if self._loaded is None or now - self._checked > RECHECK_S:
                self._checked = now
                active = self.store.active()
                if active is None:
                    raise IndexMissingError(f"no index at {self.store.location}; run `rag ingest` first")
                if self._loaded is None or self._loaded.key != active:
                    self._loaded = self._load(active)
            return self._loaded.index, self._loaded.lexical

    def _load(self, active: tuple[str, str]) -> _Loaded:
        index = self.store.index(active[0])
        index.check(self.settings)
        folder = lexical_folder(self.settings.home, *active)
        lexical = LexicalIndex.load(folder)
        if lexical is None:  # a Chroma server's index, or the saved copy is gone: derive it
            lexical, _ = build_from_index(index, index.files())
            lexical.save(folder)
        return _Loaded(active, index, lexical)

    def refresh(self) -> None:
        """Look for a newer index on the next question (after an ingest in this process)."""
        with self._lock:
            self._checked = 0.0

    def search(self, queries: Sequence[str], k: int | None = None, mode: Mode | None = None,
               retry: bool = True) -> list[Hit]:
        """The best `k` chunks for `queries` (fused when several), at most `per_source` per document."""
        k = k or self.settings.k
        mode = mode or self.settings.mode
        index, lexical = self.current()
        n = max(self.settings.candidates, k)
        vectors = self.embedder.embed(list(queries)) if mode != "bm25" else None
        rankings: list[list[str]] = []
        lists: list[tuple[float, list[tuple[str, float]]]] = []
        weight = self.settings.dense_weight if mode == "hybrid" else 1.0
        chunks: dict[str, Chunk] = {}
        dense: dict[str, float] = {}
        bm25: dict[str, float] = {}
        for i, query in enumerate(queries):
            if vectors is not None:
                # Chunks an ingest has written but not yet published are not in this snapshot.
                found = [(c, sim) for c, sim in index.query(vectors[i], n) if c.id in lexical]
                rankings.append([c.id for c, _ in found])
                lists.append((weight, [(c.id, sim) for c, sim in found]))
                for chunk, sim in found:
                    chunks[chunk.id] = chunk
                    dense[chunk.id] = max(dense.get(chunk.id, -1.0), sim)
            if mode != "dense":
                scored = lexical.search(query, n)
                rankings.append([cid for cid, _ in scored])
                lists.append((1.0 - weight if mode == "hybrid" else 1.0, scored))
                for cid, score in scored:
                    bm25[cid] = max(bm25.get(cid, 0.0), score)
        fused = rrf(rankings, self.settings.rrf_k) if self.settings.fusion == "rrf" else zfuse(lists)
        missing = [cid for cid in fused if cid not in chunks]
        stored = index.get(missing)
        if retry and len(stored) < len(missing):  # deleted by a newer publish: this snapshot is out of date
            self.refresh()
            return self.search(queries, k, mode, retry=False)
        for cid, (chunk, _) in stored.items():
            chunks[cid] = chunk
        ranked = [cid for cid in sorted(fused, key=lambda c: -fused[c]) if cid in chunks]
        top = cap_per_source(ranked, {cid: chunks[cid].source for cid in ranked}, self.settings.per_source, k)
        if vectors is None:
            vectors = self.embedder.embed(list(queries))
        for cid in top:  # a dense similarity for every hit, also those only BM25 found
            if cid not in dense:
                dense[cid] = float(np.max(vectors @ stored[cid][1]))
        dense_ranks = _ranks(rankings[0::2] if mode == "hybrid" else (rankings if mode == "dense" else []))
        bm25_ranks = _ranks(rankings[1::2] if mode == "hybrid" else (rankings if mode == "bm25" else []))
        return [
            Hit(chunk=chunks[cid], score=fused[cid], dense_score=dense.get(cid), bm25_score=bm25.get(cid),
                dense_rank=dense_ranks.get(cid), bm25_rank=bm25_ranks.get(cid))
            for cid in top
        ]


def _ranks(rankings: Sequence[Sequence[str]]) -> dict[str, int]:
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            best[item] = min(best.get(item, rank), rank)
    return best

