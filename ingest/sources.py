"""Find the documents under a path, read each supported format to plain text, hash its content."""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from ingest.ignore import Ignore, ignored_by_a_folder_above
from ingest.ocr import Ocr
from ingest.office import read_pptx, read_xlsx
from ingest.parts import Read, join_parts, join_sectioned
from ingest.pdf import clean_pages, read_pdf
from ingest.tables import table_rows
from rag.errors import SourceError
from rag.types import Section, SourceDocument

FORMATS = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".csv", ".xlsx", ".pptx", ".epub")
IMAGE_FORMATS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")  # read only with OCR
_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_MD_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.M)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_YAML_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)


@dataclass(frozen=True)
class SourceFile:
    """A file to index: where it is on disk and its id in the index (`corpus/notes.md`)."""

    path: Path
    source: str


def supported(ocr: Ocr | None) -> tuple[str, ...]:
    """The file name endings read: images too when there is OCR."""
    return FORMATS + IMAGE_FORMATS if ocr is not None else FORMATS


def discover(paths: list[Path], formats: tuple[str, ...] = FORMATS) -> tuple[list[SourceFile], list[str]]:
    """List the supported files under each path, and the source prefixes they cover.

    A folder is read recursively (hidden files and folders are skipped, and those its `.ragignore`
    names) and its files are named `<folder name>/<path below it>`; the prefix `<folder name>/` is
    returned so that files which disappeared from it (or are ignored now) can be removed from the
    index. A file given by itself is named `<parent folder name>/<file name>` and covers only itself.
    """
    files: dict[str, SourceFile] = {}
    scopes: list[str] = []
    for given in paths:
        path = given.resolve()
        if path.is_dir():
            scopes.append(f"{path.name}/")
            for file in _walk(path, formats):
                source = f"{path.name}/{file.relative_to(path).as_posix()}"
                files.setdefault(source, SourceFile(file, source))
        elif path.exists():
            source = f"{path.parent.name}/{path.name}"
            scopes.append(source)
            if not ignored_by_a_folder_above(path):
                files.setdefault(source, SourceFile(path, source))
        else:
            raise SourceError(f"{given}: no such file or folder; check the path")
    return sorted(files.values(), key=lambda f: f.source), scopes


def _walk(root: Path, formats: tuple[str, ...]) -> Iterator[Path]:
    ignore = Ignore(root)
    for folder, dirs, names in os.walk(root):  # does not follow folder links: no link loops
        below = Path(folder).relative_to(root).as_posix()
        prefix = "" if below == "." else below + "/"
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not ignore.ignores(prefix + d, folder=True))
        for name in sorted(names):
            if not name.startswith(".") and name.lower().endswith(formats) and not ignore.ignores(prefix + name):
                yield Path(folder) / name


