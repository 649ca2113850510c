"""A hostile corpus: good documents among every kind of bad file ingest meets in the wild.

`make_hostile_corpus(folder)` writes it and returns, for each file that must fail, the phrase its
one-line failure report must contain. Try it by hand:

    python -m tests.hostile /tmp/hostile
    RAG_MAX_FILE_MB=0.1 rag ingest /tmp/hostile     # exit code 1, one `failed:` line per bad file
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

MAX_FILE_MB = "0.1"  # RAG_MAX_FILE_MB to ingest the corpus with: `oversize.txt` is over it, the rest under
LONG_LINE_BYTES = 20_000  # one line without a newline, under the limit, so that it is chunked for real
DEPTH = 60  # folders nested inside each other above `deep.md`

# Relative path of each file that must be indexed -> (a question it answers, words of the answer).
GOOD: dict[str, tuple[str, str]] = {
    "lighthouse.md": ("How many ships does the Glimmerwick lighthouse keeper count each night?", "42 ships"),
    "ferry.txt": ("When does the Quillon ferry leave?", "at 7:15"),
    "utf16-bom.txt": ("What does the Vexmoor bakery sell on Sundays?", "cardamom buns"),
    "long-line.txt": ("What colour are the Zenthari river stones?", "violet"),
    "/".join(f"d{i:02}" for i in range(DEPTH)) + "/deep.md": ("Where does the Orrin Vale owl nest?", "hollow larches"),
}
GOOD_DEEP = next(name for name in GOOD if name.endswith("/deep.md"))
CONTROL_NAME = "red\x1b[31m-and\nnewline.md"
# Readable only when the ingest does not run as root (root reads any file): a failure, or a good file.
UNREADABLE = "unreadable.txt"
UNREADABLE_FACT = ("How deep is the Marrowby well?", "31 metres")


def _pdf(text: str) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.showPage()
    page.save()
    return out.getvalue()


def _encrypted_pdf(text: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf(text))))
    writer.encrypt(user_password="hunter2", owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _long_line(size: int) -> str:
    """A fact, then words and commas without a newline or a sentence end up to `size` characters."""
    line = "The Zenthari river stones are violet and smooth as glass, "
    filler = "pebble, current, bank, reed, ripple, eddy, shoal, "
    return (line + filler * (size // len(filler) + 1))[:size]


def make_hostile_corpus(folder: Path, long_line_bytes: int = LONG_LINE_BYTES) -> dict[str, str]:
    """Write the hostile corpus into `folder`; return {relative path: phrase its failure line contains}.

    The good files are listed in `GOOD` (and `UNREADABLE` when running as root); ingest the folder
    with `RAG_MAX_FILE_MB=MAX_FILE_MB`. A symbolic link loop of folders (`loop/`) is written too: it
    is not a file, so it is skipped without a report, and must not make discovery hang.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = {
        "lighthouse.md": "# Glimmerwick lighthouse\n\nThe Glimmerwick lighthouse keeper counts 42 ships every night.\n",
        "ferry.txt": "Quillon ferry timetable\n\nThe Quillon ferry leaves at 7:15 every morning from the north pier.\n",
        "long-line.txt": _long_line(long_line_bytes),
        GOOD_DEEP: "# Owls\n\nThe Orrin Vale owl nests in hollow larches above the river.\n",
        UNREADABLE: "Marrowby well\n\nThe Marrowby well is 31 metres deep and never runs dry.\n",
    }
    for name, body in text.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(body, encoding="utf-8")
    (folder / "utf16-bom.txt").write_bytes(
        "Vexmoor bakery\r\n\r\nThe Vexmoor bakery sells cardamom buns on Sundays.\r\n".encode("utf-16"))

    bad: dict[str, bytes] = {
        "empty.md": b"",
        "picture.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06" + bytes(200),
        "program.md": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
        "windows-1252.txt": b"\x93Smart quotes\x94 from an old word processor.\n",
        "corrupt.pdf": _pdf("The harbour tide table lists twelve tides.")[:600],  # cut short mid-stream
        "locked.pdf": _encrypted_pdf("The vault code is 1234."),
        "oversize.txt": b"A sentence that fills the file. " * 4000,  # 128 KB > 0.1 MB
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    (folder / CONTROL_NAME).write_bytes(b"")  # a newline and a terminal escape in its name: still one line
    os.symlink("self-loop.md", folder / "self-loop.md")  # a link to itself: reading it loops
    os.symlink(".", folder / "loop", target_is_directory=True)  # a folder link back to its parent
    (folder / UNREADABLE).chmod(0)

    expected = {
        "empty.md": "empty file",
        "picture.txt": "binary file",
        "program.md": "binary file",
        "windows-1252.txt": "not valid UTF-8",
        "corrupt.pdf": "corrupt or unreadable PDF",
        "locked.pdf": "encrypted PDF",
        "oversize.txt": "RAG_MAX_FILE_MB",
        "self-loop.md": "symbolic link loop",
        CONTROL_NAME: "empty file",
    }
    if not _is_root():
        expected[UNREADABLE] = "permission denied"
    return expected



def good_files() -> dict[str, tuple[str, str]]:
    """The files that must be indexed, with a question each answers (the unreadable one when root reads it)."""
    return {**GOOD, UNREADABLE: UNREADABLE_FACT} if _is_root() else dict(GOOD)


def shown(name: str) -> str:
    """A file name as a failure line shows it: control characters escaped (`\\n`, `\\x1b`)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in name)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def new_folder(argv: list[str], module: str) -> Path | None:
    """The one folder named on the command line of `python -m <module> DIR`, if it is new or empty (else say why)."""
    if len(argv) != 1:
        print(f"usage: python -m {module} DIR", file=sys.stderr)
        return None
    folder = Path(argv[0])
    if folder.exists() and any(folder.iterdir()):
        print(f"{folder}: not empty; give a new or empty folder", file=sys.stderr)
        return None
    return folder


def main(argv: list[str]) -> int:
    folder = new_folder(argv, "tests.hostile")
    if folder is None:
        return 2
    failures = make_hostile_corpus(folder)
    print(f"wrote {len(good_files())} good and {len(failures)} bad files in {folder}:")
    for name, phrase in sorted(failures.items()):
        print(f"  {shown(name)}: should fail with '{phrase}'")
    print(f"now run: RAG_MAX_FILE_MB={MAX_FILE_MB} rag ingest {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
