"""`rag bench`: ingest throughput, warm query latency at several index sizes, and cold-start time.

Benchmarks report figures; they never assert timings. Each returns a plain dict (the `--json`
output) and `format_bench` renders it for people.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import chunk_document
from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.errors import RagError
from rag.golden import read_jsonl
from rag.index.store import Store, fingerprint
from rag.index.writer import IndexWriter
from rag.memory import memory_mib
from rag.settings import Settings
from rag.types import Chunk, FileRecord, Section, SourceDocument
from ui.eval.cache import CachedEmbedder
from ui.eval.metrics import mean, percentile
from ui.eval.retrieval import file_stem, markdown, write_documents

Say = Callable[[str], None]

VARIANT_NOTE = (
    "chunks beyond the real SciFact chunks are synthetic variants: copies of real chunks under a new "
    "source (variant-N/<doc>), text prefixed with a variant tag, vector = real vector + Gaussian noise "
    "(re-normalised). Fair for latency: the dense search walks an HNSW graph of the same size and "
    "dimension, and BM25 scores every chunk holding a query term; repeating the vocabulary makes its "
    "posting lists longer than a real corpus of that size would (pessimistic for BM25)."
)


def _quiet(_: str) -> None:
    pass


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux's VmHWM where there is one: `ru_maxrss` of a process started by another starts from
    the parent's peak, which would make a small process look as big as its launcher.
    """
    peak = memory_mib()["peak"]
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10, 1)  # bytes on macOS, KiB on Linux


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, mean and max of `values` (linear interpolation between ranks)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0}
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "mean": round(mean(values), 2), "max": round(max(values), 2)}


def read_beir_corpus(corpus_jsonl: Path, limit: int | None = None) -> list[dict[str, str]]:
    """The first `limit` documents (`_id`, `title`, `text`) of a BEIR corpus that have text."""
    docs: list[dict[str, str]] = []
    try:
        for d in read_jsonl(corpus_jsonl):
            if limit is not None and len(docs) >= limit:
                break
            if str(d.get("text") or "").strip():
                docs.append({"_id": str(d["_id"]), "title": str(d.get("title") or "").strip(),
                             "text": str(d["text"]).strip()})
    except KeyError as exc:
        raise RagError(f"{corpus_jsonl}: not a readable BEIR corpus.jsonl (no {exc})") from None
    return docs


def read_queries(queries_jsonl: Path) -> list[str]:
    """The query texts of a BEIR queries.jsonl, in file order."""
    try:
        return [str(q["text"]) for q in read_jsonl(queries_jsonl)]
    except KeyError as exc:
        raise RagError(f"{queries_jsonl}: not a readable BEIR queries.jsonl (no {exc})") from None


def _bench_settings(settings: Settings, home: Path, collection: str) -> Settings:
    """The caller's settings on an index of the benchmark's own, answered offline (extractive), with the
    caller's exported ONNX models (an export inside a timed or measured process would be measured too)."""
    return settings.model_copy(update={"home": home, "collection": collection, "chroma_url": None,
                                       "llm": "extractive", "models_dir": settings.models})


