"""SupportChecker with the real embedding model: verdicts, quotes and their exact spans in the source."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from rag.embedding import Embedded, Embedder
from rag.index.lexical import LexicalIndex
from rag.support import SUPPORTED_AT, WEAK_AT, Support, SupportChecker, verdict
from rag.types import Chunk

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

PREFACE = "Landmarks of Paris\n\nThis guide covers the city's best-known sights.\n\n"
TOWER = ("Paris is the capital of France. The Eiffel Tower was completed in 1889 as the entrance arch to the "
         "World's Fair. It is 330 metres tall.")
SAME_TOPIC = ("The Eiffel Tower is a wrought-iron lattice tower in Paris. It is named after the engineer Gustave "
              "Eiffel, whose company designed it. Millions of people visit it every year.")
OFF_TOPIC = ("Photosynthesis converts light energy into chemical energy. Plants store this energy as glucose. "
             "Chlorophyll absorbs mostly red and blue light.")
CLAIM = "The Eiffel Tower was completed in 1889. [1]"
QUOTE = "The Eiffel Tower was completed in 1889 as the entrance arch to the World's Fair."


def chunk_in(document: str, text: str, source: str = "corpus/paris.md", headings: tuple[str, ...] = ()) -> Chunk:
    """The chunk of `document` that is `text`, with its real offset in the document."""
    start = document.index(text)
    return Chunk(id=f"{source}#{start}", source=source, title="Paris", text=text, start=start,
                 end=start + len(text), index=0, headings=headings)


DOCUMENT = PREFACE + TOWER
TOWER_CHUNK = chunk_in(DOCUMENT, TOWER)
SAME_CHUNK = chunk_in(SAME_TOPIC, SAME_TOPIC, "corpus/tower.md")
OFF_CHUNK = chunk_in("Botany notes.\n\n" + OFF_TOPIC, OFF_TOPIC, "corpus/plants.md")


@pytest.fixture(scope="module")
def idf() -> Callable[[str], float]:
    """BM25 idf over the three passages, as the product's lexical index would give it."""
    index = LexicalIndex.build(zip(["a", "b", "c"], [TOWER, SAME_TOPIC, OFF_TOPIC], strict=True))
    return index.idf


@pytest.fixture(scope="module")
def checker(embedder: Embedder, idf: Callable[[str], float]) -> SupportChecker:
    return SupportChecker(embedder, idf)


def test_supporting_passage_is_supported_with_the_right_quote_and_span(checker: SupportChecker) -> None:
    (result,) = checker.check([(CLAIM, TOWER_CHUNK)])
    assert TOWER_CHUNK.start == len(PREFACE) > 0
    assert result.verdict == "supported"
    assert SUPPORTED_AT <= result.score <= 1.0
    assert result.quote == QUOTE
    assert result.start == len(PREFACE) + TOWER.index(QUOTE)
    assert result.end == result.start + len(QUOTE)
    assert DOCUMENT[result.start:result.end] == QUOTE


def test_off_topic_passage_is_unsupported(checker: SupportChecker) -> None:
    (result,) = checker.check([(CLAIM, OFF_CHUNK)])
    assert result.verdict == "unsupported"
    assert 0.0 <= result.score < WEAK_AT
    sentences = ["Photosynthesis converts light energy into chemical energy.", "Plants store this energy as glucose.",
                 "Chlorophyll absorbs mostly red and blue light."]
    assert result.quote in sentences
    assert result.start == len("Botany notes.\n\n") + OFF_TOPIC.index(result.quote)
    assert result.end == result.start + len(result.quote)


def test_same_topic_passage_without_the_fact_is_not_supported(checker: SupportChecker) -> None:
    same, supporting = checker.check([(CLAIM, SAME_CHUNK), (CLAIM, TOWER_CHUNK)])
    assert same.verdict == "weak"  # on topic, so not unsupported; but nothing says when it was completed
    assert WEAK_AT <= same.score < SUPPORTED_AT
    assert same.score < supporting.score
    assert same.quote == "The Eiffel Tower is a wrought-iron lattice tower in Paris."
    assert (same.start, same.end) == (0, len(same.quote))


