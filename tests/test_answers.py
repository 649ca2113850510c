"""Questions about the seed articles, on the real model and a real embedded Chroma."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ingest.limits import Limits
from ingest.sources import SourceFile, read_document
from rag.answer import LOW_NOTE
from rag.assistant import Assistant
from rag.citations import check
from rag.errors import IndexMismatchError, IndexMissingError, RagError
from rag.settings import Settings
from rag.types import Answer
from tests.helpers import run_rag

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

DEEPSEEK = "corpus/deepseek-huawei-nvidia-buying-frenzy.md"
INSIGHTS = "corpus/podcast-insights-china-ai-chips.md"

ANSWERABLE = [
    ("How many 910C processors will Huawei make?", DEEPSEEK, "100,000 of its latest 910C processors"),
    ("What did Huawei do to its AI chip yields?", DEEPSEEK, "doubled its AI chip yields to 40 percent"),
    ("How many H20 chips did Nvidia sell to Chinese customers last year?", DEEPSEEK, "sold a million H20 chips"),
    ("Who did Huawei partner with to avoid the banned EUV machines?", DEEPSEEK, "partnered with SMIC"),
    ("What share of the Chinese domestic market has Huawei captured?", INSIGHTS, "~50% of the domestic market"),
    ("Why did DeepSeek delay a major model release?", INSIGHTS, "delayed a major model release"),
]
OFF_TOPIC = ["What is the capital of France?", "How do I bake sourdough bread at home?",
             "Who won the 2018 football World Cup?"]


def _source_texts(home: Path) -> dict[str, str]:
    texts = {}
    for path in sorted((home / "corpus").glob("*.md")):
        source = f"corpus/{path.name}"
        texts[source] = read_document(SourceFile(path, source), Limits()).text
    return texts


@pytest.mark.parametrize(("question", "source", "expected"), ANSWERABLE)
def test_answers_quote_the_right_sentence(seed_assistant: Assistant, seed_home: Path,
                                          question: str, source: str, expected: str) -> None:
    answer = seed_assistant.ask(question)
    assert not answer.abstained, answer.text
    assert 1 <= len(answer.citations) <= 3
    assert any(expected in c.quote and c.source == source for c in answer.citations), answer.text
    assert answer.text.removeprefix(f"{LOW_NOTE} ").startswith(f"{answer.citations[0].quote} [1]")
    assert check(answer.text, answer.citations, _source_texts(seed_home)) == []  # quotes stand at their spans


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_abstain_with_closest_passages(seed_assistant: Assistant, question: str) -> None:
    answer = seed_assistant.ask(question)
    assert answer.abstained and answer.citations == ()
    assert "do not answer" in answer.text and answer.hits


def test_follow_up_finds_the_older_model(seed_assistant: Assistant) -> None:
    first = seed_assistant.ask("How many 910C processors will Huawei make?")
    history = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.text}]
    answer = seed_assistant.ask("And of the older model?", history)
    assert answer.standalone_question.startswith("How many 910C processors")
    assert any("300,000 of the older 910B chips" in c.quote for c in answer.citations), answer.text


def test_a_why_follow_up_quotes_the_reason(seed_assistant: Assistant) -> None:
    """"And why?" is read against the question it follows: the reason is quoted, not the earlier answer's
    neighbours."""
    first = seed_assistant.ask("Who is stockpiling H20s?")
    assert any("hoard Nvidia H20 chips" in c.quote for c in first.citations), first.text
    history = [{"role": "user", "content": first.question}, {"role": "assistant", "content": first.text}]
    answer = seed_assistant.ask("And why?", history)
    assert answer.standalone_question == "Who is stockpiling H20s? And why?"
    lead = " ".join(s.text for s in answer.sentences[:2])  # the best candidate: one sentence or two neighbours
    assert "to power DeepSeek's suddenly popular AI models" in lead, answer.text


def test_stream_yields_pieces_then_the_answer(seed_assistant: Assistant) -> None:
    items = list(seed_assistant.stream("How many 910C processors will Huawei make?"))
    answer = items[-1]
    assert isinstance(answer, Answer) and all(isinstance(p, str) for p in items[:-1])
    assert "".join(items[:-1]) == answer.text  # type: ignore[arg-type]


def test_retrieve_modes_and_per_source_cap(seed_assistant: Assistant) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        hits = seed_assistant.retrieve("Huawei 910B chips stumble during training", k=3, mode=mode)  # type: ignore[arg-type]
        assert hits and hits[0].chunk.source == DEEPSEEK, mode
        assert all(h.dense_score is not None for h in hits)
    capped = Assistant(seed_assistant.settings.model_copy(update={"per_source": 1}), embedder=seed_assistant.embedder)
    sources = [h.chunk.source for h in capped.retrieve("Huawei chips", k=5)]
    assert len(sources) == len(set(sources)) == 2


def test_assistant_is_safe_across_threads(seed_assistant: Assistant) -> None:
    questions = [q for q, _, _ in ANSWERABLE] * 2
    expected = [seed_assistant.ask(q).text for q in questions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(lambda q: seed_assistant.ask(q).text, questions)) == expected


def test_bad_questions_get_clear_errors(seed_assistant: Assistant) -> None:
    with pytest.raises(RagError, match="empty"):
        seed_assistant.ask("   ")
    assert seed_assistant.ask("?!?").abstained


def test_mismatched_or_missing_index_is_refused(seed_home: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexMismatchError, match=r"RAG_CHUNK_TOKENS.*rag ingest --rebuild"):
        Assistant.open(Settings.load(home=seed_home / ".rag", chunk_tokens=128))
    with pytest.raises(IndexMissingError, match="rag ingest"):
        Assistant.open(Settings.load(home=tmp_path / "nothing"))
    assert not (tmp_path / "nothing").exists()  # asking never creates an index


def test_cli_ask_json_shape_and_exit_codes(seed_home: Path) -> None:
    out = run_rag("ask", "How many 910C processors will Huawei make?", "--json", home=seed_home / ".rag",
                  process=True)  # the real command: its output and exit status
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert list(data) == ["question", "answer", "abstained", "confidence", "citations", "passages", "sentences",
                          "standalone_question", "backend", "fallback", "cut", "context", "timings_ms"]
    assert data["citations"][0]["source"] == DEEPSEEK and data["abstained"] is False
    assert data["backend"] == "extractive" and {c["verdict"] for c in data["citations"]} == {"supported"}
    mismatch = run_rag("ask", "anything", home=seed_home / ".rag", env={"RAG_CHUNK_TOKENS": "100"})
    assert mismatch.returncode == 2 and mismatch.stderr.count("\n") == 1 and "--rebuild" in mismatch.stderr
    status = run_rag("status", "--json", home=seed_home / ".rag")
    assert json.loads(status.stdout)["documents"] == 2
