"""How cleanly documents are read: extraction debris per 1,000 characters of the text we index.

`rag eval reading DIR` reads every document under DIR with the product's readers (nothing is
indexed) and counts, per 1,000 characters, what a person would not see on the page: ligature
characters, control and private-use characters, line-end hyphens and line breaks left inside
sentences, words run together (18 letters or more), words split in two (`ex ploring`: the two
halves are not words of the document, the joined word is), captions spliced into a sentence, and
running headers or footers left in (a PDF's or a paged text's lines that stand at the top or bottom
of many pages). And what is not the document's content: navigation and menu text, reference markers
(`[98]`, `[edit]`), page furniture (`[Page 5]`, form feeds, printers' lines such as "VerDate ... Jkt"),
markup (Markdown, HTML, reStructuredText, AsciiDoc) outside code blocks, margin line numbers, and
headings run into the sentence after them. Each document's title is checked for shape (not a bare
number, not a run of text) and, given `titles` (a JSON file: source -> expected title), for being right.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

from ingest.limits import Limits
from ingest.ocr import ocr_for
from ingest.readers import supported
from ingest.sources import discover, read_document
from rag.errors import SourceError
from rag.settings import Settings
from rag.text import code_blocks
from rag.types import Section

PROBLEMS: dict[str, re.Pattern[str]] = {
    "ligatures": re.compile("[\ufb00-\ufb4f]"),
    "control or private-use": re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd\ufffe]"),
    "line-end hyphens": re.compile(r"[a-z]-\n[a-z]"),
    "line breaks in sentences": re.compile(r"[a-z,]\n[a-z]"),
    "words run together": re.compile(r"\b[a-z]{18,}\b", re.I),
    "captions spliced": re.compile(r"[a-z,][ \n](?:Figure|Fig\.|Table) \d+:"),
}
_WORD = re.compile(r"[A-Za-z]+")
_NAVIGATION = re.compile(
    r"(?im)^\s*(?:jump to (?:content|navigation|search)|main menu|move to sidebar|navigation menu|personal tools|"
    r"skip to (?:main )?content|toggle navigation|edit links|view history|what links here|related changes|"
    r"privacy policy|create account|log in|sign in|subscribe|share this|print this page|back to top|"
    r"previous(?: page)?|next(?: page)?|breadcrumbs?|site map|sitemap)\s*$")
_MENU_LINE = re.compile(r"(?m)^(?:[^|\n:]{1,25} \| ){3,}[^|\n:]{1,25}$")  # Home | Docs | FAQ | About
_MARKERS = re.compile(r"(?<=\S)\[(?:\d{1,4}|[a-z]|edit|edit source|citation needed|note \d+)\]", re.I)
_FURNITURE = re.compile(r"\[Page \d+\]|\f|VerDate|\bJkt \d+|\bPO 0{5}|\bFrm 0\d{4}|\bFmt \d{4}|\bSfmt \d{4}|"
                        r"E:\\FR\\FM|\bPage \d+ of \d+\b")
_MARKUP = re.compile(
    r"\]\((?:[^()\s]|\([^()]*\))*\)"  # a Markdown link's target
    r"|(?<![`\w])`[^`\n]+`(?!`)|\*\*[^*\n]+\*\*"  # inline code, strong emphasis
    r"|(?m:^#{1,6} \S)|(?m:^={1,6} \S)"  # ATX or AsciiDoc heading markers
    r"|</?(?:a|b|i|em|strong|code|span|div|p|br|img|sup|sub|kbd|details|summary)\b[^>]*>"  # HTML tags
    r"|:[a-z]+(?::[a-z]+)?:`[^`]+`|(?m:^\.\. [\w-]+::)"  # reStructuredText roles and directives
    r"|\b(?:link|xref|image|footnote):[^\s\[]*\[|<<[^>]+>>"  # AsciiDoc macros and cross-references
)
_GLUED_HEADING = re.compile(  # a title-case heading run into the sentence it heads: "Costs of Compliance The FAA"
    r"(?m)^(?:[A-Z][\w-]*)(?: (?:[A-Z][\w-]*|of|and|for|the|to|in|on|a|an|with|by)){1,6}"
    r"(?<=[a-z]) (?:The|This|These|Those|We|Our|It|Each|All|In|On|For|If|When)\s")
_LINE_NUMBER = re.compile(r"^\s*(\d{1,2})(?:\s+\S|\s*$)")


def evaluate_reading(folder: Path, settings: Settings, say: Callable[[str], None] = print,
                     titles: dict[str, str] | None = None) -> dict[str, Any]:
    """Per document: title, characters and problems per 1,000 characters; and the totals, with the titles
    of a bad shape and, given `titles` (source -> expected), the titles that are right."""
    ocr = ocr_for(settings)
    files = discover([folder], supported(ocr)).files
    documents: dict[str, Any] = {}
    totals: Counter[str] = Counter()
    characters = 0
    right: list[str] = []
    for file in files:
        try:
            doc = read_document(file, Limits.of(settings), ocr)
        except SourceError as exc:
            documents[file.source] = {"error": str(exc)}
            say(f"failed: {file.source}: {exc}")
            continue
        prose = _prose(doc.text)  # a code block's lines are meant to break
        counts = {name: len(pattern.findall(prose)) for name, pattern in PROBLEMS.items()}
        counts["words split in two"] = _split_words(doc.text)
        counts["running headers left"] = _headers_left(file.path, doc.text)
        counts.update(_furniture(doc.text, prose, doc.sections))
        totals.update(counts)
        characters += len(doc.text)
        per_1000 = {k: round(1000 * v / max(len(doc.text), 1), 2) for k, v in counts.items()}
        documents[file.source] = {"title": doc.title, "characters": len(doc.text), "counts": counts,
                                  "per_1000": per_1000, "title problem": title_problem(doc.title)}
        if titles is not None and file.source in titles:
            documents[file.source]["title right"] = same = _same(doc.title, titles[file.source])
            right += [file.source] if same else []
    read = [d for d in documents.values() if "error" not in d]
    result = {"documents": documents, "characters": characters, "counts": dict(totals),
              "per_1000": {k: round(1000 * v / max(characters, 1), 3) for k, v in totals.items()},
              "bad titles": sum(1 for d in read if d["title problem"])}
    if titles is not None:
        result["titles right"] = f"{len(right)} of {sum(1 for source in documents if source in titles)}"
    return result


def _furniture(text: str, prose: str, sections: Sequence[Section]) -> dict[str, int]:
    """What is not the document's content, counted in `prose` (the text without its code blocks), page
    furniture in the whole `text`."""
    headings = {h for section in sections for h in section.headings[-1:]}
    glued = sum(len(re.findall(rf"(?m)^{re.escape(h)} [A-Z]", prose)) for h in headings if len(h.split()) > 1)
    return {
        "navigation and menus": len(_NAVIGATION.findall(prose)) + sum(
            1 for m in _MENU_LINE.finditer(prose) if not _named_rows_follow(prose, m)),
        "reference markers": len(_MARKERS.findall(prose)),
        "page furniture": len(_FURNITURE.findall(text)),
        "markup": len(_MARKUP.findall(prose)),
        "margin line numbers": _line_numbers(prose),
        "headings glued": glued + len(_GLUED_HEADING.findall(prose)),
    }


def _prose(text: str) -> str:
    """The text without its code blocks (their fence lines and code)."""
    out, pos = [], 0
    for (start, end), _ in code_blocks(text):
        out.append(text[pos:start])
        pos = end
    return "".join(out) + text[pos:]


def _named_rows_follow(text: str, menu: re.Match[str]) -> bool:
    """Whether a `A | B | C | D` line is a table's header (the next block names its cells `A: ...`)."""
    first = menu.group(0).split(" | ")[0]
    return text[menu.end():menu.end() + 200].lstrip().startswith(f"{first}:")


