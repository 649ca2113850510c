"""Build, check and render citations: `[n]` markers that each name exactly one quoted passage."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.types import Chunk, Citation, Verdict

MARKER = re.compile(r"\[(\d+)\]")


class Numbered:
    """The citations of one answer, numbered from 1 in the order they are added."""

    def __init__(self) -> None:
        self.items: list[Citation] = []

    def add(self, chunk: Chunk, quote: str, start: int, end: int, score: float, support: float,
            verdict: Verdict) -> int:
        """Cite `quote` (at `start`-`end` of `chunk`'s source); return its number."""
        self.items.append(Citation(
            n=len(self.items) + 1, source=chunk.source, title=chunk.title, quote=quote, start=start, end=end,
            chunk_id=chunk.id, score=round(score, 4), support=round(support, 4), verdict=verdict,
            page=chunk.page, headings=chunk.headings,
        ))
        return len(self.items)


def render(sentence: str, numbers: Sequence[int]) -> str:
    """A sentence followed by its citation markers: `Text. [1][2]` (the sentence alone when it cites nothing)."""
    return sentence + " " + "".join(f"[{n}]" for n in numbers) if numbers else sentence


def check(text: str, citations: Sequence[Citation], source_text: dict[str, str] | None = None) -> list[str]:
    """Problems with an answer's citations (empty when sound).

    Every marker must name a citation, every citation must be used, numbers must be unique, and,
    given the sources' texts, each quote must stand at its span.
    """
    problems = []
    numbers = [c.n for c in citations]
    if len(set(numbers)) != len(numbers):
        problems.append("a citation number is used for two passages")
    used = {int(n) for n in MARKER.findall(text)}
    problems += [f"[{n}] names no citation" for n in sorted(used - set(numbers))]
    problems += [f"citation {n} is never referred to" for n in sorted(set(numbers) - used)]
    for c in citations:
        if source_text is not None and source_text.get(c.source, "")[c.start:c.end] != c.quote:
            problems.append(f"citation {c.n}: the quote is not at {c.source}:{c.start}-{c.end}")
    return problems
