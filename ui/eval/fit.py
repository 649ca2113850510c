"""`rag eval fit`: fit the extractive answerer's two logistic models (rag/answer/weights.py) from data.

Training data, all asked through the product's own index, retriever and candidate features:
- SQuAD-format questions (XQuAD) of the articles that no golden file uses, each asked twice: of
  the whole index (answerable) and with its own paragraph left out of the hits, which makes an
  on-topic question the documents do not answer (dropped when its answer stands elsewhere too);
- the `"split": "tune"` lines of golden files written in people's own words, weighted
  `NATURAL_WEIGHT` times because they are few and are what users ask.
A candidate's label is whether it contains a gold answer (SQuAD normalisation). The candidate
model is fitted on every candidate; the confidence model on each question's best candidate
(label: it holds the answer; always 0 for an unanswerable question).

With the answer selector on (`RAG_SELECTOR`, the default), the feature model (`CANDIDATE`) stays as
it is, a pre-filter, and what is fitted is `SELECTED` (on the selector's log-odds, the feature
model's and the pair flag, over the candidates the selector reads) and `CONFIDENCE_SELECTED`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rag.answer import Query
from rag.answer.extractive import Candidate, ExtractiveAnswerer, confidence_inputs, logit, model_inputs, sigmoid
from rag.assistant import Assistant
from rag.chat import queries_for
from rag.errors import RagError
from rag.golden import read_golden
from rag.settings import Settings
from rag.types import Progress
from ui.eval.answers import golden_assistant, read_squad
from ui.eval.metrics import contains
from ui.eval.retrieval import Say

NATURAL_WEIGHT = 5.0
K = 5  # passages per question, as `RAG_K` defaults
DEPTH = 10  # passages retrieved, so that K are left when the gold paragraph is taken out


@dataclass
class _Asked:
    candidates: list[Candidate]
    labels: list[bool]
    answerable: bool
    weight: float
    natural: bool


def _answerer(assistant: Assistant) -> ExtractiveAnswerer:
    _, lexical = assistant.retriever.current()
    return ExtractiveAnswerer(lexical.weight, assistant.embedder, abstain_below=0.0, selector=assistant.selector)


def _ask(assistant: Assistant, answerer: ExtractiveAnswerer, question: str, history: Sequence[str],
         golds: Sequence[str], leave_out: str | None, answerable: bool, weight: float, natural: bool) -> _Asked | None:
    turns = [{"role": "user", "content": h} for h in history]
    queries = queries_for(question, turns)
    hits = [h for h in assistant.retriever.search(queries, DEPTH) if h.chunk.source != leave_out][:K]
    candidates = answerer.candidates(Query(question, queries[0]), hits)
    labels = [any(contains(" ".join(q.text for q in c.quotes), g) for g in golds) for c in candidates]
    if leave_out is not None and any(labels):
        return None  # the answer stands in another paragraph too: not unanswerable
    return _Asked(candidates, labels, answerable, weight, natural) if candidates else None


def fit(settings: Settings, squad: Path, golden: Sequence[Path], docs: Sequence[Path], say: Say = print,
        progress: Progress | None = None) -> dict[str, Any]:
    """Fit both models; return their weights and, for the tune lines, the confidence threshold table."""
    from sklearn.linear_model import LogisticRegression  # a dependency of sentence-transformers

    asked: list[_Asked] = []
    used_articles: set[int] = set()
    squad_assistant = golden_assistant(settings, "xquad", [], squad, say, progress)
    for path in golden:
        lines = read_golden(path)
        where = [str(line.get("source") or line.get("about") or "") for line in lines]
        on_squad = all(w.startswith("squad/") for w in where if w)
        used_articles |= {int(w[len("squad/a"):][:3]) for w in where if w.startswith("squad/a")}
        assistant = squad_assistant if on_squad else golden_assistant(settings, path.stem, docs, None, say, progress)
        answerer = _answerer(assistant)
        for line in lines:
            if line.get("split") != "tune":
                continue
            golds = [line["answer"]] if isinstance(line.get("answer"), str) else line.get("answer") or []
            one = _ask(assistant, answerer, line["question"], line.get("history", []), golds, None,
                       line.get("answerable", True) is not False, NATURAL_WEIGHT, True)
            asked += [one] if one else []
    answerer = _answerer(squad_assistant)
    for p in read_squad(squad):
        if p.article in used_articles:
            continue
        for question, golds in p.questions:
            for leave_out in (None, f"squad/{p.name}"):
                one = _ask(squad_assistant, answerer, question, [], golds, leave_out, leave_out is None, 1.0, False)
                asked += [one] if one else []
    if not asked:
        raise RagError("no training questions: give golden files with \"split\": \"tune\" lines and a SQuAD file")
    say(f"fitting on {len(asked)} questions ({sum(a.natural for a in asked)} written in people's own words), "
        f"{sum(len(a.candidates) for a in asked)} candidates")
    selected = asked[0].candidates[0].selector is not None
    x = [model_inputs(c) for a in asked for c in a.candidates]
    y = [label for a in asked for label in a.labels]
    w = [a.weight for a in asked for _ in a.candidates]
    first = LogisticRegression(max_iter=5000).fit(x, y, sample_weight=w)
    candidate = (tuple(round(float(c), 3) for c in first.coef_[0]), round(float(first.intercept_[0]), 3))

    rows, labels = [], []
    for a in asked:
        rescored = [replace(c, logit=logit(candidate, model_inputs(c))) for c in a.candidates]
        best = max(range(len(rescored)), key=lambda i: rescored[i].logit)
        rows.append(confidence_inputs(sorted(rescored, key=lambda c: -c.logit)))
        labels.append(a.answerable and a.labels[best])
    second = LogisticRegression(max_iter=5000).fit(rows, labels, sample_weight=[a.weight for a in asked])
    confidence = (tuple(round(float(c), 3) for c in second.coef_[0]), round(float(second.intercept_[0]), 3))
    probabilities = [float(p) for p in second.predict_proba(rows)[:, 1]]
    table = []
    gates: dict[str, Callable[[list[float]], bool]] = {
        "none": lambda r: True, "missing": lambda r: r[4] == 0, "missing+typed": lambda r: r[4] == 0 and bool(r[3])}
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        for natural in (True, False):
            for gate, passes in gates.items():
                # `high` as the answerer could decide it: confident, and through the gate (no name or number
                # of the question missing; the kind asked for)
                high = [label for p, label, a, r in zip(probabilities, labels, asked, rows, strict=True)
                        if a.natural == natural and p >= threshold and passes(r)]
                answerable = sum(1 for a in asked if a.natural == natural and a.answerable)
                right = sum(high)
                table.append({"threshold": threshold, "natural": natural, "gate": gate,
                              "high_share_of_answerable": round(right / max(answerable, 1), 3),
                              "high_precision": round(right / len(high), 3) if high else None})
    # Which inputs earn their place: the share of answerable questions whose best candidate holds the answer,
    # ranked by each score alone and by the fitted model.
    scores: dict[str, Callable[[Candidate], float]] = {
        "fitted": lambda c: logit(candidate, model_inputs(c)), "features": lambda c: c.prior}
    if selected:
        scores["selector"] = lambda c: c.selector or 0.0
    top1 = {("natural" if natural else "squad"): {
        name: round(sum(a.labels[max(range(len(a.candidates)), key=lambda i: score(a.candidates[i]))]
                        for a in asked if a.answerable and a.natural == natural)
                    / max(1, sum(1 for a in asked if a.answerable and a.natural == natural)), 3)
        for name, score in scores.items()} for natural in (True, False)}
    names = ("SELECTED", "CONFIDENCE_SELECTED") if selected else ("CANDIDATE", "CONFIDENCE")
    return {"questions": len(asked), "natural_questions": sum(a.natural for a in asked),
            "candidates": len(x), names[0]: candidate, names[1]: confidence,
            "best_candidate_probability": _quantiles([sigmoid(r[0]) for r in rows]), "top1": top1,
            "thresholds": table}


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {f"p{q}": round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 3) for q in (10, 50, 90)}
