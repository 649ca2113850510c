"""The scale-out path: ingest, `rag ask`, `rag status` and `rag serve` through a real `chroma run` server.

One Chroma server (on loopback, with a temporary data folder) serves the whole module; each test
uses an index (collection) name of its own, and every `rag` process a RAG_HOME of its own, as
replicas on different machines would.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ingest.pipeline import ingest
from rag.embedding import Embedder
from rag.errors import IngestLockedError, SettingsError, StoreError
from rag.index.store import Store
from rag.index.writer import writer_lock
from rag.settings import Settings
from tests.helpers import ROOT, free_port, run_rag, serving, stop, wait_until_answers
from ui.bench.common import bench_settings
from ui.bench.publish import NEW, bench_publish, format_publish

DEEPSEEK = "corpus/deepseek-huawei-nvidia-buying-frenzy.md"
Q_910C = "How many 910C processors will Huawei make?"
S_910C = "Huawei aims to crank out 100,000 of its latest 910C processors this year."
S_910C_NEW = "Huawei aims to crank out 250,000 of its latest 910C processors this year."
Q_NEW = "Which quarry supplies the granite for the Zorvath lighthouse?"
S_NEW = "The granite for the Zorvath lighthouse comes from the Kelmere quarry."


@dataclass(frozen=True)
class Chroma:
    url: str
    log: Path


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chroma]:
    """A real `chroma run` on a free loopback port over a temporary folder, stopped at the end."""
    exe = Path(sys.executable).parent / "chroma"
    assert exe.is_file(), f"{exe} is missing: the chromadb package installs the `chroma` command"
    base = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log_path = base / "chroma.log"
    log = open(log_path, "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(exe), "run", "--path", str(base / "data"), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(proc, f"{url}/api/v2/heartbeat", 60, "chroma run", log_path.read_text)
        yield Chroma(url, log_path)
    finally:
        stop(proc, timeout=30)
        log.close()


def _server_env(chroma: Chroma, collection: str, base: Path) -> dict[str, str]:
    return {"RAG_CHROMA_URL": chroma.url, "RAG_COLLECTION": collection, "RAG_CORPUS": str(base / "corpus")}


def _settings(chroma: Chroma, collection: str, base: Path) -> Settings:
    return Settings.load(home=base / ".rag", corpus=base / "corpus", chroma_url=chroma.url, collection=collection)


def _copy_corpus(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "corpus", base / "corpus", ignore=shutil.ignore_patterns("*.jsonl"))
    return base


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# --- the CLI through the server ----------------------------------------------------------------------------------


def test_cli_ingest_then_ask_from_two_homes(chroma: Chroma, tmp_path: Path) -> None:
    writer = _copy_corpus(tmp_path / "writer")
    env = _server_env(chroma, "cli", writer)
    done = run_rag("ingest", home=writer / ".rag", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("added 2, updated 0"), done.stdout
    assert not (writer / ".rag" / "chroma").exists()  # nothing embedded: the chunks are on the server

    # Two readers on other "machines": own RAG_HOME, no corpus, same server; asked at the same time.
    readers = [tmp_path / "reader-1", tmp_path / "reader-2"]
    procs = []
    for home in readers:
        home.mkdir()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ui.cli", "ask", Q_910C, "--json"], cwd=home, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "RAG_HOME": str(home / ".rag"), "RAG_CHROMA_URL": chroma.url, "RAG_COLLECTION": "cli"},
        ))
    for home, proc in zip(readers, procs, strict=True):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        answer = json.loads(out)
        assert not answer["abstained"] and "[1]" in answer["answer"]
        assert answer["citations"][0]["quote"] == S_910C and answer["citations"][0]["source"] == DEEPSEEK
        assert list((home / ".rag" / "bm25").iterdir()), "each reader derives its own BM25 copy"

    status = run_rag("status", "--json", home=readers[0] / ".rag", env={"RAG_CHROMA_URL": chroma.url,
                                                                         "RAG_COLLECTION": "cli"})
    assert status.returncode == 0, status.stderr
    facts = json.loads(status.stdout)
    assert (facts["documents"], facts["location"]) == (2, chroma.url)

    again = run_rag("ingest", home=writer / ".rag", env=env)  # nothing changed: nothing written
    assert again.returncode == 0 and again.stdout.startswith("added 0, updated 0, unchanged 2"), again.stdout
    names = [c.name for c in Store(_settings(chroma, "cli", writer)).client().list_collections()]
    assert "cli-lock" not in names  # the writer lock is released


# --- two `rag serve` replicas and a writer ------------------------------------------------------------------------


@dataclass(frozen=True)
class Replicas:
    urls: tuple[str, str]
    writer: Settings
    bases: tuple[Path, Path]


@pytest.fixture(scope="module")
def replicas(chroma: Chroma, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Replicas]:
    """A writer's index on the server, and two `rag serve` over it with RAG_HOMEs and corpus folders of their own."""
    root = tmp_path_factory.mktemp("replicas")
    writer = _settings(chroma, "replicas", _copy_corpus(root / "writer"))
    assert ingest([writer.corpus], writer, embedder=embedder).added == 2
    bases = (_copy_corpus(root / "a"), _copy_corpus(root / "b"))
    # a loads the writer's BM25 snapshots (a folder both see: RAG_BM25_DIR), b builds copies of its own
    with serving(bases[0], env={**_server_env(chroma, "replicas", bases[0]), "RAG_BM25_DIR": str(writer.bm25)}) as a, \
            serving(bases[1], env=_server_env(chroma, "replicas", bases[1])) as b:
        yield Replicas((a, b), writer, bases)


