"""Incremental ingest, dry runs, rebuilds, kill safety and bad files, on the real model and Chroma."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag.index.lexical
import rag.retrieve
from ingest.pipeline import ingest, make_plan, remove
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.errors import IngestLockedError, StoreError
from rag.index.lexical import LexicalIndex, lexical_folder
from rag.index.store import Index, Store
from rag.index.writer import IndexWriter
from rag.retrieve import Retriever
from rag.settings import Settings
from rag.types import Chunk, Quiet
from tests.helpers import make_broken_pdf, make_journal_paper, make_paper, run_rag
from ui.bench.synthetic import build_index

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

TOPICS = ["volcanoes", "glaciers", "coral reefs", "deserts", "rainforests", "tundra", "estuaries", "caves"]


def _write_corpus(folder: Path, n: int, sentences: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        body = " ".join(f"Fact {j} about {topic} number {i}: they change slowly over {j + 2} centuries."
                        for j in range(sentences))
        (folder / f"doc{i:03}.md").write_text(f"# Notes on {topic} {i}\n\n{body}\n")


def _snapshot(settings: Settings) -> dict[str, Any]:
    """Everything an index holds that must match between two runs: chunks, ledger, BM25 ids."""
    store = Store(settings)
    index = store.open()
    chunks = {c.id: (c.source, sha256, c.text) for c, sha256 in index.all_chunks()}
    ledger = {s: (r.sha256, r.chunks) for s, r in index.files().items()}
    lexical = LexicalIndex.load(lexical_folder(settings.bm25, *store.active()))  # type: ignore[misc]
    assert lexical is not None
    return {"chunks": chunks, "ledger": ledger, "bm25": sorted(lexical.ids)}


def test_incremental_changes_touch_only_what_changed(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 4)
    settings = Settings.load(home=tmp_path / ".rag")
    first = ingest([corpus], settings, embedder=embedder)
    assert (first.added, first.updated, first.deleted, first.exit_code) == (4, 0, 0, 0)
    before = _snapshot(settings)

    (corpus / "doc000.md").write_text("# Notes on volcanoes 0\n\nVolcanoes were rewritten entirely.\n")
    (corpus / "doc001.md").unlink()
    (corpus / "new.md").write_text("# Fresh notes\n\nA brand new document about comets.\n")
    second = ingest([corpus], settings, embedder=embedder)
    assert (second.added, second.updated, second.unchanged, second.deleted) == (1, 1, 2, 1)
    after = _snapshot(settings)

    def ids_of(snapshot: dict[str, Any], source: str) -> set[str]:
        return {cid for cid, (src, _, _) in snapshot["chunks"].items() if src == source}

    for kept in ("corpus/doc002.md", "corpus/doc003.md"):
        assert ids_of(before, kept) == ids_of(after, kept)  # untouched files keep their chunks
    assert not ids_of(after, "corpus/doc001.md") and ids_of(after, "corpus/new.md")
    # The changed file holds its new text only, under new chunk ids.
    assert [text for src, _, text in after["chunks"].values() if src == "corpus/doc000.md"] == [
        "Notes on volcanoes 0\n\nVolcanoes were rewritten entirely."]
    assert not ids_of(after, "corpus/doc000.md") & ids_of(before, "corpus/doc000.md")
    assert sorted(after["chunks"]) == after["bm25"]

    third = ingest([corpus], settings, embedder=embedder)
    assert (third.added, third.updated, third.deleted, third.chunks) == (0, 0, 0, 0)
    assert _snapshot(settings) == after


def test_dry_run_touches_nothing(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 2)
    out = run_rag("ingest", str(corpus), "--dry-run", home=tmp_path / ".rag")
    assert out.returncode == 0 and "add       corpus/doc000.md" in out.stdout and "Nothing was changed" in out.stdout
    assert not (tmp_path / ".rag").exists()
    settings = Settings.load(home=tmp_path / ".rag")
    ingest([corpus], settings, embedder=embedder)
    before = _snapshot(settings)
    (corpus / "doc000.md").write_text("# Changed\n\nCompletely different text.\n")
    out = run_rag("ingest", str(corpus), "--dry-run", home=tmp_path / ".rag")
    assert "update    corpus/doc000.md" in out.stdout and "unchanged corpus/doc001.md" in out.stdout
    assert _snapshot(settings) == before


def test_files_of_formats_not_read_are_counted_and_named_not_passed_over(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 1)
    for name in ("guide.xyz", "api.xyz", "notes.qqq", "LICENSE"):
        (corpus / name).write_text("Text no reader takes.\n")
    (corpus / ".ragignore").write_text("LICENSE\n")  # left out on purpose: not counted
    home = tmp_path / ".rag"
    line = "3 files skipped, of formats not read: 2 .xyz, 1 .qqq"
    dry = run_rag("ingest", str(corpus), "--dry-run", home=home)
    assert dry.returncode == 0 and line in dry.stdout.splitlines()
    out = run_rag("ingest", str(corpus), home=home)
    assert out.returncode == 0 and line in out.stdout.splitlines() and "added 1," in out.stdout
    status = run_rag("status", home=home)
    assert f"skipped      {line}" in status.stdout.splitlines()
    assert json.loads(run_rag("status", "--json", home=home).stdout)["skipped"] == {".qqq": 1, ".xyz": 2}
    # Once they are gone (or ignored), the status says so after the next ingest, which had nothing else to do.
    for name in ("guide.xyz", "api.xyz", "notes.qqq"):
        (corpus / name).unlink()
    assert "skipped" not in run_rag("ingest", str(corpus), home=home).stdout
    assert json.loads(run_rag("status", "--json", home=home).stdout)["skipped"] == {}


def test_rebuild_swaps_in_a_fresh_generation(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 3)
    settings = Settings.load(home=tmp_path / ".rag")
    ingest([corpus], settings, embedder=embedder)
    store = Store(settings)
    old_generation = store.active()[0]  # type: ignore[index]
    before = _snapshot(settings)
    report = ingest([corpus], settings, rebuild=True, embedder=embedder)
    assert report.added == 3
    assert store.active()[0] != old_generation  # type: ignore[index]
    assert _snapshot(settings) == before
    names = [c.name for c in store.client().list_collections()]
    assert not any(old_generation in n for n in names)  # the old generation is dropped
    assert len(list((tmp_path / ".rag" / "bm25").iterdir())) == 1


def test_a_second_writer_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 1)
    settings = Settings.load(home=tmp_path / ".rag")
    (tmp_path / ".rag").mkdir()
    with open(tmp_path / ".rag" / "ingest.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(IngestLockedError, match="another ingest"):
            ingest([corpus], settings, embedder=embedder)


@pytest.mark.parametrize("start", ["empty", "live", "rebuild"])
def test_killed_ingest_then_rerun_equals_a_clean_build(tmp_path: Path, embedder: Embedder, start: str) -> None:
    corpus = tmp_path / "corpus"
    killed = Settings.load(home=tmp_path / "killed")
    published: list[str] = []
    if start != "empty":  # kill a run (incremental, or a rebuild) on an index readers are using
        _write_corpus(corpus, 2, sentences=30)
        ingest([corpus], killed, embedder=embedder)
        published = _snapshot(killed)["bm25"]
    _write_corpus(corpus, 40, sentences=30)  # ~80 chunks: several seconds of embedding
    env = {**os.environ, "RAG_HOME": str(tmp_path / "killed"), "RAG_EMBED_BATCH_SIZE": "2",
           "RAG_EMBED_GROUP": "8"}
    argv = ["ingest", str(corpus), *(["--rebuild"] if start == "rebuild" else [])]
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reader = Store(killed)
    deadline = time.monotonic() + 300
    done = 0
    # Watch the writer's ledger from this process and kill it once some files, not all, are in.
    while time.monotonic() < deadline and proc.poll() is None and done < 7:
        time.sleep(0.2)
        if (tmp_path / "killed" / "chroma" / "chroma.sqlite3").exists():
            try:
                ledgers = [c for c in reader.client().list_collections() if c.name.endswith("-files")]
            except StoreError:  # opened while the writer was still creating the database: look again
                reader = Store(killed)
                continue
            done = max((c.count() for c in ledgers), default=0)
    assert proc.poll() is None, "ingest finished before it could be killed; make the corpus larger"
    assert 7 <= done < 40
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if published:  # readers still have the last published snapshot, every chunk of it
        after = Store(killed)
        assert _snapshot(killed)["bm25"] == published
        assert len(after.open().get(published)) == len(published)
        hits = Retriever(killed, after, embedder).search(["Facts about volcanoes and glaciers"], k=10)
        assert hits and {h.chunk.source.rsplit("/", 1)[1] for h in hits} == {"doc000.md", "doc001.md"}
    rerun = ingest([corpus], killed, embedder=embedder, rebuild=start == "rebuild")
    assert rerun.exit_code == 0

    clean = Settings.load(home=tmp_path / "clean")
    ingest([corpus], clean, embedder=embedder)
    assert _snapshot(killed) == _snapshot(clean)
    assert len(_snapshot(clean)["ledger"]) == 40


def test_a_file_short_of_chunks_is_read_again_whether_one_file_or_its_folder_is_ingested(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 4, sentences=30)
    settings = Settings.load(home=tmp_path / ".rag")
    ingest([corpus], settings, embedder=embedder)
    index = Store(settings).open()
    source = next(s for s in index.files() if s.endswith("doc001.md"))
    ids = sorted(index.chunk_ids([source]))
    assert len(ids) >= 2
    index.delete_chunks(ids[:1])  # as a run killed after the file was reverted leaves it: recorded, a chunk short
    asked: list[Any] = []
    counts = Index.chunk_counts
    monkeypatch.setattr(Index, "chunk_counts",
                        lambda self, sources=None: asked.append(sources) or counts(self, sources))

    one = make_plan([corpus / "doc001.md"], index, settings)  # 1 of 4 files known: only its chunks are read
    whole = make_plan([corpus], index, settings)  # every file known: all chunks are read
    assert asked == [[source], None]
    assert [f.source for f in one.update] == [source] and not one.add and not one.unchanged
    assert [f.source for f in whole.update] == [source] and len(whole.unchanged) == 3
    assert not make_plan([corpus / "doc002.md"], index, settings).update  # a whole file is left alone
    many = [*(f"corpus/gone{i}.md" for i in range(40_000)), source]  # more than one SQLite query may name
    assert index.chunk_ids(many) == set(ids[1:])


class _PauseBeforePublish(Quiet):
    """Progress hook that holds an ingest after every write, just before it publishes."""

    def __init__(self) -> None:
        self.written, self.go = threading.Event(), threading.Event()

    def start(self, phase: str, total: int) -> None:
        if phase == "BM25 index":
            self.written.set()
            assert self.go.wait(60)


def test_readers_see_the_old_index_or_the_new_one_never_a_mix(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "comet.md").write_text("# Zarquon\n\nThe comet Zarquon has exactly seven tiny moons.\n")
    (corpus / "lighthouse.md").write_text("# Lighthouse\n\nThe lighthouse keeper counts 42 ships every night.\n")
    settings = Settings.load(home=tmp_path / ".rag")
    ingest([corpus], settings, embedder=embedder)
    reader = Retriever(settings, Store(settings), embedder)
    questions = ["How many moons does the comet Zarquon have?", "How many ships does the lighthouse keeper count?",
                 "How many ferries does the harbour master log?"]

    def view() -> dict[str, str]:
        reader.refresh()
        return {h.chunk.source: h.chunk.text for h in reader.search(questions, k=10)}

    old = view()
    (corpus / "comet.md").write_text("# Zarquon\n\nThe comet Zarquon has exactly nine tiny moons.\n")
    (corpus / "lighthouse.md").unlink()
    (corpus / "harbour.md").write_text("# Harbour\n\nThe harbour master logs 17 ferries every morning.\n")
    pause = _PauseBeforePublish()
    writer = threading.Thread(target=ingest, args=([corpus], settings),
                              kwargs={"embedder": embedder, "progress": pause})
    writer.start()
    try:
        assert pause.written.wait(120)
        assert view() == old  # everything is written, nothing published: still the old index
    finally:
        pause.go.set()
        writer.join(60)
    new = view()
    assert set(new) == {"corpus/comet.md", "corpus/harbour.md"} and "nine" in new["corpus/comet.md"]
    assert set(old) == {"corpus/comet.md", "corpus/lighthouse.md"} and "seven" in old["corpus/comet.md"]
    assert Store(settings).open().count() == 2  # the old versions are gone once the new index is live


def test_bad_files_are_reported_skipped_and_nothing_is_lost(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Good\n\nThe lighthouse keeper counts 42 ships every night.\n")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (corpus / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf\n")
    (corpus / "huge.txt").write_text("Big sentence here. " * 2000)
    home = tmp_path / ".rag"
    env = {"RAG_MAX_FILE_MB": "0.01"}
    planned = run_rag("ingest", str(corpus), "--dry-run", home=home, env=env)
    assert "add       corpus/good.md" in planned.stdout and "would add 1," in planned.stdout, planned.stdout
    assert "5 unreadable" in planned.stdout and not home.exists()  # read, not indexed: listed as failing now
    out = run_rag("ingest", str(corpus), home=home, env=env)
    assert out.returncode == 1, out.stderr
    failures = [line for line in out.stderr.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 5
    for name, reason in [("empty.txt", "empty"), ("binary.txt", "binary"), ("latin1.txt", "UTF-8"),
                         ("corrupt.pdf", "PDF"), ("huge.txt", "limit")]:
        assert any(f"corpus/{name}" in line and reason in line for line in failures), (name, failures)
    assert "added 1," in out.stdout and "failed 5 files" in out.stdout
    status = run_rag("status", "--json", home=home, env=env)
    assert json.loads(status.stdout)["failed"]["corpus/binary.txt"].startswith("binary file")
    shown = run_rag("status", home=home, env=env).stdout
    assert "failed       5 files in the last ingest:" in shown and "  corpus/empty.txt: empty file" in shown

    # The good file turns bad: its last good version stays indexed; a re-run loses nothing.
    (corpus / "good.md").write_bytes(b"\x00\x01\x02 broken")
    again = run_rag("ingest", str(corpus), home=home, env=env)
    assert again.returncode == 1 and "failed 6 files" in again.stdout
    answer = run_rag("ask", "How many ships does the lighthouse keeper count?", home=home, env=env)
    assert answer.returncode == 0 and "42 ships" in answer.stdout
    for name in ("good.md", "empty.txt", "binary.txt", "latin1.txt", "corrupt.pdf"):
        (corpus / name).unlink()
    run_rag("ingest", str(corpus), home=home)  # the limit raised: huge.txt is read now
    assert json.loads(run_rag("status", "--json", home=home).stdout)["failed"] == {}


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    out = run_rag("ingest", str(tmp_path / "nope"), home=tmp_path / ".rag")
    assert out.returncode == 2 and "no such file or folder" in out.stderr


def test_a_reader_picks_up_a_newer_index_without_restart_and_answers_from_the_old_one_while_it_loads(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 2)
    settings = Settings.load(home=tmp_path / ".rag", reader_recheck_s=0.2, publish_grace_s=0.4)
    ingest([corpus], settings, embedder=embedder)
    reader = Assistant(settings, embedder=embedder)
    question = "How many moons does the comet Zarquon have?"
    assert reader.ask(question).abstained
    (corpus / "comet.md").write_text("# Zarquon\n\nThe comet Zarquon has exactly seven tiny moons.\n")
    ingest([corpus], settings, embedder=embedder)  # another writer, as `rag ingest` would be
    time.sleep(0.25)  # readers look for a new stamp at most once per RAG_READER_RECHECK_S
    answer = reader.ask(question)  # a small index loads within the wait of the question that finds it
    assert not answer.abstained and "seven" in answer.citations[0].quote

    loading, release = threading.Event(), threading.Event()
    load = rag.retrieve.published

    def slow(root: Path, index: Any, stamp: str) -> LexicalIndex:  # a BM25 snapshot that takes long to load
        loading.set()
        assert release.wait(60)
        return load(root, index, stamp)

    monkeypatch.setattr(rag.retrieve, "published", slow)
    (corpus / "comet.md").write_text("# Zarquon\n\nThe comet Zarquon has exactly nine tiny moons.\n")
    ingest([corpus], settings, embedder=embedder)
    time.sleep(0.25)
    began = time.monotonic()
    for _ in range(3):  # found the new index, loading it: the old one answers (without the replaced chunk, deleted
        # after RAG_PUBLISH_GRACE_S), without waiting for the load
        assert not any("nine" in c.quote for c in reader.ask(question).citations)
    assert loading.is_set() and time.monotonic() - began < 10
    release.set()
    deadline = time.monotonic() + 30
    while not (cited := [c for c in reader.ask(question).citations if "nine" in c.quote]):
        assert time.monotonic() < deadline, "the loaded index was never taken up"
        time.sleep(0.1)
    assert cited[0].source == "corpus/comet.md"


def test_a_reader_given_the_writers_snapshot_folder_loads_it_rather_than_building_its_own(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 3)
    shared = tmp_path / "shared-bm25"  # RAG_BM25_DIR: a folder the writer and every replica see
    settings = Settings.load(home=tmp_path / ".rag", bm25_dir=shared)
    ingest([corpus], settings, embedder=embedder)
    assert [p.name for p in shared.iterdir()] == ["-".join(Store(settings).active() or ())]
    assert not (tmp_path / ".rag" / "bm25").exists()

    def build(*_: Any) -> Any:
        raise AssertionError("a reader built its own BM25 snapshot")

    monkeypatch.setattr(rag.index.lexical, "build_from_index", build)
    hits = Retriever(settings, Store(settings), embedder).search(["How slowly do they change?"], mode="bm25")
    assert hits and all(h.chunk.source.startswith("corpus/doc") for h in hits)


def test_papers_and_front_matter_are_read_as_people_read_them_end_to_end(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_paper(corpus / "paper.pdf")  # a placeholder title, running headers, a hyphenated line end
    make_journal_paper(corpus / "journal.pdf")  # two columns, ligatures, alternating headers, a ruled table
    (corpus / "notes.md").write_text("---\ntitle: Ferry notes\ndraft: true\n---\n\n"
                                     "The Brellin ferry crosses the Ostra fjord four times a day.\n")
    make_broken_pdf(corpus / "broken.pdf")  # a garbage text layer: refused without OCR, never indexed as junk
    home = tmp_path / ".rag"
    ingested = run_rag("ingest", str(corpus), home=home, env={"RAG_OCR": "off"})
    assert ingested.returncode == 1 and "added 3," in ingested.stdout, ingested.stdout  # 1: a file failed
    assert ("failed: corpus/broken.pdf: text layer unreadable on 2 of 2 pages (broken font encoding"
            in ingested.stdout + ingested.stderr)
    out = run_rag("ask", "Which process keeps track of where each chunk is?", "--json", home=home)
    answer = json.loads(out.stdout)
    paper = [c for c in answer["citations"] if c["source"] == "corpus/paper.pdf"]
    assert paper and paper[0]["title"] == "Chunked Storage for Large Files", answer
    assert any("A master process tracks where every chunk lives" in c["quote"] for c in paper), answer
    assert all("Proceedings of the Storage Workshop" not in c["quote"] for c in answer["citations"])
    # A quote from a table is its row, with the header that says what each number is.
    table = json.loads(run_rag("ask", "How much disk space is free in cluster B?", "--json", home=home).stdout)
    assert table["citations"][0]["source"] == "corpus/journal.pdf" and table["citations"][0]["page"] == 2, table
    assert table["citations"][0]["quote"] == "Cluster: B | Chunkservers: 227 | Available disk space: 180 TB", table
    ferry = json.loads(run_rag("ask", "How often does the ferry cross the fjord?", "--json", home=home).stdout)
    assert ferry["citations"][0]["title"] == "Ferry notes" and "draft" not in ferry["citations"][0]["quote"]


def test_ingest_removal_and_the_benchmark_index_write_through_the_one_writer_under_its_lock(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    published: list[str] = []
    real_publish = IndexWriter.publish

    def publish(self: IndexWriter, *args: Any, **kwargs: Any) -> None:
        with open(self.store.settings.home / "ingest.lock", "a+") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by the writer
        published.append(self.store.settings.home.name)
        real_publish(self, *args, **kwargs)

    monkeypatch.setattr(IndexWriter, "publish", publish)
    corpus = tmp_path / "corpus"
    _write_corpus(corpus, 2)
    settings = Settings.load(home=tmp_path / "ingested")
    ingest([corpus], settings, embedder=embedder)
    assert remove(["corpus/doc000.md"], settings) == ["corpus/doc000.md"]
    assert set(Store(settings).open().files()) == {"corpus/doc001.md"}

    bench = Settings.load(home=tmp_path / "bench")
    real = [(Chunk(id=f"c{i}", source=f"doc{i}.md", title="t", text=f"text {i}", start=0, end=6, index=0), "sha")
            for i in range(2)]
    vectors = np.eye(2, 384, dtype=np.float32)
    build_index(bench, real, vectors, size=4, recipe="test")
    assert Store(bench).open().count() == 4
    assert published == ["ingested", "ingested", "bench"]


@pytest.mark.integration
def test_a_server_on_the_embedded_store_never_fails_after_another_process_updates_a_document(
        tmp_path: Path, embedder: Embedder) -> None:
    """Another process's ingest changes the embedded store under a running server: that server's Chroma
    still knows the replaced chunk's id and used to fail every question with a 500 ("Error finding id")."""
    import httpx

    from tests.helpers import indexed_copy, serving

    base = indexed_copy(tmp_path, embedder)
    leave = base / "corpus" / "leave.md"
    leave.write_text("# Leave\n\nEvery employee gets twenty-six days of paid leave a year.\n")
    ingest([base / "corpus"], Settings.load(home=base / ".rag", corpus=base / "corpus"), embedder=embedder)
    question = {"question": "How many days of paid leave does an employee get?"}
    with serving(base) as url, httpx.Client(base_url=url, timeout=120) as api:
        assert "twenty-six" in api.post("/v1/ask", json=question).json()["answer"]
        leave.write_text("# Leave\n\nEvery employee gets twenty-eight days of paid leave a year.\n")
        assert run_rag("ingest", str(base / "corpus"), home=base / ".rag", process=True).returncode == 0
        time.sleep(3)  # past the publish grace: the old chunk is deleted
        for _ in range(3):
            response = api.post("/v1/ask", json=question)
            assert response.status_code == 200, response.text
            assert "twenty-six" not in response.json()["answer"]  # never the replaced text
