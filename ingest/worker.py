"""Readers run in a process of their own, so that no file can take the ingest or the server down with it.

A reader is plain library code (pdfium, lxml, python-docx, trafilatura, Tesseract): a pathological
file can make it run for hours or allocate without end, and C code cannot be interrupted from a
thread. So `read` hands each file to a worker process (`python -m ingest.worker`, started once and
kept for the next file) and waits at most `RAG_READ_TIMEOUT_S` for it (each page read by OCR starts
the clock again); the worker's address space is capped at `RAG_READ_MEMORY_MB` beyond its start. A
worker that runs over either is killed (its Tesseract children with it) and the file refused in one
line; the next file gets a fresh worker. The worker reads with `ingest.sources.read_document`, so
what it makes of a file is what an in-process read makes of it.

Frames on the pipes are a 4-byte length and a pickle; only this module's two ends speak on them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ingest.limits import Limits
from ingest.ocr import Ocr
from ingest.sources import SourceFile, read_document
from rag.errors import SourceError
from rag.settings import Settings
from rag.types import Quiet, SourceDocument

_ROOT = str(Path(__file__).resolve().parents[1])  # where `ingest` and `rag` import from
START_S = 60.0  # a worker has this long to import the readers (about 0.6 s here)
_idle: list[Worker] = []
_all: set[Worker] = set()
_pool_lock = threading.Lock()


def read(file: SourceFile, settings: Settings, ocr: Ocr | None = None) -> SourceDocument:
    """Read one file in a worker process under the settings' limits; `SourceError` says why it was refused."""
    worker = _take(settings.read_memory_mb)
    try:
        document = worker.read(file, Limits.of(settings), ocr, settings.read_timeout_s)
    except SourceError:
        _give_back(worker)  # one that timed out, died or ran out of memory is stopped there
        raise
    except BaseException:
        worker.stop()  # interrupted mid-file: its next reply would be this file's
        raise
    _give_back(worker)
    return document


def warm(settings: Settings) -> None:
    """Start a worker now (it imports the readers while the caller loads its model)."""
    _give_back(_take(settings.read_memory_mb))


class Worker:
    """One reader process and its two pipes."""

    def __init__(self, memory_mb: float) -> None:
        self.memory_mb = memory_mb
        to_child, self._requests = os.pipe()
        self._replies, from_child = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ingest.worker", str(to_child), str(from_child), str(int(memory_mb * 2**20))],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True)  # its own group: killed with its children
        os.close(to_child)
        os.close(from_child)
        self.broken = False
        self.ready = False  # it says so once it has imported the readers: start-up is not reading time

    def read(self, file: SourceFile, limits: Limits, ocr: Ocr | None, timeout_s: float) -> SourceDocument:
        progress = ocr.progress if ocr is not None else Quiet()
        spec = replace(ocr, progress=Quiet()) if ocr is not None else None
        if not self.ready:
            self.ready = _receive(self._replies, time.monotonic() + START_S) == ("ready", None)
            if not self.ready:
                self.broken = True
                raise SourceError(f"the reader process did not start within {START_S:g} s; check that "
                                  f"`{sys.executable} -m ingest.worker` runs")
        try:
            _send(self._requests, (file, limits, spec))
        except OSError:
            self.broken = True
            raise SourceError(_died(self.process, self.memory_mb)) from None
        deadline = time.monotonic() + timeout_s
        while True:
            reply = _receive(self._replies, deadline)
            if reply is None:
                self.broken = True
                raise SourceError(_died(self.process, self.memory_mb))
            if reply == "timeout":
                self.broken = True
                raise SourceError(f"reading took longer than {timeout_s:g} s (RAG_READ_TIMEOUT_S) and was stopped; "
                                  "the file may be built to stall its reader: remove it, or raise the limit")
            kind, value = reply
            if kind == "note":  # a page read by OCR: progress, and more time
                progress.note(value)
                deadline = time.monotonic() + timeout_s
            elif kind == "done":
                return value  # type: ignore[no-any-return]
            elif kind == "memory":
                self.broken = True
                raise SourceError(f"reading it needed more than {self.memory_mb:g} MB of memory (RAG_READ_MEMORY_MB) "
                                  "and was stopped; remove the file, or raise the limit")
            else:
                raise SourceError(value)

    def stop(self) -> None:
        with _pool_lock:
            _all.discard(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)


def _take(memory_mb: float) -> Worker:
    with _pool_lock:
        for worker in _idle:
            if worker.memory_mb == memory_mb and worker.process.poll() is None:
                _idle.remove(worker)
                return worker
    worker = Worker(memory_mb)
    with _pool_lock:
        _all.add(worker)
    return worker


def _give_back(worker: Worker) -> None:
    if worker.broken or worker.process.poll() is not None:
        worker.stop()
        return
    with _pool_lock:
        _idle.append(worker)
        spare = _idle[:-2]  # keep at most two waiting
        del _idle[:-2]
    for extra in spare:
        extra.stop()


@atexit.register
def _stop_all() -> None:
    with _pool_lock:
        workers = list(_all)
    for worker in workers:
        worker.stop()


def _died(process: subprocess.Popen[bytes], memory_mb: float) -> str:
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return (f"the reader process stopped while reading it ({how}): the file may need more than {memory_mb:g} MB "
            "(RAG_READ_MEMORY_MB) or crash its format's library; remove it, or re-save it")


def _send(fd: int, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(struct.pack("<I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int, deadline: float) -> Any:
    """One message, None when the other end is gone, or "timeout" at `deadline`."""
    head = _exactly(fd, 4, deadline)
    if not isinstance(head, bytes):
        return head
    body = _exactly(fd, struct.unpack("<I", head)[0], deadline)
    return pickle.loads(body) if isinstance(body, bytes) else body


def _exactly(fd: int, n: int, deadline: float | None) -> bytes | str | None:
    parts, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return "timeout"
        part = os.read(fd, min(left, 2**20))
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class _Relay(Quiet):
    """The OCR's progress in the worker: each note goes to the parent (and restarts its clock)."""

    def __init__(self, out: int) -> None:
        self.out = out

    def note(self, text: str) -> None:
        _send(self.out, ("note", text))


def _cap_memory(budget: int) -> None:
    """Cap this process's address space at what it holds now plus `budget` bytes (Linux)."""
    try:
        with open("/proc/self/status") as status:
            held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return
    resource.setrlimit(resource.RLIMIT_AS, (held + budget, held + budget))


def main(argv: list[str]) -> int:
    requests, replies, budget = int(argv[0]), int(argv[1]), int(argv[2])
    _cap_memory(budget)
    _send(replies, ("ready", None))
    while True:
        request = _exactly(requests, 4, None)
        if not isinstance(request, bytes):
            return 0  # the parent is gone: nothing more to read
        body = _exactly(requests, struct.unpack("<I", request)[0], None)
        if not isinstance(body, bytes):
            return 0
        file, limits, ocr = pickle.loads(body)
        if ocr is not None:
            ocr = replace(ocr, progress=_Relay(replies))
        try:
            reply: tuple[str, Any] = ("done", read_document(file, limits, ocr))
        except SourceError as exc:
            reply = ("refused", str(exc))
        except MemoryError:
            _send(replies, ("memory", ""))
            return 1  # memory may be in any state now: the parent starts a fresh worker
        except Exception as exc:
            reply = ("refused", f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})")
        _send(replies, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
