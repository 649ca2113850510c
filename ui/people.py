"""The people who may use a server: users with hashed passwords, personal API tokens and a role per
collection, in a SQLite database (`RAG_USERS_DB`, default `RAG_HOME/users.db`).

Passwords are hashed with Argon2id (argon2-cffi); a token is shown once and kept as its SHA-256 (it
is 192 random bits: a slow hash adds nothing, and a lookup by hash finds its owner). Roles rise
reader < editor < admin and are granted per collection, by the collection's key (so a rename keeps
them) or on `*`, every collection. The database and its migrations are `ui.userdb`'s; deciding what
a request may do is `ui.access`'s; `rag` itself knows collections, not people.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ui.userdb import Database, DatabaseError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

ROLES = ("reader", "editor", "admin")
EVERY = "*"  # a grant on every collection
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8

class PeopleError(DatabaseError):
    """A user, token or role that does not exist or cannot be."""


@dataclass(frozen=True)
class User:
    name: str
    created: float
    roles: dict[str, str]  # collection key ("" the default one, "*" every one) -> role


@dataclass(frozen=True)
class Token:
    id: str
    user: str
    label: str
    created: float
    last_used: float | None


class People:
    """The user database at `path`, created and upgraded on first use."""

    def __init__(self, path: Path) -> None:
        self._database = Database(path)

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

    def migrate(self) -> int:
        return self._database.migrate()

    def any(self) -> bool:
        """Whether there is at least one user (then a server wants a login)."""
        with self._db() as db:
            return db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def add(self, name: str, password: str) -> None:
        if not _NAME.match(name):
            raise PeopleError(f"{name!r} cannot name a user: use 1-64 letters, digits, '.', '_', '@' or '-'")
        _check_password(password)
        try:
            with self._db() as db:
                db.execute("INSERT INTO users VALUES (?, ?, ?)", (name, _hasher().hash(password), time.time()))
        except sqlite3.IntegrityError:
            raise PeopleError(f"a user named {name!r} exists; choose another name") from None

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        with self._db() as db:
            hashed = _hasher().hash(password)
            if not db.execute("UPDATE users SET password = ? WHERE name = ?", (hashed, name)).rowcount:
                raise _no_user(name)

    def remove(self, name: str) -> None:
        """Remove the user, their roles and their tokens (at once: the next request of a token fails)."""
        with self._db() as db:
            if not db.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount:
                raise _no_user(name)

    def users(self) -> list[User]:
        with self._db() as db:
            rows = db.execute("SELECT name, created FROM users ORDER BY name").fetchall()
            grants = db.execute("SELECT user, collection, role FROM grants").fetchall()
        roles: dict[str, dict[str, str]] = {}
        for user, collection, role in grants:
            roles.setdefault(user.casefold(), {})[collection] = role
        return [User(name, created, roles.get(name.casefold(), {})) for name, created in rows]

    def user(self, name: str) -> User:
        found = next((u for u in self.users() if u.name.casefold() == name.casefold()), None)
        if found is None:
            raise _no_user(name)
        return found

    def roles(self, name: str) -> dict[str, str] | None:
        """The user's roles by collection key, or None when there is no such user (removed: refused at once)."""
        with self._db() as db:
            stored = db.execute("SELECT name FROM users WHERE name = ?", (name,)).fetchone()
            if stored is None:
                return None
            return dict(db.execute("SELECT collection, role FROM grants WHERE user = ?", stored).fetchall())

    def verify(self, name: str, password: str) -> str | None:
        """The user's name as stored when `password` is theirs, else None (an unknown user costs a hash too)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self._db() as db:
            row = db.execute("SELECT name, password FROM users WHERE name = ?", (name,)).fetchone()
        stored = row[1] if row else _decoy()
        try:
            _hasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return str(row[0]) if row else None

    def grant(self, name: str, collection: str, role: str) -> None:
        """Give `name` the `role` on the collection with key `collection` (`*`: every one), replacing another."""
        if role not in ROLES:
            raise PeopleError(f"role {role!r}: use one of {', '.join(ROLES)}")
        with self._db() as db:
            stored = db.execute("SELECT name FROM users WHERE name = ?", (name,)).fetchone()
            if stored is None:
                raise _no_user(name)
            db.execute("INSERT OR REPLACE INTO grants VALUES (?, ?, ?)", (stored[0], collection, role))

    def revoke(self, name: str, collection: str) -> bool:
        with self._db() as db:
            return bool(db.execute("DELETE FROM grants WHERE user = (SELECT name FROM users WHERE name = ?) "
                                   "AND collection = ?", (name, collection)).rowcount)

    def new_token(self, name: str, label: str = "") -> tuple[Token, str]:
        """A new personal API token of `name`: its record and the token itself (shown once, kept hashed)."""
        ident = secrets.token_hex(4)
        token = f"rag_{ident}_{secrets.token_urlsafe(24)}"
        with self._db() as db:
            stored = db.execute("SELECT name FROM users WHERE name = ?", (name,)).fetchone()
            if stored is None:
                raise _no_user(name)
            made = Token(ident, stored[0], label, time.time(), None)
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                       (ident, made.user, label, _digest(token), made.created))
        return made, token

    def tokens(self, name: str | None = None) -> list[Token]:
        with self._db() as db:
            rows = db.execute("SELECT id, user, label, created, last_used FROM tokens"
                              + (" WHERE user = (SELECT name FROM users WHERE name = ?)" if name else "")
                              + " ORDER BY created", (name,) if name else ())
            return [Token(*row) for row in rows.fetchall()]

    def revoke_token(self, ident: str) -> None:
        with self._db() as db:
            if not db.execute("DELETE FROM tokens WHERE id = ?", (ident,)).rowcount:
                raise PeopleError(f"no token {ident!r}; `rag users tokens` lists them")

    def token_user(self, token: str) -> str | None:
        """The user a personal token belongs to, or None (revoked, never issued)."""
        if not token.startswith("rag_"):
            return None
        with self._db() as db:
            row = db.execute("SELECT user, id FROM tokens WHERE hash = ?", (_digest(token),)).fetchone()
            if row is not None:
                db.execute("UPDATE tokens SET last_used = ? WHERE id = ?", (time.time(), row[1]))
        return str(row[0]) if row else None


@functools.cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _decoy() -> str:
    """A real hash to check an unknown user's password against, so that a miss takes as long as a hit."""
    return _hasher().hash(secrets.token_hex(16))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PeopleError(f"the password is too short: use at least {MIN_PASSWORD} characters")


def _no_user(name: str) -> PeopleError:
    return PeopleError(f"no user named {name!r}; `rag users list` shows them")
