"""Files built to make a reader run away, generated (no binaries in the repository), and a way to run a
command under a memory ceiling.

`make_bombs(folder)` writes one of each beside a good file and returns, for each bomb, the phrase its
one-line refusal must contain. Try it by hand:

    python -m tests.bombs /tmp/bombs
    rag ingest /tmp/bombs        # exit code 1: one `failed:` line per bomb, the good file indexed
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MB = 2**20
GOOD = ("harbour.md", "How many cranes stand on the Vellmar quay?", "eleven cranes")
SENTENCE = "The quick brown fox jumps over the lazy dog beside the old mill on the river. "


def _units(unit: str, size: int) -> Iterator[bytes]:
    """`unit` repeated (as UTF-8) until `size` bytes are written, in pieces of about a megabyte."""
    block = unit.encode() * max(1, MB // len(unit.encode()))
    for _ in range(size // len(block) + 1):
        yield block


def _rebuilt(template: bytes, member: str, marker: str, unit: str, size: int, *, level: int = 9) -> bytes:
    """`template` (a real document from its library) with `unit` repeated to `size` bytes inside `member`,
    just before the first `marker`: the inflated member a zip bomb is made of."""
    source = zipfile.ZipFile(io.BytesIO(template))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for info in source.infolist():
            data = source.read(info)
            if info.filename != member:
                archive.writestr(info, data)
                continue
            head, tail = data.decode().split(marker, 1)
            inflated = zipfile.ZipInfo(member, info.date_time)
            inflated.compress_type = zipfile.ZIP_DEFLATED  # the archive's level (9) applies
            with archive.open(inflated, "w", force_zip64=size > 2**31) as target:
                target.write(head.encode())
                for piece in _units(unit, size):
                    target.write(piece)
                target.write((marker + tail).encode())
    return out.getvalue()


def _saved(save: Callable[[io.BytesIO], None]) -> bytes:
    out = io.BytesIO()
    save(out)
    return out.getvalue()


def docx_bomb(size: int) -> bytes:
    """A Word file whose `word/document.xml` inflates to about `size` bytes of one repeated paragraph."""
    import docx

    document = docx.Document()
    document.add_paragraph("Mill report")
    paragraph = f"<w:p><w:r><w:t>{SENTENCE * 20}</w:t></w:r></w:p>"
    return _rebuilt(_saved(document.save), "word/document.xml", "<w:sectPr", paragraph, size)


def xlsx_bomb(size: int) -> bytes:
    """A workbook whose first sheet inflates to about `size` bytes of rows of inline strings."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.active.append(["Mill", "Report"])
    row = f'<row><c t="inlineStr"><is><t>{SENTENCE * 5}</t></is></c></row>'
    return _rebuilt(_saved(workbook.save), "xl/worksheets/sheet1.xml", "</sheetData>", row, size)


