"""Find the documents under a path, read each with the reader of its format (`ingest.readers`), hash its content."""

from __future__ import annotations

import errno
import hashlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingest.ignore import Ignore, ignored_by_a_folder_above
from ingest.limits import Limits, check_before_reading, check_text, size_text
from ingest.ocr import Ocr
from ingest.readers import FORMATS, format_of, reader_for, supported
from rag.errors import SourceError
from rag.types import SourceDocument


@dataclass(frozen=True)
class SourceFile:
    """A file to index: where it is on disk and its id in the index (`corpus/notes.md`)."""

    path: Path
    source: str


@dataclass
class Found:
    """What `discover` found: the files to read (sorted by source), the source prefixes the paths cover,
    and the files passed over because no reader takes their format, counted by ending (`.rst`: 5)."""

    files: list[SourceFile] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def discover(paths: list[Path], formats: tuple[str, ...] = FORMATS) -> Found:
    """List the supported files under each path, the source prefixes they cover, and what was passed over.

    A folder is read recursively (hidden files and folders are skipped, and those its `.ragignore`
    names) and its files are named `<folder name>/<path below it>`; the prefix `<folder name>/` is
    returned so that files which disappeared from it (or are ignored now) can be removed from the
    index. A file given by itself is named `<parent folder name>/<file name>` and covers only itself.
    Files of a format no reader takes are counted in `skipped` (hidden and ignored ones are not: the
    user left those out).
    """
    files: dict[str, SourceFile] = {}
    found = Found()
    for given in paths:
        path = given.resolve()
        if path.is_dir():
            found.scopes.append(f"{path.name}/")
            for file in _walk(path):
                # Only a name that says nothing costs a read of the file's first bytes.
                if format_of(file.name, formats) is None and format_of(file.name, formats, _head(file)) is None:
                    found.skipped[ending(file.name)] += 1
                    continue
                source = f"{path.name}/{file.relative_to(path).as_posix()}"
                files.setdefault(source, SourceFile(file, source))
        elif path.exists():
            source = f"{path.parent.name}/{path.name}"
            found.scopes.append(source)
            if not ignored_by_a_folder_above(path):
                files.setdefault(source, SourceFile(path, source))
        else:
            raise SourceError(f"{given}: no such file or folder; check the path")
    found.files = sorted(files.values(), key=lambda f: f.source)
    return found


def _head(path: Path) -> bytes:
    """The first bytes of a file whose name does not say its format (so that HTML is found by content)."""
    try:
        with path.open("rb") as file:
            return file.read(4096)
    except OSError:
        return b""  # reading it properly says what is wrong


def ending(name: str) -> str:
    """A file name's ending as the summaries name it: `.rst`, or `(no ending)`."""
    return Path(name).suffix.lower() or "(no ending)"


def skipped_summary(skipped: dict[str, int]) -> str:
    """`7 files skipped (no reader for .rst, .adoc): 5 .rst, 2 .adoc`, or "" when none were."""
    if not skipped:
        return ""
    counts = sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(skipped.values())
    listed = ", ".join(f"{n} {end}" for end, n in counts[:8]) + (", ..." if len(counts) > 8 else "")
    return f"{total} file{'s' * (total != 1)} skipped, of formats not read: {listed}"


def _walk(root: Path) -> Iterator[Path]:
    """The files under `root` that are neither hidden nor ignored."""
    ignore = Ignore(root)
    for folder, dirs, names in os.walk(root):  # does not follow folder links: no link loops
        below = Path(folder).relative_to(root).as_posix()
        prefix = "" if below == "." else below + "/"
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not ignore.ignores(prefix + d, folder=True))
        for name in sorted(names):
            if not name.startswith(".") and not ignore.ignores(prefix + name):
                yield Path(folder) / name


def read_document(file: SourceFile, limits: Limits, ocr: Ocr | None = None) -> SourceDocument:
    """Read one file into a `SourceDocument` in this process; raise `SourceError` saying what is wrong with it
    or which of `limits` it goes over. (`ingest.worker.read` does the same in a process of its own.)

    With `ocr`, scanned PDF pages and images are read too.
    """
    data = read_bytes(file.path, limits.file_bytes)
    form = format_of(file.path.name, supported(ocr), data) or file.path.suffix.lower()
    reader = reader_for(form, ocr)
    check_before_reading(data, form, limits)
    try:
        read = reader(data)
    except (SourceError, MemoryError):
        raise
    except Exception as exc:  # a broken file must never stop the ingest of the others
        kind = form.lstrip(".").upper()
        raise SourceError(
            f"corrupt or unreadable {kind} file ({type(exc).__name__}: {_one_line(exc)}); "
            "open and re-save it, or remove it"
        ) from None
    if not read.text.strip():
        raise SourceError("no text in this file; nothing to index")
    check_text(len(read.text), limits)
    return SourceDocument(
        source=file.source, title=read.title or file.path.stem, text=read.text,
        sha256=hashlib.sha256(data).hexdigest(), sections=tuple(read.sections),
    )


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing empty, oversized and unreadable files with a reason."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise SourceError("empty file (0 bytes)")
        if size > max_bytes:
            raise SourceError(
                f"file is {size_text(size)}, over the limit of {size_text(max_bytes)}; raise RAG_MAX_FILE_MB or split "
                "the file"
            )
        return path.read_bytes()
    except PermissionError:
        raise SourceError("permission denied; make the file readable") from None
    except FileNotFoundError:
        raise SourceError("file disappeared while indexing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError("symbolic link loop; point the link at a real file or remove it") from None
        raise SourceError(f"cannot read the file ({exc.strerror or exc})") from None


def _one_line(exc: Exception) -> str:
    """A library's error message, on one line and at most 200 characters (some quote whole objects)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:199] + "…"
