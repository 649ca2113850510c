"""This process's memory use, as Linux reports it (`GET /v1/status` and the benchmarks show it)."""

from __future__ import annotations

import sys
from pathlib import Path


def memory_mib() -> dict[str, float | None]:
    """This process's resident memory now (`rss`) and at its peak (`peak`), in MiB.

    Linux's VmRSS and VmHWM (not `ru_maxrss`: on Linux a child's starts from its parent's peak, which would
    make a small process look as big as its launcher). Without `/proc` (macOS), `rss` is None and `peak` is
    `ru_maxrss`; on Windows both are None.
    """
    found: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = round(int(value.split()[0]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    if "VmHWM" not in found:
        try:
            import resource
        except ImportError:  # Windows
            return {"rss": found.get("VmRSS"), "peak": None}
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS, KiB elsewhere
        found["VmHWM"] = round(maxrss / 2**20 if sys.platform == "darwin" else maxrss / 2**10, 1)
    return {"rss": found.get("VmRSS"), "peak": found.get("VmHWM")}
