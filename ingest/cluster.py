"""Reading (OCR included), chunking and embedding of an ingest's files on a Ray cluster (`rag ingest --cluster`).

The driver (the `rag ingest` process) sends each file's bytes to a Ray task (no shared filesystem is
needed); the task writes them to a temporary file named like the original, prepares it as a local ingest
does (`ingest.prepare`: the reader process, its limits, the chunker) and embeds the chunks with the model
of the package the worker runs. What comes back is written by the driver, the index's one writer, in the
order it arrives (`ingest.pipeline`): the plan, the ledger, kill-safety and publishing are the local ones.

A task whose worker process or node dies is run again elsewhere (Ray's retries, `RETRIES`); a file the
reader refuses comes back as a failure with its reason, like a local one. Before its first file a worker
checks that it computes what the driver does: the same index fingerprint (chunker, parser, model name),
dimension and OCR, and the model's vector for a probe sentence within 1e-4; a worker that cannot is
refused and the ingest stops with one line naming it. Ray is imported only here, only for a cluster ingest.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ingest.ocr import ocr_for
from ingest.prepare import Prepared, file_size, prepare
from ingest.sources import SourceFile, read_bytes
from rag.embedding import Embedder, make_embedder
from rag.errors import ClusterError, RagError, SourceError
from rag.index.store import fingerprint
from rag.settings import Settings
from rag.types import Progress

RETRIES = 3  # runs of a task after its worker process or node died
CONNECT_S = 5.0  # to reach the head at all
WORKERS_S = 10.0  # for a worker CPU to show up, at the start and whenever the cluster has none left
BUNDLE_FILES = 32  # files per task at most: their chunks are embedded together (small files: a few chunks each)
BUNDLE_BYTES = 2**20  # a bundle closes once its files reach this many bytes (scans: about one or two each)
PROBE = "A sentence every worker embeds to show it runs the driver's model."
INSTALL = "pip install 'rag-assistant[cluster]'"


@dataclass(frozen=True)
class Identity:
    """What a worker must compute like the driver: the index fingerprint, the model's dimension, whether
    scanned pages are read (and in which languages), and the model's vector for `PROBE`."""

    fingerprint: tuple[tuple[str, str | int], ...]
    dimension: int
    ocr: str
    probe: tuple[float, ...]

    @classmethod
    def of(cls, settings: Settings, embedder: Embedder) -> Identity:
        return cls(tuple(sorted(fingerprint(settings).items())), embedder.dimension, _ocr_of(settings),
                   tuple(float(x) for x in embedder.embed([PROBE])[0]))


@dataclass(frozen=True)
class Done:
    """A file prepared and embedded by a worker (`vectors` row i is `prepared.chunks[i]`)."""

    prepared: Prepared
    vectors: np.ndarray[Any, Any]


def prepare_on_cluster(
    files: list[SourceFile], hashes: dict[str, str], settings: Settings, identity: Identity, progress: Progress,
    address: str,
) -> Iterator[tuple[str, Done | str]]:
    """Yield (source, `Done` or the reason it failed) for each file, as workers finish them.

    Files go out in bundles (`_bundles`): a worker embeds a bundle's chunks together, in batches, as the
    local path embeds a group. Raises `ClusterError` when the cluster cannot be reached, has no worker CPU
    (within `WORKERS_S`), a worker cannot compute what the driver does, or every worker is gone for
    `WORKERS_S` mid-run.
    """
    ray = _connect(address)
    try:
        cpus = _wait_for_cpus(ray, address)
        task = ray.remote(_prepare_remote).options(num_cpus=1, max_retries=RETRIES, retry_exceptions=False)
        shipped = _for_workers(settings)
        bundles = _bundles(files, cpus)
        running: dict[Any, list[SourceFile]] = {}
        chunks = 0
        progress.start("reading and embedding on the cluster", len(files))
        idle_since: float | None = None
        while bundles or running:
            while bundles and len(running) < 2 * cpus:  # each worker busy and one bundle waiting for it
                bundle, sent = bundles.pop(), []
                for file in bundle:
                    try:
                        sent.append((file.path.name, read_bytes(file.path, settings.max_file_bytes), file.source,
                                     hashes[file.source]))
                    except SourceError as exc:
                        progress.advance(1)
                        yield file.source, str(exc)
                bundle = [f for f in bundle if f.source in {source for _, _, source, _ in sent}]
                if bundle:
                    running[task.remote(sent, shipped, identity)] = bundle
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=2.0)
            if not ready:
                idle_since = _check_workers(ray, address, idle_since, len(running) + sum(map(len, bundles)))
                continue
            idle_since = None
            for ref in ready:
                bundle = running.pop(ref)
                for file, outcome in zip(bundle, _outcomes(ray, ref, len(bundle)), strict=True):
                    if isinstance(outcome, Done):
                        outcome = Done(outcome.prepared._replace(size=file_size(file.path),
                                                                 path=str(file.path.absolute())), outcome.vectors)
                        chunks += len(outcome.prepared.chunks)
                    yield file.source, outcome
                progress.advance(len(bundle))
                progress.note(f"{chunks} chunks")
    finally:
        ray.shutdown()


