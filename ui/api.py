"""The HTTP API under `/v1`: ask, OpenAI-compatible chat completions (citations kept), status, and the
documents: upload, list, remove, read again, open the original file or its text at a quote."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest import library
from ingest.watch import Watcher
from rag.assistant import Assistant
from rag.collections import CollectionError, CollectionNotFoundError, Collections
from rag.errors import IndexMissingError, IngestLockedError, RagError, StoreError
from rag.memory import memory_mib
from rag.text import count_tokens
from rag.types import Answer, Mode
from ui import render
from ui.access import Access, Person, Refused
from ui.conversations import ConversationNotFoundError, Conversations

MODEL = "rag"
Named = Annotated[str | None, Query(description="The collection (default: the server's).")]


class Turn(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    question: str = Field(description="The question.")
    history: list[Turn] = Field(default_factory=list, description="Earlier turns of the conversation, oldest first.")
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: RAG_K).")
    mode: Mode | None = Field(None, description="Retrieval mode (default: RAG_MODE).")
    sources: list[str] | None = Field(
        None, description="Answer only from the indexed documents these glob patterns match (the source, "
                          "`corpus/notes/*.md`, or its file name, `*.pdf`); none or [] means every document.")
    collection: str | None = Field(None, description="The collection to ask (default: the server's).")
    conversation: str | None = Field(
        None, description="Save the question and answer: `new` starts a saved conversation, an id continues one "
                          "(its turns are the history; its collection is used). The answer then names it.")


class Rename(BaseModel):
    title: str = Field(description="The conversation's new title.")


class ChatMessage(BaseModel):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: str = MODEL
    messages: list[ChatMessage]
    stream: bool = False
    sources: list[str] | None = Field(None, description="As in /v1/ask: limit the answer to some documents "
                                                        "(an extra field; OpenAI clients send it as extra_body).")
    model_config = {"extra": "allow"}  # temperature, max_tokens...: accepted and ignored


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    """An OpenAI-shaped error body, so that OpenAI clients show the message."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


def rag_error(_: Request, exc: Exception) -> JSONResponse:
    """A `RagError` a route raised, as a response (the app's one handler for them, `ui.server`): 503 while there
    is no index or the store is unreachable, 404 for a document not indexed, 409 while an ingest writes,
    otherwise 400."""
    if isinstance(exc, Refused):
        return error(exc.status, str(exc), "permission_error" if exc.status == 403 else "authentication_error")
    if isinstance(exc, IndexMissingError):
        return error(503, str(exc), "index_missing")
    if isinstance(exc, StoreError):
        return error(503, str(exc), "store_unavailable")
    if isinstance(exc, library.DocumentNotFoundError | CollectionNotFoundError | ConversationNotFoundError):
        return error(404, str(exc), "not_found")
    if isinstance(exc, IngestLockedError):
        return error(409, str(exc), "ingest_running")
    return error(400, str(exc))


def asker(request: Request) -> Person:
    """The person the router's guard found for this request (it runs first and keeps them on the request)."""
    found = getattr(request.state, "person", None)
    if not isinstance(found, Person):
        raise RuntimeError("the API's guard did not run before its route")
    return found


Who = Annotated[Person, Depends(asker)]


