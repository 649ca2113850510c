"""Shared fixtures: one real embedding model per session, a real Chroma index of the seed corpus, a real server.

The helpers they use (and tests import) are in `tests/helpers.py`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder, embedder_for
from rag.settings import Settings
from tests.helpers import ROOT, Live, indexed_copy, serving

# The index lifecycle's waits, short (README, settings): readers look for a new index every 0.1 s and
# an ingest keeps replaced chunks for 0.3 s, in this process and in every `rag` process a test starts.
# One export of the embedding model to ONNX for every index a test builds (the default backend is onnx):
# kept between runs, keyed by the model's weights, like a user's shared RAG_MODELS_DIR. Set for the
# session (`session_environment`), not when this file is imported; a value already in the environment wins.
TEST_ENVIRONMENT = {"RAG_READER_RECHECK_S": "0.1", "RAG_PUBLISH_GRACE_S": "0.3",
                    "RAG_MODELS_DIR": str(Path(tempfile.gettempdir()) / "rag-test-models")}

# Layers (pytest -m): a test is `browser` when its module says so (test_browser.py), `server` when it starts
# a server (rag serve, chroma run, a scripted or real LLM server), `integration` when it uses the real model
# and index; the rest is the unit layer, `make test-fast`. A module whose every test runs the real command,
# pipeline or model says so itself (`pytestmark = pytest.mark.integration`); a test of it that starts a
# server is in both layers.
SERVER_FIXTURES = frozenset({"live", "secured", "chroma", "replicas", "openai_url", "script", "watched_server",
                             "guarded", "real_llm"})
INTEGRATION_FIXTURES = frozenset({"embedder", "seed_home", "seed_assistant", "hostile", "answerer", "checker",
                                  "injected_home", "cli"})


@pytest.fixture(scope="session", autouse=True)
def session_environment() -> Iterator[None]:
    """`TEST_ENVIRONMENT` for the whole session (and the processes its tests start), then as it was."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in TEST_ENVIRONMENT.items():
            if name not in os.environ:
                patch.setenv(name, value)
        yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("browser"):
            continue
        if used & SERVER_FIXTURES:
            item.add_marker(pytest.mark.server)
        elif used & INTEGRATION_FIXTURES:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model, loaded once for the whole test session."""
    return embedder_for(Settings.load())


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


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Live]:
    """One `rag serve` (no auth) over its own copy of the seed corpus, shared by the API and browser tests.

    Tests that upload must use file names of their own: the corpus folder is shared.
    """
    base = indexed_copy(tmp_path_factory.mktemp("live"), embedder)
    with serving(base) as url:
        yield Live(url, base)
