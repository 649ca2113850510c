"""Documents: .ragignore, removal for good, reading one again, and answers limited to some documents
(Python and CLI; the HTTP API and the page are tested in test_api.py and test_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.errors import SourceFilterError
from rag.settings import Settings
from tests.helpers import run_rag
from ui.documents import DocumentNotFoundError, reindex_document, remove_document

FERRY = "The Brellin ferry crosses the Ostra fjord four times a day."
BELL = "The Vexmoor bell rings eleven times at dusk."


def notes(tmp_path: Path) -> tuple[Path, Settings]:
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ferry.md").write_text(f"# Ferry\n\n{FERRY}\n")
    (root / "bell.md").write_text(f"# Bell\n\n{BELL}\n")
    return root, Settings.load(home=tmp_path / ".rag", corpus=tmp_path / "corpus")


def cited(answer: object) -> set[str]:
    return {c.source for c in getattr(answer, "citations")}  # noqa: B009


def test_a_removed_document_never_comes_back_until_its_ignore_line_goes(tmp_path: Path, embedder: Embedder) -> None:
    root, settings = notes(tmp_path)
    assert ingest([root], settings, embedder=embedder).added == 2
    assistant = Assistant(settings, embedder=embedder)
    assert "notes/sub/ferry.md" in cited(assistant.ask("How often does the ferry cross the fjord?"))

    removal = remove_document(assistant, "notes/sub/ferry.md")
    assert removal.how == "ignored" and (root / "sub" / "ferry.md").exists()  # not an upload: the file stays
    assert "/sub/ferry.md" in (root / ".ragignore").read_text()
    assert "notes/sub/ferry.md" not in assistant.documents()
    assert "notes/sub/ferry.md" not in cited(assistant.ask("How often does the ferry cross the fjord?"))
    report = ingest([root], settings, embedder=embedder)  # a later ingest, the file untouched: still out
    assert report.added == 0 and "notes/sub/ferry.md" not in assistant.documents()
    (root / "sub" / "ferry.md").write_text(f"# Ferry\n\n{FERRY} It is painted red.\n")  # even when it changes
    assert ingest([root], settings, embedder=embedder).added == 0
    assert ingest([root / "sub" / "ferry.md"], settings, embedder=embedder).added == 0  # or is named alone

    (root / ".ragignore").write_text("")  # the line removed: the next ingest brings it back
    assert ingest([root], settings, embedder=embedder).added == 1
    assistant.refresh()
    assert "notes/sub/ferry.md" in cited(assistant.ask("How often does the ferry cross the fjord?"))
    with pytest.raises(DocumentNotFoundError, match=r"'notes/nothing\.md' is not an indexed document"):
        remove_document(assistant, "notes/nothing.md")


def test_reading_one_document_again_and_the_documents_it_lists(tmp_path: Path, embedder: Embedder) -> None:
    root, settings = notes(tmp_path)
    ingest([root], settings, embedder=embedder)
    assistant = Assistant(settings, embedder=embedder)
    record = assistant.documents()["notes/bell.md"]
    assert (record.title, record.chunks, record.pages, record.path) == ("Bell", 1, 0, str(root / "bell.md"))
    assert record.size == (root / "bell.md").stat().st_size
    report = reindex_document(assistant, "notes/bell.md")  # unchanged, read again all the same
    assert (report.updated, report.unchanged) == (1, 1)


def test_answers_limited_to_some_documents_in_python_and_the_cli(tmp_path: Path, embedder: Embedder) -> None:
    root, settings = notes(tmp_path)
    ingest([root], settings, embedder=embedder)
    assistant = Assistant(settings, embedder=embedder)
    question = "How often does the ferry cross the fjord?"
    assert cited(assistant.ask(question, sources=["bell.md"])) <= {"notes/bell.md"}
    for mode in ("dense", "bm25", "hybrid"):  # both retrievers honour the filter
        hits = assistant.retrieve("ferry bell", mode=mode, sources=["notes/b*"])  # type: ignore[arg-type]
        assert {h.chunk.source for h in hits} == {"notes/bell.md"}, mode
    assert cited(assistant.ask(question, sources=["notes/sub/*"])) == {"notes/sub/ferry.md"}
    assert "notes/sub/ferry.md" in cited(assistant.ask(question, sources=[]))  # an empty list: every document
    with pytest.raises(SourceFilterError, match=r"^no indexed document matches the source filter '\*.pdf', 'x' "
                                                r"\(2 documents are indexed\)"):
        assistant.ask(question, sources=["*.pdf", "x"])

    home = settings.home
    out = run_rag("ask", question, "--source", "notes/sub/*", "--source", "nothing", "--json", home=home)
    assert out.returncode == 0 and {c["source"] for c in json.loads(out.stdout)["citations"]} == {"notes/sub/ferry.md"}
    refused = run_rag("ask", question, "--source", "*.pdf", home=home)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: no indexed document matches the source filter '*.pdf'")
    listed = run_rag("documents", "--json", home=home)
    assert [d["source"] for d in json.loads(listed.stdout)] == ["notes/bell.md", "notes/sub/ferry.md"]
    printed = run_rag("documents", home=home).stdout.splitlines()
    assert printed[0].startswith("notes/bell.md  'Bell'  (1 chunks, ") and printed[-1] == "2 documents"
    removed = run_rag("documents", "--remove", "notes/bell.md", home=home)
    assert removed.stdout.startswith("removed notes/bell.md: left the file alone and added it to ")
