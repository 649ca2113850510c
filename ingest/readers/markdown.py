"""Markdown: ATX headings (outside code fences) as sections, YAML front matter blanked out and its title kept."""

from __future__ import annotations

import re

from ingest.readers.base import Read
from ingest.readers.text import decode_text, first_line, merge_sections
from rag.types import Section

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_MD_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_YAML_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)


def read_md(data: bytes) -> Read:
    """A Markdown file: its headings are sections, its first `#` heading (or front matter title) its title."""
    text, meta_title = _front_matter(decode_text(data))
    fenced = _fenced_ranges(text)
    sections = [Section(0)]
    path: list[tuple[int, str]] = []
    title = ""
    for m in _MD_HEADING.finditer(text):
        if any(a <= m.start() < b for a, b in fenced):
            continue
        level, heading = len(m.group(1)), m.group(2).strip()
        title = title or (heading if level == 1 else "")
        path = [p for p in path if p[0] < level] + [(level, heading)]
        sections.append(Section(m.start(), tuple(h for _, h in path)))
    if not title:
        title = first_line(text).lstrip("# ")
    return Read(meta_title or title, text, merge_sections(sections))


def _front_matter(text: str) -> tuple[str, str]:
    """The text with its YAML front matter (`---` ... `---` at the top) blanked out, and its `title:`.

    The front matter is replaced by spaces, line breaks kept, so that it is not indexed as prose and
    every quote keeps its offset in the file.
    """
    found = _FRONT_MATTER.match(text)
    if not found:
        return text, ""
    title = next((m.group(1) for m in _YAML_TITLE.finditer(found.group(1))), "").strip().strip("'\"").strip()
    blank = re.sub(r"[^\n]", " ", found.group(0))
    return blank + text[found.end():], title


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in _MD_FENCE.finditer(text)] + [len(text)]
    # An unclosed fence runs to the end of the text.
    return list(zip(marks[0::2], marks[1::2], strict=False))
