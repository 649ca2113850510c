"""`rag eval` end to end on tiny samples in tests/data (the real pipeline, model and index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.types import Section
from tests.helpers import ROOT, run_rag

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

DATA = ROOT / "tests" / "data"


def test_eval_retrieval_on_a_tiny_beir_folder_then_again_from_the_cache(tmp_path: Path) -> None:
    first = run_rag("eval", "retrieval", "--beir", str(DATA / "beir-tiny"), "--json", home=tmp_path / ".rag")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["documents"] == 10 and result["queries"] == 5  # q6 has no judgments
    assert result["index"]["chunks"] == 10 and set(result["modes"]) == {"dense", "bm25", "hybrid"}
    for figures in result["modes"].values():
        assert set(figures) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "ms_per_query"}
        assert 0.8 <= figures["ndcg@10"] <= 1.0 and figures["recall@100"] == 1.0
    assert "0 vectors from the cache" in first.stderr
    assert not (tmp_path / ".rag" / "chroma").exists()  # the evaluation index is its own, under eval/
    again = run_rag("eval", "retrieval", "--beir", str(DATA / "beir-tiny"), "--mode", "bm25", home=tmp_path / ".rag")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0].split() == ["mode", "nDCG@10", "R@10", "R@100", "MRR@10", "ms/query"]
    assert again.stdout.splitlines()[1].startswith("bm25")


def test_eval_answers_on_a_tiny_squad_file(tmp_path: Path) -> None:
    done = run_rag("eval", "answers", "--squad", str(DATA / "squad-tiny.json"), "--json", home=tmp_path / ".rag")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["paragraphs"] == 4 and result["questions"] == 6 and result["unanswerable_questions"] == 3
    assert result["answer_contains_gold"] == 1.0 and result["gold_paragraph_cited"] == 1.0
    assert 0.0 < result["f1"] < 1.0 and result["exact_match"] == 0.0  # sentences, not spans
    assert result["abstention_recall"] == 1.0 and result["abstention_precision"] == 1.0
    assert result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]


def test_eval_golden_scores_each_question_and_lists_misses(seed_home: Path, tmp_path: Path) -> None:
    golden = tmp_path / "golden.jsonl"
    golden.write_text("\n".join(json.dumps(line) for line in [
        {"question": "How many 910C processors will Huawei make this year?", "answer": "100,000",
         "source": "corpus/deepseek-huawei-nvidia-buying-frenzy.md"},
        {"question": "What share of the Chinese AI chip market has Huawei captured?", "answer": "50%",
         "source": "corpus/not-indexed.md"},
        {"question": "What is the capital of Australia?", "answerable": False},
    ]) + "\n", encoding="utf-8")
    done = run_rag("eval", "golden", str(golden), "--json", home=seed_home / ".rag")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["questions"] == 3 and result["unanswerable"] == 1
    assert result["hit@5"] == 0.5 and result["answer_contains"] == 1.0 and result["citation_precision"] == 0.5
    assert result["abstention_precision"] == 1.0 and result["abstention_recall"] == 1.0
    assert [f["question"] for f in result["failures"]] == [
        "What share of the Chinese AI chip market has Huawei captured?"]


def test_the_shipped_golden_file_runs(seed_home: Path) -> None:
    done = run_rag("eval", "golden", str(ROOT / "corpus" / "golden.jsonl"), home=seed_home / ".rag")
    assert done.returncode == 0, done.stderr
    figures = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert figures["questions"] == "23" and figures["unanswerable"] == "5"


def test_eval_inputs_are_checked_in_one_line(tmp_path: Path, seed_home: Path) -> None:
    missing = run_rag("eval", "retrieval", "--beir", str(tmp_path), home=tmp_path / ".rag")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no corpus.jsonl" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "fine?"}\n{"answer": "no question"}\n', encoding="utf-8")
    refused = run_rag("eval", "golden", str(bad), home=seed_home / ".rag")
    assert refused.returncode == 2 and f"{bad}:2: each line needs a non-empty \"question\"" in refused.stderr
    squad = tmp_path / "squad.json"
    squad.write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    wrong = run_rag("eval", "answers", "--squad", str(squad), home=tmp_path / ".rag")
    assert wrong.returncode == 2 and "not SQuAD v1.1 JSON" in wrong.stderr


def test_rag_bench_commands_print_figures(seed_home: Path, tmp_path: Path) -> None:
    ingest = run_rag("bench", "ingest", "--beir", str(DATA / "beir-tiny"), "--docs", "5", "--json",
                     home=tmp_path / ".rag")
    assert ingest.returncode == 0, ingest.stderr
    figures = json.loads(ingest.stdout)
    assert figures["documents"] == 5 and figures["chunks"] == figures["bare_chunks"] == 5 and figures["ratio"] > 0
    startup = run_rag("bench", "startup", "--runs", "1", home=seed_home / ".rag")
    assert startup.returncode == 0, startup.stderr
    assert "rag ask: first answer line" in startup.stdout
    missing = run_rag("bench", "query", "--beir", str(tmp_path), home=tmp_path / ".rag")
    assert missing.returncode == 2 and "no corpus.jsonl" in missing.stderr


def test_eval_reading_counts_what_a_reader_would_not_see(tmp_path: Path) -> None:
    from tests.helpers import make_journal_paper

    docs = tmp_path / "docs"
    docs.mkdir()
    make_journal_paper(docs / "journal.pdf")
    (docs / "raw.txt").write_text("The \ufb01le sys-\ntem keeps\ncopies.\nOntheotherhandalargechunksize is bad.\n")
    out = run_rag("eval", "reading", str(docs), "--json", home=tmp_path / ".rag")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    pdf, txt = result["documents"]["docs/journal.pdf"], result["documents"]["docs/raw.txt"]
    assert pdf["title"] == "Keeping Copies of Files" and not any(pdf["counts"].values()), pdf
    assert txt["counts"]["ligatures"] == 1 and txt["counts"]["line-end hyphens"] == 1, txt
    assert txt["counts"]["words run together"] == 1 and txt["counts"]["line breaks in sentences"] == 1, txt
    assert result["counts"]["ligatures"] == 1 and not (tmp_path / ".rag").exists()  # nothing indexed
    printed = run_rag("eval", "reading", str(docs), home=tmp_path / ".rag")
    assert "docs/raw.txt: 'The ﬁle sys-', " in printed.stdout and printed.stdout.splitlines()[-2].startswith(
        "all 2 documents"), printed.stdout
    assert printed.stdout.splitlines()[-1] == "titles of a bad shape: 0"


def test_eval_reading_sees_menus_markers_furniture_markup_line_numbers_and_titles(tmp_path: Path) -> None:
    from ui.eval.reading import _furniture, _prose, title_problem

    text = ("Jump to content\n\nHome | Docs | Download | About\n\nThe fjord freezes in winter.[12] It thaws "
            "in May.[citation needed]\n\nDeutsch Informational [Page 5]\f\nRead [the guide](../guide.md) and "
            "run `rag ingest` or **stop**.\n\n```\nno `markup` counted in **code**\n```\n\n"
            "1\n2\n3\n4\n5\n6\n\nCosts of Compliance The FAA estimates the cost.\n\n"
            "Name | Size | Kind | Owner\n\nName: a | Size: 1 | Kind: b | Owner: c")
    assert _furniture(text, _prose(text), [Section(0)]) == {
        "navigation and menus": 2, "reference markers": 2, "page furniture": 2, "markup": 3,
        "margin line numbers": 6, "headings glued": 1}
    assert [title_problem(t) for t in ("47698", "x" * 121, "Table 3: Results", "", "Ferry notes")] == [
        "a bare number", "a run of text, not a title", "a caption", "empty", ""]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Ferry notes\n\nThe ferry leaves at nine.\n")
    (docs / "b.md").write_text("# Wrong\n\nText.\n")
    (tmp_path / "titles.json").write_text(json.dumps({"docs/a.md": "Ferry Notes", "docs/b.md": "Right"}))
    out = run_rag("eval", "reading", str(docs), "--titles", str(tmp_path / "titles.json"), home=tmp_path / ".rag")
    assert out.stdout.splitlines()[-1] == "titles of a bad shape: 0; titles right: 1 of 2", out.stdout
    assert "docs/b.md: 'Wrong' (title wrong)," in out.stdout
