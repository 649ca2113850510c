"""A document built block by block: paragraphs, headings (which open sections), code and tables.

The readers of marked-up text (Markdown, reStructuredText, AsciiDoc, HTML) walk their parser's tree and hand
each block here, so that every format lays out its text the same way: blocks apart by a blank line,
a heading a block of its own, a code block between fence lines (`rag.text` keeps it one unit, never
split into sentences or glued to one), a table as header-named rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ingest.readers.base import Read
from ingest.readers.tables import named_rows
from ingest.readers.text import first_line, merge_sections
from rag.text import CODE_FENCE
from rag.types import Section

_SPACES = re.compile(r"[^\S\n]+")
_LINE_BREAKS = re.compile(r" ?\n[\s]*")


class Blocks:
    """Blocks of text in reading order, and the sections their headings open."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._sections = [Section(0)]
        self._path: list[tuple[int, str]] = []
        self.first_heading = ""  # the first level-1 heading: a title when the document names none

    def add(self, text: str) -> None:
        """A paragraph (or list item, caption, quote): its spaces made single, a line break (`\\n`, from
        `<br>` or a Markdown hard break) kept as one; empty ones dropped."""
        self._append(_LINE_BREAKS.sub("\n", _SPACES.sub(" ", text)).strip())

    def heading(self, level: int, text: str) -> None:
        """A heading of `level` (1 is the top): a block of its own that opens a section."""
        text = " ".join(text.split())
        if not text:
            return
        self.first_heading = self.first_heading or (text if level == 1 else "")
        self._path = [p for p in self._path if p[0] < level] + [(level, text)]
        self._sections.append(Section(self._length + 2 * bool(self._parts), tuple(h for _, h in self._path)))
        self._append(text)

    def code(self, text: str) -> None:
        """A code block, kept as written between fence lines (its language left out)."""
        lines = [line.rstrip() for line in text.strip("\n").splitlines()]
        while lines and not lines[-1]:
            lines.pop()
        body = "\n".join(" " + line if line.startswith(CODE_FENCE) else line for line in lines)
        if body.strip():
            self._append(f"{CODE_FENCE}\n{body}\n{CODE_FENCE}")

    def table(self, rows: Sequence[Sequence[str]]) -> None:
        """A table: each row one block, its cells named by the header's."""
        for row in named_rows(rows):
            self._append(row)

    def read(self, title: str = "") -> Read:
        """The document: `title`, else its first level-1 heading, else its first line."""
        text = "\n\n".join(self._parts)
        return Read(title or self.first_heading or first_line(text), text, merge_sections(self._sections))

    def _append(self, text: str) -> None:
        if not text:
            return
        self._length += 2 * bool(self._parts) + len(text)
        self._parts.append(text)
