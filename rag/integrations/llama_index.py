"""The assistant as llama-index parts: `RagRetriever` (our hybrid, snapshot-consistent retrieval) and
`RagQueryEngine` (our checked, cited answers), for pipelines that already use llama-index.

Nothing here reads or sets llama-index's global `Settings`. Example:

    >>> from llama_index.core.query_engine import RetrieverQueryEngine
    >>> from rag.integrations.llama_index import RagQueryEngine, RagRetriever
    >>> nodes = RagRetriever().retrieve("Huawei Ascend yields")        # NodeWithScore, best first
    >>> response = RagQueryEngine().query("How many 910C processors will Huawei make?")
    >>> response.response, response.source_nodes[0].node.metadata["quote"]
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.response.schema import Response
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.assistant import Assistant
from rag.settings import Settings
from rag.types import Answer, Citation, Hit, Mode

# Metadata kept out of what llama-index embeds or shows an LLM (it is ours, for citing).
_HIDDEN = ["source", "start", "end", "chunk_index", "dense_score", "bm25_score", "n", "quote", "quote_start",
           "quote_end", "verdict", "support"]


def _assistant(settings: Settings | None, assistant: Assistant | None) -> Assistant:
    if assistant is not None and settings is not None:
        raise ValueError("give settings or an assistant, not both")
    return assistant or Assistant(settings or Settings.load())


def hit_node(hit: Hit, score: float | None = None, **extra: Any) -> NodeWithScore:
    """A retrieved chunk as a llama-index node: its text, id, character span in its source and where it is."""
    c = hit.chunk
    metadata = {"source": c.source, "title": c.title, "start": c.start, "end": c.end, "page": c.page,
                "headings": " > ".join(c.headings), "chunk_index": c.index, "dense_score": hit.dense_score,
                "bm25_score": hit.bm25_score, **extra}
    node = TextNode(id_=c.id, text=c.text, metadata=metadata, start_char_idx=c.start, end_char_idx=c.end,
                    excluded_embed_metadata_keys=list(_HIDDEN), excluded_llm_metadata_keys=list(_HIDDEN))
    return NodeWithScore(node=node, score=hit.score if score is None else score)


class RagRetriever(BaseRetriever):
    """A llama-index retriever over the index `settings` name (default: the `RAG_*` variables).

    Args:
        settings: Where the index is and how to search it; or give `assistant` to share a loaded one.
        k: Passages per query (default `RAG_K`).
        mode: `dense`, `bm25` or `hybrid` (default `RAG_MODE`).
        sources: Only documents these glob patterns match (as `Assistant.retrieve`).
    """

    def __init__(self, settings: Settings | None = None, *, assistant: Assistant | None = None, k: int | None = None,
                 mode: Mode | None = None, sources: Sequence[str] | None = None,
                 callback_manager: CallbackManager | None = None) -> None:
        super().__init__(callback_manager=callback_manager)
        self.assistant = _assistant(settings, assistant)
        self.k, self.mode, self.sources = k, mode, list(sources or [])

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.assistant.retrieve(query_bundle.query_str, self.k, self.mode, self.sources)
        return [hit_node(hit) for hit in hits]


class RagQueryEngine(BaseQueryEngine):
    """A llama-index query engine whose response is the assistant's checked, cited answer.

    `Response.response` is the answer text with its `[n]` markers. `source_nodes` holds, for each
    citation in order, the chunk it quotes, with `n`, `quote`, `quote_start`/`quote_end` (the quote's
    span in the source), `verdict` and `support` in its metadata and the support as its score; an
    abstention's `source_nodes` are the closest passages instead. `Response.metadata` is the answer's
    JSON (`rag ask --json`): confidence, abstained, sentences, backend, fallback, standalone_question.
    """

    def __init__(self, settings: Settings | None = None, *, assistant: Assistant | None = None,
                 sources: Sequence[str] | None = None, callback_manager: CallbackManager | None = None) -> None:
        super().__init__(callback_manager=callback_manager)
        self.assistant = _assistant(settings, assistant)
        self.sources = list(sources or [])

    def _query(self, query_bundle: QueryBundle) -> Response:
        return to_response(self.assistant.ask(query_bundle.query_str, sources=self.sources))

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return await asyncio.to_thread(self._query, query_bundle)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}


def to_response(answer: Answer) -> Response:
    """An `Answer` as a llama-index `Response` (see `RagQueryEngine`)."""
    by_id = {hit.chunk.id: hit for hit in answer.hits}
    nodes = [hit_node(hit) for hit in answer.closest()] if answer.abstained else [
        _cited(citation, by_id[citation.chunk_id]) for citation in answer.citations if citation.chunk_id in by_id]
    data = answer.to_dict()
    metadata = {key: data[key] for key in ("question", "abstained", "confidence", "sentences", "standalone_question",
                                           "backend", "fallback", "cut")}
    return Response(response=answer.text, source_nodes=nodes, metadata=metadata)


def _cited(citation: Citation, hit: Hit) -> NodeWithScore:
    return hit_node(hit, citation.support, n=citation.n, quote=citation.quote, quote_start=citation.start,
                    quote_end=citation.end, verdict=citation.verdict, support=citation.support)