class _Phases:
    """The pipeline's progress protocol, reported as a few status lines."""

    def __init__(self, say: Say) -> None:
        self.say, self.done, self.total, self.phase, self.next = say, 0, 0, "", 0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done, self.next = phase, total, 0, max(total // 4, 1)
        self.say(f"  {phase}: {total}")

    def advance(self, n: int) -> None:
        self.done += n
        if self.phase == "embedding" and self.done >= self.next and self.done < self.total:
            self.say(f"  embedding: {self.done}/{self.total}")
            self.next += max(self.total // 4, 1)

    def note(self, text: str) -> None:
        pass  # a benchmark reports phases, not each step

    def failed(self, source: str, reason: str) -> None:
        self.say(f"  failed: {source}: {reason}")


def bench_ingest(corpus_jsonl: Path, settings: Settings, work: Path, docs: int = 400, *,
                 runs: int = 3, embedder: Embedder | None = None, progress: Say | None = None) -> dict[str, Any]:
    """Ingest throughput of the real pipeline against a bare encode of the same chunks.

    The first `docs` documents are written as Markdown (`# title`, blank line, text) under
    `work/ingest-docs/scifact/`. Each of `runs` rounds ingests them with `rebuild=True` into
    `work/ingest-home` with a plain (never cached) `Embedder`, already loaded and warmed up, then
    reads the chunks back from the built index, puts them in pipeline order (source, position) and
    encodes their `embed_text()` again with the same model and batch size. A round's ratio is the
    pipeline's share of bare-model speed while writing; the figures reported are medians over rounds
    (the two halves of a round run back to back, so machine noise hits both alike).
    """
    say = progress or _quiet
    plain = embedder or Embedder.from_settings(settings)
    if isinstance(plain, CachedEmbedder):
        raise ValueError("bench_ingest needs an uncached Embedder: a cache would hide the encoding cost")
    folder = work / "ingest-docs" / "scifact"
    shutil.rmtree(folder, ignore_errors=True)
    written = write_documents({f"{file_stem(d['_id'])}.md": markdown(d["title"], d["text"])
                               for d in read_beir_corpus(corpus_jsonl, docs)}, folder)
    bench = _bench_settings(settings, work / "ingest-home", "bench-ingest")
    say(f"ingest: {written} documents, model {plain.name}, batch {plain.batch_size}; loading and warming the model")
    plain.embed(["A sentence to warm the model up before anything is timed."] * plain.batch_size)
    rounds: list[dict[str, Any]] = []
    for n in range(1, runs + 1):
        say(f"round {n}/{runs}: pipeline")
        began = time.perf_counter()
        report = ingest([folder], bench, rebuild=True, progress=_Phases(say), embedder=plain)
        wall = time.perf_counter() - began
        if not report.chunks:
            raise RagError(f"the pipeline wrote no chunks from {folder} ({len(report.failed)} files failed)")
        index = Store(bench).open()
        chunks = sorted((chunk for chunk, _ in index.all_chunks()),
                        key=lambda c: (c.source, c.index))
        texts = [c.embed_text() for c in chunks]
        say(f"round {n}/{runs}: bare encode of the same {len(texts)} chunks")
        began = time.perf_counter()
        plain.embed(texts)
        bare = time.perf_counter() - began
        rounds.append({"chunks": report.chunks, "bare_chunks": len(texts), "failed": len(report.failed),
                       "write_s": report.write_seconds, "wall_s": wall, "bare_s": bare,
                       "ratio": report.chunks / report.write_seconds / (len(texts) / bare),
                       "end_to_end_ratio": report.chunks / wall / (len(texts) / bare)})

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in rounds))

    chunks, bare_chunks = rounds[-1]["chunks"], rounds[-1]["bare_chunks"]
    return {
        "documents": written, "files_failed": rounds[-1]["failed"], "chunks": chunks,
        "bare_chunks": bare_chunks, "model": plain.name, "batch_size": plain.batch_size,
        "torch_threads": _torch_threads(), "runs": runs,
        "bare_chunks_from": "read back from the built index, in pipeline order (source, position)",
        "pipeline_write_seconds": round(median("write_s"), 2),
        "pipeline_chunks_per_s": round(chunks / median("write_s"), 2),
        "pipeline_wall_seconds": round(median("wall_s"), 2),
        "end_to_end_chunks_per_s": round(chunks / median("wall_s"), 2),
        "bare_encode_seconds": round(median("bare_s"), 2),
        "bare_chunks_per_s": round(bare_chunks / median("bare_s"), 2),
        "ratio": round(median("ratio"), 3),
        "end_to_end_ratio": round(median("end_to_end_ratio"), 3),
        "ratios": [round(r["ratio"], 3) for r in rounds],
        "peak_rss_mib": peak_rss_mib(),
    }


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def real_chunks(corpus_jsonl: Path, settings: Settings) -> list[tuple[Chunk, str]]:
    """Every SciFact document as title + text (source `scifact/<id>`), cut by the product chunker; with its hash."""
    out: list[tuple[Chunk, str]] = []
    for doc in read_beir_corpus(corpus_jsonl):
        sha = hashlib.sha256(f"{doc['title']}\n{doc['text']}".encode()).hexdigest()
        source = SourceDocument(source=f"scifact/{file_stem(doc['_id'])}", title=doc["title"], text=doc["text"],
                                sha256=sha, sections=(Section(0),))
        out.extend((c, sha) for c in chunk_document(source, settings.chunk_tokens, settings.chunk_overlap))
    return out