def _ask(client: httpx.Client, url: str, question: str) -> httpx.Response:
    return client.post(f"{url}/v1/ask", json={"question": question}, timeout=60)


def _first_quote(client: httpx.Client, url: str, question: str) -> str | None:
    data = _ask(client, url, question).json()
    return None if data["abstained"] else str(data["citations"][0]["quote"])


def _wait_for(client: httpx.Client, url: str, question: str, quote: str, seconds: float = 30) -> float:
    """Seconds until the replica at `url` answers `question` citing `quote` (it rechecks the index every second)."""
    began = time.monotonic()
    while _first_quote(client, url, question) != quote:
        assert time.monotonic() - began < seconds, f"{url} still answers from the old index after {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - began


def _problem(status_code: int, body: str) -> str | None:
    """What is wrong with one `/v1/ask` answer to Q_910C during the re-ingest (None: a whole, cited answer)."""
    if status_code != 200:
        return f"HTTP {status_code}: {body[:200]}"
    data = json.loads(body)
    if data["abstained"] or not data["citations"]:
        return "abstained"
    first = data["citations"][0]
    if first["quote"] not in (S_910C, S_910C_NEW) or first["source"] != DEEPSEEK:
        return f"cited {first['source']}: {first['quote']!r}"
    return None




def test_replicas_keep_answering_during_a_reingest_and_pick_it_up(replicas: Replicas, embedder: Embedder) -> None:
    with httpx.Client() as client:
        for url in replicas.urls:
            assert _first_quote(client, url, Q_910C) == S_910C

        answers: list[tuple[str, float, int, str]] = []  # url, when it came back, status, body
        stop = threading.Event()

        def keep_asking(url: str) -> None:
            with httpx.Client() as own:
                while not stop.is_set():
                    response = _ask(own, url, Q_910C)
                    answers.append((url, time.monotonic(), response.status_code, response.text))

        readers = [threading.Thread(target=keep_asking, args=(url,)) for url in replicas.urls]
        for reader in readers:
            reader.start()
        try:
            time.sleep(1)
            corpus = replicas.writer.corpus
            changed = corpus / "deepseek-huawei-nvidia-buying-frenzy.md"
            changed.write_text(changed.read_text().replace(S_910C, S_910C_NEW))
            (corpus / "lighthouse.md").write_text(f"# The Zorvath lighthouse\n\n{S_NEW} It was finished in 1911.\n")
            began = time.monotonic()
            report = ingest([corpus], replicas.writer, embedder=embedder)
            ended = time.monotonic()
            assert (report.added, report.updated, report.exit_code) == (1, 1, 0)
            waits = [_wait_for(client, url, Q_910C, S_910C_NEW) for url in replicas.urls]  # no restart
            time.sleep(0.5)
        finally:
            stop.set()
            for reader in readers:
                reader.join()
        print(f"{len(answers)} answers; the ingest took {ended - began:.2f} s; replicas answered from the new "
              f"index {', '.join(f'{w:.1f}' for w in waits)} s after it returned")

        for url in replicas.urls:
            new = _ask(client, url, Q_NEW).json()
            assert not new["abstained"] and new["citations"][0]["quote"] == S_NEW
            assert new["citations"][0]["source"] == "corpus/lighthouse.md"
            assert client.get(f"{url}/v1/status").json()["documents"] == 3
        assert not (replicas.bases[0] / ".rag" / "bm25").exists()  # a used the writer's snapshots
        assert len(list((replicas.bases[1] / ".rag" / "bm25").iterdir())) == 1  # b built its own, kept the latest

    before = [a for a in answers if a[1] < began]
    assert before and all(_problem(status, body) is None for _, _, status, body in before)
    assert {json.loads(body)["citations"][0]["quote"] for *_, body in answers if _problem(200, body) is None} \
        == {S_910C, S_910C_NEW}
    bad = [(f"{at - began:+.2f} s", url, problem) for url, at, status, body in answers
           if (problem := _problem(status, body)) is not None]
    assert not bad, bad  # every answer whole and cited, from the old text or the new, never an error


