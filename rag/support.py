"""Does a cited passage support an answer sentence? Sentence embedding similarity plus idf-weighted term coverage."""

from __future__ import annotations

from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.citations import MARKER
from rag.embedding import Embedder
from rag.text import body_spans, sentence_spans, terms, words
from rag.types import Chunk, Verdict

# A claim's score against a passage is the best, over the passage's sentences (and pairs of
# neighbouring sentences), of DENSE_WEIGHT * cosine(claim, sentence) + (1 - DENSE_WEIGHT) * coverage,
# coverage being the idf-weighted share of the claim's terms that the sentence contains. A pair
# counts when together its two sentences cover PAIR_GAIN more of the claim than either alone; its
# cosine is the better of its two sentences'. Weights and thresholds were chosen on SciFact (README).
DENSE_WEIGHT = 0.4
PAIR_GAIN = 0.1
SUPPORTED_AT = 0.65  # "supported" from here up
WEAK_AT = 0.39  # "weak" from here up to SUPPORTED_AT; "unsupported" below

_Vectors = np.ndarray[Any, np.dtype[np.float32]]


class Coverage:
    """The share of a question's weight (BM25 idf of its stemmed terms) that a text's terms hold."""

    def __init__(self, question: str, idf: Callable[[str], float]) -> None:
        self.weights = {t: idf(t) for t in set(terms(question))}
        self.total = sum(self.weights.values())

    def __call__(self, present: Set[str]) -> float:
        if self.total <= 0:
            return 0.0
        return sum(w for t, w in self.weights.items() if t in present) / self.total


@dataclass(frozen=True)
class Support:
    """How well one cited passage supports one answer sentence.

    Attributes:
        score: 0..1, higher is better supported.
        verdict: "supported" (score >= SUPPORTED_AT), "weak" (>= WEAK_AT) or "unsupported".
        quote: the passage sentence that best supports the claim, verbatim from `chunk.text`
            (empty when the passage has no sentence).
        start: where the quote starts in the source document (`chunk.start` + its offset in the chunk).
        end: where the quote ends in the source document.
    """

    score: float
    verdict: Verdict
    quote: str
    start: int
    end: int


def verdict(score: float) -> Verdict:
    """The verdict for a support score.

    Args:
        score: a score from `SupportChecker.check`.

    Returns:
        "supported" from `SUPPORTED_AT` up, "weak" from `WEAK_AT` up, else "unsupported".
    """
    if score >= SUPPORTED_AT:
        return "supported"
    return "weak" if score >= WEAK_AT else "unsupported"


@dataclass(frozen=True)
class _Job:
    claim: str  # without citation markers
    chunk: Chunk
    spans: list[tuple[int, int]]  # the passage's sentences, offsets into chunk.text

    @property
    def sentences(self) -> list[str]:
        return [self.chunk.text[s:e] for s, e in self.spans]


class SupportChecker:
    """Checks (answer sentence, cited passage) pairs against the passage's own sentences."""

    def __init__(self, embedder: Embedder, idf: Callable[[str], float]) -> None:
        """Make a checker.

        Args:
            embedder: the embedding model; its vectors must be unit length.
            idf: the weight of a stemmed term (e.g. `LexicalIndex.idf`), higher for rarer terms.
        """
        self.embedder = embedder
        self.idf = idf

    def check(self, claims: Sequence[tuple[str, Chunk]]) -> list[Support]:
        """One Support per (answer sentence, cited chunk); embeds everything needed in one batch.

        `[n]` citation markers in a sentence are ignored. Each distinct claim and passage sentence
        is embedded once per call. A claim without words scores 0 and is not embedded.

        Args:
            claims: pairs of an answer sentence and a chunk it cites.

        Returns:
            A Support for each pair, in the same order.
        """
        jobs = [_Job(" ".join(MARKER.sub(" ", claim).split()), chunk, _claimable(chunk)) for claim, chunk in claims]
        distinct = list(dict.fromkeys(
            text for job in jobs if job.spans and words(job.claim) for text in (job.claim, *job.sentences)
        ))
        vectors = self.embedder.embed(distinct) if distinct else np.zeros((0, 0), dtype=np.float32)
        row = {text: i for i, text in enumerate(distinct)}
        return [self._support(job, vectors, row) for job in jobs]

    def _support(self, job: _Job, vectors: _Vectors, row: dict[str, int]) -> Support:
        chunk, spans, sentences = job.chunk, job.spans, job.sentences
        if not spans:
            return Support(0.0, "unsupported", "", chunk.start, chunk.start)
        if job.claim not in row:  # no words: nothing to check
            s, e = spans[0]
            return Support(0.0, "unsupported", sentences[0], chunk.start + s, chunk.start + e)
        dense = np.clip(vectors[[row[t] for t in sentences]] @ vectors[row[job.claim]], 0.0, 1.0)
        coverage = Coverage(job.claim, self.idf)
        found = [set(terms(s)) for s in sentences]
        cover = [coverage(f) for f in found]
        single = [DENSE_WEIGHT * float(d) + (1 - DENSE_WEIGHT) * c for d, c in zip(dense, cover, strict=True)]
        best = max(range(len(single)), key=single.__getitem__)
        score = single[best]
        for i in range(len(spans) - 1):  # "The trial enrolled 300 adults. They lost 5 kg on average."
            together = coverage(found[i] | found[i + 1])
            if together < max(cover[i], cover[i + 1]) + PAIR_GAIN:
                continue
            pair = DENSE_WEIGHT * float(max(dense[i], dense[i + 1])) + (1 - DENSE_WEIGHT) * together
            if pair > score:
                score, best = pair, i if single[i] >= single[i + 1] else i + 1
        score = min(max(score, 0.0), 1.0)
        s, e = spans[best]
        return Support(score, verdict(score), sentences[best], chunk.start + s, chunk.start + e)


def _claimable(chunk: Chunk) -> list[tuple[int, int]]:
    """The chunk's sentences less its headings (a heading states nothing), unless that leaves none."""
    return body_spans(chunk.text, chunk.headings) or sentence_spans(chunk.text)
