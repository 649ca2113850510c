"""Reply guards: a model's streamed text cut into sentences with their `[n]` markers, and stopped where it stops
being an answer (the wall-clock cap, the prompt or a chat template's markup written back, a repeated sentence)."""

from __future__ import annotations

import re
import time
from collections.abc import Generator, Iterator

from rag.answer.prompt import SYSTEM
from rag.citations import MARKER
from rag.settings import Settings
from rag.text import sentence_spans

LEADING_MARKERS = re.compile(r"^\s*((?:\[\d+\]\s*)+)")
# The prompt's own markup written back (our passage fence, a chat template's system or instruction tags, a
# line opening like the prompt's): the model is echoing its prompt, and nothing after it is an answer.
ECHO = re.compile(r"</?\s*passages?\b|<<\s*/?\s*SYS\s*>>|\[/?INST\]|<\|(?:system|user|im_start)\|>"
                   r"|<start_of_turn>|^\s*(?:Question|Passages|Rules|Last question|Conversation)\s*:"
                   r"|Passages \(data only", re.I | re.M)
# The end of a turn in a chat template the server did not stop at, or a line naming the next speaker (a
# template's role label written out): the answer is over.
TURN_END = re.compile(r"<end_of_turn>|<\|im_end\|>|<\|eot_id\|>|<\|end\|>|</s>"
                       r"|^[ \t]*(?:user|model|assistant|system)[ \t]*:?[ \t]*\n", re.I | re.M)


def split_sentences(text: str, leading: bool = False) -> list[tuple[str, list[int]]]:
    """The model's text as (sentence without markers, cited numbers). Markers at a sentence's start go to the
    previous one ("It grew. [1] Then ..."), unless the reply puts its markers first (`leading`: "[1] It grew.
    [2] Then ...", as small models often write)."""
    out: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(text):
        piece = text[start:end]
        lead = LEADING_MARKERS.match(piece)
        if lead and out and not (leading and MARKER.sub("", piece[lead.end():]).strip()):
            out[-1][1].extend(int(n) for n in MARKER.findall(lead.group(1)))
            piece = piece[lead.end():]
        numbers = [int(n) for n in MARKER.findall(piece)]
        sentence = " ".join(MARKER.sub("", piece).split())
        sentence = re.sub(r"\s+([.,;:!?])", r"\1", sentence)
        if sentence:
            out.append((sentence, numbers))
        elif out:
            out[-1][1].extend(numbers)
    return out


class Reply:
    """The model's reply cut into sentences as it streams, stopped where it stops being an answer: at the
    wall-clock cap, when it echoes the prompt or its markup, or when it repeats a sentence. `cut` says why
    (also when the server stopped it at the token budget)."""

    def __init__(self, deltas: Generator[str, None, None], finish: list[str], settings: Settings,
                 instructions: str) -> None:
        """`deltas`: the reply's text pieces, not yet started (`Backend.deltas`), which append the server's
        reason for stopping to `finish`; `instructions`: the prompt without its passages."""
        self.deltas = deltas
        self.finish = finish
        self.settings = settings
        self.cut: str | None = None
        self.leading = False  # the reply puts each sentence's markers before it: "[1] It grew."
        self._said: set[str] = set()
        self._prompt = plain_words(f"{SYSTEM} {instructions}")

    def sentences(self) -> Iterator[tuple[str, list[int]]]:
        """The reply's finished sentences with their cited numbers, as they come, up to where it stops."""
        deltas, finish = self.deltas, self.finish
        began = time.monotonic()
        buffer = ""
        try:
            for delta in deltas:
                if not buffer.strip():
                    self.leading = bool(LEADING_MARKERS.match(buffer + delta))
                buffer += delta
                stop = self._stop(buffer)
                if stop is not None:
                    yield from self._checked(buffer[:stop])
                    return
                if time.monotonic() - began > self.settings.llm_answer_s:
                    self.cut = f"stopped after {self.settings.llm_answer_s:g} s (RAG_LLM_ANSWER_S)"
                    yield from self._checked(finished_part(buffer, self.leading))
                    return
                spans = sentence_spans(buffer)
                if len(spans) >= 2:
                    cut = cut_before_last(buffer, spans, self.leading)
                    if begun(buffer[cut:]):  # the next sentence has begun: the ones before it are final
                        yield from self._checked(buffer[:cut])
                        if self.cut:
                            return
                        buffer = buffer[cut:]
            if "length" in finish:  # the server's max_tokens: the last sentence may be unfinished
                self.cut = f"reached the answer budget of {self.settings.llm_answer_tokens} tokens " \
                           "(RAG_LLM_ANSWER_TOKENS)"
                buffer = finished_part(buffer, self.leading)
            yield from self._checked(buffer)
        finally:
            deltas.close()  # stop reading: the server sees the connection close

    def _stop(self, buffer: str) -> int | None:
        """Where the answer in `buffer` ends because the model wrote prompt or turn markup, if it did."""
        echo, end = ECHO.search(buffer), TURN_END.search(buffer)
        if echo and (not end or echo.start() < end.start()):
            self.cut = "the model began to echo its prompt"
            return echo.start()
        return end.start() if end else None

    def _checked(self, text: str) -> Iterator[tuple[str, list[int]]]:
        """The finished sentences of `text`, up to the first that repeats an earlier one or the prompt."""
        for sentence, numbers in split_sentences(text, self.leading):
            words = plain_words(sentence)
            if words in self._said:
                self.cut = "the model began to repeat itself"
                return
            if len(words.split()) >= 4 and words in self._prompt:
                self.cut = "the model began to echo its prompt"
                return
            self._said.add(words)
            yield sentence, numbers


def plain_words(text: str) -> str:
    """`text` as lower-case words and numbers only, for comparing sentences."""
    return " ".join(re.findall(r"\w+", text.lower()))


def finished_part(buffer: str, leading: bool = False) -> str:
    """`buffer` up to the end of its last finished sentence (a reply stopped mid-sentence loses the fragment)."""
    spans = sentence_spans(buffer)
    if not spans:
        return ""
    last = buffer[spans[-1][0]:spans[-1][1]].rstrip()
    tail = MARKER.sub("", last).rstrip()
    if tail.endswith((".", "!", "?", '."', '?"', '!"')):
        return buffer
    return buffer[:cut_before_last(buffer, spans, leading)]


def begun(rest: str) -> bool:
    """Whether `rest` holds words of a new sentence, not only (possibly unfinished) citation markers."""
    return bool(re.sub(r"\[\d*\]?", "", rest).strip())


def cut_before_last(buffer: str, spans: list[tuple[int, int]], leading: bool = False) -> int:
    """Where the last (unfinished) sentence begins, its leading markers included in the previous one (in a reply
    that puts markers first, they stay with the sentence they open)."""
    start = spans[-1][0]
    lead = None if leading else LEADING_MARKERS.match(buffer[start:])
    return start + (lead.end() if lead else 0)
