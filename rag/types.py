"""Frozen value types shared by ingest, retrieval, answering and every public API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, get_args

from rag.errors import RagError


@dataclass(frozen=True)
class Section:
    """A stretch of a document's text that starts at `start` and shares a heading path and page."""

    start: int
    headings: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class SourceDocument:
    """One file as read from disk: its plain text plus where its headings and pages begin.

    `source` is the file's id in the index: the corpus folder's name and the path below it
    (`corpus/notes.md`). Character offsets everywhere refer to `text`.
    """

    source: str
    title: str
    text: str
    sha256: str
    sections: tuple[Section, ...] = (Section(0),)


@dataclass(frozen=True)
class Chunk:
    """A token-bounded run of whole sentences of one document, `text == document.text[start:end]`."""

    id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    index: int
    headings: tuple[str, ...] = ()
    page: int | None = None

    def embed_text(self) -> str:
        """The text that is embedded and BM25-indexed: title and headings give a chunk its topic."""
        context = " > ".join(h for h in (self.title, *self.headings) if h and h not in self.text)
        return f"{context}\n{self.text}" if context else self.text


@dataclass(frozen=True)
class FileRecord:
    """A file whose chunks are all in the index, as of its content hash."""

    source: str
    sha256: str
    chunks: int
    title: str
    indexed_at: float
    pages: int = 0  # the last PDF page or slide with text (0: not paged)
    size: int = 0  # bytes of the file as indexed
    path: str = ""  # where the file was read, absolute ("" in indexes from before it was recorded)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the ranks/scores of each retriever (None: not found)."""

    chunk: Chunk
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    dense_rank: int | None = None
    bm25_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A retrieved passage as the JSON answers carry it (the closest passages of an abstention)."""
        c = self.chunk
        return {"source": c.source, "title": c.title, "chunk_id": c.id, "start": c.start, "end": c.end,
                "page": c.page, "headings": list(c.headings), "similarity": round(self.dense_score or 0.0, 4),
                "text": c.text}


Mode = Literal["dense", "bm25", "hybrid"]  # which retrievers answer: the embedding model, BM25, or both fused
MODES: tuple[Mode, ...] = get_args(Mode)


def as_mode(value: str | None) -> Mode | None:
    """A retrieval mode given as text (None or "" for the default); a `RagError` names the choices."""
    if not value:
        return None
    found = next((mode for mode in MODES if mode == value), None)
    if found is None:
        raise RagError(f"retrieval mode {value!r}: use one of {', '.join(MODES)}")
    return found


Fusion = Literal["zscore", "rrf"]  # how hybrid mode fuses: weighted z-scores, or reciprocal ranks
Verdict = Literal["supported", "weak", "unsupported"]
Confidence = Literal["high", "low"]


@dataclass(frozen=True)
class Citation:
    """Passage `n` of an answer: the quoted sentence, verbatim, and its character span in the source.

    `verdict` and `support` say how well the quote supports the answer sentence that cites it
    (an extractive answer quotes the sentence itself: supported, 1.0). `page` and `headings` say
    where in the source it stands.
    """

    n: int
    source: str
    title: str
    quote: str
    start: int
    end: int
    chunk_id: str
    score: float
    support: float = 1.0
    verdict: Verdict = "supported"
    page: int | None = None  # the PDF page or slide it is on
    headings: tuple[str, ...] = ()  # the section (a sheet's name) it is in

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by `rag ask --json` and the HTTP API."""
        return asdict(self) | {"headings": list(self.headings)}


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer, the citations it carries and how well they support it.

    A sentence with no citation, or whose citations all fail the check, is `unsupported`. `attributed`:
    the model cited nothing, and the citation is the passage the check found to support the sentence.
    `judged`: the embedding check found it weak or unsupported, and the model, asked whether the quote says
    what the sentence says, answered yes (`RAG_LLM_JUDGE`).
    """

    text: str
    citations: tuple[int, ...]
    verdict: Verdict
    attributed: bool = False
    judged: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """What the assistant says: text with `[n]` markers, the citations they name, and the hits used.

    When `abstained` is true the corpus does not answer the question: `text` says so, and
    `hits` holds the closest passages found. Otherwise `confidence` says whether the quoted
    sentences answer the question (`high`) or are only the closest evidence found (`low`).
    `backend` names the answerer (`extractive`, or
    `openai:<model>` / `ollama:<model>`); `fallback` says why a generative backend's answer was
    replaced by an extractive one. `packed`/`dropped` list the chunk ids a generative backend
    was given, and those left out for lack of room; `cut` says why a generated reply was cut short
    (its token budget or time cap, or it began to repeat itself or echo its prompt).
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    abstained: bool
    standalone_question: str
    confidence: Confidence | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    sentences: tuple[Claim, ...] = ()
    backend: str = "extractive"
    fallback: str | None = None
    packed: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    cut: str | None = None

    def closest(self, n: int = 3) -> list[Hit]:
        """The `n` retrieved passages most similar to the question, best first (shown with an abstention)."""
        return sorted(self.hits, key=lambda h: -(h.dense_score or 0.0))[:n]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape printed by `rag ask --json`; `passages` holds the closest passages of an abstention."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": self.confidence,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [h.to_dict() for h in self.closest()] if self.abstained else [],
            "sentences": [s.to_dict() for s in self.sentences],
            "standalone_question": self.standalone_question,
            "backend": self.backend,
            "fallback": self.fallback,
            "cut": self.cut,
            "context": {"packed": list(self.packed), "dropped": list(self.dropped)},
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
        }


class Progress(Protocol):
    """Where long work (an ingest, publishing) reports what it does: the CLI draws a bar, the page a line."""

    def start(self, phase: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def note(self, text: str) -> None: ...  # what the current step is doing (`OCR scan.pdf page 3 of 20`)
    def failed(self, source: str, reason: str) -> None: ...


class Quiet:
    """A `Progress` that reports nothing."""

    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def failed(self, source: str, reason: str) -> None:
        pass
