"""Chroma access (embedded or a server), index generations, the per-file ledger and the fingerprint.

Layout inside Chroma, for the index named `rag`:
- `rag-meta` holds one record, `active`, naming the live generation and its stamp. Swapping it is
  one upsert, so a rebuild becomes visible all at once, and readers notice a new stamp.
- `rag-g<time>` is a generation's chunk collection; its metadata holds the fingerprint.
- `rag-g<time>-files` is that generation's ledger: one record per file that is completely in.
- `rag-lock` exists while an ingest writes to a Chroma server (see `rag.index.writer.writer_lock`).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import IndexMismatchError, IndexMissingError, SettingsError, StoreError, one_line
from rag.index.server import check_heartbeat, limit_wait, server_address
from rag.settings import Settings
from rag.types import Chunk, FileRecord

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

CHUNKER = "sentences-v2"  # bump when chunk boundaries or embedded text change
PARSER = "readers-v4"  # bump when a format reader extracts different text
_PAGE = 1000  # records per Chroma call
_DUMMY = np.ones((1, 1), dtype=np.float32)  # side collections hold no vectors, but Chroma wants one per record

_SETTING_NAMES = {
    "embed_model": "RAG_EMBED_MODEL", "chunk_tokens": "RAG_CHUNK_TOKENS",
    "chunk_overlap": "RAG_CHUNK_OVERLAP", "chunker": "the chunker version",
    "parser": "the document readers' version", "dimension": "the embedding dimension",
    "embed_vectors": "RAG_EMBED_BACKEND's vectors",
}
# Vectors by backend: torch and plain ONNX give the same ones (cosine above 0.99999, tested), so they
# may share an index; int8 weights give slightly different ones, so mixing them is refused.
VECTORS = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}


def fingerprint(settings: Settings) -> dict[str, str | int]:
    """What an index depends on: querying or extending it with other values is refused."""
    return {
        "embed_model": settings.embed_model, "chunk_tokens": settings.chunk_tokens,
        "chunk_overlap": settings.chunk_overlap, "chunker": CHUNKER, "parser": PARSER,
        "embed_vectors": VECTORS[settings.embed_backend],
    }


class Index:
    """One generation of the index: its chunk collection and its file ledger."""

    def __init__(self, chunks: Collection, files: Collection) -> None:
        self.name = chunks.name
        self._chunks = chunks
        self._files = files

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's metadata: fingerprint, dimension, last ingest time."""
        return dict(self._chunks.metadata or {})

    def check(self, settings: Settings, dimension: int | None = None) -> None:
        """Refuse an index built with other settings, naming each difference and the fix."""
        want: dict[str, Any] = dict(fingerprint(settings))
        if dimension is not None:
            want["dimension"] = dimension
        have = self.metadata
        diffs = [
            f"{_SETTING_NAMES[key]} is {value!r} now but the index was built with {have.get(key)!r}"
            for key, value in want.items() if key in have and have[key] != value
        ]
        if diffs:
            raise IndexMismatchError(
                "index mismatch: " + "; ".join(diffs)
                + "; run `rag ingest --rebuild` to rebuild it, or set the old value back"
            )

    def count(self) -> int:
        """Number of chunks."""
        return self._chunks.count()

    def file_count(self) -> int:
        """Number of files in the ledger (without reading it: `len(files())` reads every record)."""
        return self._files.count()

    def files(self) -> dict[str, FileRecord]:
        """The ledger: every file that is completely indexed, by source."""
        out = {}
        for _, _, meta in _pages(self._files, include=["metadatas"]):
            out[str(meta["source"])] = FileRecord(
                str(meta["source"]), str(meta["sha256"]), int(meta["chunks"]),
                str(meta["title"]), float(meta["indexed_at"]), int(meta.get("pages") or 0), int(meta.get("size") or 0),
                str(meta.get("path") or ""),
            )
        return out

    def chunk_counts(self, sources: Sequence[str] | None = None) -> Counter[tuple[str, str]]:
        """How many chunks each (source, sha256) version has in the collection; with `sources`, only theirs are
        read, by a filter, which costs about twice as much per chunk as reading all by id (0.29 s for 1,000
        sources' 1,749 chunks against 0.07 s for 1,000 chunks by id, on a 1M-chunk Chroma server)."""
        if sources is None:
            pages = _pages(self._chunks, include=["metadatas"])
            return Counter((str(m["source"]), str(m["sha256"])) for _, _, m in pages)
        return Counter((str(m["source"]), str(m["sha256"])) for _, m in self._chunks_of(sources, ["metadatas"]))

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray[Any, Any], sha256: Sequence[str]) -> None:
        """Write chunks (by id, so writing one twice changes nothing) with their file's hash."""
        for i in range(0, len(chunks), _PAGE):
            part = chunks[i:i + _PAGE]
            self._chunks.upsert(
                ids=[c.id for c in part], embeddings=vectors[i:i + _PAGE],
                documents=[c.text for c in part],
                metadatas=[_chunk_meta(c, h) for c, h in zip(part, sha256[i:i + _PAGE], strict=True)],
            )

    def finish_files(self, records: Sequence[FileRecord]) -> None:
        """Record files whose chunks are all in as done.

        Chunks of a file's other versions stay until `publish` drops them as orphans (after the
        new generation stamp is live), so readers of the old stamp keep a complete old view.
        """
        for i in range(0, len(records), _PAGE):
            part = records[i:i + _PAGE]
            self._files.upsert(
                ids=[_file_id(r.source) for r in part], embeddings=np.ones((len(part), 1), dtype=np.float32),
                metadatas=[{"source": r.source, "sha256": r.sha256, "chunks": r.chunks, "title": r.title,
                            "indexed_at": r.indexed_at, "pages": r.pages, "size": r.size, "path": r.path}
                           for r in part],
            )

    def unrecord(self, sources: Sequence[str]) -> None:
        """Drop files from the ledger; their chunks become orphans that `publish` deletes."""
        for i in range(0, len(sources), _PAGE):
            self._files.delete(ids=[_file_id(s) for s in sources[i:i + _PAGE]])

    def all_chunks(self) -> Iterator[tuple[Chunk, str]]:
        """Every chunk with the content hash of the file version it came from, page by page."""
        for chunk_id, text, meta in _pages(self._chunks, include=["documents", "metadatas"]):
            yield _chunk_from_record(chunk_id, text, meta), str(meta.get("sha256", ""))

    def delete_chunks(self, ids: Sequence[str]) -> None:
        """Delete chunks by id."""
        for i in range(0, len(ids), _PAGE):
            self._chunks.delete(ids=list(ids[i:i + _PAGE]))

    def set_metadata(self, **values: Any) -> None:
        """Merge `values` into the collection's metadata."""
        self._chunks.modify(metadata={**self.metadata, **values})

    def query(self, vector: np.ndarray[Any, Any], n: int,
              sources: Sequence[str] | None = None) -> list[tuple[Chunk, float]]:
        """The `n` nearest chunks with their cosine similarity (only chunks of `sources`, when given)."""
        if n <= 0:
            return []
        res = self._chunks.query(
            query_embeddings=[vector], n_results=n, include=["documents", "metadatas", "distances"],
            where=_of_sources(sources) if sources is not None else None,
        )
        ids, docs = res["ids"][0], (res["documents"] or [[]])[0]
        metas, dists = (res["metadatas"] or [[]])[0], (res["distances"] or [[]])[0]
        return [  # a record deleted while the query ran can come back without its metadata
            (_chunk_from_record(i, d or "", m), 1.0 - float(dist))
            for i, d, m, dist in zip(ids, docs, metas, dists, strict=True) if m
        ]

    def chunk_ids(self, sources: Sequence[str]) -> set[str]:
        """The ids of the chunks (of any version) of `sources`."""
        return {chunk_id for chunk_id, _ in self._chunks_of(sources, [])}

    def _chunks_of(self, sources: Sequence[str], include: list[Any]) -> Iterator[tuple[str, Any]]:
        """(id, metadata: empty unless included) of the chunks of `sources`, read `_PAGE` sources per filter (one
        filter over many documents would pass SQLite's limit on a query's parameters)."""
        for at in range(0, len(sources), _PAGE):
            found = self._chunks.get(where=_of_sources(sources[at:at + _PAGE]), include=include)
            yield from zip(found["ids"], found["metadatas"] or [{}] * len(found["ids"]), strict=True)

    def get(self, ids: Sequence[str]) -> dict[str, tuple[Chunk, np.ndarray[Any, Any]]]:
        """Chunks and their vectors by id (ids not found are left out)."""
        if not ids:
            return {}
        from chromadb.errors import InternalError

        try:
            res = self._chunks.get(ids=list(ids), include=["documents", "metadatas", "embeddings"])
        except InternalError:
            # An embedded store that another process (an ingest) changed: this process's Chroma still knows
            # ids that are gone and fails on the whole request ("Error finding id"). Ask one by one; the gone
            # ones are left out, as a server leaves them out, and the caller moves to the newer snapshot.
            if len(ids) == 1:
                return {}
            return {i: found for one in ids for i, found in self.get([one]).items()}
        vectors = res["embeddings"] if res["embeddings"] is not None else [None] * len(res["ids"])
        return {
            i: (_chunk_from_record(i, d or "", m), np.asarray(v, dtype=np.float32))
            for i, d, m, v in zip(
                res["ids"], res["documents"] or [], res["metadatas"] or [], vectors, strict=True
            ) if m
        }


