"""`rag bench ingest --cluster`: the local ingest and cluster ingests of the same files, side by side in one run,
on text (embedding-bound) and on scanned PDFs (OCR-bound), and a projection to more workers from the measured
per-CPU rates (labelled as one: it is arithmetic, not a measurement).

With `--cluster local` the benchmark starts its own clusters on this machine (`ui.bench.cluster`): one worker
node with this machine's CPUs (the same hardware as the local path: the cost of going through Ray), and as
many single-CPU worker nodes (the speed-up from running files side by side). The driver runs here too, so
its writes share the cores with the workers. With an ADDRESS it measures that cluster as it is.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

from ingest.pipeline import Report, ingest
from rag.errors import RagError
from rag.settings import Settings
from ui.bench.cluster import LocalCluster
from ui.bench.common import Say, bench_settings, quiet, table
from ui.bench.ingest import Phases
from ui.eval.beir import read_corpus
from ui.eval.retrieval import file_stem, markdown, write_documents

PROJECTED = (1, 2, 4, 8, 16, 32, 64)  # single-CPU workers in the projection table
PAGES = 4  # pages of each scanned PDF, each a SciFact abstract


def bench_cluster(corpus_jsonl: Path, settings: Settings, work: Path, docs: int = 1000, scans: int = 24, *,
                  address: str = "local", progress: Say | None = None) -> dict[str, Any]:
    """Ingest `docs` SciFact documents (Markdown) and `scans` scanned PDFs of `PAGES` abstracts each, each
    corpus locally and on each cluster shape, end to end from a fresh index (model loading, the workers'
    start and the publish included); then project chunks/s and pages/s to more workers."""
    say = progress or quiet
    cpus = os.cpu_count() or 1
    documents = read_corpus(corpus_jsonl, max(docs, scans * PAGES))
    text = work / "cluster-text" / "scifact"
    scanned = work / "cluster-scans" / "scans"
    for folder in (text, scanned):
        shutil.rmtree(folder, ignore_errors=True)
    write_documents({f"{file_stem(d['_id'])}.md": markdown(d["title"], d["text"]) for d in documents[:docs]}, text)
    scanned.mkdir(parents=True)
    say(f"rendering {scans} scanned PDFs of {PAGES} pages")
    for n in range(scans):
        pages = [documents[(n * PAGES + i) % len(documents)] for i in range(PAGES)]
        _scan(scanned / f"scan-{n:04}.pdf", [f"{d['title']}. {d['text']}" for d in pages])
    shapes = {f"1 worker x {cpus} CPUs": [cpus], f"{cpus} workers x 1 CPU": [1] * cpus} if address == "local" \
        else {f"cluster {address}": []}
    runs: list[dict[str, Any]] = []
    for corpus, folder in (("text", text), ("scans", scanned)):
        runs.append(_run(corpus, "local", folder, settings, work, say))
        for shape, workers in shapes.items():
            if address == "local":
                say(f"starting a local cluster: {shape}")
                with LocalCluster(workers=workers, env={"RAG_MODELS_DIR": str(settings.models.resolve())}) as c:
                    runs.append(_run(corpus, shape, folder, settings, work, say, c.address, sum(workers)))
            else:
                runs.append(_run(corpus, shape, folder, settings, work, say, address, 0))
    for run in runs:
        base = next(r for r in runs if r["corpus"] == run["corpus"] and r["path"] == "local")
        run["vs_local"] = round(base["seconds"] / run["seconds"], 3)
    return {"cpus": cpus, "documents": docs, "scans": scans, "runs": runs, "projection": _projection(runs)}


def _run(corpus: str, path: str, folder: Path, settings: Settings, work: Path, say: Say,
         address: str | None = None, cpus: int = 0) -> dict[str, Any]:
    home = work / f"cluster-{corpus}-{file_stem(path)}"
    shutil.rmtree(home, ignore_errors=True)
    chosen = bench_settings(settings, home, "bench-cluster")
    say(f"{corpus}, {path}: ingest")
    began = time.perf_counter()
    report: Report = ingest([folder], chosen, rebuild=True, progress=Phases(say), cluster=address)
    seconds = time.perf_counter() - began
    if report.failed or not report.chunks:
        raise RagError(f"bench ingest of {folder} ({path}) failed for {len(report.failed)} files: "
                       f"{next(iter(report.failed.values()), 'no chunks written')}")
    files = report.added
    pages = files * PAGES if corpus == "scans" else 0
    return {"corpus": corpus, "path": path, "cpus": cpus, "files": files, "chunks": report.chunks, "pages": pages,
            "seconds": round(seconds, 2), "files_per_s": round(files / seconds, 2),
            "chunks_per_s": round(report.chunks / seconds, 2), "pages_per_s": round(pages / seconds, 3),
            "store_chunks_per_s": round(report.chunks / report.store_seconds, 1) if report.store_seconds else None}


def _projection(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Chunks/s (text) and pages/s (scans) for n single-CPU workers: n times the per-CPU rate measured on the
    widest cluster run, capped by what the one writer stored per second in the text runs."""
    cluster = [r for r in runs if r["path"] != "local" and r["cpus"]]
    if not cluster:
        return {}
    widest = max(r["cpus"] for r in cluster)
    text = next(r for r in cluster if r["corpus"] == "text" and r["cpus"] == widest)
    scans = next(r for r in cluster if r["corpus"] == "scans" and r["cpus"] == widest)
    per_cpu_chunks = text["chunks_per_s"] / widest
    per_cpu_pages = scans["pages_per_s"] / widest
    ceiling = max(r["store_chunks_per_s"] or 0 for r in runs if r["corpus"] == "text")
    chunks_per_page = scans["chunks"] / max(scans["pages"], 1)
    rows = [{"workers": n, "chunks_per_s": round(min(n * per_cpu_chunks, ceiling), 1),
             "pages_per_s": round(min(n * per_cpu_pages, ceiling / chunks_per_page), 2),
             "hours_per_million_chunks": round(1e6 / min(n * per_cpu_chunks, ceiling) / 3600, 1)}
            for n in PROJECTED]
    return {"label": "projection from measured per-CPU rates, not a measurement",
            "per_cpu_chunks_per_s": round(per_cpu_chunks, 2), "per_cpu_pages_per_s": round(per_cpu_pages, 3),
            "writer_ceiling_chunks_per_s": ceiling, "rows": rows}


