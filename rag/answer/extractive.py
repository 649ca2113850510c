"""The offline answerer: quotes the sentences of the retrieved passages that best answer the question.

Each sentence is scored by how much of the question's weight (BM25 idf of its terms) it contains,
blended with the dense similarity of its passage to the question; two neighbouring sentences that
cover clearly more of the question together are a candidate too. The best 1-3 sentences are quoted
verbatim, each with its citation; when even the best candidate scores below the threshold the
answerer abstains.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rag.answer import ABSTAIN_TEXT, Draft, pieces
from rag.citations import render
from rag.text import body_spans, terms, words
from rag.types import Citation, Claim, Hit

LEXICAL_WEIGHT = 0.5  # share of a sentence's score from question-term coverage; the rest is dense
KEEP_RATIO = 0.8  # a further sentence is quoted only if it scores this close to the best one
DUPLICATE_JACCARD = 0.7  # sentences sharing this much of their words say the same thing
PAIR_GAIN = 0.1  # two neighbouring sentences are quoted together when they cover this much more


@dataclass(frozen=True)
class Quote:
    """One sentence of a passage: its text and its character span in the source."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Candidate:
    """A sentence (or two neighbouring ones that answer together) of a retrieved passage, scored."""

    hit: Hit
    quotes: tuple[Quote, ...]
    score: float


class ExtractiveAnswerer:
    """Picks, quotes and cites the best-supported sentences; abstains when support is too weak."""

    name = "extractive"

    def __init__(self, idf: Callable[[str], float], abstain_below: float, max_sentences: int = 3) -> None:
        self.idf = idf
        self.abstain_below = abstain_below
        self.max_sentences = max_sentences

    def candidates(self, question: str, hits: Sequence[Hit]) -> list[Candidate]:
        """Every distinct sentence of `hits`, and pairs of neighbours that cover more together, best first."""
        weights = {t: self.idf(t) for t in set(terms(question))}
        total = sum(weights.values()) or 1.0

        def coverage(present: set[str]) -> float:
            return sum(w for t, w in weights.items() if t in present) / total

        best: dict[tuple[str, int, int], Candidate] = {}
        for hit in hits:
            chunk, dense = hit.chunk, max(hit.dense_score or 0.0, 0.0)
            quotes = [Quote(chunk.text[s:e], chunk.start + s, chunk.start + e)
                      for s, e in body_spans(chunk.text, chunk.headings)]
            found = [set(terms(q.text)) for q in quotes]
            options: list[tuple[tuple[Quote, ...], float]] = [
                ((q,), coverage(f)) for q, f in zip(quotes, found, strict=True)
            ]
            for i in range(len(quotes) - 1):  # "The company partnered with SMIC. They developed ..."
                together = coverage(found[i] | found[i + 1])
                if together >= max(options[i][1], options[i + 1][1]) + PAIR_GAIN:
                    options.append(((quotes[i], quotes[i + 1]), together))
            for parts, cov in options:
                score = LEXICAL_WEIGHT * cov + (1 - LEXICAL_WEIGHT) * dense
                key = (chunk.source, parts[0].start, len(parts))  # overlapping chunks repeat sentences
                if key not in best or best[key].score < score:
                    best[key] = Candidate(hit, parts, score)
        return sorted(best.values(), key=lambda c: -c.score)

    def answer(self, question: str, hits: Sequence[Hit]) -> Draft:
        """Quote up to `max_sentences` sentences with citations, or abstain."""
        ranked = self.candidates(question, hits)
        if not ranked or ranked[0].score < self.abstain_below:
            return Draft(ABSTAIN_TEXT, (), abstained=True)
        groups: list[list[Candidate]] = []
        used = 0
        for cand in ranked:
            if cand.score < ranked[0].score * KEEP_RATIO:
                break
            if any(_overlaps(cand, g[0]) for g in groups):
                continue
            twin = next((g for g in groups if _same(g[0], cand)), None)
            if twin is not None:
                twin.append(cand)  # a near-duplicate: cite it beside the sentence it repeats
            elif used + len(cand.quotes) <= self.max_sentences:
                groups.append([cand])
                used += len(cand.quotes)
        citations: list[Citation] = []
        parts, claims = [], []
        for group in groups:
            for i, quote in enumerate(group[0].quotes):
                numbers = []
                for cand in group:
                    chunk, q = cand.hit.chunk, cand.quotes[i]
                    citations.append(Citation(
                        n=len(citations) + 1, source=chunk.source, title=chunk.title, quote=q.text,
                        start=q.start, end=q.end, chunk_id=chunk.id, score=round(cand.score, 4),
                    ))
                    numbers.append(len(citations))
                parts.append(render(quote.text, numbers))
                claims.append(Claim(quote.text, tuple(numbers), "supported"))
        return Draft(" ".join(parts), tuple(citations), abstained=False, sentences=tuple(claims))

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Draft]:
        """The answer sentence by sentence, then the draft (it is computed at once: nothing to wait for)."""
        return pieces(self.answer(question, hits))


def _overlaps(a: Candidate, b: Candidate) -> bool:
    return a.hit.chunk.source == b.hit.chunk.source and any(
        x.start < y.end and y.start < x.end for x in a.quotes for y in b.quotes
    )


def _same(a: Candidate, b: Candidate) -> bool:
    if len(a.quotes) != len(b.quotes):
        return False
    wa = set(words(" ".join(q.text for q in a.quotes)))
    wb = set(words(" ".join(q.text for q in b.quotes)))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= DUPLICATE_JACCARD
