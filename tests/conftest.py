"""Shared fixtures: one real embedding model per session, and a real Chroma index of the seed corpus."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingest.pipeline import ingest
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# The questions the confidence tests ask of the seed corpus (Python, CLI, HTTP, page), in one place:
# change them here when the answerer changes what it is sure of.
HIGH_QUESTION = "How many 910C processors will Huawei make this year?"  # answered: confidence "high"
LOW_QUESTION = "When will Huawei release the 910D?"  # on topic, not answered (no 910D in them): "low"
OFF_TOPIC_QUESTION = "What is the capital of Australia?"  # nothing relevant: abstains


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
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd or home.parent, timeout=600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(base: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run the real `rag serve` on a free loopback port over the index and corpus in `base`; yield its URL."""
    port = free_port()
    log = open(base / f"serve-{port}.log", "w+")  # noqa: SIM115 - closed below
    full_env = {**os.environ, "RAG_HOME": str(base / ".rag"), "RAG_CORPUS": str(base / "corpus"), **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=base)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"rag serve exited with {proc.returncode}:\n{log.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("rag serve did not start listening within 180 s") from None
                time.sleep(0.3)
        yield url
    finally:
        stop(proc, timeout=20)
        log.close()


def stop(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Terminate `proc`; kill it if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def indexed_copy(base: Path, embedder: Embedder) -> Path:
    """`base` with a copy of corpus/ and its own index of it (a server may add documents to both)."""
    shutil.copytree(ROOT / "corpus", base / "corpus")
    report = ingest([base / "corpus"], Settings.load(home=base / ".rag", corpus=base / "corpus"), embedder=embedder)
    assert report.exit_code == 0
    return base


@dataclass(frozen=True)
class Live:
    url: str  # http://127.0.0.1:PORT
    base: Path  # holds corpus/ (where uploads land) and .rag/ (the index)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Live]:
    """One `rag serve` (no auth) over its own copy of the seed corpus, shared by the API and browser tests.

    Tests that upload must use file names of their own: the corpus folder is shared.
    """
    base = indexed_copy(tmp_path_factory.mktemp("live"), embedder)
    with serving(base) as url:
        yield Live(url, base)
