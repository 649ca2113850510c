"""Helpers the tests share: the `rag` command in or out of process, a real `rag serve`, the seed questions."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from reportlab.pdfgen import canvas

from ingest.pipeline import ingest
from rag.embedding import Embedder
from rag.settings import Settings
from ui.bench.common import free_port
from ui.cli import main

ROOT = Path(__file__).resolve().parent.parent

# The questions the confidence tests ask of the seed corpus (Python, CLI, HTTP, page), in one place:
# change them here when the answerer changes what it is sure of.
HIGH_QUESTION = "How many 910C processors will Huawei make this year?"  # answered: confidence "high"
LOW_QUESTION = "When will Huawei release the 910D?"  # on topic, not answered (no 910D in them): "low"
OFF_TOPIC_QUESTION = "What is the capital of Australia?"  # nothing relevant: abstains


def run_rag(*args: str, home: Path, env: dict[str, str] | None = None, cwd: Path | None = None,
            process: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the `rag` command against the index at `home`: in this process through `main(argv)` (with
    the environment, working folder, stdout and stderr it would have), or as a real subprocess with
    `process=True` where the process itself is the point (exit status, start-up, a server)."""
    variables = {"RAG_HOME": str(home), **(env or {})}
    if process:
        return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True,
                              env={**os.environ, **variables}, cwd=cwd or home.parent, timeout=600)
    out, err = io.StringIO(), io.StringIO()
    saved = {name: os.environ.get(name) for name in variables}
    here = Path.cwd()
    os.environ.update(variables)
    try:
        os.chdir(cwd or home.parent)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: usage errors exit 2, --help exits 0
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    finally:
        os.chdir(here)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(["rag", *args], code, out.getvalue(), err.getvalue())


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


def wait_until_answers(proc: subprocess.Popen[Any], url: str, seconds: float, what: str,
                       log: Callable[[], str]) -> None:
    """Wait until a GET of `url` answers 200 from the server `proc` started; fail with its log if it exits
    first or does not answer within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within {seconds:g} s:\n{log()}")
        time.sleep(0.2)


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


BODY = [
    "The storage layer keeps every file in chunks of a fixed size, and each chunk is stored",
    "three times on different machines so that the loss of one machine never loses data. A mas-",
    "ter process tracks where every chunk lives and answers the clients that ask for it, while",
    "the chunk servers answer the reads and the writes themselves, without the master.",
]
TOPICS = ["network", "scheduler", "compiler", "database", "kernel"]


def make_broken_pdf(path: Path) -> None:
    """Two pages whose text layer is what a broken font encoding gives: control characters and letters
    without words."""
    c = canvas.Canvas(str(path))
    for _ in range(2):
        for row in range(20):
            c.drawString(72, 720 - 14 * row, "\x86 \x01 \x02 n i m z m p { J K x o J \x03 \x04 r t q")
        c.showPage()
    c.save()


def make_journal_paper(path: Path) -> None:
    """A journal article as typesetters make them: two columns, `fi`/`fl` ligature glyphs (Vera, shipped
    with reportlab), one running header on odd pages and another on even ones (six pages), a compound
    word and a plain word hyphenated at line ends, and two tables with their captions (page 2): one
    ruled as a grid, one between three horizontal rules."""
    from reportlab.lib import colors
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.platypus import Table, TableStyle

    pdfmetrics.registerFont(TTFont("Vera", "Vera.ttf"))
    left = ["The \ufb01le store keeps \ufb01ve copies of every chunk on three",
            "separate racks, and it keeps all of them in external-",
            "consistency with one another at all times. A mas-",
            "ter copy settles every con\ufb02ict between the copies."]
    right = ["Readers may prefer any copy that they like best:", "the nearest one answers \ufb01rst, and then",
             "the external clock orders each of the writes", "so that consistency never depends on a reader."]
    c = canvas.Canvas(str(path))
    for number in range(1, 7):
        c.setFont("Vera", 8)
        c.drawString(72, 770, f"Journal of Chunk Studies {number}" if number % 2 else f"{number} File Stores")
        if number == 1:
            c.setFont("Vera", 18)
            c.drawString(72, 740, "Keeping Copies of Files")
        c.setFont("Vera", 10)
        if number == 2:
            table = Table([["Cluster", "Chunkservers", "Available disk space"], ["A", "342", "72 TB"],
                           ["B", "227", "180 TB"]])
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                                       ("FONTNAME", (0, 0), (-1, -1), "Vera")]))
            table.wrapOn(c, 400, 200)
            table.drawOn(c, 72, 640)
            c.drawString(72, 620, "Table 1: Two clusters of the file store.")
            c.drawString(72, 600, "The clusters differ in size.")
            # A table as LaTeX's booktabs sets it: rules above, under the header and below; no columns drawn.
            for y in (560, 542, 500):
                c.line(72, y, 400, y)
            for y, row in ((548, ("Rack", "Copies", "Free space")), (528, ("R1", "3", "40 TB")),
                           (510, ("R2", "2", "15 TB"))):
                for x, cell in zip((76, 200, 300), row, strict=True):
                    c.drawString(x, y, cell)
            c.drawString(72, 480, "Table 2: Racks of cluster A.")
        else:
            topic = TOPICS[number % len(TOPICS)]
            columns = ((72, left), (320, right)) if number == 1 else (
                (72, [f"The {topic} of the file store is the subject of page {number},",
                      f"where the {topic} is measured under load."]),)
            c.setFont("Vera", 9)
            for x, lines in columns:
                for i, line in enumerate(lines):
                    c.drawString(x, 710 - 14 * i, line)
        c.setFont("Vera", 8)
        c.drawString(300, 40, str(number))
        c.showPage()
    c.save()


def make_paper(path: Path, pages: int = 4, title: str = "paper.dvi") -> None:
    """A paper as LaTeX makes them: a placeholder metadata title, the real title in large type on page 1,
    a running header and a page number on every page, a word hyphenated at a line end (page 1), a
    figure caption between two lines of a paragraph (page 2)."""
    c = canvas.Canvas(str(path))
    c.setTitle(title)
    for number in range(1, pages + 1):
        c.setFont("Helvetica", 8)
        c.drawString(72, 770, "Proceedings of the Storage Workshop, Volume 7")
        if number == 1:
            c.setFont("Helvetica-Bold", 18)
            c.drawString(72, 740, "Chunked Storage for Large Files")
            lines = BODY
        else:
            topic = TOPICS[(number - 2) % len(TOPICS)]
            lines = [f"The {topic} is described on this page in enough detail for a reader who wants it,",
                     f"and the {topic} figures below show how the {topic} behaves under a heavy load."]
        c.setFont("Helvetica", 10)
        y = 720
        for i, line in enumerate(lines):
            c.drawString(72, y, line)
            y -= 14
            if number == 2 and i == 0:
                c.drawString(72, y, "Figure 1: The layout of chunks on the servers")
                y -= 14
        c.drawString(72, y, f"Page {number} ends with this short sentence.")
        c.setFont("Helvetica", 8)
        c.drawString(300, 40, str(number))
        c.showPage()
    c.save()
