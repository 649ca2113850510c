"""Golden question files (`golden.jsonl`): one question per JSON line, read and checked.

The page takes its example questions from the corpus's golden file; `rag eval golden` and `rag bench
load` ask them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.errors import RagError


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file; a bad line is a `RagError` naming the file and line."""
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError as exc:
                        raise RagError(f"{path}:{number}: not JSON ({exc}); fix or remove the line") from None
    except OSError as exc:
        raise RagError(f"{path}: cannot read ({exc.strerror}); check the path") from None


def read_golden(path: Path) -> list[dict[str, Any]]:
    """Golden questions: `{"question", "answer"?, "source"?, "answerable"?, "history"?, "split"?}` per line.

    `answer` is a string or a list of acceptable strings; `history` lists the user questions asked
    before it in the same conversation (oldest first); `split` names a part of the set (`--split`).
    """
    lines = list(read_jsonl(path))
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict) or not isinstance(line.get("question"), str) or not line["question"].strip():
            raise RagError(f"{path}:{number}: each line needs a non-empty \"question\"")
        if line.get("answerable", True) is False and (line.get("answer") or line.get("source")):
            raise RagError(f"{path}:{number}: an unanswerable question cannot have an answer or source")
        answer, history = line.get("answer"), line.get("history", [])
        if answer is not None and not (isinstance(answer, str) or _strings(answer)):
            raise RagError(f"{path}:{number}: \"answer\" must be a string or a list of strings")
        if not _strings(history):
            raise RagError(f"{path}:{number}: \"history\" must be a list of earlier questions (strings)")
    if not lines:
        raise RagError(f"{path}: no questions; write one JSON object per line")
    return lines


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
