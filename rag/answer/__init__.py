"""Answerers behind one small protocol: `extractive` (offline default) and `llm` (generative backends)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.citations import render
from rag.types import Citation, Claim, Confidence, Hit


@dataclass(frozen=True)
class Query:
    """A question as the answerer sees it.

    `text` is the question as asked now; `standalone` the same with the conversation it follows
    (equal to `text` for a question that stands on its own); `earlier` the earlier answers'
    texts, whose quotes a follow-up should not repeat unless they answer it too.
    """

    text: str
    standalone: str = ""
    earlier: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.standalone:
            object.__setattr__(self, "standalone", self.text)


@dataclass(frozen=True)
class Draft:
    """An answerer's output before the assistant adds the question, hits and timings."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    sentences: tuple[Claim, ...] = ()
    confidence: Confidence | None = None  # None when abstaining
    packed: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    cut: str | None = None  # why a generated reply was cut short


class Answerer(Protocol):
    """Turns a question and its retrieved passages into cited text, or an abstention."""

    name: str

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[str | Draft]:
        """Yield the answer's text in final pieces (whole checked sentences), then the `Draft`."""
        ...


def pieces(draft: Draft) -> Iterator[str | Draft]:
    """A finished draft as a stream: its note (if any), one piece per sentence (with its markers), then the draft."""
    if draft.abstained or not draft.sentences:
        yield draft.text
    else:
        note = draft.text.removesuffix(claims_text(draft.sentences))
        if note:
            yield note.rstrip()
        for i, claim in enumerate(draft.sentences):
            yield ("" if i == 0 and not note else " ") + render(claim.text, claim.citations)
    yield draft


def claims_text(claims: Sequence[Claim]) -> str:
    """The sentences of an answer with their markers, as one text."""
    return " ".join(render(c.text, c.citations) for c in claims)


def confidence_of(claims: Sequence[Claim]) -> Confidence:
    """`high` when every sentence is supported by a passage it cites, else `low`."""
    return "high" if claims and all(c.verdict == "supported" for c in claims) else "low"


ABSTAIN_TEXT = "The indexed documents do not answer this question. The closest passages are listed below."
LOW_NOTE = "The closest the documents come:"  # opens an extractive answer that may not answer the question
