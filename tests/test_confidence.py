"""How sure an answer is (`high`, `low`, or an abstention) in Python, `rag ask --json`, `rag ask` and `rag chat`.

Real model and a real index of the seed corpus; the CLI runs in-process. The questions live in
tests/conftest.py (HIGH_QUESTION, LOW_QUESTION, OFF_TOPIC_QUESTION); the HTTP API and the page are
tested with the same ones in test_api.py, test_ui.py and test_browser.py.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rag.answer import LOW_NOTE
from rag.assistant import Assistant
from rag.types import Answer
from tests.helpers import HIGH_QUESTION, LOW_QUESTION, OFF_TOPIC_QUESTION
from ui.cli import main

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

LOW_LINE = "(low confidence: the quoted passages may not answer the question directly)"
CITATION_LINE = re.compile(r"^\[(\d+)\] corpus/\S+ \(.+\), characters \d+-\d+, score -?\d\.\d\d, "
                           r"(supported|weak|unsupported) \((\d\.\d\d)\)$")
PASSAGE_LINE = re.compile(r"^  - (corpus/\S+) \(similarity (-?\d\.\d\d)\): \S")


@pytest.fixture
def cli(seed_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `rag ...` in-process against the seed index; return (exit code, stdout lines)."""
    monkeypatch.setenv("RAG_HOME", str(seed_home / ".rag"))
    monkeypatch.setenv("RAG_CORPUS", str(seed_home / "corpus"))

    def run(*args: str, stdin: str | None = None) -> tuple[int, list[str]]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        assert captured.err == ""
        return code, captured.out.splitlines()

    return run


def _streamed(assistant: Assistant, question: str) -> tuple[str, Answer]:
    *pieces, answer = assistant.stream(question)
    assert isinstance(answer, Answer) and all(isinstance(p, str) for p in pieces)
    return "".join(str(p) for p in pieces), answer


# --- Python ------------------------------------------------------------------------------------------------------


def test_a_confident_answer_is_high(seed_assistant: Assistant) -> None:
    streamed, answer = _streamed(seed_assistant, HIGH_QUESTION)
    assert not answer.abstained and answer.confidence == "high", answer.text
    assert streamed == answer.text and not answer.text.startswith(LOW_NOTE)
    assert answer.sentences and all(c.verdict == "supported" for c in answer.sentences)
    assert answer.citations and all(c.verdict == "supported" and 0 <= c.support <= 1 for c in answer.citations)
    data = answer.to_dict()
    assert data["confidence"] == "high" and data["passages"] == []


def test_an_on_topic_question_the_documents_do_not_answer_is_low(seed_assistant: Assistant) -> None:
    streamed, answer = _streamed(seed_assistant, LOW_QUESTION)
    assert not answer.abstained and answer.confidence == "low", answer.text
    assert answer.text.startswith(f"{LOW_NOTE} ") and streamed == answer.text  # the note streams first
    assert answer.sentences and all(c.verdict == "weak" for c in answer.sentences)
    assert answer.citations and all(0 <= c.support <= 1 for c in answer.citations)
    assert all(f"{c.quote} [" in answer.text for c in answer.citations)  # still the quotes, with their markers
    data = answer.to_dict()
    assert data["confidence"] == "low" and data["passages"] == []


def test_an_off_topic_question_abstains_with_the_closest_passages_best_first(seed_assistant: Assistant) -> None:
    answer = seed_assistant.ask(OFF_TOPIC_QUESTION)
    assert answer.abstained and answer.confidence is None and answer.citations == ()
    closest = answer.closest()
    similarities = [h.dense_score or 0.0 for h in closest]
    assert 1 <= len(closest) <= 3 and similarities == sorted(similarities, reverse=True)
    assert similarities[0] == max(h.dense_score or 0.0 for h in answer.hits)
    data = answer.to_dict()
    assert data["confidence"] is None and data["passages"] == [h.to_dict() for h in closest]
    assert [p["similarity"] for p in data["passages"]] == [round(s, 4) for s in similarities]


# --- rag ask --json, rag ask, rag chat ----------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "confidence"), [
    (HIGH_QUESTION, "high"), (LOW_QUESTION, "low"), (OFF_TOPIC_QUESTION, None)])
def test_cli_json_carries_the_confidence_and_an_abstentions_passages(cli: Any, question: str,
                                                                     confidence: str | None) -> None:
    code, out = cli("ask", question, "--json")
    assert code == 0 and len(out) == 1
    data = json.loads(out[0])
    assert data["confidence"] == confidence and data["abstained"] is (confidence is None)
    if confidence is None:
        similarities = [p["similarity"] for p in data["passages"]]
        assert 1 <= len(similarities) <= 3 and similarities == sorted(similarities, reverse=True)
        assert {"source", "title", "chunk_id", "start", "end", "text", "similarity"} <= set(data["passages"][0])
    else:
        assert data["passages"] == [] and data["citations"]


def test_cli_shows_a_confident_answer_without_a_low_confidence_line(cli: Any) -> None:
    code, out = cli("ask", HIGH_QUESTION)
    assert code == 0 and "[1]" in out[0] and out[1] == ""
    assert not any("low confidence" in line for line in out)
    cited = [CITATION_LINE.match(line) for line in out[2:]]
    assert cited and all(m is not None and m[2] == "supported" for m in cited), out  # verdict and support
    assert not any(line.startswith("    “") for line in out)  # a confident extractive answer is its quotes


def test_cli_shows_a_low_confidence_answer_apart_with_its_quotes(cli: Any) -> None:
    code, out = cli("ask", LOW_QUESTION)
    assert code == 0 and out[0].startswith(f"{LOW_NOTE} ") and out[1] == LOW_LINE and out[2] == ""
    citations = out[3:]
    assert citations and len(citations) % 2 == 0, out
    for head, quote in zip(citations[::2], citations[1::2], strict=True):
        found = CITATION_LINE.match(head)
        assert found is not None, head
        assert 0 <= float(found[3]) <= 1
        assert quote.startswith("    “") and quote.endswith("”") and quote[5:-1] in out[0]


def test_cli_lists_an_abstentions_closest_passages_best_first(cli: Any) -> None:
    code, out = cli("ask", OFF_TOPIC_QUESTION)
    assert code == 0 and "do not answer" in out[0]
    passages = [PASSAGE_LINE.match(line) for line in out[1:]]
    assert 1 <= len(passages) <= 3 and all(passages), out
    similarities = [float(m[2]) for m in passages if m]
    assert similarities == sorted(similarities, reverse=True)
    assert not any("low confidence" in line for line in out)


def test_chat_marks_the_low_confidence_answer_only(cli: Any) -> None:
    code, out = cli("chat", stdin=f"{LOW_QUESTION}\n/new\n{HIGH_QUESTION}\n\n")  # /new: not a follow-up
    assert code == 0
    starts = [i for i, line in enumerate(out) if line.startswith("> ")]
    assert len(starts) == 4 and out[starts[1]] == "> (new conversation)", out  # then the empty line that quits
    low, high = out[starts[0]:starts[1]], out[starts[2]:starts[3]]
    assert low[0].startswith(f"> {LOW_NOTE} ") and low[1] == LOW_LINE  # right after the streamed text
    assert any(line.startswith("    “") for line in low)
    assert "[1]" in high[0] and not any("low confidence" in line for line in high)
