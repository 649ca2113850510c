"""Citations: markers checked against what they cite, and the JSON shape of an answer."""

from __future__ import annotations

import json

from rag.citations import check
from rag.types import Answer, Citation, Claim


def test_citation_check_finds_bad_markers_and_misplaced_quotes() -> None:
    cite = Citation(n=1, source="s", title="t", quote="abc", start=2, end=5, chunk_id="x", score=1.0)
    assert check("abc [1]", [cite], {"s": "xxabcxx"}) == []
    assert "[2] names no citation" in check("abc [1] [2]", [cite])
    assert any("not at" in p for p in check("abc [1]", [cite], {"s": "abc"}))


def test_answer_json_has_exactly_the_documented_shape() -> None:
    cite = Citation(n=1, source="corpus/a.md", title="A", quote="Q.", start=120, end=122, chunk_id="c", score=0.81)
    answer = Answer(question="q", text="Q. [1]", citations=(cite,), hits=(), abstained=False,
                    standalone_question="q", timings_ms={"retrieve": 1.0, "answer": 2.0, "total": 3.0},
                    sentences=(Claim("Q.", (1,), "supported"),), packed=("c",))
    data = json.loads(json.dumps(answer.to_dict()))
    assert list(data) == ["question", "answer", "abstained", "confidence", "citations", "passages", "sentences",
                          "standalone_question", "backend", "fallback", "cut", "context", "timings_ms"]
    assert list(data["citations"][0]) == ["n", "source", "title", "quote", "start", "end", "chunk_id", "score",
                                          "support", "verdict", "page", "headings"]
    assert data["sentences"] == [{"text": "Q.", "citations": [1], "verdict": "supported", "attributed": False,
                                  "judged": False}]
    assert data["context"] == {"packed": ["c"], "dropped": []} and data["backend"] == "extractive"
    assert list(data["timings_ms"]) == ["retrieve", "answer", "total"]
