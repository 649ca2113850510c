"""The extractive answerer: candidate features (pure), and choices made with the real embedding model."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer import LOW_NOTE, Query
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.features import SoftCoverage, constraints, has_answer_type, mentions, piece_matches, question_type
from rag.citations import check
from rag.embedding import Embedder
from rag.text import stopwords
from rag.types import Chunk, Hit


def _hit(text: str, source: str = "corpus/a.md", start: int = 0, dense: float = 0.5, title: str = "T",
         headings: tuple[str, ...] = ()) -> Hit:
    chunk = Chunk(id=f"{source}:{start}", source=source, title=title, text=text, start=start,
                  end=start + len(text), index=0, headings=headings)
    return Hit(chunk=chunk, score=1.0, dense_score=dense)


@pytest.fixture(scope="module")
def answerer(embedder: Embedder) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(lambda term: 1.0, embedder, abstain_below=0.05, max_sentences=3)


@pytest.mark.parametrize(("question", "kind"), [
    ("How many 910C processors will Huawei make?", "number"),
    ("What share of the market does Huawei hold?", "number"),
    ("When was Harvard founded?", "time"),
    ("Why did DeepSeek delay its model?", "reason"),
    ("What's Beijing's motive for steering firms to Huawei?", "reason"),
    ("Who did Huawei team up with?", "name"),
    ("Which companies hoard H20 chips?", "name"),
    ("Where does the Rhine end?", "place"),
    ("Is the pause a permanent ban?", "yesno"),
    ("What did Huawei's founder tell President Xi?", "other"),
])
def test_question_types(question: str, kind: str) -> None:
    assert question_type(question) == kind


def test_answer_types_need_something_the_question_does_not_say() -> None:
    q = "How many 910C processors will Huawei make?"
    assert has_answer_type("number", "Huawei aims to make 100,000 of its 910C processors.", q)
    assert not has_answer_type("number", "The 910C processors are made by Huawei.", q)  # 910C is a name
    assert has_answer_type("time", "It was founded in 1636.", "When was Harvard founded?")
    assert not has_answer_type("time", "Harvard was founded by a vote.", "When was Harvard founded?")
    assert has_answer_type("name", "The company partnered with SMIC.", "Who did Huawei team up with?")
    assert not has_answer_type("name", "Huawei did.", "Who did Huawei team up with?")
    assert has_answer_type("reason", "They delayed it because of the hardware.", "Why the delay?")


def test_constraints_are_the_names_and_numbers_of_a_question() -> None:
    stop = stopwords()
    passages = "Huawei makes chips. Nvidia sold H20 chips. AMD is not named here."
    assert constraints("What is AMD's share of the Chinese market?", passages, stop) == ["amd", "chinese"]
    assert constraints("how many h20s did nvidia sell", passages, stop) == ["h20s", "nvidia"]  # lower case too
    assert constraints("How many chips in 2016?", passages, stop) == ["2016"]
    assert mentions("chinese", {"china", "market"}) and mentions("h20s", {"h20"})
    assert not mentions("h20", {"h200"}) and not mentions("amd", {"huawei"})


def test_embedded_pieces_are_the_content_words_as_read_in_context(embedder: Embedder) -> None:
    text = "Huawei just doubled its AI chip yields to 40 percent."
    (e,), vector = embedder.embed_pieces([text]), embedder.embed([text])[0]
    assert np.allclose(e.vector, vector, atol=1e-5)  # the same sentence vector as `embed`
    # hua ##wei just doubled its ai chip yields 40 percent: not "to", the full stop or [CLS]/[SEP].
    assert len(e.pieces) == 10
    assert np.allclose(np.linalg.norm(e.pieces.astype(np.float32), axis=1), 1.0, atol=1e-2)
    (none,) = embedder.embed_pieces(["It is to the."])
    assert none.pieces.shape == (0, len(vector))
    assert embedder.embed_pieces([text])[0] is e  # kept: a passage's sentence is embedded once


def test_soft_coverage_matches_other_words_for_the_same_thing(embedder: Embedder) -> None:
    question, answer, other = embedder.embed_pieces([
        "What yield rate has Huawei reached?",
        "Huawei just doubled its AI chip yields to 40 percent.",
        "Huawei's founder recently told President Xi that worries have eased.",
    ])
    right, wrong = SoftCoverage.of([piece_matches(question, answer)]), SoftCoverage.of([piece_matches(question, other)])
    assert right.mean > wrong.mean + 0.1
    assert 0.0 < right.weakest <= right.mean <= 1.0
    # A pair matches where either of its sentences does.
    both = SoftCoverage.of([piece_matches(question, answer), piece_matches(question, other)])
    assert both.mean >= right.mean and both.weakest >= right.weakest
    assert SoftCoverage.of([piece_matches(embedder.embed_pieces(["Is it the?"])[0], answer)]) == SoftCoverage(0.0, 0.0)


def test_quotes_the_answering_sentence_with_its_span(answerer: ExtractiveAnswerer) -> None:
    text = "Cats sleep a lot. Huawei makes 910C processors in Shenzhen. Dogs bark at night."
    draft = answerer.answer("Where does Huawei make 910C processors?", [_hit(text, start=100)])
    assert not draft.abstained
    first = draft.citations[0]
    assert first.quote == "Huawei makes 910C processors in Shenzhen."
    assert (first.start, first.end) == (118, 118 + len(first.quote))
    assert check(draft.text, draft.citations) == []


def test_a_paraphrased_question_finds_its_sentence(answerer: ExtractiveAnswerer) -> None:
    text = ("Huawei just doubled its AI chip yields to 40 percent. Their Ascend chip production line turned "
            "profitable for the first time. Chinese tech giants hoard Nvidia H20 chips.")
    draft = answerer.answer("Huawei's current yield rate?", [_hit(text)])
    assert draft.citations[0].quote == "Huawei just doubled its AI chip yields to 40 percent."


def test_abstains_when_nothing_is_relevant(answerer: ExtractiveAnswerer) -> None:
    draft = answerer.answer("What is the capital of France?", [_hit("Cats sleep a lot. Dogs bark.", dense=0.1)])
    assert draft.abstained and draft.citations == () and draft.confidence is None
    assert answerer.answer("anything", []).abstained


def test_a_missing_name_makes_the_answer_low_and_it_says_so(answerer: ExtractiveAnswerer) -> None:
    text = "Huawei captured about 50% of the Chinese AI chip market. Nvidia conceded it."
    sure = answerer.answer("What share of the Chinese AI chip market does Huawei hold?", [_hit(text)])
    unsure = answerer.answer("What share of the Chinese AI chip market does AMD hold?", [_hit(text)])
    assert sure.confidence == "high" and not sure.text.startswith(LOW_NOTE)
    assert {c.verdict for c in sure.citations} == {"supported"}
    assert unsure.confidence == "low" and unsure.text.startswith(LOW_NOTE + " ")
    assert {c.verdict for c in unsure.citations} == {"weak"} and all(0 <= c.support < 1 for c in unsure.citations)
    assert check(unsure.text, unsure.citations) == []


def test_a_low_answer_quotes_a_second_closest_sentence_only_from_its_own_document(
        answerer: ExtractiveAnswerer) -> None:
    lead = "Huawei captured about 50% of the Chinese AI chip market."
    other = "The Chinese market for AI chips grew fast last year."
    question = "What share of the Chinese AI chip market does AMD hold?"  # AMD is nowhere: low
    together = answerer.answer(question, [_hit(f"{lead}\n\n{other}", "corpus/a.md")])
    assert together.confidence == "low" and [c.quote for c in together.citations] == [lead, other]
    apart = answerer.answer(question, [_hit(lead, "corpus/a.md"), _hit(other, "corpus/b.md")])
    assert apart.confidence == "low" and [c.quote for c in apart.citations] == [lead]


def test_merges_near_duplicates_and_drops_overlaps(answerer: ExtractiveAnswerer) -> None:
    sentence = "Huawei will make 100,000 910C processors this year."
    twin = "Huawei will make 100,000 910C processors this year!"
    hits = [_hit(sentence, "corpus/a.md"), _hit(sentence, "corpus/a.md"), _hit(twin, "corpus/b.md")]
    draft = answerer.answer("How many 910C processors will Huawei make?", hits)
    assert draft.text == f"{sentence} [1][2]"  # the overlap repeat is dropped, the twin is cited beside
    assert [c.source for c in draft.citations] == ["corpus/a.md", "corpus/b.md"]


def test_a_follow_up_does_not_quote_the_earlier_answer_again(answerer: ExtractiveAnswerer) -> None:
    text = ("Huawei aims to crank out 100,000 of its latest 910C processors this year. "
            "They'll make 300,000 of the older 910B chips too. "
            "Not bad for technology America thought it had contained.")
    first = "How many 910C processors will Huawei make this year?"
    earlier = answerer.answer(first, [_hit(text)])
    assert earlier.citations[0].quote.startswith("Huawei aims to crank out 100,000")
    query = Query("And the older chip?", f"{first} And the older chip?", (earlier.text,))
    follow_up = answerer.answer(query, [_hit(text)])
    assert [c.quote for c in follow_up.citations] == ["They'll make 300,000 of the older 910B chips too."]


def test_headings_are_never_quoted_but_a_txt_title_line_is(answerer: ExtractiveAnswerer) -> None:
    text = "The Quibbleflux lantern\n\nThe Quibbleflux lantern was made by Orrin Vale in 1887. It glows."
    hit = _hit(text, "c/l.md", title="The Quibbleflux lantern", headings=("The Quibbleflux lantern",))
    draft = answerer.answer("Who made the Quibbleflux lantern?", [hit])
    assert draft.citations[0].quote == "The Quibbleflux lantern was made by Orrin Vale in 1887."
    line = "Orrin Vale built the first Quibbleflux lantern in 1887."
    draft = answerer.answer("Who built the first Quibbleflux lantern?", [_hit(line, "c/l.txt", title=line)])
    assert draft.citations[0].quote == line
