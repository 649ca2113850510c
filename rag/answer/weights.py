"""The fitted weights of the extractive answerer's two logistic models, and its thresholds.

The weights are what `rag eval fit --squad ../shared/bench-data/xquad-en/xquad.en.json --golden
tests/data/natural/seed.jsonl --golden tests/data/natural/xquad.jsonl --docs corpus` prints
(scikit-learn's LogisticRegression, C=1; README, "How the answerer was chosen"). The thresholds
were chosen from that command's table and `rag eval answers`, as the README says.
"""

from __future__ import annotations

# P(candidate holds the answer) = sigmoid(intercept + coefficients . Features.vector()), inputs:
# cos (a pair: the mean of its two sentences'), coverage, typed x {number, time, reason, name, place},
# kind = {number, time, reason, name, place, yesno}, pair.
CANDIDATE: tuple[tuple[float, ...], float] = (
    (5.956, 4.84, 2.552, 1.143, 1.201, 1.084, 0.011, -2.201, -0.671, -0.096, -0.716, 0.228, 1.16, 0.518), -7.41)
# P(the best candidate answers) = sigmoid(intercept + coefficients . inputs), inputs: its logit,
# its lead over the best rival (capped), its cosine, whether it holds the kind asked for, and
# the share of the question's names and numbers missing around it.
CONFIDENCE: tuple[tuple[float, ...], float] = ((0.558, 0.481, 1.407, -0.159, -0.999), -0.909)
# Nothing relevant: abstain when no candidate is RAG_ABSTAIN_BELOW likely to answer and none has this
# cosine with the question.
ABSTAIN_SIMILARITY = 0.40
HIGH_AT = 0.7  # confidence from which an answer is `high`
SECOND_AT = 0.5  # a further quote of a confident answer must be this likely an answer itself