class Store:
    """The Chroma client for the settings in force, and the generations of the index inside it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: ClientAPI | None = None

    @property
    def location(self) -> str:
        """Where the index lives, for messages."""
        return self.settings.chroma_url or str(self.settings.home / "chroma")

    def exists(self) -> bool:
        """Whether an index may exist, checked without creating anything."""
        return bool(self.settings.chroma_url) or (self.settings.home / "chroma").is_dir()

    def client(self) -> ClientAPI:
        """Connect on first use: embedded `PersistentClient` or `HttpClient` to a Chroma server."""
        if self._client is None:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            chroma_settings = ChromaSettings(anonymized_telemetry=False)
            try:
                if self.settings.chroma_url:
                    base, port = server_address(self.settings.chroma_url)
                    check_heartbeat(base, self.settings.chroma_connect_s)
                    self._client = chromadb.HttpClient(
                        host=base, port=port, ssl=base.startswith("https:"), settings=chroma_settings,
                    )
                    limit_wait(self._client, self.settings.chroma_request_s, self.settings.chroma_connect_s)
                else:
                    path = self.settings.home / "chroma"
                    path.mkdir(parents=True, exist_ok=True)
                    self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            except SettingsError:
                raise
            except Exception as exc:
                hint = ("; check RAG_CHROMA_URL and that the server runs (`chroma run --path DIR --port PORT`),"
                        " or unset RAG_CHROMA_URL for the embedded index" if self.settings.chroma_url else "")
                raise StoreError(f"cannot open the index at {self.location}: {one_line(exc)}{hint}") from None
        return self._client

    def active(self) -> tuple[str, str] | None:
        """(generation name, stamp) of the live index, or None if nothing was ever indexed."""
        if not self.exists():
            return None
        from chromadb.errors import NotFoundError

        client = self.client()
        try:
            meta_collection = client.get_collection(f"{self.settings.collection}-meta")
            res = meta_collection.get(ids=["active"], include=["metadatas"])
        except NotFoundError:
            return None
        except Exception as exc:  # a Chroma server that went away, or a damaged store
            raise StoreError(f"cannot read the index at {self.location}: {one_line(exc)}") from None
        if not res["ids"] or not res["metadatas"]:
            return None
        meta = res["metadatas"][0]
        return str(meta["generation"]), str(meta["stamp"])

    def open(self) -> Index:
        """The live index; raise `IndexMissingError` when there is none."""
        active = self.active()
        if active is None:
            raise IndexMissingError(f"no index at {self.location}; run `rag ingest` first")
        return self.index(active[0])

    def checked(self) -> Index | None:
        """The live index checked against the settings (`IndexMismatchError` names each difference), or None
        when nothing was ever indexed."""
        if self.active() is None:
            return None
        index = self.open()
        index.check(self.settings)
        return index

    def index(self, name: str) -> Index:
        """The generation `name`."""
        client = self.client()
        try:
            return Index(
                client.get_collection(name, embedding_function=None),
                client.get_collection(f"{name}-files", embedding_function=None),
            )
        except Exception as exc:
            raise StoreError(
                f"the index at {self.location} is damaged ({name}: {exc}); run `rag ingest --rebuild`"
            ) from None

    def create(self, dimension: int) -> Index:
        """A new, empty generation (not live until `activate`)."""
        name = f"{self.settings.collection}-g{time.time_ns()}"
        client = self.client()
        metadata: dict[str, Any] = {**fingerprint(self.settings), "dimension": dimension, "created_at": time.time()}
        chunks = client.create_collection(
            name, metadata=metadata, embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
        )
        files = client.create_collection(f"{name}-files", embedding_function=None)
        return Index(chunks, files)

    def activate(self, index: Index, stamp: str) -> None:
        """Make `index` the live generation, marked with a new `stamp` that readers notice."""
        meta = self.client().get_or_create_collection(f"{self.settings.collection}-meta", embedding_function=None)
        meta.upsert(ids=["active"], embeddings=_DUMMY, metadatas=[{"generation": index.name, "stamp": stamp}])

    def drop_stale_generations(self) -> list[str]:
        """Delete every generation but the live one (left by a rebuild that was swapped or killed)."""
        active = self.active()
        prefix = f"{self.settings.collection}-g"
        dropped = []
        for collection in self.client().list_collections():
            name = str(getattr(collection, "name", collection))
            base = name.removesuffix("-files")
            if name.startswith(prefix) and (active is None or base != active[0]):
                self.client().delete_collection(name)
                dropped.append(name)
        return dropped


def _of_sources(sources: Sequence[str]) -> Any:
    """A Chroma `where` clause for records of these sources."""
    return {"source": {"$in": list(sources)}} if len(sources) != 1 else {"source": sources[0]}


def _file_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def _chunk_meta(chunk: Chunk, sha256: str) -> dict[str, str | int]:
    return {
        "source": chunk.source, "title": chunk.title, "start": chunk.start, "end": chunk.end,
        "index": chunk.index, "headings": "\x1f".join(chunk.headings), "page": chunk.page or 0,
        "sha256": sha256,
    }


def _chunk_from_record(chunk_id: str, text: str, meta: Any) -> Chunk:
    """Rebuild a `Chunk` from its Chroma record."""
    headings = str(meta.get("headings") or "")
    return Chunk(
        id=chunk_id, source=str(meta["source"]), title=str(meta.get("title", "")), text=text,
        start=int(meta["start"]), end=int(meta["end"]), index=int(meta["index"]),
        headings=tuple(headings.split("\x1f")) if headings else (), page=int(meta.get("page") or 0) or None,
    )


def _pages(collection: Collection, include: Any) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every record of `collection`, `_PAGE` at a time: its ids in one call, then the records by id (paging by
    offset costs Chroma a scan up to the offset: 2 s a page at 100k records, hours for a million)."""
    every = collection.get(include=[])["ids"]
    for at in range(0, len(every), _PAGE):
        res = collection.get(ids=every[at:at + _PAGE], include=include)
        ids = res["ids"]
        docs = res["documents"] or [""] * len(ids)
        metas = res["metadatas"] or [{}] * len(ids)
        yield from ((i, d or "", dict(m)) for i, d, m in zip(ids, docs, metas, strict=True))
