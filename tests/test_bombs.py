"""Decompression bombs and runaway documents: refused in one line naming the part and the limit, in bounded
time and memory, through the checks, the reader process, `rag ingest` and a live server's uploads."""

from __future__ import annotations

import io
import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from ingest import worker
from ingest.limits import Limits, check_before_reading, check_zip
from ingest.ocr import Ocr
from ingest.sources import SourceFile, read_document
from rag.errors import SourceError
from rag.settings import Settings
from tests.bombs import (
    GOOD,
    MB,
    blank_pdf,
    docx_bomb,
    epub_bomb,
    huge_text,
    lying,
    make_bombs,
    pptx_bomb,
    run_with_ceiling,
    xlsx_bomb,
)
from tests.helpers import Live

CEILING = int(1.5 * 2**30)  # the peak resident memory a run may reach, its reader process included


def refusal(data: bytes, form: str, limits: Limits | None = None) -> str:
    with pytest.raises(SourceError) as info:
        check_before_reading(data, form, limits or Limits())
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(("make", "form", "member"), [
    (docx_bomb, ".docx", "word/document.xml"), (xlsx_bomb, ".xlsx", "xl/worksheets/sheet1.xml"),
    (pptx_bomb, ".pptx", "ppt/slides/slide1.xml"), (epub_bomb, ".epub", "EPUB/one.xhtml"),
])
def test_each_zip_format_bomb_is_refused_by_ratio_and_by_declared_size(make, form: str, member: str) -> None:
    bomb = make(8 * MB)
    by_ratio = refusal(bomb, form)
    assert member in by_ratio and "RAG_MAX_ZIP_RATIO" in by_ratio and "over the limit of 100" in by_ratio
    by_size = refusal(bomb, form, Limits(unpacked_bytes=4 * MB, zip_ratio=10_000))
    assert member in by_size and "RAG_MAX_UNPACKED_MB" in by_size and "over the 4.0 MB limit" in by_size
    # With room for it, the same file is an ordinary (if dull) document: the checks pass it.
    check_before_reading(bomb, form, Limits(zip_ratio=10_000))


def test_a_member_that_inflates_past_its_declared_size_is_refused_as_soon_as_it_does() -> None:
    bomb = lying(docx_bomb(30 * MB), "word/document.xml", 64 * 1024)
    declared = zipfile.ZipFile(io.BytesIO(bomb)).getinfo("word/document.xml")
    assert declared.file_size == 64 * 1024 and declared.file_size / declared.compress_size < 100  # looks harmless
    message = refusal(bomb, ".docx")
    assert "word/document.xml inflates past its declared size of 64.0 KB" in message


