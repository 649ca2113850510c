"""The generative path against a real model server: llama-cpp-python's OpenAI-compatible server running
Qwen2.5-Coder-0.5B-Instruct (a small instruct model from PyPI) on 127.0.0.1, started as `make llm` starts it.

Whatever the model writes, no prompt markup reaches the user, every sentence shown has a verdict, every
marker names a real passage whose quote stands at its span in the source, unsupported sentences are flagged,
and a failure (timeout, a server killed mid-answer) falls back, saying why. One test asks for the fact itself,
of the 1.5B model `make llm` serves: it answers the question whose answer the passages hold, citing the sentence
that gives it.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import openai
import pytest
from gradio_client import Client

from ingest.limits import Limits
from ingest.sources import SourceFile, read_document
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.settings import Settings
from rag.types import Answer
from tests.helpers import HIGH_QUESTION, indexed_copy, run_rag, serving
from tests.llm_servers import LARGER, MODEL, llama_server

# What the prompt looks like: none of it may appear in what the user is shown.
MARKUP = re.compile(r"<\s*/?\s*passages?\b|<<\s*/?SYS>>|\[/?INST\]|<start_of_turn>|<end_of_turn>|"
                    r"^\s*(Question|Passages|Rules)\s*:", re.I | re.M)
FOLLOW_UP = "And what are its yields?"
pytestmark = pytest.mark.server  # every test runs a real model server


@pytest.fixture(scope="module")
def real_llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with llama_server(tmp_path_factory.mktemp("llama") / "server.log") as (url, _):
        yield url


def env_for(url: str, **more: str) -> dict[str, str]:
    return {"RAG_LLM": "openai", "RAG_LLM_BASE_URL": url, "RAG_LLM_MODEL": MODEL, **more}


def _assistant(home: Path, embedder: Embedder, url: str, **settings: Any) -> Assistant:
    return Assistant(Settings.load(home=home / ".rag", corpus=home / "corpus", llm="openai", llm_model=MODEL,
                                   llm_base_url=url, **settings), embedder=embedder)


def _texts(corpus: Path) -> dict[str, str]:
    return {f"corpus/{p.name}": read_document(SourceFile(p, f"corpus/{p.name}"), Limits()).text
            for p in corpus.glob("*.md")}


def check(answer: dict[str, Any], url: str, texts: dict[str, str]) -> None:
    """The protocol and checking rules every answer keeps, whatever the model wrote."""
    assert not MARKUP.search(answer["answer"]), answer["answer"]
    numbers = {c["n"] for c in answer["citations"]}
    for citation in answer["citations"]:  # every quote is verbatim at its span in the source
        assert texts[citation["source"]][citation["start"]:citation["end"]] == citation["quote"]
    if answer["fallback"] is None:  # the model's own answer: checked sentence by sentence
        assert answer["backend"] == f"openai:{MODEL}"
        assert answer["sentences"] and all(s["verdict"] in ("supported", "weak", "unsupported")
                                           for s in answer["sentences"])
        assert any(s["verdict"] == "supported" for s in answer["sentences"])  # else the fallback takes over
        for sentence in answer["sentences"]:
            assert set(sentence["citations"]) <= numbers  # markers name real passages
            if sentence["verdict"] == "unsupported":
                assert sentence["citations"] == [] or all(
                    c["verdict"] == "unsupported" for c in answer["citations"] if c["n"] in sentence["citations"])
    else:  # replaced by the extractive answer, which says why
        assert answer["backend"] == "extractive" and answer["fallback"].startswith(f"openai at {url}: ")


def test_rag_ask_against_the_real_model(seed_home: Path, real_llm: str) -> None:
    texts = _texts(seed_home / "corpus")
    for question in (HIGH_QUESTION, "What share of the Chinese AI chip market has Huawei captured?"):
        done = run_rag("ask", question, "--json", home=seed_home / ".rag", env=env_for(real_llm))
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        check(answer, real_llm, texts)
        assert answer["citations"] and not answer["abstained"]
        # A fallback here comes from the check (the model answered, badly), not from a protocol failure.
        assert answer["fallback"] is None or re.search(
            r": (the model wrote no answer sentence|no sentence of the model's answer is supported|the model said "
            r"the passages do not answer, but one answers with high confidence)", answer["fallback"])
        assert answer["timings_ms"]["answer"] < 120_000  # RAG_LLM_ANSWER_S


def test_the_packaged_model_answers_with_the_fact_and_cites_the_sentence_that_gives_it(
        tmp_path: Path, seed_home: Path, embedder: Embedder) -> None:
    # The model `make llm` serves (the 0.5B one answers this with the older chip's figure).
    with llama_server(tmp_path / "server.log", LARGER) as (url, _):
        answer = Assistant(Settings.load(home=seed_home / ".rag", corpus=seed_home / "corpus", llm="openai",
                                         llm_model=LARGER, llm_base_url=url), embedder=embedder).ask(HIGH_QUESTION)
    assert answer.backend == f"openai:{LARGER}" and answer.fallback is None, answer.fallback
    assert "100,000" in answer.text and answer.confidence == "high"
    assert any("100,000" in c.quote and c.verdict == "supported" for c in answer.citations)


def test_follow_ups_are_condensed_by_the_real_model_or_resolved_without_it(
        seed_home: Path, embedder: Embedder, real_llm: str) -> None:
    assistant = _assistant(seed_home, embedder, real_llm)
    first = assistant.ask(HIGH_QUESTION)
    follow = assistant.ask(FOLLOW_UP, [{"role": "user", "content": HIGH_QUESTION},
                                       {"role": "assistant", "content": first.text}])
    standalone = follow.standalone_question
    assert standalone and len(standalone) <= 300 and not MARKUP.search(standalone)
    assert "Rewrite the user's last question" not in standalone
    check(follow.to_dict(), real_llm, _texts(seed_home / "corpus"))


def test_a_timeout_falls_back_and_names_the_setting(seed_home: Path, embedder: Embedder, real_llm: str) -> None:
    # Reading a prompt of about 1,500 tokens takes this model seconds on two cores: 0.2 s is never enough.
    answer = _assistant(seed_home, embedder, real_llm, llm_timeout_s=0.2).ask(HIGH_QUESTION)
    assert answer.backend == "extractive" and answer.citations
    assert answer.fallback == (f"openai at {real_llm}: no answer within 0.2 s; raise RAG_LLM_TIMEOUT_S or use a "
                               "faster model")


def test_a_server_killed_mid_answer_falls_back(tmp_path: Path, seed_home: Path, embedder: Embedder) -> None:
    with llama_server(tmp_path / "server.log") as (url, proc):
        assistant = _assistant(seed_home, embedder, url)
        result: list[Answer] = []
        asking = threading.Thread(target=lambda: result.append(assistant.ask(HIGH_QUESTION)))
        asking.start()
        time.sleep(1.0)  # retrieval is done and the server is reading the prompt
        proc.send_signal(signal.SIGKILL)
        asking.join(timeout=60)
    answer = result[0]
    assert answer.backend == "extractive" and answer.citations
    assert answer.fallback is not None and answer.fallback.startswith(f"openai at {url}: ")
    assert "dropped" in answer.fallback or "cannot connect" in answer.fallback


def test_streaming_through_rag_serve_and_the_page(tmp_path: Path, embedder: Embedder, real_llm: str) -> None:
    base = indexed_copy(tmp_path, embedder)
    texts = _texts(base / "corpus")
    with serving(base, env=env_for(real_llm)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=180)
        pieces, final = [], None
        for chunk in client.chat.completions.create(model="rag", stream=True,
                                                    messages=[{"role": "user", "content": HIGH_QUESTION}]):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            final = chunk
        streamed = "".join(pieces)
        assert streamed.strip() and not MARKUP.search(streamed)
        assert final is not None and final.model_extra  # the last chunk: citations, verdicts, fallback
        check({"answer": streamed, **final.model_extra}, real_llm, texts)

        with closing(Client(url, verbose=False)) as page:
            _, shown, _ = page.submit(HIGH_QUESTION, [], 5, "hybrid", api_name="/chat").result(timeout=180)
        said = shown[-1]["content"]
        said = said if isinstance(said, str) else "".join(p.get("text", "") for p in said)
        assert 'class="cite"' in said and "&lt;passage" not in said and "<<SYS>>" not in said
        assert "language model's answer was not used" in said or 'class="answer' in said
