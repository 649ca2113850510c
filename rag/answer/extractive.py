"""The offline answerer: quotes the sentences of the retrieved passages that best answer the question.

Each sentence is scored by how much of the question's weight (BM25 idf of its terms) it contains,
blended with the dense similarity of its passage to the question. The best 1-3 sentences are
quoted verbatim, each with its citation; when even the best sentence scores below the threshold
the answerer abstains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.answer import ABSTAIN_TEXT, Draft
from rag.citations import render
from rag.text import sentence_spans, terms, words
from rag.types import Citation, Hit

LEXICAL_WEIGHT = 0.5  # share of a sentence's score from question-term coverage; the rest is dense
KEEP_RATIO = 0.8  # a further sentence is quoted only if it scores this close to the best one
DUPLICATE_JACCARD = 0.7  # sentences sharing this much of their words say the same thing


@dataclass(frozen=True)
class Candidate:
    """One sentence of a retrieved passage, with its offsets in the source and its score."""

    hit: Hit
    text: str
    start: int
    end: int
    score: float


class ExtractiveAnswerer:
    """Picks, quotes and cites the best-supported sentences; abstains when support is too weak."""

    def __init__(self, idf: Callable[[str], float], abstain_below: float, max_sentences: int = 3) -> None:
        self.idf = idf
        self.abstain_below = abstain_below
        self.max_sentences = max_sentences

    def candidates(self, question: str, hits: Sequence[Hit]) -> list[Candidate]:
        """Every distinct sentence of `hits`, best first."""
        weights = {t: self.idf(t) for t in set(terms(question))}
        total = sum(weights.values())
        best: dict[tuple[str, int], Candidate] = {}
        for hit in hits:
            chunk = hit.chunk
            for s, e in sentence_spans(chunk.text):
                text = chunk.text[s:e]
                present = set(terms(text))
                covered = sum(w for t, w in weights.items() if t in present)
                coverage = covered / total if total else 0.0
                score = LEXICAL_WEIGHT * coverage + (1 - LEXICAL_WEIGHT) * max(hit.dense_score or 0.0, 0.0)
                key = (chunk.source, chunk.start + s)  # overlapping chunks repeat sentences
                if key not in best or best[key].score < score:
                    best[key] = Candidate(hit, text, chunk.start + s, chunk.start + e, score)
        return sorted(best.values(), key=lambda c: -c.score)

    def answer(self, question: str, hits: Sequence[Hit]) -> Draft:
        """Quote up to `max_sentences` sentences with citations, or abstain."""
        ranked = self.candidates(question, hits)
        if not ranked or ranked[0].score < self.abstain_below:
            return Draft(ABSTAIN_TEXT, (), abstained=True)
        groups: list[list[Candidate]] = []
        for cand in ranked:
            if cand.score < ranked[0].score * KEEP_RATIO:
                break
            twin = next((g for g in groups if _same(g[0].text, cand.text)), None)
            if twin is not None:
                twin.append(cand)  # a near-duplicate: cite it beside the sentence it repeats
            elif len(groups) < self.max_sentences:
                groups.append([cand])
        citations: list[Citation] = []
        parts = []
        for group in groups:
            numbers = []
            for cand in group:
                chunk = cand.hit.chunk
                citations.append(Citation(
                    n=len(citations) + 1, source=chunk.source, title=chunk.title, quote=cand.text,
                    start=cand.start, end=cand.end, chunk_id=chunk.id, score=round(cand.score, 4),
                ))
                numbers.append(len(citations))
            parts.append(render(group[0].text, numbers))
        return Draft(" ".join(parts), tuple(citations), abstained=False)


def _same(a: str, b: str) -> bool:
    wa, wb = set(words(a)), set(words(b))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= DUPLICATE_JACCARD
