"""`rag bench load` against a real `rag serve` on loopback: bounded load, figures reported, timings never asserted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.embedding import Embedder
from tests.helpers import ROOT, Live, free_port, indexed_copy, run_rag, serving
from ui.bench.load import format_load, read_questions, run_load

GOLDEN = ROOT / "corpus" / "golden.jsonl"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Live]:
    """A server of its own: the shared one holds other tests' uploads, which can answer "unanswerable" questions."""
    base = indexed_copy(tmp_path_factory.mktemp("load"), embedder)
    with serving(base) as url:
        yield Live(url, base)


def test_twenty_clients_get_cited_answers_abstentions_or_low_answers(live: Live) -> None:
    questions = read_questions(GOLDEN)
    assert any(q.answerable for q in questions) and any(not q.answerable for q in questions)
    result = run_load(live.url, questions, clients=20, per_client=10)
    assert result["requests"] == result["ok"] == 200 and result["errors"] == 0 and result["errors_by_kind"] == {}
    answers = result["answers"]
    assert answers["answerable"] + answers["unanswerable"] == 200 and answers["unanswerable"] > 0
    assert answers["answerable_cited"] == answers["answerable"]
    assert answers["cited"] == answers["answerable"] + answers["unanswerable"] - answers["unanswerable_abstained"]
    # An unanswerable question abstains, or quotes the closest evidence marked low: never high.
    assert answers["unanswerable_abstained_or_low"] == answers["unanswerable"] >= answers["abstained"] > 0
    assert answers["unanswerable_abstained"] == answers["abstained"]
    server = result["server"]
    assert server["rss_mib_start"] > 0 and server["rss_mib_end"] > 0 and server["peak_rss_mib_since_start"] > 0
    assert server["samples"] and all(s["rss_mib"] > 0 for s in server["samples"])
    assert set(result["latency_ms"]) == {"p50", "p95", "mean", "max"} and result["throughput_rps"] > 0
    text = format_load(result)
    assert "p50" in text and "p95" in text and "req/s" in text and "server RSS MiB" in text


def test_status_reports_the_server_process(live: Live) -> None:
    process = httpx.get(f"{live.url}/v1/status", timeout=30).json()["process"]
    assert process["pid"] > 0 and 0 < process["rss_mib"] <= process["peak_rss_mib"]


def test_cli_prints_json_figures(live: Live) -> None:
    done = run_rag("bench", "load", "--url", live.url, "--clients", "3", "--questions", "4",
                   "--questions-file", str(GOLDEN), "--json", home=live.base / ".rag")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["requests"] == 12 and result["errors"] == 0 and result["latency_ms"]["p95"] > 0


def test_cli_failed_requests_exit_1_with_one_line(live: Live) -> None:
    done = run_rag("bench", "load", "--url", live.url, "--clients", "2", "--questions", "2", "--timeout", "0.001",
                   "--questions-file", str(GOLDEN), home=live.base / ".rag")  # no answer comes within 1 ms
    assert done.returncode == 1, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert line == "error: 4 of 4 requests failed (timeout 4)"
    assert re.search(r"^errors +4 \(timeout 4\)$", done.stdout, re.MULTILINE), done.stdout


def test_cli_unreachable_server_exits_2_with_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_rag("bench", "load", "--url", url, "--questions-file", str(GOLDEN), home=tmp_path / ".rag")
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: cannot reach rag serve at {url}") and "`rag serve`" in line
