"""Dense (Chroma) and BM25 retrieval, fused (standardised scores or reciprocal ranks), capped per source,
optionally within some documents."""

from __future__ import annotations

import fnmatch
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rag.embedding import Embedder
from rag.errors import IndexMissingError, SourceFilterError
from rag.index.lexical import LexicalIndex, published
from rag.index.store import Index, Store
from rag.settings import Settings
from rag.types import Chunk, Fusion, Hit, Mode


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


TAKE_UP_WAIT_S = 0.5  # the question that finds a newer index waits this long for it to load (see Retriever.current)


@dataclass(frozen=True)
class _Loaded:
    key: tuple[str, str]
    index: Index
    lexical: LexicalIndex


class Retriever:
    """Finds the passages for a question; picks up a newer index without a restart.

    The published BM25 index is the snapshot a reader answers from: dense hits outside it (written
    by an ingest that has not published yet) are left out, so a reader sees the old index or the
    new one, never a mix. A newer index published by another process is loaded in the background
    while the one loaded answers (at a million chunks its BM25 snapshot takes seconds to load, and
    minutes to build where the writer's is not shared: `RAG_BM25_DIR`); questions switch to it once
    it is ready.
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        self._checked = 0.0
        self._wait = False  # the next question loads a newer index itself (this process just published it)
        self._loading: tuple[str, str] | None = None  # the newer index being loaded in the background

    def current(self) -> tuple[Index, LexicalIndex]:
        """The live index and its BM25 index. A newer one is loaded in the background and taken up once loaded;
        the question that finds it waits `TAKE_UP_WAIT_S` for it (enough for a small index), later ones do not.
        After `refresh()` the next question loads it itself."""
        loader = None
        with self._lock:
            now = time.monotonic()
            if self._loaded is None or self._wait or now - self._checked > self.settings.reader_recheck_s:
                self._checked = now
                active = self.store.active()
                if active is None:
                    raise IndexMissingError(f"no index at {self.store.location}; run `rag ingest` first")
                if self._loaded is None or (self._wait and self._loaded.key != active):
                    self._loaded = self._load(active)
                elif self._loaded.key != active and self._loading != active:
                    self._loading = active
                    loader = threading.Thread(target=self._take_up, args=(active,), name="index-loader", daemon=True)
                    loader.start()
                self._wait = False
            loaded = self._loaded
        if loader is not None:
            loader.join(TAKE_UP_WAIT_S)
            with self._lock:
                loaded = self._loaded
        return loaded.index, loaded.lexical

    def _load(self, active: tuple[str, str]) -> _Loaded:
        index = self.store.index(active[0])
        index.check(self.settings)
        return _Loaded(active, index, published(self.settings.bm25, index, active[1]))

    def _take_up(self, active: tuple[str, str]) -> None:
        """Load `active` in this thread and switch to it, unless a newer one was loaded meanwhile. On failure
        (a mismatch, the store gone) the next question loads it itself, and reports what is wrong."""
        try:
            loaded: _Loaded | None = self._load(active)
        except Exception:
            loaded = None
        with self._lock:
            if self._loading == active:
                self._loading = None
            if loaded is None:
                self._wait = True
            elif self._loaded is None or int(loaded.key[1]) > int(self._loaded.key[1]):
                self._loaded = loaded

    def refresh(self, wait: bool = True) -> None:
        """Look for a newer index on the next question; with `wait` (after an ingest in this process, whose
        questions must see what it wrote) that question loads it itself rather than in the background."""
        with self._lock:
            self._checked = 0.0
            self._wait = self._wait or wait

    def search(self, queries: Sequence[str], k: int | None = None, mode: Mode | None = None,
               sources: Sequence[str] | None = None) -> list[Hit]:
        """The best `k` chunks for `queries` (fused when several), at most `per_source` per document.

        With `sources` (glob patterns, see `match_sources`), only chunks of the indexed documents they
        match, and no cap per document (the user chose the documents: `k` passages of one are wanted);
        `SourceFilterError` when they match none.
        """
        k = k or self.settings.k
        mode = mode or self.settings.mode
        for attempt in range(2):
            index, lexical = self.current()
            within = None
            if sources is not None:
                within = match_sources(sources, index.files())
                if not within:
                    raise SourceFilterError(
                        f"no indexed document matches the source filter {', '.join(map(repr, sources)) or '(empty)'} "
                        f"({index.file_count()} documents are indexed); `rag documents` lists them")
            found = self._find(index, lexical, queries, max(self.settings.candidates, k), mode, within)
            fused = FUSIONS[self.settings.fusion]([(run.weight, run.scored) for run in found.runs], self.settings)
            missing = [cid for cid in fused if cid not in found.chunks]
            stored = index.get(missing)
            if len(stored) == len(missing) or attempt:
                break
            # Deleted by a newer publish: this snapshot is out of date. Take up the new one (in the background:
            # the retry answers from this one without those chunks).
            self.refresh(wait=False)
        return self._hits(found, fused, stored, queries, k, k if within is not None else self.settings.per_source)

    def _find(self, index: Index, lexical: LexicalIndex, queries: Sequence[str], n: int, mode: Mode,
              within: list[str] | None = None) -> _Found:
        """Each retriever's `n` best chunks for each query (of the `within` sources only, when given), in
        query order (dense before BM25)."""
        vectors = self.embedder.embed(list(queries)) if mode != "bm25" else None
        weight = self.settings.dense_weight if mode == "hybrid" else 1.0
        only = index.chunk_ids(within) if within is not None and mode != "dense" else None
        found = _Found(vectors)
        for i, query in enumerate(queries):
            if vectors is not None:
                # Chunks an ingest has written but not yet published are not in this snapshot.
                dense = [(c, sim) for c, sim in index.query(vectors[i], n, within) if c.id in lexical]
                found.runs.append(_Run("dense", weight, [(c.id, sim) for c, sim in dense]))
                found.chunks.update((c.id, c) for c, _ in dense)
            if mode != "dense":
                found.runs.append(_Run("bm25", 1.0 - weight if mode == "hybrid" else 1.0,
                                       lexical.search(query, n, only)))
        return found

    def _hits(self, found: _Found, fused: dict[str, float], stored: dict[str, tuple[Chunk, np.ndarray[Any, Any]]],
              queries: Sequence[str], k: int, cap: int) -> list[Hit]:
        """The fused best `k`, `cap` per source at most, each with its dense similarity and both retrievers' ranks."""
        chunks = {**found.chunks, **{cid: chunk for cid, (chunk, _) in stored.items()}}
        ranked = [cid for cid in sorted(fused, key=lambda c: -fused[c]) if cid in chunks]
        top = cap_per_source(ranked, {cid: chunks[cid].source for cid in ranked}, cap, k)
        dense, bm25 = found.best("dense"), found.best("bm25")
        vectors = found.vectors if found.vectors is not None else self.embedder.embed(list(queries))
        for cid in top:  # a dense similarity for every hit, also those only BM25 found
            if cid not in dense:
                dense[cid] = float(np.max(vectors @ stored[cid][1]))
        dense_ranks, bm25_ranks = found.ranks("dense"), found.ranks("bm25")
        return [
            Hit(chunk=chunks[cid], score=fused[cid], dense_score=dense.get(cid), bm25_score=bm25.get(cid),
                dense_rank=dense_ranks.get(cid), bm25_rank=bm25_ranks.get(cid))
            for cid in top
        ]


