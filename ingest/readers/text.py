"""Plain text and CSV, and what the other readers of text share: decoding, a first line as title, sections."""

from __future__ import annotations

import csv
import io

from ingest.readers.base import Read
from ingest.readers.tables import table_rows
from rag.errors import SourceError
from rag.types import Section


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
    """A text file: its first line is its title when short enough."""
    text = decode_text(data)
    return Read(first_line(text), text, [Section(0)])


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
