"""The llama-index integration with llama-index-core's real classes over the real seed index: our retriever
inside a `RetrieverQueryEngine`, and our cited answer as a llama-index `Response`. No network, and the
global llama-index `Settings` are never touched (every part gets its LLM explicitly)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core import Settings as LlamaSettings
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import QueryBundle

from ingest.limits import Limits
from ingest.sources import SourceFile, read_document
from rag.assistant import Assistant
from rag.integrations.llama_index import RagQueryEngine, RagRetriever
from rag.settings import Settings
from tests.helpers import HIGH_QUESTION, OFF_TOPIC_QUESTION

S910C = "Huawei aims to crank out 100,000 of its latest 910C processors this year."


def _texts(corpus: Path) -> dict[str, str]:
    return {f"corpus/{p.name}": read_document(SourceFile(p, f"corpus/{p.name}"), Limits()).text
            for p in corpus.glob("*.md")}


def test_the_retriever_returns_our_hits_as_nodes(seed_home: Path, seed_assistant: Assistant) -> None:
    texts = _texts(seed_home / "corpus")
    retriever = RagRetriever(assistant=seed_assistant, k=3)
    nodes = retriever.retrieve("910C processors Huawei")
    hits = seed_assistant.retrieve("910C processors Huawei", k=3)
    assert [n.node.node_id for n in nodes] == [h.chunk.id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    for found in nodes:
        meta = found.node.metadata
        assert texts[meta["source"]][meta["start"]:meta["end"]] == found.node.get_content()
        assert (found.node.start_char_idx, found.node.end_char_idx) == (meta["start"], meta["end"])
        shown = found.node.get_content(metadata_mode="llm")  # what an LLM is given: title, not our offsets
        assert shown.startswith(f"title: {meta['title']}") and "source: " not in shown and "start: " not in shown
    only = RagRetriever(assistant=seed_assistant, sources=["*insights*"]).retrieve("Huawei chips")
    assert {n.node.metadata["source"] for n in only} == {"corpus/podcast-insights-china-ai-chips.md"}


def test_a_retriever_query_engine_runs_over_our_retriever(seed_home: Path) -> None:
    settings = Settings.load(home=seed_home / ".rag", corpus=seed_home / "corpus")
    retriever = RagRetriever(settings)  # its own assistant, opened from the settings
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), response_mode="compact")
    response = engine.query(HIGH_QUESTION)
    assert S910C in "".join(n.node.get_content() for n in response.source_nodes)
    assert S910C in str(response)  # MockLLM writes its prompt back: our passages reached the synthesizer
    assert LlamaSettings._llm is None and LlamaSettings._embed_model is None  # no global was set


def test_the_query_engine_returns_our_cited_answer(seed_home: Path, seed_assistant: Assistant) -> None:
    texts = _texts(seed_home / "corpus")
    engine = RagQueryEngine(assistant=seed_assistant)
    response = engine.query(HIGH_QUESTION)
    answer = seed_assistant.ask(HIGH_QUESTION)
    assert response.response == answer.text and "100,000" in str(response)
    assert response.metadata is not None and response.metadata["confidence"] == "high"
    assert not response.metadata["abstained"] and response.metadata["backend"] == "extractive"
    assert len(response.source_nodes) == len(answer.citations)
    for found, citation in zip(response.source_nodes, answer.citations, strict=True):
        meta = found.node.metadata
        assert (meta["n"], meta["quote"], meta["verdict"]) == (citation.n, citation.quote, citation.verdict)
        assert texts[meta["source"]][meta["quote_start"]:meta["quote_end"]] == meta["quote"]
        assert meta["start"] <= meta["quote_start"] < meta["quote_end"] <= meta["end"]
        assert found.score == citation.support
    assert response.source_nodes[0].node.metadata["quote"] == S910C

    off = asyncio.run(engine.aquery(QueryBundle(OFF_TOPIC_QUESTION)))
    assert off.metadata is not None and off.metadata["abstained"] and off.metadata["confidence"] is None
    assert off.source_nodes and all("quote" not in n.node.metadata for n in off.source_nodes)


def test_settings_and_an_assistant_are_not_both_given(seed_home: Path, seed_assistant: Assistant) -> None:
    with pytest.raises(ValueError, match="not both"):
        RagRetriever(seed_assistant.settings, assistant=seed_assistant)
