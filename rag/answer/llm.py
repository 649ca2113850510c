"""Generative answers from an OpenAI-compatible server or Ollama (llama-index), each citation checked.

The retrieved passages are numbered and packed into the prompt up to `RAG_LLM_CONTEXT_TOKENS`,
fenced as data. The model's text is cut into sentences as it streams; each finished sentence's
`[n]` markers are resolved against the packed passages (markers naming none are removed), every
(sentence, passage) pair gets a support score and verdict from `SupportChecker`, and the sentence
is yielded with its final citation numbers. Nothing is contacted until the first question.

This module is the answerer and its claim check; the model server is `rag.answer.backend`, what it is told
`rag.answer.prompt`, and where its reply stops being an answer `rag.answer.guards`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from difflib import SequenceMatcher
from typing import Any

from rag.answer import ABSTAIN_TEXT, Draft, Query, claims_text, confidence_of
from rag.answer.backend import Backend
from rag.answer.extractive import Candidate, ExtractiveAnswerer
from rag.answer.guards import Reply, plain_words
from rag.answer.prompt import JUDGE_SUPPORT, NOT_IN_CORPUS, SYSTEM, Packed, Passage, example_turns, pack
from rag.answer.weights import SELECTOR_POOL
from rag.citations import Numbered, render
from rag.errors import LLMError
from rag.support import Support, SupportChecker
from rag.types import Chunk, Claim, Confidence, Hit, Verdict

# An unmarked sentence is attributed to a passage sentence it copies: this many words at least, and this
# share of both sentences' words in the same order (difflib's ratio). Chosen by hand, not tuned: a copy with
# a changed word or two passes, a paraphrase or a sentence sharing a few names does not (tests/test_llm.py).
COPY_WORDS = 5
COPY_SHARE = 0.8


# The judge's P("yes") from which a sentence the embedding check found weak or unsupported counts as supported.
# Chosen by hand on ten pairs with Qwen2.5-Coder 1.5B (README, Generative answers): true paraphrases 0.59-0.88 but
# one at 0.31, wrong claims (another year, another figure, a title, a name the text lacks) 0.02-0.33.
JUDGE_AT = 0.5

# A sentence saying the passages do not hold the answer, in a model's own words: a decline, like NOT IN CORPUS.
_NOT_THERE = r"(?:not (?:specified|mentioned|provided|stated|given|found|included)|no information)"
_SAY_NOT = r"(?:do|does) not (?:say|mention|specify|state|provide|contain|include|answer)"
_THEM = r"(?:passages?|texts?|documents?|context)"
DECLINED = re.compile(rf"\b(?:{_NOT_THERE}|{_SAY_NOT})\b[^.]*\b{_THEM}\b|\b{_THEM}\b[^.]*\b{_SAY_NOT}\b", re.I)

# `RAG_LLM_CONTEXT=excerpts`: the model reads the sentences of this many of the extractive ranking's best
# candidates, each passage's in document order. Chosen on the seed natural questions with Qwen2.5-Coder 1.5B (README,
# Generative answers): 8 held the answer about as often as whole passages at a third of the prompt. The selector
# reads this many here (the extractive answerer alone: `SELECTOR_POOL`, fewer).
EXCERPT_CANDIDATES = 8


class LLMAnswerer:
    """Answers with a generative model over the packed passages, checking every citation it makes.

    The extractive ranking of the same passages decides what a small context holds (`RAG_LLM_CONTEXT=excerpts`),
    whether anything is relevant at all (if not, the answer abstains without asking the model), and how sure an
    answer is: the model's answer is `high` only when each sentence is supported and the sentence its first
    citation quotes is one the extractive confidence model calls a confident answer.
    """

    def __init__(self, backend: Backend, checker: SupportChecker, extractive: ExtractiveAnswerer) -> None:
        self.backend = backend
        self.settings = backend.settings
        self.checker = checker
        self.extractive = extractive
        self.name = backend.name

    def messages(self, packed: Packed) -> list[Any]:
        """The chat sent to the model: the rules, a worked example, then the fenced passages and the question."""
        from llama_index.core.llms import ChatMessage

        example, answer = example_turns()
        return [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=example),
                ChatMessage(role="assistant", content=answer), ChatMessage(role="user", content=packed.prompt)]

    def passages(self, ranked: Sequence[Candidate], hits: Sequence[Hit]) -> list[Passage]:
        """What the model reads: the hits whole, or the sentences of the best candidates of each (in rank order of
        the hits, each hit's sentences in document order, joined by an ellipsis)."""
        if self.settings.llm_context == "passages":
            return [Passage(hit, hit.chunk.text) for hit in hits]
        best = ranked[:EXCERPT_CANDIDATES]
        out = []
        for hit in hits:
            quotes = sorted({(q.start, q.text) for c in best if c.hit.chunk.id == hit.chunk.id for q in c.quotes})
            if quotes:
                out.append(Passage(hit, " … ".join(text for _, text in quotes)))
        return out

    def stream(self, query: Query, hits: Sequence[Hit]) -> Iterator[str | Draft]:
        """Yield each checked sentence once the model has finished it, then the `Draft`.

        Sentences are held back until one is supported by a passage; a reply with none (or with no
        sentence at all, unless the model said the corpus does not answer) raises `LLMError` before
        anything is yielded, so that the assistant answers extractively instead, saying why. So does the model
        declining a question the extractive ranking answers confidently. With `RAG_LLM_FALLBACK` off, such a
        reply is yielded as it is, flagged.
        """
        ranked = self.extractive.candidates(query, hits, pool=max(SELECTOR_POOL, EXCERPT_CANDIDATES))
        if not self.extractive.relevant(ranked):  # nothing in the passages is even close: no model call
            yield Draft(ABSTAIN_TEXT, (), abstained=True)
            return
        packed = pack(query.standalone, self.passages(ranked, hits), self.settings.llm_context_tokens,
                      self.settings.llm_answer_tokens, hits)
        state = _Checked(self, packed, ranked)
        finish: list[str] = []
        reply = Reply(self.backend.deltas(self.messages(packed), finish), finish, self.settings, packed.instructions)
        for sentence, numbers in reply.sentences():
            yield from state.add(sentence, numbers)
        yield from state.finish(reply.cut)
        yield state.draft(reply.cut)


class _Checked:
    """Accumulates checked sentences and their renumbered citations while an answer streams."""

    def __init__(self, answerer: LLMAnswerer, packed: Packed, ranked: Sequence[Candidate]) -> None:
        self.answerer = answerer
        self.settings = answerer.settings
        self.packed = packed
        self.ranked = ranked
        self.citations = Numbered()
        self.claims: list[Claim] = []
        self.held: list[str] = []  # sentences not yet shown: none so far is supported
        self.declined = False  # the model said the corpus does not answer
        self.packed_ids = tuple(dict.fromkeys(h.chunk.id for h in packed.hits))
        self.dropped_ids = tuple(h.chunk.id for h in packed.dropped)

    def add(self, sentence: str, numbers: list[int]) -> Iterator[str]:
        """Check one sentence; yield it with its new citation numbers (with any held before it) once the
        answer has a supported sentence, unless it is dropped."""
        # The model says the corpus does not answer: in the words it was given, or in its own ("The price is not
        # specified in the given passages.", as small models write).
        if sentence.upper().rstrip(".!").startswith(NOT_IN_CORPUS) or DECLINED.search(sentence):
            self.declined = True
            return
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= len(self.packed.hits)))  # bogus [9]: removed
        chunks = [self.packed.hits[n - 1].chunk for n in valid]
        results = self.answerer.checker.check([(sentence, c) for c in chunks]) if chunks else []
        attributed = judged = False
        if not chunks:  # no marker: the passage it copies, if the check verifies it, is named for it
            chunks, results, attributed = self._attribute(sentence)
        elif self.settings.llm_judge and all(r.verdict != "supported" for r in results):
            results, judged = self._judged(sentence, results)
        verdicts: list[Verdict] = [r.verdict for r in results]
        verdict: Verdict = ("supported" if "supported" in verdicts else "weak" if "weak" in verdicts
                            else "unsupported")
        if verdict == "unsupported" and self.settings.unsupported == "drop":
            return
        mine = []
        for chunk, result in zip(chunks, results, strict=True):
            mine.append(self.citations.add(chunk, result.quote, result.start, result.end, result.score,
                                           result.score, result.verdict))
        self.claims.append(Claim(sentence, tuple(mine), verdict, attributed, judged))
        self.held.append(("" if len(self.claims) == 1 else " ") + render(sentence, mine))
        if any(c.verdict == "supported" for c in self.claims):
            yield from self.held
            self.held = []

    def _judged(self, sentence: str, results: list[Support]) -> tuple[list[Support], bool]:
        """`results` with the best-scored quote `supported` when the model, asked whether the quote says what
        `sentence` says, answers yes with at least `JUDGE_AT`; unchanged otherwise."""
        best = max(range(len(results)), key=lambda i: results[i].score)
        if not results[best].quote:
            return results, False
        p = self.answerer.backend.judge(JUDGE_SUPPORT.format(quote=results[best].quote, sentence=sentence))
        if p is None or p < JUDGE_AT:
            return results, False
        return [replace(r, verdict="supported") if i == best else r for i, r in enumerate(results)], True

    def _attribute(self, sentence: str) -> tuple[list[Chunk], list[Support], bool]:
        """The packed passage whose sentence `sentence` copies, when the check verifies that it supports it.

        A copy: at least `COPY_WORDS` words, in the same order as a passage sentence's for `COPY_SHARE` of
        both (so "HACKED", or a sentence that only shares words, is never attributed).
        """
        words = plain_words(sentence).split()
        chunks = [h.chunk for h in self.packed.hits]
        if len(words) < COPY_WORDS or not chunks:
            return [], [], False
        results = self.answerer.checker.check([(sentence, c) for c in chunks])
        copies = [(r.score, i) for i, r in enumerate(results) if r.verdict == "supported"
                  and SequenceMatcher(None, words, plain_words(r.quote).split(), autojunk=False).ratio() >= COPY_SHARE]
        if not copies:
            return [], [], False
        best = max(copies)[1]
        return [chunks[best]], [results[best]], True

    def finish(self, cut: str | None) -> Iterator[str]:
        """The sentences still held: none was supported. Refused (`LLMError`, nothing was shown yet) when
        the fallback is on; otherwise yielded, flagged."""
        why = f"; {cut}" if cut else ""
        if self.held and self.settings.llm_fallback:
            raise LLMError(f"{self.answerer.backend.where}: no sentence of the model's answer is supported by "
                           f"the passages ({len(self.claims)} checked){why}")
        if not self.claims and not self.declined and self.settings.llm_fallback:
            raise LLMError(f"{self.answerer.backend.where}: the model wrote no answer sentence{why}")
        if not self.claims and self.declined and self.settings.llm_fallback \
                and self.answerer.extractive.confidence(self.ranked)[1] == "high":
            raise LLMError(f"{self.answerer.backend.where}: the model said the passages do not answer, but one "
                           "answers with high confidence")
        yield from self.held
        self.held = []

    def draft(self, cut: str | None) -> Draft:
        if not self.claims:
            return Draft(ABSTAIN_TEXT, (), abstained=True, packed=self.packed_ids, dropped=self.dropped_ids,
                         cut=cut)
        return Draft(claims_text(self.claims), tuple(self.citations.items), abstained=False,
                     sentences=tuple(self.claims), confidence=self.confidence(), packed=self.packed_ids,
                     dropped=self.dropped_ids, cut=cut)

    def confidence(self) -> Confidence:
        """`high` when every sentence is supported and the first sentence's quote is (or holds) a candidate the
        extractive confidence model calls a confident answer to the question; else `low`."""
        if confidence_of(self.claims) == "low":
            return "low"
        lead = self.citations.items[self.claims[0].citations[0] - 1]
        for cand in self.ranked:  # the best candidate within the quote (a pair holding it says more than it does)
            if cand.hit.chunk.source == lead.source and all(lead.start <= q.start and q.end <= lead.end
                                                            for q in cand.quotes):
                return self.answerer.extractive.confidence_with(self.ranked, cand)[1]
        return "low"