def read_document(file: SourceFile, max_bytes: int, ocr: Ocr | None = None) -> SourceDocument:
    """Read one file into a `SourceDocument`; raise `SourceError` saying what is wrong with it.

    With `ocr`, scanned PDF pages and images are read too.
    """
    data = read_bytes(file.path, max_bytes)
    suffix = file.path.suffix.lower()
    reader = _READERS.get(suffix)
    if suffix == ".pdf":
        reader = partial(read_pdf, ocr=ocr)
    elif suffix in IMAGE_FORMATS:
        if ocr is None:
            raise SourceError("an image: reading it needs OCR; install Tesseract (`make ocr`, RAG_OCR=auto)")
        reader = partial(_read_image, ocr=ocr)
    if reader is None:
        raise SourceError(f"unsupported format {file.path.suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    try:
        title, text, sections = reader(data)
    except SourceError:
        raise
    except Exception as exc:  # a broken file must never stop the ingest of the others
        kind = file.path.suffix.lstrip(".").upper()
        raise SourceError(
            f"corrupt or unreadable {kind} file ({type(exc).__name__}: {_one_line(exc)}); "
            "open and re-save it, or remove it"
        ) from None
    if not text.strip():
        raise SourceError("no text in this file; nothing to index")
    return SourceDocument(
        source=file.source, title=title or file.path.stem, text=text,
        sha256=hashlib.sha256(data).hexdigest(), sections=tuple(sections),
    )


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing empty, oversized and unreadable files with a reason."""
    try:
        size = path.stat().st_size
        if size == 0:
            raise SourceError("empty file (0 bytes)")
        if size > max_bytes:
            raise SourceError(
                f"file is {_size(size)}, over the limit of {_size(max_bytes)}; raise RAG_MAX_FILE_MB or split the file"
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


def _size(n: int) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB" if n >= 2**10 else f"{n} bytes"


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (or UTF-16 with a byte order mark) and normalise line ends to `\\n`."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        if b"\x00" in data[:8192]:
            raise SourceError("binary file, not text; remove it or convert it to text")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                "re-save the file as UTF-8"
            ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_txt(data: bytes) -> Read:
    text = decode_text(data)
    return _first_line(text), text, [Section(0)]


def _first_line(text: str) -> str:
    """The first non-blank line, as a title when it is short enough to be one."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= 150 else ""


def _read_md(data: bytes) -> Read:
    text, meta_title = _front_matter(decode_text(data))
    fenced = _fenced_ranges(text)
    sections = [Section(0)]
    path: list[tuple[int, str]] = []
    title = ""
    for m in _MD_HEADING.finditer(text):
        if any(a <= m.start() < b for a, b in fenced):
            continue
        level, heading = len(m.group(1)), m.group(2).strip()
        title = title or (heading if level == 1 else "")
        path = [p for p in path if p[0] < level] + [(level, heading)]
        sections.append(Section(m.start(), tuple(h for _, h in path)))
    if not title:
        title = _first_line(text).lstrip("# ")
    return meta_title or title, text, _merge_sections(sections)


def _front_matter(text: str) -> tuple[str, str]:
    """The text with its YAML front matter (`---` ... `---` at the top) blanked out, and its `title:`.

    The front matter is replaced by spaces, line breaks kept, so that it is not indexed as prose and
    every quote keeps its offset in the file.
    """
    found = _FRONT_MATTER.match(text)
    if not found:
        return text, ""
    title = next((m.group(1) for m in _YAML_TITLE.finditer(found.group(1))), "").strip().strip("'\"").strip()
    blank = re.sub(r"[^\n]", " ", found.group(0))
    return blank + text[found.end():], title


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in _MD_FENCE.finditer(text)] + [len(text)]
    # An unclosed fence runs to the end of the text.
    return list(zip(marks[0::2], marks[1::2], strict=False))


def _merge_sections(sections: list[Section]) -> list[Section]:
    """Drop empty leading sections so that every section starts where its text does."""
    out: list[Section] = []
    for s in sections:
        if out and out[-1].start == s.start:
            out[-1] = s
        else:
            out.append(s)
    return out


_HTML_BLOCKS = (
    "p", "div", "li", "ul", "ol", "pre", "blockquote", "section", "article", "header", "footer",
    "table", "tr", "td", "th", "dt", "dd", "figcaption", "caption", "h1", "h2", "h3", "h4", "h5", "h6",
)


