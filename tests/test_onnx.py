"""The ONNX embedding backends: exported here from the packaged model, the same vectors as torch (plain)
or close ones (int8), a query path that never imports torch, and an index that knows its vectors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder, make_embedder
from rag.errors import IndexMismatchError
from rag.settings import Settings
from tests.helpers import ROOT

pytestmark = pytest.mark.integration  # every test runs the real command, pipeline or model

TEXTS = ["Huawei aims to crank out 100,000 of its latest 910C processors this year.",
         "The Brellin ferry crosses the Ostra fjord four times a day.", "x",
         "A longer sentence about chunk servers, replicas and a single master that tracks where every chunk "
         "lives, so that the padding of a batch is exercised by texts of very different lengths."]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export (and int8 quantisation) of the packaged model for the whole module."""
    folder = tmp_path_factory.mktemp("models")
    for backend in ("onnx", "onnx-int8"):
        assert make_embedder(backend=backend, models_dir=folder).dimension == 384  # type: ignore[arg-type]
    return folder


def test_onnx_vectors_are_torchs_and_int8_ones_are_close(models: Path, embedder: Embedder) -> None:
    reference = embedder.embed(TEXTS)
    plain = make_embedder(backend="onnx", models_dir=models).embed(TEXTS)
    assert plain.dtype == np.float32 and plain.shape == reference.shape
    assert float((plain * reference).sum(axis=1).min()) > 0.9999
    int8 = make_embedder(backend="onnx-int8", models_dir=models).embed(TEXTS)
    assert float((int8 * reference).sum(axis=1).min()) > 0.95
    pieces = make_embedder(backend="onnx", models_dir=models).embed_pieces(TEXTS)
    expected = embedder.embed_pieces(TEXTS)
    for mine, theirs in zip(pieces, expected, strict=True):  # the same content word pieces, the same vectors
        assert mine.pieces.shape == theirs.pieces.shape
        if len(theirs.pieces):
            assert float((mine.pieces.astype(np.float32) * theirs.pieces).sum(axis=1).min()) > 0.999


def test_the_export_is_made_once(models: Path) -> None:
    graphs = sorted(models.glob("*/model*.onnx"))
    assert [g.name for g in graphs] == ["model-int8.onnx", "model.onnx"]
    stamps = [g.stat().st_mtime_ns for g in graphs]
    make_embedder(backend="onnx-int8", models_dir=models).embed(["again"])
    assert [g.stat().st_mtime_ns for g in graphs] == stamps


def test_asking_with_onnx_never_imports_torch_and_int8_needs_its_own_index(models: Path, tmp_path: Path,
                                                                            embedder: Embedder) -> None:
    home = tmp_path / ".rag"
    settings = Settings.load(home=home, corpus=ROOT / "corpus")
    ingest([ROOT / "corpus"], settings, embedder=embedder)  # built with torch: float32 vectors
    (home / "models").symlink_to(models)
    code = ("import sys; from ui.cli import main; code = main(['ask', 'How many 910C processors will Huawei make?']);"
            "print([m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]);"
            "sys.exit(code)")
    env = {**os.environ, "RAG_HOME": str(home), "RAG_EMBED_BACKEND": "onnx"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "100,000" in out.stdout and out.stdout.rstrip().endswith("[]"), out.stdout  # nothing of torch
    int8 = Settings.load(home=home, corpus=ROOT / "corpus", embed_backend="onnx-int8")
    with pytest.raises(IndexMismatchError, match=r"RAG_EMBED_BACKEND's vectors is 'int8' now but the index was "
                                                 r"built with 'float32'.*rag ingest --rebuild"):
        Assistant.open(int8)
