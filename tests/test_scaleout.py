"""The cluster benchmark's arithmetic and the driver's bundles of files (unit layer: no Ray, no model)."""

from __future__ import annotations

from pathlib import Path

from ingest.cluster import BUNDLE_BYTES, BUNDLE_FILES, _bundles
from ingest.sources import SourceFile
from ui.bench.scaleout import _projection, format_cluster


def _files(folder: Path, sizes: list[int]) -> list[SourceFile]:
    files = []
    for n, size in enumerate(sizes):
        path = folder / f"f{n:03}.txt"
        path.write_bytes(b"x" * size)
        files.append(SourceFile(path, f"docs/{path.name}"))
    return files


def test_bundles_keep_every_file_once_in_order_and_leave_each_cpu_four(tmp_path: Path) -> None:
    files = _files(tmp_path, [100] * 1000)
    bundles = _bundles(files, cpus=2)
    assert [f for b in reversed(bundles) for f in b] == files
    assert max(map(len, bundles)) == BUNDLE_FILES
    few = _bundles(files[:24], cpus=2)
    assert len(few) == 8 and all(len(b) == 3 for b in few)  # 24 files, 2 CPUs: 3 per bundle, 4 bundles a CPU
    assert [len(b) for b in _bundles(files[:3], cpus=4)] == [1, 1, 1]


def test_a_bundle_closes_once_its_files_reach_the_byte_budget(tmp_path: Path) -> None:
    big = BUNDLE_BYTES // 2 + 1
    bundles = _bundles(_files(tmp_path, [big] * 40), cpus=1)  # 10 a bundle by count; 2 by bytes
    assert [len(b) for b in bundles] == [2] * 20


def _run(corpus: str, path: str, cpus: int, chunks: int, pages: int, seconds: float, store: float) -> dict[str, object]:
    return {"corpus": corpus, "path": path, "cpus": cpus, "files": 10, "chunks": chunks, "pages": pages,
            "seconds": seconds, "chunks_per_s": round(chunks / seconds, 2), "pages_per_s": round(pages / seconds, 3),
            "store_chunks_per_s": store, "vs_local": 1.0}


def test_the_projection_scales_per_cpu_rates_and_stops_at_the_writer() -> None:
    runs = [_run("text", "local", 0, 1000, 0, 20.0, 900.0), _run("text", "2 workers", 2, 1000, 0, 25.0, 800.0),
            _run("scans", "local", 0, 100, 40, 50.0, 900.0), _run("scans", "2 workers", 2, 100, 40, 25.0, 900.0)]
    projection = _projection(runs)
    assert projection["per_cpu_chunks_per_s"] == 20.0 and projection["per_cpu_pages_per_s"] == 0.8
    rows = {r["workers"]: r for r in projection["rows"]}
    assert rows[4]["chunks_per_s"] == 80.0 and rows[4]["pages_per_s"] == 3.2
    assert rows[64]["chunks_per_s"] == 900.0  # 64 x 20 = 1,280, above what the writer stored per second
    assert rows[64]["pages_per_s"] == 51.2  # below the writer's 900 chunks/s at 2.5 chunks a page (360 pages/s)
    shown = format_cluster({"runs": runs, "projection": projection})
    assert "projection from measured per-CPU rates, not a measurement" in shown and "2 workers" in shown
