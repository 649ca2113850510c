"""`rag eval answers` (SQuAD-format data) and `rag eval golden` (a user's own questions): answer quality."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.assistant import Assistant
from rag.citations import MARKER
from rag.errors import RagError
from rag.golden import read_golden
from rag.settings import Settings
from rag.types import Answer, Progress
from ui.eval.metrics import contains, exact_match, f1, mean, percentile, precision_recall
from ui.eval.retrieval import Say, build_index, cached_embedder, eval_home, markdown, write_documents


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


def evaluate_squad(path: Path, settings: Settings, say: Say = print, progress: Progress | None = None
                   ) -> dict[str, Any]:
    """Ask every question of `path` against its paragraphs; then ask the odd articles' questions of an
    index holding only the even articles (unanswerable by construction) to score abstention."""
    paragraphs = read_squad(path)
    embedder = cached_embedder(settings)
    full = eval_home(settings, "squad", path.stem)
    half = eval_home(settings, "squad", f"{path.stem}-even-articles")
    _write(paragraphs, full.home / "documents" / "squad")
    _write([p for p in paragraphs if p.article % 2 == 0], half.home / "documents" / "squad")
    built = build_index(full.home / "documents" / "squad", full, embedder, say, progress)
    build_index(half.home / "documents" / "squad", half, embedder, say, progress)
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
                "abstained": answer.abstained, "high": answer.confidence == "high", "ms": answer.timings_ms["total"],
            })
    say(f"asked {len(rows)} answerable questions")
    unanswerable = Assistant(half, embedder=embedder)
    refused = [unanswerable.ask(q) for p in paragraphs if p.article % 2 for q, _ in p.questions]
    missing = [a.abstained for a in refused]
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
        # Confidence: how often a confident answer holds the gold answer, and how often a question
        # whose article is missing is still answered confidently.
        "high_confidence": round(mean([float(r["high"]) for r in rows]), 4),
        "high_contains_gold": round(mean([float(r["contains"]) for r in rows if r["high"]]), 4)
        if any(r["high"] for r in rows) else None,
        "unanswerable_high": round(mean([float(a.confidence == "high") for a in refused]), 4) if refused else None,
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
        "settings": {"abstain_below": settings.abstain_below, "llm": settings.llm},
    }


def golden_assistant(settings: Settings, name: str, folders: Sequence[Path], squad: Path | None,
                     say: Say = print, progress: Progress | None = None) -> Assistant:
    """An assistant over an evaluation index of its own holding `folders` and the paragraphs of a SQuAD
    file (as `squad/aNNN-pNN.md`, like `rag eval answers`), so a golden set can name documents that
    the user's index does not hold."""
    embedder = cached_embedder(settings)
    documents = [folder.resolve() for folder in folders]
    # One index per set of documents: an index built from other folders would keep their documents.
    given = "\n".join(sorted(map(str, documents)) + ([str(squad.resolve())] if squad else []))
    home = eval_home(settings, "golden", f"{name}-{hashlib.sha256(given.encode()).hexdigest()[:8]}")
    for folder in documents:
        if not folder.is_dir():
            raise RagError(f"{folder}: no such folder; give --docs a folder of documents")
    if squad is not None:
        _write(read_squad(squad), home.home / "documents" / "squad")
        documents.append(home.home / "documents" / "squad")
    build_index(documents, home, embedder, say, progress)
    return Assistant(home, embedder=embedder)


def evaluate_golden(path: Path, assistant: Assistant, say: Say = print, split: str | None = None) -> dict[str, Any]:
    """Ask each golden question of the assistant's index and score retrieval, answers, citations,
    confidence and abstention."""
    lines = [line for line in read_golden(path) if split is None or line.get("split") == split]
    if not lines:
        raise RagError(f"{path}: no questions with \"split\": {split!r}")
    results = []
    for line in lines:
        history: list[dict[str, str]] = []
        for earlier in line.get("history", []):
            history += [{"role": "user", "content": earlier},
                        {"role": "assistant", "content": assistant.ask(earlier, history).text}]
        answer = assistant.ask(line["question"], history)
        expected_source = line.get("source")
        golds = [line["answer"]] if isinstance(line.get("answer"), str) else line.get("answer") or []
        sources = [h.chunk.source for h in answer.hits]
        result: dict[str, Any] = {
            "question": line["question"], "answerable": line.get("answerable", True) is not False,
            "abstained": answer.abstained, "confidence": answer.confidence, "answer": answer.text,
            "ms": round(answer.timings_ms["total"], 1),
        }
        if assistant.settings.llm != "extractive":  # what the citation check made of the model's reply
            result.update(fallback=answer.fallback, cut=answer.cut, answer_ms=round(answer.timings_ms["answer"], 1),
                          verdicts=[c.verdict for c in answer.sentences] if answer.fallback is None else [],
                          attributed=sum(c.attributed for c in answer.sentences) if answer.fallback is None else 0,
                          judged=sum(c.judged for c in answer.sentences) if answer.fallback is None else 0)
        if expected_source:
            result["source_retrieved"] = expected_source in sources
            if answer.citations:
                cited = [c.source == expected_source for c in answer.citations]
                result["citation_precision"] = sum(cited) / len(cited)
        if golds:
            text = answer_text(answer) if not answer.abstained else ""
            result["contains_answer"] = any(contains(text, g) for g in golds)
            result["fact_cited"] = not answer.abstained and any(
                contains(c.quote, g) for c in answer.citations for g in golds)
            result["fact_supported"] = not answer.abstained and any(
                contains(c.quote, g) for c in answer.citations if c.verdict == "supported" for g in golds)
            if assistant.settings.llm != "extractive":  # declined although the first passage given holds the answer
                first = next((h.chunk.text for h in answer.hits if answer.packed and h.chunk.id == answer.packed[0]),
                             "")
                result["declined_first_holds"] = answer.abstained and any(contains(first, g) for g in golds)
        results.append(result)
    say(f"asked {len(results)} questions")
    generated = {"generated": _generated_figures(results)} if assistant.settings.llm != "extractive" else {}
    return {"data": str(path), **({"split": split} if split else {}), **_golden_figures(results, assistant.settings.k),
            **generated, "failures": [r for r in results if _failed(r)]}


