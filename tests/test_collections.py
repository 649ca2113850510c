"""Collections: named document sets, each an index of its own, through the registry, the CLI, Python, the HTTP
API, the OpenAI endpoint and MCP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import ingest
from rag.collections import DEFAULT, CollectionError, Collections
from rag.embedding import Embedder
from rag.errors import IngestLockedError
from rag.files import locked
from rag.settings import Settings


def test_a_collection_gets_its_own_index_and_keeps_it_through_a_rename(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / ".rag", corpus=tmp_path / "corpus")
    collections = Collections(settings)
    assert [c.name for c in collections.list()] == [DEFAULT]  # one who makes none never meets the idea
    assert collections.settings_for(None) is settings and collections.settings_for(DEFAULT) is settings
    hr = collections.create("HR", corpus=tmp_path / "handbook")
    eng = collections.create("eng")
    assert [c.name for c in collections.list()] == [DEFAULT, "eng", "HR"]
    own = collections.settings_for("hr")  # names are matched whatever their case
    assert own.corpus == (tmp_path / "handbook").absolute() and (tmp_path / "handbook").is_dir()
    assert own.home == settings.home / "collections" / hr.key and own.collection == f"rag-{hr.key}"
    assert own.models == settings.models  # one export of the embedding model for all
    assert collections.settings_for("eng").corpus == settings.home / "collections" / eng.key / "corpus"
    renamed = collections.rename("HR", "people")
    assert renamed.key == hr.key and collections.settings_for("people").home == own.home
    with pytest.raises(CollectionError, match="no collection named 'HR'"):
        collections.get("HR")
    for bad in ("", "a b", "-x", "../up", "x" * 41, "naïve"):
        with pytest.raises(CollectionError, match="cannot name a collection"):
            collections.create(bad)
    with pytest.raises(CollectionError, match="exists"):
        collections.create("ENG")
    with pytest.raises(CollectionError, match="exists"):
        collections.rename("people", "Default")
    with pytest.raises(CollectionError, match="cannot be renamed or removed"):
        collections.remove(DEFAULT)
    # Another process's change is seen at once: the list is read afresh.
    assert Collections(settings).get("people").key == hr.key
    assert json.loads((settings.home / "collections.json").read_text())[0]["name"] in ("eng", "people")


def test_removing_a_collection_deletes_its_index_but_not_a_folder_it_was_given(tmp_path: Path) -> None:
    settings = Settings.load(home=tmp_path / ".rag")
    collections = Collections(settings)
    given = collections.create("given", corpus=tmp_path / "mine")
    made = collections.create("made")
    (tmp_path / "mine" / "keep.md").write_text("# Kept\n")
    home = collections.settings_for("given").home
    home.mkdir(parents=True)
    with locked(home / "ingest.lock"), pytest.raises(IngestLockedError):  # not while an ingest writes to it
        collections.remove("given")
    collections.remove("given")
    assert not home.exists() and (tmp_path / "mine" / "keep.md").exists()
    collections.remove("made")
    assert not made.corpus.exists()  # the folder made for it (its uploads) goes with it
    assert [c.name for c in collections.list()] == [DEFAULT] and given.key != made.key


HR = ("handbook.md", "# Leave\n\nEvery employee of Quillmore gets twenty-six days of paid leave a year.\n",
      "How many days of paid leave do Quillmore employees get?", "twenty-six days")
ENG = ("runbook.md", "# Deploys\n\nThe Quillmore payment service is deployed every Tuesday at 14:00 by the "
       "on-call engineer.\n", "When is the Quillmore payment service deployed?", "every Tuesday at 14:00")


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    return make_two(tmp_path_factory.mktemp("collections"), embedder)


def make_two(folder: Path, embedder: Embedder) -> Path:
    """`folder` with the seed corpus in the default collection and two more, `hr` and `eng`, each indexed."""
    from tests.helpers import indexed_copy

    base = indexed_copy(folder, embedder)
    settings = Settings.load(home=base / ".rag", corpus=base / "corpus")
    collections = Collections(settings)
    for name, (file, text, _, _) in (("hr", HR), ("eng", ENG)):
        made = collections.create(name, corpus=base / name)
        (made.corpus / file).write_text(text)
        report = ingest([made.corpus], collections.settings_for(name), embedder=embedder)
        assert report.exit_code == 0 and report.added == 1
    return base


def cited(answer: dict[str, Any]) -> set[str]:
    return {c["source"] for c in answer["citations"]}


@pytest.mark.integration
def test_each_collection_answers_from_its_own_documents_only(two: Path, embedder: Embedder) -> None:
    from rag.assistant import Assistant

    settings = Settings.load(home=two / ".rag", corpus=two / "corpus")
    root = Assistant(settings, embedder=embedder)
    hr, eng = root.collection("hr"), root.collection("HR")
    assert hr is eng and hr.embedder is root.embedder and hr.selector is root.selector
    assert root.collection(None) is root and hr.collection("default") is root
    assert root.collections() == ["default", "eng", "hr"] and hr.collection_name == "hr"
    answer = hr.ask(HR[2]).to_dict()
    assert HR[3] in answer["answer"] and cited(answer) == {"hr/handbook.md"}
    # The other collection's fact is not there to be found: never cited, never quoted.
    crossed = hr.ask(ENG[2]).to_dict()
    assert cited(crossed) <= {"hr/handbook.md"} and ENG[3] not in crossed["answer"]
    assert set(root.collection("eng").documents()) == {"eng/runbook.md"}
    assert "hr/handbook.md" not in root.documents()
    opened = Assistant.open(settings, collection="eng")
    assert opened.status()["collection"] == "eng" and opened.status()["documents"] == 1
    with pytest.raises(CollectionError, match="no collection named 'sales'"):
        Assistant.open(settings, collection="sales")


@pytest.mark.integration
def test_the_command_line_names_a_collection_on_every_command(two: Path, tmp_path: Path) -> None:
    from tests.helpers import run_rag

    home = two / ".rag"
    listed = json.loads(run_rag("collections", "list", "--json", home=home).stdout)
    assert [(c["name"], c["documents"]) for c in listed] == [("default", 2), ("eng", 1), ("hr", 1)]
    out = run_rag("ask", HR[2], "--json", "--collection", "hr", home=home)
    assert out.returncode == 0 and cited(json.loads(out.stdout)) == {"hr/handbook.md"}
    status = json.loads(run_rag("status", "--json", "--collection", "eng", home=home).stdout)
    assert status["collection"] == "eng" and status["documents"] == 1
    docs = json.loads(run_rag("documents", "--json", "--collection", "hr", home=home).stdout)
    assert [d["source"] for d in docs] == ["hr/handbook.md"]
    missing = run_rag("ask", "anything?", "--collection", "sales", home=home)
    assert missing.returncode == 2 and "no collection named 'sales'" in missing.stderr
    # A new collection from the command line: created, ingested (its own folder), renamed, removed.
    made = run_rag("collections", "create", "legal", home=home)
    assert made.returncode == 0, made.stderr
    folder = Collections(Settings.load(home=home)).get("legal").corpus
    (folder / "contract.md").write_text("# Term\n\nThe Quillmore lease runs until March 2031.\n")
    assert "added 1," in run_rag("ingest", "--collection", "legal", home=home).stdout
    assert run_rag("collections", "rename", "legal", "contracts", home=home).returncode == 0
    out = run_rag("ask", "Until when does the Quillmore lease run?", "--json", "--collection", "contracts", home=home)
    assert "March 2031" in json.loads(out.stdout)["answer"]
    removed = run_rag("collections", "remove", "contracts", home=home)
    assert removed.returncode == 0 and "went with it" in removed.stdout and not folder.exists()
    assert "documents" in run_rag("status", home=home).stdout  # the default one is untouched


@pytest.mark.integration
def test_http_openai_and_mcp_name_a_collection(two: Path) -> None:
    import httpx

    from tests.helpers import serving

    with serving(two) as url, httpx.Client(base_url=url, timeout=120) as api:
        assert api.get("/v1/collections").json() == {"collections": ["default", "eng", "hr"], "default": "default"}
        answer = api.post("/v1/ask", json={"question": ENG[2], "collection": "eng"}).json()
        assert ENG[3] in answer["answer"] and cited(answer) == {"eng/runbook.md"}
        assert not cited(api.post("/v1/ask", json={"question": ENG[2]}).json()) & {"eng/runbook.md"}
        missing = api.post("/v1/ask", json={"question": ENG[2], "collection": "sales"})
        assert missing.status_code == 404 and "no collection named 'sales'" in missing.json()["error"]["message"]
        listing = api.get("/v1/documents", params={"collection": "hr"}).json()
        assert [d["source"] for d in listing["documents"]] == ["hr/handbook.md"]
        assert api.get("/v1/documents/hr/handbook.md/view", params={"collection": "eng"}).status_code == 404
        assert api.get("/v1/documents/hr/handbook.md/view", params={"collection": "hr"}).status_code == 200
        upload = api.post("/v1/documents", data={"collection": "hr"},
                          files=[("files", ("pension.md", b"# Pension\n\nQuillmore pays 7% into the pension.\n"))])
        assert upload.status_code == 200 and upload.json()["results"][0]["source"] == "hr/pension.md"
        assert (two / "hr" / "pension.md").exists() and not (two / "corpus" / "pension.md").exists()
        assert api.get("/v1/status", params={"collection": "hr"}).json()["documents"] == 2
        models = [m["id"] for m in api.get("/v1/models").json()["data"]]
        assert models == ["rag", "eng", "hr"]  # `rag` is the server's own collection (the default one here)
        chat = api.post("/v1/chat/completions", json={"model": "hr", "messages": [{"role": "user", "content": HR[2]}]})
        assert HR[3] in chat.json()["choices"][0]["message"]["content"]
        unknown = api.post("/v1/chat/completions", json={"model": "sales", "messages": [{"role": "user",
                                                                                          "content": HR[2]}]})
        assert unknown.status_code == 404 and "GET /v1/models" in unknown.json()["error"]["message"]

        async def session() -> None:
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client

            async with Client(streamable_http_client(f"{url}/mcp")) as client:
                listed = await client.call_tool("list_collections", {})
                assert listed.structured_content["collections"] == ["default", "eng", "hr"]
                asked = await client.call_tool("ask", {"question": HR[2], "collection": "hr"})
                assert HR[3] in asked.structured_content["answer"]
                docs = await client.call_tool("list_documents", {"collection": "eng"})
                assert [d["source"] for d in docs.structured_content["documents"]] == ["eng/runbook.md"]
                wrong = await client.call_tool("search", {"query": "leave", "collection": "sales"})
                assert wrong.is_error

        import anyio

        anyio.run(session)
