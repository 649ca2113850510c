"""Token-aware chunks of whole sentences, with exact character spans and content-derived ids."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from rag.text import count_tokens, encoding, sentence_spans
from rag.types import Chunk, SourceDocument


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int


def chunk_id(source: str, start: int, text: str) -> str:
    """A stable id from the chunk's source, position and text: equal inputs, equal id."""
    digest = hashlib.sha256(f"{source}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:32]


def chunk_document(doc: SourceDocument, max_tokens: int = 256, overlap: int = 32) -> list[Chunk]:
    """Split `doc` into chunks of at most `max_tokens` tokens that never cut a sentence.

    Chunks stay inside one section (heading or page), neighbours share up to `overlap` tokens
    of whole sentences, and a sentence longer than `max_tokens` is cut at token boundaries.
    """
    chunks: list[Chunk] = []
    bounds = [s.start for s in doc.sections[1:]] + [len(doc.text)]
    for section, end in zip(doc.sections, bounds, strict=True):
        units = list(_units(doc.text, section.start, end, max_tokens))
        for start, stop in _pack(doc.text, units, max_tokens, overlap):
            text = doc.text[start:stop]
            chunks.append(Chunk(
                id=chunk_id(doc.source, start, text), source=doc.source, title=doc.title,
                text=text, start=start, end=stop, index=len(chunks),
                headings=section.headings, page=section.page,
            ))
    return chunks


def _units(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Unit]:
    for s, e in sentence_spans(text, start, end, fences=True):
        n = count_tokens(text[s:e])
        if n <= max_tokens:
            yield _Unit(s, e, n)
        else:
            yield from _split_long(text, s, e, max_tokens)


def _split_long(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Unit]:
    """Cut an over-long sentence into pieces of `max_tokens` tokens at token boundaries."""
    enc = encoding()
    tokens = enc.encode_ordinary(text[start:end])
    _, offsets = enc.decode_with_offsets(tokens)
    offsets.append(end - start)
    i = 0
    while i < len(tokens):
        # A stripped piece can take more tokens than it did inside the sentence (" beta" is one
        # token, "beta" two): take fewer tokens until the piece itself fits.
        n = min(max_tokens, len(tokens) - i)
        while True:
            a, b = start + offsets[i], start + offsets[i + n]
            piece = text[a:b].strip()
            count = count_tokens(piece)
            if count <= max_tokens or n == 1:
                break
            n -= 1
        if piece:
            at = b - len(text[a:b].lstrip())
            yield _Unit(at, at + len(piece), count)
        i += n


def _pack(text: str, units: list[_Unit], max_tokens: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Greedily group units into spans of at most `max_tokens`, repeating up to `overlap` tokens."""
    i = 0
    while i < len(units):
        j, total = i + 1, units[i].tokens  # a single unit always fits: long ones were cut
        while j < len(units) and total + units[j].tokens <= max_tokens:
            total += units[j].tokens
            j += 1
        # The separators between sentences can add a token or two: check the exact count.
        while j > i + 1 and count_tokens(text[units[i].start:units[j - 1].end]) > max_tokens:
            j -= 1
        yield units[i].start, units[j - 1].end
        if j == len(units):
            return
        back, kept = j, 0
        while back - 1 > i and kept + units[back - 1].tokens <= overlap:
            back -= 1
            kept += units[back].tokens
        i = back
