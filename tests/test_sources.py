"""Unit tests of ingest/sources.py on real files of every supported format, good and bad."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from ingest.limits import Limits
from ingest.sources import SourceFile, discover, read_bytes, read_document
from rag.errors import SourceError
from rag.text import body_spans, sentence_spans
from rag.types import SourceDocument
from tests.helpers import make_broken_pdf, make_journal_paper, make_paper

LIMIT = Limits(file_bytes=10 * 2**20)


def read(path: Path, max_bytes: int = LIMIT.file_bytes) -> SourceDocument:
    return read_document(SourceFile(path, f"{path.parent.name}/{path.name}"), Limits(file_bytes=max_bytes))


def check_common(doc: SourceDocument, path: Path) -> None:
    assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.source == f"{path.parent.name}/{path.name}"
    assert doc.sections[0].start == 0
    starts = [s.start for s in doc.sections]
    assert starts == sorted(set(starts)), "sections are ordered and never empty"


def section_texts(doc: SourceDocument) -> list[tuple[tuple[str, ...], str]]:
    return [(s.headings, doc.text[s.start:]) for s in doc.sections]


def make_pdf(path: Path, pages: list[str], title: str | None = None) -> bytes:
    c = canvas.Canvas(str(path))
    if title:
        c.setTitle(title)
    for text in pages:
        c.drawString(72, 720, text)
        c.showPage()
    c.save()
    return path.read_bytes()


# Good files


def test_txt(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Shipping policy\n\nOrders ship in two days.\r\nReturns take a week.\n", encoding="utf-8")
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Shipping policy"
    assert doc.text == "Shipping policy\n\nOrders ship in two days.\nReturns take a week.\n"
    assert [(s.start, s.headings, s.page) for s in doc.sections] == [(0, (), None)]


def test_txt_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffCafé au lait.".encode())
    doc = read(path)
    assert doc.text == "Café au lait."
    check_common(doc, path)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_txt_utf16_with_bom_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.txt"
    data = "Grüße aus Köln.\r\nZweite Zeile.".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    doc = read(path)
    check_common(doc, path)
    assert doc.text == "Grüße aus Köln.\nZweite Zeile."
    assert doc.title == "Grüße aus Köln."


def test_md_title_headings_and_fences(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "Preface before any heading.\n\n"
        "# Install Guide\n\nIntro text.\n\n"
        "## Linux\n\nUse apt.\n\n"
        "```bash\n# not a heading, a shell comment\napt install thing\n```\n\n"
        "### Debian ###\n\nUse apt-get.\n\n"
        "~~~\n## also not a heading\n~~~\n\n"
        "## Windows\n\nUse the installer.\n\n"
        "# Appendix\n\nMore.\n",
        encoding="utf-8",
    )
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Install Guide"
    got = section_texts(doc)
    assert [h for h, _ in got] == [
        (),
        ("Install Guide",),
        ("Install Guide", "Linux"),
        ("Install Guide", "Linux", "Debian"),
        ("Install Guide", "Windows"),
        ("Appendix",),
    ]
    expected_starts = ["Preface", "Install Guide\n\nIntro", "Linux\n\nUse apt.", "Debian", "Windows", "Appendix"]
    for (_, text), expected in zip(got, expected_starts, strict=True):
        assert text.startswith(expected)
    # Fenced lines stay in the text as a code block (its language left out); they are not headings.
    assert "```\n# not a heading, a shell comment\napt install thing\n```" in doc.text
    assert "```\n## also not a heading\n```" in doc.text


def test_md_heading_at_top_has_no_empty_section(tmp_path: Path) -> None:
    path = tmp_path / "top.md"
    path.write_text("# Top\n\nBody.\n\n## Sub\nSub body.\n", encoding="utf-8")
    doc = read(path)
    assert doc.text == "Top\n\nBody.\n\nSub\n\nSub body."
    assert [(s.start, s.headings) for s in doc.sections] == [(0, ("Top",)), (12, ("Top", "Sub"))]


def test_md_markup_is_rendered_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "rules.md"
    path.write_text(
        "Recording rules\n===============\n"
        "## Rule query offset\nThis is useful [set with the `--query.lookback-delta`\nflag](../cli.md), "
        "see ![the flow diagram](flow.png) and **bold** _words_ <kbd>Ctrl</kbd>.\n\n"
        "* first item\n* second item\n\n"
        "| Flag | Default |\n|---|---|\n| `--web.listen-address` | :9090 |\n\n"
        "```yaml\ngroups:\n\n  - name: example. Rules\n```\n"
        "Text after the fence.\n<div class=\"note\">A <b>raw</b> HTML note.</div>\n",
        encoding="utf-8",
    )
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Recording rules"
    assert doc.text == (
        "Recording rules\n\nRule query offset\n\n"
        "This is useful set with the --query.lookback-delta flag, see the flow diagram and bold words Ctrl.\n\n"
        "first item\n\nsecond item\n\n"
        "Flag | Default\n\nFlag: --web.listen-address | Default: :9090\n\n"
        "```\ngroups:\n\n  - name: example. Rules\n```\n\n"
        "Text after the fence.\n\nA raw HTML note."
    )
    # The heading is a sentence of its own, and the code block one unit: never split, never glued.
    sentences = [doc.text[s:e] for s, e in sentence_spans(doc.text)]
    assert "Rule query offset" in sentences and "groups:\n\n  - name: example. Rules" in sentences
    assert "Text after the fence." in sentences


def test_mdx_reads_as_markdown_without_its_module_lines(tmp_path: Path) -> None:
    path = tmp_path / "install.mdx"
    path.write_text(
        "---\ntitle: Installation\n---\nimport Tabs from '@theme/Tabs';\nimport TabItem from '@theme/TabItem';\n\n"
        "# Install\n\n<Tabs>\n<TabItem value=\"npm\" label=\"npm\">\n\nRun `npm install thing` first.\n\n"
        "</TabItem>\n</Tabs>\n\n{/* a comment */}\n\nexport const meta = {\n  sidebar: 2,\n};\n\nDone.\n",
        encoding="utf-8",
    )
    doc = read(path)
    assert doc.title == "Installation"
    assert doc.text == "Install\n\nRun npm install thing first.\n\nDone."


def test_md_without_h1_takes_first_line_as_title(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("Release notes for May\n\n## Fixes\n\nMany.\n", encoding="utf-8")
    doc = read(path)
    assert doc.title == "Release notes for May"
    assert doc.sections[-1].headings == ("Fixes",)


def test_html_title_headings_and_dropped_scripts(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<!doctype html><html><head><title> Travel Policy </title>"
        "<style>p { color: red }</style><script>var secret = 'head script';</script></head><body>"
        "<h1>Travel</h1><p>Book <b>early</b>.<br>Keep receipts.</p>"
        "<script>document.write('body script')</script><noscript>Enable JS</noscript>"
        "<h2>Flights</h2><p>Economy class only.</p>"
        "<h3>Long haul</h3><p>Premium economy over 8 hours.</p>"
        "<h2>Hotels</h2><ul><li>Three stars</li><li>Near the office</li></ul>"
        "<table><tr><td>city</td><td>cap</td></tr></table>"
        "</body></html>",
        encoding="utf-8",
    )
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Travel Policy"
    for dropped in ("secret", "script", "color", "Enable JS", "<"):
        assert dropped not in doc.text
    assert "Book early.\nKeep receipts." in doc.text
    assert "Three stars\n\nNear the office" in doc.text
    assert section_texts(doc) == [
        (("Travel",), doc.text),
        (("Travel", "Flights"), doc.text[doc.text.index("Flights"):]),
        (("Travel", "Flights", "Long haul"), doc.text[doc.text.index("Long haul"):]),
        (("Travel", "Hotels"), doc.text[doc.text.index("Hotels"):]),
    ]
    assert doc.text.startswith("Travel\n\nBook early.")
    assert doc.text[doc.sections[2].start:].startswith("Long haul\n\nPremium economy over 8 hours.")


def test_html_without_title_uses_h1(tmp_path: Path) -> None:
    path = tmp_path / "bare.htm"
    path.write_text("<h1>Bare <em>page</em></h1><p>Text.</p>", encoding="utf-8")
    doc = read(path)
    assert doc.title == "Bare page"
    assert doc.sections[0].headings == ("Bare page",)


def test_html_heading_is_found_as_a_block_not_a_mention(tmp_path: Path) -> None:
    # Regression: the heading "Refunds" used to be located inside the paragraph that mentions it,
    # so its section (and a chunk boundary) started in the middle of a sentence.
    path = tmp_path / "mention.html"
    path.write_text("<p>See Refunds below for details.</p><h2>Refunds</h2><p>Within 30 days.</p>", encoding="utf-8")
    doc = read(path)
    assert doc.text[doc.sections[-1].start:] == "Refunds\n\nWithin 30 days."
    assert doc.sections[-1].headings == ("Refunds",)


def test_html_wrapped_heading_is_kept(tmp_path: Path) -> None:
    # Regression: a heading wrapped over two lines in the HTML source was dropped from the paths.
    path = tmp_path / "wrapped.html"
    path.write_text(
        "<h1>A rather long\n      wrapped heading</h1><p>Body.</p><h2>Next</h2><p>More.</p>", encoding="utf-8"
    )
    doc = read(path)
    assert [s.headings for s in doc.sections] == [
        ("A rather long wrapped heading",),
        ("A rather long wrapped heading", "Next"),
    ]
    assert doc.title == "A rather long wrapped heading"


def test_pdf_pages_become_sections(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    make_pdf(path, ["Fruit Report", "The second page talks about pears."], title="Fruit Report")
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Fruit Report"
    assert [(s.page, s.headings) for s in doc.sections] == [(1, ()), (2, ())]
    first, second = (doc.text[s.start:] for s in doc.sections)
    assert first.startswith("Fruit Report")
    assert second.startswith("The second page talks about pears.")
    assert second == doc.text[doc.text.index("The second"):]


def test_pdf_blank_page_is_skipped_but_numbering_kept(tmp_path: Path) -> None:
    path = tmp_path / "gap.pdf"
    make_pdf(path, ["Page one text.", "", "Page three text."])
    doc = read(path)
    assert [s.page for s in doc.sections] == [1, 3]
    assert doc.text[doc.sections[1].start:] == "Page three text."


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    make_pdf(path, ["", ""])
    with pytest.raises(SourceError, match="no text layer"):
        read(path)


def test_docx_headings_and_table(tmp_path: Path) -> None:
    path = tmp_path / "handbook.docx"
    d = docx.Document()
    d.add_heading("Handbook", level=1)
    d.add_paragraph("Welcome to the team.")
    d.add_heading("Leave", level=2)
    d.add_paragraph("Twenty days a year.")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("Cluster", "Chunkservers", "Disk"), ("A", "342", "72 TB"), ("B", "227", "180 TB")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph("")  # empty paragraphs add nothing
    d.add_heading("Benefits", level=1)
    d.add_paragraph("Health cover.")
    d.save(str(path))
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Handbook"
    rows = ("Cluster | Chunkservers | Disk\n\nCluster: A | Chunkservers: 342 | Disk: 72 TB\n\n"
            "Cluster: B | Chunkservers: 227 | Disk: 180 TB")
    assert rows in doc.text  # each row a block of its own, with its header
    assert section_texts(doc) == [
        (("Handbook",), doc.text),
        (("Handbook", "Leave"), f"Leave\n\nTwenty days a year.\n\n{rows}\n\nBenefits\n\nHealth cover."),
        (("Benefits",), "Benefits\n\nHealth cover."),
    ]


def test_docx_core_title_wins(tmp_path: Path) -> None:
    path = tmp_path / "titled.docx"
    d = docx.Document()
    d.core_properties.title = "Official Title"
    d.add_paragraph("Some body text.")
    d.save(str(path))
    doc = read(path)
    assert doc.title == "Official Title"
    assert doc.text == "Some body text."


# Bad files


def corrupt(size: int = 4096) -> bytes:
    return random.Random(7).randbytes(size).replace(b"\x00", b"\x01")


@pytest.mark.parametrize(
    ("name", "data", "phrase"),
    [
        ("empty.txt", b"", "empty file"),
        ("empty.pdf", b"", "empty file"),
        ("binary.txt", b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)), "binary file"),
        ("binary.md", b"abc\x00def", "binary file"),
        ("binary.html", b"<p>\x00\x00</p>", "binary file"),
        ("latin1.txt", "Café crème".encode("latin-1"), "not valid UTF-8"),
        ("blank.txt", b" \n\n\t \n", "no text"),
        ("corrupt.pdf", corrupt(), "corrupt or unreadable PDF"),
        ("corrupt.docx", corrupt(), "corrupt or unreadable DOCX"),
        ("fake.docx", b"PK\x03\x04 this is not really a zip", "corrupt or unreadable DOCX"),
        ("scripts.html", b"<script>alert(1)</script><style>p{}</style>", "no text"),
    ],
)
def test_bad_file_is_refused(tmp_path: Path, name: str, data: bytes, phrase: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SourceError, match=phrase) as info:
        read(path)
    assert "Traceback" not in str(info.value)
    assert "\n" not in str(info.value), "one line for a person"


def test_invalid_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good start \xff bad")
    with pytest.raises(SourceError, match=r"byte 0xff at offset 11.*UTF-8"):
        read(path)


def make_encrypted_pdf(tmp_path: Path, text: str, user_password: str, algorithm: str) -> Path:
    plain = tmp_path / "plain.pdf"
    make_pdf(plain, [text])
    writer = PdfWriter(clone_from=PdfReader(plain))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    path = tmp_path / f"encrypted-{algorithm}.pdf"
    with path.open("wb") as f:
        writer.write(f)
    return path


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_encrypted_pdf(tmp_path: Path, algorithm: str) -> None:
    path = make_encrypted_pdf(tmp_path, "Secret numbers.", "hunter2", algorithm)
    with pytest.raises(SourceError, match="encrypted PDF"):
        read(path)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path, algorithm: str) -> None:
    path = make_encrypted_pdf(tmp_path, "Readable by anyone.", "", algorithm)
    assert read(path).text == "Readable by anyone."


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 100, encoding="utf-8")
    with pytest.raises(SourceError, match=r"over the limit.*RAG_MAX_FILE_MB"):
        read(path, max_bytes=100)
    assert read(path, max_bytes=500).text.startswith("word word")  # exactly at the limit is fine


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xls"
    path.write_bytes(b"anything")
    with pytest.raises(SourceError, match=r"unsupported format \.xls;"):
        read(path)
    corrupt = tmp_path / "sheet.xlsx"
    corrupt.write_bytes(b"anything")
    with pytest.raises(SourceError, match=r"corrupt or unreadable XLSX file"):
        read(corrupt)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.txt"
    path.write_text("hidden", encoding="utf-8")
    path.chmod(0)
    try:
        with pytest.raises(SourceError, match="permission denied"):
            read(path)
    finally:
        path.chmod(0o644)


def test_directory_is_not_readable_as_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.md"
    folder.mkdir()
    (folder / "inside.txt").write_text("x", encoding="utf-8")  # a non-zero size on every file system
    with pytest.raises(SourceError, match="cannot read the file"):
        read_bytes(folder, LIMIT.file_bytes)


def test_dangling_path(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(SourceError, match="disappeared"):
        read_bytes(link, LIMIT.file_bytes)
    with pytest.raises(SourceError, match="disappeared"):
        read_bytes(tmp_path / "never-existed.txt", LIMIT.file_bytes)


# discover()


def test_discover_tree(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    files = {
        "a.txt": "A.",
        "B.MD": "B.",
        "docs/guide.md": "# G",
        "docs/deep/page.html": "<p>P</p>",
        "docs/deep/report.pdf": "not checked here",
        "docs/deep/memo.docx": "not checked here",
        "docs/deep/old.htm": "<p>O</p>",
        ".hidden.txt": "skip",
        ".git/config.txt": "skip",
        "docs/.cache/x.md": "skip",
        "image.png": "skip",
        "data.csv": "a,b",
        "data.xls": "skip",
        "README": "skip",
        "notes.txt.bak": "skip",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = discover([root])
    found, scopes = result.files, result.scopes
    assert [f.source for f in found] == [
        "corpus/B.MD",
        "corpus/a.txt",
        "corpus/data.csv",
        "corpus/docs/deep/memo.docx",
        "corpus/docs/deep/old.htm",
        "corpus/docs/deep/page.html",
        "corpus/docs/deep/report.pdf",
        "corpus/docs/guide.md",
    ]
    assert scopes == ["corpus/"]
    # Hidden files are left out on purpose; the others no reader takes are counted by their ending.
    assert result.skipped == {".png": 1, ".xls": 1, "(no ending)": 1, ".bak": 1}
    for f in found:
        assert f.path == root.resolve() / f.source.removeprefix("corpus/")
        assert f.path.is_file()


@pytest.mark.timeout(20)
def test_discover_symlink_loop_does_not_hang(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "note.md").write_text("# Note", encoding="utf-8")
    os.symlink(root, root / "sub" / "loop")  # sub/loop -> corpus: a cycle if links were followed
    os.symlink(root / "sub", root / "sub" / "self")
    found = discover([root]).files
    assert [f.source for f in found] == ["corpus/sub/note.md"]


def test_discover_single_file(tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    file = folder / "memo.md"
    file.write_text("# Memo", encoding="utf-8")
    (folder / "other.md").write_text("# Other", encoding="utf-8")
    result = discover([file])
    found, scopes = result.files, result.scopes
    assert [(f.source, f.path) for f in found] == [("inbox/memo.md", file.resolve())]
    assert scopes == ["inbox/memo.md"]


def test_discover_relative_path_and_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("A.", encoding="utf-8")
    monkeypatch.chdir(root)
    result = discover([Path("."), root, root / "a.txt"])
    found, scopes = result.files, result.scopes
    assert [f.source for f in found] == ["corpus/a.txt"]
    assert scopes == ["corpus/", "corpus/", "corpus/a.txt"]


def test_discover_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SourceError, match="no such file or folder") as info:
        discover([missing])
    assert str(missing) in str(info.value)


def test_discovered_files_read_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.md").write_text("# Alpha\n\nText.", encoding="utf-8")
    make_pdf(root / "b.pdf", ["Bravo page."])
    found = discover([root]).files
    docs = [read_document(f, LIMIT) for f in found]
    assert [(d.source, d.text) for d in docs] == [("corpus/a.md", "Alpha\n\nText."), ("corpus/b.pdf", "Bravo page.")]


# PDFs as people read them (ingest/readers/pdf.py, paged.py, pdf_tables.py)

def test_pdf_text_reads_as_paragraphs_without_page_furniture(tmp_path: Path) -> None:
    path = tmp_path / "paper.pdf"
    make_paper(path)
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Chunked Storage for Large Files"  # not the generator's "paper.dvi"
    assert "Proceedings of the Storage Workshop" not in doc.text  # a running header
    assert "\n4\n" not in doc.text and not doc.text.rstrip().endswith("4")  # page numbers
    # Lines are joined into one paragraph, the hyphenated word is whole again.
    assert "stored three times on different machines so that the loss of one machine never loses data. " \
           "A master process tracks" in doc.text
    assert doc.text.startswith("Chunked Storage for Large Files\n\nThe storage layer keeps")
    page2 = doc.text[doc.sections[1].start:doc.sections[2].start]
    assert "\n\nFigure 1: The layout of chunks on the servers\n\n" in page2  # a block of its own
    assert [s.page for s in doc.sections] == [1, 2, 3, 4]


def test_pdf_metadata_title_wins_when_page_one_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "paper.pdf"
    make_paper(path, pages=1, title="Chunked Storage for Large Files")
    assert read(path).title == "Chunked Storage for Large Files"
    make_paper(path, pages=1, title="System Model")  # not shown on page 1: a leftover of the generator
    assert read(path).title == "Chunked Storage for Large Files"


def test_pdf_with_a_broken_font_encoding_is_refused_not_indexed(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    make_broken_pdf(path)
    with pytest.raises(SourceError, match=r"text layer unreadable on 2 of 2 pages \(broken font encoding"):
        read(path)


def test_clean_pages_normalises_what_extraction_leaves() -> None:
    from ingest.readers.paged import clean_pages, unreadable

    # A NUL in extracted text (an old PDF's) is dropped, never a reason to call the file binary.
    (page,) = clean_pages(["The \ufb01le system\ue001 uses \ufb02ash\x00 for well-\nknown and ﬁve mas-\nter copies",
                           "of a well-known kind."])[:1]
    # "mas-ter" is joined; "well-known" keeps its hyphen: the document writes it so elsewhere.
    assert page == "The file system uses flash for well-known and five master copies"
    # A compound broken at a line end keeps its hyphen when the document writes both halves as words
    # and never the two run together; a word written whole elsewhere is joined.
    assert clean_pages(["We keep them in external-\nconsistency: the external clock gives consistency, a con-\n"
                        "flict is rare, and conflict is handled."]) == [
        "We keep them in external-consistency: the external clock gives consistency, a conflict is rare, "
        "and conflict is handled."]
    # Rows of a table drawn without lines (mostly numbers) stay rows, not one long sentence.
    assert clean_pages(["Income by religion is shown below for each of the groups that were\nasked.\n"
                        "Agnostic 27 34 60 81\nCatholic 418 617 732 670\nTable 4: Income by religion."]) == [
        "Income by religion is shown below for each of the groups that were asked.\n\nAgnostic 27 34 60 81\n\n"
        "Catholic 418 617 732 670\n\nTable 4: Income by religion."]
    # PDFium marks a hyphenation point it already joined with U+FFFE: the same rules apply.
    assert clean_pages(["a mas\ufffeter copy and external\ufffeconsistency, external and consistency"]) == [
        "a master copy and external-consistency, external and consistency"]
    assert unreadable("The file system uses flash for five master copies of every chunk it stores.") is None
    assert unreadable("\x86 \x00 \x01 \x02 " * 20) == "control or unassigned characters"
    assert unreadable("n i m z m p J K x o J r t q w e " * 5) == "letters without words"


def test_a_journal_paper_in_two_columns_with_a_ruled_table_reads_as_people_read_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.pdf"
    make_journal_paper(path)
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Keeping Copies of Files"
    # Ligature glyphs are letters, both columns read in order, each as whole sentences, the compound
    # keeps its hyphen, the broken word is whole.
    assert ("The file store keeps five copies of every chunk on three separate racks, and it keeps all of them "
            "in external-consistency with one another at all times. A master copy settles every conflict between "
            "the copies. Readers may prefer any copy that they like best: the nearest one answers first") in doc.text
    assert "Journal of Chunk Studies" not in doc.text and "File Stores" not in doc.text  # odd and even headers
    page2 = doc.text[doc.sections[1].start:doc.sections[2].start]
    assert page2.split("\n\n") == [
        "Cluster | Chunkservers | Available disk space",
        "Cluster: A | Chunkservers: 342 | Available disk space: 72 TB",
        "Cluster: B | Chunkservers: 227 | Available disk space: 180 TB",
        "Table 1: Two clusters of the file store.",
        "The clusters differ in size.",
        "Rack | Copies | Free space",
        "Rack: R1 | Copies: 3 | Free space: 40 TB",
        "Rack: R2 | Copies: 2 | Free space: 15 TB",
        "Table 2: Racks of cluster A.",
        "",
    ]


def test_a_drawn_tables_header_rows_become_one() -> None:
    from ingest.readers.tables import merge_header, named_rows

    grid = [["replicas", "latency (ms)", "latency (ms)", "count"],
            [None, "mean", "99th percentile", None],
            ["1", "17.0", "75.0", "21B"]]
    assert named_rows(merge_header(grid)) == [
        "replicas | latency (ms) mean | latency (ms) 99th percentile | count",
        "replicas: 1 | latency (ms) mean: 17.0 | latency (ms) 99th percentile: 75.0 | count: 21B",
    ]
    # A cell merged with the one above repeats its value, so the row still stands alone.
    merged = merge_header([["op", "where"], ["read", "leader"], ["write", None]])
    assert named_rows(merged)[-1] == "op: write | where: leader"


def test_markdown_front_matter_gives_the_title_and_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "replication.md"
    raw = ('---\ntitle: "Redis replication"\nweight: 5\naliases: [\n  /topics/replication\n]\n---\n\n'
           "# Overview\n\nReplicas copy the master.\n")
    path.write_text(raw)
    doc = read(path)
    assert doc.title == "Redis replication"
    assert doc.text == "Overview\n\nReplicas copy the master."
    assert section_texts(doc)[-1] == (("Overview",), "Overview\n\nReplicas copy the master.")


def test_csv_rows_keep_their_header(tmp_path: Path) -> None:
    path = tmp_path / "clusters.csv"
    path.write_text("Cluster,Chunkservers,Available disk space\nA,342,72 TB\nB,227,180 TB\n,,\n")
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "clusters"  # a CSV has no title of its own: the file name
    assert doc.text == ("Cluster | Chunkservers | Available disk space\n\n"
                        "Cluster: A | Chunkservers: 342 | Available disk space: 72 TB\n\n"
                        "Cluster: B | Chunkservers: 227 | Available disk space: 180 TB")
    semi = tmp_path / "semi.csv"
    semi.write_text("Name;Age\nAda;36\n")
    assert read(semi).text == "Name | Age\n\nName: Ada | Age: 36"


def test_html_table_rows_keep_their_header(tmp_path: Path) -> None:
    path = tmp_path / "clusters.html"
    path.write_text("<html><body><h1>Clusters</h1><p>Our two clusters.</p><table>"
                    "<tr><th>Cluster</th><th>Chunkservers</th><th>Disk</th></tr>"
                    "<tr><td>A</td><td>342</td><td>72 TB</td></tr><tr><td>B</td><td>227</td><td>180 TB</td></tr>"
                    "</table><p>That is all.</p></body></html>")
    doc = read(path)
    assert ("Our two clusters.\n\nCluster | Chunkservers | Disk\n\nCluster: A | Chunkservers: 342 | Disk: 72 TB\n\n"
            "Cluster: B | Chunkservers: 227 | Disk: 180 TB\n\nThat is all.") in doc.text


def test_xlsx_sheets_are_sections_of_header_named_rows(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "fleet.xlsx"
    book = openpyxl.Workbook()
    book.properties.title = "Fleet"
    ferries = book.active
    ferries.title = "Ferries"
    for row in (["Ferry", "Crossings a day", "Seats"], ["Brellin", 4, 120], ["Ostra", 2, None]):
        ferries.append(row)
    book.create_sheet("Empty")
    crews = book.create_sheet("Crews")
    crews.append(["Name", "Role"])
    crews.append(["Ada", "Captain"])
    book.save(path)
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Fleet"
    assert section_texts(doc) == [
        (("Ferries",), "Ferry | Crossings a day | Seats\n\nFerry: Brellin | Crossings a day: 4 | Seats: 120\n\n"
                       "Ferry: Ostra | Crossings a day: 2\n\nName | Role\n\nName: Ada | Role: Captain"),
        (("Crews",), "Name | Role\n\nName: Ada | Role: Captain"),
    ]


def test_pptx_slides_are_pages_with_their_titles(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    path = tmp_path / "talk.pptx"
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "Ferry timetable"
    first.placeholders[1].text_frame.text = "The Brellin ferry crosses four times a day."
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Crossings"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(4), Inches(1)).table
    for r, row in enumerate([("Ferry", "Crossings"), ("Ostra", "2")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    second.notes_slide.notes_text_frame.text = "Mention the winter timetable."
    deck.save(str(path))
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "Ferry timetable"  # no core title: the first slide's
    assert [(s.page, s.headings) for s in doc.sections] == [(1, ("Ferry timetable",)), (2, ("Crossings",))]
    second_text = doc.text[doc.sections[1].start:]
    assert "Ferry | Crossings\n\nFerry: Ostra | Crossings: 2" in second_text
    assert second_text.endswith("Mention the winter timetable.")
    assert "The Brellin ferry crosses four times a day." in doc.text


def test_pptx_text_runs_line_breaks_and_titles_are_spaced(tmp_path: Path) -> None:
    from pptx import Presentation

    path = tmp_path / "knights.pptx"
    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    title = slide.shapes.title.text_frame
    title.text = "European Knights"
    title.add_paragraph().text = "(XII-XVI centuries)"  # a second paragraph of the title
    body = slide.placeholders[1].text_frame.paragraphs[0]
    body.add_run().text = "How They Throw Out"
    body.add_line_break()
    body.add_run().text = "a Challenge"
    deck.save(str(path))
    doc = read(path)
    assert doc.sections[0].headings == ("European Knights (XII-XVI centuries)",)
    assert doc.text == "European Knights (XII-XVI centuries)\n\nHow They Throw Out a Challenge"
    # The title is recognised as the slide's heading, so the body is what gets quoted.
    body = [doc.text[s:e] for s, e in body_spans(doc.text, doc.sections[0].headings)]
    assert body == ["How They Throw Out a Challenge"]


def make_epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ferry-guide")
    book.set_title("The Ferry Guide")
    book.set_language("en")
    one = epub.EpubHtml(title="Crossings", file_name="one.xhtml", lang="en")
    one.content = ("<html><body><h1>Crossings</h1><p>The Brellin ferry crosses the Ostra fjord four times a day.</p>"
                   "<h2>Winter</h2><p>In winter the first crossing leaves at seven.</p></body></html>")
    two = epub.EpubHtml(title="Fares", file_name="two.xhtml", lang="en")
    two.content = ("<html><body><h1>Fares</h1><table><tr><th>Ticket</th><th>Price</th></tr>"
                   "<tr><td>Adult</td><td>12 crowns</td></tr></table></body></html>")
    for chapter in (one, two):
        book.add_item(chapter)
    book.toc = [one, two]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", one, two]
    epub.write_epub(str(path), book)


def test_epub_chapters_in_reading_order_with_their_headings(tmp_path: Path) -> None:
    path = tmp_path / "guide.epub"
    make_epub(path)
    doc = read(path)
    check_common(doc, path)
    assert doc.title == "The Ferry Guide"
    texts = dict(section_texts(doc))
    assert texts[("Crossings",)].startswith("Crossings\n\nThe Brellin ferry crosses the Ostra fjord four times a day.")
    assert texts[("Crossings", "Winter")].startswith("Winter\n\nIn winter the first crossing leaves at seven.")
    assert texts[("Fares",)] == "Fares\n\nTicket | Price\n\nTicket: Adult | Price: 12 crowns"
    assert doc.text.index("Brellin") < doc.text.index("Adult")  # the spine's order


def test_a_drm_protected_or_corrupt_epub_is_named(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "locked.epub"
    make_epub(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("META-INF/encryption.xml",
                         '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                         'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
                         '<enc:CipherReference URI="EPUB/one.xhtml"/></enc:CipherData></enc:EncryptedData>'
                         "</encryption>")
    with pytest.raises(SourceError, match=r"^DRM-protected EPUB \(its chapters are encrypted\)"):
        read(path)
    broken = tmp_path / "broken.epub"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SourceError, match=r"^corrupt or unreadable EPUB file \(BadZipFile"):
        read(broken)


def test_ragignore_leaves_out_what_it_names(tmp_path: Path) -> None:
    from ingest.ignore import add_to_ignore

    root = tmp_path / "notes"
    for name in ("a.md", "drafts/b.md", "sub/drafts/c.md", "x.tmp.md", "keep.tmp.md", "top.md", "sub/top.md",
                 "odd [1] #2!.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# T\n\nText.\n")
    (root / ".ragignore").write_text("# comments and blank lines are fine\n\n"
                                     "drafts/\n*.tmp.md\n!keep.tmp.md\n/top.md\n")
    result = discover([root])
    found, scopes = result.files, result.scopes
    assert [f.source for f in found] == ["notes/a.md", "notes/keep.tmp.md", "notes/odd [1] #2!.md", "notes/sub/top.md"]
    assert scopes == ["notes/"]
    add_to_ignore(root, "odd [1] #2!.md")  # a name full of pattern characters is ignored exactly, once
    add_to_ignore(root, "odd [1] #2!.md")
    assert [f.source for f in discover([root]).files] == ["notes/a.md", "notes/keep.tmp.md", "notes/sub/top.md"]
    assert (root / ".ragignore").read_text().count("odd") == 1


def test_a_drawn_tables_title_row_is_taken_out_but_a_header_with_an_empty_corner_stays() -> None:
    from ingest.readers.pdf_tables import _trim

    titles, grid = _trim([[None, "Table 2: Latency.", "Table 2: Latency."], [None, "", "p99"], [None, "read", "68"]])
    assert titles == ["Table 2: Latency."] and grid == [["", "p99"], ["read", "68"]]
    assert _trim([["", "Value"], ["Latency", "5 ms"]]) == ([], [["", "Value"], ["Latency", "5 ms"]])


def test_docx_title_is_its_first_heading_whatever_its_level(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    document = docx.Document()
    document.add_heading("OWASP Top 10 2017", level=2)  # a cover set in Heading 2
    document.add_paragraph("The Ten Most Critical Web Application Security Risks")
    document.add_heading("Release", level=1)
    document.add_paragraph("Comments requested.")
    document.save(str(path))
    assert read(path).title == "OWASP Top 10 2017"
    titled = tmp_path / "titled.docx"
    document.add_paragraph("The Real Title", style="Title")  # a Title paragraph wins wherever it stands
    document.save(str(titled))
    assert read(titled).title == "The Real Title"