BACKEND_SPEC = re.compile(r"^(openai|ollama):(.+?)(?:@(https?://\S+))?$")


def backend_settings(settings: Settings, spec: str) -> Settings:
    """The settings that answer with `spec`: `extractive`, or `openai:MODEL[@URL]` / `ollama:MODEL[@URL]` (a
    model on an OpenAI-compatible or Ollama server; URL default: RAG_LLM_BASE_URL, else the kind's own)."""
    if spec == "extractive":
        return settings.model_copy(update={"llm": "extractive"})
    found = BACKEND_SPEC.match(spec)
    if found is None:
        raise RagError(f"--backend {spec!r}: give `extractive`, or openai:MODEL[@URL] or ollama:MODEL[@URL], "
                       "e.g. openai:qwen2.5-coder-1.5b@http://127.0.0.1:8080/v1")
    kind, model, url = found.groups()
    return settings.model_copy(update={"llm": kind, "llm_model": model, "llm_base_url": url or settings.llm_base_url})


def compare_golden(path: Path, assistant: Assistant, specs: Sequence[str], say: Say = print,
                   split: str | None = None) -> dict[str, Any]:
    """`evaluate_golden` once per backend (`backend_settings`), on the same index, retrieval and questions."""
    chosen = {spec: backend_settings(assistant.settings, spec) for spec in dict.fromkeys(specs)}  # all checked first
    results = {}
    for spec, settings in chosen.items():
        say(f"backend {spec}")
        asker = Assistant(settings, store=assistant.store, embedder=assistant.embedder, selector=assistant.selector)
        results[spec] = evaluate_golden(path, asker, say=say, split=split)
    return {"data": str(path), **({"split": split} if split else {}), "backends": results}


def _generated_figures(results: list[dict[str, Any]]) -> dict[str, Any]:
    """A generative backend's replies: the check's verdicts over all its sentences (answers it replaced by the
    extractive fallback count none), how often the fallback took over and why, the cuts, answer latency."""
    verdicts = [v for r in results for v in r["verdicts"]]
    answer_ms = [r["answer_ms"] for r in results]

    def share(kind: str) -> float | None:
        return round(verdicts.count(kind) / len(verdicts), 4) if verdicts else None

    # The reason without the server (the first part) or the count of sentences checked.
    reasons = Counter(re.sub(r" \(\d+ checked\)", "", r["fallback"].split(": ", 1)[-1])
                      for r in results if r["fallback"])
    cuts = Counter(r["cut"] for r in results if r["cut"])
    return {"declined_first_holds": sum(bool(r.get("declined_first_holds")) for r in results),
            "sentences": len(verdicts), "supported": share("supported"), "weak": share("weak"),
            "unsupported": share("unsupported"),
            "attributed": round(sum(r["attributed"] for r in results) / len(verdicts), 4) if verdicts else None,
            "judged": round(sum(r["judged"] for r in results) / len(verdicts), 4) if verdicts else None,
            "fallback": round(mean([float(r["fallback"] is not None) for r in results]), 4),
            "fallback_reasons": dict(reasons), "cut": dict(cuts),
            "answer_ms": {"p50": round(percentile(answer_ms, 50), 1), "p95": round(percentile(answer_ms, 95), 1)}}


def _golden_figures(results: list[dict[str, Any]], k: int) -> dict[str, Any]:
    def share(key: str) -> float | None:
        values = [float(r[key]) for r in results if key in r]
        return round(mean(values), 4) if values else None

    answerable = [r for r in results if r["answerable"]]
    unanswerable = [r for r in results if not r["answerable"]]
    high = [r for r in results if r["confidence"] == "high"]
    precision, recall = precision_recall([r["abstained"] for r in results], [not r["answerable"] for r in results])
    latencies = [r["ms"] for r in results]
    return {
        "questions": len(results), "unanswerable": len(unanswerable),
        f"hit@{k}": share("source_retrieved"),
        "answer_contains": share("contains_answer"), "citation_precision": share("citation_precision"),
        # The figures a user feels: is the fact in a quote, is a confident answer right, and is an
        # unanswerable question refused or marked unsure?
        "fact_cited": share("fact_cited"),
        "fact_supported": share("fact_supported"),  # in a quote the check (or the confidence) calls supported
        "answerable_declined": round(mean([float(r["abstained"]) for r in answerable]), 4) if answerable else None,
        "high_confidence": round(mean([float(r["confidence"] == "high") for r in answerable]), 4)
        if answerable else None,
        "high_holds_fact": round(mean([float(r.get("fact_cited", False)) for r in high]), 4) if high else None,
        "unanswerable_abstained_or_low": round(mean([float(r["confidence"] != "high") for r in unanswerable]), 4)
        if unanswerable else None,
        "abstention_precision": round(precision, 4), "abstention_recall": round(recall, 4),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p95": round(percentile(latencies, 95), 1)},
    }


def _failed(result: dict[str, Any]) -> bool:
    if not result["answerable"]:  # refusing, or quoting the closest evidence marked as unsure, is right
        return bool(result["confidence"] == "high")
    return (result["abstained"] or result.get("source_retrieved") is False or result.get("fact_cited") is False
            or result.get("citation_precision", 1.0) < 1.0)
