"""Follow-up questions: what is searched for, given the conversation (rag.chat)."""

from __future__ import annotations

import pytest

from rag.chat import queries_for
from rag.errors import RagError


def test_follow_ups_are_searched_with_the_previous_question() -> None:
    history = [{"role": "user", "content": "How many 910C processors will Huawei make?"},
               {"role": "assistant", "content": "100,000 [1]"}]
    assert queries_for("And of the older model?", history) == [
        "How many 910C processors will Huawei make? And of the older model?", "And of the older model?"]
    assert queries_for("Why did China refuse Nvidia's H20 export-compliant chips?", history) == [
        "Why did China refuse Nvidia's H20 export-compliant chips?"]
    with pytest.raises(RagError, match="history"):
        queries_for("And then?", [{"role": "robot", "content": "x"}])


def test_follow_up_chains_reach_back_to_the_last_standalone_question() -> None:
    history = [{"role": "user", "content": "How many 910C processors will Huawei make?"},
               {"role": "assistant", "content": "..."},
               {"role": "user", "content": "And of the older model?"},
               {"role": "assistant", "content": "..."}]
    assert queries_for("Why do they stumble?", history)[0] == (
        "How many 910C processors will Huawei make? And of the older model? Why do they stumble?")
    assert queries_for("What is the capital of France?", history) == ["What is the capital of France?"]
    assert queries_for("And of the older model?", []) == ["And of the older model?"]
