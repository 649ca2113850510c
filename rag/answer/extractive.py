"""The offline answerer: quotes the sentences of the retrieved passages that answer the question.

Every sentence of the retrieved passages, and every two neighbouring sentences of one paragraph,
is a candidate. A fitted logistic model (`weights.CANDIDATE`) turns each candidate's features
(`features.py`: question-to-sentence similarity from the shipped embedding model, idf-weighted
term coverage, the kind of answer asked for) into the probability that it holds the answer. The
best candidate is quoted; a second one only when it is itself a likely answer. A second fitted
model (`weights.CONFIDENCE`) says how likely the best candidate is to answer the question: `high`
from `HIGH_AT` up, unless a name or number of the question is absent from the quoted passage;
else `low`, and the answer opens with "The closest the documents come:". When nothing is
relevant (no candidate reaches `abstain_below` and none is even `ABSTAIN_SIMILARITY` close to the
question), the answerer abstains.

With the answer selector (`rag.models.selector`, a cross-encoder trained to tell a sentence that
answers from one that is only about the same thing), the feature model is a pre-filter: its best
`SELECTOR_POOL` candidates are read by the selector, and the selector's log-odds lead both choice
(`weights.SELECTED`) and confidence (`weights.CONFIDENCE_SELECTED`, `high` from `HIGH_AT_SELECTED`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from rag.answer import ABSTAIN_TEXT, LOW_NOTE, Draft, Query, pieces
from rag.answer.features import (
    TYPED,
    Features,
    SoftCoverage,
    constraints,
    has_answer_type,
    missing_share,
    piece_matches,
    question_type,
)
from rag.answer.weights import (
    ABSTAIN_SIMILARITY,
    CANDIDATE,
    CONFIDENCE,
    CONFIDENCE_SELECTED,
    HIGH_AT,
    HIGH_AT_SELECTED,
    SECOND_AT,
    SELECTED,
    SELECTOR_POOL,
)
from rag.citations import Numbered, render
from rag.embedding import Embedder
from rag.models.selector import Selector
from rag.support import Coverage
from rag.text import body_spans, stopwords, terms, words
from rag.types import Claim, Confidence, Hit, Verdict

SCORED_CHARS = 300  # a longer "sentence" (a list, a table row run-on) is embedded by its opening only
DUPLICATE_JACCARD = 0.7  # sentences sharing this much of their words say the same thing
LOW_QUOTES = 2  # a low-confidence answer quotes this many of the closest candidates


@dataclass(frozen=True)
class Quote:
    """One sentence of a passage: its text and its character span in the source."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Candidate:
    """A sentence (or two neighbouring ones of a paragraph) of a retrieved passage, scored.

    `logit` is the fitted model's log-odds that the candidate holds the answer; `probability`
    the same as a probability. With the answer selector, `prior` keeps the feature model's log-odds
    and `selector` the selector's.
    """

    hit: Hit
    quotes: tuple[Quote, ...]
    features: Features
    logit: float
    prior: float = 0.0
    selector: float | None = None

    @property
    def text(self) -> str:
        """The quoted text (two sentences joined by a space)."""
        return " ".join(q.text for q in self.quotes)

    @property
    def probability(self) -> float:
        return sigmoid(self.logit)


@dataclass(frozen=True)
class _Sentence:
    quote: Quote
    terms: frozenset[str]
    words: frozenset[str]
    seen: bool  # quoted in an earlier answer of the conversation

    @property
    def scored(self) -> str:
        """The text that is embedded: the sentence, or the opening of a very long one."""
        return self.quote.text[:SCORED_CHARS]


