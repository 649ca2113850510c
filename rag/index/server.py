"""A Chroma server (RAG_CHROMA_URL): its address, a liveness check, bounded waits, the writer lock inside it."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from rag.errors import IngestLockedError, SettingsError, StoreError, one_line

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection


@contextmanager
def server_writer_lock(client: ClientAPI, collection: str, location: str, ttl: float) -> Iterator[None]:
    """Be the only writer of the index `collection` on a Chroma server while the block runs (`location`
    names the server in messages).

    Chroma has no conditional write, but collection names are unique, so creating the collection
    `<collection>-lock` is an atomic test-and-set across processes and machines. Its metadata
    names the owner and an expiry that a background thread renews every `ttl / 4` seconds, so
    the lock of a writer that died lapses `ttl` (`RAG_LOCK_TTL_S`) seconds later and is then taken over.

    Raises:
        IngestLockedError: another writer holds the lock and has renewed it within `ttl` seconds.
        StoreError: the server cannot be reached.
    """
    name = f"{collection}-lock"
    owner: dict[str, str | int] = {"token": uuid.uuid4().hex, "pid": os.getpid(), "host": socket.gethostname()}
    lock = _take_lock(client, location, name, owner, ttl)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 4):
            try:
                lock.modify(metadata={**owner, "expires": time.time() + ttl})
            except Exception:  # the server is gone (the ingest fails too) or the lock lapsed
                return

    renewer = threading.Thread(target=renew, name="ingest-lock", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        with suppress(Exception):  # if the server is gone, the lock lapses by itself
            if (client.get_collection(name).metadata or {}).get("token") == owner["token"]:
                client.delete_collection(name)

def _take_lock(client: ClientAPI, location: str, name: str, owner: dict[str, str | int], ttl: float) -> Collection:
    from chromadb.errors import NotFoundError

    failure: Exception | None = None
    for _ in range(3):
        try:
            return client.create_collection(
                name, metadata={**owner, "expires": time.time() + ttl}, embedding_function=None
            )
        except Exception as exc:  # usually: it exists already
            failure = exc
        try:
            held = client.get_collection(name, embedding_function=None)
        except NotFoundError:
            continue  # released in between: try again
        except Exception as exc:
            raise StoreError(f"cannot reach the index at {location}: {one_line(exc)}") from None
        meta = held.metadata or {}
        left = float(meta.get("expires") or 0) - time.time()
        if left > 0:
            raise IngestLockedError(
                f"another ingest (pid {meta.get('pid')} on {meta.get('host')}) is writing to the index at "
                f"{location}; wait for it to finish (if it crashed, its lock lapses in {left:.0f} s)"
            )
        # Its writer died. Rename it by id before deleting, so that of two writers taking over
        # at once neither deletes a lock the other has just created; one create then wins.
        expired = f"{name}-expired-{owner['token']}"
        with suppress(Exception):
            held.modify(name=expired)
            client.delete_collection(expired)
    raise StoreError(f"cannot take the writer lock at {location}: {one_line(failure)}")


def server_address(url: str) -> tuple[str, int]:
    """`RAG_CHROMA_URL` as the base URL and port `chromadb.HttpClient` takes; a path prefix is kept (proxies)."""
    parsed = urlparse(url.strip())
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    except ValueError:
        port = 0
    if parsed.scheme not in ("http", "https") or not parsed.hostname or not port or parsed.query or parsed.fragment:
        raise SettingsError(
            f"RAG_CHROMA_URL: {url!r} is not a Chroma server address like http://127.0.0.1:8000"
        )
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{parsed.scheme}://{host}:{port}{parsed.path.rstrip('/')}", port


def check_heartbeat(base: str, connect_s: float) -> None:
    """Fail in seconds, with the reason, when nothing (or something other than Chroma) answers at `base`."""
    import httpx

    try:
        response = httpx.get(f"{base}/api/v2/heartbeat", timeout=connect_s)
    except httpx.TimeoutException:
        raise ConnectionError(f"no answer within {connect_s:g} s") from None
    except httpx.HTTPError as exc:
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
    if response.status_code != 200 or "heartbeat" not in response.text:
        raise ConnectionError(f"HTTP {response.status_code} from {base}/api/v2/heartbeat: not a Chroma server")


def limit_wait(client: ClientAPI, request_s: float, connect_s: float) -> None:
    """chromadb's HTTP client waits forever for an answer; bound it (a server that hangs is then an error)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(request_s, connect=connect_s)
