"""This process's memory use, as Linux reports it (`GET /v1/status` and the benchmarks show it)."""

from __future__ import annotations

from pathlib import Path


def memory_mib() -> dict[str, float | None]:
    """This process's resident memory now (`rss`) and at its peak (`peak`), in MiB.

    Linux's VmRSS and VmHWM; both None where there is no `/proc` (macOS, Windows).
    """
    found: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {"rss": found.get("VmRSS"), "peak": found.get("VmHWM")}
