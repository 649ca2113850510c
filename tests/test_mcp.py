"""The MCP server with the official SDK's own client: over stdio (`rag mcp` as a subprocess) and over
streamable HTTP at `/mcp` under a real `rag serve` with a bearer token, both over a real index."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from ingest.limits import Limits
from ingest.sources import SourceFile, read_document
from rag.embedding import Embedder
from tests.helpers import HIGH_QUESTION, OFF_TOPIC_QUESTION, Live, indexed_copy, serving

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

TOKEN = "mcp-test-token-0123456789"
TOOLS = {"search", "ask", "list_documents", "list_collections"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Live]:
    """`rag serve` over a copy of the seed corpus that wants the bearer token `TOKEN`."""
    base = indexed_copy(tmp_path_factory.mktemp("mcp"), embedder)
    with serving(base, env={"RAG_API_TOKEN": TOKEN}) as url:
        yield Live(url, base)


def stdio(home: Path, corpus: Path) -> Client:
    env = {**os.environ, "RAG_HOME": str(home), "RAG_CORPUS": str(corpus)}
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "ui.cli", "mcp"], env=env,
                                        cwd=str(corpus.parent)))


def http(url: str, token: str) -> Client:
    import httpx2

    client = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    return Client(streamable_http_client(f"{url}/mcp", http_client=client))


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    if data is None:  # older clients: the JSON is in the text content
        data = json.loads(result.content[0].text)
    return dict(data)


def error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(getattr(part, "text", "") for part in result.content)


async def session(client: Client, corpus: Path) -> None:
    """One client session: the tools are listed, search, ask and list_documents answer with checked spans."""
    texts = {f"corpus/{p.name}": read_document(SourceFile(p, f"corpus/{p.name}"), Limits()).text
             for p in corpus.glob("*.md")}
    async with client:
        listed = await client.list_tools()
        assert {tool.name for tool in listed.tools} == TOOLS
        ask_tool = next(tool for tool in listed.tools if tool.name == "ask")
        assert {"question", "history", "sources"} <= set(ask_tool.input_schema["properties"])

        found = structured(await client.call_tool("search", {"query": "910C processors Huawei", "k": 3}))
        passages = found["passages"]
        assert 1 <= len(passages) <= 3
        for passage in passages:  # each passage is the document's own text at its span
            assert texts[passage["source"]][passage["start"]:passage["end"]] == passage["text"]
            assert passage["title"]
        assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
        assert "910C" in passages[0]["text"]

        answer = structured(await client.call_tool("ask", {"question": HIGH_QUESTION}))
        assert not answer["abstained"] and answer["confidence"] == "high"
        assert "100,000" in answer["answer"]
        assert answer["citations"] and answer["sentences"]
        for citation in answer["citations"]:  # a verified quote: verbatim at its span, with a verdict
            assert texts[citation["source"]][citation["start"]:citation["end"]] == citation["quote"]
            assert citation["verdict"] == "supported"
        assert all(s["verdict"] in ("supported", "weak", "unsupported") for s in answer["sentences"])

        follow = structured(await client.call_tool("ask", {
            "question": "And what are its yields?",
            "history": [{"role": "user", "content": HIGH_QUESTION}, {"role": "assistant", "content": answer["answer"]}],
        }))
        assert "huawei" in follow["standalone_question"].lower()

        off = structured(await client.call_tool("ask", {"question": OFF_TOPIC_QUESTION}))
        assert off["abstained"] and not off["citations"] and off["passages"]

        only = structured(await client.call_tool("search", {"query": "Huawei chips", "sources": ["*insights*"]}))
        assert {p["source"] for p in only["passages"]} == {"corpus/podcast-insights-china-ai-chips.md"}

        listing = structured(await client.call_tool("list_documents", {}))
        assert listing["total"] == 2 and {d["source"] for d in listing["documents"]} == set(texts)

        # Tool errors are one clear line for the model to read, not a crash.
        assert "empty" in error_text(await client.call_tool("search", {"query": "  "}))
        assert "*.nothing" in error_text(await client.call_tool("ask", {"question": HIGH_QUESTION,
                                                                       "sources": ["*.nothing"]}))
        assert "Error executing tool" in error_text(await client.call_tool("search", {"query": "x", "k": 0}))


def test_stdio_session(seed_home: Path) -> None:
    anyio.run(session, stdio(seed_home / ".rag", seed_home / "corpus"), seed_home / "corpus")


def test_stdio_without_index_says_how_to_build_one(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()

    async def call() -> str:
        async with stdio(tmp_path / ".rag", tmp_path / "corpus") as client:
            return error_text(await client.call_tool("ask", {"question": HIGH_QUESTION}))

    assert "rag ingest" in anyio.run(call)


def test_http_session(guarded: Live) -> None:
    anyio.run(session, http(guarded.url, TOKEN), guarded.base / "corpus")


def test_http_wants_the_api_credentials(guarded: Live) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    refused = httpx.post(f"{guarded.url}/mcp", json=body, headers=headers, timeout=30)
    assert refused.status_code == 401
    assert "credentials required" in refused.json()["error"]["message"]
    wrong = httpx.post(f"{guarded.url}/mcp", json=body, headers={**headers, "Authorization": "Bearer nope"},
                       timeout=30)
    assert wrong.status_code == 401