class ExtractiveAnswerer:
    """Picks, quotes and cites the sentences that answer; says how sure it is; abstains when nothing fits."""

    name = "extractive"

    def __init__(self, weight: Callable[[str], float], embedder: Embedder, abstain_below: float,
                 max_sentences: int = 3, selector: Selector | None = None) -> None:
        """Make an answerer.

        Args:
            weight: a stemmed term's weight in a question (`LexicalIndex.weight`: its idf, 0 when no
                chunk uses it).
            embedder: the embedding model, for the question and the passages' sentences.
            abstain_below: `RAG_ABSTAIN_BELOW`.
            max_sentences: at most this many sentences are quoted.
            selector: the trained answer selector (None: the feature model alone chooses and judges).
        """
        self.weight = weight
        self.embedder = embedder
        self.abstain_below = abstain_below
        self.max_sentences = max_sentences
        self.selector = selector

    def candidates(self, query: Query, hits: Sequence[Hit], pool: int = SELECTOR_POOL) -> list[Candidate]:
        """Every distinct sentence of `hits`, and each two neighbours of a paragraph, best first.

        A follow-up's candidates are measured against the question together with the conversation
        it follows, except (without the selector) sentences an earlier answer already quoted: those
        must answer the question asked now on their own. With the selector, only the feature model's best
        `pool` are kept, read by it against the resolved question and ranked by `weights.SELECTED`.
        """
        passages = [(hit, self._sentences(hit, query.earlier)) for hit in hits]
        texts = list(dict.fromkeys(s.scored for _, sentences in passages for s in sentences))
        if not texts:
            return []
        asked = list(dict.fromkeys((query.text, query.standalone)))
        embedded = dict(zip([*asked, *texts], self.embedder.embed_pieces([*asked, *texts]), strict=True))
        now, whole = embedded[query.text], embedded[query.standalone]
        kind = question_type(query.text)
        if kind == "other":  # "And the older model?" asks what the question it follows asked
            kind = question_type(query.standalone)
        cover_now, cover_whole = Coverage(query.text, self.weight), Coverage(query.standalone, self.weight)
        stop = stopwords()
        wanted = constraints(query.text, " ".join(h.chunk.text for h in hits), stop)
        best: dict[tuple[str, int, int], Candidate] = {}
        for hit, sentences in passages:
            if not sentences:
                continue
            chunk = hit.chunk
            head = frozenset(words(" ".join((chunk.title, *chunk.headings))))
            own = [embedded[s.scored] for s in sentences]
            matches_now = [piece_matches(now, e) for e in own]
            matches_whole = matches_now if whole is now else [piece_matches(whole, e) for e in own]
            cos_now = [float(e.vector @ now.vector) for e in own]
            cos_whole = [float(e.vector @ whole.vector) for e in own]
            for group in _groups(chunk.text, chunk.start, sentences):
                # Quoted before, so measured against the question alone (without the selector; with it, every
                # candidate is read against the resolved question, and a quote may stand again if it answers).
                seen = self.selector is None and any(sentences[i].seen for i in group)
                cos = sum(cos_now[i] if seen else max(cos_now[i], cos_whole[i]) for i in group) / len(group)
                soft = SoftCoverage.of([matches_now[i] for i in group])
                if not seen and whole is not now:
                    soft = max(soft, SoftCoverage.of([matches_whole[i] for i in group]), key=lambda c: c.mean)
                present = frozenset().union(*(sentences[i].terms for i in group))
                around = head.union(*(s.words for s in sentences[max(0, group[0] - 1):group[-1] + 2]))
                text = " ".join(sentences[i].quote.text for i in group)
                features = Features(
                    cos=cos, coverage=(cover_now if seen else cover_whole)(present), soft=soft.mean,
                    weakest=soft.weakest, kind=kind,
                    typed=has_answer_type(kind, text, query.text), pair=len(group) > 1,
                    missing=missing_share(wanted, around),
                )
                quotes = tuple(sentences[i].quote for i in group)
                key = (chunk.source, quotes[0].start, len(quotes))  # overlapping chunks repeat sentences
                odds = logit(CANDIDATE, features.vector())
                if key not in best or best[key].logit < odds:
                    best[key] = Candidate(hit, quotes, features, odds, prior=odds, selector=None)
        ranked = sorted(best.values(), key=lambda c: -c.logit)
        if self.selector is None:
            return ranked
        chosen = ranked[:pool]
        # Read against the resolved question: "And why?" alone says nothing the selector can judge; after "Who is
        # stockpiling H20s?" it asks for the reason, which may stand beside (or in) what was quoted before.
        scores = self.selector.scores(query.standalone, [c.text for c in chosen])
        judged = [replace(c, selector=float(s)) for c, s in zip(chosen, scores, strict=True)]
        return sorted((replace(c, logit=logit(SELECTED, model_inputs(c))) for c in judged), key=lambda c: -c.logit)

    def _sentences(self, hit: Hit, earlier: Sequence[str]) -> list[_Sentence]:
        chunk = hit.chunk
        out = []
        for s, e in body_spans(chunk.text, chunk.headings):
            text = chunk.text[s:e]
            out.append(_Sentence(Quote(text, chunk.start + s, chunk.start + e), frozenset(terms(text)),
                                 frozenset(words(text)), any(text in answer for answer in earlier)))
        return out

    def confidence(self, ranked: Sequence[Candidate]) -> tuple[float, Confidence]:
        """How likely the best candidate answers the question, and the level that says so."""
        inputs = confidence_inputs(ranked)
        typed, missing = inputs[3], inputs[4]
        if ranked[0].selector is not None:
            p = sigmoid(logit(CONFIDENCE_SELECTED, inputs))
            return p, "high" if p >= HIGH_AT_SELECTED and missing == 0 else "low"
        p = sigmoid(logit(CONFIDENCE, inputs))
        return p, "high" if p >= HIGH_AT and missing == 0 and typed else "low"

    def relevant(self, ranked: Sequence[Candidate]) -> bool:
        """Whether anything is relevant: some candidate is a likely answer, or at least close to the question."""
        return bool(ranked) and (ranked[0].probability >= self.abstain_below
                                 or max(c.features.cos for c in ranked) >= ABSTAIN_SIMILARITY)

    def confidence_with(self, ranked: Sequence[Candidate], lead: Candidate) -> tuple[float, Confidence]:
        """The confidence the answer would have if `lead` (one of `ranked`) were quoted first."""
        return self.confidence([lead, *(c for c in ranked if c is not lead)])

    def answer(self, query: Query | str, hits: Sequence[Hit]) -> Draft:
        """Quote the sentences that answer, with citations and a confidence, or abstain."""
        query = Query(query) if isinstance(query, str) else query
        ranked = self.candidates(query, hits)
        if not self.relevant(ranked):
            return Draft(ABSTAIN_TEXT, (), abstained=True)
        sure, level = self.confidence(ranked)
        chosen = self._choose(ranked, level)
        verdict: Verdict = "supported" if level == "high" else "weak"
        citations = Numbered()
        parts, claims = [], []
        for g, group in enumerate(chosen):
            for i, quote in enumerate(group[0].quotes):
                numbers = []
                for cand in group:
                    chunk, q = cand.hit.chunk, cand.quotes[i]
                    # How well the quote answers: the confidence for the lead quote, its own probability after.
                    support = sure if g == 0 else cand.probability
                    numbers.append(citations.add(chunk, q.text, q.start, q.end, cand.probability, support, verdict))
                parts.append(render(quote.text, numbers))
                claims.append(Claim(quote.text, tuple(numbers), verdict))
        text = " ".join(parts) if level == "high" else f"{LOW_NOTE} {' '.join(parts)}"
        return Draft(text, tuple(citations.items), abstained=False, sentences=tuple(claims), confidence=level)

    def _choose(self, ranked: Sequence[Candidate], level: Confidence) -> list[list[Candidate]]:
        """The best candidate and, if they add to it, more: near-duplicates of a quote are cited beside it."""
        groups: list[list[Candidate]] = [[ranked[0]]]
        used = len(ranked[0].quotes)
        for cand in ranked[1:]:
            if any(overlaps(cand, g[0]) for g in groups):
                continue
            twin = next((g for g in groups if _same(g[0], cand)), None)
            if twin is not None:
                twin.append(cand)  # the same sentence in another document: cite both
                continue
            # A further quote must itself be a likely answer (high; by the selector too, when there is one),
            # or one of the closest (low) of the lead's own document: a low answer's second quote from another
            # document was noise for 78 of 83 first questions of the natural sets (README, Two fitted models).
            likely = cand.probability >= SECOND_AT and (cand.selector is None or cand.selector >= 0.0)
            own = cand.hit.chunk.source == ranked[0].hit.chunk.source
            wanted = likely if level == "high" or not own else len(groups) < LOW_QUOTES
            if wanted and used + len(cand.quotes) <= self.max_sentences:
                groups.append([cand])
                used += len(cand.quotes)
        return groups

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[str | Draft]:
        """The answer sentence by sentence, then the draft (it is computed at once: nothing to wait for)."""
        return pieces(self.answer(query, hits))


