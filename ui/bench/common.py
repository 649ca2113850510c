"""What the benchmarks share: their settings, percentiles, the peak memory of this process, and plain-text tables.

Benchmarks report figures; they never assert timings. Each returns a plain dict (the `--json` output) and has
a `format_...` function that renders it for people.
"""

from __future__ import annotations

import socket
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rag.memory import memory_mib
from rag.settings import Settings
from ui.eval.metrics import mean, percentile

Say = Callable[[str], None]


def quiet(_: str) -> None:
    """A `Say` that says nothing."""


def peak_rss_mib() -> float | None:
    """Peak resident memory of this process so far, in MiB (`rag.memory.memory_mib`)."""
    return memory_mib()["peak"]


def free_port() -> int:
    """A TCP port free on this machine now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, mean and max of `values` (linear interpolation between ranks)."""
    if not values:
        return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0}
    return {"p50": round(percentile(values, 50), 2), "p95": round(percentile(values, 95), 2),
            "mean": round(mean(values), 2), "max": round(max(values), 2)}


def bench_settings(settings: Settings, home: Path, collection: str) -> Settings:
    """The caller's settings on an index of the benchmark's own, answered offline (extractive), with the
    caller's exported ONNX models (an export inside a timed or measured process would be measured too)."""
    return settings.model_copy(update={"home": home, "collection": collection, "chroma_url": None,
                                       "llm": "extractive", "models_dir": settings.models})


def stats(values: list[float]) -> dict[str, Any]:
    """Median, least and every value, rounded."""
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "all": [round(v, 3) for v in values]}


def table(head: list[str], rows: list[list[str]]) -> str:
    """Rows under a header, in columns."""
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def side_by_side(results: dict[str, dict[str, Any]], format_one: Callable[[dict[str, Any]], str], line: str) -> str:
    """Each backend's table, then `line` comparing them (measured in this one run)."""
    parts = [f"backend {backend}\n{format_one(result)}" for backend, result in results.items()]
    return "\n\n".join(parts) + f"\n\nside by side: {line}"
