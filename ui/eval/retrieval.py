"""`rag eval retrieval`: nDCG@10, Recall@10/100 and MRR@10 of the product's own index on a BEIR folder."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ingest.pipeline import ingest
from rag.embedding import embedder_for
from rag.errors import RagError
from rag.index.store import Store
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.types import MODES, Mode, Progress
from ui.eval.beir import read_beir
from ui.eval.cache import CachedEmbedder
from ui.eval.metrics import mean, mrr_at, ndcg_at, recall_at

Say = Callable[[str], None]
DEPTH = 100  # documents ranked per query (Recall@100)


def markdown(title: str, text: str) -> str:
    """A document as the evaluations write it: `# title`, a blank line, the text (the text alone without a title)."""
    return f"# {title.strip()}\n\n{text.strip()}\n" if title.strip() else f"{text.strip()}\n"


def write_documents(bodies: Mapping[str, str], folder: Path, prune: bool = False) -> int:
    """Write each `file name -> body` into `folder`, leaving unchanged files alone (a re-index then only
    checks hashes); with `prune`, other `.md` files there are removed. Returns how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    if prune:
        for old in folder.glob("*.md"):
            if old.name not in bodies:
                old.unlink()
    written = 0
    for name, body in bodies.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") != body:
            path.write_text(body, encoding="utf-8")
            written += 1
    return written


def file_stem(doc_id: str) -> str:
    """A document id made safe as a file name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in doc_id)


def eval_home(settings: Settings, kind: str, name: str) -> Settings:
    """Settings for an evaluation index of its own (its own home and collection, never the user's)."""
    home = settings.home / "eval" / f"{kind}-{file_stem(name)}"
    return settings.model_copy(update={"home": home, "chroma_url": None, "collection": "eval"})


def cached_embedder(settings: Settings) -> CachedEmbedder:
    """The embedder evaluations share: vectors cached under RAG_HOME/eval/embeddings.sqlite."""
    return CachedEmbedder(settings.home / "eval" / "embeddings.sqlite", embedder_for(settings))


def build_index(documents: Path | list[Path], settings: Settings, embedder: CachedEmbedder, say: Say,
                progress: Progress | None = None) -> dict[str, Any]:
    """Index `documents` (a folder, or several) through the normal ingest path (incremental: a second
    run only checks hashes)."""
    began = time.perf_counter()
    folders = documents if isinstance(documents, list) else [documents]
    report = ingest(folders, settings, embedder=embedder, progress=progress)
    if report.failed:
        raise RagError(f"{len(report.failed)} documents could not be indexed, e.g. {next(iter(report.failed.items()))}")
    count = Store(settings).open().count()
    say(f"indexed {', '.join(map(str, folders))}: {count} chunks ({report.chunks} embedded or re-used now, "
        f"{embedder.hits} vectors from the cache) in {time.perf_counter() - began:.0f} s")
    return {"chunks": count, "seconds": round(time.perf_counter() - began, 1)}


def rank_documents(retriever: Retriever, question: str, mode: Mode, doc_of: Callable[[str], str]) -> list[str]:
    """Documents ranked by their best chunk (the retriever's per-source cap of 1 keeps one chunk each)."""
    return [doc_of(hit.chunk.source) for hit in retriever.search([question], DEPTH, mode)]


def evaluate(folder: Path, settings: Settings, modes: Iterable[Mode] = MODES, split: str = "test",
             say: Say = print, progress: Progress | None = None) -> dict[str, Any]:
    """Index the BEIR corpus at `folder` with the product's pipeline and score each retrieval mode."""
    corpus, queries, qrels = read_beir(folder, split)
    say(f"{folder.name}: {len(corpus)} documents, {len(queries)} queries with judgments ({split})")
    embedder = cached_embedder(settings)
    settings = eval_home(settings, "beir", folder.resolve().name)
    settings = settings.model_copy(update={"per_source": 1, "candidates": max(settings.candidates, 3 * DEPTH)})
    documents = settings.home / "documents" / "docs"
    write_documents({f"{file_stem(d)}.md": markdown(doc["title"], doc["text"]) for d, doc in corpus.items()},
                    documents)
    built = build_index(documents, settings, embedder, say, progress)
    retriever = Retriever(settings, Store(settings), embedder)
    ids = {f"docs/{file_stem(d)}.md": d for d in corpus}
    results: dict[str, Any] = {}
    for mode in modes:
        began = time.perf_counter()
        scores: dict[str, list[float]] = defaultdict(list)
        for qid, question in queries.items():
            ranked = rank_documents(retriever, question, mode, ids.__getitem__)
            relevant = qrels[qid]
            scores["ndcg@10"].append(ndcg_at(ranked, relevant, 10))
            scores["recall@10"].append(recall_at(ranked, relevant, 10))
            scores["recall@100"].append(recall_at(ranked, relevant, 100))
            scores["mrr@10"].append(mrr_at(ranked, relevant, 10))
        results[mode] = {name: round(mean(values), 4) for name, values in scores.items()}
        results[mode]["ms_per_query"] = round((time.perf_counter() - began) * 1000 / max(len(queries), 1), 1)
        say(f"{mode:7} " + "  ".join(f"{k} {v}" for k, v in results[mode].items()))
    return {"data": str(folder), "documents": len(corpus), "queries": len(queries), "index": built,
            "settings": {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
                         "fusion": settings.fusion, "dense_weight": settings.dense_weight, "rrf_k": settings.rrf_k,
                         "candidates": settings.candidates,
                         "embed_model": settings.embed_model},
            "modes": results}
