"""`rag bench query`: warm retrieve and answer latency on indexes of growing size, and the serving memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.assistant import Assistant
from rag.embedding import Embedder, embedder_for
from rag.errors import RagError
from rag.settings import Settings
from ui.bench.common import Say, bench_settings, peak_rss_mib, percentiles, quiet, table
from ui.bench.synthetic import VARIANT_NOTE, build_index, real_chunks, recipe, reusable
from ui.eval.beir import read_queries
from ui.eval.cache import CachedEmbedder


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
    say = progress or quiet
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
    cache = chunk_embedder or CachedEmbedder(work / "embeddings.sqlite", embedder_for(settings))
    began = time.perf_counter()
    vectors = cache.embed([c.embed_text() for c, _ in real])
    embed_s = time.perf_counter() - began
    asker = embedder or embedder_for(settings)
    results = []
    for size in sizes:
        bench = bench_settings(settings, work / f"query-{size}", "bench")
        made_by = recipe(corpus_jsonl, settings, size, noise, seed, len(everything))
        row: dict[str, Any] = {"size": size, "real_chunks": min(size, len(real)),
                               "variant_chunks": max(size - len(real), 0)}
        if reusable(bench, size, made_by):
            say(f"size {size}: reusing {bench.home}")
            row.update(reused=True, build_seconds=None)
        else:
            say(f"size {size}: building {bench.home}")
            row.update(reused=False, **build_index(bench, real, vectors, size, made_by, noise, seed, say))
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


def _serving_probe(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """Peak RSS of a fresh process that opens the index and answers `questions` (what `rag serve` holds)."""
    keep = settings.model_dump(mode="json", exclude={"auth", "api_token", "llm_api_key"})
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(questions, handle)
    try:
        done = subprocess.run([sys.executable, "-m", "ui.bench.probe", json.dumps(keep), handle.name],
                              capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
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


def format_query(result: dict[str, Any]) -> str:
    """`bench_query`'s result as a plain-text table, for people."""
    rows = []
    for row in result["sizes"]:
        serving = row.get("serving", {}).get("peak_rss_mib")
        build = "reused" if row["reused"] else f"{row['build_seconds']:.0f} s"
        rows.append([f"{row['size']:,}", f"{row['variant_chunks']:,}", build,
                     f"{row['retrieve_ms']['p50']:.1f}", f"{row['retrieve_ms']['p95']:.1f}",
                     f"{row['ask_ms']['p50']:.1f}", f"{row['ask_ms']['p95']:.1f}",
                     f"{serving:.0f}" if serving is not None else "-"])
    head = ["chunks", "synthetic", "build", "retrieve p50 ms", "p95", "ask p50 ms", "p95", "serving RSS MiB"]
    return (table(head, rows) + f"\n{result['questions']} questions after {result['warmup']} warm-up, "
            f"{result['answerer']} answers, mode {result['mode']}, k {result['k']}; "
            f"peak RSS of this process {result['peak_rss_mib']:.0f} MiB\n{result['note']}")
