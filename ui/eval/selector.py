"""`rag eval selector`: the answer selector against the embedding model's cosine, sentence by sentence.

- WikiQA test: MAP and MRR over the questions with at least one right and one wrong candidate
  (the usual "filtered" protocol), ranking each question's candidate sentences.
- SQuAD-format data (XQuAD): for each question, the sentences of its own paragraph (the product's
  sentence splitter); top-1 = the best-scored sentence holds a gold answer; AUC of the top score
  for "the top sentence is right".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import Embedder
from rag.models.selector import Selector
from rag.text import sentence_spans
from ui.eval.answers import read_squad
from ui.eval.metrics import contains

Scorer = Callable[[str, Sequence[str]], np.ndarray[Any, Any]]


def cosine_scorer(embedder: Embedder) -> Scorer:
    """The bi-encoder's score: the cosine of question and sentence."""
    def score(question: str, texts: Sequence[str]) -> np.ndarray[Any, Any]:
        vectors = embedder.embed([question, *texts])
        return np.asarray(vectors[1:] @ vectors[0])
    return score


def ranking(groups: Sequence[tuple[str, Sequence[str], Sequence[bool]]], score: Scorer) -> dict[str, float]:
    """MAP and MRR of `score` over the groups with a right and a wrong candidate."""
    aps, rrs = [], []
    for question, texts, labels in groups:
        if not any(labels) or all(labels):
            continue
        order = np.argsort(-score(question, texts), kind="stable")
        hits, precisions = 0, []
        for rank, i in enumerate(order, start=1):
            if labels[i]:
                hits += 1
                precisions.append(hits / rank)
        aps.append(float(np.mean(precisions)))
        rrs.append(1.0 / (1 + next(r for r, i in enumerate(order) if labels[i])))
    return {"questions": len(aps), "map": round(float(np.mean(aps)), 4), "mrr": round(float(np.mean(rrs)), 4)}


def squad_sentences(path: Path, score: Scorer) -> dict[str, float]:
    """Top-1 sentence choice within each question's own paragraph, and the AUC of the top score."""
    tops, rights = [], []
    for p in read_squad(path):
        sentences = [p.text[s:e] for s, e in sentence_spans(p.text)]
        for question, golds in p.questions:
            scores = score(question, sentences)
            best = int(np.argmax(scores))
            tops.append(float(scores[best]))
            rights.append(any(contains(sentences[best], g) for g in golds))
    return {"questions": len(rights), "top1": round(float(np.mean(rights)), 4),
            "auc_top_score": round(auc(tops, rights), 4)}


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The probability that a right item scores above a wrong one (ties count half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (len(pos) * len(neg)))


def evaluate(embedder: Embedder, selector: Selector, wikiqa: Path | None, squad: Path | None) -> dict[str, Any]:
    """Both scorers on the sets given."""
    from ui.train.data import wikiqa_groups

    out: dict[str, Any] = {}
    scorers: dict[str, Scorer] = {"cosine": cosine_scorer(embedder), "selector": selector.scores}
    for name, score in scorers.items():
        if wikiqa is not None:
            out.setdefault("wikiqa_test", {})[name] = ranking(wikiqa_groups(wikiqa / "test"), score)
        if squad is not None:
            out.setdefault(f"{squad.stem}_sentences", {})[name] = squad_sentences(squad, score)
    return out
