"""`Assistant`: the public facade that ties settings, store, retrieval and answering together."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from rag.answer import Answerer, Draft, Query
from rag.answer.backend import Backend
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm import LLMAnswerer
from rag.chat import History, clean_text, normalise, queries_for
from rag.collections import Collections
from rag.embedding import Embedder, embedder_for
from rag.errors import LLMError, RagError
from rag.index.store import Store
from rag.models.selector import Selector
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.support import SupportChecker
from rag.types import Answer, Chunk, FileRecord, Hit, Mode

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

    def __init__(self, settings: Settings, store: Store | None = None, embedder: Embedder | None = None,
                 selector: Selector | None = None) -> None:
        self.settings = settings
        self.store = store or Store(settings)
        self.embedder = embedder or embedder_for(settings)
        self.retriever = Retriever(settings, self.store, self.embedder)
        # loaded on its first question; the assistants of other collections share this one's
        self.selector = selector if selector is not None else Selector() if settings.selector else None
        self._lock = threading.Lock()
        self._llm: Backend | None = None
        self._base = settings  # the settings the collections are named in (RAG_HOME's)
        self._key = ""  # this one's collection: "" is the default
        self._siblings: dict[str, Assistant] = {"": self}  # every collection's assistant, by key, shared by all

    @classmethod
    def open(cls, settings: Settings | None = None, collection: str | None = None) -> Assistant:
        """Open the index the settings point at (default: `RAG_*` variables), or that of `collection`.

        Raises:
            CollectionNotFoundError: there is no collection of that name.
            IndexMissingError: nothing has been ingested yet.
            IndexMismatchError: the index was built with other model or chunking settings.
        """
        assistant = cls(settings or Settings.load()).collection(collection)
        assistant.retriever.current()
        return assistant

    def collection(self, name: str | None) -> Assistant:
        """The assistant of collection `name` (`rag.collections`; None or "default": RAG_HOME's own index),
        sharing this one's embedding model and answer selector; made once, then kept.

        Raises:
            CollectionNotFoundError: there is no collection of that name.
        """
        collections = Collections(self._base)
        found = collections.get(name)
        if found.key == self._key:
            return self
        with self._lock:
            sibling = self._siblings.get(found.key)
            if sibling is None:
                sibling = Assistant(collections.settings_of(found), embedder=self.embedder, selector=self.selector)
                sibling._base, sibling._key, sibling._siblings = self._base, found.key, self._siblings
                self._siblings[found.key] = sibling
            return sibling

    @property
    def base_settings(self) -> Settings:
        """The settings the collections are named in (`RAG_HOME`'s), whichever collection this one is."""
        return self._base

    @property
    def collection_key(self) -> str:
        """The fixed key of this assistant's collection (`rag.collections`; "" for the default one)."""
        return self._key

    def collections(self) -> list[str]:
        """The names of the collections, `default` first (`rag collections list`)."""
        return [c.name for c in Collections(self._base).list()]

    @property
    def collection_name(self) -> str:
        """The name of this assistant's collection now (a rename elsewhere shows at once)."""
        return next((c.name for c in Collections(self._base).list() if c.key == self._key), self._key)

    def retrieve(self, question: str, k: int | None = None, mode: Mode | None = None,
                 sources: Sequence[str] | None = None) -> list[Hit]:
        """The `k` passages that best match `question`, best first (from the documents `sources` matches)."""
        return self.retriever.search([_clean(question)], k, mode, sources or None)

    def ask(self, question: str, history: History | None = None, k: int | None = None,
            mode: Mode | None = None, sources: Sequence[str] | None = None) -> Answer:
        """Answer `question`, given the conversation so far (oldest turn first).

        `history` holds `{"role": "user" | "assistant", "content": str}` dicts or `Turn`s. `sources`
        limits the answer to some documents: glob patterns matched against each indexed source
        (`corpus/reports/*.pdf`) or its file name (`*.pdf`, `gfs.pdf`); none or an empty list means
        every document, and patterns that match no indexed document raise `SourceFilterError`.
        """
        *_, answer = self.stream(question, history, k, mode, sources)
        assert isinstance(answer, Answer)
        return answer

    def stream(self, question: str, history: History | None = None, k: int | None = None,
               mode: Mode | None = None, sources: Sequence[str] | None = None) -> Iterator[str | Answer]:
        """Yield the answer's text in pieces as they are ready (whole, checked sentences), then the `Answer`.

        With a generative backend (`RAG_LLM`), a failure before any text was sent falls back to
        the extractive answerer (the `Answer` says why in `fallback`) unless `RAG_LLM_FALLBACK` is
        off; a failure after some text was sent raises `LLMError`.
        """
        began = time.perf_counter()
        question = _clean(question)
        _, lexical = self.retriever.current()
        queries, hits = self._retrieve(question, history, k, mode, sources or None)
        retrieved = time.perf_counter()
        extractive = ExtractiveAnswerer(lexical.weight, self.embedder, self.settings.abstain_below,
                                        self.settings.max_sentences, self.selector)
        query = Query(question, queries[0], tuple(t.content for t in normalise(history) if t.role == "assistant"))
        answerer: Answerer = extractive
        if self.settings.llm != "extractive":
            answerer = LLMAnswerer(self._backend(), SupportChecker(self.embedder, lexical.idf), extractive)
        draft: Draft | None = None
        fallback = None
        sent = False

        def relay(source: Answerer) -> Iterator[str]:
            """The answerer's text pieces; its final draft is kept aside."""
            nonlocal draft
            for piece in source.stream(query, hits):
                if isinstance(piece, Draft):
                    draft = piece
                else:
                    yield piece

        try:
            for piece in relay(answerer):
                sent = True
                yield piece
        except LLMError as exc:
            if sent or not self.settings.llm_fallback:
                raise
            fallback, answerer = str(exc), extractive
            yield from relay(extractive)
        assert draft is not None
        done = time.perf_counter()
        yield Answer(
            question=question, text=draft.text, citations=draft.citations, hits=tuple(hits),
            abstained=draft.abstained, standalone_question=queries[0], confidence=draft.confidence,
            sentences=draft.sentences,
            backend=answerer.name, fallback=fallback, packed=draft.packed, dropped=draft.dropped, cut=draft.cut,
            timings_ms={"retrieve": (retrieved - began) * 1000, "answer": (done - retrieved) * 1000,
                        "total": (done - began) * 1000},
        )

    def _retrieve(self, question: str, history: History | None, k: int | None,
                  mode: Mode | None, sources: Sequence[str] | None) -> tuple[list[str], list[Hit]]:
        """The queries (standalone one first) and hits for a question in its conversation.

        A follow-up is resolved deterministically; with a generative backend the model also
        condenses it, and its version is kept unless it retrieves worse (lower best similarity)
        or the call fails.
        """
        queries = queries_for(question, history)
        hits = self.retriever.search(queries, k, mode, sources)
        if len(queries) == 1 or self.settings.llm == "extractive":
            return queries, hits
        try:
            condensed = self._backend().condense(question, [(t.role, t.content) for t in normalise(history)])
        except LLMError:
            return queries, hits
        mine = self.retriever.search([condensed], k, mode, sources)
        if _best(mine) >= _best(hits):
            return [condensed], mine
        return queries, hits

    def warm_up(self) -> None:
        """Load the embedding model (and the answer selector) now, so that the first question does not wait."""
        self.embedder.embed(["warm up"])
        if self.selector is not None:
            self.selector.scores("warm up", ["warm up"])

    def refresh(self) -> None:
        """Answer from the index as it is now: call after this process wrote to it (uploads)."""
        self.retriever.refresh()

    def passages(self, limit: int) -> list[Chunk]:
        """The first `limit` chunks of the index, in the store's order (the page's example questions)."""
        index, _ = self.retriever.current()
        return [chunk for chunk, _ in islice(index.all_chunks(), limit)]

    def _backend(self) -> Backend:
        """The generative backend, made once (it contacts nothing until the first question)."""
        with self._lock:
            if self._llm is None:
                self._llm = Backend(self.settings)
            return self._llm

    def indexed(self, chunk_ids: Sequence[str]) -> set[str]:
        """Which of these chunk ids the index holds now: a citation of one it does not is out of date (its
        source changed or went since; ids are derived from a passage's source, position and text)."""
        index, _ = self.retriever.current()
        return set(index.get(list(dict.fromkeys(chunk_ids))))  # once each: Chroma refuses repeated ids

    def documents(self) -> dict[str, FileRecord]:
        """The indexed documents, by source (sorted): title, chunks, pages, size, when indexed, file path."""
        index, _ = self.retriever.current()
        return dict(sorted(index.files().items()))

    def status(self) -> dict[str, Any]:
        """What the index holds: documents, chunks, model, fingerprint, last ingest, location, the
        files the last ingest could not read (`failed`: source -> reason) and the files it passed over
        because no reader takes their format (`skipped`: ending -> count)."""
        index, _ = self.retriever.current()
        meta = index.metadata
        last = meta.get("last_ingest")
        return {
            "collection": self.collection_name,
            "documents": index.file_count(),
            "chunks": index.count(),
            "model": meta.get("embed_model"),
            "dimension": meta.get("dimension"),
            "fingerprint": {k: meta[k] for k in ("embed_model", "dimension", "chunk_tokens", "chunk_overlap",
                                                 "chunker", "parser") if k in meta},
            "last_ingest": datetime.fromtimestamp(last, UTC).isoformat(timespec="seconds") if last else None,
            "location": self.store.location,
            "failed": _failed(meta.get("last_failed")),
            "skipped": _skipped(meta.get("last_skipped")),
        }

    def failed(self) -> dict[str, str]:
        """The files the last ingest could not read: source -> reason (without listing the indexed ones)."""
        index, _ = self.retriever.current()
        return _failed(index.metadata.get("last_failed"))


def _failed(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _json_object(value).items()}


def _skipped(value: Any) -> dict[str, int]:
    return {str(k): v for k, v in _json_object(value).items() if isinstance(v, int)}


def _json_object(value: Any) -> dict[Any, Any]:
    """A JSON object stored in the index's metadata; {} when it is missing or not one."""
    try:
        listed = json.loads(value) if isinstance(value, str) else {}
    except ValueError:
        return {}
    return listed if isinstance(listed, dict) else {}


def _best(hits: list[Hit]) -> float:
    return max((h.dense_score or 0.0 for h in hits), default=0.0)


def _clean(question: str) -> str:
    question = " ".join(clean_text(str(question)).split())
    if not question:
        raise RagError("the question is empty; type a question")
    if len(question) > MAX_QUESTION_CHARS:
        raise RagError(f"the question is {len(question)} characters long; keep it under {MAX_QUESTION_CHARS}")
    return question
