"""Documents: .ragignore, removal for good, reading one again, and answers limited to some documents
(Python and CLI; the HTTP API and the page are tested in test_api.py and test_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.library import DocumentNotFoundError, reindex_document, remove_document
from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.errors import SourceFilterError
from rag.settings import Settings
from tests.helpers import run_rag

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

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
    report = reindex_document(assistant, "notes/bell.md")  # unchanged, read again all the same, by itself
    assert (report.updated, report.unchanged, report.deleted) == (1, 0, 0)
    report = reindex_document(assistant, "notes/sub/ferry.md")  # deeper down: with its folder
    assert (report.updated, report.unchanged, report.deleted) == (1, 1, 0)


def test_a_source_filter_lifts_the_cap_per_document(tmp_path: Path, embedder: Embedder) -> None:
    """Asked within one document, `k` passages of it are wanted: the per-document cap (3) does not cut them."""
    root = tmp_path / "docs"
    root.mkdir()
    towns = ["Aberdeen", "Bergen", "Cork", "Dundee", "Esbjerg", "Faro", "Galway", "Hull", "Inverness", "Kiel"]
    (root / "ferries.md").write_text("# Ferries\n\n" + "\n\n".join(
        f"The ferry to {town} leaves from pier {i} every {i + 2} hours. " * 12 for i, town in enumerate(towns)))
    (root / "trains.md").write_text("# Trains\n\nThe night train to the ferry port leaves at ten.\n")
    settings = Settings.load(home=tmp_path / ".rag", corpus=root, chunk_tokens=64, chunk_overlap=0)
    ingest([root], settings, embedder=embedder)
    assistant = Assistant(settings, embedder=embedder)
    chunks = assistant.documents()["docs/ferries.md"].chunks
    assert chunks > settings.per_source
    hits = assistant.retrieve("When does the ferry leave?", k=50, sources=["ferries.md"])
    assert len(hits) == chunks and {h.chunk.source for h in hits} == {"docs/ferries.md"}
    unfiltered = assistant.retrieve("When does the ferry leave?", k=50)
    assert sum(h.chunk.source == "docs/ferries.md" for h in unfiltered) == settings.per_source


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


def test_removal_is_safe_for_files_the_user_placed_and_changes_nothing_when_refused(
        tmp_path: Path, embedder: Embedder) -> None:
    from ingest.library import add_documents
    from rag.errors import IngestLockedError
    from rag.index.store import Store
    from rag.index.writer import writer_lock

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "bell.md").write_text(f"# Bell\n\n{BELL}\n")
    (corpus / "bell.md").symlink_to(elsewhere / "bell.md")  # a link: its folder is corpus/, not elsewhere/
    (corpus / "mine.md").write_text(f"# Ferry\n\n{FERRY}\n")
    settings = Settings.load(home=tmp_path / ".rag", corpus=corpus)
    ingest([corpus], settings, embedder=embedder)
    assistant = Assistant(settings, embedder=embedder)
    # Uploading a copy of a file the user placed there changes nothing, so removing it must not delete it.
    [result] = add_documents(assistant, [("mine.md", (corpus / "mine.md").read_bytes())])
    assert result.outcome == "unchanged"
    with writer_lock(Store(settings)), pytest.raises(IngestLockedError):  # another ingest is writing
        remove_document(assistant, "corpus/mine.md")
    assert (corpus / "mine.md").exists() and not (corpus / ".ragignore").exists()  # refused: nothing changed
    assert remove_document(assistant, "corpus/mine.md").how == "ignored" and (corpus / "mine.md").exists()
    [refused] = add_documents(assistant, [("mine.md", b"# Other\n\nAnother text.\n")])  # no sneaking back in
    assert refused.outcome == "refused" and "corpus/.ragignore leaves out mine.md" in refused.reason
    assert remove_document(assistant, "corpus/bell.md").how == "ignored"
    assert "/bell.md" in (corpus / ".ragignore").read_text() and not (elsewhere / ".ragignore").exists()
    assert ingest([corpus], settings, embedder=embedder).added == 0 and (elsewhere / "bell.md").exists()


def test_a_documents_indexed_text_is_printed_as_its_citations_point_into_it(tmp_path: Path, embedder: Embedder) -> None:
    root, settings = notes(tmp_path)
    ingest([root], settings, embedder=embedder)
    citation = Assistant(settings, embedder=embedder).ask("How often does the ferry cross the fjord?").citations[0]
    home = settings.home
    printed = run_rag("documents", "--text", "notes/sub/ferry.md", home=home)
    assert printed.returncode == 0 and printed.stdout == f"Ferry\n\n{FERRY}\n" and printed.stderr == ""
    assert printed.stdout[citation.start:citation.end] == citation.quote == FERRY
    (root / "sub" / "ferry.md").write_text(f"# Ferry\n\n{FERRY} It is late on Sundays.\n")  # not indexed yet
    changed = json.loads(run_rag("documents", "--text", "notes/sub/ferry.md", "--json", home=home).stdout)
    assert changed == {"source": "notes/sub/ferry.md", "title": "Ferry", "current": False,
                       "text": f"Ferry\n\n{FERRY} It is late on Sundays."}
    assert "changed since it was indexed" in run_rag("documents", "--text", "notes/sub/ferry.md", home=home).stderr
    missing = run_rag("documents", "--text", "notes/nothing.md", home=home)
    assert missing.returncode == 2 and missing.stderr == (
        "error: 'notes/nothing.md' is not an indexed document; `rag documents` lists them\n")
