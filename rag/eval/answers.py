"""`rag eval answers` (SQuAD-format data) and `rag eval golden` (a user's own questions): answer quality."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.assistant import Assistant
from rag.citations import MARKER
from rag.errors import RagError
from rag.eval.metrics import contains, exact_match, f1, mean, percentile, precision_recall
from rag.eval.retrieval import (
    IndexFn,
    Say,
    build_index,
    cached_embedder,
    eval_home,
    markdown,
    read_jsonl,
    write_documents,
)
from rag.settings import Settings
from rag.types import Answer


@dataclass(frozen=True)
class Paragraph:
    article: int
    number: int
    title: str
    text: str
    questions: tuple[tuple[str, tuple[str, ...]], ...]  # (question, gold answers)

    @property
    def name(self) -> str:
        return f"a{self.article:03d}-p{self.number:02d}.md"


def read_squad(path: Path) -> list[Paragraph]:
    """The paragraphs of a SQuAD v1.1 file with their questions and gold answers."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [
            Paragraph(a, p, article.get("title", ""), para["context"],
                      tuple((qa["question"], tuple(ans["text"] for ans in qa["answers"])) for qa in para["qas"]))
            for a, article in enumerate(data["data"]) for p, para in enumerate(article["paragraphs"])
        ]
    except OSError as exc:
        raise RagError(f"{path}: cannot read ({exc.strerror}); check the path") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}: not SQuAD v1.1 JSON ({type(exc).__name__}: {exc}); "
                       "expected data[].paragraphs[].context/qas[].question/answers[].text") from None


def answer_text(answer: Answer) -> str:
    """The answer without its citation markers."""
    return " ".join(MARKER.sub(" ", answer.text).split())


def _write(paragraphs: Sequence[Paragraph], folder: Path) -> None:
    write_documents({p.name: markdown(p.title.replace("_", " "), p.text) for p in paragraphs}, folder, prune=True)


def evaluate_squad(path: Path, settings: Settings, index_fn: IndexFn, say: Say = print) -> dict[str, Any]:
    """Ask every question of `path` against its paragraphs; then ask the odd articles' questions of an
    index holding only the even articles (unanswerable by construction) to score abstention."""
    paragraphs = read_squad(path)
    embedder = cached_embedder(settings)
    full = eval_home(settings, "squad", path.stem)
    half = eval_home(settings, "squad", f"{path.stem}-even-articles")
    _write(paragraphs, full.home / "documents" / "squad")
    _write([p for p in paragraphs if p.article % 2 == 0], half.home / "documents" / "squad")
    built = build_index(full.home / "documents" / "squad", full, embedder, index_fn, say)
    build_index(half.home / "documents" / "squad", half, embedder, index_fn, say)
    answerable = Assistant(full, embedder=embedder)
    rows = []
    for p in paragraphs:
        for question, golds in p.questions:
            answer = answerable.ask(question)
            text = answer_text(answer)
            rows.append({
                "contains": any(contains(text, g) for g in golds),
                "em": max(exact_match(text, g) for g in golds), "f1": max(f1(text, g) for g in golds),
                "cited": any(c.source == f"squad/{p.name}" for c in answer.citations),
                "abstained": answer.abstained, "ms": answer.timings_ms["total"],
            })
    say(f"asked {len(rows)} answerable questions")
    unanswerable = Assistant(half, embedder=embedder)
    missing = [unanswerable.ask(q).abstained for p in paragraphs if p.article % 2 for q, _ in p.questions]
    say(f"asked {len(missing)} questions whose article is not in the half index")
    predicted = [bool(r["abstained"]) for r in rows] + missing
    actual = [False] * len(rows) + [True] * len(missing)
    precision, recall = precision_recall(predicted, actual)
    latencies = [r["ms"] for r in rows]
    return {
        "data": str(path), "paragraphs": len(paragraphs), "questions": len(rows), "index": built,
        "answer_contains_gold": round(mean([float(r["contains"]) for r in rows]), 4),
        "exact_match": round(mean([r["em"] for r in rows]), 4), "f1": round(mean([r["f1"] for r in rows]), 4),
        "gold_paragraph_cited": round(mean([float(r["cited"]) for r in rows]), 4),
        "abstention_rate": round(mean([float(r["abstained"]) for r in rows]), 4),
        "unanswerable_questions": len(missing),
        "abstention_precision": round(precision, 4), "abstention_recall": round(recall, 4),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
        "settings": {"abstain_below": settings.abstain_below, "llm": settings.llm},
    }


def read_golden(path: Path) -> list[dict[str, Any]]:
    """Golden questions: `{"question", "answer"?, "source"?, "answerable"?}` per line."""
    lines = list(read_jsonl(path))
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict) or not isinstance(line.get("question"), str) or not line["question"].strip():
            raise RagError(f"{path}:{number}: each line needs a non-empty \"question\"")
        if line.get("answerable", True) is False and (line.get("answer") or line.get("source")):
            raise RagError(f"{path}:{number}: an unanswerable question cannot have an answer or source")
    if not lines:
        raise RagError(f"{path}: no questions; write one JSON object per line")
    return lines


def evaluate_golden(path: Path, assistant: Assistant, say: Say = print) -> dict[str, Any]:
    """Ask each golden question of the live index and score retrieval, answers, citations and abstention."""
    lines = read_golden(path)
    results = []
    for line in lines:
        answer = assistant.ask(line["question"])
        expected_source, gold = line.get("source"), line.get("answer")
        sources = [h.chunk.source for h in answer.hits]
        result: dict[str, Any] = {
            "question": line["question"], "answerable": line.get("answerable", True) is not False,
            "abstained": answer.abstained, "answer": answer.text, "ms": round(answer.timings_ms["total"], 1),
        }
        if expected_source:
            result["source_retrieved"] = expected_source in sources
            if answer.citations:
                cited = [c.source == expected_source for c in answer.citations]
                result["citation_precision"] = sum(cited) / len(cited)
        if gold and not answer.abstained:
            result["contains_answer"] = contains(answer_text(answer), gold)
        elif gold:
            result["contains_answer"] = False
        results.append(result)
    say(f"asked {len(results)} questions")

    def share(key: str) -> float | None:
        values = [float(r[key]) for r in results if key in r]
        return round(mean(values), 4) if values else None

    precision, recall = precision_recall([r["abstained"] for r in results], [not r["answerable"] for r in results])
    latencies = [r["ms"] for r in results]
    return {
        "data": str(path), "questions": len(results),
        "unanswerable": sum(1 for r in results if not r["answerable"]),
        f"hit@{assistant.settings.k}": share("source_retrieved"),
        "answer_contains": share("contains_answer"), "citation_precision": share("citation_precision"),
        "abstention_precision": round(precision, 4), "abstention_recall": round(recall, 4),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
        "failures": [r for r in results if _failed(r)],
    }


def _failed(result: dict[str, Any]) -> bool:
    return (result["abstained"] != (not result["answerable"]) or result.get("source_retrieved") is False
            or result.get("contains_answer") is False or result.get("citation_precision", 1.0) < 1.0)

