"""`Assistant`: the public facade that ties settings, store, retrieval and answering together."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from rag.answer.extractive import ExtractiveAnswerer
from rag.chat import History, queries_for
from rag.embedding import Embedder
from rag.errors import RagError
from rag.retrieve import Mode, Retriever
from rag.settings import Settings
from rag.store import Store
from rag.types import Answer, Hit

MAX_QUESTION_CHARS = 4000


class Assistant:
    """Answers questions from the indexed documents, citing the passages it quotes.

    Safe to share between threads. Build one with `Assistant.open()`.

    Example:
        >>> assistant = Assistant.open()
        >>> answer = assistant.ask("How many 910C processors will Huawei make?")
        >>> print(answer.text)          # quoted sentence(s) with [n] markers
        >>> answer.citations[0].quote   # the sentence, verbatim, with .source, .start, .end
    """

    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings)
        self.embedder = embedder or Embedder(settings.embed_model, settings.embed_batch_size)
        self.retriever = Retriever(settings, self.store, self.embedder)

    @classmethod
    def open(cls, settings: Settings | None = None) -> Assistant:
        """Open the index the settings point at (default: `RAG_*` variables).

        Raises:
            IndexMissingError: nothing has been ingested yet.
            IndexMismatchError: the index was built with other model or chunking settings.
        """
        assistant = cls(settings or Settings.load())
        assistant.retriever.current()
        return assistant

    def retrieve(self, question: str, k: int | None = None, mode: Mode | None = None) -> list[Hit]:
        """The `k` passages that best match `question`, best first."""
        return self.retriever.search([_clean(question)], k, mode)

    def ask(self, question: str, history: History | None = None, k: int | None = None,
            mode: Mode | None = None) -> Answer:
        """Answer `question`, given the conversation so far (oldest turn first).

        `history` holds `{"role": "user" | "assistant", "content": str}` dicts or `Turn`s.
        """
        began = time.perf_counter()
        question = _clean(question)
        queries = queries_for(question, history)
        hits = self.retriever.search(queries, k, mode)
        retrieved = time.perf_counter()
        _, lexical = self.retriever.current()
        answerer = ExtractiveAnswerer(lexical.idf, self.settings.abstain_below, self.settings.max_sentences)
        draft = answerer.answer(queries[0], hits)
        done = time.perf_counter()
        return Answer(
            question=question, text=draft.text, citations=draft.citations, hits=tuple(hits),
            abstained=draft.abstained, standalone_question=queries[0],
            timings_ms={"retrieve": (retrieved - began) * 1000, "answer": (done - retrieved) * 1000,
                        "total": (done - began) * 1000},
        )

    def stream(self, question: str, history: History | None = None, k: int | None = None,
               mode: Mode | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text in pieces (sentence by sentence), then the finished `Answer`."""
        answer = self.ask(question, history, k, mode)
        pieces = answer.text.split("] ") if not answer.abstained else [answer.text]
        for i, piece in enumerate(pieces):
            yield piece + ("] " if i < len(pieces) - 1 else "")
        yield answer

    def status(self) -> dict[str, Any]:
        """What the index holds: documents, chunks, model, fingerprint, last ingest, location."""
        index, _ = self.retriever.current()
        meta = index.metadata
        last = meta.get("last_ingest")
        return {
            "documents": len(index.files()),
            "chunks": index.count(),
            "model": meta.get("embed_model"),
            "dimension": meta.get("dimension"),
            "fingerprint": {k: meta[k] for k in ("embed_model", "dimension", "chunk_tokens", "chunk_overlap",
                                                 "chunker", "parser") if k in meta},
            "last_ingest": datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds") if last else None,
            "location": self.store.location,
        }


def _clean(question: str) -> str:
    question = " ".join(str(question).split())
    if not question:
        raise RagError("the question is empty; type a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise RagError(f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}")
    return question
