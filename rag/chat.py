"""Conversation turns and deterministic follow-up resolution (no generative model needed)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rag.errors import RagError
from rag.text import terms

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Turn:
    """One message of a conversation."""

    role: Role
    content: str


History = Sequence[Turn | Mapping[str, str]]

# Control characters (a NUL, a terminal escape, a bare carriage return) and lone surrogates (the
# invalid UTF-8 of a terminal or a JSON body): they carry no meaning and break the tokenizers.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with control characters and lone surrogates turned into spaces (tabs and newlines kept)."""
    return _CONTROL.sub(" ", text)


def normalise(history: History | None) -> list[Turn]:
    """Accept `Turn`s or `{"role", "content"}` dicts (oldest first); refuse anything else."""
    turns = []
    for i, item in enumerate(history or []):
        role, content = (item.role, item.content) if isinstance(item, Turn) else (item.get("role"), item.get("content"))
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise RagError(
                f"history[{i}]: expected {{'role': 'user' | 'assistant', 'content': str}}, got {item!r}"
            )
        turns.append(Turn("user" if role == "user" else "assistant", clean_text(content)))
    return turns


def queries_for(question: str, history: History | None) -> list[str]:
    """The retrieval queries for a question in a conversation, the standalone one first.

    A question that stands on its own is searched as it is. A follow-up ("And of the older
    model?") is also searched together with the earlier questions it follows (back to the last
    one that stood on its own), and the results are fused, so that it finds what the
    conversation was about.
    """
    if not _is_follow_up(question):
        return [question]
    context: list[str] = []
    for turn in reversed(normalise(history)):
        if turn.role == "user":
            context.insert(0, turn.content)
            if not _is_follow_up(turn.content) or len(context) == 3:
                break
    return [" ".join([*context, question]), question] if context else [question]


_FOLLOW_UP_OPENERS = ("and ", "what about", "how about", "also", "but ", "then ", "so ", "or ")
_PRONOUNS = {
    "it", "its", "they", "them", "their", "that", "this", "those", "these", "he", "she", "his", "her", "one", "ones",
}


def _is_follow_up(question: str) -> bool:
    q = question.strip().lower()
    if q.startswith(_FOLLOW_UP_OPENERS) or not terms(question):
        return True
    return any(w.strip("?.,!;:'\"") in _PRONOUNS for w in q.split())
