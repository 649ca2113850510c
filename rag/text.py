"""Plain-text helpers: sentence spans with exact offsets, word tokens, and the offline tiktoken encoding."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

# A code block stands between two fence lines; it is one unit, never split into sentences.
CODE_FENCE = "```"
_FENCE_LINE = re.compile(r"^```([^\n`]*)$", re.M)
# A blank line ends a paragraph; a line that opens with a list marker, a heading or a quote
# starts a new sentence even without a blank line before it.
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n\s*|\n(?=[ \t]*(?:[-*+•>|]|#{1,6}|\d{1,3}[.)])[ \t])")
_LINE_MARKER = re.compile(r"(?:#{1,6}|[-*+•>|]|\d{1,3}[.)])[ \t]+")
# A sentence ends at . ! ? … (plus closing quotes or brackets) before white space and a capital,
# a digit or an opening quote.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset([
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "cf", "al", "fig",
    "figs", "no", "nos", "vol", "pp", "ed", "eds", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept", "est", "gen", "gov", "sen",
    "rep", "rev",
])
_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][a-z]+)?|[^\W\d_A-Za-z]+")


def sentence_spans(text: str, start: int = 0, end: int | None = None, *, fences: bool = False) -> list[tuple[int, int]]:
    """Return `(start, end)` offsets of the sentences of `text[start:end]`, trimmed of white space.

    Offsets are into `text` itself, so `text[s:e]` is each sentence verbatim. Headings, list
    items and lines of a table are sentences of their own; their markers are left out. A code
    block (between fence lines) is one span, whatever it holds: its code without the fence lines,
    or with them when `fences` (the chunker's units, so that a chunk carries its fences).
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for block, inner in code_blocks(text, start, end):
        _prose_spans(text, pos, block[0], spans)
        _add_span(text, *(block if fences else inner), spans)
        pos = block[1]
    _prose_spans(text, pos, end, spans)
    return spans


def code_blocks(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """Each code block of `text[start:end]`: its span with its fence lines, and its code's span. A block
    opens at a line starting with ``` and closes at the next line that is ``` alone (found line by line,
    in linear time, whatever a file of unclosed fences holds)."""
    opening = None
    for fence in _FENCE_LINE.finditer(text, start, len(text) if end is None else end):
        if opening is None:
            opening = fence
        elif not fence.group(1).strip():
            yield (opening.start(), fence.end()), (opening.end() + 1, max(opening.end() + 1, fence.start() - 1))
            opening = None


def _prose_spans(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    block_start = start
    for brk in _BLOCK_BREAK.finditer(text, start, end):
        _split_block(text, block_start, brk.start(), spans)
        block_start = brk.end()
    _split_block(text, block_start, end, spans)


def body_spans(text: str, headings: tuple[str, ...]) -> list[tuple[int, int]]:
    """The sentence spans of `text` less those that are one of its `headings` (a heading states nothing).

    Only headings: a title taken from a `.txt`'s first line may be a real sentence.
    """
    labels = {" ".join(h.split()) for h in headings}
    return [(s, e) for s, e in sentence_spans(text) if " ".join(text[s:e].split()) not in labels]


def _split_block(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    marker = _LINE_MARKER.match(text, start, end)
    if marker:
        start = marker.end()
        newline = text.find("\n", start, end)
        if text[marker.start()] == "#" and newline >= 0:  # a heading is its line, not the next one
            _add_span(text, start, newline, out)
            _split_block(text, newline + 1, end, out)
            return
    piece_start = start
    for m in _SENTENCE_END.finditer(text, start, end):
        if _is_abbreviation(text, piece_start, m.start()):
            continue
        _add_span(text, piece_start, m.end(), out)
        piece_start = m.end()
    _add_span(text, piece_start, end, out)


def _is_abbreviation(text: str, start: int, dot: int) -> bool:
    if text[dot] != ".":
        return False
    word = text[max(start, dot - 12):dot].rsplit(None, 1)[-1] if dot > start else ""
    word = word.lstrip("(\"'“‘")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():  # an initial: "J. Smith"
        return True
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word):  # "U.S", "e.g"
        return True
    return word.lower() in _ABBREVIATIONS


def _add_span(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start and any(ch.isalnum() for ch in text[start:end]):
        out.append((start, end))


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits; runs of other scripts kept whole)."""
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


_ENCODING_LOCK = threading.Lock()


# cl100k_base as tiktoken defines it; tiktoken would download the BPE ranks, so they are read
# from the copy llama-index-core ships instead.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276,
}
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@lru_cache(maxsize=1)
def _load_encoding() -> tiktoken.Encoding:
    import hashlib
    from importlib.resources import files

    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    cached = files("llama_index.core").joinpath(
        "_static", "tiktoken_cache", hashlib.sha1(_CL100K_URL.encode()).hexdigest()
    )
    return tiktoken.Encoding(
        name="cl100k_base", pat_str=_CL100K_PATTERN,
        mergeable_ranks=load_tiktoken_bpe(str(cached), expected_hash=_CL100K_SHA256),
        special_tokens=_CL100K_SPECIAL,
    )


def encoding() -> tiktoken.Encoding:
    """The `cl100k_base` tokenizer, read from the local copy llama-index-core ships (no network)."""
    with _ENCODING_LOCK:
        return _load_encoding()


def count_tokens(text: str) -> int:
    """Number of `cl100k_base` tokens in `text`."""
    return len(encoding().encode_ordinary(text))


_STEMMERS = threading.local()


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """English stop words (bm25s's list) plus question words: words that carry no topic."""
    from bm25s.stopwords import STOPWORDS_EN

    # Question words carry no topic and would favour passages that happen to ask questions.
    questions = {"how", "what", "which", "who", "whom", "whose", "when", "where", "why", "does", "did", "do"}
    return frozenset(STOPWORDS_EN) | questions


def terms(text: str) -> list[str]:
    """Search terms of `text`: its words less English stop words, Snowball-stemmed."""
    stemmer = getattr(_STEMMERS, "english", None)
    if stemmer is None:  # PyStemmer objects must not be shared between threads
        import Stemmer

        stemmer = _STEMMERS.english = Stemmer.Stemmer("english")
    stop = stopwords()
    return list(stemmer.stemWords([w for w in words(text) if w not in stop]))
