"""Indexes of any size for the query benchmark: SciFact's real chunks, then synthetic variants of them, written
through the index's one writer."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import chunk_document
from rag.errors import RagError
from rag.index.store import Store, fingerprint
from rag.index.writer import IndexWriter
from rag.settings import Settings
from rag.types import Chunk, FileRecord, Section, SourceDocument
from ui.bench.common import Say, quiet
from ui.eval.beir import read_corpus
from ui.eval.retrieval import file_stem

VARIANT_NOTE = (
    "chunks beyond the real SciFact chunks are synthetic variants: copies of real chunks under a new "
    "source (variant-N/<doc>), text prefixed with a variant tag, vector = real vector + Gaussian noise "
    "(re-normalised). Fair for latency: the dense search walks an HNSW graph of the same size and "
    "dimension, and BM25 scores every chunk holding a query term; repeating the vocabulary makes its "
    "posting lists longer than a real corpus of that size would (pessimistic for BM25)."
)


def real_chunks(corpus_jsonl: Path, settings: Settings) -> list[tuple[Chunk, str]]:
    """Every SciFact document as title + text (source `scifact/<id>`), cut by the product chunker; with its hash."""
    out: list[tuple[Chunk, str]] = []
    for doc in read_corpus(corpus_jsonl):
        sha = hashlib.sha256(f"{doc['title']}\n{doc['text']}".encode()).hexdigest()
        source = SourceDocument(source=f"scifact/{file_stem(doc['_id'])}", title=doc["title"], text=doc["text"],
                                sha256=sha, sections=(Section(0),))
        out.extend((c, sha) for c in chunk_document(source, settings.chunk_tokens, settings.chunk_overlap))
    return out


def _stream(real: list[tuple[Chunk, str]], vectors: np.ndarray[Any, Any], size: int, noise: float, seed: int,
            page: int = 1000) -> Iterator[tuple[list[Chunk], np.ndarray[Any, Any], list[str]]]:
    """The first `size` chunks of: the real chunks, then variant rounds 1, 2, ... of them, page by page."""
    if not real:
        raise RagError("no real chunks to build an index from")
    made, variant = 0, 0
    while made < size:
        rng = np.random.default_rng([seed, variant])
        for at in range(0, len(real), page):
            part = real[at:at + min(page, size - made)]
            if not part:
                return
            vecs = vectors[at:at + len(part)]
            if variant == 0:
                yield [c for c, _ in part], vecs, [sha for _, sha in part]
            else:
                tag = f"[variant {variant}] "
                chunks = [_variant(c, variant, tag) for c, _ in part]
                noisy = vecs + rng.normal(0.0, noise, vecs.shape).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                shas = [hashlib.sha256(f"{variant}\0{sha}".encode()).hexdigest() for _, sha in part]
                yield chunks, noisy.astype(np.float32), shas
            made += len(part)
            if made >= size:
                return
        variant += 1


def _variant(chunk: Chunk, variant: int, tag: str) -> Chunk:
    source = f"variant-{variant}/{chunk.source}"
    text = tag + chunk.text
    cid = hashlib.sha256(f"{source}\0{chunk.start}\0{text}".encode()).hexdigest()[:32]
    return Chunk(id=cid, source=source, title=chunk.title, text=text, start=chunk.start,
                 end=chunk.start + len(text), index=chunk.index, headings=chunk.headings, page=chunk.page)


def recipe(corpus_jsonl: Path, settings: Settings, size: int, noise: float, seed: int, real: int) -> str:
    spec = {"corpus": str(corpus_jsonl.resolve()), "bytes": corpus_jsonl.stat().st_size, "size": size,
            "noise": noise, "seed": seed, "real": real, "fingerprint": fingerprint(settings), "v": 1}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def reusable(settings: Settings, size: int, recipe: str) -> bool:
    store = Store(settings)
    if store.active() is None:
        return False
    index = store.open()
    return index.metadata.get("bench_recipe") == recipe and index.count() == size


def build_index(settings: Settings, real: list[tuple[Chunk, str]], vectors: np.ndarray[Any, Any], size: int,
                recipe: str, noise: float = 0.02, seed: int = 0,
                say: Say = quiet) -> dict[str, float]:
    """Write exactly `size` chunks (real, then variants) into a new generation and publish it (through the
    index's one writer, under its lock, like an ingest)."""
    began = time.perf_counter()
    with IndexWriter.open(Store(settings), rebuild=True) as writer:
        writer.start(int(vectors.shape[1]))
        ledger: dict[str, list[Any]] = {}  # source -> [sha, chunks, title]
        written = 0
        for chunks, vecs, shas in _stream(real, vectors, size, noise, seed):
            writer.write(chunks, vecs, shas)
            for c, sha in zip(chunks, shas, strict=True):
                ledger.setdefault(c.source, [sha, 0, c.title])[1] += 1
            written += len(chunks)
            if written // 10_000 > (written - len(chunks)) // 10_000 or written == size:
                say(f"  {written}/{size} chunks written ({time.perf_counter() - began:.0f} s)")
        upserted = time.perf_counter()
        writer.finish([FileRecord(source, sha, count, title, time.time())
                       for source, (sha, count, title) in ledger.items()])
        recorded = time.perf_counter()
        say(f"  {len(ledger)} ledger records ({recorded - upserted:.0f} s); publishing (BM25)")
        writer.publish(bench_recipe=recipe, last_ingest=time.time())
    done = time.perf_counter()
    return {"build_seconds": round(done - began, 1), "upsert_seconds": round(upserted - began, 1),
            "ledger_seconds": round(recorded - upserted, 1), "publish_seconds": round(done - recorded, 1),
            "sources": len(ledger)}