def _stream(real: list[tuple[Chunk, str]], vectors: np.ndarray[Any, Any], size: int, noise: float, seed: int,
            page: int = 1000) -> Iterator[tuple[list[Chunk], np.ndarray[Any, Any], list[str]]]:
    """The first `size` chunks of: the real chunks, then variant rounds 1, 2, ... of them, page by page."""
    if not real:
        raise RagError("no real chunks to build an index from")
    made, variant = 0, 0
    while made < size:
        rng = np.random.default_rng([seed, variant])
        for at in range(0, len(real), page):
            part = real[at:at + min(page, size - made)]
            if not part:
                return
            vecs = vectors[at:at + len(part)]
            if variant == 0:
                yield [c for c, _ in part], vecs, [sha for _, sha in part]
            else:
                tag = f"[variant {variant}] "
                chunks = [_variant(c, variant, tag) for c, _ in part]
                noisy = vecs + rng.normal(0.0, noise, vecs.shape).astype(np.float32)
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                shas = [hashlib.sha256(f"{variant}\0{sha}".encode()).hexdigest() for _, sha in part]
                yield chunks, noisy.astype(np.float32), shas
            made += len(part)
            if made >= size:
                return
        variant += 1


def _variant(chunk: Chunk, variant: int, tag: str) -> Chunk:
    source = f"variant-{variant}/{chunk.source}"
    text = tag + chunk.text
    cid = hashlib.sha256(f"{source}\0{chunk.start}\0{text}".encode()).hexdigest()[:32]
    return Chunk(id=cid, source=source, title=chunk.title, text=text, start=chunk.start,
                 end=chunk.start + len(text), index=chunk.index, headings=chunk.headings, page=chunk.page)


def _recipe(corpus_jsonl: Path, settings: Settings, size: int, noise: float, seed: int, real: int) -> str:
    spec = {"corpus": str(corpus_jsonl.resolve()), "bytes": corpus_jsonl.stat().st_size, "size": size,
            "noise": noise, "seed": seed, "real": real, "fingerprint": fingerprint(settings), "v": 1}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _reusable(settings: Settings, size: int, recipe: str) -> bool:
    store = Store(settings)
    if store.active() is None:
        return False
    index = store.open()
    return index.metadata.get("bench_recipe") == recipe and index.count() == size


def build_index(settings: Settings, real: list[tuple[Chunk, str]], vectors: np.ndarray[Any, Any], size: int,
                recipe: str, noise: float = 0.02, seed: int = 0,
                say: Say = _quiet) -> dict[str, float]:
    """Write exactly `size` chunks (real, then variants) into a new generation and publish it (through the
    index's one writer, under its lock, like an ingest)."""
    began = time.perf_counter()
    with IndexWriter.open(Store(settings), rebuild=True) as writer:
        writer.start(int(vectors.shape[1]))
        ledger: dict[str, list[Any]] = {}  # source -> [sha, chunks, title]
        written = 0
        for chunks, vecs, shas in _stream(real, vectors, size, noise, seed):
            writer.write(chunks, vecs, shas)
            for c, sha in zip(chunks, shas, strict=True):
                ledger.setdefault(c.source, [sha, 0, c.title])[1] += 1
            written += len(chunks)
            if written % 10_000 == 0 or written == size:
                say(f"  {written}/{size} chunks written ({time.perf_counter() - began:.0f} s)")
        upserted = time.perf_counter()
        writer.finish([FileRecord(source, sha, count, title, time.time())
                       for source, (sha, count, title) in ledger.items()])
        recorded = time.perf_counter()
        say(f"  {len(ledger)} ledger records ({recorded - upserted:.0f} s); publishing (BM25)")
        writer.publish(bench_recipe=recipe, last_ingest=time.time())
    done = time.perf_counter()
    return {"build_seconds": round(done - began, 1), "upsert_seconds": round(upserted - began, 1),
            "ledger_seconds": round(recorded - upserted, 1), "publish_seconds": round(done - recorded, 1),
            "sources": len(ledger)}