@pytest.mark.parametrize("claim", ["Yes.", "[1]", "", "  [2][3] "])
def test_claim_without_content_terms_is_unsupported(checker: SupportChecker, claim: str) -> None:
    (result,) = checker.check([(claim, TOWER_CHUNK)])
    assert result.verdict == "unsupported"
    assert result.score < WEAK_AT
    assert DOCUMENT[result.start:result.end] == result.quote
    if claim.strip() != "Yes.":  # no words at all: not even embedded
        assert result == Support(0.0, "unsupported", "Paris is the capital of France.", len(PREFACE),
                                 len(PREFACE) + len("Paris is the capital of France."))


def test_passage_without_sentences_is_unsupported(checker: SupportChecker) -> None:
    empty = Chunk(id="e", source="corpus/e.md", title="", text=" -- ", start=7, end=11, index=0)
    assert checker.check([(CLAIM, empty)]) == [Support(0.0, "unsupported", "", 7, 7)]


def test_a_heading_is_never_the_quote(checker: SupportChecker) -> None:
    document = "Intro.\n\nThe Eiffel Tower in 1889\n\nIt was completed for the World's Fair. It is tall."
    chunk = chunk_in(document, document[len("Intro.\n\n"):], headings=("The Eiffel Tower in 1889",))
    (result,) = checker.check([(CLAIM, chunk)])
    assert result.quote == "It was completed for the World's Fair."
    assert document[result.start:result.end] == result.quote


class CountingEmbedder:
    """The session's real model, recording every batch it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.batch_size, self.backend = inner.name, inner.batch_size, inner.backend
        self.dimension = inner.dimension
        self.batches: list[list[str]] = []

    def embed_pieces(self, texts: Sequence[str]) -> list[Embedded]:
        return self.inner.embed_pieces(texts)

    def embed(self, texts: Sequence[str], progress: Callable[[int], Any] | None = None
              ) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.batches.append(list(texts))
        return self.inner.embed(texts, progress)


def test_one_result_per_pair_in_order_from_one_batch(embedder: Embedder, idf: Callable[[str], float]) -> None:
    counting = CountingEmbedder(embedder)
    checker = SupportChecker(counting, idf)
    other = "Chlorophyll absorbs red and blue light. [2]"
    pairs = [(CLAIM, OFF_CHUNK), (CLAIM, TOWER_CHUNK), (other, OFF_CHUNK), (other, TOWER_CHUNK), ("[3]", SAME_CHUNK)]
    results = checker.check(pairs)
    assert len(counting.batches) == 1
    batch = counting.batches[0]
    assert len(batch) == len(set(batch)) == 2 + 3 + 3  # two claims (markers dropped) and six distinct sentences
    assert "The Eiffel Tower was completed in 1889." in batch and CLAIM not in batch
    assert [r.verdict for r in results] == ["unsupported", "supported", "supported", "unsupported", "unsupported"]
    assert results[1].quote == QUOTE
    assert results[2].quote == "Chlorophyll absorbs mostly red and blue light."
    alone = [checker.check([pair])[0] for pair in pairs]
    assert [(r.verdict, r.quote, r.start, r.end) for r in results] == [(r.verdict, r.quote, r.start, r.end)
                                                                         for r in alone]
    assert [r.score for r in results] == pytest.approx([r.score for r in alone], abs=1e-4)
    assert checker.check([]) == []


@pytest.mark.parametrize(("score", "expected"), [
    (0.0, "unsupported"), (WEAK_AT - 0.001, "unsupported"), (WEAK_AT, "weak"),
    (SUPPORTED_AT - 0.001, "weak"), (SUPPORTED_AT, "supported"), (1.0, "supported"),
])
def test_verdict_thresholds(score: float, expected: str) -> None:
    assert verdict(score) == expected
