"""Unit tests of the evaluation metrics against hand-computed values (and numpy for percentiles)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ui.eval.metrics import (
    contains,
    exact_match,
    f1,
    mean,
    mrr_at,
    ndcg_at,
    normalize_answer,
    percentile,
    precision_recall,
    recall_at,
)

# --- nDCG ---------------------------------------------------------------------------------------


def test_ndcg_perfect_ranking_is_one() -> None:
    # DCG = 1/log2(2) + 1/log2(3) = IDCG  ->  1.0
    assert ndcg_at(["a", "b", "c"], {"a": 1, "b": 1}, k=10) == pytest.approx(1.0)


def test_ndcg_single_relevant_at_rank_3() -> None:
    # DCG = 1/log2(3+1) = 1/2; IDCG = 1/log2(2) = 1  ->  0.5
    assert ndcg_at(["x", "y", "a"], {"a": 1}, k=10) == pytest.approx(0.5)


def test_ndcg_two_relevant_at_ranks_1_and_3() -> None:
    # DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.63093 = 1.63093
    # nDCG = 1.5 / 1.63093 = 0.91972
    expected = 1.5 / (1 + 1 / math.log2(3))
    assert expected == pytest.approx(0.91972, abs=1e-5)
    assert ndcg_at(["a", "x", "b"], {"a": 1, "b": 1}, k=10) == pytest.approx(expected)


def test_ndcg_graded_relevance_uses_the_grade_as_gain() -> None:
    # ranked a(1), x(0), c(3): DCG = 1/log2(2) + 3/log2(4) = 1 + 1.5 = 2.5
    # ideal c(3), a(1):        IDCG = 3/log2(2) + 1/log2(3) = 3 + 0.63093 = 3.63093
    # nDCG = 2.5 / 3.63093 = 0.68853
    expected = 2.5 / (3 + 1 / math.log2(3))
    assert expected == pytest.approx(0.68853, abs=1e-5)
    assert ndcg_at(["a", "x", "c"], {"a": 1, "c": 3}, k=10) == pytest.approx(expected)
    # the ideal order scores 1.0; grade 0 in the judgements counts as not relevant
    assert ndcg_at(["c", "a"], {"a": 1, "c": 3, "z": 0}, k=10) == pytest.approx(1.0)


def test_ndcg_ignores_documents_beyond_the_cutoff() -> None:
    # the only relevant document is at rank 4 and k = 3  ->  DCG = 0
    assert ndcg_at(["w", "x", "y", "a"], {"a": 1}, k=3) == 0.0
    # at k = 4 it counts: DCG = 1/log2(5) = 0.43068; IDCG = 1
    assert ndcg_at(["w", "x", "y", "a"], {"a": 1}, k=4) == pytest.approx(1 / math.log2(5))


def test_ndcg_ideal_is_cut_at_k() -> None:
    # 3 relevant, k = 2, both top slots relevant: DCG = IDCG = 1 + 1/log2(3)  ->  1.0
    assert ndcg_at(["a", "b", "x"], {"a": 1, "b": 1, "c": 1}, k=2) == pytest.approx(1.0)


def test_ndcg_without_relevant_documents_is_zero() -> None:
    assert ndcg_at(["a", "b"], {}, k=10) == 0.0
    assert ndcg_at(["a", "b"], {"a": 0}, k=10) == 0.0
    assert ndcg_at([], {"a": 1}, k=10) == 0.0


def test_ranking_metrics_reject_k_below_one() -> None:
    for metric in (ndcg_at, recall_at, mrr_at):
        with pytest.raises(ValueError):
            metric(["a"], {"a": 1}, 0)


def test_repeated_ids_count_once_at_their_first_rank() -> None:
    # deduplicated ranking is a, b  ->  both relevant docs in the top 2
    assert recall_at(["a", "a", "b"], {"a": 1, "b": 1}, k=2) == pytest.approx(1.0)
    assert ndcg_at(["a", "a", "b"], {"a": 1, "b": 1}, k=2) == pytest.approx(1.0)


# --- recall and MRR -----------------------------------------------------------------------------


def test_recall_three_relevant_two_found() -> None:
    # a and c in the top 4, b missing  ->  2/3
    assert recall_at(["a", "x", "c", "y", "b"], {"a": 1, "b": 2, "c": 1}, k=4) == pytest.approx(2 / 3)
    # with k = 5 all three are found
    assert recall_at(["a", "x", "c", "y", "b"], {"a": 1, "b": 2, "c": 1}, k=5) == pytest.approx(1.0)


def test_recall_counts_only_positive_grades_and_zero_without_relevant() -> None:
    assert recall_at(["a", "z"], {"a": 1, "z": 0}, k=10) == pytest.approx(1.0)
    assert recall_at(["a"], {}, k=10) == 0.0


def test_mrr() -> None:
    # first relevant at rank 1  ->  1/1
    assert mrr_at(["a", "b"], {"a": 1, "b": 1}) == pytest.approx(1.0)
    # first relevant at rank 3  ->  1/3 (a later relevant doc does not add)
    assert mrr_at(["x", "y", "a", "b"], {"a": 1, "b": 1}) == pytest.approx(1 / 3)
    # first relevant at rank 3 but k = 2  ->  0
    assert mrr_at(["x", "y", "a"], {"a": 1}, k=2) == 0.0
    # grade 0 is not relevant  ->  first relevant is b at rank 2  ->  1/2
    assert mrr_at(["z", "b"], {"z": 0, "b": 1}) == pytest.approx(0.5)
    assert mrr_at([], {"a": 1}) == 0.0


# --- SQuAD answers ------------------------------------------------------------------------------


def test_normalize_answer_matches_squad() -> None:
    # lower -> "the cat's  hat!", no punctuation -> "the cats  hat", no article, one space
    assert normalize_answer("The Cat's  hat!") == "cats hat"
    assert normalize_answer("  An apple, a Day ") == "apple day"
    # articles only as whole words
    assert normalize_answer("Theater and Anthem") == "theater and anthem"
    assert normalize_answer("") == ""


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel Tower in Paris", "Eiffel Tower") == 0.0
    assert exact_match("", "") == 1.0


def test_f1() -> None:
    # prediction tokens big, red, dog; truth red, dog; common 2
    # P = 2/3, R = 2/2 = 1  ->  F1 = 2 * 0.667 * 1 / 1.667 = 0.8
    assert f1("the big red dog", "red dog") == pytest.approx(0.8)
    assert f1("Red dog!", "the red dog") == pytest.approx(1.0)
    assert f1("cat", "dog") == 0.0
    assert f1("", "dog") == 0.0
    # repeated tokens are matched by count: prediction dog, dog; truth dog  ->  P = 1/2, R = 1  ->  2/3
    assert f1("dog dog", "dog") == pytest.approx(2 / 3)


def test_contains_on_token_boundaries() -> None:
    assert contains("They crank out 100,000 of them a year.", "100,000") is True
    assert contains("crank out 100,000 of", "100,000") is True
    assert contains("concatenate", "cat") is False
    assert contains("The cat sat.", "Cat") is True
    assert contains("red dog", "big red dog") is False
    # A Unicode dash separates words; the ASCII hyphen still joins them, as in SQuAD.
    assert contains("profitable for the first time—champagne corks popped", "first time") is True
    assert contains("high-pressure engines", "high pressure") is False


# --- percentiles and means ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[1.0], [3.0, 1.0], [5.0, 1.0, 4.0, 2.0, 3.0], [0.12, 7.5, 3.3, 3.3, -2.0, 10.0, 0.5], [2.0, 2.0, 2.0]],
)
@pytest.mark.parametrize("q", [0, 10, 25, 50, 75, 90, 95, 99, 100])
def test_percentile_matches_numpy(values: list[float], q: float) -> None:
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_errors() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


def test_mean() -> None:
    assert mean([1.0, 2.0, 4.0]) == pytest.approx(7 / 3)
    assert mean([]) == 0.0


# --- precision and recall -----------------------------------------------------------------------


def test_precision_recall() -> None:
    # TP = 2 (items 0, 1), FP = 1 (item 2), FN = 1 (item 3)  ->  P = 2/3, R = 2/3
    p, r = precision_recall([True, True, True, False, False], [True, True, False, True, False])
    assert p == pytest.approx(2 / 3)
    assert r == pytest.approx(2 / 3)


def test_precision_recall_edge_cases() -> None:
    # nothing predicted positive  ->  precision 0.0; recall 0/1 = 0.0
    assert precision_recall([False, False], [True, False]) == (0.0, 0.0)
    # no actual positives  ->  recall 0.0; precision 0/1 = 0.0
    assert precision_recall([True, False], [False, False]) == (0.0, 0.0)
    # neither
    assert precision_recall([False], [False]) == (0.0, 0.0)
    assert precision_recall([], []) == (0.0, 0.0)
    # all correct
    assert precision_recall([True, False], [True, False]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        precision_recall([True], [True, False])