def _line_numbers(text: str) -> int:
    """Lines that begin with a margin line number: runs of five or more lines numbered 1, 2, 3 ... (a
    transcript's or a filing's), or numbers alone standing in a row ("4 5 6 7 8")."""
    count, run, expected = 0, 0, None
    for line in (line for line in text.split("\n") if line.strip()):
        number = _LINE_NUMBER.match(line)
        if number and expected is not None and int(number.group(1)) == expected:
            run += 1
        else:
            count += run if run >= 5 else 0
            run = 1 if number else 0
        expected = int(number.group(1)) + 1 if number else None
    count += run if run >= 5 else 0
    in_a_row = [[int(n) for n in m.group(0).split()] for m in re.finditer(r"\b(?:\d{1,2} ){4,}\d{1,2}\b", text)]
    return count + sum(1 for numbers in in_a_row if all(b == a + 1 for a, b in pairwise(numbers)))


def title_problem(title: str) -> str:
    """What is wrong with a title's shape ("" when nothing is)."""
    if not title.strip():
        return "empty"
    if re.fullmatch(r"[\d\s.,:/-]+", title):
        return "a bare number"
    if len(title) > 120:
        return "a run of text, not a title"
    if re.match(r"(?:Figure|Fig\.|Table)\s+\d", title):
        return "a caption"
    return ""


def _same(title: str, expected: str) -> bool:
    def norm(t: str) -> str:
        return " ".join(re.findall(r"\w+", t.lower()))

    return norm(title) == norm(expected)


def _split_words(text: str) -> int:
    """Neighbouring fragments whose join is a word of the document and which are not words of it themselves."""
    words = [w.lower() for w in _WORD.findall(text)]
    vocabulary = Counter(words)
    return sum(1 for a, b in pairwise(words)
               if len(a + b) >= 6 and vocabulary[a + b] and vocabulary[b] <= 1 and vocabulary[a] <= 2)


def _headers_left(path: Path, text: str) -> int:
    """How often lines found at the top or bottom of 30% of the pages or more (three at least) are still
    in the text (digits masked, so page numbers inside them do not matter): a PDF's pages as PDFium
    reads them, a text file's pages between form feeds."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        page_lines = _pdf_lines(path)
    elif suffix == ".txt" and "\f" in (raw := path.read_bytes().decode("utf-8", errors="replace")):
        page_lines = [[line.strip() for line in page.splitlines() if line.strip()] for page in raw.split("\f")]
    else:
        return 0
    seen: Counter[str] = Counter()
    for lines in page_lines:
        seen.update({re.sub(r"\d+", "#", line) for line in lines[:2] + lines[-2:]})
    pages = len(page_lines)
    masked = re.sub(r"\d+", "#", text)
    return sum(masked.count(line) for line, n in seen.items() if len(line) > 8 and n >= max(3, 0.3 * pages))


def _pdf_lines(path: Path) -> list[list[str]]:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    try:
        return [[line.strip() for line in page.get_textpage().get_text_range().splitlines() if line.strip()]
                for page in document]
    finally:
        document.close()
