"""`rag bench startup`: seconds from starting `rag ask` to its answer, beside what importing costs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.errors import RagError
from ui.bench.common import Say, quiet, side_by_side, stats, table


def _timed_run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """(seconds to the first line of output, seconds to exit, that line) of one process."""
    with tempfile.TemporaryFile() as errors:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, env=env, cwd=cwd, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_s = time.perf_counter() - began
        proc.stdout.read()
        proc.wait()
        exit_s = time.perf_counter() - began
        if proc.returncode != 0:
            errors.seek(0)
            raise RagError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {errors.read().decode()[-500:]}")
    return first_s, exit_s, first.strip()


def bench_startup(home: Path, question: str, runs: int = 5, *, collection: str | None = None,
                  backend: str | None = None, progress: Say | None = None) -> dict[str, Any]:
    """Wall-clock seconds from launching `python -m ui.cli ask QUESTION` to its answer, and import costs.

    `first_output` is when the answer's first line arrives (stdout unbuffered), `exit` when the
    process has ended; `import rag` and a bare `python -c pass` show what the interpreter and our
    imports cost by themselves. With `backend`, `rag ask` runs with that `RAG_EMBED_BACKEND`
    (one untimed run first: it exports the ONNX graph when there is none yet), and `torch_imported`
    says whether the asking process imported torch.
    """
    say = progress or quiet
    if runs < 1:
        raise ValueError("runs must be at least 1")
    env = {**os.environ, "RAG_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if collection:
        env["RAG_COLLECTION"] = collection
    if backend:
        env["RAG_EMBED_BACKEND"] = backend
    cwd = home.parent
    ask = [sys.executable, "-m", "ui.cli", "ask", question]
    if backend:
        probe = subprocess.run(
            [sys.executable, "-c", "import sys; from ui.cli import main; code = main(['ask', sys.argv[1]]); "
             "print('torch imported:', 'torch' in sys.modules); sys.exit(code)", question],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
        if probe.returncode != 0:
            raise RagError(f"rag ask with RAG_EMBED_BACKEND={backend} failed: {probe.stderr.strip()[-300:]}")
        torch_imported = "torch imported: True" in probe.stdout
    first, ended, line = [], [], ""
    for n in range(runs):
        f, e, line = _timed_run(ask, env, cwd)
        first.append(f)
        ended.append(e)
        say(f"startup run {n + 1}/{runs}: answer after {f:.2f} s, exit after {e:.2f} s")
    imports = [_timed_run([sys.executable, "-c", "import rag"], env, cwd)[1] for _ in range(runs)]
    bare = [_timed_run([sys.executable, "-c", "pass"], env, cwd)[1] for _ in range(runs)]
    return {"home": str(home), "question": question, "runs": runs, "answer_first_line": line[:200],
            "backend": backend, "torch_imported": torch_imported if backend else None,
            "ask_first_output_s": stats(first), "ask_exit_s": stats(ended),
            "import_rag_s": stats(imports), "python_s": stats(bare)}


def format_startup(result: dict[str, Any]) -> str:
    """`bench_startup`'s result as a plain-text table, for people."""
    rows = [[label, f"{result[key]['median']:.2f}", f"{result[key]['min']:.2f}"]
            for label, key in (("rag ask: first answer line", "ask_first_output_s"),
                               ("rag ask: process exit", "ask_exit_s"),
                               ('python -c "import rag"', "import_rag_s"), ("python -c pass", "python_s"))]
    return table([f"startup ({result['runs']} runs)", "median s", "min s"], rows)


def format_startup_backends(results: dict[str, dict[str, Any]]) -> str:
    """Each backend's table, then one line comparing them (measured in this one run)."""
    line = "; ".join(f"{b} first answer line {r['ask_first_output_s']['median']:.2f} s, exit "
                     f"{r['ask_exit_s']['median']:.2f} s, torch imported: {r['torch_imported']}"
                     for b, r in results.items())
    return side_by_side(results, format_startup, line)
