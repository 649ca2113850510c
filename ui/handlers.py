"""What the chat page does, without Gradio: ask (streaming), new chat, status, examples, upload."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, zip_longest
from pathlib import Path
from typing import Any

from ingest.library import add_documents, reindex_document, remove_document
from ingest.watch import Watcher
from rag.assistant import Assistant
from rag.errors import RagError
from rag.golden import read_golden
from rag.types import Answer, Chunk, Progress, as_mode
from ui import render

Message = dict[str, str]  # {"role": "user" | "assistant", "content": str}, as gr.Chatbot shows them
Step = tuple[list[Message], list[Message], str]  # shown messages, raw conversation, sources panel

SOURCES_PLACEHOLDER = '<p class="src-title">Sources appear here: the quoted sentence inside its passage.</p>'
QUESTION_WORDS = (3, 15)  # a line of a document offered as an example question has this many words
SCANNED_CHUNKS = 2000  # chunks read for example questions (the page is built once; keep it quick)
_LINE_MARKER = re.compile(r"^(?:(?:#{1,6}|[-*+•>]|\d{1,3}[.)])\s+|q(?:uestion)?\s*\d*\s*[:.)]\s*)", re.I)
_NOT_PROSE = re.compile(r"https?://|\]\(|\||[<>{}\[\]]")  # links, tables, markup: not a question to offer


class Handlers:
    """The page's behaviour over one shared `Assistant` (state lives in the arguments, per browser tab)."""

    def __init__(self, assistant: Assistant, watcher: Watcher | None = None, collection: str | None = None) -> None:
        self.assistant = assistant
        self.watcher = watcher
        self.collection = collection  # named in the sources' links: another collection than the server's

    def ask(self, question: str, shown: list[Message], history: list[Message], k: int | None = None,
            mode: str | None = None, sources: list[str] | None = None,
            keep: Callable[[Answer], None] | None = None) -> Iterator[Step]:
        """Answer `question`, yielding the chat as the answer streams in, then with links and sources.

        `shown` is what the chat displays (rendered HTML); `history` is the raw conversation the
        assistant reads to resolve follow-ups; `sources` limits the answer to those documents (none:
        all); `keep` is given the finished answer (to save it). Errors become a visible message, never an
        exception.
        """
        shown = [*shown, {"role": "user", "content": render.text(question)}]
        turn = len(shown)
        final: Answer | None = None
        partial = ""
        try:
            # The picker gives exact sources: escaped, a name with `[` or `*` matches only itself.
            exact = [glob.escape(source) for source in sources or []] or None
            for piece in self.assistant.stream(question, history, k=k, mode=as_mode(mode), sources=exact):
                if isinstance(piece, Answer):
                    final = piece
                else:
                    partial += piece
                    # the turn is in the conversation while it streams: an interrupted answer is kept
                    yield ([*shown, {"role": "assistant", "content": render.streaming(partial)}],
                           [*history, *_turn(question, partial)], "")
        except RagError as exc:
            message = f'<div class="error">⛔ {render.text(str(exc))}</div>'
            kept = render.streaming(partial) + "\n" + message if partial else message
            yield [*shown, {"role": "assistant", "content": kept}], [*history, *_turn(question, partial)], ""
            return
        assert final is not None
        if keep is not None:
            keep(final)
        yield ([*shown, {"role": "assistant", "content": render.answer(final, turn)}],
               [*history, *_turn(question, final.text)], render.sources(final, turn, self.collection))

    def status(self) -> str:
        """The index status line (documents, chunks, model, last ingest; the watched folders)."""
        watch = self.watcher.state.to_dict() if self.watcher is not None else None
        try:
            return render.status(self.assistant.status()) + render.watching(watch)
        except RagError as exc:
            return render.status(None, str(exc)) + render.watching(watch)

    def documents(self) -> tuple[list[list[Any]], list[str], str]:
        """The documents table (source, title, pages, chunks, KB, indexed), the sources (for pickers) and
        the files the last ingest could not read, with their reasons."""
        try:
            records = self.assistant.documents()
            failed = self.assistant.failed()
        except RagError:
            return [], [], ""
        rows = [[r.source, r.title, r.pages or "", r.chunks, round(r.size / 1024, 1) if r.size else "",
                 datetime.fromtimestamp(r.indexed_at, UTC).strftime("%Y-%m-%d %H:%M")] for r in records.values()]
        return rows, list(records), render.failed(failed)

    def remove(self, source: str | None) -> str:
        """Remove a document for good (after the page asked for confirmation); one line on what was done."""
        if not source:
            return render.uploads([("(none)", "refused", "choose a document first")])
        try:
            removal = remove_document(self.assistant, source)
        except RagError as exc:
            return render.uploads([(source, "failed", str(exc))])
        return render.uploads([(source, "removed", removal.detail)])

    def reindex(self, source: str | None, progress: Progress | None = None) -> str:
        """Read a document again from its file; one line on the outcome."""
        if not source:
            return render.uploads([("(none)", "refused", "choose a document first")])
        try:
            report = reindex_document(self.assistant, source, progress)
        except RagError as exc:
            return render.uploads([(source, "failed", str(exc))])
        return render.uploads([(source, "failed" if source in report.failed else "updated",
                                report.failed.get(source, report.summary()))])

    def examples(self, limit: int = 4) -> list[str]:
        """Example questions: the answerable ones of `golden.jsonl` beside the corpus, else questions the
        documents themselves ask (headings or lines phrased as questions), else none."""
        try:
            lines = read_golden(self.assistant.settings.corpus / "golden.jsonl")
            found = [g["question"] for g in lines if g.get("answerable", True)]
        except RagError:  # none there, or not readable: take them from the documents
            found = []
        if not found:
            try:
                found = document_questions(self.assistant.passages(SCANNED_CHUNKS))
            except RagError:
                found = []
        return found[:limit]

    def upload(self, paths: list[str] | None, replace: bool = False,
               progress: Progress | None = None) -> str:
        """Add the uploaded files (temporary paths named as the user's files) to the index; one line each."""
        if not paths:
            return render.uploads([("(none)", "refused", "choose one or more files first")])
        try:
            files = [(Path(p).name, Path(p).read_bytes()) for p in paths]
            results = add_documents(self.assistant, files, replace, progress)
        except (RagError, OSError) as exc:
            return render.uploads([(", ".join(Path(p).name for p in paths), "failed", str(exc))])
        return render.uploads([(r.name, r.outcome, r.reason) for r in results])


