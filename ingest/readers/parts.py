"""Documents made of parts (pages, slides, sheets, image frames, chapters): their texts joined, each part
with its sections."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from rag.types import Section


def join_parts(parts: Iterable[tuple[str, Section]]) -> tuple[str, list[Section]]:
    """The non-empty texts joined by a blank line, and each one's section moved to where its text starts.

    `parts` pairs each text with its section (heading path, page); the section's own `start` is ignored.
    """
    return join_sectioned((text, [replace(section, start=0)]) for text, section in parts)


def join_sectioned(parts: Iterable[tuple[str, Sequence[Section]]]) -> tuple[str, list[Section]]:
    """The non-empty texts joined by a blank line, each one's sections (starts within that text) moved
    along with it."""
    texts: list[str] = []
    sections: list[Section] = []
    pos = 0
    for text, own in parts:
        if not text:
            continue
        pos += 2 * bool(texts)
        sections += [replace(section, start=pos + section.start) for section in own]
        texts.append(text)
        pos += len(text)
    return "\n\n".join(texts), sections
