"""The fitted weights of the extractive answerer's logistic models, and its thresholds.

The weights are what `rag eval fit --squad ../shared/bench-data/xquad-en/xquad.en.json --golden
tests/data/natural/seed.jsonl --golden tests/data/natural/xquad.jsonl --docs corpus` prints
(scikit-learn's LogisticRegression, C=1; README, "How the answerer was chosen"). The thresholds
were chosen from that command's table and `rag eval answers`, as the README says.
"""

from __future__ import annotations

# The feature scorer (also the answer selector's pre-filter):
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

# With the answer selector (RAG_SELECTOR, on by default): the feature scorer's best SELECTOR_POOL candidates
# are read by the selector, and P(candidate holds the answer) = sigmoid(intercept + coefficients . inputs),
# inputs: the selector's log-odds, the feature scorer's log-odds, pair. Both models are what `rag eval fit`
# prints with the selector on (the same command as above), with a pool of 24.
# The pool was then cut to 6 (the selector's cost is per candidate): over the 387 first questions of the seven
# natural sets (tests/data/natural, corpus/golden.jsonl), 7 lead quotes change, each from one without the fact
# to another without it, all low (confidence 0.00-0.16 either way), and every other answer, confidence and
# abstention is the same as with 24 (5: high on two more answers; 4: one fact fewer). Refitted on pools of 6,
# the weights moved by at most 0.06 and the threshold table below by at most a point (0.85: 48.4% high, 96.4%
# right), so these were kept. (Scratch simulation over the selector's scores of each question's best 24.)
SELECTOR_POOL = 6
SELECTED: tuple[tuple[float, ...], float] = ((0.449, 0.643, -0.193), -0.268)
# P(the best candidate answers), inputs as CONFIDENCE's with the selector's log-odds in the cosine's place.
CONFIDENCE_SELECTED: tuple[tuple[float, ...], float] = ((0.854, 0.435, -0.114, -0.323, -0.203), 0.004)
# High from this confidence, and only when no name or number of the question is missing around the quote:
# the lowest threshold at which high answers to the SQuAD-style fitting questions are right at least 95% of
# the time (0.85: 96.2%, for 47.5% of them; 0.8: 94.9%); on the natural tune questions no threshold reached
# 95% (README, How answers are chosen).
HIGH_AT_SELECTED = 0.85