def pptx_bomb(size: int) -> bytes:
    """A deck whose one slide inflates to about `size` bytes of text paragraphs."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Mill report"
    slide.placeholders[1].text = "The mill"
    paragraph = f"<a:p><a:r><a:t>{SENTENCE * 10}</a:t></a:r></a:p>"
    return _rebuilt(_saved(deck.save), "ppt/slides/slide1.xml", "</p:txBody>", paragraph, size)


def epub_bomb(size: int) -> bytes:
    """An e-book whose one chapter inflates to about `size` bytes of paragraphs."""
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("mill")
    book.set_title("Mill report")
    book.set_language("en")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml", lang="en")
    chapter.content = "<html><body><h1>One</h1><p>The mill.</p></body></html>"
    book.add_item(chapter)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [chapter]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return _rebuilt(out.getvalue(), "EPUB/one.xhtml", "</body>", f"<p>{SENTENCE * 10}</p>", size)


def lying(data: bytes, member: str, declared: int) -> bytes:
    """`data` with `member`'s uncompressed size declared as `declared` bytes in both of its headers
    (a small lie hides a bomb from a check of declared sizes and ratios)."""
    out = bytearray(data)
    central = out.find(b"PK\x01\x02")
    while central >= 0:
        name_len, extra_len, comment_len = struct.unpack("<HHH", out[central + 28:central + 34])
        if out[central + 46:central + 46 + name_len] == member.encode():
            struct.pack_into("<I", out, central + 24, declared)
            local = struct.unpack("<I", out[central + 42:central + 46])[0]
            struct.pack_into("<I", out, local + 22, declared)
            return bytes(out)
        central = out.find(b"PK\x01\x02", central + 46 + name_len + extra_len + comment_len)
    raise ValueError(f"{member} is not in the archive")


def blank_pdf(pages: int) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def huge_text(size: int) -> bytes:
    """Plain text of about `size` bytes: sentences in paragraphs."""
    return b"".join(_units((SENTENCE * 8).strip() + "\n\n", size))[:size]


def nested_html(depth: int) -> bytes:
    return (b"<html><body>" + b"<div>" * depth + b"<p>The mill turns at dawn.</p>" + b"</div>" * depth
            + b"</body></html>")


def image_bomb() -> bytes:
    """A PNG of 30,000 x 30,000 pixels (900 million: Pillow refuses over 179 million) in a few hundred KB."""
    import zlib

    width = height = 30_000
    row = b"\x00" + b"\x00" * width  # filter byte, then one grey byte per pixel
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def make_bombs(folder: Path, *, images: bool = True) -> dict[str, str]:
    """Write one file of each runaway kind and the good file into `folder`; {name: phrase its refusal contains}."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / GOOD[0]).write_text("# Vellmar quay\n\nEleven cranes stand on the Vellmar quay, beside the mill.\n")
    bombs = {
        # 1.1 MB that inflates to 360 MB, as in the report that asked for these checks: over the declared-size limit.
        "report.docx": (docx_bomb(360 * MB), "RAG_MAX_UNPACKED_MB"),
        "sheet.xlsx": (xlsx_bomb(40 * MB), "RAG_MAX_ZIP_RATIO"),
        "deck.pptx": (pptx_bomb(40 * MB), "RAG_MAX_ZIP_RATIO"),
        "book.epub": (epub_bomb(40 * MB), "RAG_MAX_ZIP_RATIO"),
        # 40 MB of paragraphs declared as 64 KB: the declared sizes and ratio look harmless.
        "lying.docx": (lying(docx_bomb(40 * MB), "word/document.xml", 64 * 1024), "inflates past its declared size"),
        "pages.pdf": (blank_pdf(6_000), "RAG_MAX_PAGES"),
        "huge.txt": (huge_text(45 * MB), "RAG_MAX_TEXT_MB"),
        "nested.html": (nested_html(200_000), ""),  # read (its one sentence), or refused in one line: never a hang
    }
    if images:
        bombs["pixels.png"] = (image_bomb(), "decompression bombs")
    for name, (data, _) in bombs.items():
        (folder / name).write_bytes(data)
    return {name: phrase for name, (_, phrase) in bombs.items()}


@dataclass(frozen=True)
class Run:
    """A command's outcome under `ceiling`: exit code, output, wall seconds, peak RSS of it and its children."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_bytes: int
    over_ceiling: bool


def run_with_ceiling(command: list[str], *, env: dict[str, str], ceiling: int, timeout: float = 300.0,
                     cwd: Path | None = None) -> Run:
    """Run `command`, sampling the resident memory of it and all its descendants every 20 ms; kill the lot
    (and say so) when the sum goes over `ceiling` bytes or the run over `timeout` seconds."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    peak, over = 0, False
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        if peak > ceiling or time.perf_counter() - began > timeout:
            over = peak > ceiling
            os.killpg(process.pid, 9)
            break
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    return Run(process.wait(), stdout.decode(errors="replace"), stderr.decode(errors="replace"),
               time.perf_counter() - began, peak, over)


def _tree_rss(root: int) -> int:
    """The resident bytes of `root` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def main(argv: list[str]) -> int:
    from tests.hostile import new_folder

    folder = new_folder(argv, "tests.bombs")
    if folder is None:
        return 2
    for name, phrase in sorted(make_bombs(folder).items()):
        print(f"  {name} ({(folder / name).stat().st_size / MB:.1f} MB): should be refused"
              + (f" with '{phrase}'" if phrase else " or read, never hang"))
    print(f"now run: rag ingest {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
