"""Paged text (PDF pages, OCR'd images) as a person reads it: each page's text cleaned of extraction debris.

Page text arrives line by line with what the page's fonts encode: ligatures (`ﬁ`), control and
private-use characters, words hyphenated at line ends, running headers and page numbers on every
page, and figure captions between the lines of a paragraph. `clean_pages` turns that into
paragraphs of plain text; `unreadable` says whether a page's text layer is garbage (a broken font
encoding gives `\\x86 \\x00 \\x01 ... n i m z m p`).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

ROW = "\x1f"  # starts a line that is a table row: a block of its own, never joined to its neighbours
HEADING = "\x0e"  # starts a line set larger than the body text: a block of its own (\x1e would split lines)
SOFT_HYPHEN = "\u00ad"  # a word broken at a line end (PDFium writes U+FFFE where it joined the two lines)
_LIGATURES = re.compile("[\ufb00-\ufb4f]")  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ and other presentation forms
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\ufffe\uffff]")  # control, private use
_SPACES = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
SENTENCE_END = re.compile(r"[.!?:;)\]\"'”’]$")  # a line that ends a sentence (or a clause)
_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table|Listing|Algorithm)\s+\d+[.:]?", re.I)
_LIST_ITEM = re.compile(r"^(?:[-*•◦▪]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")
PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlc]{1,6})\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_BROKEN_WORD = re.compile(r"([A-Za-z]{2,})(?:-\n|\u00ad\n?)([a-z]{2,})")
_INLINE_HYPHENATED = re.compile(r"(?<![\w-])[A-Za-z]{2,}-[a-z]{2,}(?![\w-])")
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"^(?:[-+±<>~$€£]?\d[\d,.]*[%x]?|[-–—])$")  # a table cell: 93, 47%, 1.2, $40, —


def clean_pages(pages: Sequence[str]) -> list[str]:
    """The pages' texts as paragraphs: debris out, lines joined, running headers and page numbers gone,
    a table row (a line starting with `ROW`) a block of its own."""
    lines = [without_margin_numbers([tidy(line) for line in page.splitlines()]) for page in pages]
    repeated = running_lines(lines)
    out = []
    for page in lines:
        kept = [line for i, line in enumerate(page) if line and not furniture(line, i, len(page), repeated)]
        out.append(_paragraphs(kept))
    return [_LINE_BREAK.sub(" ", _BROKEN_AT_END.sub("", page)).replace(ROW, "").replace(HEADING, "")
            for page in _join_broken_words(out)]


_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")
# A URL or an identifier broken at a line end goes on without a space: "https://" + "www.regulations.gov",
# "FAA-2020-" + "0746".
_BROKEN_AT_END = re.compile(r"(?<=://)\n(?=\S)|(?<=\d-)\n(?=\d)")
# A footnote's number set as a superscript before its text at the start of a line: "6Flight data recorder".
_FOOTNOTE_MARK = re.compile(r"^(\d{1,2})(?=[A-Z][a-z])")


def _join_broken_words(pages: list[str]) -> list[str]:
    """Words broken at a line end made whole: `mas-` `ter` is `master`, but a compound keeps its hyphen
    where the document writes it with one elsewhere (`well-known`), or writes both halves as words
    and never the two run together (`external-consistency`)."""
    hyphenated = {m.group(0).lower() for page in pages for m in _INLINE_HYPHENATED.finditer(page)}
    words = Counter(w.lower() for page in pages for w in _WORD.findall(_BROKEN_WORD.sub(" ", page)))

    def rejoin(m: re.Match[str]) -> str:
        head, tail = m.group(1), m.group(2)
        whole = f"{head}-{tail}".lower()
        compound = whole in hyphenated or (
            not words[(head + tail).lower()] and len(head) > 2 and words[head.lower()] and words[tail.lower()])
        return f"{head}-{tail}" if compound else head + tail

    return [_BROKEN_WORD.sub(rejoin, page).replace(SOFT_HYPHEN, "") for page in pages]


# A Government Publishing Office printer's line set in a column ("VerDate Sep<11>2014 16:21 Aug 05, 2020 Jkt
# 250001 PO 00000 Frm 00001 Fmt 4700 Sfmt 4700 E:\FR\FM\06AUR1.SGM 06AUR1"), often spliced into a sentence.
_PRINTER = re.compile(r"VerDate \S+ \d\d:\d\d .{0,40}?Jkt \d+ PO \d+ Frm \d+ Fmt \d+ Sfmt \d+(?: \S+\.SGM)?(?: \S+)?")


def tidy(line: str) -> str:
    """A line with ligatures spelled out, control and private-use characters dropped, spaces single;
    a table row keeps its mark, a line-end break its soft hyphen."""
    mark = line[:1] if line[:1] in (ROW, HEADING) else ""
    line = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), line.replace("\ufffe", SOFT_HYPHEN))
    line = _PRINTER.sub(" ", _SPACES.sub(" ", _JUNK.sub("", line)))
    line = _FOOTNOTE_MARK.sub(r"\1 ", _SPACES.sub(" ", line).strip())
    return mark + line if mark and line else line


def _shape(line: str) -> str:
    """A line with its digits masked, so "Page 3 of 12" and "Page 4 of 12" are the same header."""
    return re.sub(r"\d+", "#", line.lower())


_MARGIN_NUMBER = re.compile(r"^(\s*)(\d{1,2})(?=\s|$)\s?")


def without_margin_numbers(lines: list[str]) -> list[str]:
    """A page's lines without the line numbers in its margin (a transcript's or a court filing's 1-25),
    whether each stands alone (a column read apart from the text) or starts its line. They are margin
    numbers when five or more lines carry them in sequence, each one more than the last."""
    numbers = [(i, int(m.group(2))) for i, line in enumerate(lines) if (m := _MARGIN_NUMBER.match(line))]
    steps = sum(1 for (_, a), (_, b) in itertools.pairwise(numbers) if b == a + 1)
    if steps < 4 or steps < 0.6 * len(numbers) or numbers[0][1] > 5:
        return lines
    out = list(lines)
    for i, _ in numbers:
        out[i] = _MARGIN_NUMBER.sub(r"\1", out[i], count=1).rstrip()
    return out


@dataclass(frozen=True)
class Running:
    """Shapes of running lines: at the top or bottom of pages (`edges`), or anywhere on most of them."""

    edges: frozenset[str] = frozenset()
    anywhere: frozenset[str] = frozenset()


def running_lines(pages: Sequence[Sequence[str]]) -> Running:
    """Shapes of lines that stand in the top or bottom three lines of a third of the pages or more (three
    at least): a journal sets one header on even pages and another on odd ones. And of lines found
    anywhere on half of the pages or more (four at least): a footer that the text layer puts in the
    middle of the page ("Official - Subject to Final Review"). `pages`: each page's lines, tidied."""
    if len(pages) < 3:
        return Running()
    edges: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for page in pages:
        lines = [line for line in page if line and not line.startswith(ROW)]
        edges.update({_shape(line) for line in (*lines[:3], *lines[-3:])})
        anywhere.update({_shape(line) for line in lines if len(line.split()) >= 3})
    return Running(frozenset(shape for shape, n in edges.items() if n >= max(3, len(pages) / 3)),
                   frozenset(shape for shape, n in anywhere.items() if n >= max(4, len(pages) / 2)))