@dataclass(frozen=True)
class _Run:
    """One retriever's scored ids for one query, best first, and its weight in z-score fusion."""

    retriever: Literal["dense", "bm25"]
    weight: float
    scored: list[tuple[str, float]]


@dataclass
class _Found:
    """What the retrievers found: their runs in query order, and the chunks the dense search returned."""

    vectors: np.ndarray[Any, Any] | None  # the queries' vectors (None in BM25 mode)
    runs: list[_Run] = field(default_factory=list)
    chunks: dict[str, Chunk] = field(default_factory=dict)

    def best(self, retriever: str) -> dict[str, float]:
        """Each id's best score from one retriever over all queries."""
        out: dict[str, float] = {}
        for run in self.runs:
            if run.retriever == retriever:
                for cid, score in run.scored:
                    out[cid] = max(out.get(cid, score), score)
        return out

    def ranks(self, retriever: str) -> dict[str, int]:
        """Each id's best rank (from 1) from one retriever over all queries."""
        return _ranks([[cid for cid, _ in run.scored] for run in self.runs if run.retriever == retriever])


def _rrf_fusion(lists: Sequence[tuple[float, Sequence[tuple[str, float]]]], settings: Settings) -> dict[str, float]:
    return rrf([[cid for cid, _ in scored] for _, scored in lists], settings.rrf_k)


def _zscore_fusion(lists: Sequence[tuple[float, Sequence[tuple[str, float]]]], settings: Settings
                   ) -> dict[str, float]:
    return zfuse(lists)


# RAG_FUSION -> how the ranked lists (weight, [(id, score)]) become one score per id.
FUSIONS: dict[Fusion, Callable[[Sequence[tuple[float, Sequence[tuple[str, float]]]], Settings], dict[str, float]]] = {
    "rrf": _rrf_fusion, "zscore": _zscore_fusion,
}


def match_sources(patterns: Sequence[str], indexed: Iterable[str]) -> list[str]:
    """The indexed sources that any of `patterns` matches, sorted. A pattern is a glob (`*` also crosses
    `/`) matched against the whole source (`corpus/notes/*.md`) or its file name (`*.pdf`, `gfs.pdf`)."""
    return sorted(source for source in indexed
                  if any(fnmatch.fnmatchcase(source, p) or fnmatch.fnmatchcase(source.rsplit("/", 1)[-1], p)
                         for p in patterns))


def _ranks(rankings: Sequence[Sequence[str]]) -> dict[str, int]:
    best: dict[str, int] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            best[item] = min(best.get(item, rank), rank)
    return best

