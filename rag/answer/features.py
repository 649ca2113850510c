"""What the extractive answerer knows about a question and a candidate sentence: the features it scores.

A candidate is a sentence of a retrieved passage, or two neighbouring sentences of one paragraph.
Its features: the cosine similarity of the question and the candidate's sentences (the shipped
embedding model), how closely the candidate's word pieces match each of the question's (the same
model's vectors for the pieces as it read them in context: a soft term match), the share of the
question's BM25 weight whose terms the candidate contains, whether the candidate holds the kind of
answer the question asks for (a number for "how many", a date for "when", a name for "who", a
cause for "why", a place for "where"), and whether the names and numbers of the question appear
around it. `weights.py` combines them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from rag.embedding import Embedded
from rag.text import words

QuestionType = Literal["number", "time", "reason", "name", "place", "yesno", "other"]
TYPED: tuple[QuestionType, ...] = ("number", "time", "reason", "name", "place")

_TYPE_PATTERNS: tuple[tuple[QuestionType, re.Pattern[str]], ...] = (
    ("number", re.compile(
        r"\bhow (?:many|much|long|far|big|large|tall|high|old|fast|often|heavy|deep|wide|soon)\b"
        r"|\bwhat (?:percentage|percent|share|proportion|number|amount|fraction|rate|size|price|cost)\b"
        r"|\bhow \w+ (?:percent|%)")),
    ("time", re.compile(r"\bwhen\b|\b(?:what|which) (?:year|date|time|century|decade|month|day)\b")),
    ("reason", re.compile(
        r"\bwhy\b|\bhow come\b|\bwhat (?:caused|causes|led to|made)\b|\b(?:reason|motive|purpose)\b")),
    ("name", re.compile(r"\bwho\b|\bwhom\b|\bwhose\b|\bname of\b|\bwhich\b")),  # "which chip", "which firms"
    ("place", re.compile(r"\bwhere\b")),
    ("yesno", re.compile(
        r"^\s*(?:is|are|was|were|does|do|did|can|could|has|have|had|will|would|should)\b|\bis it true\b")),
)

_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*(?:\s?%)?(?![A-Za-z])")  # 40, 100,000, 2.5, 50% (not H20, 910C)
_NUMBER_WORD = re.compile(
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundreds?"
    r"|thousands?|millions?|billions?|half|dozens?|doubled?|tripled?|percent|per cent|majority|minority)\b", re.I)
_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})s?\b")
_TIME_WORD = re.compile(
    r"\b(?:January|February|March|April|May|June|July|August|September|October|November|December|century"
    r"|centuries|decades?|ago|BC|AD|BCE|era|dynasty|years?|months?|weeks?|days?|hours?|minutes?|today"
    r"|yesterday|since|until|before|after)\b", re.I)
_REASON_WORD = re.compile(
    r"\b(?:because|due to|since|so that|in order to|as a result|results? (?:of|in|from)|caus\w*|led to|leads to"
    r"|reasons?|owing to|thanks to|stems? from|aims? to|to avoid|to prevent|to ensure|to allow|to reduce"
    r"|therefore|thus|hence|concerns?|fears?|wants?|goal|strategic\w*)\b", re.I)
_PLACE_WORD = re.compile(r"\b(?:in|at|near|from|on|into|across)\s+(?:the\s+)?[A-Z]")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
_TOKEN = re.compile(r"[A-Za-z0-9][\w'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")


def question_type(question: str) -> QuestionType:
    """The kind of answer a question asks for (the first rule that matches, in order)."""
    q = question.lower()
    return next((kind for kind, pattern in _TYPE_PATTERNS if pattern.search(q)), "other")


def has_answer_type(kind: QuestionType, text: str, question: str) -> bool:
    """Whether `text` holds something of the kind asked for that the question itself does not already say."""
    if kind == "number":
        asked = set(_NUMBER.findall(question))
        return any(n not in asked for n in _NUMBER.findall(text)) or bool(_NUMBER_WORD.search(text))
    if kind == "time":
        return any(y not in question for y in _YEAR.findall(text)) or bool(_TIME_WORD.search(text))
    if kind == "reason":
        return bool(_REASON_WORD.search(text))
    if kind in ("name", "place"):
        known = set(words(question))
        names = [m.group(0) for m in _CAPITALISED.finditer(text)][1:]  # not the sentence's first word
        found = any(words(n) and words(n)[0] not in known for n in names)
        return found if kind == "name" else found and bool(_PLACE_WORD.search(text))
    return True


def constraints(question: str, passages: str, stop: frozenset[str]) -> list[str]:
    """The names and numbers a question is about: an answer must be about them too.

    Words with digits ("910C", "2016"), capitalised words after the first ("AMD", "Paxos"), and, so
    that lower-case questions work, words that the retrieved `passages` only ever write capitalised.
    Possessives are dropped ("Huawei's" -> "huawei").
    """
    capitalised = {m.group(0).lower() for m in _CAPITALISED.finditer(passages)}
    lower = set(re.findall(r"\b[a-z][\w'’-]*", passages))
    found = []
    for i, token in enumerate(_TOKEN.findall(question)):
        word = re.sub(r"['’]s?$", "", token).lower()
        if not word or word in stop or len(word) < 2:
            continue
        digits = any(ch.isdigit() for ch in word)
        if digits or (i > 0 and token[0].isupper()) or (word in capitalised and word not in lower and i > 0):
            found.append(word)
    return list(dict.fromkeys(found))


def mentions(constraint: str, text_words: Set[str]) -> bool:
    """Whether a constraint word occurs among `text_words` (a demonym or plural counts: China/Chinese)."""
    if constraint in text_words:
        return True
    if any(ch.isdigit() for ch in constraint):  # H20 is not H200
        return constraint.rstrip("s") in text_words
    stem = constraint[:max(4, len(constraint) - 3)]
    return any(w.startswith(stem) for w in text_words)


@dataclass(frozen=True)
class Features:
    """The measurements of one candidate against one question (see the module docstring)."""

    cos: float  # cosine of the question and the candidate's sentence (a pair: the mean of its two)
    coverage: float  # share of the question's idf weight whose terms the candidate contains
    soft: float  # mean over the question's content word pieces of their best match in the candidate
    weakest: float  # the question's worst-matched content word piece: its best match in the candidate
    kind: QuestionType
    typed: bool  # the candidate holds an answer of the kind asked for
    pair: bool  # two neighbouring sentences
    missing: float  # share of the question's names and numbers absent from the candidate and its neighbours

    def vector(self) -> list[float]:
        """The inputs of the fitted scorer, in the order of `weights.CANDIDATE`."""
        by_kind = [float(self.typed and self.kind == k) for k in TYPED]
        kinds = [float(self.kind == k) for k in (*TYPED, "yesno")]
        return [self.cos, self.coverage, self.soft, self.weakest, *by_kind, *kinds, float(self.pair)]


def piece_matches(question: Embedded, text: Embedded) -> np.ndarray[Any, np.dtype[np.float32]]:
    """For each content word piece of the question, the cosine of its closest piece in `text`, both
    as the model read them in context ("yield" is close to "yields", "making money" to "profitable")."""
    if not len(question.pieces) or not len(text.pieces):
        return np.zeros(len(question.pieces), dtype=np.float32)
    sims = question.pieces.astype(np.float32) @ text.pieces.astype(np.float32).T
    return np.asarray(sims.max(axis=1), dtype=np.float32)


@dataclass(frozen=True)
class SoftCoverage:
    """How well a candidate covers the question's word pieces, in meaning rather than spelling."""

    mean: float
    weakest: float

    @staticmethod
    def of(matches: Sequence[np.ndarray[Any, np.dtype[np.float32]]]) -> SoftCoverage:
        """From `piece_matches` of each sentence of a candidate (a pair matches where either does)."""
        best = np.maximum.reduce(list(matches))
        if not len(best):
            return SoftCoverage(0.0, 0.0)
        return SoftCoverage(float(best.mean()), float(best.min()))


def missing_share(wanted: Sequence[str], around: Set[str]) -> float:
    """The share of `wanted` constraint words not mentioned in `around` (0 when there are none)."""
    return sum(1 for c in wanted if not mentions(c, around)) / len(wanted) if wanted else 0.0
