"""Collections: named document sets, each an index of its own (Chroma generations, BM25 copy,
fingerprint, writer lock, uploads ledger) over corpus folders of its own.

The `default` collection is the index `RAG_HOME` and `RAG_CORPUS` have always meant, so one who
never makes a second collection never meets the idea. Every other one is listed in
`RAG_HOME/collections.json` (written whole, under a lock other processes respect) with a key fixed
at creation: its index lives in `RAG_HOME/collections/<key>/` and, on a Chroma server, in the
collections named `<RAG_COLLECTION>-<key>-...`, so a rename changes only the list. `settings_for`
turns a name into the `Settings` of that index, which is all the rest of the code needs: an
`Assistant`, an ingest or a watch of those settings is one of that collection. Who may use a
collection is not decided here (DESIGN: `rag` knows collections, not people).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rag.errors import RagError
from rag.files import locked, write_atomic
from rag.settings import Settings

DEFAULT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


class CollectionError(RagError):
    """A name that cannot be a collection's, or one already taken."""


class CollectionNotFoundError(CollectionError):
    """No collection has this name (or none the asker may read)."""


@dataclass(frozen=True)
class Collection:
    """A named document set: `key` names its index (fixed at creation), `corpus` is where `rag ingest` with
    no path reads and uploads land."""

    name: str
    key: str
    corpus: Path
    created: float

    @property
    def is_default(self) -> bool:
        return self.key == ""


class Collections:
    """The collections of one `RAG_HOME` (and `RAG_CHROMA_URL`), read afresh on every call: another process
    (a `rag collections` command beside a running server) may change them at any time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._path = settings.home / "collections.json"

    def list(self) -> list[Collection]:
        """Every collection, `default` first, then by name."""
        return [self._default(), *sorted(self._read().values(), key=lambda c: c.name.casefold())]

    def get(self, name: str | None) -> Collection:
        """The collection called `name` (None or "" is `default`)."""
        if not name or name == DEFAULT:
            return self._default()
        found = self._read().get(name.casefold())
        if found is None:
            raise CollectionNotFoundError(f"no collection named {name!r}; `rag collections list` shows them, "
                                  f"`rag collections create {name}` makes it")
        return found

    def settings_for(self, name: str | None) -> Settings:
        """The settings of collection `name`'s index: its home, Chroma names and corpus; everything else as given."""
        return self.settings_of(self.get(name))

    def settings_of(self, collection: Collection) -> Settings:
        if collection.is_default:
            return self.settings
        return self.settings.model_copy(update={
            "home": self.settings.home / "collections" / collection.key,
            "collection": f"{self.settings.collection}-{collection.key}",
            "corpus": collection.corpus,
            "models_dir": self.settings.models,  # one export of the embedding model serves every collection
            # a shared snapshot folder (replicas of a Chroma server) gets a folder per collection
            "bm25_dir": self.settings.bm25_dir / collection.key if self.settings.bm25_dir else None,
            "users_db": self.settings.users,  # people are the server's, not a collection's
        })

    def create(self, name: str, corpus: Path | None = None) -> Collection:
        """Make an empty collection reading `corpus` (default: `RAG_HOME/collections/<key>/corpus`)."""
        _check_name(name)
        with self._locked() as collections:
            if name.casefold() in collections or name.casefold() == DEFAULT:
                raise CollectionError(f"a collection named {name!r} exists; choose another name")
            key = f"c{secrets.token_hex(4)}"
            home = self.settings.home / "collections" / key
            folder = (corpus or home / "corpus").absolute()
            folder.mkdir(parents=True, exist_ok=True)
            made = Collection(name, key, folder, time.time())
            self._write({**collections, name.casefold(): made})
        return made

    def rename(self, old: str, new: str) -> Collection:
        _check_name(new)
        with self._locked() as collections:
            found = self._named(collections, old)
            if (new.casefold() in collections and new.casefold() != old.casefold()) or new.casefold() == DEFAULT:
                raise CollectionError(f"a collection named {new!r} exists; choose another name")
            renamed = Collection(new, found.key, found.corpus, found.created)
            rest = {k: c for k, c in collections.items() if c.key != found.key}
            self._write({**rest, new.casefold(): renamed})
        return renamed

    def remove(self, name: str) -> Collection:
        """Delete collection `name`'s index and forget it. A corpus folder given at creation stays; the one made
        for it under RAG_HOME (its uploads) goes with the index.

        Raises:
            IngestLockedError: an ingest is writing to it now.
        """
        from rag.index.store import Store
        from rag.index.writer import writer_lock

        with self._locked() as collections:
            found = self._named(collections, name)
            settings = self.settings_of(found)
            store = Store(settings)
            with writer_lock(store):  # not while an ingest writes to it
                if settings.chroma_url:
                    client = store.client()
                    for held in client.list_collections():
                        held_name = str(getattr(held, "name", held))
                        if held_name.startswith(f"{settings.collection}-"):
                            client.delete_collection(held_name)
                self._write({k: c for k, c in collections.items() if c.key != found.key})
            shutil.rmtree(settings.home, ignore_errors=True)  # its corpus too when it was the one made for it
        return found

    def _default(self) -> Collection:
        return Collection(DEFAULT, "", self.settings.corpus.absolute(), 0.0)

    def _named(self, collections: dict[str, Collection], name: str) -> Collection:
        if name.casefold() == DEFAULT:
            raise CollectionError("the default collection is RAG_HOME's own index: it cannot be renamed or removed")
        found = collections.get(name.casefold())
        if found is None:
            raise CollectionNotFoundError(f"no collection named {name!r}; `rag collections list` shows them")
        return found

    def _read(self) -> dict[str, Collection]:
        try:
            raw = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CollectionError(f"{self._path}: cannot read the list of collections ({exc}); restore it "
                                  "from a backup or remove it (the indexes stay under RAG_HOME/collections)") from None
        return {item["name"].casefold(): Collection(item["name"], item["key"], Path(item["corpus"]),
                                                    float(item["created"])) for item in raw}

    def _write(self, collections: dict[str, Collection]) -> None:
        items = [{**asdict(c), "corpus": str(c.corpus)} for c in sorted(collections.values(), key=lambda c: c.key)]
        write_atomic(self._path, json.dumps(items, indent=1))

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Collection]]:
        """The collections, held under their lock for a read-change-write."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with locked(self.settings.home / "collections.lock"):
            yield self._read()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise CollectionError(f"{name!r} cannot name a collection: use 1-40 letters, digits, '-' or '_', "
                              "starting with a letter or digit")
