"""What the `rag` command prints: a progress bar on a terminal, answers with their sources, figures, notes."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.types import Answer


class Bar:
    """A rich progress bar with ETA on a terminal; on a pipe, only the failure lines."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Bar:
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                      console=self.console, transient=True)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, phase: str, total: int) -> None:
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(phase, total=total, note="")

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, note="")

    def note(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, note=text)

    def failed(self, source: str, reason: str) -> None:
        # One line, however long, and a file name's control characters (a newline, an escape) shown escaped.
        shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in source)
        self.console.print(f"failed: {shown}: {reason}", markup=False, highlight=False, soft_wrap=True)


def print_answer(answer: Answer, text: bool = True) -> None:
    """The answer (unless already streamed), how sure it is, then its sources with their check.

    A low-confidence answer is followed by a line saying so and its citations show their quotes;
    an abstention lists the closest passages instead, best first, with their similarity.
    """
    if text:
        print(answer.text)
    extractive = answer.backend == "extractive"
    if answer.confidence == "low":  # extractive: the closest evidence; generated: not fully supported, or unsure
        print("(low confidence: the quoted passages may not answer the question directly)" if extractive
              else "(low confidence: true to the passages it cites, which may not answer the question)"
              if all(c.verdict == "supported" for c in answer.sentences)
              else "(low confidence: not every sentence is supported by the passages it cites)")
    if answer.fallback:
        print(f"(extractive answer: {answer.fallback})")
    if answer.cut:
        print(f"(the model's reply was cut short: {answer.cut})")
    if answer.standalone_question != answer.question:
        print(f"(searched for: {answer.standalone_question})")
    if answer.abstained:
        for hit in answer.closest():
            excerpt = " ".join(hit.chunk.text.split())
            print(f"  - {hit.chunk.source} (similarity {hit.dense_score or 0.0:.2f}): "
                  f"{excerpt[:160]}{'…' if len(excerpt) > 160 else ''}")
        return
    if not extractive:  # an extractive answer's sentences are its quotes: the line above says it all
        for claim in answer.sentences:
            if claim.verdict != "supported":
                print(f"  ! {claim.verdict}: {claim.text}")
            elif claim.attributed:
                print(f"  = cited by the check (the model gave no marker): {claim.text}")
            elif claim.judged:
                print(f"  ~ in other words than its passage; the model judged the quote says it: {claim.text}")
    print()
    for c in answer.citations:
        where = f"page {c.page}, " if c.page is not None else ""
        print(f"[{c.n}] {c.source} ({c.title}), {where}characters {c.start}-{c.end}, score {c.score:.2f}, "
              f"{c.verdict} ({c.support:.2f})")
        if not extractive or answer.confidence == "low":  # a confident extractive answer is its quotes
            print(f"    “{c.quote}”")


def print_figures(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key:24} {value}")


def say(line: str) -> None:
    """A note for the person at the terminal (on stderr, so that stdout stays the result)."""
    print(line, file=sys.stderr, flush=True)