def _read_html(data: bytes) -> Read:
    from bs4 import BeautifulSoup

    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError("binary file, not HTML; remove it or convert it")
    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg", "title"]):
        tag.decompose()
    for table in reversed(soup.find_all("table")):  # innermost first: a nested table becomes one cell's text
        rows = [[cell.get_text(" ") for cell in row.find_all(["th", "td"], recursive=False)]
                for row in table.find_all("tr")]
        table.replace_with(f"\n\n{table_rows(rows)}\n\n")
    headings = [(int(h.name[1]), " ".join(h.get_text().split())) for h in soup.find_all(re.compile("^h[1-6]$"))]
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_HTML_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    raw = soup.get_text()
    raw = re.sub(r"[ \t\xa0]+", " ", raw)
    text = re.sub(r"\s*\n\s*\n\s*", "\n\n", re.sub(r" ?\n ?", "\n", raw)).strip()
    sections, pos = [Section(0)], 0
    path: list[tuple[int, str]] = []
    for level, heading in headings:
        # A heading is a block of its own: match whole lines only (not a mention of it in a
        # paragraph above), and let its words wrap as they did in the HTML source.
        words = r"\s+".join(map(re.escape, heading.split()))
        found = re.compile(rf"^{words}$", re.M).search(text, pos) if words else None
        if found is None:
            continue
        at, pos = found.span()
        path = [p for p in path if p[0] < level] + [(level, heading)]
        sections.append(Section(at, tuple(h for _, h in path)))
    title = title or next((h for level, h in headings if level == 1), "")
    return title, text, _merge_sections(sections)


def _read_image(data: bytes, ocr: Ocr) -> Read:
    """An image (a multi-page TIFF: each frame a page) read by OCR."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        frames = [ocr.read(frame.convert("L")) for frame in ImageSequence.Iterator(image)]
    except (UnidentifiedImageError, OSError) as exc:
        raise SourceError(f"not a readable image ({type(exc).__name__}); open and re-save it, or remove it") from None
    cleaned = clean_pages(frames)
    text, sections = join_parts((frame, Section(0, page=number if len(cleaned) > 1 else None))
                                for number, frame in enumerate(cleaned, start=1))
    if not sections:
        raise SourceError("no text found in this image by OCR")
    return _first_line(text), text, sections


def _read_epub(data: bytes) -> Read:
    """An e-book: its chapters in reading order (the spine), each read as HTML, its headings kept."""
    import zipfile

    from ebooklib import ITEM_DOCUMENT, epub

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        encrypted = archive.read("META-INF/encryption.xml") if "META-INF/encryption.xml" in archive.namelist() else b""
    if re.search(rb"<(?:\w+:)?CipherReference[^>]*URI=\"[^\"]*\.x?html?\"", encrypted):
        raise SourceError("DRM-protected EPUB (its chapters are encrypted); index a copy without DRM")
    book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
    chapters = []
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is not None and item.get_type() == ITEM_DOCUMENT:
            _, text, sections = _read_html(item.get_content())
            chapters.append((text, sections))
    text, sections = join_sectioned(chapters)
    titles = book.get_metadata("DC", "title")
    return (str(titles[0][0]).strip() if titles else ""), text, sections or [Section(0)]


def _read_docx(data: bytes) -> Read:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    parts: list[str] = []
    sections, pos, title = [Section(0)], 0, ""
    path: list[tuple[int, str]] = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = para.text.strip()
            style = para.style.name if para.style is not None else ""
            level = _docx_heading_level(style)
            if text and level:
                title = title or (text if level <= 1 else "")
                path = [p for p in path if p[0] < level] + [(level, text)]
                sections.append(Section(pos + 2 * bool(parts), tuple(h for _, h in path)))
        elif tag == "tbl":
            text = table_rows([[c.text for c in row.cells] for row in Table(child, document).rows])
        else:
            continue
        if text:
            pos += 2 * bool(parts) + len(text)
            parts.append(text)
    core_title = (document.core_properties.title or "").strip()
    return core_title or title, "\n\n".join(parts), _merge_sections(sections)


def _read_csv(data: bytes) -> Read:
    """A CSV (or TSV) file: its first row is the header of every other row."""
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    return "", table_rows(rows), [Section(0)]


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    m = re.fullmatch(r"Heading (\d)", style)
    return int(m.group(1)) if m else 0


_READERS: dict[str, Callable[[bytes], Read]] = {
    ".txt": _read_txt, ".md": _read_md, ".html": _read_html, ".htm": _read_html,
    ".pdf": read_pdf, ".docx": _read_docx, ".csv": _read_csv, ".xlsx": read_xlsx, ".pptx": read_pptx,
    ".epub": _read_epub,
}
