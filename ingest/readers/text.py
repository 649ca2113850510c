"""Plain text and CSV, and what the other readers of text share: decoding, a first line as title, sections."""

from __future__ import annotations

import csv
import io
import itertools
import re

from ingest.readers.base import Read
from ingest.readers.tables import table_rows
from rag.errors import SourceError
from rag.types import Section

_COLUMNS = re.compile(r"\S {3,}\S")  # two columns set with spaces on one line


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (or UTF-16 with a byte order mark) and normalise line ends to `\\n`."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        if b"\x00" in data[:8192]:
            raise SourceError("binary file, not text; remove it or convert it to text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "re-save the file as UTF-8"
            ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_txt(data: bytes) -> Read:
    """A text file: its title line is its title. Pages (split by form feeds, as in IETF RFCs and
    printouts) lose the running headers, footers and page numbers they repeat."""
    text = decode_text(data)
    if text.count("\f") >= 2:
        text = unpaged(text)
    return Read(title_line(text), text, [Section(0)])


def unpaged(text: str) -> str:
    """Paged text as one run: running headers and footers and page numbers dropped (the detection
    PDFs use), a paragraph broken by a page break joined again; the lines' own layout kept."""
    from ingest.readers.paged import SENTENCE_END, furniture, running_lines, tidy, without_margin_numbers

    pages = [_single_spaced(without_margin_numbers(page.split("\n"))) for page in text.split("\f")]
    tidied = [[tidy(line) for line in page if line.strip()] for page in pages]
    repeated = running_lines(tidied)
    kept: list[list[str]] = []
    for page, lines in zip(pages, tidied, strict=True):
        drop, i = set(), 0
        for at, line in enumerate(page):
            if line.strip():
                if furniture(lines[i], i, len(lines), repeated):
                    drop.add(at)
                i += 1
        body = [line.rstrip() for at, line in enumerate(page) if at not in drop]
        while body and not body[0]:
            body.pop(0)
        while body and not body[-1]:
            body.pop()
        if body:
            kept.append(body)
    out = "\n".join(kept[0]) if kept else ""
    for before, page in itertools.pairwise(kept):
        # A sentence that runs on over the page break goes on in lower case: no paragraph break there.
        goes_on = not SENTENCE_END.search(before[-1]) and page[0].lstrip()[:1].islower()
        out += ("\n" if goes_on else "\n\n") + "\n".join(page)
    return out


def _single_spaced(lines: list[str]) -> list[str]:
    """A double-spaced page (a transcript: a blank line after every line) with its single blank lines
    dropped, so that a sentence is not cut into paragraphs; two or more blank lines stay one."""
    runs = [len(list(run)) for blank, run in itertools.groupby(lines, key=lambda line: not line.strip()) if not blank]
    if len(runs) < 8 or sum(1 for run in runs if run == 1) < 0.8 * len(runs):
        return lines  # paragraphs of several lines: blank lines are paragraph breaks
    out: list[str] = []
    for blank, run in itertools.groupby(lines, key=lambda line: not line.strip()):
        block = list(run)
        out += ([""] if len(block) > 1 else []) if blank else block
    return out


def title_line(text: str) -> str:
    """A plain text's title: its first line, unless that is a header set in columns ("Network Working
    Group    P. Deutsch", as RFCs and memos begin): then the first line after that header block."""
    lines = text.split("\n")[:60]
    if not lines or not _COLUMNS.search(lines[0].strip() if lines[0].strip() else first_line(text)):
        return first_line(text)
    past_header = False
    for line in lines:
        if not line.strip():
            past_header = True
        elif past_header and not _COLUMNS.search(line.strip()) and len(line.strip()) <= 150:
            return " ".join(line.split())
    return first_line(text)


def first_line(text: str) -> str:
    """The first non-blank line, as a title when it is short enough to be one."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 150 else ""


def merge_sections(sections: list[Section]) -> list[Section]:
    """Drop empty leading sections so that every section starts where its text does."""
    out: list[Section] = []
    for s in sections:
        if out and out[-1].start == s.start:
            out[-1] = s
        else:
            out.append(s)
    return out


def read_csv(data: bytes) -> Read:
    """A CSV (or TSV) file: its first row is the header of every other row."""
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    return Read("", table_rows(rows), [Section(0)])
