"""Pure-Python evaluation metrics: ranking (nDCG, recall, MRR), SQuAD answers (EM, F1), percentiles, precision."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)
_DASHES = re.compile(r"[\u2010-\u2015\u2212]")  # Unicode dashes and the minus sign, not "-"


def _top_k(ranked: Sequence[str], k: int) -> list[str]:
    """The first `k` distinct ids of `ranked` (a repeated id keeps only its first, best rank)."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    seen: set[str] = set()
    top: list[str] = []
    for doc_id in ranked:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        top.append(doc_id)
        if len(top) == k:
            break
    return top


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with graded relevance, as computed by trec_eval's `ndcg_cut` (and so by BEIR).

    The gain of a document is its relevance grade and the discount of rank `r` (1-based) is
    `log2(r + 1)`. The ideal DCG ranks the judged grades from highest to lowest, cut at `k`.
    Grades of 0 or below count as not relevant.

    Args:
        ranked: Document ids, best first. A repeated id counts only at its first rank.
        relevant: Relevance grade of each judged document id.
        k: Cut-off rank (at least 1).

    Returns:
        A score in [0, 1]; 0.0 when no document is relevant.

    Raises:
        ValueError: If `k` is less than 1.
    """
    top = _top_k(ranked, k)
    grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    if not grades:
        return 0.0
    dcg = sum(max(relevant.get(doc_id, 0), 0) / math.log2(rank + 1) for rank, doc_id in enumerate(top, start=1))
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(grades, start=1))
    return dcg / ideal


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Recall@k as in BEIR: relevant documents found in the top `k` over all relevant documents.

    Args:
        ranked: Document ids, best first. A repeated id counts only once.
        relevant: Relevance grade of each judged document id; a grade above 0 means relevant.
        k: Cut-off rank (at least 1).

    Returns:
        A share in [0, 1]; 0.0 when no document is relevant.

    Raises:
        ValueError: If `k` is less than 1.
    """
    top = _top_k(ranked, k)
    wanted = {doc_id for doc_id, grade in relevant.items() if grade > 0}
    if not wanted:
        return 0.0
    return sum(1 for doc_id in top if doc_id in wanted) / len(wanted)


def mrr_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document within the top `k`.

    Args:
        ranked: Document ids, best first. A repeated id counts only at its first rank.
        relevant: Relevance grade of each judged document id; a grade above 0 means relevant.
        k: Cut-off rank (at least 1).

    Returns:
        `1 / rank` of the first relevant document, or 0.0 when none is in the top `k`.

    Raises:
        ValueError: If `k` is less than 1.
    """
    for rank, doc_id in enumerate(_top_k(ranked, k), start=1):
        if relevant.get(doc_id, 0) > 0:
            return 1.0 / rank
    return 0.0


def normalize_answer(s: str) -> str:
    """Normalise an answer exactly as the official SQuAD v1.1 evaluation script does.

    Lower-cases, removes ASCII punctuation, removes the articles "a", "an" and "the", and
    collapses white space.

    Args:
        s: Answer text.

    Returns:
        The normalised text.
    """
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """SQuAD exact match: 1.0 when both answers are equal after `normalize_answer`, else 0.0.

    Args:
        prediction: Predicted answer.
        truth: Reference answer.

    Returns:
        1.0 or 0.0.
    """
    return 1.0 if normalize_answer(prediction) == normalize_answer(truth) else 0.0


def f1(prediction: str, truth: str) -> float:
    """SQuAD token-level F1 over the normalised tokens of both answers.

    Args:
        prediction: Predicted answer.
        truth: Reference answer.

    Returns:
        The harmonic mean of token precision and recall; 0.0 when no token is shared.
    """
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    common = Counter(prediction_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, truth: str) -> bool:
    """Whether the normalised `truth` occurs in the normalised `prediction` on token boundaries.

    Both normalised texts are padded with a space, so "cat" is not found in "concatenate". An
    empty normalised truth is found only in an empty normalised prediction. Dashes other than the
    ASCII hyphen separate words ("the first time—champagne" holds "first time"); SQuAD's
    normalisation would keep them inside the word.

    Args:
        prediction: Predicted answer (or any longer text).
        truth: Reference answer.

    Returns:
        True when the truth's tokens appear consecutively in the prediction.
    """
    return f" {normalize_answer(_DASHES.sub(' ', truth))} " in f" {normalize_answer(_DASHES.sub(' ', prediction))} "


def percentile(values: Sequence[float], q: float) -> float:
    """The `q`-th percentile with linear interpolation, like `numpy.percentile`'s default method.

    Args:
        values: Sample values, in any order.
        q: Percentile between 0 and 100 inclusive.

    Returns:
        The interpolated percentile.

    Raises:
        ValueError: If `values` is empty or `q` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean, accurate to the last bit (`math.fsum`).

    Args:
        values: Sample values.

    Returns:
        The mean; 0.0 for an empty sequence.
    """
    if not values:
        return 0.0
    return math.fsum(values) / len(values)


def precision_recall(predicted: Sequence[bool], actual: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of the positive class.

    Args:
        predicted: Predicted label of each item.
        actual: True label of each item, aligned with `predicted`.

    Returns:
        `(precision, recall)`; precision is 0.0 when nothing was predicted positive and recall is
        0.0 when there are no actual positives.

    Raises:
        ValueError: If the two sequences differ in length.
    """
    if len(predicted) != len(actual):
        raise ValueError(f"predicted has {len(predicted)} labels but actual has {len(actual)}")
    true_positives = sum(1 for p, a in zip(predicted, actual, strict=True) if p and a)
    predicted_positives = sum(1 for p in predicted if p)
    actual_positives = sum(1 for a in actual if a)
    precision = true_positives / predicted_positives if predicted_positives else 0.0
    recall = true_positives / actual_positives if actual_positives else 0.0
    return precision, recall
