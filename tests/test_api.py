"""The HTTP API, its OpenAI-compatible chat and the page's Gradio endpoints, against real `rag serve` processes.

Two servers: the shared no-auth `live` one (conftest) and one module-scoped server with `--auth`,
a bearer token and a tiny upload limit. Everything goes over real HTTP on 127.0.0.1, through
httpx, the official `openai` client and `gradio_client`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, AuthenticationError
from openai import BadRequestError, OpenAI

from ingest.readers.markdown import read_md
from rag.embedding import Embedder
from tests.helpers import HIGH_QUESTION, LOW_QUESTION, OFF_TOPIC_QUESTION, Live, indexed_copy, run_rag, serving

DEEPSEEK = "corpus/deepseek-huawei-nvidia-buying-frenzy.md"
INSIGHTS = "corpus/podcast-insights-china-ai-chips.md"
Q_910C = "How many 910C processors will Huawei make?"
S_910C = "Huawei aims to crank out 100,000 of its latest 910C processors this year."
FOLLOW_UP = "And of the older model?"
S_910B = "They'll make 300,000 of the older 910B chips too."
OFF_TOPIC = "What is the capital of Australia?"
ASK_KEYS = ["question", "answer", "abstained", "confidence", "citations", "passages", "sentences",
            "standalone_question", "backend", "fallback", "cut", "context", "timings_ms"]
CITATION_KEYS = ["n", "source", "title", "quote", "start", "end", "chunk_id", "score", "support", "verdict",
                 "page", "headings"]

USER, PASSWORD = "alice", "secret-pass"
TOKEN = "t" * 24
LIMIT_MB = "0.01"
UID = uuid.uuid4().hex[:8]  # the live corpus folder is shared: every uploaded name carries this
TIMEOUT = 120.0  # uploads embed documents: generous, and never asserted on

ZORBLAX = (b"# The Zorblax 9000 reactor\n\n"
           b"The Zorblax 9000 reactor was built by Quenterra Labs in 2031.\n"
           b"It produces 42 gigawatts of purple plasma from recycled teaspoons.\n")


@pytest.fixture(scope="module")
def api(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def chat_client(live: Live) -> OpenAI:
    return OpenAI(base_url=live.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Live]:
    """`rag serve --auth alice:secret-pass` with a bearer token and a 0.01 MB upload limit."""
    base = indexed_copy(tmp_path_factory.mktemp("secured"), embedder)
    env = {"RAG_API_TOKEN": TOKEN, "RAG_MAX_FILE_MB": LIMIT_MB}
    with serving(base, "--auth", f"{USER}:{PASSWORD}", env=env) as url:
        yield Live(url, base)


def ask(client: httpx.Client, question: str, **more: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question, **more})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def upload(client: httpx.Client, *files: tuple[str, bytes], replace: bool | None = None,
           **request: Any) -> httpx.Response:
    data = {} if replace is None else {"replace": str(replace).lower()}
    return client.post("/v1/documents", files=[("files", (name, body)) for name, body in files], data=data,
                       **request)


def outcomes(response: httpx.Response) -> list[tuple[str, str]]:
    return [(r["name"], r["outcome"]) for r in response.json()["results"]]


def no_temp_files(live: Live) -> bool:
    return not list((live.base / "corpus").glob(".upload-*"))


def cites(data: dict[str, Any], quote: str, source: str = DEEPSEEK) -> bool:
    return any(c["quote"] == quote and c["source"] == source for c in data["citations"])


# --- POST /v1/ask -----------------------------------------------------------------------------------------------


def test_ask_returns_the_json_of_rag_ask(live: Live, api: httpx.Client) -> None:
    data = ask(api, Q_910C)
    assert "[1]" in data["answer"] and not data["abstained"]
    assert data["citations"][0]["quote"] == S_910C and data["citations"][0]["source"] == DEEPSEEK
    assert list(data["citations"][0]) == CITATION_KEYS

    cli = run_rag("ask", Q_910C, "--json", home=live.base / ".rag", env={"RAG_CORPUS": str(live.base / "corpus")})
    assert cli.returncode == 0, cli.stderr
    expected = json.loads(cli.stdout)
    assert list(data) == list(expected) == ASK_KEYS
    assert set(data["timings_ms"]) == set(expected["timings_ms"])
    del data["timings_ms"], expected["timings_ms"]
    assert data == expected


def test_ask_follow_up_reads_the_history(api: httpx.Client) -> None:
    first = ask(api, Q_910C)
    history = [{"role": "user", "content": Q_910C}, {"role": "assistant", "content": first["answer"]}]
    data = ask(api, FOLLOW_UP, history=history)
    assert data["question"] == FOLLOW_UP
    assert data["standalone_question"] != FOLLOW_UP and data["standalone_question"].startswith(Q_910C)
    assert cites(data, S_910B), data["answer"]


def test_ask_off_topic_abstains(api: httpx.Client) -> None:
    data = ask(api, OFF_TOPIC)
    assert data["abstained"] is True and data["citations"] == []
    assert "[1]" not in data["answer"] and "do not answer" in data["answer"]


def test_ask_rejects_bad_requests(api: httpx.Client) -> None:
    empty = api.post("/v1/ask", json={"question": "   "})
    assert empty.status_code == 400
    error = empty.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "empty" in error["message"] and "\n" not in error["message"]

    for history in ([{"role": "bot", "content": "hi"}], [{"role": "user"}], "not a list"):
        malformed = api.post("/v1/ask", json={"question": Q_910C, "history": history})
        assert malformed.status_code == 422, history
        message = malformed.json()["error"]["message"]
        assert message.startswith("invalid request: history") and "\n" not in message
    assert api.post("/v1/ask", json={"question": Q_910C, "k": 0}).status_code == 422
    assert api.post("/v1/ask", json={"history": []}).status_code == 422


# --- POST /v1/chat/completions through the official openai client ------------------------------------------------


def test_openai_chat_completion_keeps_citations(api: httpx.Client, chat_client: OpenAI) -> None:
    completion = chat_client.chat.completions.create(model="rag", messages=[{"role": "user", "content": Q_910C}])
    content = completion.choices[0].message.content or ""
    assert content == ask(api, Q_910C)["answer"] and "[1]" in content
    assert completion.choices[0].finish_reason == "stop" and completion.model == "rag"
    extra = completion.model_extra or {}
    assert extra["abstained"] is False and extra["standalone_question"] == Q_910C
    assert extra["citations"][0]["quote"] == S_910C and extra["citations"][0]["n"] == 1
    assert completion.usage is not None and completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens) > 0


def test_openai_stream_matches_and_ends_with_citations(chat_client: OpenAI) -> None:
    messages: Any = [{"role": "user", "content": Q_910C}]
    whole = chat_client.chat.completions.create(model="rag", messages=messages)
    chunks = list(chat_client.chat.completions.create(model="rag", messages=messages, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) >= 2  # the two cited sentences arrive one by one
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert (last.model_extra or {})["citations"] == (whole.model_extra or {})["citations"]
    assert all("citations" not in (c.model_extra or {}) for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_openai_follow_up_through_messages(chat_client: OpenAI) -> None:
    first = chat_client.chat.completions.create(model="rag", messages=[{"role": "user", "content": Q_910C}])
    follow = chat_client.chat.completions.create(model="rag", messages=[
        {"role": "system", "content": "Answer from the documents."},
        {"role": "user", "content": Q_910C},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": FOLLOW_UP},
    ])
    extra = follow.model_extra or {}
    assert extra["standalone_question"].startswith(Q_910C)
    assert any(c["quote"] == S_910B for c in extra["citations"]), follow.choices[0].message.content


@pytest.mark.parametrize(("question", "confidence"), [
    (HIGH_QUESTION, "high"), (LOW_QUESTION, "low"), (OFF_TOPIC_QUESTION, None)])
def test_confidence_and_closest_passages_over_http(api: httpx.Client, chat_client: OpenAI, question: str,
                                                   confidence: str | None) -> None:
    data = ask(api, question)
    assert data["confidence"] == confidence and data["abstained"] is (confidence is None), data["answer"]
    if confidence is None:  # an abstention carries its closest passages, best first
        similarities = [p["similarity"] for p in data["passages"]]
        assert 1 <= len(similarities) <= 3 and similarities == sorted(similarities, reverse=True)
        assert all(p["source"].startswith("corpus/") and p["text"] for p in data["passages"])
    else:
        assert data["passages"] == [] and data["citations"]

    messages: Any = [{"role": "user", "content": question}]
    whole = chat_client.chat.completions.create(model="rag", messages=messages)
    extra = whole.model_extra or {}
    assert whole.choices[0].message.content == data["answer"]
    assert extra["confidence"] == confidence and extra["passages"] == data["passages"]
    assert extra["abstained"] is data["abstained"] and extra["citations"] == data["citations"]

    chunks = list(chat_client.chat.completions.create(model="rag", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == data["answer"]
    last = chunks[-1].model_extra or {}
    assert last["confidence"] == confidence and last["passages"] == data["passages"]
    assert all("confidence" not in (c.model_extra or {}) for c in chunks[:-1])


def test_openai_errors(chat_client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="does not exist") as missing:
        chat_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": Q_910C}])
    assert missing.value.status_code == 404
    with pytest.raises(openai.BadRequestError, match="last message must come from the user"):
        chat_client.chat.completions.create(model="rag", messages=[{"role": "system", "content": "Be brief."}])
    with pytest.raises(openai.BadRequestError, match="empty"):
        chat_client.chat.completions.create(model="rag", messages=[{"role": "user", "content": " "}], stream=True)


# --- status, models, docs ---------------------------------------------------------------------------------------


def test_status_models_and_docs(api: httpx.Client, chat_client: OpenAI) -> None:
    status = api.get("/v1/status").json()
    assert set(status) == {"collection", "documents", "chunks", "model", "dimension", "fingerprint", "last_ingest",
                           "location", "failed", "skipped", "watch", "process"}
    assert status["failed"] == {} and status["watch"] is None  # this server watches no folder
    assert status["collection"] == "default"
    assert status["skipped"] == {}  # every file of the corpus is of a format read
    assert status["documents"] >= 2 and status["model"] == "all-MiniLM-L6-v2" and status["dimension"] == 384
    assert api.get("/v1/models").json() == {
        "object": "list", "data": [{"id": "rag", "object": "model", "created": 0, "owned_by": "rag"}]}
    assert [m.id for m in chat_client.models.list()] == ["rag"]

    docs = api.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert '"/docs-assets/swagger-ui-bundle.js"' in docs.text and "cdn.jsdelivr" not in docs.text
    bundle = api.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert api.get("/docs-assets/swagger-ui.css").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/v1/ask", "/v1/chat/completions", "/v1/models", "/v1/status", "/v1/documents"} <= set(paths)


# --- POST /v1/documents -----------------------------------------------------------------------------------------


def test_upload_new_document_becomes_answerable(live: Live, api: httpx.Client) -> None:
    name = f"zorblax-{UID}.md"
    response = upload(api, (name, ZORBLAX))
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"name": name, "outcome": "added", "reason": f"indexed as corpus/{name}", "source": f"corpus/{name}"}]
    assert (live.base / "corpus" / name).read_bytes() == ZORBLAX and no_temp_files(live)

    data = ask(api, "How much purple plasma does the Zorblax 9000 reactor produce?")
    assert not data["abstained"]
    assert cites(data, "It produces 42 gigawatts of purple plasma from recycled teaspoons.", f"corpus/{name}")


def test_upload_names_are_sanitised(live: Live, api: httpx.Client) -> None:
    stored = f"evil-{UID}.md"
    response = upload(api, (f"../../{stored}", ZORBLAX), (f".hidden-{UID}.md", ZORBLAX))
    assert response.status_code == 200  # one of the two was accepted
    evil, hidden = response.json()["results"]
    assert (evil["outcome"], evil["source"]) == ("added", f"corpus/{stored}")
    assert (hidden["outcome"], hidden["source"]) == ("refused", "")
    assert "not a usable file name" in hidden["reason"]
    assert list(live.base.parent.rglob(stored)) == [live.base / "corpus" / stored]  # nothing escaped corpus/
    assert not list(live.base.parent.rglob(f"*hidden-{UID}*")) and no_temp_files(live)


def test_upload_refuses_unusable_files(live: Live, api: httpx.Client) -> None:
    files = [(f"tool-{UID}.exe", b"MZ\x90\x00binary"), (f"empty-{UID}.md", b""),
             (f"broken-{UID}.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog garbage \x00\x01\x02")]
    response = upload(api, *files)
    assert response.status_code == 400
    results = response.json()["results"]
    assert [(r["name"], r["outcome"], r["source"]) for r in results] == [(n, "refused", "") for n, _ in files]
    exe, empty, pdf = (r["reason"] for r in results)
    assert exe.startswith("file type not accepted") and ".md" in exe
    assert "empty" in empty
    assert "PDF" in pdf and "\n" not in pdf
    corpus = {p.name for p in (live.base / "corpus").iterdir()}
    assert not corpus & {n for n, _ in files} and no_temp_files(live)


def test_upload_same_name_needs_replace(live: Live, api: httpx.Client) -> None:
    name = f"lighthouse-{UID}.md"
    old = b"# Glimmerwick lighthouse\n\nThe Glimmerwick lighthouse stands 77 metres tall on Quillon Point.\n"
    new = b"# Glimmerwick lighthouse\n\nThe Glimmerwick lighthouse stands 91 metres tall on Quillon Point.\n"
    assert outcomes(upload(api, (name, old))) == [(name, "added")]

    refused = upload(api, (name, new))
    assert refused.status_code == 400 and outcomes(refused) == [(name, "refused")]
    assert "already holds a different document" in refused.json()["results"][0]["reason"]
    assert (live.base / "corpus" / name).read_bytes() == old

    replaced = upload(api, (name, new), replace=True)
    assert replaced.status_code == 200 and outcomes(replaced) == [(name, "updated")]
    assert (live.base / "corpus" / name).read_bytes() == new
    again = upload(api, (name, new))
    assert again.status_code == 200 and outcomes(again) == [(name, "unchanged")]

    data = ask(api, "How tall is the Glimmerwick lighthouse?")
    quotes = [c["quote"] for c in data["citations"] if c["source"] == f"corpus/{name}"]
    assert any("91 metres" in q for q in quotes) and not any("77 metres" in q for q in quotes), data["answer"]
    assert no_temp_files(live)


def test_upload_same_name_twice_in_one_request(api: httpx.Client) -> None:
    name = f"twice-{UID}.md"
    response = upload(api, (name, ZORBLAX), (name, ZORBLAX + b"It hums.\n"))
    assert outcomes(response) == [(name, "added"), (name, "refused")]


# --- concurrency ------------------------------------------------------------------------------------------------

QUESTIONS = {
    Q_910C: (DEEPSEEK, S_910C),
    "How many H20 chips did Nvidia sell to Chinese customers last year?": (DEEPSEEK, "sold a million H20 chips"),
    "What share of the Chinese domestic market has Huawei captured?": (INSIGHTS, "~50% of the domestic market"),
}


def test_concurrent_questions_get_their_own_answers(api: httpx.Client) -> None:
    expected = {q: ask(api, q)["answer"] for q in QUESTIONS}
    order = list(QUESTIONS)

    def worker(i: int) -> list[tuple[str, httpx.Response]]:
        mine = order[i % 3:] + order[:i % 3]  # threads ask in different orders so cross-talk would show
        return [(q, api.post("/v1/ask", json={"question": q})) for q in mine]

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = [pair for pairs in pool.map(worker, range(8)) for pair in pairs]
    assert len(done) == 24
    for question, response in done:
        assert response.status_code == 200, response.text
        data = response.json()
        source, snippet = QUESTIONS[question]
        assert data["question"] == question and data["answer"] == expected[question]
        assert any(c["source"] == source and snippet in c["quote"] for c in data["citations"]), data["answer"]


# --- gradio_client against the page's endpoints -----------------------------------------------------------------


def test_gradio_client_ask(live: Live) -> None:
    with closing(Client(live.url, verbose=False)) as client:  # closed: an open heartbeat delays server exit
        endpoint = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/ask"]
        assert [p["parameter_name"] for p in endpoint["parameters"]] == ["question", "history", "k"]
        data = client.predict(Q_910C, None, 5, api_name="/ask")
        assert list(data) == ASK_KEYS and "[1]" in data["answer"]
        assert data["citations"][0]["quote"] == S_910C
        history = [{"role": "user", "content": Q_910C}, {"role": "assistant", "content": data["answer"]}]
        follow = client.predict(FOLLOW_UP, history, 5, api_name="/ask")
        with pytest.raises(AppError, match="the question is empty"):
            client.predict("  ", None, 5, api_name="/ask")
    assert follow["standalone_question"].startswith(Q_910C) and cites(follow, S_910B)


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def test_gradio_client_chat_streams_a_cited_answer(live: Live) -> None:
    with closing(Client(live.url, verbose=False)) as client:
        job = client.submit(Q_910C, [], 5, "hybrid", api_name="/chat")
        box, shown, sources = job.result(timeout=TIMEOUT)
        assert box == ""
        assert [m["role"] for m in shown] == ["user", "assistant"]
        answer = _text(shown[-1])
        assert 'class="cite"' in answer and S_910C in answer and 'href="#src-1-1"' in answer
        assert f"<mark>{S_910C}</mark>" in sources and 'id="src-1-1"' in sources
        assert any('class="answer streaming"' in _text(out[1][-1]) for out in job.outputs()[:-1])

        # the conversation's raw history lives in the client's session state
        _, shown, sources = client.submit(FOLLOW_UP, shown, 5, "hybrid", api_name="/chat").result(timeout=TIMEOUT)
    assert len(shown) == 4 and 'class="cite"' in _text(shown[-1])
    assert "older 910B chips" in _text(shown[-1]) and "<mark>They&#x27;ll make 300,000" in sources


# --- authentication (--auth, RAG_API_TOKEN) and the upload limit -------------------------------------------------


def test_api_requires_credentials(secured: Live) -> None:
    body = {"question": Q_910C}
    with httpx.Client(base_url=secured.url, timeout=TIMEOUT) as client:
        anonymous = client.post("/v1/ask", json=body)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Basic realm="rag"'
        assert client.post("/v1/ask", json=body, auth=(USER, "wrong")).status_code == 401
        assert client.post("/v1/ask", json=body, headers={"Authorization": "Bearer " + "x" * 24}).status_code == 401
        assert client.post("/v1/ask", json=body, headers={"Authorization": "Basic !!!"}).status_code == 401
        basic = client.post("/v1/ask", json=body, auth=(USER, PASSWORD))
        assert basic.status_code == 200 and basic.json()["citations"][0]["quote"] == S_910C
        bearer = client.post("/v1/ask", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and bearer.json()["answer"] == basic.json()["answer"]
        for path in ("/docs", "/openapi.json", "/v1/status", "/v1/models"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, auth=(USER, PASSWORD)).status_code == 200, path


def test_openai_client_sends_the_token(secured: Live) -> None:
    completion = OpenAI(base_url=secured.url + "/v1", api_key=TOKEN, max_retries=0).chat.completions.create(
        model="rag", messages=[{"role": "user", "content": Q_910C}])
    assert "[1]" in (completion.choices[0].message.content or "")
    assert (completion.model_extra or {})["citations"][0]["quote"] == S_910C
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=secured.url + "/v1", api_key="not-the-token-at-all", max_retries=0).models.list()


def test_page_requires_login(secured: Live) -> None:
    call = {"data": [Q_910C, None, 5]}
    with httpx.Client(base_url=secured.url, timeout=TIMEOUT) as browser:
        for response in (browser.get("/config"), browser.post("/gradio_api/call/ask", json=call)):
            assert response.status_code == 401
            assert "Not authenticated" in response.text
        assert browser.get("/config", auth=(USER, PASSWORD)).status_code == 401  # the page wants its login form
        wrong = browser.post("/login", data={"username": USER, "password": "wrong"})
        assert wrong.status_code == 400 and browser.get("/config").status_code == 401
        login = browser.post("/login", data={"username": USER, "password": PASSWORD})
        assert login.status_code == 200 and login.json() == {"success": True}
        config = browser.get("/config")  # the session cookie now lets the page load
        assert config.status_code == 200 and any(d.get("api_name") == "ask" for d in config.json()["dependencies"])
        assert "event_id" in browser.post("/gradio_api/call/ask", json=call).json()


def test_gradio_client_needs_the_login(secured: Live) -> None:
    with closing(Client(secured.url, auth=(USER, PASSWORD), verbose=False)) as client:
        data = client.predict(Q_910C, None, 5, api_name="/ask")
    assert data["citations"][0]["quote"] == S_910C
    with pytest.raises(AuthenticationError):
        Client(secured.url, verbose=False)


def test_upload_over_the_size_limit_is_refused(secured: Live) -> None:
    name = "big.md"
    big = b"# Big\n\n" + b"A sentence about nothing in particular.\n" * 400  # ~16 KB > 0.01 MB
    with httpx.Client(base_url=secured.url, timeout=TIMEOUT) as client:
        assert upload(client, (name, big)).status_code == 401
        response = upload(client, (name, big), auth=(USER, PASSWORD))
    assert response.status_code == 400 and outcomes(response) == [(name, "refused")]
    reason = response.json()["results"][0]["reason"]
    assert "RAG_MAX_FILE_MB" in reason and f"{LIMIT_MB} MB" in reason
    assert not (secured.base / "corpus" / name).exists() and no_temp_files(secured)


def test_page_upload_under_a_fractional_limit(secured: Live, tmp_path: Path) -> None:
    small = tmp_path / f"tiny-{UID}.md"
    small.write_text("# Tiny\n\nThe Vexmoor bell rings eleven times at dusk.\n", encoding="utf-8")
    with closing(Client(secured.url, auth=(USER, PASSWORD), verbose=False)) as client:
        lines, *_ = client.predict([handle_file(str(small))], False, [], api_name="/upload")
    assert f"<code>{small.name}</code>: added" in lines


# --- sources filters and GET/DELETE /v1/documents ------------------------------------------------------------


def test_sources_limit_both_apis_and_a_filter_matching_nothing_is_an_error(live: Live, api: httpx.Client,
                                                                            chat_client: OpenAI) -> None:
    name = f"filter-{UID}.md"
    assert upload(api, (name, ZORBLAX)).status_code == 200
    inside = ask(api, Q_910C, sources=[f"corpus/{name}"])  # the seed article answers it: not within this one
    assert all(c["source"] == f"corpus/{name}" for c in inside["citations"] + inside["passages"]), inside
    assert cites(ask(api, Q_910C, sources=["deepseek-*.md", "nothing-*"]), S_910C)  # a file-name glob
    assert cites(ask(api, Q_910C, sources=[]), S_910C)  # an empty list filters nothing
    for body in ({"question": Q_910C, "sources": ["*.docx"]},):
        response = api.post("/v1/ask", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["message"].startswith(
            "no indexed document matches the source filter '*.docx' (")
    chat = chat_client.chat.completions.create(model="rag", messages=[{"role": "user", "content": Q_910C}],
                                               extra_body={"sources": [f"corpus/{name}"]})
    assert all(c["source"] == f"corpus/{name}" for c in chat.model_extra["citations"])  # type: ignore[index]
    with pytest.raises(BadRequestError, match="no indexed document matches the source filter"):
        chat_client.chat.completions.create(model="rag", messages=[{"role": "user", "content": Q_910C}],
                                            extra_body={"sources": ["*.docx"]})
    assert api.delete(f"/v1/documents/corpus/{name}").status_code == 200


def test_documents_are_listed_opened_read_again_and_removed(live: Live, api: httpx.Client) -> None:
    name = f"documents-{UID} [draft].md"
    assert upload(api, (name, ZORBLAX)).status_code == 200
    source = f"corpus/{name}".replace("[", "_").replace("]", "_")  # the upload's safe name
    listed = api.get("/v1/documents", params={"limit": 1000}).json()
    mine = next(d for d in listed["documents"] if d["source"] == source)
    assert mine["title"] == "The Zorblax 9000 reactor" and mine["chunks"] == 1 and mine["uploaded"] is True
    assert mine["size"] == len(ZORBLAX) and mine["pages"] is None and listed["total"] >= 3
    assert set(listed) == {"documents", "total", "offset", "limit", "failed"}
    paged = api.get("/v1/documents", params={"offset": 1, "limit": 1}).json()
    assert paged["documents"] == [listed["documents"][1]] and paged["total"] == listed["total"]
    assert api.get("/v1/documents", params={"limit": 0}).status_code == 422

    raw = api.get(f"/v1/documents/{quote(source)}/file")
    assert raw.status_code == 200 and raw.content == ZORBLAX and raw.headers["x-content-type-options"] == "nosniff"
    start = read_md(ZORBLAX).text.index("It produces")  # an offset into the indexed (rendered) text
    view = api.get(f"/v1/documents/{quote(source)}/view", params={"start": start, "end": start + 11})
    assert view.status_code == 200 and '<mark id="quote">It produces</mark>' in view.text
    for bad in ("corpus/../../etc/passwd", "corpus/%2e%2e/.rag/uploads.json", "corpus/not-indexed.md", "/etc/passwd"):
        response = api.get(f"/v1/documents/{bad}/file")
        assert response.status_code == 404, (bad, response.text)  # only indexed documents, never a path

    again = api.post(f"/v1/documents/{quote(source)}/reindex")
    assert again.status_code == 200 and "updated 1," in again.json()["summary"], again.text

    gone = api.delete(f"/v1/documents/{quote(source)}")
    assert gone.status_code == 200 and gone.json()["removed"] == "deleted", gone.text
    assert not (live.base / source).exists()
    assert all(d["source"] != source for d in api.get("/v1/documents", params={"limit": 1000}).json()["documents"])
    assert not cites(ask(api, "Who built the Zorblax 9000 reactor?"), "The Zorblax 9000 reactor was built by "
                     "Quenterra Labs in 2031.", source)
    assert api.delete(f"/v1/documents/{quote(source)}").status_code == 404


def test_documents_need_the_same_login_as_the_rest(secured: Live) -> None:
    with httpx.Client(base_url=secured.url, timeout=TIMEOUT) as anonymous:
        assert anonymous.get("/v1/documents").status_code == 401
        assert anonymous.get("/v1/documents/corpus/deepseek-huawei-nvidia-buying-frenzy.md/file").status_code == 401
        assert anonymous.delete("/v1/documents/corpus/deepseek-huawei-nvidia-buying-frenzy.md").status_code == 401
    with httpx.Client(base_url=secured.url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/v1/documents").status_code == 200
