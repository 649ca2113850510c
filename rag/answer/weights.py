"""The fitted weights of the extractive answerer's two logistic models, and its thresholds.

The weights are what `rag eval fit --squad ../shared/bench-data/xquad-en/xquad.en.json --golden
tests/data/natural/seed.jsonl --golden tests/data/natural/xquad.jsonl --docs corpus` prints
(scikit-learn's LogisticRegression, C=1; README, "How the answerer was chosen"). The thresholds
were chosen from that command's table and `rag eval answers`, as the README says.
"""

from __future__ import annotations

# P(candidate holds the answer) = sigmoid(intercept + coefficients . Features.vector()), inputs:
# cos (a pair: the mean of its two sentences'), coverage, soft coverage and its weakest piece match,
# typed x {number, time, reason, name, place}, kind = {number, time, reason, name, place, yesno}, pair.
CANDIDATE: tuple[tuple[float, ...], float] = (
    (3.264, 2.951, 4.085, 2.038, 2.314, 1.202, 1.105, 1.045,
     -0.13, -2.048, -0.747, -0.101, -0.711, 0.133, 1.259, 0.196), -7.951)
# P(the best candidate answers) = sigmoid(intercept + coefficients . inputs), inputs: its logit,
# its lead over the best rival (capped), its cosine, whether it holds the kind asked for, and
# the share of the question's names and numbers missing around it.
CONFIDENCE: tuple[tuple[float, ...], float] = ((0.533, 0.622, 1.847, 0.006, -0.353), -1.66)
# Nothing relevant: abstain when no candidate is RAG_ABSTAIN_BELOW likely to answer and none has this
# cosine with the question.
ABSTAIN_SIMILARITY = 0.40
HIGH_AT = 0.7  # confidence from which an answer is `high`
SECOND_AT = 0.5  # a further quote of a confident answer must be this likely an answer itself
