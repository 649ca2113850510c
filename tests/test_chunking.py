"""Unit tests of sentence spans (rag/text.py) and of the chunker (ingest/chunking.py)."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from ingest.chunking import chunk_document, chunk_id
from rag.text import count_tokens, sentence_spans
from rag.types import Chunk, Section, SourceDocument

# sentence_spans


def sentences(text: str, start: int = 0, end: int | None = None) -> list[str]:
    spans = sentence_spans(text, start, end)
    for s, e in spans:
        assert 0 <= s < e <= len(text)
        assert text[s:e] == text[s:e].strip()
    assert spans == sorted(spans)
    return [text[s:e] for s, e in spans]


def test_sentence_offsets_are_exact() -> None:
    text = "  First one here.   Second one?\tThird!  "
    spans = sentence_spans(text)
    assert spans == [(2, 17), (20, 31), (32, 38)]
    assert [text[s:e] for s, e in spans] == ["First one here.", "Second one?", "Third!"]


def test_sentence_spans_window_keeps_offsets_into_the_whole_text() -> None:
    text = "Skip me. Keep this one. And this one. Not me."
    start, end = text.index("Keep"), text.index(" Not")
    spans = sentence_spans(text, start, end)
    assert [text[s:e] for s, e in spans] == ["Keep this one.", "And this one."]
    assert spans[0][0] == start


def test_abbreviations_and_initials_do_not_split() -> None:
    text = (
        "The U.S. economy grew fast. Dr. Smith met Mr. Jones at 5 p.m. on Friday. "
        "J. R. R. Tolkien wrote books, e.g. The Hobbit. Prices rose 3.5 percent in 2020. Done."
    )
    assert sentences(text) == [
        "The U.S. economy grew fast.",
        "Dr. Smith met Mr. Jones at 5 p.m. on Friday.",
        "J. R. R. Tolkien wrote books, e.g. The Hobbit.",
        "Prices rose 3.5 percent in 2020.",
        "Done.",
    ]


def test_quotes_and_brackets_stay_with_their_sentence() -> None:
    text = 'He said "Stop." Then he left (quietly.) "Why?" she asked.'
    assert sentences(text) == ['He said "Stop."', "Then he left (quietly.)", '"Why?" she asked.']


def test_list_items_and_headings_are_sentences_of_their_own() -> None:
    text = (
        "# Setup\n\nInstall the tool first. Then run it.\n"
        "- download the file\n"
        "- unpack it\n"
        "* check the hash\n"
        "1. open a shell\n"
        "2) type the command\n"
        "> a quoted line\n\n"
        "Closing paragraph"
    )
    assert sentences(text) == [
        "Setup",
        "Install the tool first.",
        "Then run it.",
        "download the file",
        "unpack it",
        "check the hash",
        "open a shell",
        "type the command",
        "a quoted line",
        "Closing paragraph",
    ]


def test_heading_directly_followed_by_text_is_its_own_sentence() -> None:
    # Regression: "## Heading\nFirst line." (no blank line) used to be one sentence.
    text = "## Returns and refunds\nItems can be returned within 30 days. Keep the receipt.\n### Exceptions\nSale items"
    assert sentences(text) == [
        "Returns and refunds",
        "Items can be returned within 30 days.",
        "Keep the receipt.",
        "Exceptions",
        "Sale items",
    ]


def test_table_rows_and_wrapped_lines() -> None:
    assert sentences("| a | b |\n| c | d |") == ["a | b |", "c | d |"]
    assert sentences("one line that\nwraps onto the next. Then more.") == [
        "one line that\nwraps onto the next.", "Then more.",
    ]


def test_no_sentences_in_blank_or_punctuation_only_text() -> None:
    assert sentence_spans("") == []
    assert sentence_spans(" \n\n\t ") == []
    assert sentence_spans("--- \n\n ***") == []


# chunk_document

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "river", "mountain", "policy", "refund", "travel", "office"]


def prose(n_paragraphs: int, seed: int = 1, words: tuple[int, int] = (4, 18)) -> str:
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words))).capitalize() + "."

    return "\n\n".join(" ".join(sentence() for _ in range(rng.randint(2, 6))) for _ in range(n_paragraphs))


def make_doc(text: str, sections: tuple[Section, ...] = (Section(0),), source: str = "corpus/doc.md") -> SourceDocument:
    return SourceDocument(source=source, title="Doc", text=text, sha256="0" * 64, sections=sections)


def check_chunks(doc: SourceDocument, chunks: list[Chunk], max_tokens: int) -> None:
    assert chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        assert c.text == doc.text[c.start:c.end]
        assert c.text == c.text.strip()
        assert count_tokens(c.text) <= max_tokens
        assert c.source == doc.source and c.title == doc.title
        assert c.id == chunk_id(doc.source, c.start, c.text)


def section_sentences(doc: SourceDocument) -> list[tuple[int, int]]:
    bounds = [s.start for s in doc.sections[1:]] + [len(doc.text)]
    pairs = zip(doc.sections, bounds, strict=True)
    return [span for s, end in pairs for span in sentence_spans(doc.text, s.start, end)]


@pytest.mark.parametrize(("max_tokens", "overlap"), [(40, 0), (64, 16), (128, 32), (256, 0)])
def test_chunks_are_exact_bounded_whole_sentences(max_tokens: int, overlap: int) -> None:
    doc = make_doc(prose(12))
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap=overlap)
    check_chunks(doc, chunks, max_tokens)
    spans = section_sentences(doc)
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    for c in chunks:
        assert c.start in starts, f"chunk {c.index} starts inside a sentence"
        assert c.end in ends, f"chunk {c.index} ends inside a sentence"
    covered = {span for span in spans for c in chunks if c.start <= span[0] and span[1] <= c.end}
    assert covered == set(spans), "every sentence is in some chunk"
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)


def test_ids_are_stable_and_follow_the_text() -> None:
    text = prose(8)
    doc = make_doc(text)
    first = chunk_document(doc, max_tokens=60, overlap=10)
    again = chunk_document(make_doc(text), max_tokens=60, overlap=10)
    assert [c.id for c in first] == [c.id for c in again]

    # Change one word in the last sentence: chunks before it keep their ids, the one holding it changes.
    changed = text[: text.rindex(" ")] + " changedword."
    second = chunk_document(make_doc(changed), max_tokens=60, overlap=10)
    assert first[-1].id != second[-1].id
    assert first[0].id == second[0].id
    # The same text under another source name gets other ids.
    other = chunk_document(make_doc(text, source="corpus/other.md"), max_tokens=60, overlap=10)
    assert not {c.id for c in first} & {c.id for c in other}


def test_overlap_repeats_whole_sentences() -> None:
    # Short sentences (about 6 tokens each) so that an overlap of 20 tokens can hold some.
    text = " ".join(f"Sentence number {i} is short." for i in range(60))
    doc = make_doc(text)
    spans = sentence_spans(text)
    chunks = chunk_document(doc, max_tokens=50, overlap=20)
    check_chunks(doc, chunks, 50)
    for a, b in pairwise(chunks):
        assert b.start < a.end, "neighbours share text"
        shared = text[b.start:a.end]
        assert count_tokens(shared) <= 20 + 2
        assert any(s == b.start for s, _ in spans) and any(e == a.end for _, e in spans)
        assert a.start < b.start, "progress"

    no_overlap = chunk_document(doc, max_tokens=50, overlap=0)
    for a, b in pairwise(no_overlap):
        assert b.start > a.end
    assert len(no_overlap) < len(chunks)


def test_overlap_larger_than_chunk_still_makes_progress() -> None:
    doc = make_doc(" ".join(f"Item {i} here." for i in range(100)))
    chunks = chunk_document(doc, max_tokens=20, overlap=1000)
    check_chunks(doc, chunks, 20)
    assert chunks[-1].end == len(doc.text)
    assert all(a.start < b.start for a, b in pairwise(chunks))


@pytest.mark.parametrize("max_tokens", [16, 50, 256])
def test_very_long_sentence_is_cut_within_the_limit(max_tokens: int) -> None:
    # Regression: pieces cut at token boundaries were re-counted after stripping their leading
    # space (" beta" is one token, "beta" two), so they could go one token over the limit.
    rng = random.Random(3)
    text = " ".join(rng.choice(WORDS) for _ in range(2000))
    doc = make_doc(text)
    chunks = chunk_document(doc, max_tokens=max_tokens, overlap=0)
    check_chunks(doc, chunks, max_tokens)
    assert len(chunks) >= count_tokens(text) // max_tokens
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", ""), "nothing lost"
    assert all(a.end <= b.start for a, b in pairwise(chunks))


def test_long_sentence_of_mixed_scripts_is_cut_within_the_limit() -> None:
    rng = random.Random(5)
    pieces = ["１２３", "ééé", "1234567", "  ", "😀", "naïve", "\u0301", "--", "x.y", "日本語"]
    text = "".join(rng.choice(pieces) for _ in range(3000)).strip()
    doc = make_doc(text)
    for max_tokens in (7, 32):
        check_chunks(doc, chunk_document(doc, max_tokens=max_tokens, overlap=3), max_tokens)


def test_long_sentence_among_short_ones() -> None:
    long = " ".join(["word"] * 600)
    text = f"A short start. {long} And a short end."
    doc = make_doc(text)
    chunks = chunk_document(doc, max_tokens=100, overlap=0)
    check_chunks(doc, chunks, 100)
    assert chunks[0].text.startswith("A short start.")
    assert chunks[-1].text.endswith("And a short end.")


def test_chunks_stay_inside_sections_and_carry_headings_and_pages() -> None:
    text = "# Intro\n\nFirst part. " + prose(3, seed=2) + "\n\n## Details\n\nSecond part. " + prose(3, seed=3)
    details = text.index("## Details")
    doc = make_doc(text, sections=(Section(0, ("Intro",), page=1), Section(details, ("Intro", "Details"), page=2)))
    chunks = chunk_document(doc, max_tokens=400, overlap=50)
    check_chunks(doc, chunks, 400)
    assert [(c.headings, c.page, c.text[:12]) for c in chunks] == [
        (("Intro",), 1, "Intro\n\nFirst"),
        (("Intro", "Details"), 2, "Details\n\nSec"),
    ]
    assert chunks[0].end <= details


def test_empty_sections_make_no_chunks() -> None:
    doc = make_doc("Only text.", sections=(Section(0), Section(10, ("Tail",))))
    chunks = chunk_document(doc)
    assert [(c.text, c.headings) for c in chunks] == [("Only text.", ())]
