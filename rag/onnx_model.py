"""The embedding model as an ONNX graph, made here from the packaged model (nothing is downloaded).

`onnx_file` exports the sentence-transformers model's transformer once (torch.onnx's TorchScript
exporter, then onnxruntime's transformer optimizer; needs torch, transformers and onnx, all
installed by `make install`) into
`RAG_HOME/models/<hash of the model's weights>/model.onnx`, and for `onnx-int8` quantises it with
onnxruntime's dynamic quantisation (`model-int8.onnx`). Later processes only read the file: the
query path needs onnxruntime and tokenizers, never torch. `OnnxModel` runs it: the tokenizer
(`tokenizer.json`), the graph, and the model's own pooling (`1_Pooling/config.json`: mean or CLS
token) and normalisation, reproducing sentence-transformers' vectors (cosine above 0.99999).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import SettingsError
from rag.files import locked, write_atomic

MAX_TOKENS = 256  # word pieces a text is cut to, as sentence-transformers does for this model family
_EXPORTER = "torchscript-opset17-fused-v1"  # part of the cache key: bump when the export changes


def weights_hash(model_dir: Path, models_dir: Path) -> str:
    """The SHA-256 of the model's weights, remembered by file size and time (hashing 90 MB takes a while)."""
    weights = next((model_dir / name for name in ("model.safetensors", "pytorch_model.bin")
                    if (model_dir / name).is_file()), None)
    if weights is None:
        raise SettingsError(f"RAG_EMBED_MODEL: no model.safetensors in {model_dir}; "
                            "give a sentence-transformers folder")
    stat = weights.stat()
    known_file = models_dir / "hashes.json"
    key = f"{weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        known = json.loads(known_file.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        digest = hashlib.sha256()
        with open(weights, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        known[key] = digest.hexdigest()
        models_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(known_file, json.dumps(known))
    return str(known[key])


def onnx_file(model_dir: Path, models_dir: Path, quantized: bool) -> Path:
    """The ONNX graph of the model in `model_dir` (made on first use, under a lock other processes wait on)."""
    folder = models_dir / f"{weights_hash(model_dir, models_dir)[:16]}-{_EXPORTER}"
    plain, int8 = folder / "model.onnx", folder / "model-int8.onnx"
    wanted = int8 if quantized else plain
    if wanted.is_file():
        return wanted
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / "export.lock"):  # another process exporting the same model: wait for its file
        if not plain.is_file():
            _export(model_dir, plain)
        if quantized and not int8.is_file():
            quantize(plain, int8)
    return wanted


def _export(model_dir: Path, target: Path) -> None:
    """Export the transformer (input ids, attention mask, token types -> token vectors) to one ONNX file,
    its attention, layer norms and GELUs fused by onnxruntime's transformer optimizer, and check that
    it gives torch's token vectors."""
    try:
        import onnx  # noqa: F401 - the exporter and the optimizer need it
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise SettingsError(f"RAG_EMBED_BACKEND: exporting the model to ONNX needs {exc.name}; run `make install` "
                            "(or set RAG_EMBED_BACKEND=torch)") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    transformers.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    # Eager attention: the graph the optimizer recognises as attention and fuses into one operator.
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, attn_implementation="eager").eval()

    class Transformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 2003, 2307, 1012, 102, 0], [101, 1037, 2936, 6251, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():  # before the export, which leaves the model in a state of its own
        expected = model(input_ids=ids, attention_mask=mask, token_type_ids=ids * 0).last_hidden_state.numpy()
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        fused = Path(work) / "model.onnx"
        try:
            export_graph(Transformer(), (ids, mask, ids * 0), fused, model.config, "token_vectors",
                         {0: "batch", 1: "tokens"})
        except Exception as exc:
            raise SettingsError(f"RAG_EMBED_BACKEND: cannot export {model_dir.name} to ONNX ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:200]}); set RAG_EMBED_BACKEND=torch") from None
        got = session(fused).run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                                        "token_type_ids": ids.numpy() * 0})[0]
        used = mask.numpy().astype(bool)
        if not np.allclose(got[used], expected[used], atol=1e-3):
            raise SettingsError(f"RAG_EMBED_BACKEND: the ONNX export of {model_dir.name} does not give torch's "
                                "vectors; set RAG_EMBED_BACKEND=torch")
        os.replace(fused, target)