def _scan(path: Path, texts: list[str]) -> None:
    """Pages as a scanner gives them: each text drawn on a 200-dpi Letter page, saved as an image-only PDF."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=22)
    pages = []
    for text in texts:
        page = Image.new("L", (1700, 2200), 255)
        draw = ImageDraw.Draw(page)
        for i, line in enumerate(textwrap.wrap(text, 95)[:55]):
            draw.text((120, 150 + 36 * i), line, fill=0, font=font)
        pages.append(page)
    pages[0].save(path, resolution=200, save_all=True, append_images=pages[1:])


def format_cluster(result: dict[str, Any]) -> str:
    """The runs side by side, then the projection (labelled)."""
    rows = [[r["corpus"], r["path"], f"{r['files']} / {r['chunks']}", f"{r['seconds']} s",
             f"{r['chunks_per_s']:.1f}", f"{r['pages_per_s']:.2f}" if r["pages"] else "-", f"{r['vs_local']:.2f}x"]
            for r in result["runs"]]
    out = table(["corpus", "path", "files / chunks", "wall", "chunks/s", "pages/s", "speed vs local"], rows)
    projection = result["projection"]
    if projection:
        prows = [[str(p["workers"]), f"{p['chunks_per_s']:.0f}", f"{p['pages_per_s']:.1f}",
                  f"{p['hours_per_million_chunks']:.1f}"] for p in projection["rows"]]
        out += (f"\n\n{projection['label']}: per CPU {projection['per_cpu_chunks_per_s']} chunks/s (text), "
                f"{projection['per_cpu_pages_per_s']} pages/s (scans); the one writer stored "
                f"{projection['writer_ceiling_chunks_per_s']} chunks/s\n"
                + table(["workers", "chunks/s", "pages/s", "hours per 1M chunks"], prows))
    return out