def document_questions(chunks: Iterable[Chunk]) -> list[str]:
    """Questions the documents ask themselves: headings and lines of `chunks` that are one question of
    3-15 words, the documents taken in turn (each in reading order), without repeats.
    """
    lines: dict[str, list[tuple[int, str]]] = {}
    for chunk in chunks:
        lines.setdefault(chunk.source, []).extend(
            (chunk.index, line) for line in chain(chunk.headings, chunk.text.splitlines()))
    per_source = [[q for _, line in sorted(lines[s], key=lambda item: item[0])  # stable: lines keep their order
                   if (q := _as_question(line)) is not None] for s in sorted(lines)]
    found: dict[str, str] = {}
    for row in zip_longest(*per_source):
        for question in row:
            if question is not None:
                found.setdefault(" ".join(question.lower().split()), question)
    return list(found.values())


def _as_question(line: str) -> str | None:
    """`line` without its list or heading marker and emphasis, if it is one plain question; else None."""
    line = line.strip()
    while marker := _LINE_MARKER.match(line):
        line = line[marker.end():]
    for wrap, close in (("**", "**"), ("__", "__"), ("*", "*"), ("_", "_"), ("`", "`"), ('"', '"'), ("“", "”")):
        if len(line) > len(wrap) + len(close) and line.startswith(wrap) and line.endswith(close):
            line = line[len(wrap):-len(close)].strip()
    line = " ".join(line.split())
    low, high = QUESTION_WORDS
    if (not line.endswith("?") or line.count("?") != 1 or not line[0].isalpha() or _NOT_PROSE.search(line)
            or not low <= len(line.split()) <= high):
        return None
    return line


def _turn(question: str, answer: str) -> list[Message]:
    """A question and the answer given so far, as conversation turns (none when nothing was answered)."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}] if answer else []


class CallbackProgress:
    """Adapts ingest progress to a `fraction, description` callback (Gradio's progress bar)."""

    def __init__(self, report: Callable[[float, str], Any]) -> None:
        self.report = report
        self.phase, self.total, self.done = "", 0, 0

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, total, 0
        self.report(0.0, phase)

    def advance(self, n: int) -> None:
        self.done += n
        self.report(self.done / self.total if self.total else 1.0, self.phase)

    def note(self, text: str) -> None:
        self.report(self.done / self.total if self.total else 0.0, f"{self.phase}: {text}" if self.phase else text)

    def failed(self, source: str, reason: str) -> None:
        pass  # every failure is in the result lines