def bench_query(corpus_jsonl: Path, queries_jsonl: Path, settings: Settings, work: Path,
                sizes: Sequence[int] = (1000, 10000, 100000), questions: int = 100, *,
                embedder: Embedder | None = None, chunk_embedder: Embedder | None = None, warmup: int = 5,
                noise: float = 0.02, seed: int = 0, serving_rss: bool = True,
                progress: Say | None = None) -> dict[str, Any]:
    """Warm latency of `Assistant.retrieve` and `Assistant.ask` (extractive) on indexes of each size.

    Each size gets its own index in `work/query-<size>`, reused when it already holds exactly
    that many chunks of the same recipe. Real chunks are embedded through `chunk_embedder`
    (default: a `CachedEmbedder` at `work/embeddings.sqlite`, so the cost is paid once); the
    questions through `embedder` (default: a plain `Embedder`, so no question is ever cached).
    With `serving_rss`, a fresh process opens each index and answers the same questions, and
    its peak RSS is reported as the serving memory.
    """
    say = progress or _quiet
    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError("sizes must be positive chunk counts")
    queries = read_queries(queries_jsonl)
    timed = queries[:questions]
    warm = queries[questions:questions + warmup] or timed[:warmup]
    chunked = time.perf_counter()
    everything = real_chunks(corpus_jsonl, settings)
    real = everything[:max(sizes)]
    say(f"query: {len(everything)} real chunks ({time.perf_counter() - chunked:.1f} s to chunk); "
        f"embedding {len(real)} of them")
    cache = chunk_embedder or CachedEmbedder(work / "embeddings.sqlite", settings.embed_model,
                                             settings.embed_batch_size, settings.embed_backend,
                                             settings.models)
    began = time.perf_counter()
    vectors = cache.embed([c.embed_text() for c, _ in real])
    embed_s = time.perf_counter() - began
    asker = embedder or Embedder.from_settings(settings)
    results = []
    for size in sizes:
        bench = _bench_settings(settings, work / f"query-{size}", "bench")
        recipe = _recipe(corpus_jsonl, settings, size, noise, seed, len(everything))
        row: dict[str, Any] = {"size": size, "real_chunks": min(size, len(real)),
                               "variant_chunks": max(size - len(real), 0)}
        if _reusable(bench, size, recipe):
            say(f"size {size}: reusing {bench.home}")
            row.update(reused=True, build_seconds=None)
        else:
            say(f"size {size}: building {bench.home}")
            row.update(reused=False, **build_index(bench, real, vectors, size, recipe, noise, seed, say))
        row.update(_time_questions(bench, asker, timed, warm, say))
        if serving_rss:
            row["serving"] = _serving_probe(bench, timed)
        results.append(row)
        say(_row_line(row))
    return {
        "corpus": str(corpus_jsonl), "questions": len(timed), "warmup": len(warm), "answerer": "extractive",
        "mode": settings.mode, "k": settings.k, "candidates": settings.candidates,
        "real_chunks_available": len(everything),
        "chunk_embedding": {"seconds": round(embed_s, 1), "texts": len(real),
                            "cache_hits": getattr(cache, "hits", None), "cache_misses": getattr(cache, "misses", None)},
        "noise": noise, "note": VARIANT_NOTE, "sizes": results, "peak_rss_mib": peak_rss_mib(),
    }


def _time_questions(settings: Settings, embedder: Embedder, timed: list[str], warm: list[str],
                    say: Say) -> dict[str, Any]:
    assistant = Assistant(settings, embedder=embedder)
    began = time.perf_counter()
    index, _ = assistant.retriever.current()
    opened = time.perf_counter() - began
    if index.count() == 0:
        raise RagError(f"the index at {settings.home} is empty")
    for question in warm:
        assistant.ask(question)
    retrieve_ms: list[float] = []
    ask_ms: list[float] = []
    inner: dict[str, list[float]] = {"retrieve": [], "answer": []}
    abstained = 0
    for question in timed:
        t0 = time.perf_counter()
        assistant.retrieve(question)
        t1 = time.perf_counter()
        answer = assistant.ask(question)
        t2 = time.perf_counter()
        retrieve_ms.append((t1 - t0) * 1000)
        ask_ms.append((t2 - t1) * 1000)
        inner["retrieve"].append(answer.timings_ms["retrieve"])
        inner["answer"].append(answer.timings_ms["answer"])
        abstained += answer.abstained
    say(f"  timed {len(timed)} questions")
    return {"open_seconds": round(opened, 2), "retrieve_ms": percentiles(retrieve_ms), "ask_ms": percentiles(ask_ms),
            "ask_parts_ms": {k: percentiles(v) for k, v in inner.items()}, "abstained": abstained}