def _bundles(files: list[SourceFile], cpus: int) -> list[list[SourceFile]]:
    """The files in bundles of at most `BUNDLE_FILES` files or about `BUNDLE_BYTES`, small enough that every
    CPU gets four (the last ones do not leave the others idle long); in reverse order, to pop."""
    size = max(1, min(BUNDLE_FILES, len(files) // (4 * cpus)))
    bundles: list[list[SourceFile]] = [[]]
    weight = 0
    for file in files:
        if len(bundles[-1]) >= size or weight >= BUNDLE_BYTES:
            bundles.append([])
            weight = 0
        bundles[-1].append(file)
        weight += file_size(file.path)
    return [b for b in reversed(bundles) if b]


def _outcomes(ray: Any, ref: Any, count: int) -> list[Done | str]:
    """What the task for a bundle returned, file by file: `Done`, or a reason; a refused worker stops the run."""
    try:
        kind, value = ray.get(ref)
    except ray.exceptions.RayError as exc:  # its worker died on every try, or the task broke
        return [f"its worker failed {RETRIES + 1} times on it ({type(exc).__name__}: {_first_line(exc)})"] * count
    if kind == "refused":
        raise ClusterError(value)
    return list(value)


def _connect(address: str) -> Any:
    """`ray`, connected to the cluster at `address`; `ClusterError` within seconds when it cannot be."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed here; run `{INSTALL}` "
                           "(`make install` does)") from None
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=CONNECT_S).close()
        except OSError as exc:
            raise ClusterError(
                f"cannot reach the Ray cluster at {address} ({_first_line(exc)}); start one (`ray start --head`, "
                "or `make cluster` to try it here) or fix --cluster / RAG_CLUSTER") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, namespace="rag-ingest",
                 runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}})
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError for these
        raise ClusterError(
            f"cannot join the Ray cluster at {address} ({type(exc).__name__}: {_first_line(exc)}); start one "
            "(`ray start --head`, or `make cluster`) or fix --cluster / RAG_CLUSTER; a driver outside the "
            "cluster connects with ray://HEAD:10001") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--cluster {address}: give HOST:PORT (the head's GCS port, 6379 by default), "
                           "ray://HOST:10001 (from outside the cluster) or auto")
    return host.strip("[]"), int(port)


def _alive_cpus(ray: Any) -> float:
    return float(sum(node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]))


def _wait_for_cpus(ray: Any, address: str) -> int:
    deadline = time.monotonic() + WORKERS_S
    while (cpus := _alive_cpus(ray)) < 1:
        if time.monotonic() > deadline:
            raise ClusterError(
                f"the Ray cluster at {address} has no worker CPU (waited {WORKERS_S:g} s); start a worker node "
                f"there (`ray start --address {address.removeprefix('ray://')}`) or give the head CPUs")
        time.sleep(0.5)
    return int(cpus)


def _check_workers(ray: Any, address: str, idle_since: float | None, waiting: int) -> float | None:
    """Stop the run once no worker CPU has been alive for `WORKERS_S` (tasks would wait for ever)."""
    if _alive_cpus(ray) >= 1:
        return None
    now = time.monotonic()
    if idle_since is None:
        return now
    if now - idle_since > WORKERS_S:
        raise ClusterError(
            f"every worker of the Ray cluster at {address} is gone ({waiting} files not done; what was written is "
            "kept and the index is whole); start workers and run the same ingest again to finish")
    return idle_since


def _for_workers(settings: Settings) -> Settings:
    """The settings a worker gets: no secrets, no cluster of its own."""
    return settings.model_copy(update={"auth": None, "api_token": None, "llm_api_key": None, "cluster": None})


def _ocr_of(settings: Settings) -> str:
    return "off" if ocr_for(settings) is None else f"tesseract {settings.ocr_lang}"


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(text[0].split())[:200] if text else type(exc).__name__


# On the worker ---------------------------------------------------------------------------------------------

_embedders: dict[tuple[str, int, str], Embedder] = {}
_checked: set[Identity] = set()


def _prepare_remote(files: list[tuple[str, bytes, str, str]], settings: Settings,
                    identity: Identity) -> tuple[str, Any]:
    """A Ray task: prepare a bundle of (file name, bytes, source, sha256), then embed all their chunks together.
    Returns ("done", [`Done` or reason, file by file]) or ("refused", line)."""
    try:
        embedder = _embedder(settings)
        refusal = _refusal(settings, identity, embedder)
    except (RagError, ImportError, OSError) as exc:
        refusal = (f"worker {socket.gethostname()} cannot load the embedding model {settings.embed_model} "
                   f"({type(exc).__name__}: {_first_line(exc)}); install the same packages there as here "
                   f"(`{INSTALL}`)")
    if refusal:
        return "refused", refusal
    ocr = ocr_for(settings)
    outcomes: list[Prepared | str] = []
    folder = tempfile.mkdtemp(prefix="rag-cluster-")
    try:
        for n, (name, data, source, sha256) in enumerate(files):
            path = Path(folder) / str(n) / name  # the file's own name: a title may come from it
            path.parent.mkdir()
            path.write_bytes(data)
            try:  # OCR's cache would be on this node only: none
                outcomes.append(prepare(SourceFile(path, source), settings,
                                        replace(ocr, cache=None, label=source) if ocr is not None else None, sha256))
            except SourceError as exc:
                outcomes.append(str(exc))
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    texts = [c.embed_text() for p in outcomes if isinstance(p, Prepared) for c in p.chunks]
    vectors = embedder.embed(texts) if texts else np.zeros((0, embedder.dimension), dtype=np.float32)
    done: list[Done | str] = []
    at = 0
    for p in outcomes:
        if isinstance(p, Prepared):
            done.append(Done(p, vectors[at:at + len(p.chunks)]))
            at += len(p.chunks)
        else:
            done.append(p)
    return "done", done


def _embedder(settings: Settings) -> Embedder:
    """This worker process's model for `settings` (loaded once), its ONNX export kept in `settings.models`
    when this node can write there, else in its temporary folder."""
    key = (settings.embed_model, settings.embed_batch_size, settings.embed_backend)
    if key not in _embedders:
        models = settings.models
        try:
            models.mkdir(parents=True, exist_ok=True)
        except OSError:
            models = Path(tempfile.gettempdir()) / "rag-models"
        _embedders[key] = make_embedder(*key, models_dir=models)
    return _embedders[key]


def _refusal(settings: Settings, identity: Identity, embedder: Embedder) -> str | None:
    """Why this worker may not prepare files for `identity` (None: it may)."""
    if identity in _checked:
        return None
    where = f"worker {socket.gethostname()}"
    mine = tuple(sorted(fingerprint(settings).items()))
    if mine != identity.fingerprint:
        return (f"{where} runs another version of the indexer ({dict(mine)} against the driver's "
                f"{dict(identity.fingerprint)}); install the driver's version there")
    if _ocr_of(settings) != identity.ocr:
        return (f"{where} reads scanned pages with {_ocr_of(settings)!r}, the driver with {identity.ocr!r}; "
                "install the same Tesseract languages on every node (or set RAG_OCR=off)")
    probe = embedder.embed([PROBE])[0]
    if embedder.dimension != identity.dimension or float(np.abs(probe - np.asarray(identity.probe)).max()) > 1e-4:
        return (f"{where} has another embedding model under the name {settings.embed_model} (its vectors differ "
                "from the driver's); install the same model package version on every node")
    _checked.add(identity)
    return None
