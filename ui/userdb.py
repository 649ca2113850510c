"""The server's own database (`RAG_USERS_DB`, default `RAG_HOME/users.db`): people (`ui.people`) and their
saved conversations (`ui.conversations`).

SQLite, opened per call (WAL, a busy timeout, foreign keys on), so several servers and commands can
share it. Its schema upgrades itself in place: `MIGRATIONS` are applied in order inside one `BEGIN
IMMEDIATE` transaction and numbered by SQLite's `user_version`, so servers starting at once upgrade it
once, and an empty or older database becomes the current one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from rag.errors import RagError

MIGRATIONS = [
    # 1: people
    """
    CREATE TABLE users (name TEXT PRIMARY KEY COLLATE NOCASE, password TEXT NOT NULL, created REAL NOT NULL);
    CREATE TABLE grants (user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE ON UPDATE CASCADE,
                         collection TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('reader', 'editor', 'admin')),
                         PRIMARY KEY (user, collection));
    CREATE TABLE tokens (id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                         label TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL, last_used REAL);
    """,
    # 2: saved conversations
    """
    CREATE TABLE conversations (id TEXT PRIMARY KEY, user TEXT NOT NULL, collection TEXT NOT NULL,
                                title TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
    CREATE INDEX conversations_by_user ON conversations (user, updated);
    CREATE TABLE turns (conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                        n INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, at REAL NOT NULL,
                        PRIMARY KEY (conversation, n));
    """,
]


class DatabaseError(RagError):
    """The server's database cannot be used, or a thing in it does not exist."""


class Database:
    """The database at `path`, created and upgraded on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed when the block ends, rolled back on an error."""
        if not self._ready:
            self.migrate()
        with closing(self._open()) as db, db:
            yield db

    def migrate(self) -> int:
        """Bring the schema up to date (a new or older database alike); return its version."""
        with closing(self._open()) as db:
            db.execute("BEGIN IMMEDIATE")  # one upgrader at a time; the others see the result
            try:
                version = int(db.execute("PRAGMA user_version").fetchone()[0])
                if version > len(MIGRATIONS):
                    raise DatabaseError(f"the database {self.path} is of a newer version ({version}); "
                                        "upgrade this program")
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in filter(str.strip, script.split(";")):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._ready = True
        return len(MIGRATIONS)

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            _wal(db)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseError(f"cannot open the database {self.path} ({exc}); check RAG_USERS_DB") from None
        db.isolation_level = "DEFERRED"  # transactions per `with db:` from here on
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        return db


WAL_TRIES = 50  # 0.1 s apart: 5 s for the process that switches a new database to WAL to finish


def _wal(db: sqlite3.Connection) -> None:
    """Switch to write-ahead logging. SQLite answers "database is locked" at once, without waiting out the busy
    timeout, while another connection is switching the same new database (four servers starting together saw it),
    so the switch is tried again for a while."""
    for attempt in range(WAL_TRIES):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_TRIES - 1:
                raise
            time.sleep(0.1)
