"""Fusion of retrievers' lists, the per-source cap and source filters (pure functions of rag.retrieve)."""

from __future__ import annotations

import pytest

from rag.retrieve import cap_per_source, match_sources, rrf, zfuse


def test_rrf_sums_reciprocal_ranks() -> None:
    scores = rrf([["a", "b", "c"], ["b", "d"]], k=60)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["d"] == pytest.approx(1 / 62)
    assert max(scores, key=lambda x: scores[x]) == "b"


def test_cap_per_source_keeps_order_and_limits_each_source() -> None:
    ranked = ["a1", "a2", "a3", "b1", "a4", "c1"]
    source = {i: i[0] for i in ranked}
    assert cap_per_source(ranked, source, cap=2, k=4) == ["a1", "a2", "b1", "c1"]
    assert cap_per_source(ranked, source, cap=1, k=10) == ["a1", "b1", "c1"]


def test_zscore_fusion_standardises_each_list_and_weights_them() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]  # mean 0.5, std 0.3266: z = 1.2247, 0, -1.2247
    bm25 = [("c", 30.0), ("b", 20.0)]  # mean 25, std 5: z = 1, -1; "a" missing -> the list's lowest, -1
    fused = zfuse([(0.5, dense), (0.5, bm25)])
    assert fused["a"] == pytest.approx(0.5 * 1.2247 + 0.5 * -1, abs=1e-4)
    assert fused["b"] == pytest.approx(0.5 * 0 + 0.5 * -1, abs=1e-4)
    assert fused["c"] == pytest.approx(0.5 * -1.2247 + 0.5 * 1, abs=1e-4)
    assert zfuse([(1.0, [("x", 2.0)])]) == {"x": 0.0}  # one candidate: no spread, no crash


def test_source_filters_match_whole_sources_or_file_names() -> None:
    indexed = ["corpus/a.md", "corpus/notes/b.md", "papers/gfs.pdf", "papers/x [1].pdf"]
    assert match_sources(["*.pdf"], indexed) == ["papers/gfs.pdf", "papers/x [1].pdf"]
    assert match_sources(["corpus/*"], indexed) == ["corpus/a.md", "corpus/notes/b.md"]  # * crosses /
    assert match_sources(["gfs.pdf", "corpus/a.md"], indexed) == ["corpus/a.md", "papers/gfs.pdf"]
    assert match_sources(["papers/x [[]1].pdf"], indexed) == ["papers/x [1].pdf"]  # [ escaped as in fnmatch
    assert match_sources(["nothing*"], indexed) == [] and match_sources([], indexed) == []
