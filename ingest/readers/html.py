"""HTML: the page's main content as blocks (headings as sections, code blocks as code, tables as rows named
by their header), without scripts, styles, menus or reference markers such as "[98]".

The main content is found by trafilatura (chosen over readability-lxml and jusText on mozilla/readability's
test pages; see the README): site menus, sidebars, footers and "Jump to content" are left out. A page it
finds no main content in (a short page, a bare fragment) is read whole.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from ingest.readers.base import Read
from ingest.readers.blocks import Blocks
from rag.errors import SourceError

if TYPE_CHECKING:
    from bs4 import Tag

_SKIPPED = ("script", "style", "noscript", "template", "head", "svg", "title", "button", "form", "input",
            "select", "textarea", "iframe", "object", "canvas", "math")
_BLOCKS = frozenset((
    "p", "div", "li", "ul", "ol", "dl", "blockquote", "section", "article", "main", "header", "footer",
    "nav", "aside", "tr", "td", "th", "dt", "dd", "figure", "figcaption", "caption", "address", "details",
    "summary", "center", "body", "html", "hr",
))
_WHITE = re.compile(r"\s+")
_HEADING = re.compile(r"^h([1-6])$")
# A reference or editorial marker set as a superscript: [98], [a], [note 3], [citation needed].
_MARKER = re.compile(r"^\s*\[[^\[\]]{1,30}\]\s*$")
# The same markers left in running text (where no <sup> marked them), and wiki "[edit]" links; a number
# only after punctuation ("fact.[12]"), so that code in a sentence keeps its index (`argv[1]`, `a[i]`).
_INLINE_MARKER = re.compile(
    r"(?:(?<=[.,;:!?)\"”’])\[\d{1,4}\]|(?<=\S)\[(?:note \d+|nb \d+|edit|edit source|citation needed|"
    r"clarification needed|[a-z ]{0,20} needed|when\?|who\?|which\?|by whom\?|according to whom\?|"
    r"dubious[^\]]{0,20}|failed verification)\])(?!\()", re.I)
_WORD = re.compile(r"\w+")


def read_html(data: bytes, whole: bool = False) -> Read:
    """An HTML page: its `<title>` (or first `<h1>`), the text of its main content (all of it when `whole`:
    an e-book's chapter has no menus) without scripts, styles and reference markers."""
    from bs4 import BeautifulSoup

    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("binary file, not HTML; remove it or convert it")
    soup = BeautifulSoup(data, "html.parser")
    title = " ".join(soup.title.get_text().split()) if soup.title else ""
    for tag in soup(_SKIPPED):
        tag.decompose()
    for sup in soup.find_all("sup"):
        if _MARKER.match(sup.get_text()):
            sup.decompose()
    blocks = Blocks()
    _Walker(blocks, None if whole else _main_content(str(soup))).walk(soup)
    return blocks.read(title)


class _Main:
    """The words of a page's main content as trafilatura finds it, to test a block of the page against."""

    def __init__(self, words: list[str]) -> None:
        self.text = f" {' '.join(words)} "
        self.pairs = set(itertools.pairwise(words))

    def holds(self, words: list[str]) -> bool:
        """Whether a block with these words is part of the main content: a short one (a heading, a menu
        entry) as it stands, a longer one by most of its word pairs (the extractor spaces and splits some
        text differently: inline elements, scripts without spaces between words)."""
        if len(words) <= 3:
            return f" {' '.join(words)} " in self.text
        pairs = list(itertools.pairwise(words))
        return sum(pair in self.pairs for pair in pairs) >= 0.5 * len(pairs)


def _main_content(page: str) -> _Main | None:
    """The main content's words, or None when trafilatura finds none (then the whole page is read)."""
    import trafilatura

    found = trafilatura.extract(page, output_format="txt", include_tables=True, include_comments=False,
                                include_links=False, include_images=False, favor_recall=True, deduplicate=False)
    words = _words(found or "")
    return _Main(words) if words else None


def _words(text: str) -> list[str]:
    return _WORD.findall(_INLINE_MARKER.sub("", text).lower())


class _Walker:
    """Hands an HTML tree's blocks to `Blocks` in reading order; inline elements join their block's text.

    A block is kept when its words stand in the main content (`main`; None keeps all): our own walk keeps
    the page's structure (headings, code, tables), the extractor's judgement leaves the menus out. A
    heading is kept when a kept block follows it in its section (extractors drop a title heading, and
    keep the heading over a menu they drop).
    """

    def __init__(self, blocks: Blocks, main: _Main | None) -> None:
        self.blocks = blocks
        self.main = main
        self.line: list[str] = []
        self.headings: list[tuple[int, str]] = []  # headings waiting for their section's first kept block

    def walk(self, root: Tag) -> None:
        """Walk the tree under `root` without recursion: a page nested thousands of elements deep is read too."""
        from bs4 import CData, NavigableString, Tag  # type: ignore[attr-defined]

        stack: list[tuple[object, bool]] = [(root, False)]  # (node, leaving a block element)
        while stack:
            node, leaving = stack.pop()
            if leaving:
                self._flush()
            elif type(node) in (NavigableString, CData):  # not a comment, doctype or declaration
                self.line.append(_WHITE.sub(" ", str(node)))  # source line breaks are spaces; <br> is not
            elif isinstance(node, Tag) and not self._element(node):
                if node.name in _BLOCKS:
                    self._flush()
                    stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.contents))
        self._flush()

    def _element(self, tag: Tag) -> bool:
        """Handle an element read as a whole (a line break, heading, code block or table); False for the
        others, whose children are walked."""
        name = tag.name
        heading = _HEADING.match(name)
        if name == "br":
            self.line.append("\n")
        elif heading:
            self._flush()
            level = int(heading.group(1))
            self.headings = [h for h in self.headings if h[0] < level] + [
                (level, _INLINE_MARKER.sub("", tag.get_text(" ")))]
        elif name in ("pre", "table"):
            self._flush()
            if not self._kept(tag.get_text(" ")):
                return True
            if name == "pre":
                self.blocks.code(tag.get_text())
            else:
                self.blocks.table([[_INLINE_MARKER.sub("", cell.get_text(" "))
                                    for cell in row.find_all(["th", "td"], recursive=False)]
                                   for row in tag.find_all("tr") if row.find_parent("table") is tag])
        else:
            return False
        return True

    def _kept(self, text: str) -> bool:
        """Whether a block is kept; if so, the headings over it are placed first."""
        words = _words(text)
        kept = bool(words) and (self.main is None or self.main.holds(words))
        if kept:
            for level, heading in self.headings:
                self.blocks.heading(level, heading)
            self.headings.clear()
        return kept

    def _flush(self) -> None:
        text = _INLINE_MARKER.sub("", "".join(self.line))
        self.line.clear()
        if self._kept(text):
            self.blocks.add(text)
