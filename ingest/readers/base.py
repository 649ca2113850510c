"""What a reader makes of a file."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.types import Section


@dataclass(frozen=True)
class Read:
    """A file as a reader made it: its title ("" when it has none of its own), its plain text, and its
    sections (heading path and page, each from a character offset of the text)."""

    title: str
    text: str
    sections: list[Section] = field(default_factory=lambda: [Section(0)])
