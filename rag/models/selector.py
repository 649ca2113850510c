"""The answer selector: a cross-encoder we trained (see `selector/README.md`, its model card), run by onnxruntime.

It reads a question and a candidate sentence together and gives the log-odds that the candidate
answers the question. The graph and its tokenizer ship inside the package (`rag/models/selector/`),
so nothing is downloaded and torch is never imported on the query path.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import SettingsError
from rag.onnx_model import session

FOLDER = Path(__file__).parent / "selector"
MAX_TOKENS = 128  # question and candidate together; the longer of the two is cut first (see the model card)
# One thread: a candidate is a few dozen tokens, and under load the server's questions in flight keep the cores busy.
# `rag bench load --clients 20 --questions 10` (seed index, 6 candidates a question, two cores): 22.6 and 22.4 req/s
# on one thread, 17.0 and 15.6 on two (onnxruntime's default, whose threads spin waiting for each other); one
# question alone pays ~2 ms a candidate for it (35 against 23 ms for six).
THREADS = 1


def tokenizer(folder: Path) -> Any:
    """The selector's tokenizer: pairs (question, candidate), the longer cut first to fit `MAX_TOKENS` (a long
    candidate; or a follow-up resolved with a long conversation, which cutting only the candidate could not fit)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(MAX_TOKENS, strategy="longest_first")
    tok.enable_padding()
    return tok


def encode(tok: Any, question: str, texts: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
    """The model's inputs for one question against each text."""
    return encode_pairs(tok, [(question, t) for t in texts])


def encode_pairs(tok: Any, pairs: Sequence[tuple[str, str]]) -> dict[str, np.ndarray[Any, Any]]:
    """The model's inputs for (question, text) pairs."""
    encodings = tok.encode_batch(list(pairs))
    return {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}


class Selector:
    """Scores candidates against a question: higher log-odds, likelier to answer it. Loaded on first use."""

    def __init__(self, folder: Path = FOLDER, graph: str | None = None) -> None:
        self.folder = folder
        self.graph = graph or str(card(folder).get("file", "model.onnx"))
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                path = self.folder / self.graph
                if not path.is_file() or not (self.folder / "tokenizer.json").is_file():
                    raise SettingsError(f"the answer selector is missing from {self.folder} (model file or "
                                        "tokenizer.json); reinstall the package, run `rag train selector`, or set "
                                        "RAG_SELECTOR=false")
                self._tokenizer = tokenizer(self.folder)
                self._session = session(path, THREADS)
        return self._session, self._tokenizer

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The log-odds that each text answers `question`, in the order given."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        session, tok = self._load()
        # One text at a time: a batch is padded to its longest text (the 6-candidate pools of the seed, XQuAD and
        # fresh natural questions: 27 ms in one batch, 23 one by one, two threads, quiet cores), and the int8 graph
        # quantises each batch's activations with one scale (in a batch a score moved by up to 1.2 log-odds), so a
        # text scored alone gets the same log-odds whichever candidates it is ranked against.
        out = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            with self._lock:  # the tokenizer's state is shared
                feed = encode(tok, question, [text])
            out[i] = session.run(None, feed)[0].reshape(-1)[0]
        return out


def card(folder: Path = FOLDER) -> dict[str, Any]:
    """The model card's machine-readable part (`card.json`): file, sha256, data, hyperparameters, metrics."""
    try:
        data = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
