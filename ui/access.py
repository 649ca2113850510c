"""Who a request comes from and what they may do, decided at the edge before the domain is asked.

A server wants a login once `RAG_AUTH`, `RAG_API_TOKEN` or a user in the user database (`ui.people`)
exists; without any, everyone may do everything, as on a laptop. A request names itself with HTTP
basic credentials (a user's, or `RAG_AUTH`'s), a bearer token (a user's personal token, or
`RAG_API_TOKEN`), or, on the page, the login Gradio keeps in its session cookie. `RAG_AUTH`'s user and
`RAG_API_TOKEN` are admins of every collection. A collection a person may not read is answered
exactly as one that does not exist (404, the same line), so names do not leak; one they may read but
not change is a 403 naming the role it needs. Failed logins are limited per user name and per
address (`MAX_FAILURES` in `WINDOW_S`), in each server process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from rag.assistant import Assistant
from rag.collections import CollectionError, CollectionNotFoundError, Collections
from rag.errors import RagError
from rag.settings import Settings, credentials
from ui.people import EVERY, ROLES, People

MAX_FAILURES = 10
WINDOW_S = 300.0
_TRACKED = 10_000  # user names and addresses with recent failures kept before lapsed ones are forgotten
_REMEMBER_S = 30.0  # a user's verified basic credentials are trusted this long without hashing them again


class Refused(RagError):
    """A request that may not go on: `status` 401 (who are you?), 403 (not with your role), 429 (too many
    failed logins)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Person:
    """Someone a request comes from, with their roles by collection key (`*`: every collection)."""

    name: str
    roles: Mapping[str, str] = field(default_factory=dict)

    def may(self, key: str, role: str) -> bool:
        """Whether they hold `role` (or a higher one) on the collection with key `key`."""
        held = max((ROLES.index(r) for k, r in self.roles.items() if k in (key, EVERY)), default=-1)
        return held >= ROLES.index(role)


ANYONE = Person("", {EVERY: "admin"})  # no login configured: as before users existed


class Access:
    """The login rules of one server, over its settings and user database."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.people = People(settings.users)
        self._auth = credentials(settings.auth.get_secret_value()) if settings.auth else None
        self._token = settings.api_token.get_secret_value() if settings.api_token else None
        self._failures: dict[str, deque[float]] = {}
        self._remembered: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def required(self) -> bool:
        """Whether requests must say who they are (asked each time: a user may be added while serving)."""
        return bool(self._auth or self._token) or self.people.any()

    def identify(self, authorization: str, address: str) -> Person:
        """The person an `Authorization` header names, `ANYONE` when no login is required; else `Refused`."""
        if not self.required():
            return ANYONE
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value:
            if self._token and secrets.compare_digest(value.encode(), self._token.encode()):
                return Person("token", {EVERY: "admin"})
            owner = self.people.token_user(value)
            if owner is not None:
                return self.person(owner)
            raise Refused(401, "this token is not valid (revoked, or never issued); use a current one")
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, ValueError):
                name, password = "", ""
            found = self.login(name, password, address)
            if found is not None:
                return found
            raise Refused(401, "wrong user name or password", None)
        raise Refused(401, "credentials required: HTTP basic (a user, or --auth) or a bearer token (a personal "
                           "token, or RAG_API_TOKEN)")

    def login(self, name: str, password: str, address: str) -> Person | None:
        """The person whose password this is, None when it is not; `Refused` (429) after too many failures."""
        self._check_failures(name, address)
        if self._auth and secrets.compare_digest(f"{name}:{password}".encode(), ":".join(self._auth).encode()):
            return Person(name, {EVERY: "admin"})
        key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        with self._lock:
            remembered = self._remembered.get(key)
        if remembered is not None and remembered[1] > time.monotonic():
            return self.person(remembered[0])
        verified = self.people.verify(name, password) if name and password else None
        if verified is None:
            self._fail(name, address)
            return None
        with self._lock:
            self._remembered[key] = (verified, time.monotonic() + _REMEMBER_S)
        return self.person(verified)

    def person(self, name: str) -> Person:
        """A user as they are now: their roles read afresh (a revoked role or removed user counts at once)."""
        if self._auth and name == self._auth[0]:
            return Person(name, {EVERY: "admin"})
        roles = self.people.roles(name)
        if roles is None:
            raise Refused(401, "this user no longer exists; log in again")
        return Person(name, roles)

    def collection(self, person: Person, assistant: Assistant, name: str | None, role: str = "reader") -> Assistant:
        """The assistant of collection `name` when `person` holds `role` on it; a collection they may not read
        is refused as one that does not exist."""
        try:
            chosen = assistant.collection(name)
        except CollectionError:
            chosen = None
        if chosen is None or not person.may(chosen.collection_key, "reader"):
            raise CollectionNotFoundError(f"no collection named {name or 'default'!r} that you may read; "
                                  "GET /v1/collections lists yours")
        if not person.may(chosen.collection_key, role):
            raise Refused(403, f"{role}s only: your role on this collection does not allow it; ask an admin")
        return chosen

    def readable(self, person: Person, assistant: Assistant) -> list[str]:
        """The names of the collections `person` may read, the default first."""
        listed = Collections(assistant.base_settings).list()
        return [c.name for c in listed if person.may(c.key, "reader")]

    def _check_failures(self, name: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in _keys(name, address):
                recent = self._failures.get(key)
                while recent and recent[0] < now - WINDOW_S:
                    recent.popleft()
                if recent is not None and len(recent) >= MAX_FAILURES:
                    wait = int(recent[0] + WINDOW_S - now) + 1
                    raise Refused(429, f"too many failed logins for this user or address; try again in {wait} s",
                                  wait)

    def _fail(self, name: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in _keys(name, address):
                self._failures.setdefault(key, deque()).append(now)
            if len(self._failures) > _TRACKED:  # many names tried: forget those whose failures have all lapsed
                for key in [k for k, times in self._failures.items() if times[-1] < now - WINDOW_S]:
                    del self._failures[key]


def _keys(name: str, address: str) -> list[str]:
    """What failed logins are counted against: the user name, and the address when there is one (the page's
    login form does not pass it: counting all of them against "" would lock everyone out)."""
    return [f"user:{name.casefold()}"] + ([f"address:{address}"] if address else [])
