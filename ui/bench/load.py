"""`rag bench load`: many clients asking a running `rag serve` at once; errors, throughput, latency, server RSS.

Like every benchmark it reports figures and never asserts timings. The server is reached only
over HTTP (`POST /v1/ask`, `GET /v1/status`), so a remote server is measured the same way as a
local one; its memory comes from the `process` field of `/v1/status`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rag.errors import RagError
from rag.golden import read_golden
from ui.bench.common import percentiles

Say = Callable[[str], None]
Auth = httpx.BasicAuth | None


@dataclass(frozen=True)
class Question:
    text: str
    answerable: bool


@dataclass(frozen=True)
class Outcome:
    """One request: its client-side latency, and either an error kind or what the answer was."""

    question: Question
    ms: float
    error: str | None = None  # "HTTP 503", "connection", "timeout", "bad response"
    detail: str = ""
    abstained: bool = False
    cited: bool = False
    high: bool = False  # answered with high confidence
    server_ms: float | None = None
    sources: tuple[str, ...] = ()  # the documents its citations name


def read_questions(path: Path) -> list[Question]:
    """The questions of a golden file (`rag eval golden` format), answerable or not, in file order."""
    return [Question(line["question"], line.get("answerable", True) is not False) for line in read_golden(path)]


def _quiet(_: str) -> None:
    pass


def _process(client: httpx.Client, url: str, params: dict[str, str]) -> dict[str, Any]:
    """The server's `process` field of `/v1/status`; raises `RagError` when the server cannot be used."""
    try:
        response = client.get(f"{url}/v1/status", params=params, timeout=10)
    except httpx.TransportError as exc:
        raise RagError(f"cannot reach rag serve at {url} ({type(exc).__name__}: {exc}); "
                       "start it with `rag serve` or give its address with --url") from None
    if response.status_code == 401:
        raise RagError(f"{url} wants credentials: give --auth USER:PASS or set RAG_API_TOKEN")
    if response.status_code != 200:
        raise RagError(f"{url}/v1/status answered HTTP {response.status_code}: {response.text[:200]}")
    process = response.json().get("process")
    if not isinstance(process, dict):
        raise RagError(f"{url}/v1/status has no `process` field: that server predates `rag bench load`")
    return process


def _ask(client: httpx.Client, url: str, question: Question, timeout: float, params: dict[str, str]) -> Outcome:
    began = time.perf_counter()
    try:
        response = client.post(f"{url}/v1/ask", json={"question": question.text, **params}, timeout=timeout)
        ms = (time.perf_counter() - began) * 1000
    except httpx.TimeoutException as exc:
        return Outcome(question, (time.perf_counter() - began) * 1000, "timeout", type(exc).__name__)
    except httpx.TransportError as exc:
        return Outcome(question, (time.perf_counter() - began) * 1000, "connection", f"{type(exc).__name__}: {exc}")
    if response.status_code != 200:
        return Outcome(question, ms, f"HTTP {response.status_code}", response.text[:200])
    try:
        body = response.json()
        return Outcome(question, ms, abstained=bool(body["abstained"]), cited=bool(body["citations"]),
                       high=body["confidence"] == "high", server_ms=float(body["timings_ms"]["total"]),
                       sources=tuple(c["source"] for c in body["citations"]))
    except (ValueError, KeyError, TypeError) as exc:
        return Outcome(question, ms, "bad response", f"{type(exc).__name__}: {exc}")


class _Sampler(threading.Thread):
    """Reads the server's RSS from `/v1/status` every `every` seconds until stopped."""

    def __init__(self, url: str, auth: Auth, headers: dict[str, str], began: float, every: float,
                 params: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(auth=auth, headers=headers, params=params)
        self.url, self.began, self.every = url, began, every
        self.samples: list[dict[str, float]] = []
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with self.client:
            tick = 0
            while not self.stop.is_set():
                try:
                    rss = self.client.get(f"{self.url}/v1/status", timeout=5).json()["process"]["rss_mib"]
                    self.samples.append({"t": round(time.perf_counter() - self.began, 2), "rss_mib": float(rss)})
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    self.failed += 1
                tick += 1
                self.stop.wait(max(self.began + tick * self.every - time.perf_counter(), 0))


def run_load(url: str, questions: Sequence[Question], clients: int = 20, per_client: int = 10, *,
             token: str | None = None, auth: tuple[str, str] | None = None, timeout: float = 120.0,
             sample_every: float = 0.5, progress: Say | None = None, collection: str | None = None) -> dict[str, Any]:
    """`clients` threads, each with its own HTTP connection, ask `per_client` questions one after another
    (of `collection`, when given: then every citation is checked to name one of its documents).

    Client `i` asks questions `i * per_client`, `i * per_client + 1`, ... of `questions`, cycling,
    so every question is asked about equally often. All clients start together. Latency is the
    client's wall time per request (queueing in the server included); `server_ms` is the server's
    own `timings_ms.total`. Raises `RagError` when the server cannot be reached or refuses us.
    """
    if not questions or clients < 1 or per_client < 1:
        raise ValueError("need questions, and at least one client asking at least one question")
    say = progress or _quiet
    url = url.rstrip("/")
    basic = httpx.BasicAuth(*auth) if auth else None
    headers = {"Authorization": f"Bearer {token}"} if token and not auth else {}
    params = {"collection": collection} if collection else {}
    with httpx.Client(auth=basic, headers=headers) as probe:
        start = _process(probe, url, params)
        listed = probe.get(f"{url}/v1/documents", params={**params, "limit": 1000}, timeout=30).json()
    documents = {d["source"] for d in listed.get("documents", [])}
    say(f"load: {clients} clients x {per_client} questions against {url} (server pid {start.get('pid')}, "
        f"RSS {start.get('rss_mib')} MiB)")
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)

    def client(number: int) -> None:
        mine = [questions[(number * per_client + j) % len(questions)] for j in range(per_client)]
        with httpx.Client(auth=basic, headers=headers) as http:
            gate.wait()
            for question in mine:
                outcome = _ask(http, url, question, timeout, params)
                with lock:
                    outcomes.append(outcome)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    sampler = _Sampler(url, basic, headers, began, sample_every, params)
    sampler.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    sampler.stop.set()
    sampler.join()
    with httpx.Client(auth=basic, headers=headers) as probe:
        end = _process(probe, url, params)
    say(f"load: {len(outcomes)} requests in {seconds:.1f} s")
    result = _result(url, clients, per_client, questions, outcomes, seconds, start, end, sampler)
    result["collection"] = collection
    result["answers"]["citing_other_documents"] = sum(bool(set(o.sources) - documents) for o in outcomes)
    return result