def furniture(line: str, i: int, total: int, running: Running) -> bool:
    """A running header or footer (see `running_lines`), or a page number among the top or bottom three
    lines of a page (the `i`th of `total` non-blank ones)."""
    if line.startswith(ROW):
        return False
    shape = _shape(line)
    at_edge = i < 3 or i >= total - 3
    return shape in running.anywhere or (at_edge and (shape in running.edges or bool(PAGE_NUMBER.match(line))))


def _paragraphs(lines: Sequence[str]) -> str:
    """Lines grouped into paragraphs (a blank line between; a paragraph's lines still one per line);
    captions, list items, table rows (and lines of mostly numbers: rows of a table drawn without
    lines) and short heading-like lines are blocks of their own. A table
    that PDFium reads in the middle of a paragraph (it stands in the other column, or at the top of
    a page where a paragraph goes on) follows that paragraph."""
    lengths = sorted(len(line) for line in lines if not line.startswith(ROW)) or [0]
    width = lengths[int(0.8 * (len(lengths) - 1))]  # a full line of the body text (not a stray wide one)
    blocks: list[list[str]] = []
    rows: list[str] = []  # table rows met inside a paragraph, placed after it
    for line in lines:
        if line.startswith(ROW):
            # Inside a paragraph, or at the top of a page whose first paragraph goes on from the last page.
            inside = not blocks or not (blocks[-1][-1].startswith(ROW) or SENTENCE_END.search(blocks[-1][-1]))
            (rows.append(line) if inside else blocks.append([line]))
            continue
        if rows and _CAPTION.match(line):
            rows.append(line)  # the table's caption goes with it
            continue
        prev = blocks[-1][-1] if blocks else ""
        starts_block = (not blocks or bool(_CAPTION.match(line) or _LIST_ITEM.match(line))
                        or bool(_CAPTION.match(prev)) or prev.startswith(ROW) or _tabular(line) or _tabular(prev)
                        or line.startswith(HEADING) != prev.startswith(HEADING))
        # A short line that ends a sentence ends its paragraph; so does a very short one followed by a
        # capitalised line (a heading). A line that goes on in lower case continues the sentence.
        goes_on = line[:1].islower()
        ended = not goes_on and len(prev) < 0.7 * width and (
            bool(SENTENCE_END.search(prev)) or len(prev) < 0.4 * width)
        if starts_block or ended or (rows and not goes_on):
            if blocks or not goes_on:
                blocks.extend([row] for row in rows)
                rows = []
            blocks.append([line])
        else:
            blocks[-1].append(line)
    blocks.extend([row] for row in rows)
    return "\n\n".join("\n".join(block) for block in blocks)  # lines of a block: joined by clean_pages


def _tabular(line: str) -> bool:
    """A row of a table drawn without lines (not found as a table): mostly numbers, three or more."""
    tokens = line.split()
    numbers = sum(1 for token in tokens if _NUMBER.match(token))
    return numbers >= 3 and numbers >= 0.4 * len(tokens)


def unreadable(text: str) -> str | None:
    """Why a page's extracted text is garbage (a broken font encoding), or None when it reads as text."""
    visible = [ch for ch in text if not ch.isspace()]
    if len(visible) < 40:
        return None  # too little to judge: a title page, a figure
    bad = sum(1 for ch in visible if _JUNK.match(ch) or unicodedata.category(ch) in ("Cn", "Co", "Cc"))
    if bad / len(visible) > 0.05:
        return "control or unassigned characters"
    tokens = text.split()
    latin = sum(1 for ch in visible if ch.isascii() and ch.isalpha())
    single = sum(1 for t in tokens if len(t) == 1 and t.isalpha())
    if latin > 0.5 * len(visible) and len(tokens) >= 20 and single / len(tokens) > 0.5:
        return "letters without words"
    return None
