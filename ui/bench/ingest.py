"""`rag bench ingest`: the pipeline's throughput against a bare encode of the same chunks by the same model."""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from ingest.pipeline import ingest
from rag.embedding import Embedder, embedder_for
from rag.errors import RagError
from rag.index.store import Store
from rag.settings import Settings
from ui.bench.common import Say, bench_settings, peak_rss_mib, quiet, side_by_side, table
from ui.eval.beir import read_corpus
from ui.eval.cache import CachedEmbedder
from ui.eval.retrieval import file_stem, markdown, write_documents


class Phases:
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
    say = progress or quiet
    plain = embedder or embedder_for(settings)
    if isinstance(plain, CachedEmbedder):
        raise ValueError("bench_ingest needs an uncached Embedder: a cache would hide the encoding cost")
    folder = work / "ingest-docs" / "scifact"
    shutil.rmtree(folder, ignore_errors=True)
    written = write_documents({f"{file_stem(d['_id'])}.md": markdown(d["title"], d["text"])
                               for d in read_corpus(corpus_jsonl, docs)}, folder)
    bench = bench_settings(settings, work / "ingest-home", "bench-ingest")
    say(f"ingest: {written} documents, model {plain.name}, batch {plain.batch_size}; loading and warming the model")
    plain.embed(["A sentence to warm the model up before anything is timed."] * plain.batch_size)
    rounds: list[dict[str, Any]] = []
    for n in range(1, runs + 1):
        say(f"round {n}/{runs}: pipeline")
        began = time.perf_counter()
        report = ingest([folder], bench, rebuild=True, progress=Phases(say), embedder=plain)
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


def format_ingest(result: dict[str, Any]) -> str:
    """`bench_ingest`'s result as a plain-text table, for people."""
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
    return table([f"ingest (medians of {r['runs']} rounds)", ""], rows)


def format_ingest_backends(results: dict[str, dict[str, Any]]) -> str:
    """Each backend's table, then one line comparing them (measured in this one run)."""
    first = next(iter(results))
    base = results[first]["pipeline_chunks_per_s"]
    line = "; ".join(f"{b} {r['pipeline_chunks_per_s']:.1f} chunks/s ({r['pipeline_chunks_per_s'] / base:.2f}x "
                     f"{first}, pipeline/bare {r['ratio']:.3f})" for b, r in results.items())
    return side_by_side(results, format_ingest, line)