def test_upload_through_one_replica_is_answered_by_the_other(replicas: Replicas) -> None:
    sentence = "The Brellin ferry crosses the Ostra fjord nine times a day."
    body = f"# Ferries of the Ostra fjord\n\n{sentence} It carries forty cars.\n".encode()
    with httpx.Client() as client:
        uploaded = client.post(f"{replicas.urls[0]}/v1/documents", files=[("files", ("ferry.md", body))], timeout=300)
        assert uploaded.status_code == 200, uploaded.text
        assert (replicas.bases[0] / "corpus" / "ferry.md").is_file()
        _wait_for(client, replicas.urls[1], "How often does the Brellin ferry cross the Ostra fjord?", sentence)


# --- the writer lock inside Chroma --------------------------------------------------------------------------------


def test_second_writer_gets_a_one_line_error(chroma: Chroma, tmp_path: Path) -> None:
    base = _copy_corpus(tmp_path)
    with writer_lock(Store(_settings(chroma, "locked", base))):
        result = run_rag("ingest", home=base / ".rag", env=_server_env(chroma, "locked", base))
    line = _one_line_error(result)
    assert f"another ingest (pid {os.getpid()} on " in line and chroma.url in line, line
    names = [c.name for c in Store(_settings(chroma, "locked", base)).client().list_collections()]
    assert not any(name.startswith("locked-") for name in names)  # refused before anything was created


def test_writer_lock_has_one_winner_is_renewed_and_lapses_when_its_writer_dies(chroma: Chroma, tmp_path: Path) -> None:
    settings = _settings(chroma, "race", tmp_path)
    outcomes: list[str] = []
    go = threading.Barrier(6)

    def contend() -> None:
        store = Store(settings)
        store.client()
        go.wait()
        try:
            with writer_lock(store):
                outcomes.append("won")
                time.sleep(1)
        except IngestLockedError:
            outcomes.append("refused")

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["won"]

    short = settings.model_copy(update={"lock_ttl_s": 1.0})
    with writer_lock(Store(short)):  # renewed every 0.25 s: still held after several ttl
        time.sleep(2.5)
        with pytest.raises(IngestLockedError, match="another ingest"), writer_lock(Store(settings)):
            pass

    # A writer killed while holding the lock: refused until its lock lapses, then taken over.
    holder = subprocess.run(
        [sys.executable, "-c", "import os, signal; from rag.settings import Settings\n"
         "from rag.index.store import Store; from rag.index.writer import writer_lock\n"
         "with writer_lock(Store(Settings.load())): os.kill(os.getpid(), signal.SIGKILL)"],
        env={**os.environ, "RAG_HOME": str(tmp_path / ".rag"), "RAG_CHROMA_URL": chroma.url, "RAG_COLLECTION": "race",
             "RAG_LOCK_TTL_S": "3"},
        capture_output=True, text=True, timeout=120,
    )
    assert holder.returncode == -signal.SIGKILL, holder.stderr
    with pytest.raises(IngestLockedError, match=r"lapses in [0-3] s"), writer_lock(Store(settings)):
        pass
    time.sleep(3.2)
    with writer_lock(Store(settings)):
        pass
    assert "race-lock" not in [c.name for c in Store(settings).client().list_collections()]


# --- a bad RAG_CHROMA_URL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://127.0.0.1:8000", "http://", "http://127.0.0.1:99999",
                                 "http://127.0.0.1:port", "127.0.0.1"])
def test_malformed_url_is_a_settings_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"RAG_CHROMA_URL: .* is not a Chroma server address"):
        Store(Settings.load(home=tmp_path, chroma_url=url)).client()


def test_nothing_listening_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"cannot open the index at .*: ConnectError: .*; check RAG_CHROMA_URL"):
        Store(Settings.load(home=tmp_path, chroma_url=f"http://127.0.0.1:{free_port()}")).client()


