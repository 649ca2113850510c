"""Saved conversations: each person's questions and answers (with their citations) in one collection, kept in
the server's database (`ui.userdb`), listed newest first, titled by their first question, renamed, deleted.

A conversation belongs to the person who had it and to one collection (by key, so a rename keeps it);
anyone else asking for it, a guessed id included, is told it does not exist. Answers are stored as
the JSON of `rag ask --json`; when one is read back, each citation says whether the passage it quotes
is still indexed (chunk ids are derived from a passage's source, position and text, so a changed or
removed source shows as `"current": false`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ui.userdb import Database, DatabaseError

TITLE_CHARS = 80


class ConversationNotFoundError(DatabaseError):
    """No conversation of this person has that id."""


@dataclass(frozen=True)
class Conversation:
    id: str
    collection: str  # the collection's key
    title: str
    created: float
    updated: float
    turns: int


class Conversations:
    """The saved conversations in the database at `path`."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path)

    def start(self, user: str, collection: str, question: str) -> str:
        """A new, empty conversation of `user` in `collection`, titled by its first question; its id."""
        ident = secrets.token_urlsafe(12)
        title = " ".join(question.split())[:TITLE_CHARS] or "Conversation"
        now = time.time()
        with self.db.transaction() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                       (ident, user, collection, title, now, now))
        return ident

    def add(self, user: str, ident: str, question: str, answer: dict[str, Any]) -> None:
        """Append a question and its answer (the JSON of `rag ask --json`) to the conversation."""
        now = time.time()
        with self.db.transaction() as db:
            self._owned(db, user, ident)
            n = db.execute("SELECT COUNT(*) FROM turns WHERE conversation = ?", (ident,)).fetchone()[0]
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                       (ident, n, question, json.dumps(answer, ensure_ascii=False), now))
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, ident))

    def of(self, user: str, collections: set[str] | None = None) -> list[Conversation]:
        """`user`'s conversations, newest first (only in `collections`, keys, when given)."""
        with self.db.transaction() as db:
            rows = db.execute(
                "SELECT c.id, c.collection, c.title, c.created, c.updated, COUNT(t.n) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation = c.id WHERE c.user = ? GROUP BY c.id ORDER BY c.updated DESC",
                (user,)).fetchall()
        return [Conversation(*row) for row in rows if collections is None or row[1] in collections]

    def get(self, user: str, ident: str) -> tuple[Conversation, list[tuple[str, dict[str, Any]]]]:
        """The conversation and its turns (question, answer JSON), oldest first."""
        with self.db.transaction() as db:
            found = self._owned(db, user, ident)
            turns = db.execute("SELECT question, answer FROM turns WHERE conversation = ? ORDER BY n",
                               (ident,)).fetchall()
        return found, [(question, json.loads(answer)) for question, answer in turns]

    def history(self, user: str, ident: str) -> list[dict[str, str]]:
        """The conversation as the `history` an `ask` takes: user and assistant turns, oldest first."""
        _, turns = self.get(user, ident)
        out: list[dict[str, str]] = []
        for question, answer in turns:
            out += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.get("answer", "")}]
        return out

    def rename(self, user: str, ident: str, title: str) -> None:
        title = " ".join(title.split())[:TITLE_CHARS]
        if not title:
            raise DatabaseError("the title is empty; give the conversation a name")
        with self.db.transaction() as db:
            self._owned(db, user, ident)
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, ident))

    def delete(self, user: str, ident: str) -> None:
        with self.db.transaction() as db:
            self._owned(db, user, ident)
            db.execute("DELETE FROM conversations WHERE id = ?", (ident,))

    def _owned(self, db: Any, user: str, ident: str) -> Conversation:
        row = db.execute(
            "SELECT c.id, c.collection, c.title, c.created, c.updated, "
            "(SELECT COUNT(*) FROM turns t WHERE t.conversation = c.id) FROM conversations c "
            "WHERE c.id = ? AND c.user = ?", (ident, user)).fetchone()
        if row is None:
            raise ConversationNotFoundError(f"no conversation {ident!r} of yours; GET /v1/conversations lists them")
        return Conversation(*row)