def export_graph(module: Any, inputs: tuple[Any, Any, Any], target: Path, config: Any, output: str,
                 output_axes: dict[int, str]) -> None:
    """Export a BERT-family `module(input_ids, attention_mask, token_type_ids)` with torch.onnx's TorchScript
    exporter (batch and length dynamic) and fuse it with onnxruntime's transformer optimizer into `target`.
    The caller checks the graph against torch: the exporter has been seen to give wrong numbers."""
    import torch

    names = ["input_ids", "attention_mask", "token_type_ids"]
    graph = target.with_name(target.stem + "-unfused.onnx")
    with quiet():
        torch.onnx.export(module, inputs, str(graph), dynamo=False, opset_version=17, input_names=names,
                          output_names=[output],
                          dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in names}, output: output_axes})
        _optimize(graph, target, config)
    graph.unlink()


def _optimize(graph: Path, target: Path, config: Any) -> None:
    """onnxruntime's transformer optimizer for BERT-family models (MiniLM, MPNet and RoBERTa are); other
    graphs are kept as exported."""
    import onnx

    if config.model_type not in ("bert", "roberta", "xlm-roberta", "mpnet"):
        onnx.save_model(onnx.load(str(graph)), str(target))
        return
    from onnxruntime.transformers import optimizer

    optimized = optimizer.optimize_model(str(graph), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
    optimized.save_model_to_file(str(target))


def quantize(plain: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weights of matrix products (onnxruntime's), one scale per output
    channel: on 300 sentences of the Redis docs its vectors' cosine with torch's is 0.993 on average
    (0.980 at worst), against 0.962 (0.840) with one scale per tensor (scratch measurement)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        out = Path(work) / "model-int8.onnx"
        with quiet():  # fused operators have no shape inference of their own: their outputs are float
            quantize_dynamic(str(plain), str(out), weight_type=QuantType.QInt8, per_channel=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        shutil.move(str(out), target)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporter's and quantiser's progress lines and advice kept off the terminal (errors still raise)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    logging.getLogger("torch").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def session(graph: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for `graph`, on at most `threads` threads (None: as many as there are cores)
    and at most OMP_NUM_THREADS when that is set (a cap: the user's, or a Ray task's CPU share: Ray sets it)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    cap = os.environ.get("OMP_NUM_THREADS", "")
    caps = [n for n in (threads, int(cap) if cap.isdigit() and int(cap) > 0 else None) if n is not None]
    if caps:
        options.intra_op_num_threads = min(caps)
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """Tokenizer, graph and pooling of a sentence-transformers model, run by onnxruntime."""

    def __init__(self, model_dir: Path, graph: Path) -> None:
        from tokenizers import Tokenizer

        modules = _json(model_dir / "modules.json")
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules] if modules else []
        pooling = _json(model_dir / "1_Pooling" / "config.json")
        unsupported = [k for k in kinds if k not in ("Transformer", "Pooling", "Normalize")]
        if pooling.get("pooling_mode_max_tokens") or pooling.get("pooling_mode_mean_sqrt_len_tokens"):
            unsupported.append("max or sqrt-length pooling")
        if unsupported:
            raise SettingsError(f"RAG_EMBED_BACKEND: {model_dir.name} has {', '.join(unsupported)}, which the ONNX "
                                "backend does not reproduce; set RAG_EMBED_BACKEND=torch")
        limit = int(_json(model_dir / "sentence_bert_config.json").get("max_seq_length") or MAX_TOKENS)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(limit)
        self.tokenizer.enable_padding()
        self.session = session(graph)
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.cls = bool(pooling.get("pooling_mode_cls_token"))
        self.normalise = "Normalize" in kinds if kinds else True
        self.dimension = int(_json(model_dir / "config.json").get("hidden_size") or 0)
        self._lock = threading.Lock()  # one tokenizer call at a time (its padding settings are shared)

    def run(self, texts: Sequence[str]) -> tuple[np.ndarray[Any, Any], list[Any], np.ndarray[Any, Any]]:
        """Sentence vectors (n, dim), the tokenizer's encodings, and the token vectors (n, seq, dim)."""
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts))
        feed = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        tokens = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = tokens[:, 0] if self.cls else (tokens * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        vectors = pooled
        if self.normalise:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors.astype(np.float32), encodings, tokens


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
