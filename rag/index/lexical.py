"""The BM25 index over the chunks of one index generation, saved beside the Chroma collection."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.index.store import Index
from rag.text import terms
from rag.types import FileRecord


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over stemmed terms, with document frequencies for term weights."""

    def __init__(self, ids: list[str], retriever: Any, df: dict[str, int]) -> None:
        self.ids = ids
        self._retriever = retriever
        self._df = df
        self._members = frozenset(ids)

    def __contains__(self, chunk_id: object) -> bool:
        """Whether the chunk belongs to this snapshot of the index."""
        return chunk_id in self._members

    @classmethod
    def build(cls, chunks: Iterable[tuple[str, str]]) -> LexicalIndex:
        """Index `(chunk id, text)` pairs, read one at a time: only each text's term ids are kept (at a million
        chunks their texts and terms as strings would take gigabytes)."""
        import bm25s

        ids: list[str] = []
        vocab: dict[str, int] = {}
        docs: list[list[int]] = []
        df: Counter[int] = Counter()
        for chunk_id, text in chunks:
            doc = [vocab.setdefault(t, len(vocab)) for t in terms(text)]  # shares one int per term
            ids.append(chunk_id)
            docs.append(doc)
            df.update(set(doc))
        retriever = bm25s.BM25()
        if docs:
            retriever.index((docs, vocab), show_progress=False)
        names = list(vocab)  # term id -> term
        return cls(ids, retriever, {names[i]: n for i, n in df.items()})

    def save(self, folder: Path) -> None:
        """Write the index to `folder` atomically (a temporary folder renamed into place)."""
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if self.ids:
            self._retriever.save(str(tmp), show_progress=False)
        (tmp / "chunks.json").write_text(json.dumps({"ids": self.ids, "df": self._df}))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """Read an index saved by `save`, or None when there is none (or it is unreadable)."""
        import bm25s

        try:
            data = json.loads((folder / "chunks.json").read_text())
            retriever = bm25s.BM25.load(str(folder), show_progress=False) if data["ids"] else bm25s.BM25()
        except (OSError, ValueError, KeyError):
            return None
        return cls(data["ids"], retriever, data["df"])

    def search(self, query: str, n: int, only: Collection[str] | None = None) -> list[tuple[str, float]]:
        """The `n` best chunk ids for `query` with their BM25 scores (only those that match, and are in `only`)."""
        query_terms = terms(query)
        if not self.ids or not query_terms:
            return []
        scores = np.asarray(self._retriever.get_scores(query_terms))
        if only is not None:
            scores = np.where([cid in only for cid in self.ids], scores, 0.0)
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def weight(self, term: str) -> float:
        """A term's weight in a question: its idf, or 0 for a term no chunk uses (no sentence can hold it)."""
        return self.idf(term) if term in self._df else 0.0

    def idf(self, term: str) -> float:
        """BM25 inverse document frequency of a stemmed term (high for rare terms)."""
        n, df = len(self.ids), self._df.get(term, 0)
        return math.log(1 + (n - df + 0.5) / (df + 0.5))


def lexical_folder(root: Path, generation: str, stamp: str) -> Path:
    """Where the BM25 index of a generation at a stamp is saved under `root` (`Settings.bm25`)."""
    return root / f"{generation}-{stamp}"


def build_from_index(index: Index, records: dict[str, FileRecord] | None = None) -> tuple[LexicalIndex, list[str]]:
    """BM25 over an index's chunks; with `records`, leave out (and return) chunks no record accounts for."""
    orphans: list[str] = []

    def accounted() -> Iterator[tuple[str, str]]:
        for chunk, sha256 in index.all_chunks():
            record = records.get(chunk.source) if records is not None else None
            if records is not None and (record is None or record.sha256 != sha256):
                orphans.append(chunk.id)
            else:
                yield chunk.id, chunk.embed_text()

    return LexicalIndex.build(accounted()), orphans


def published(root: Path, index: Index, stamp: str) -> LexicalIndex:
    """The BM25 snapshot published for `index` at `stamp`, which readers answer from: the writer's, from `root`
    (`RAG_BM25_DIR`, which replicas of a Chroma server share with it); derived from the index's ledger and
    saved when there is none there (a replica with a folder of its own, or the copy is gone)."""
    folder = lexical_folder(root, index.name, stamp)
    lexical = LexicalIndex.load(folder)
    if lexical is None:
        lexical, _ = build_from_index(index, index.files())
        with contextlib.suppress(OSError):  # a folder this replica may only read: the copy stays in memory
            lexical.save(folder)
            drop_older(folder)
    return lexical


def drop_older(folder: Path) -> None:
    """Delete the BM25 snapshots of `folder`'s collection saved beside it at older stamps (and unfinished saves)."""
    generation, _, stamp = folder.name.rpartition("-")
    collection = generation.rpartition("-g")[0]
    for other in folder.parent.iterdir():
        other_generation, _, other_stamp = other.name.removesuffix(".tmp").rpartition("-")
        if (other_generation.rpartition("-g")[0] == collection and other_stamp.isdigit()
                and int(other_stamp) < int(stamp)):
            shutil.rmtree(other, ignore_errors=True)
