"""Files written safely: whole or not at all (`write_atomic`), and one process at a time (`locked`).

The one place that takes OS file locks: the index writer, the ONNX export, the uploads ledger and
`.ragignore` edits all lock through `locked`.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class LockHeld(Exception):
    """Another process (or another open of the lock file in this one) holds the lock; `holder` is what it
    wrote into the lock file (its pid), or ""."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


@contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[IO[str]]:
    """Hold an exclusive lock on the file `path` (created when missing) while the block runs.

    With `wait`, block until the holder lets go; without, raise `LockHeld` at once. The holder's pid is
    written into the file, so that one refused can say who holds it. Locks are per open of the file:
    two opens in one process exclude each other too, and a process that dies lets go.
    """
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            raise LockHeld(handle.read().strip()) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield handle
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` whole: into a temporary file beside it, then renamed over it, so that a reader sees the
    old file or the new one, never half of one (two writers at once: the last rename wins)."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