_PROBE = """
import json, resource, sys, time

def rss():  # VmHWM, not ru_maxrss: on Linux a child's ru_maxrss starts from its parent's peak
    try:
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}
    except OSError:
        peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        return {"VmRSS": peak, "VmHWM": peak}

began = time.perf_counter()
from rag import Assistant, Settings
imported = rss()["VmRSS"]
assistant = Assistant.open(Settings(**json.loads(sys.argv[1])))
opened = rss()["VmRSS"]
assistant.ask("warm up")
first = time.perf_counter() - began
answered = rss()["VmRSS"]
for question in json.loads(open(sys.argv[2]).read()):
    assistant.ask(question)
end = rss()
print(json.dumps({"peak_rss_mib": end["VmHWM"], "rss_mib": {"after_import": imported, "after_open": opened,
                  "after_first_answer": answered, "after_all": end["VmRSS"]},
                  "open_and_first_answer_seconds": round(first, 2)}))
"""


def _serving_probe(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """Peak RSS of a fresh process that opens the index and answers `questions` (what `rag serve` holds)."""
    keep = settings.model_dump(mode="json", exclude={"auth", "api_token", "llm_api_key"})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(questions, handle)
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(keep), handle.name], capture_output=True,
                              text=True, timeout=1800, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise RagError(f"the serving probe failed: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["questions"] = len(questions)
    return result


def _row_line(row: dict[str, Any]) -> str:
    r, a = row["retrieve_ms"], row["ask_ms"]
    serving = row.get("serving", {}).get("peak_rss_mib")
    return (f"size {row['size']}: retrieve p50 {r['p50']:.1f} / p95 {r['p95']:.1f} ms, "
            f"ask p50 {a['p50']:.1f} / p95 {a['p95']:.1f} ms"
            + (f", serving peak RSS {serving:.0f} MiB" if serving else ""))


def _timed_run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(seconds to the first line of output, seconds to exit, that line) of one process."""
    with tempfile.TemporaryFile() as errors:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=cwd, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_s = time.perf_counter() - began
        proc.stdout.read()
        proc.wait()
        exit_s = time.perf_counter() - began
        if proc.returncode != 0:
            errors.seek(0)
            raise RagError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {errors.read().decode()[-500:]}")
    return first_s, exit_s, first.strip()


def _stats(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "all": [round(v, 3) for v in values]}


def bench_startup(home: Path, question: str, runs: int = 5, *, collection: str | None = None,
                  backend: str | None = None, progress: Say | None = None) -> dict[str, Any]:
    """Wall-clock seconds from launching `python -m ui.cli ask QUESTION` to its answer, and import costs.

    `first_output` is when the answer's first line arrives (stdout unbuffered), `exit` when the
    process has ended; `import rag` and a bare `python -c pass` show what the interpreter and our
    imports cost by themselves. With `backend`, `rag ask` runs with that `RAG_EMBED_BACKEND`
    (one untimed run first: it exports the ONNX graph when there is none yet), and `torch_imported`
    says whether the asking process imported torch.
    """
    say = progress or _quiet
    if runs < 1:
        raise ValueError("runs must be at least 1")
    env = {**os.environ, "RAG_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if collection:
        env["RAG_COLLECTION"] = collection
    if backend:
        env["RAG_EMBED_BACKEND"] = backend
    cwd = home.parent
    ask = [sys.executable, "-m", "ui.cli", "ask", question]
    if backend:
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from ui.cli import main; code = main(['ask', sys.argv[1]]); "
             "print('torch imported:', 'torch' in sys.modules); sys.exit(code)", question],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        if probe.returncode != 0:
            raise RagError(f"rag ask with RAG_EMBED_BACKEND={backend} failed: {probe.stderr.strip()[-300:]}")
        torch_imported = "torch imported: True" in probe.stdout
    first, ended, line = [], [], ""
    for n in range(runs):
        f, e, line = _timed_run(ask, env, cwd)
        first.append(f)
        ended.append(e)
        say(f"startup run {n + 1}/{runs}: answer after {f:.2f} s, exit after {e:.2f} s")
    imports = [_timed_run([sys.executable, "-c", "import rag"], env, cwd)[1] for _ in range(runs)]
    bare = [_timed_run([sys.executable, "-c", "pass"], env, cwd)[1] for _ in range(runs)]
    return {"home": str(home), "question": question, "runs": runs, "answer_first_line": line[:200],
            "backend": backend, "torch_imported": torch_imported if backend else None,
            "ask_first_output_s": _stats(first), "ask_exit_s": _stats(ended),
            "import_rag_s": _stats(imports), "python_s": _stats(bare)}


def format_bench(name: str, result: dict[str, Any]) -> str:
    """A plain-text table of a benchmark's result, for people."""
    if name == "ingest":
        r = result
        rows = [
            ["documents / chunks", f"{r['documents']} / {r['chunks']} (bare encode: {r['bare_chunks']})"],
            ["pipeline, while writing",
             f"{r['pipeline_chunks_per_s']:.1f} chunks/s ({r['pipeline_write_seconds']} s)"],
            ["pipeline, end to end", f"{r['end_to_end_chunks_per_s']:.1f} chunks/s ({r['pipeline_wall_seconds']} s)"],
            ["bare model encode", f"{r['bare_chunks_per_s']:.1f} chunks/s ({r['bare_encode_seconds']} s)"],
            ["pipeline / bare", f"{r['ratio']:.3f} (end to end {r['end_to_end_ratio']:.3f}); "
                                f"rounds: {', '.join(f'{x:.3f}' for x in r['ratios'])}"],
            ["model, batch, threads", f"{r['model']}, {r['batch_size']}, {r['torch_threads']}"],
            ["peak RSS", f"{r['peak_rss_mib']:.0f} MiB"],
        ]
        return _table([f"ingest (medians of {r['runs']} rounds)", ""], rows)
    if name == "query":
        table = []
        for row in result["sizes"]:
            serving = row.get("serving", {}).get("peak_rss_mib")
            build = "reused" if row["reused"] else f"{row['build_seconds']:.0f} s"
            table.append([f"{row['size']:,}", f"{row['variant_chunks']:,}", build,
                          f"{row['retrieve_ms']['p50']:.1f}", f"{row['retrieve_ms']['p95']:.1f}",
                          f"{row['ask_ms']['p50']:.1f}", f"{row['ask_ms']['p95']:.1f}",
                          f"{serving:.0f}" if serving is not None else "-"])
        head = ["chunks", "synthetic", "build", "retrieve p50 ms", "p95", "ask p50 ms", "p95", "serving RSS MiB"]
        return (_table(head, table) + f"\n{result['questions']} questions after {result['warmup']} warm-up, "
                f"{result['answerer']} answers, mode {result['mode']}, k {result['k']}; "
                f"peak RSS of this process {result['peak_rss_mib']:.0f} MiB\n{result['note']}")
    if name == "startup":
        rows = [[label, f"{result[key]['median']:.2f}", f"{result[key]['min']:.2f}"]
                for label, key in (("rag ask: first answer line", "ask_first_output_s"),
                                   ("rag ask: process exit", "ask_exit_s"),
                                   ('python -c "import rag"', "import_rag_s"), ("python -c pass", "python_s"))]
        return _table([f"startup ({result['runs']} runs)", "median s", "min s"], rows)
    return json.dumps(result, indent=2)


def format_backends(name: str, results: dict[str, dict[str, Any]]) -> str:
    """Each backend's table, then one line comparing them (measured in this one run)."""
    parts = [f"backend {backend}\n{format_bench(name, result)}" for backend, result in results.items()]
    first = next(iter(results))
    if name == "ingest":
        base = results[first]["pipeline_chunks_per_s"]
        line = "; ".join(f"{b} {r['pipeline_chunks_per_s']:.1f} chunks/s ({r['pipeline_chunks_per_s'] / base:.2f}x "
                         f"{first}, pipeline/bare {r['ratio']:.3f})" for b, r in results.items())
    else:
        line = "; ".join(f"{b} first answer line {r['ask_first_output_s']['median']:.2f} s, exit "
                         f"{r['ask_exit_s']['median']:.2f} s, torch imported: {r['torch_imported']}"
                         for b, r in results.items())
    return "\n\n".join(parts) + f"\n\nside by side: {line}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
