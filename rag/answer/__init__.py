"""Answerers behind one small protocol: `extractive` (offline default) and `llm` (generative backends)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.citations import render
from rag.types import Citation, Claim, Hit


@dataclass(frozen=True)
class Draft:
    """An answerer's output before the assistant adds the question, hits and timings."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    sentences: tuple[Claim, ...] = ()
    packed: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()


class Answerer(Protocol):
    """Turns a question and its retrieved passages into cited text, or an abstention."""

    name: str

    def stream(self, question: str, hits: Sequence[Hit]) -> Iterator[str | Draft]:
        """Yield the answer's text in final pieces (whole checked sentences), then the `Draft`."""
        ...


def pieces(draft: Draft) -> Iterator[str | Draft]:
    """A finished draft as a stream: one piece per sentence (with its markers), then the draft."""
    if draft.abstained or not draft.sentences:
        yield draft.text
    else:
        for i, claim in enumerate(draft.sentences):
            yield ("" if i == 0 else " ") + render(claim.text, claim.citations)
    yield draft


ABSTAIN_TEXT = "The indexed documents do not answer this question. The closest passages are listed below."
