"""Unit tests of fusion, per-source caps, extractive selection and abstention, JSON shapes, settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.chat import queries_for
from rag.citations import check
from rag.errors import RagError, SettingsError
from rag.retrieve import cap_per_source, rrf, zfuse
from rag.settings import Settings
from rag.types import Answer, Citation, Claim


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


def test_citation_check_finds_bad_markers_and_misplaced_quotes() -> None:
    cite = Citation(n=1, source="s", title="t", quote="abc", start=2, end=5, chunk_id="x", score=1.0)
    assert check("abc [1]", [cite], {"s": "xxabcxx"}) == []
    assert "[2] names no citation" in check("abc [1] [2]", [cite])
    assert any("not at" in p for p in check("abc [1]", [cite], {"s": "abc"}))


def test_answer_json_has_exactly_the_documented_shape() -> None:
    cite = Citation(n=1, source="corpus/a.md", title="A", quote="Q.", start=120, end=122, chunk_id="c", score=0.81)
    answer = Answer(question="q", text="Q. [1]", citations=(cite,), hits=(), abstained=False,
                    standalone_question="q", timings_ms={"retrieve": 1.0, "answer": 2.0, "total": 3.0},
                    sentences=(Claim("Q.", (1,), "supported"),), packed=("c",))
    data = json.loads(json.dumps(answer.to_dict()))
    assert list(data) == ["question", "answer", "abstained", "confidence", "citations", "passages", "sentences",
                          "standalone_question", "backend", "fallback", "cut", "context", "timings_ms"]
    assert list(data["citations"][0]) == ["n", "source", "title", "quote", "start", "end", "chunk_id", "score",
                                          "support", "verdict", "page", "headings"]
    assert data["sentences"] == [{"text": "Q.", "citations": [1], "verdict": "supported", "attributed": False}]
    assert data["context"] == {"packed": ["c"], "dropped": []} and data["backend"] == "extractive"
    assert list(data["timings_ms"]) == ["retrieve", "answer", "total"]


def test_follow_ups_are_searched_with_the_previous_question() -> None:
    history = [{"role": "user", "content": "How many 910C processors will Huawei make?"},
               {"role": "assistant", "content": "100,000 [1]"}]
    assert queries_for("And of the older model?", history) == [
        "How many 910C processors will Huawei make? And of the older model?", "And of the older model?"]
    assert queries_for("Why did China refuse Nvidia's H20 export-compliant chips?", history) == [
        "Why did China refuse Nvidia's H20 export-compliant chips?"]
    with pytest.raises(RagError, match="history"):
        queries_for("And then?", [{"role": "robot", "content": "x"}])


def test_bad_settings_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="RAG_CHUNK_OVERLAP"):
        Settings.load(chunk_overlap=300)
    with pytest.raises(SettingsError, match="RAG_K"):
        Settings.load(k=0)


def test_bad_environment_variable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODE", "magic")
    with pytest.raises(SettingsError) as err:
        Settings.load()
    assert "RAG_MODE" in str(err.value) and "\n" not in str(err.value)


def test_import_is_cheap_and_silent() -> None:
    code = ("import sys, rag, ingest, ui, ui.cli, rag.assistant; "
            "print(sorted(m for m in ('torch', 'chromadb', 'gradio', 'sentence_transformers', 'llama_index') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""


def test_readme_documents_every_setting() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [f"RAG_{name.upper()}" for name in Settings.model_fields if f"`RAG_{name.upper()}`" not in readme]
    assert missing == []


def test_follow_up_chains_reach_back_to_the_last_standalone_question() -> None:
    history = [{"role": "user", "content": "How many 910C processors will Huawei make?"},
               {"role": "assistant", "content": "..."},
               {"role": "user", "content": "And of the older model?"},
               {"role": "assistant", "content": "..."}]
    assert queries_for("Why do they stumble?", history)[0] == (
        "How many 910C processors will Huawei make? And of the older model? Why do they stumble?")
    assert queries_for("What is the capital of France?", history) == ["What is the capital of France?"]
    assert queries_for("And of the older model?", []) == ["And of the older model?"]


def test_zscore_fusion_standardises_each_list_and_weights_them() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]  # mean 0.5, std 0.3266: z = 1.2247, 0, -1.2247
    bm25 = [("c", 30.0), ("b", 20.0)]  # mean 25, std 5: z = 1, -1; "a" missing -> the list's lowest, -1
    fused = zfuse([(0.5, dense), (0.5, bm25)])
    assert fused["a"] == pytest.approx(0.5 * 1.2247 + 0.5 * -1, abs=1e-4)
    assert fused["b"] == pytest.approx(0.5 * 0 + 0.5 * -1, abs=1e-4)
    assert fused["c"] == pytest.approx(0.5 * -1.2247 + 0.5 * 1, abs=1e-4)
    assert zfuse([(1.0, [("x", 2.0)])]) == {"x": 0.0}  # one candidate: no spread, no crash


def test_source_filters_match_whole_sources_or_file_names() -> None:
    from rag.retrieve import match_sources

    indexed = ["corpus/a.md", "corpus/notes/b.md", "papers/gfs.pdf", "papers/x [1].pdf"]
    assert match_sources(["*.pdf"], indexed) == ["papers/gfs.pdf", "papers/x [1].pdf"]
    assert match_sources(["corpus/*"], indexed) == ["corpus/a.md", "corpus/notes/b.md"]  # * crosses /
    assert match_sources(["gfs.pdf", "corpus/a.md"], indexed) == ["corpus/a.md", "papers/gfs.pdf"]
    assert match_sources(["papers/x [[]1].pdf"], indexed) == ["papers/x [1].pdf"]  # [ escaped as in fnmatch
    assert match_sources(["nothing*"], indexed) == [] and match_sources([], indexed) == []


def test_cited_sources_open_at_their_page_or_quote_and_are_served_inertly() -> None:
    from rag.types import FileRecord
    from ui.render import document_page, file_type, source_link

    assert source_link("papers/gfs.pdf", 3, 10, 20) == "/v1/documents/papers/gfs.pdf/file#page=3"
    assert source_link("corpus/a b?.md", None, 10, 20) == \
        "/v1/documents/corpus/a%20b%3F.md/view?start=10&end=20#quote"
    assert file_type(Path("a.pdf")) == ("application/pdf", "inline")
    assert file_type(Path("a.html")) == ("text/plain; charset=utf-8", "inline")  # never run a document's scripts
    assert file_type(Path("a.docx"))[1] == "attachment"
    record = FileRecord("corpus/x.html", "sha", 1, "<b>X</b>", 0.0)
    page = document_page(record, "<script>alert(1)</script> the quote here.", 26, 35, current=False)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert '<mark id="quote">the quote</mark>' in page and "The file changed since it was indexed" in page
    assert "<title>&lt;b&gt;X&lt;/b&gt;</title>" in page
    assert '<mark id="quote">' not in document_page(record, "text", 5, 2, current=True)  # an empty span marks nothing


def test_the_status_line_shows_a_watch() -> None:
    from ui.render import watching

    assert watching(None) == ""
    line = watching({"folders": ["/data/notes"], "pending": 3, "syncing": False, "last_sync": None,
                     "last_summary": "", "last_error": "the folder holds no documents now", "syncs": 0})
    assert "watching <code>/data/notes</code> · 3 changes pending · last sync not yet" in line
    assert "the folder holds no documents now" in line
