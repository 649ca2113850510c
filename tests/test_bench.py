"""`ui.bench` on tiny inputs with the real model, pipeline and Chroma; figures are reported, never asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.embedding import Embedder, TorchEmbedder
from rag.index.store import Store
from rag.settings import Settings
from ui.bench.ingest import bench_ingest, format_ingest
from ui.bench.query import bench_query, format_query
from ui.bench.startup import bench_startup, format_startup
from ui.eval.cache import CachedEmbedder

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

TOPICS = ["graphene", "insulin", "malaria", "telomeres", "microbiome", "vaccines", "neurons", "zebrafish",
          "antibiotics", "photosynthesis"]


def tiny_beir(folder: Path, documents: int = 30, queries: int = 12) -> tuple[Path, Path]:
    """A BEIR-format corpus of short abstracts and a few claims about them."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus, claims = folder / "corpus.jsonl", folder / "queries.jsonl"
    with corpus.open("w") as out:
        for i in range(documents):
            topic = TOPICS[i % len(TOPICS)]
            text = (f"Study {i} measured how {topic} responds to treatment {i}. The effect size was {i + 3} percent "
                    f"in the cohort. Researchers found that {topic} levels doubled after {i + 2} weeks.")
            out.write(json.dumps({"_id": str(1000 + i), "title": f"{topic.title()} study number {i}",
                                  "text": text, "metadata": {}}) + "\n")
    with claims.open("w") as out:
        for i in range(queries):
            out.write(json.dumps({"_id": str(i), "text": f"{TOPICS[i % len(TOPICS)]} doubles after treatment {i}",
                                  "metadata": {}}) + "\n")
    return corpus, claims


def test_bench_ingest_matches_pipeline_chunks(tmp_path: Path, embedder: Embedder) -> None:
    corpus, _ = tiny_beir(tmp_path / "data")
    settings = Settings.load(home=tmp_path / ".rag")
    work = tmp_path / "work"
    result = bench_ingest(corpus, settings, work, docs=10, runs=2, embedder=embedder)
    assert result["documents"] == 10 and result["files_failed"] == 0
    built = Store(settings.model_copy(update={"home": work / "ingest-home", "collection": "bench-ingest"})).open()
    assert result["chunks"] == result["bare_chunks"] == built.count() > 0
    assert result["ratio"] > 0 and result["bare_chunks_per_s"] > 0 and result["peak_rss_mib"] > 0
    assert len(result["ratios"]) == 2 and "pipeline / bare" in format_ingest(result)
    assert not (settings.home).exists()  # the user's index is never touched


def test_bench_ingest_refuses_a_cached_embedder(tmp_path: Path) -> None:
    corpus, _ = tiny_beir(tmp_path / "data")
    cached = CachedEmbedder(tmp_path / "cache.sqlite", TorchEmbedder("all-MiniLM-L6-v2"))
    with pytest.raises(ValueError, match="uncached"):
        bench_ingest(corpus, Settings.load(home=tmp_path / ".rag"), tmp_path / "work", embedder=cached)


def test_bench_query_builds_exact_sizes_and_reuses_them(tmp_path: Path, embedder: Embedder) -> None:
    corpus, claims = tiny_beir(tmp_path / "data")
    settings = Settings.load(home=tmp_path / ".rag")
    work = tmp_path / "work"
    lines: list[str] = []
    result = bench_query(corpus, claims, settings, work, sizes=(50, 120), questions=5,
                         embedder=embedder, chunk_embedder=embedder,
                         serving_rss=False, progress=lines.append)
    assert [row["size"] for row in result["sizes"]] == [50, 120]
    for row in result["sizes"]:
        index = Store(settings.model_copy(update={"home": work / f"query-{row['size']}", "collection": "bench"})).open()
        assert index.count() == row["size"] == row["real_chunks"] + row["variant_chunks"]
        assert row["variant_chunks"] > 0 and not row["reused"]
        assert sum(r.chunks for r in index.files().values()) == row["size"]
        for key in ("retrieve_ms", "ask_ms"):
            assert 0 < row[key]["p50"] <= row[key]["p95"]
    sources = {chunk.source for chunk, _ in index.all_chunks()}
    assert any(s.startswith("variant-1/scifact/") for s in sources)
    assert any(s.startswith("scifact/") for s in sources)
    assert "synthetic" in result["note"] and "synthetic" in format_query(result)
    assert lines  # progress was reported

    again = bench_query(corpus, claims, settings, work, sizes=(50,), questions=2,
                        embedder=embedder, chunk_embedder=embedder)
    row = again["sizes"][0]
    assert row["reused"] and row["serving"]["peak_rss_mib"] > 0


def test_bench_startup_times_a_real_answer(seed_home: Path) -> None:
    result = bench_startup(seed_home / ".rag", "How many 910C processors will Huawei make?", runs=1)
    assert 0 < result["ask_first_output_s"]["median"] <= result["ask_exit_s"]["median"]
    assert result["import_rag_s"]["min"] > 0 and result["answer_first_line"]
    assert "import rag" in format_startup(result)