CONFIDENCE_MARGIN_CAP = 5.0  # log-odds: a lead this large over every rival counts as unrivalled


def confidence_inputs(ranked: Sequence[Candidate]) -> list[float]:
    """The confidence model's inputs, from candidates ranked best first: the best one's log-odds, its
    lead over the best rival that does not overlap it, its cosine (with the selector: the selector's
    log-odds), whether it holds the kind of answer asked for, and the share of the question's names and
    numbers missing around it."""
    top = ranked[0]
    rival = next((c for c in ranked[1:] if not overlaps(c, top)), None)
    margin = top.logit - rival.logit if rival is not None else CONFIDENCE_MARGIN_CAP
    f = top.features
    typed = f.typed if f.kind in TYPED else True
    third = f.cos if top.selector is None else top.selector
    return [top.logit, min(margin, CONFIDENCE_MARGIN_CAP), third, float(typed), f.missing]


def model_inputs(c: Candidate) -> list[float]:
    """The inputs of the candidate model: `weights.SELECTED`'s once the selector has read the candidate
    (its log-odds, the feature model's, pair), else `weights.CANDIDATE`'s (`Features.vector`)."""
    if c.selector is None:
        return c.features.vector()
    return [c.selector, c.prior, float(c.features.pair)]


def sigmoid(x: float) -> float:
    """Log-odds as a probability."""
    return 1.0 / (1.0 + math.exp(-x))