def _result(url: str, clients: int, per_client: int, questions: Sequence[Question], outcomes: list[Outcome],
            seconds: float, start: dict[str, Any], end: dict[str, Any], sampler: _Sampler) -> dict[str, Any]:
    done = [o for o in outcomes if o.error is None]
    failed = [o for o in outcomes if o.error is not None]
    answerable = [o for o in done if o.question.answerable]
    unanswerable = [o for o in done if not o.question.answerable]
    rss = [start["rss_mib"], *(s["rss_mib"] for s in sampler.samples), end["rss_mib"]]
    return {
        "url": url, "clients": clients, "questions_per_client": per_client, "distinct_questions": len(questions),
        "requests": len(outcomes), "ok": len(done), "errors": len(failed),
        "errors_by_kind": dict(Counter(o.error for o in failed if o.error)),
        "error_examples": {o.error: o.detail for o in reversed(failed) if o.error},
        "seconds": round(seconds, 2), "throughput_rps": round(len(outcomes) / seconds, 2) if seconds else 0.0,
        "latency_ms": percentiles([o.ms for o in done]),
        "server_ms": percentiles([o.server_ms for o in done if o.server_ms is not None]),
        "answers": {"cited": sum(o.cited and not o.abstained for o in done),
                    "abstained": sum(o.abstained for o in done),
                    "answerable": len(answerable),
                    "answerable_cited": sum(o.cited and not o.abstained for o in answerable),
                    "unanswerable": len(unanswerable),
                    "unanswerable_abstained": sum(o.abstained for o in unanswerable),
                    "unanswerable_abstained_or_low": sum(not o.high for o in unanswerable)},
        "server": {"pid": end.get("pid"), "rss_mib_start": start["rss_mib"], "rss_mib_end": end["rss_mib"],
                   "rss_mib_peak_sampled": max((r for r in rss if r is not None), default=None),
                   "peak_rss_mib_since_start": end.get("peak_rss_mib"),
                   "sample_every_s": sampler.every, "samples": sampler.samples, "samples_failed": sampler.failed},
    }


def format_load(result: dict[str, Any]) -> str:
    """The result of `run_load` as a few aligned lines, for people."""
    r, lat, srv, a, mem = result, result["latency_ms"], result["server_ms"], result["answers"], result["server"]
    errors = ", ".join(f"{kind} {n}" for kind, n in r["errors_by_kind"].items())
    samples = mem["samples"]
    shown = [samples[i] for i in sorted({round(n * (len(samples) - 1) / 5) for n in range(6)})] if samples else []
    rows = [
        ("load", f"{r['clients']} clients x {r['questions_per_client']} questions against {r['url']}"),
        ("requests", f"{r['requests']} in {r['seconds']} s: {r['throughput_rps']:.1f} req/s"),
        ("errors", f"{r['errors']}" + (f" ({errors})" if errors else "")),
        ("latency ms (client)", f"p50 {lat['p50']:.0f}, p95 {lat['p95']:.0f}, max {lat['max']:.0f}"),
        ("server ms (answering)", f"p50 {srv['p50']:.0f}, p95 {srv['p95']:.0f}, max {srv['max']:.0f}"),
        ("answers", f"{a['cited']} cited, {a['abstained']} abstained; answerable cited "
                    f"{a['answerable_cited']}/{a['answerable']}, unanswerable abstained "
                    f"{a['unanswerable_abstained']}/{a['unanswerable']} (or low: "
                    f"{a['unanswerable_abstained_or_low']}); citing documents outside "
                    f"{r.get('collection') or 'the server collection'}: {a.get('citing_other_documents', 0)}"),
        ("server RSS MiB", f"start {mem['rss_mib_start']}, peak {mem['rss_mib_peak_sampled']} (sampled every "
                           f"{mem['sample_every_s']} s), end {mem['rss_mib_end']}; "
                           f"peak since server start {mem['peak_rss_mib_since_start']}"),
        ("RSS samples", ", ".join(f"{s['t']:.1f} s {s['rss_mib']:.0f}" for s in shown) or "none"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:{width}}  {value}" for label, value in rows)