def router(assistant: Assistant, access: Access, guard: Callable[..., Person],
           watcher: Watcher | None = None) -> APIRouter:
    """The `/v1` routes over a shared `Assistant` (the server's collection; a request may name another), each
    behind `guard` (who is asking) and held to that person's roles on the collection (`ui.access`)."""
    api = APIRouter(prefix="/v1", dependencies=[Depends(guard)])
    slots = threading.BoundedSemaphore(assistant.settings.concurrency)  # questions answered at once
    saved = Conversations(assistant.base_settings.users)

    def pick(who: Person, name: str | None, role: str = "reader") -> Assistant:
        return access.collection(who, assistant, name, role)

    def answer(chosen: Assistant, question: str, history: list[dict[str, str]], k: int | None = None,
               mode: Mode | None = None, sources: list[str] | None = None) -> Answer:
        with slots:
            return chosen.ask(question, history, k=k, mode=mode, sources=sources)

    @api.post("/ask", summary="Answer a question with citations (the JSON of `rag ask --json`); with "
                              "`conversation`, saved")
    def ask(body: AskRequest, who: Who) -> Any:
        if body.conversation is None:
            return answer(pick(who, body.collection), body.question, [t.model_dump() for t in body.history],
                          body.k, body.mode, body.sources).to_dict()
        if body.conversation == "new":
            chosen = pick(who, body.collection)
            ident, history = "", [t.model_dump() for t in body.history]
        else:
            found, _ = saved.get(who.name, body.conversation)
            chosen = pick(who, named(found.collection))
            ident, history = found.id, saved.history(who.name, found.id)
        result = answer(chosen, body.question, history, body.k, body.mode, body.sources).to_dict()
        ident = ident or saved.start(who.name, chosen.collection_key, body.question)
        saved.add(who.name, ident, body.question, result)
        return {**result, "conversation": ident}

    def named(key: str) -> str:
        """A collection's name from its key (a removed one: a name no collection has)."""
        listed = {c.key: c.name for c in Collections(assistant.base_settings).list()}
        return listed.get(key, f"(removed {key})")

    @api.get("/conversations", summary="Your saved conversations, newest first")
    def conversations(who: Who, collection: Named = None) -> Any:
        keys = {pick(who, collection).collection_key} if collection else \
            {c.key for c in Collections(assistant.base_settings).list() if who.may(c.key, "reader")}
        return {"conversations": [{"id": c.id, "title": c.title, "collection": named(c.collection),
                                   "created": c.created, "updated": c.updated, "turns": c.turns}
                                  for c in saved.of(who.name, keys)]}

    @api.get("/conversations/{ident}", summary="A saved conversation: each question and its answer, each "
                                              "citation marked `current` or not (its source changed since)")
    def conversation(ident: str, who: Who) -> Any:
        found, turns = saved.get(who.name, ident)
        chosen = pick(who, named(found.collection))
        ids = [c["chunk_id"] for _, a in turns for c in a.get("citations", [])]
        held = chosen.indexed(ids)
        for _, answered in turns:
            for citation in answered.get("citations", []):
                citation["current"] = citation["chunk_id"] in held
        return {"id": found.id, "title": found.title, "collection": chosen.collection_name,
                "created": found.created, "updated": found.updated,
                "turns": [{"question": q, "answer": a} for q, a in turns]}

    @api.patch("/conversations/{ident}", summary="Rename a saved conversation")
    def rename_conversation(ident: str, body: Rename, who: Who) -> Any:
        saved.rename(who.name, ident, body.title)
        return {"id": ident, "title": saved.get(who.name, ident)[0].title}

    @api.delete("/conversations/{ident}", summary="Delete a saved conversation")
    def delete_conversation(ident: str, who: Who) -> Any:
        saved.delete(who.name, ident)
        return {"id": ident, "deleted": True}

    @api.get("/collections", summary="The collections this server answers from (`rag collections`), and the one "
                                     "requests that name none use")
    def collections(who: Who) -> Any:
        mine = access.readable(who, assistant)
        return {"collections": mine, "default": assistant.collection_name if assistant.collection_name in mine
                else None}

    @api.get("/models", summary="The models this server offers OpenAI clients: `rag` (the server's collection) "
                                "and each collection by name")
    def models(who: Who) -> dict[str, Any]:
        own = assistant.collection_name  # `rag`: listed once
        mine = access.readable(who, assistant)
        names = [MODEL] * (own in mine) + [name for name in mine if name != own]
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "rag"}
                                           for name in names]}

    @api.post("/chat/completions", summary="OpenAI-compatible chat; citations in a `citations` field; `model` "
                                           "names a collection (`rag`: the server's)")
    def chat(body: ChatRequest, who: Who) -> Any:
        try:
            chosen = pick(who, None if body.model == MODEL else body.model)
        except CollectionError:
            return error(404, f"model {body.model!r} does not exist; use {MODEL!r} or a collection's name "
                              "(GET /v1/models lists them)")
        turns = [(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1][0] != "user":
            return error(400, "the last message must come from the user; add the question as a user message")
        history = [{"role": role, "content": content} for role, content in turns[:-1]]
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            pieces = chosen.stream(turns[-1][1], history, sources=body.sources)
            with slots:
                first = next(pieces)  # the question is checked and answered here: errors get a status code
            return StreamingResponse(_sse(ident, created, first, pieces), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        result = answer(chosen, turns[-1][1], history, sources=body.sources)
        prompt = sum(count_tokens(content) for _, content in turns)
        completion = count_tokens(result.text)
        return {
            "id": ident, "object": "chat.completion", "created": created, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
            **_extra(result),
        }

    @api.get("/status", summary="What the index holds, the watched folders (pending changes, last sync), "
                                "and this server process's memory")
    def status(who: Who, collection: Named = None) -> Any:
        chosen = pick(who, collection)
        watch = watcher.state.to_dict() if watcher is not None and chosen is assistant else None
        try:
            return {**chosen.status(), "watch": watch, "process": process_memory()}
        except IndexMissingError as exc:
            if watch is not None and (watch["syncing"] or not watch["syncs"]):  # the first sync is building it
                return error(503, f"{exc}; the first sync of the watched folders is building it", "index_missing")
            raise

    @api.post("/documents", summary="Upload documents (.txt .md .html .pdf .docx .pptx .xlsx .csv; images with OCR)")
    async def documents(files: Annotated[list[UploadFile], File()], replace: Annotated[bool, Form()] = False,
                        collection: Annotated[str | None, Form()] = None, *, who: Who) -> Any:
        chosen = pick(who, collection, "editor")
        limit = chosen.settings.max_file_bytes
        items = [(f.filename or "", await f.read(limit + 1)) for f in files]  # one byte more shows "too large"
        results = await run_in_threadpool(library.add_documents, chosen, items, replace)
        body = {"results": [{"name": r.name, "outcome": r.outcome, "reason": r.reason, "source": r.source}
                            for r in results]}
        return JSONResponse(body, status_code=200 if any(r.ok for r in results) else 400)

    @api.get("/documents", summary="The indexed documents, a page at a time, and the files the last ingest "
                                   "could not read")
    def list_documents(offset: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 100, collection: Named = None, *,
                       who: Who) -> Any:
        return render.listing(pick(who, collection), offset, limit)

    @api.get("/documents/{source:path}/file", summary="The original file of an indexed document "
                                                       "(a PDF opens at #page=N)")
    def document_file(source: str, who: Who, collection: Named = None) -> Any:
        path = library.original(pick(who, collection), source)
        media, disposition = render.file_type(path)
        return FileResponse(path, media_type=media, content_disposition_type=disposition, filename=path.name,
                            headers={"X-Content-Type-Options": "nosniff",
                                     **({} if media == "application/pdf" else {"Content-Security-Policy": "sandbox"})})

    @api.get("/documents/{source:path}/view", summary="An indexed document's text as it was indexed, the "
                                                       "characters start-end marked and scrolled into view")
    def document_view(source: str, start: Annotated[int, Query(ge=0)] = 0,
                      end: Annotated[int, Query(ge=0)] = 0, collection: Named = None, *, who: Who) -> Any:
        record, text, current = library.document_text(pick(who, collection), source)
        return HTMLResponse(render.document_page(record, text, start, end, current),
                            headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                                "script-src 'unsafe-inline'"})

    @api.delete("/documents/{source:path}", summary="Remove a document from the index for good (an upload is "
                                                     "deleted; another file is added to its folder's .ragignore)")
    def delete_document(source: str, who: Who, collection: Named = None) -> Any:
        removal = library.remove_document(pick(who, collection, "editor"), source)
        return {"source": removal.source, "removed": removal.how, "detail": removal.detail}

    @api.post("/documents/{source:path}/reindex", summary="Read a document again from its file, even if unchanged")
    def reindex(source: str, who: Who, collection: Named = None) -> Any:
        report = library.reindex_document(pick(who, collection, "editor"), source)
        return {"source": source, "summary": report.summary(), "failed": report.failed}

    return api


def process_memory() -> dict[str, Any]:
    """This process: pid, resident memory now and its peak (MiB), from Linux's VmRSS and VmHWM.

    Read over HTTP, so `rag bench load` can watch a remote server's memory; `None` where there is
    no `/proc` (macOS, Windows).
    """
    memory = memory_mib()
    return {"pid": os.getpid(), "rss_mib": memory["rss"], "peak_rss_mib": memory["peak"]}


def _extra(result: Answer) -> dict[str, Any]:
    """What an OpenAI response carries besides the text: the citations, confidence and how the question was read.

    `confidence` is `high`, `low` or null (an abstention); `passages` holds the closest passages of an
    abstention, best first (empty otherwise), as in the JSON of `rag ask --json`.
    """
    return {key: value for key, value in result.to_dict().items()
            if key in ("citations", "sentences", "abstained", "confidence", "passages", "standalone_question",
                       "backend", "fallback", "cut")}


def _sse(ident: str, created: int, first: str | Answer, rest: Iterator[str | Answer]) -> Iterator[str]:
    """Server-sent chat-completion chunks: the role, the text as it comes, a last chunk with the citations."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
        body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for piece in itertools.chain([first], rest):
            yield chunk({}, "stop", **_extra(piece)) if isinstance(piece, Answer) else chunk({"content": piece})
    except RagError as exc:  # the model failed after some sentences were sent: say so in the stream
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error'}})}\n\n"
    yield "data: [DONE]\n\n"
