"""Answerers behind one small protocol: `extractive` (offline default); generative backends come later."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rag.types import Citation, Hit


@dataclass(frozen=True)
class Draft:
    """An answerer's output before the assistant adds the question, hits and timings."""

    text: str
    citations: tuple[Citation, ...]
    abstained: bool


class Answerer(Protocol):
    """Turns a question and its retrieved passages into cited text, or an abstention."""

    def answer(self, question: str, hits: Sequence[Hit]) -> Draft: ...


ABSTAIN_TEXT = "The indexed documents do not answer this question. The closest passages are listed below."
