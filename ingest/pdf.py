"""PDF text as a person reads it: pages cleaned of extraction debris, judged readable or not, and a real title.

PDFium (pypdfium2) gives each page's text line by line, with what the page's fonts encode: ligatures (`ﬁ`),
control and private-use characters, words hyphenated at line ends, running headers and page numbers
on every page, and figure captions between the lines of a paragraph. `clean_pages` turns that into
paragraphs of plain text; `unreadable` says whether a page's text layer is garbage (a broken font
encoding gives `\\x86 \\x00 \\x01 ... n i m z m p`); `pdf_title` picks a title that is not a
generator's placeholder (`paper.dvi`, `Untitled Document`, `Microsoft Word - draft.doc`).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

_LIGATURES = re.compile("[\ufb00-\ufb4f]")  # ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ and other presentation forms
# Control and private-use characters; PDFium's U+FFFE marks a hyphenation point where it already joined the word.
_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\ufffe\uffff]")
_SPACES = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"'”’]$")
_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table|Listing|Algorithm)\s+\d+[.:]?", re.I)
_LIST_ITEM = re.compile(r"^(?:[-*•◦▪]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlc]{1,6})\s*[-–—]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
_HYPHENATED = re.compile(r"([A-Za-z]{2,})-\n([a-z]{2,})")
_INLINE_HYPHENATED = re.compile(r"(?<![\w-])[A-Za-z]{2,}-[a-z]{2,}(?![\w-])")
_PLACEHOLDER_TITLE = re.compile(
    r"^(?:untitled\b.*|\(?anonymous\)?|.*\.(?:dvi|tex|doc|docx|ps|eps|pdf|rtf|indd|qxd)"
    r"|microsoft (?:word|powerpoint)\b.*|document\d*|title|slide \d+|short communications?|presentation\d*)$", re.I)


def clean_pages(pages: Sequence[str]) -> list[str]:
    """The pages' texts as paragraphs: debris out, lines joined, running headers and page numbers gone."""
    lines = [[_tidy(line) for line in page.splitlines()] for page in pages]
    repeated = _running_lines(lines)
    out = []
    for page in lines:
        kept = [line for i, line in enumerate(page) if line and not _furniture(line, i, len(page), repeated)]
        out.append(_paragraphs(kept))
    # A word broken at a line end keeps its hyphen only where the document writes it with one elsewhere.
    hyphenated = {m.group(0).lower() for page in out for m in _INLINE_HYPHENATED.finditer(page)}

    def rejoin(m: re.Match[str]) -> str:
        whole = f"{m.group(1)}-{m.group(2)}"
        return whole if whole.lower() in hyphenated else m.group(1) + m.group(2)

    return [re.sub(r"(?<!\n)\n(?!\n)", " ", _HYPHENATED.sub(rejoin, page)) for page in out]


def _tidy(line: str) -> str:
    line = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group(0)), line)
    return _SPACES.sub(" ", _JUNK.sub("", line)).strip()


def _shape(line: str) -> str:
    """A line with its digits masked, so "Page 3 of 12" and "Page 4 of 12" are the same header."""
    return re.sub(r"\d+", "#", line.lower())


def _running_lines(pages: Sequence[Sequence[str]]) -> set[str]:
    """Shapes of lines that stand in the top or bottom three lines of at least half the pages (three or more)."""
    if len(pages) < 3:
        return set()
    seen: Counter[str] = Counter()
    for page in pages:
        edges = [line for line in (*page[:3], *page[-3:]) if line]
        seen.update({_shape(line) for line in edges})
    return {shape for shape, n in seen.items() if n >= max(3, len(pages) / 2)}


def _furniture(line: str, i: int, total: int, repeated: set[str]) -> bool:
    """A running header or footer, or a page number, at the top or bottom of a page."""
    at_edge = i < 3 or i >= total - 3
    return at_edge and (_shape(line) in repeated or bool(_PAGE_NUMBER.match(line)))


def _paragraphs(lines: Sequence[str]) -> str:
    """Lines grouped into paragraphs (a blank line between; a paragraph's lines still one per line);
    captions, list items and short heading-like lines are blocks of their own."""
    if not lines:
        return ""
    lengths = sorted(len(line) for line in lines)
    width = lengths[int(0.8 * (len(lengths) - 1))]  # a full line of the body text (not a stray wide one)
    blocks: list[list[str]] = [[lines[0]]]
    for prev, line in pairwise(lines):
        starts_block = bool(_CAPTION.match(line) or _LIST_ITEM.match(line)) or bool(_CAPTION.match(prev))
        # A short line that ends a sentence ends its paragraph; so does a very short one followed by a
        # capitalised line (a heading). A line that goes on in lower case continues the sentence.
        goes_on = line[:1].islower()
        ended = not goes_on and len(prev) < 0.7 * width and (
            bool(_SENTENCE_END.search(prev)) or len(prev) < 0.4 * width)
        if starts_block or ended:
            blocks.append([line])
        else:
            blocks[-1].append(line)
    return "\n\n".join("\n".join(block) for block in blocks)  # lines of a block: joined by clean_pages




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


def pdf_title(metadata_title: str, first_page_lines: Sequence[tuple[float, str]]) -> str:
    """The PDF's own title when page 1 shows it, else the largest text at the top of page 1.

    `first_page_lines` are (font size, text) of page 1's lines in reading order (page 1: the first
    page with text). A metadata title that page 1 does not show as a line (or two or three) is a
    placeholder or a leftover of the generator: `paper.dvi`, `Untitled Document`, or a paper titled
    "System Model" by the tool that made it.
    """
    title = " ".join(metadata_title.split())
    wanted = _letters(title)
    lines = [_letters(text) for _, text in first_page_lines]
    shown = any("".join(lines[i:i + n]) == wanted for n in (1, 2, 3) for i in range(len(lines)))
    if title and not _PLACEHOLDER_TITLE.match(title) and (shown or not lines):
        return title
    candidates = [(size, _tidy(text)) for size, text in first_page_lines[:40]]
    candidates = [(size, text) for size, text in candidates if 3 <= len(text) <= 200 and not _PAGE_NUMBER.match(text)]
    if not candidates:
        return ""
    largest = max(size for size, _ in candidates)
    # The title can wrap over several lines of the same size.
    first = next(i for i, (size, _) in enumerate(candidates) if size == largest)
    parts: list[str] = []
    for size, text in candidates[first:]:
        if size != largest or len(" ".join(parts)) > 150:
            break
        parts.append(text)
    return " ".join(parts)[:200]


def _letters(text: str) -> str:
    return "".join(ch for ch in _tidy(text).lower() if ch.isalnum())