def test_a_silent_server_is_an_error_not_a_hang(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        began = time.monotonic()
        with pytest.raises(StoreError, match=r"no answer within 1 s"):
            # chromadb's own client would wait forever
            Store(Settings.load(home=tmp_path, chroma_url=url, chroma_connect_s=1.0)).client()
    assert time.monotonic() - began < 10


def test_requests_to_the_server_have_a_time_limit(chroma: Chroma, tmp_path: Path) -> None:
    """chromadb builds its httpx client without a timeout; Store bounds it (this fails if chromadb renames it)."""
    client = Store(Settings.load(home=tmp_path, chroma_url=chroma.url)).client()
    session = getattr(getattr(client, "_server", None), "_session", None)
    assert isinstance(session, httpx.Client)
    assert (session.timeout.connect, session.timeout.read) == (10.0, 300.0)


def test_something_else_than_chroma_is_named(chroma: Chroma, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"HTTP 404 from .*/sub/api/v2/heartbeat: not a Chroma server"):
        Store(Settings.load(home=tmp_path, chroma_url=chroma.url + "/sub")).client()  # a path is kept (proxies)
    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    try:
        with pytest.raises(StoreError, match=r"not a Chroma server"):
            Store(Settings.load(home=tmp_path, chroma_url=f"http://127.0.0.1:{page.server_port}")).client()
    finally:
        page.shutdown()
        page.server_close()


def test_cli_with_a_bad_url_exits_2_with_one_line(tmp_path: Path) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    base = _copy_corpus(tmp_path)
    for args, url, expected in [
        (("ask", Q_910C, "--json"), nothing, f"error: cannot open the index at {nothing}: "),
        (("ingest",), nothing, f"error: cannot open the index at {nothing}: "),
        (("status",), "localhost:8000", "error: RAG_CHROMA_URL: 'localhost:8000' is not a Chroma server address"),
    ]:
        result = run_rag(*args, home=base / ".rag", env={"RAG_CHROMA_URL": url, "RAG_CORPUS": str(base / "corpus")})
        assert _one_line_error(result).startswith(expected), result.stderr
        assert not (base / ".rag" / "chroma").exists()


def test_collections_live_apart_on_a_chroma_server_and_go_when_removed(chroma: Chroma, tmp_path: Path,
                                                                       embedder: Embedder) -> None:
    from rag.assistant import Assistant
    from rag.collections import Collections
    from tests.test_collections import HR

    base = _copy_corpus(tmp_path)
    settings = _settings(chroma, "team", base)
    assert ingest([base / "corpus"], settings, embedder=embedder).exit_code == 0
    registry = Collections(settings)
    hr = registry.create("hr", corpus=base / "hr")
    (hr.corpus / HR[0]).write_text(HR[1])
    assert ingest([hr.corpus], registry.settings_for("hr"), embedder=embedder).added == 1
    root = Assistant(settings, embedder=embedder)
    answer = root.collection("hr").ask(HR[2])
    assert HR[3] in answer.text and {c.source for c in answer.citations} == {"hr/handbook.md"}
    assert "hr/handbook.md" not in root.documents()
    client = Store(settings).client()

    def held(prefix: str) -> list[str]:
        return [str(getattr(c, "name", c)) for c in client.list_collections()
                if str(getattr(c, "name", c)).startswith(prefix)]

    assert held(f"team-{hr.key}-") and held("team-g")  # its own generations beside the default's
    registry.remove("hr")
    assert held(f"team-{hr.key}-") == [] and held("team-g")  # gone from the server; the default is untouched
    assert len(root.documents()) == 2


# --- rag bench publish ------------------------------------------------------------------------------------------


def test_bench_publish_measures_answering_during_a_publish_and_the_take_up(chroma: Chroma, tmp_path: Path) -> None:
    tiny = ROOT / "tests" / "data" / "beir-tiny"
    settings = Settings.load(home=tmp_path / ".rag")
    work = tmp_path / "bench"
    result = bench_publish(tiny / "corpus.jsonl", tiny / "queries.jsonl", settings, work, 300, chroma.url,
                           replicas=1, clients=1, before_s=2.0, after_s=1.0, timeout_s=120.0)
    (row,) = result["rows"]
    assert result["size"] == 300 and result["shared_snapshot"] and result["writer_nice"] == 10
    assert row["took_up_s"] is not None and 0 <= row["took_up_s"] < 60, row  # cited the new document's fact
    for window in ("before", "during", "after"):
        assert row[window]["errors"] == 0, row
    assert row["before"]["requests"] > 0 and row["before"]["p95"] > 0, row
    assert not (work / "publish-replica-0" / "bm25").exists()  # the replica loaded the writer's snapshots
    assert "replica 0: first answer" in format_publish(result)
    writer = Store(bench_settings(settings, work / "publish-writer", "benchpub").model_copy(
        update={"chroma_url": chroma.url}))
    assert writer.open().count() == 300 and NEW not in writer.open().files()  # the new document went again
