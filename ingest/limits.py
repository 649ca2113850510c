"""What one file may become, checked as early as each limit can be.

A zip-based document (.docx .xlsx .pptx .epub) is checked before any reader opens it: its members'
declared sizes against `RAG_MAX_UNPACKED_MB`, each large member's compression ratio against
`RAG_MAX_ZIP_RATIO`, compression methods (only stored and deflate: bzip2 and LZMA inflate without a
bound in Python's zipfile), and every member inflated once, counting, so that one whose data inflates
past its declared size (a lying header) is refused as soon as it does. Python's zipfile itself never
hands a reader more than a member's declared size, so the declared sizes are a real bound on what the
readers see. A PDF's pages and an image's frames are counted before they are read; text and chunks
after. Each refusal is one line naming the part of the file and the setting that allows more.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass

from rag.errors import SourceError
from rag.settings import Settings

ZIP_FORMATS = (".docx", ".xlsx", ".pptx", ".epub")
RATIO_FLOOR = 2**20  # a member smaller than this may compress as well as it likes: it cannot grow far
MAX_MEMBERS = 20_000  # a Word file holds about 20 members, a slide deck a few hundred, an EPUB a few thousand
_STEP = 2**20  # inflate in pieces of this size: memory stays bounded whatever a member holds
MB = 2**20


@dataclass(frozen=True)
class Limits:
    """The limits on one file, from the settings (`RAG_MAX_*`)."""

    file_bytes: int = 50 * MB
    unpacked_bytes: int = 256 * MB
    zip_ratio: float = 100.0
    text_chars: int = 20 * MB
    chunks: int = 25_000
    pages: int = 5_000

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_file_bytes, int(settings.max_unpacked_mb * MB), settings.max_zip_ratio,
                   int(settings.max_text_mb * MB), settings.max_chunks, settings.max_pages)


def check_before_reading(data: bytes, form: str, limits: Limits) -> None:
    """Refuse a file whose container would make a reader run away: a zip bomb, too many pages or frames.
    A file that is not what its name says is left to its reader, which says so."""
    if form in ZIP_FORMATS:
        check_zip(data, limits)
    elif form == ".pdf":
        _check_pages(_pdf_pages(data), "pages", limits)
    elif form in (".tif", ".tiff"):
        _check_pages(_frames(data), "frames", limits)


def check_zip(data: bytes, limits: Limits) -> None:
    """Refuse a zip-based document whose members would unpack to more than the limits allow (see above)."""
    members = _declared_members(data)
    if members > MAX_MEMBERS:
        raise SourceError(f"the archive holds {members:,} members (more than {MAX_MEMBERS:,}); not a document "
                          "a reader should open")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        return  # not a zip at all: the reader refuses it as corrupt
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > limits.unpacked_bytes:
        largest = max(infos, key=lambda info: info.file_size)
        raise SourceError(
            f"would unpack to {size_text(total)} ({largest.filename}: {size_text(largest.file_size)}), over the "
            f"{size_text(limits.unpacked_bytes)} limit (RAG_MAX_UNPACKED_MB); a decompression bomb, or raise the limit")
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise SourceError(f"{info.filename} is compressed with method {info.compress_type} (Office and EPUB "
                              "files use deflate); open and re-save the file")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > limits.zip_ratio:
            raise SourceError(
                f"{info.filename} inflates {ratio:.0f} times ({size_text(info.compress_size)} to "
                f"{size_text(info.file_size)}), over the limit of {limits.zip_ratio:g} (RAG_MAX_ZIP_RATIO); a "
                "decompression bomb, or raise the limit")
        if info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 1:  # encrypted: the reader says so
            _check_inflation(data, info)


def _check_inflation(data: bytes, info: zipfile.ZipInfo) -> None:
    """Inflate one member in bounded pieces; refuse it as soon as it outgrows its declared size."""
    start = info.header_offset
    if data[start:start + 4] != b"PK\x03\x04":
        return  # a damaged local header: the reader refuses the file
    name_len, extra_len = struct.unpack("<HH", data[start + 26:start + 30])
    begin = start + 30 + name_len + extra_len
    raw = memoryview(data)[begin:begin + info.compress_size]
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    made, pos = 0, 0
    try:
        while not inflater.eof:
            piece: bytes | memoryview = inflater.unconsumed_tail
            if not piece:
                if pos >= len(raw):
                    break
                piece, pos = raw[pos:pos + _STEP], pos + _STEP
            made += len(inflater.decompress(piece, _STEP))
            if made > info.file_size:
                raise SourceError(
                    f"{info.filename} inflates past its declared size of {size_text(info.file_size)} (a lying header: "
                    "a decompression bomb or a damaged file); remove it or re-save it")
    except zlib.error:
        return  # damaged data: the reader refuses the file


def _declared_members(data: bytes) -> int:
    """The member count the archive's end record declares (before zipfile reads the whole directory), 0 if none."""
    end = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if end < 0 or end + 22 > len(data):
        return 0
    count = struct.unpack("<H", data[end + 10:end + 12])[0]
    if count == 0xFFFF:  # ZIP64: the count is in the ZIP64 end record
        end64 = data.rfind(b"PK\x06\x06", 0, end)
        if end64 >= 0 and end64 + 40 <= len(data):
            count = struct.unpack("<Q", data[end64 + 32:end64 + 40])[0]
    return int(count)


def _pdf_pages(data: bytes) -> int:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return 0  # the reader tries pypdf, then says what is wrong
    try:
        return len(document)
    finally:
        document.close()


def _frames(data: bytes) -> int:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(getattr(image, "n_frames", 1))
    except Exception:
        return 0


def _check_pages(count: int, what: str, limits: Limits) -> None:
    if count > limits.pages:
        raise SourceError(f"{count:,} {what}, over the limit of {limits.pages:,} (RAG_MAX_PAGES); split the file "
                          "or raise the limit")


def check_text(chars: int, limits: Limits) -> None:
    """Refuse a file whose text came out larger than `RAG_MAX_TEXT_MB`."""
    if chars > limits.text_chars:
        raise SourceError(f"its text is {size_text(chars)}, over the {size_text(limits.text_chars)} limit "
                          "(RAG_MAX_TEXT_MB); split the file or raise the limit")


def check_chunks(count: int, limits: Limits) -> None:
    """Refuse a file that became more chunks than `RAG_MAX_CHUNKS`."""
    if count > limits.chunks:
        raise SourceError(f"it makes {count:,} chunks, over the limit of {limits.chunks:,} (RAG_MAX_CHUNKS); split "
                          "the file or raise the limit")


def size_text(n: int) -> str:
    """`360.0 MB`, `12.5 KB`, `300 bytes`."""
    return f"{n / MB:,.1f} MB" if n >= MB else f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} bytes"