def test_small_members_may_compress_well_and_real_documents_pass(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    for n in range(300):
        document.add_paragraph(f"Paragraph {n} of the mill's yearly report, with its {n * 3} sacks of flour.")
    out = io.BytesIO()
    document.save(out)
    check_zip(out.getvalue(), Limits())  # its styles compress 25 times and more, but are under a megabyte
    path = tmp_path / "mill.docx"
    path.write_bytes(out.getvalue())
    assert "299 of the mill" in read_document(SourceFile(path, "t/mill.docx"), Limits()).text


def test_odd_archives_get_one_line() -> None:
    bz2 = io.BytesIO()
    with zipfile.ZipFile(bz2, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    assert "compressed with method 12" in refusal(bz2.getvalue(), ".docx")
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as archive:
        for n in range(20_001):
            archive.writestr(f"{n}", b"")
    assert "20,001 members" in refusal(many.getvalue(), ".epub")
    check_before_reading(b"not a zip at all", ".docx", Limits())  # left to the reader, which says it is corrupt


def test_page_text_and_ocr_limits_name_their_setting(tmp_path: Path) -> None:
    assert refusal(blank_pdf(30), ".pdf", Limits(pages=20)) == (
        "30 pages, over the limit of 20 (RAG_MAX_PAGES); split the file or raise the limit")
    check_before_reading(blank_pdf(20), ".pdf", Limits(pages=20))
    text = tmp_path / "long.txt"
    text.write_bytes(huge_text(300_000))
    with pytest.raises(SourceError, match=r"its text is 29\d\.\d KB, over the 100\.0 KB limit \(RAG_MAX_TEXT_MB\)"):
        read_document(SourceFile(text, "t/long.txt"), Limits(text_chars=100 * 1024))
    with pytest.raises(SourceError, match=r"more than 3 of its pages need OCR \(RAG_MAX_OCR_PAGES\)"):
        Ocr(None, max_pages=3).allow(4)


def test_the_reader_process_stops_a_slow_or_greedy_read_and_the_next_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_bytes(huge_text(40 * MB))
    (tmp_path / "big.docx").write_bytes(docx_bomb(200 * MB))
    (tmp_path / "small.md").write_text("# Quay\n\nEleven cranes stand on the quay.\n")
    roomy = {"max_text_mb": 1000, "max_zip_ratio": 10_000}
    slow = Settings.load(read_timeout_s=0.2, **roomy)
    worker.warm(slow)  # start-up is not reading time
    with pytest.raises(SourceError, match=r"took longer than 0\.2 s \(RAG_READ_TIMEOUT_S\) and was stopped"):
        worker.read(SourceFile(tmp_path / "long.txt", "t/long.txt"), slow)
    assert worker.read(SourceFile(tmp_path / "small.md", "t/small.md"), slow).title == "Quay"
    greedy = Settings.load(read_memory_mb=256, **roomy)
    with pytest.raises(SourceError, match=r"needed more than 256 MB of memory \(RAG_READ_MEMORY_MB\)"):
        worker.read(SourceFile(tmp_path / "big.docx", "t/big.docx"), greedy)
    assert worker.read(SourceFile(tmp_path / "small.md", "t/small.md"), greedy).title == "Quay"
    # What the reader process makes of a file is what reading it here makes of it.
    here = read_document(SourceFile(tmp_path / "small.md", "t/small.md"), Limits())
    assert worker.read(SourceFile(tmp_path / "small.md", "t/small.md"), Settings.load()) == here


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("bombs") / "bombs"
    return folder, make_bombs(folder)


@pytest.mark.integration
def test_rag_ingest_refuses_every_bomb_under_a_memory_ceiling_and_indexes_the_good_file(
        bombs: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, expected = bombs
    env = {**os.environ, "RAG_HOME": str(tmp_path / ".rag")}
    run = run_with_ceiling([sys.executable, "-m", "ui.cli", "ingest", str(folder)], env=env, ceiling=CEILING,
                           timeout=240, cwd=tmp_path)
    assert not run.over_ceiling, f"peak {run.peak_bytes / MB:.0f} MB"
    assert run.returncode == 1, run.stderr
    failed = {line.split(": ", 2)[1]: line for line in run.stderr.splitlines() if line.startswith("failed: ")}
    refused = {name for name, phrase in expected.items() if phrase}
    assert set(failed) == {f"bombs/{name}" for name in refused}, run.stderr
    for name in refused:
        assert expected[name] in failed[f"bombs/{name}"]
    assert "added 2," in run.stdout  # the good file and the nested page's one sentence
    answer = run_with_ceiling([sys.executable, "-m", "ui.cli", "ask", GOOD[1]], env=env, ceiling=CEILING, cwd=tmp_path)
    assert GOOD[2] in answer.stdout.lower(), answer.stdout + answer.stderr


@pytest.mark.integration
def test_bomb_uploads_are_refused_while_the_server_goes_on_answering(
        live: Live, bombs: tuple[Path, dict[str, str]]) -> None:
    folder, expected = bombs
    errors: list[str] = []
    answered = 0
    done = threading.Event()

    def ask() -> None:
        nonlocal answered
        with httpx.Client(base_url=live.url, timeout=60) as client:
            while not done.is_set():
                try:
                    response = client.post("/v1/ask", json={"question": "How many 910C processors will Huawei make?"})
                    if response.status_code == 200 and response.json()["citations"]:
                        answered += 1
                    else:
                        errors.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)

    asker = threading.Thread(target=ask)
    asker.start()
    began = time.perf_counter()
    try:
        with httpx.Client(base_url=live.url, timeout=240) as client:
            for name, phrase in expected.items():
                if not phrase:
                    continue
                body = (folder / name).read_bytes()
                response = client.post("/v1/documents", files=[("files", (f"bomb-{name}", body))])
                assert response.status_code == 400, response.text
                [result] = response.json()["results"]
                assert result["outcome"] in ("refused", "failed") and phrase in result["reason"], result
            status = client.get("/v1/status").json()
    finally:
        done.set()
        asker.join()
    # Every question asked meanwhile was answered (the bombs take about a second in all: the checks refuse
    # the containers before anything is written, and the 45 MB text is read in the reader process).
    assert errors == [] and answered >= 1, (errors, answered, time.perf_counter() - began)
    assert status["process"]["rss_mib"] < CEILING / MB
    assert not any(p.name.startswith("bomb-") for p in (live.base / "corpus").iterdir())


@pytest.mark.integration
def test_a_file_of_too_many_chunks_is_refused_whole_and_the_others_indexed(tmp_path: Path) -> None:
    from tests.helpers import run_rag

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.txt").write_bytes(huge_text(20_000))  # about 20 chunks
    (docs / "short.md").write_text("# Quay\n\nEleven cranes stand on the quay.\n")
    out = run_rag("ingest", str(docs), home=tmp_path / ".rag", env={"RAG_MAX_CHUNKS": "5"})
    assert out.returncode == 1 and "added 1," in out.stdout
    assert "failed: docs/long.txt: it makes 1" in out.stderr and "over the limit of 5 (RAG_MAX_CHUNKS)" in out.stderr