def logit(model: tuple[tuple[float, ...], float], x: Sequence[float]) -> float:
    """The log-odds a fitted logistic model (coefficients, intercept) gives the inputs `x`."""
    coefficients, intercept = model
    return intercept + sum(c * v for c, v in zip(coefficients, x, strict=True))


def _groups(text: str, offset: int, sentences: Sequence[_Sentence]) -> list[tuple[int, ...]]:
    """Each sentence alone, and each two neighbours of one paragraph (no blank line between them):
    "Chinese tech giants hoard H20 chips. Tencent, Alibaba and ByteDance can't get enough of them."."""
    singles: list[tuple[int, ...]] = [(i,) for i in range(len(sentences))]
    pairs = [(i, i + 1) for i in range(len(sentences) - 1)
             if "\n\n" not in text[sentences[i].quote.end - offset:sentences[i + 1].quote.start - offset]]
    return singles + pairs


def overlaps(a: Candidate, b: Candidate) -> bool:
    """Whether two candidates quote some of the same text."""
    return a.hit.chunk.source == b.hit.chunk.source and any(
        x.start < y.end and y.start < x.end for x in a.quotes for y in b.quotes
    )


def _same(a: Candidate, b: Candidate) -> bool:
    if len(a.quotes) != len(b.quotes):
        return False
    wa = set(words(" ".join(q.text for q in a.quotes)))
    wb = set(words(" ".join(q.text for q in b.quotes)))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= DUPLICATE_JACCARD
