"""The answer selector: training pairs, metrics, the shipped model against its card, a tiny training run end to end."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.assistant import Assistant
from rag.models.selector import FOLDER, Selector, card
from ui.eval.selector import auc, ranking
from ui.train.data import squad_pairs, wikiqa_groups, wikiqa_pairs
from ui.train.selector import Hyper, batches

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "data" / "squad-tiny.json"


def test_squad_pairs_label_the_sentence_holding_the_answer() -> None:
    pairs = squad_pairs(TINY, random.Random(0))
    who = [p for p in pairs if p.question == "Who built the Bell Rock Lighthouse?"]
    right = [p.text for p in who if p.label == 1.0]
    assert "It was built between 1807 and 1810 by Robert Stevenson." in right
    assert all("Robert Stevenson" in t for t in right)
    wrong = [p.text for p in who if p.label == 0.0]
    assert wrong and all("Robert Stevenson" not in t for t in wrong)  # near misses of the same paragraph
    assert {p.origin for p in pairs} == {"squad"}


def test_squad_pairs_of_an_unanswerable_question_are_all_negative(tmp_path: Path) -> None:
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{
        "context": "The tower is 40 metres tall. It was painted red in 1990.",
        "qas": [{"id": "a", "question": "Who painted the tower?", "answers": [], "is_impossible": True}]}]}]}
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(data))
    pairs = squad_pairs(path, random.Random(0))
    assert pairs and all(p.label == 0.0 and p.origin == "squad-none" for p in pairs)


def test_wikiqa_pairs_and_groups(tmp_path: Path) -> None:
    (tmp_path / "a.toks").write_text("how are glacier caves formed ?\nhow are glacier caves formed ?\nwho is x ?\n")
    (tmp_path / "b.toks").write_text("a glacier cave is formed by melting .\nice is cold\nx is a name\n")
    (tmp_path / "sim.txt").write_text("1\n0\n0\n")
    pairs = wikiqa_pairs(tmp_path)
    assert [p.label for p in pairs] == [1.0, 0.0, 0.0]
    assert pairs[0].question == "how are glacier caves formed?"
    groups = wikiqa_groups(tmp_path)
    assert groups[0] == ("how are glacier caves formed?", ["a glacier cave is formed by melting.", "ice is cold"],
                         [True, False])


def test_wikiqa_refuses_files_that_do_not_line_up(tmp_path: Path) -> None:
    from rag.errors import RagError

    (tmp_path / "a.toks").write_text("q ?\nq ?\n")
    (tmp_path / "b.toks").write_text("s\n")
    (tmp_path / "sim.txt").write_text("1\n0\n")
    with pytest.raises(RagError, match="same"):
        wikiqa_pairs(tmp_path)


def test_ranking_metrics_on_known_orders() -> None:
    groups = [("q1", ["a", "b", "c"], [False, True, False]), ("q2", ["a", "b"], [True, False]),
              ("q3", ["a"], [False])]  # no right candidate: left out, as the filtered protocol does
    scores = {"a": 3.0, "b": 2.0, "c": 1.0}
    got = ranking(groups, lambda q, texts: np.array([scores[t] for t in texts]))
    assert got == {"questions": 2, "map": 0.75, "mrr": 0.75}
    assert auc([0.9, 0.8, 0.1], [True, False, False]) == 1.0
    assert auc([0.5, 0.5], [True, False]) == 0.5


def test_batches_are_a_pure_function_of_the_seed() -> None:
    pairs = squad_pairs(TINY, random.Random(0))
    one, two = batches(pairs, Hyper(batch=4, seed=3)), batches(pairs, Hyper(batch=4, seed=3))
    assert one == two
    assert sorted(i for b in one for i in b) == list(range(len(pairs)))
    assert batches(pairs, Hyper(batch=4, seed=4)) != one


def test_the_shipped_selector_matches_its_card() -> None:
    meta = card()
    model = FOLDER / meta["file"]
    assert model.is_file() and (FOLDER / "tokenizer.json").is_file()
    assert hashlib.sha256(model.read_bytes()).hexdigest() == meta["sha256"]
    assert model.stat().st_size == meta["bytes"] <= 30 * 1024 * 1024
    assert (FOLDER / "README.md").read_text().count(meta["sha256"]) == 1  # the human-readable card names it too
    assert meta["data"] and meta["hyperparameters"] and meta["metrics"]


@pytest.mark.integration
def test_the_selector_tells_an_answer_from_a_near_miss() -> None:
    selector = Selector()
    cases = [
        ("How long does Prometheus keep data by default?",
         ["Write-ahead log files are stored in the wal directory in 128MB segments.",
          "If retention is not set, the retention time defaults to 15d."]),
        ("What year did the Bell Rock Lighthouse open?",
         ["The Bell Rock Lighthouse stands off the coast of Angus, Scotland.",
          "The Bell Rock Lighthouse was completed and first lit in 1810."]),
        ("Who founded the company?",
         ["The company makes bicycles in Utrecht.", "It was founded by Anna de Vries in 1921."]),
    ]
    for question, (near_miss, answer) in cases:
        low, high = selector.scores(question, [near_miss, answer])
        assert high > low, question


@pytest.mark.integration
def test_a_candidate_scores_the_same_whatever_it_is_ranked_against() -> None:
    question = "Who founded the company?"
    answer = "It was founded by Anna de Vries in 1921."
    others = ["The company makes bicycles in Utrecht.", "Its bicycles are sold " + "in many countries and " * 30]
    alone = Selector().scores(question, [answer])
    among = Selector().scores(question, [*others, answer])
    assert among[-1] == alone[0]


@pytest.mark.integration
def test_a_question_longer_than_the_model_reads_is_cut_not_refused() -> None:
    question = "chips " * 400 + "And of them?"  # a follow-up resolved with a long conversation
    scores = Selector().scores(question, ["Huawei makes chips.", "It rained " * 200])
    assert scores.shape == (2,) and np.isfinite(scores).all()


@pytest.mark.integration
def test_the_selector_runs_without_torch() -> None:
    code = ("import sys; from rag.models.selector import Selector; "
            "s = Selector().scores('who?', ['Anna did.', 'It rained.']); "
            "assert len(s) == 2; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_sessions_take_the_fewest_threads_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.models.selector import THREADS
    from rag.onnx_model import session

    graph = FOLDER / str(card().get("file", "model.onnx"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert session(graph).get_session_options().intra_op_num_threads == 0  # onnxruntime's default: every core
    assert session(graph, THREADS).get_session_options().intra_op_num_threads == THREADS == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a cap (a Ray task's CPU share)
    assert session(graph).get_session_options().intra_op_num_threads == 3
    assert session(graph, 2).get_session_options().intra_op_num_threads == 2


@pytest.mark.integration
def test_the_selector_reads_only_the_feature_scorers_best(seed_assistant: Assistant,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from rag.answer.weights import SELECTOR_POOL

    read: list[int] = []
    scores = Selector.scores

    def counted(self: Selector, question: str, texts: Sequence[str]) -> Any:
        read.append(len(texts))
        return scores(self, question, texts)

    monkeypatch.setattr(Selector, "scores", counted)
    answer = seed_assistant.ask("How many 910C processors will Huawei make this year?")
    assert read == [SELECTOR_POOL] and "100,000" in answer.text and answer.confidence == "high"


def test_a_missing_model_is_named(tmp_path: Path) -> None:
    from rag.errors import SettingsError

    with pytest.raises(SettingsError, match="rag train selector"):
        Selector(tmp_path).scores("who?", ["Anna did."])


@pytest.mark.integration
def test_training_a_tiny_selector_end_to_end(tmp_path: Path) -> None:
    """`rag train selector` on a handful of pairs: checkpoints, ONNX export checked against torch, card; a second
    run finds the finished weights instead of training again."""
    out, target = tmp_path / "out", tmp_path / "model"
    command = [sys.executable, "-m", "ui.cli", "train", "selector", "--squad", str(TINY), "--out", str(out),
               "--target", str(target), "--batch", "4"]
    first = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert first.returncode == 0, first.stderr
    assert (out / "checkpoint.pt").is_file() and (out / "weights.pt").is_file()
    meta = json.loads((target / "card.json").read_text())
    assert hashlib.sha256((target / meta["file"]).read_bytes()).hexdigest() == meta["sha256"]
    assert meta["onnx_max_logit_difference_fp32"] <= 1e-3
    assert meta["data"][0]["file"] == TINY.name and meta["pairs"] > 10
    scores = Selector(target).scores("Who built the Bell Rock Lighthouse?", ["It was built by Robert Stevenson.",
                                                                            "It rained."])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "training was finished" in again.stderr
