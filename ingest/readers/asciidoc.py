"""AsciiDoc (`.adoc`, `.asciidoc`): sections, paragraphs, lists, listing blocks and tables as plain blocks.

Written here rather than taken from a library: the one Python implementation (asciidoc-py) runs
filters as shell commands built from the document's own attributes and evaluates `eval::` macros
unless in safe mode, which no reader of other people's files should do; Asciidoctor is Ruby/JS.
This reads the structure documentation uses (titles, attribute entries and references, delimited
blocks, lists, admonitions, `|===` tables, inline markup and macros); anything else is read as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.readers.base import Read
from ingest.readers.blocks import Blocks
from ingest.readers.text import decode_text

_TITLE = re.compile(r"^(={1,6}|#{1,6})\s+(\S.*?)\s*(?:\1)?$")
_ATTRIBUTE_ENTRY = re.compile(r"^:(!?[\w-]+!?):\s*(.*)$")
_BLOCK_ATTRIBUTES = re.compile(r"^\[[^\]]*\]$")
_ANCHOR = re.compile(r"^\[\[[^\]]*\]\]$")  # [[id]] above a block or a section
_BLOCK_TITLE = re.compile(r"^\.([^.\s].*)$")
_DELIMITER = re.compile(r"^(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|\+{4,}|/{4,}|--)$")
_LIST_ITEM = re.compile(r"^\s*(?:[*\-]+|\.+|\d+\.|<\d+>)\s+(.*)$")
_LABELED = re.compile(r"^(.+?)(?::{2,4}|;;)(?:\s+(.*))?$")
_DIRECTIVE = re.compile(r"^(?:include|ifdef|ifndef|ifeval|endif|toc|image)::.*$")

# Inline: macros first (their text kept), then quotes (their markers dropped), then attribute references.
# Every span is bounded (at most 300 characters, never past a line end), so that a line of unclosed
# macros (`link:x[link:x[...`) costs linear time, not quadratic.
_INLINE: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"<<([^,<>\n]{1,300}),\s*([^<>\n]{1,300})>>"), r"\2"),
    (re.compile(r"<<([^<>\n]{1,300})>>"), lambda m: m.group(1).lstrip("_").replace("_", " ")),
    (re.compile(r"\b(?:xref|link|mailto):([^\s\[]{0,300})\[([^\]\n]{0,300})\]"), lambda m: m.group(2) or m.group(1)),
    (re.compile(r"\b((?:https?|ftp|irc)://[^\s\[]{1,300})\[([^\]\n]{0,300})\]"),
     lambda m: m.group(2).split(",")[0] or m.group(1)),
    (re.compile(r"\bimage:[^\s\[]{0,300}\[([^\[\],\n]{0,300})[^\]\n]{0,300}\]"), r"\1"),
    (re.compile(r"\b(?:kbd|btn|pass|footnote|indexterm2?):\[([^\]\n]{0,300})\]"), r"\1"),
    (re.compile(r"\bfootnote:[\w-]{1,100}\[([^\]\n]{0,300})\]"), r"\1"),
    (re.compile(r"\bmenu:([^\[\n]{1,100})\[([^\]\n]{0,300})\]"),
     lambda m: " > ".join(p for p in (m.group(1), m.group(2)) if p)),
    (re.compile(r"\(\(\(([^()\n]{0,300})\)\)\)"), ""),  # a concealed index term
    (re.compile(r"\(\(([^()\n]{0,300})\)\)"), r"\1"),  # a visible one
    (re.compile(r"\[\[[^\]\n]{0,300}\]\]|\[#[^\]\n]{0,300}\]|\[\.[^\]\n]{0,300}\](?=[#*_`])"), ""),
    (re.compile(r"(\*\*|__|``|##|\+\+)([^\n]{1,300}?)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?!\s)([^*\n]{1,300}?)(?<!\s)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?!\s)([^_\n]{1,300}?)(?<!\s)_(?![\w_])"), r"\1"),
    (re.compile(r"(?<![\w`])`\+?(?!\s)([^`\n]{1,300}?)\+?`(?![\w`])"), r"\1"),
    (re.compile(r"(?<![\w#])#(?!\s)([^#\n]{1,300}?)(?<!\s)#(?![\w#])"), r"\1"),
    (re.compile(r"(?<![\w+])\+(?!\s)([^+\n]{1,300}?)(?<!\s)\+(?![\w+])"), r"\1"),
    (re.compile(r"\^([^^\s]{1,300})\^|~([^~\s]{1,300})~"), lambda m: m.group(1) or m.group(2)),
]
_REFERENCE = re.compile(r"\{([\w-]+)\}")


def read_adoc(data: bytes) -> Read:
    """An AsciiDoc file: its `= Title` is its title, its `==` sections are sections."""
    reader = _Reader(decode_text(data).split("\n"))
    reader.read()
    return reader.blocks.read(reader.title or reader.first_heading)


class _Reader:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.blocks = Blocks()
        self.attributes: dict[str, str] = {}
        self.title = ""
        self.first_heading = ""  # the title of a document without a `= Title` (a chapter of a book)
        self.style = ""
        self.i = 0

    def read(self) -> None:
        paragraph: list[str] = []
        while self.i < len(self.lines):
            line = self.lines[self.i].rstrip()
            self.i += 1
            stripped = line.strip()
            if not stripped or (_DELIMITER.match(stripped) and self._delimited(stripped, paragraph)):
                self._paragraph(paragraph)
                continue
            if stripped.startswith("//") and not stripped.startswith("////"):
                continue  # a comment line
            if (entry := _ATTRIBUTE_ENTRY.match(stripped)) and not paragraph:
                self.attributes[entry.group(1)] = entry.group(2)
                continue
            if _ANCHOR.match(stripped) and not paragraph:
                continue
            if _BLOCK_ATTRIBUTES.match(stripped) and not paragraph:
                self.style = stripped[1:-1].split(",")[0].strip().lower()
                continue
            if _DIRECTIVE.match(stripped):
                continue
            if (title := _TITLE.match(line)) and not paragraph:
                self._heading(len(title.group(1)), title.group(2))
                continue
            if (block_title := _BLOCK_TITLE.match(stripped)) and not paragraph:
                self.blocks.add(self.inline(block_title.group(1)))
                continue
            if stripped == "|===":
                self._paragraph(paragraph)
                self._table()
                continue
            if (item := self._item(line, stripped, paragraph)) is not None:
                self._paragraph(paragraph)
                paragraph.append(item)
                continue
            if line[:1].isspace() and not paragraph and self.style != "verse":
                self._literal(line)  # an indented paragraph is literal text
                continue
            paragraph.append("" if stripped == "+" else stripped)
        self._paragraph(paragraph)

    @staticmethod
    def _item(line: str, stripped: str, paragraph: list[str]) -> str | None:
        """A list item's text (`* item`, `. item`, `term:: definition` as `term: definition`), or None."""
        if item := _LIST_ITEM.match(line):
            return item.group(1)
        labeled = _LABELED.match(stripped)
        if labeled is None or paragraph or stripped.startswith(("http", "link:")):
            return None
        return labeled.group(1) + (f": {labeled.group(2)}" if labeled.group(2) else "")

    def inline(self, text: str) -> str:
        for pattern, replacement in _INLINE:
            text = pattern.sub(replacement, text)
        return _REFERENCE.sub(lambda m: self.attributes.get(m.group(1), m.group(0)), text)

    def _heading(self, level: int, text: str) -> None:
        text = self.inline(text)
        self.first_heading = self.first_heading or text
        if level == 1 and not self.title:
            self.title = text
            while self.i < len(self.lines) and self.lines[self.i].strip() and not self.lines[self.i].startswith(":"):
                self.i += 1  # the author and revision lines under the document title
        self.blocks.heading(level, text)
        self.style = ""

    def _paragraph(self, lines: list[str]) -> None:
        if lines:
            text = " ".join(lines)
            admonition = self.style.upper() if self.style.upper() in ("NOTE", "TIP", "IMPORTANT", "WARNING",
                                                                      "CAUTION") else ""
            self.blocks.add(f"{admonition.capitalize()}: {self.inline(text)}" if admonition else self.inline(text))
            lines.clear()
        self.style = ""

    def _delimited(self, delimiter: str, paragraph: list[str]) -> bool:
        """Read the delimited block that opens here; True when it was one (else it is text)."""
        self._paragraph(paragraph)
        end = next((j for j in range(self.i, len(self.lines)) if self.lines[j].rstrip() == delimiter), None)
        if end is None:
            return False
        body = self.lines[self.i:end]
        self.i = end + 1
        kind, style = delimiter[0], self.style
        self.style = ""
        if kind == "/":
            return True  # a comment block
        if kind in "-." and delimiter != "--" and style not in ("verse", "quote"):
            self.blocks.code("\n".join(body))
        elif kind == "+":
            from ingest.readers.markdown import html_text

            self.blocks.add(html_text("\n".join(body)))
        else:  # example, sidebar, quote, open blocks: their content is read as usual
            inner = _Reader(body)
            inner.attributes = self.attributes
            inner.blocks = self.blocks
            inner.title = self.title or "-"  # a nested reader never takes the document title
            inner.read()
        return True

    def _literal(self, first: str) -> None:
        lines = [first]
        while self.i < len(self.lines) and self.lines[self.i].strip():
            lines.append(self.lines[self.i])
            self.i += 1
        indent = min(len(line) - len(line.lstrip()) for line in lines)
        self.blocks.code("\n".join(line[indent:] for line in lines))

    def _table(self) -> None:
        cells: list[str] = []
        width = 0
        while self.i < len(self.lines) and self.lines[self.i].strip() != "|===":
            line = self.lines[self.i].strip()
            self.i += 1
            if not line:
                continue
            parts = re.split(r"(?<!\\)\|", line)  # before the first bar: the cell's specifier (`2+`, `a`)
            row = [self.inline(p.strip()) for p in parts[1:]]
            if len(parts) > 1:
                width = width or len(row)
                cells.extend(row)
            elif cells:
                cells[-1] = f"{cells[-1]} {self.inline(line)}"
        self.i += 1
        self.style = ""
        width = width or 1
        self.blocks.table([cells[k:k + width] for k in range(0, len(cells), width)])
