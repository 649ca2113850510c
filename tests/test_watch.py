"""Watched folders with a real watcher (watchfiles, inotify): `rag serve --watch` follows creates, edits
(rename over save), deletes and bulk copies; `rag watch` killed with SIGKILL during a sync leaves the
last published index answering, and the next run completes it."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.settings import Settings
from tests.helpers import indexed_copy, serving

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

WATCH_ENV = {"RAG_WATCH_QUIET_S": "0.5"}
FOLLOW_S = 60.0  # answers follow a change within seconds; generous for a loaded CI machine


def eventually(check: Callable[[], Any], within: float = FOLLOW_S) -> Any:
    """`check()`'s first truthy result, polled until `within` seconds have passed (then the test fails)."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within} s: {check.__doc__ or check}")
        time.sleep(0.3)


@pytest.fixture
def watched_server(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[str, Path]]:
    base = indexed_copy(tmp_path, embedder)
    with serving(base, "--watch", env=WATCH_ENV) as url:
        yield url, base / "corpus"


def test_serve_watch_follows_creates_edits_deletes_and_bulk_copies(watched_server: tuple[str, Path],
                                                                  tmp_path: Path) -> None:
    url, corpus = watched_server
    client = httpx.Client(base_url=url, timeout=60)

    def cites(question: str, source: str, words: str) -> bool:
        data = client.post("/v1/ask", json={"question": question}).json()
        return any(c["source"] == source and words in c["quote"] for c in data.get("citations", []))

    def sources() -> set[str]:
        return {d["source"] for d in client.get("/v1/documents", params={"limit": 1000}).json()["documents"]}

    status = client.get("/v1/status").json()
    assert status["watch"]["folders"] == [str(corpus.resolve())]

    (corpus / "ferry.md").write_text("# Ferry\n\nThe Brellin ferry crosses the Ostra fjord four times a day.\n")
    eventually(lambda: cites("How often does the Brellin ferry cross?", "corpus/ferry.md", "four times"))

    # An editor's save: the new text written to a temporary file, renamed over the old one.
    (corpus / ".ferry.md.swp").write_text("# Ferry\n\nThe Brellin ferry crosses the Ostra fjord six times a day.\n")
    os.replace(corpus / ".ferry.md.swp", corpus / "ferry.md")
    eventually(lambda: cites("How often does the Brellin ferry cross?", "corpus/ferry.md", "six times"))

    (corpus / "ferry.md").unlink()
    eventually(lambda: not cites("How often does the Brellin ferry cross?", "corpus/ferry.md", "times"))
    assert "corpus/ferry.md" not in sources()

    # A bulk copy: 40 files dropped at once become one or a few syncs, none of them read half written.
    drop = tmp_path / "drop"
    drop.mkdir()
    for i in range(40):
        (drop / f"lamp-{i:02d}.md").write_text(f"# Lamp {i}\n\nLamp number {i} of the Quibbleflux series "
                                               f"burns {i + 3} hours on one filling of oil.\n")
    syncs = client.get("/v1/status").json()["watch"]["syncs"]
    shutil.copytree(drop, corpus / "lamps")
    eventually(lambda: {f"corpus/lamps/lamp-{i:02d}.md" for i in range(40)} <= sources())
    watch = eventually(lambda: (w := client.get("/v1/status").json()["watch"])["pending"] == 0 and w)
    assert watch["syncs"] - syncs <= 6 and not watch["last_error"], watch  # batched, not one sync per file
    assert cites("How long does lamp number 17 burn?", "corpus/lamps/lamp-17.md", "20 hours")


def _lock_held(home: Path) -> bool:
    """Whether an ingest holds the writer lock now (a sync is writing)."""
    with open(home / "ingest.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_a_watch_killed_during_a_sync_leaves_the_old_index_and_the_next_run_completes(
        tmp_path: Path, embedder: Embedder) -> None:
    base = indexed_copy(tmp_path, embedder)
    home, corpus = base / ".rag", base / "corpus"
    settings = Settings.load(home=home, corpus=corpus)
    env = {**os.environ, **WATCH_ENV, "RAG_HOME": str(home), "RAG_CORPUS": str(corpus)}
    command = [sys.executable, "-m", "ui.cli", "watch", str(corpus)]
    log = tmp_path / "watch.log"

    def started(out: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    with open(log, "wb") as out:
        proc = started(out)
        try:
            eventually(lambda: b"added 0, updated 0" in log.read_bytes())  # the first sync: nothing new
            for i in range(60):
                body = " ".join(f"Sentence {j} of note {i} is about topic {i * j}." for j in range(40))
                (corpus / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n{body}")
            eventually(lambda: _lock_held(home), within=30)  # the sync is writing
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
    reader = Assistant(settings, embedder=embedder)
    assert set(reader.documents()) == {"corpus/deepseek-huawei-nvidia-buying-frenzy.md",
                                       "corpus/podcast-insights-china-ai-chips.md"}  # the last published index
    assert not reader.ask("How many 910C processors will Huawei make?").abstained

    with open(log, "wb") as out:
        proc = started(out)
        try:
            eventually(lambda: b"added 60," in log.read_bytes(), within=180)  # the next run completes it
        finally:
            proc.send_signal(signal.SIGTERM)  # a service manager's stop: the watch ends cleanly
            proc.wait(timeout=60)
    assert proc.returncode == 0, log.read_text()
    reader.refresh()
    assert len(reader.documents()) == 62
