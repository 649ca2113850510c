"""BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), read for evaluation and the benchmarks."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rag.errors import RagError
from rag.golden import read_jsonl


def read_beir(folder: Path, split: str = "test") -> tuple[dict[str, dict[str, str]], dict[str, str],
                                                           dict[str, dict[str, int]]]:
    """corpus (id -> title/text), the queries that have judgments, and qrels (query -> doc -> grade)."""
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / name).is_file():
            raise RagError(f"{folder}: no {name}; give a BEIR folder (corpus.jsonl, queries.jsonl, qrels/{split}.tsv)")
    corpus = {str(d["_id"]): {"title": d.get("title") or "", "text": d.get("text") or ""}
              for d in read_jsonl(folder / "corpus.jsonl")}
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for number, line in enumerate((folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # the header row
        if len(parts) != 3:
            raise RagError(f"{folder}/qrels/{split}.tsv:{number + 1}: expected query-id, corpus-id, score")
        qrels[parts[0]][parts[1]] = int(parts[2])
    queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels}
    return corpus, queries, dict(qrels)


def read_corpus(corpus_jsonl: Path, limit: int | None = None) -> list[dict[str, str]]:
    """The first `limit` documents (`_id`, `title`, `text`) of a BEIR corpus that have text."""
    docs: list[dict[str, str]] = []
    try:
        for d in read_jsonl(corpus_jsonl):
            if limit is not None and len(docs) >= limit:
                break
            if str(d.get("text") or "").strip():
                docs.append({"_id": str(d["_id"]), "title": str(d.get("title") or "").strip(),
                             "text": str(d["text"]).strip()})
    except KeyError as exc:
        raise RagError(f"{corpus_jsonl}: not a readable BEIR corpus.jsonl (no {exc})") from None
    return docs


def read_queries(queries_jsonl: Path) -> list[str]:
    """The query texts of a BEIR queries.jsonl, in file order."""
    try:
        return [str(q["text"]) for q in read_jsonl(queries_jsonl)]
    except KeyError as exc:
        raise RagError(f"{queries_jsonl}: not a readable BEIR queries.jsonl (no {exc})") from None
