"""Shared fixtures: one real embedding model per session, and a real Chroma index of the seed corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model, loaded once for the whole test session."""
    return Embedder()


@pytest.fixture(scope="session")
def seed_home(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """An index of a copy of corpus/ (named `corpus` so sources read `corpus/...`)."""
    base = tmp_path_factory.mktemp("seed")
    shutil.copytree(ROOT / "corpus", base / "corpus")
    settings = Settings.load(home=base / ".rag", corpus=base / "corpus")
    report = ingest([base / "corpus"], settings, embedder=embedder)
    assert report.exit_code == 0 and report.added == 2
    return base


@pytest.fixture(scope="session")
def seed_assistant(seed_home: Path, embedder: Embedder) -> Assistant:
    settings = Settings.load(home=seed_home / ".rag", corpus=seed_home / "corpus")
    return Assistant(settings, embedder=embedder)


def run_rag(*args: str, home: Path, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `rag` command in a subprocess against the index at `home`."""
    full_env = {**os.environ, "RAG_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or home.parent, timeout=600)
