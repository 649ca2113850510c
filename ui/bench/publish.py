"""`rag bench publish`: `rag serve` replicas answering from a Chroma server while an ingest there publishes a new
index generation: question latency before, during and after the publish, and how long each replica takes to
answer from the new generation.

The index is SciFact's real chunks and then synthetic variants of them (`ui.bench.synthetic`), written once
and reused. The replicas are real `rag serve` processes, each with a home of its own; with `shared` they and
the writer keep BM25 snapshots in one folder (`RAG_BM25_DIR`), so a replica loads the writer's snapshot,
without it each builds its own from the collection. Clients ask SciFact questions over HTTP the whole time;
the new generation is one new document, ingested by this process, whose fact only the new one can cite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ingest.pipeline import remove
from rag.embedding import embedder_for
from rag.errors import RagError
from rag.index.store import Store
from rag.settings import Settings
from ui.bench.common import Say, bench_settings, free_port, percentiles, quiet
from ui.bench.load import _process
from ui.bench.synthetic import build_index, real_chunks, recipe, reusable
from ui.eval.beir import read_queries
from ui.eval.cache import CachedEmbedder

FACT = "The Quillon tidal station at Varnholt delivered 812 megawatt-hours in its first winter of service."
QUESTION = "How many megawatt-hours did the Quillon tidal station at Varnholt deliver in its first winter?"
NEW = "publish-docs/quillon.md"
READY_S = 900.0  # for a replica to answer its first question (it loads BM25 first)


def bench_publish(corpus_jsonl: Path, queries_jsonl: Path, settings: Settings, work: Path, size: int, chroma_url: str,
                  *, replicas: int = 2, clients: int = 1, every_s: float = 1.0, before_s: float = 30.0,
                  after_s: float = 10.0,
                  timeout_s: float = 600.0, shared: bool = True, writer_nice: int = 10,
                  progress: Say | None = None) -> dict[str, Any]:
    say = progress or quiet
    writer = bench_settings(settings, work / "publish-writer", "benchpub").model_copy(
        update={"chroma_url": chroma_url, "bm25_dir": (work / "publish-bm25") if shared else None})
    _index(corpus_jsonl, writer, work, size, say)
    docs = work / "publish-docs"
    shutil.rmtree(docs, ignore_errors=True)
    servers = [_Replica(n, writer, work, shared) for n in range(replicas)]
    try:
        for server in servers:
            server.start(say)
        questions = read_queries(queries_jsonl)
        load = [_Client(server, questions[n::clients], every_s) for server in servers for n in range(clients)]
        watchers = [_Watcher(server) for server in servers]
        for thread in [*load, *watchers]:
            thread.start()
        say(f"answering for {before_s:g} s before the publish")
        time.sleep(before_s)
        began = time.time()
        docs.mkdir(parents=True)
        (docs / "quillon.md").write_text(f"# Quillon tidal station\n\n{FACT}\n", encoding="utf-8")
        say(f"`rag ingest` of one new document at nice {writer_nice}: plan, embed, write, publish (BM25 over the "
            "whole index)")
        _ingest(docs, writer, work, writer_nice)
        ended = time.time()
        stamp = int((Store(writer).active() or ("", "0"))[1]) / 1e9  # when the new snapshot went live
        say(f"  ingest took {ended - began:.1f} s; waiting for the replicas to answer from the new generation")
        deadline = time.monotonic() + timeout_s
        while any(w.cited_at is None for w in watchers) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(after_s)
        for thread in [*load, *watchers]:
            thread.stop()
        for thread in [*load, *watchers]:
            thread.join()
        rows = [_row(server, watcher, [c for c in load if c.server is server], began, stamp)
                for server, watcher in zip(servers, watchers, strict=True)]
    finally:
        for server in servers:
            server.stop()
    say("taking the new document out again (the index is reused by the next run)")
    remove([NEW], writer)
    return {"size": size, "replicas": replicas, "clients_per_replica": clients, "every_s": every_s,
            "shared_snapshot": shared,
            "ingest_seconds": round(ended - began, 1), "writer_nice": writer_nice,
            "live_after_s": round(stamp - began, 1), "rows": rows}


def _index(corpus_jsonl: Path, writer: Settings, work: Path, size: int, say: Say) -> None:
    everything = real_chunks(corpus_jsonl, writer)
    made_by = recipe(corpus_jsonl, writer, size, 0.02, 0, len(everything))
    store = Store(writer)
    if store.active() is not None and NEW in store.open().files():
        remove([NEW], writer)  # left by a run that was stopped
    if reusable(writer, size, made_by):
        say(f"reusing the {size}-chunk index on {writer.chroma_url}")
        return
    real = everything[:size]
    say(f"building a {size}-chunk index on {writer.chroma_url} (embedding {len(real)} real chunks, cached)")
    vectors = CachedEmbedder(work / "embeddings.sqlite", embedder_for(writer)).embed([c.embed_text() for c, _ in real])
    build_index(writer, real, vectors, size, made_by, say=say)


def _ingest(docs: Path, writer: Settings, work: Path, nice: int) -> None:
    """`rag ingest docs` as the writer, a process of its own at `nice` (a writer on a machine of its own would not
    take the replicas' cores; on one machine, nice keeps it from the clients' and replicas' share)."""
    env = _env(writer, writer.home, shared=True)  # the writer saves its snapshots where the settings say
    with open(work / "publish-ingest.log", "wb") as log:
        done = subprocess.run(["nice", "-n", str(nice), sys.executable, "-m", "ui.cli", "ingest", str(docs)],
                              stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work, check=False)
    if done.returncode != 0:
        raise RagError(f"the writer's `rag ingest` exited with {done.returncode}; see {work}/publish-ingest.log")


def _env(writer: Settings, home: Path, shared: bool) -> dict[str, str]:
    """A `rag` process's environment on the writer's collection, with `home` as its RAG_HOME; with `shared`, BM25
    snapshots in the writer's folder, else in its home."""
    env = {**os.environ, "RAG_HOME": str(home.resolve()), "RAG_CHROMA_URL": str(writer.chroma_url),
           "RAG_COLLECTION": writer.collection, "RAG_LLM": "extractive", "RAG_MODELS_DIR": str(writer.models.resolve())}
    env.pop("RAG_BM25_DIR", None)
    if shared:
        env["RAG_BM25_DIR"] = str(writer.bm25.resolve())
    return env


class _Replica:
    """A `rag serve` process on the writer's Chroma collection, with a home of its own."""

    def __init__(self, n: int, writer: Settings, work: Path, shared: bool) -> None:
        self.n = n
        self.home = work / f"publish-replica-{n}"
        shutil.rmtree(self.home, ignore_errors=True)
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = _env(writer, self.home, shared)
        self.process: subprocess.Popen[bytes] | None = None
        self.first_answer_s = 0.0
        self.rss: list[float] = []

    def start(self, say: Say) -> None:
        log = open(self.home / "serve.log", "ab")  # noqa: SIM115 - the process writes it until stopped
        self.process = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.home)
        began = time.monotonic()
        with httpx.Client() as client:
            while True:
                if self.process.poll() is not None or time.monotonic() - began > READY_S:
                    raise RagError(f"replica {self.n} did not answer within {READY_S:g} s; see {self.home}/serve.log")
                try:
                    if client.post(f"{self.url}/v1/ask", json={"question": "warm up"}, timeout=READY_S).status_code \
                            == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        self.first_answer_s = time.monotonic() - began
        say(f"replica {self.n} at {self.url}: first answer after {self.first_answer_s:.1f} s (BM25 loaded)")

    def sample_rss(self, client: httpx.Client) -> None:
        with contextlib.suppress(RagError, KeyError, TypeError, ValueError):
            self.rss.append(float(_process(client, self.url, {})["rss_mib"]))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Stoppable(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()


class _Client(_Stoppable):
    """Asks its questions in turn, one every `every_s` (or at once when the last took longer), until stopped:
    (start time, ms, error or None) each. Paced rather than back to back, so that the machine has cores to spare
    for the writer, as replicas sized for their load do."""

    def __init__(self, server: _Replica, questions: list[str], every_s: float) -> None:
        super().__init__()
        self.server, self.questions, self.every_s = server, questions or ["What is BM25?"], every_s
        self.outcomes: list[tuple[float, float, str | None]] = []

    def run(self) -> None:
        with httpx.Client() as client:
            n = 0
            while not self.stopping.is_set():
                question = self.questions[n % len(self.questions)]
                n += 1
                began, clock = time.time(), time.perf_counter()
                try:
                    response = client.post(f"{self.server.url}/v1/ask", json={"question": question}, timeout=120)
                    error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                took = time.perf_counter() - clock
                self.outcomes.append((began, took * 1000, error))
                self.stopping.wait(max(0.0, self.every_s - took))


class _Watcher(_Stoppable):
    """Asks the new document's question every second; notes when the replica first cites it."""

    def __init__(self, server: _Replica) -> None:
        super().__init__()
        self.server = server
        self.cited_at: float | None = None

    def run(self) -> None:
        with httpx.Client() as client:
            while not self.stopping.is_set():
                self.server.sample_rss(client)
                if self.cited_at is None:
                    try:
                        body = client.post(f"{self.server.url}/v1/ask", json={"question": QUESTION},
                                           timeout=120).json()
                        if any(c.get("source") == NEW for c in body.get("citations", [])):
                            self.cited_at = time.time()
                    except (httpx.HTTPError, ValueError):
                        pass
                self.stopping.wait(1.0)


def _row(server: _Replica, watcher: _Watcher, load: list[_Client], began: float, stamp: float) -> dict[str, Any]:
    outcomes = [o for client in load for o in client.outcomes]
    took = watcher.cited_at
    windows = {"before": [o for o in outcomes if o[0] < began],
               "during": [o for o in outcomes if o[0] >= began and (took is None or o[0] < took)],
               "after": [o for o in outcomes if took is not None and o[0] >= took]}
    return {"replica": server.n, "first_answer_s": round(server.first_answer_s, 1),
            "took_up_s": round(took - stamp, 1) if took is not None else None,
            "peak_rss_mib": round(max(server.rss), 0) if server.rss else None,
            **{name: {"requests": len(found), "errors": sum(1 for o in found if o[2]),
                      **percentiles([o[1] for o in found if not o[2]])} for name, found in windows.items()}}


def format_publish(result: dict[str, Any]) -> str:
    r = result
    lines = [f"{r['size']} chunks, {r['replicas']} replicas x {r['clients_per_replica']} clients (a question every "
             f"{r['every_s']:g} s each), BM25 snapshot "
             f"{'shared by the writer' if r['shared_snapshot'] else 'built by each replica'}; ingest of one new "
             f"document (`rag ingest` at nice {r['writer_nice']}) {r['ingest_seconds']} s (live "
             f"{r['live_after_s']} s after it began)"]
    for row in r["rows"]:
        took = f"{row['took_up_s']} s after it went live" if row["took_up_s"] is not None else "never (timed out)"
        lines.append(f"replica {row['replica']}: first answer {row['first_answer_s']} s; answered from the new "
                     f"generation {took}; peak RSS {row['peak_rss_mib']} MiB")
        for name in ("before", "during", "after"):
            w = row[name]
            lines.append(f"  {name:6}  {w['requests']:5} requests, {w['errors']} errors, p50 {w['p50']} ms, "
                         f"p95 {w['p95']} ms, max {w['max']} ms")
    return "\n".join(lines)
