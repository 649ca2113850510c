"""Readers of marked-up and paged text: reStructuredText, AsciiDoc, HTML by name and content, web-page
furniture, and plain text set in pages (RFCs). Each file is generated here with the furniture it
must lose; what is checked is the text that gets indexed and quoted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.limits import Limits
from ingest.sources import SourceFile, discover, read_document
from rag.errors import SourceError
from rag.text import sentence_spans
from rag.types import SourceDocument

LIMIT = Limits(file_bytes=10 * 2**20)


def read(path: Path) -> SourceDocument:
    return read_document(SourceFile(path, f"{path.parent.name}/{path.name}"), LIMIT)


def sentences(doc: SourceDocument) -> list[str]:
    return [doc.text[s:e] for s, e in sentence_spans(doc.text)]


RST = """\
:mod:`gzip` --- Support for gzip files
=======================================

.. module:: gzip
   :synopsis: Interfaces for gzip compression.

**Source code:** :source:`Lib/gzip.py`

This module reads files compressed by :program:`gzip`, see :ref:`the zlib notes <zlib-notes>`
and :func:`~gzip.open`.

.. versionadded:: 3.2
   Support for ``with``.

.. function:: open(filename, mode='rb')

   Open a gzip-compressed file. Use it like this:

   .. code-block:: python

      with gzip.open('f.gz') as f:
          data = f.read(). Done

Examples
--------

+-------+-------------+
| Level | Speed       |
+=======+=============+
| 1     | fastest     |
+-------+-------------+

* The default level is 9.

.. note::
   Mind the gap.

.. toctree::
   other
"""


def test_rst_reads_text_and_sphinx_roles_not_markup(tmp_path: Path) -> None:
    path = tmp_path / "gzip.rst"
    path.write_text(RST, encoding="utf-8")
    doc = read(path)
    assert doc.title == "gzip --- Support for gzip files"
    assert doc.text == (
        "gzip --- Support for gzip files\n\nSource code: Lib/gzip.py\n\n"
        "This module reads files compressed by gzip, see the zlib notes and open.\n\n"
        "Added in version 3.2: Support for with.\n\n"
        "open(filename, mode='rb')\n\nOpen a gzip-compressed file. Use it like this:\n\n"
        "```\nwith gzip.open('f.gz') as f:\n    data = f.read(). Done\n```\n\n"
        "Examples\n\nLevel | Speed\n\nLevel: 1 | Speed: fastest\n\nThe default level is 9.\n\nMind the gap."
    )
    assert [s.headings for s in doc.sections] == [
        ("gzip --- Support for gzip files",), ("gzip --- Support for gzip files", "Examples")]
    assert "with gzip.open('f.gz') as f:\n    data = f.read(). Done" in sentences(doc)  # code: one unit


def test_rst_that_docutils_cannot_parse_is_read_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.rst"
    path.write_text("Title\n=====\n\n.. unknown-directive:: x\n\n   inner\n\nText with :unknown:`role text` and "
                    "`unclosed.\n\n=====\nShort\n", encoding="utf-8")
    doc = read(path)
    assert doc.title == "Title"
    assert "Text with role text and" in doc.text and "unknown" not in doc.text


ADOC = """\
= Widget Guide
Ann Author <ann@example.org>
v1.2, 2024-03-01
:product: Widget
:toc:

// a comment line
== Installing

Install *{product}* with `pip` from https://example.org/widget[the project page].
See <<usage,Using it>> and xref:other.adoc[the other guide].

[source,shell]
----
pip install widget
# then. Run it
----

[cols="1,1",options="header"]
|===
| Option | Default
| --fast | off
| --level
| 9
|===

=== Upgrading

* Upgrade with pip.
* Read the notes
+
before you upgrade.

NOTE: Widget 2 drops Python 3.8.

////
A comment block.
////

.Example title
====
Inside an example block.
====
"""


def test_asciidoc_reads_sections_lists_code_and_tables(tmp_path: Path) -> None:
    path = tmp_path / "guide.adoc"
    path.write_text(ADOC, encoding="utf-8")
    doc = read(path)
    assert doc.title == "Widget Guide"
    assert doc.text == (
        "Widget Guide\n\nInstalling\n\n"
        "Install Widget with pip from the project page. See Using it and the other guide.\n\n"
        "```\npip install widget\n# then. Run it\n```\n\n"
        "Option | Default\n\nOption: --fast | Default: off\n\nOption: --level | Default: 9\n\n"
        "Upgrading\n\nUpgrade with pip.\n\nRead the notes before you upgrade.\n\n"
        "NOTE: Widget 2 drops Python 3.8.\n\nExample title\n\nInside an example block."
    )
    assert [s.headings for s in doc.sections] == [
        ("Widget Guide",), ("Widget Guide", "Installing"), ("Widget Guide", "Installing", "Upgrading")]
    assert (tmp_path / "guide.asciidoc").write_text(ADOC) and read(tmp_path / "guide.asciidoc").text == doc.text


def test_asciidoc_never_runs_what_a_document_asks(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    path = tmp_path / "hostile.adoc"
    path.write_text(f"= Hostile\n\ninclude::{secret}[]\n\n{{sys:echo RAN}} and {{eval:1+1}}\n\n"
                    "[source,\"python; touch pwned\"]\n----\nx\n----\n", encoding="utf-8")
    doc = read(path)
    assert "TOP SECRET" not in doc.text and "RAN\n" not in doc.text
    assert "{sys:echo RAN} and {eval:1+1}" in doc.text  # unknown references stay as written
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="iso-8859-1"><title>Logging - Apache HTTP Server</title></head><body>
<div id="page-header"><p class="menu"><a href="/mod/">Modules</a> | <a href="/glossary">Glossary</a></p>
<p class="apache">Apache HTTP Server Version 2.4</p></div>
<nav><h2>Site menu</h2><ul><li><a href="/">Home</a></li><li><a href="/docs/">Documentation</a></li>
<li><a href="/faq/">Frequently asked questions</a></li><li><a href="/sitemap">Sitemap</a></li></ul></nav>
<div id="preamble"><h1>Log Files</h1>
<p>The server records errors in the error log.<sup id="r1" class="reference"><a href="#n1">[12]</a></sup>
Its name is set by <code>ErrorLog</code>.<sup>[citation needed]</sup> Caf\xe9 owners read it.
A script reads its path from <code>argv[1]</code> and <code>lines[i]</code>.[7]</p>
<pre class="prettyprint">ErrorLog "/var/log/httpd/error_log"
LogLevel warn</pre>
<p>After the example, the access log records every request that the server processed, with the client's
address, the time and the status code it was answered with.</p></div>
<div id="footer"><p class="apache">Copyright 2025 The Apache Software Foundation.<br />Licensed under the
<a href="http://www.apache.org/licenses/LICENSE-2.0">Apache License, Version 2.0</a>.</p>
<p class="menu"><a href="/mod/">Modules</a> | <a href="/faq/">FAQ</a> | <a href="/sitemap.html">Sitemap</a></p></div>
</body></html>
"""


@pytest.mark.parametrize("name", ["logs.html.en", "logs.html.en.iso8859-1", "logs.htm.de", "logs"])
def test_html_is_found_by_its_apache_style_name_or_its_content(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "manual"
    folder.mkdir()
    (folder / name).write_bytes(HTML_PAGE.encode("iso-8859-1"))
    (folder / "notes.en").write_text("Not a page.")  # a name that says nothing, and text that is no page
    found = discover([folder])
    assert [f.source for f in found.files] == [f"manual/{name}"] and dict(found.skipped) == {".en": 1}
    doc = read(folder / name)
    assert doc.title == "Logging - Apache HTTP Server"
    # Reference markers go (a sentence ends after them as before them); the declared encoding is used.
    assert "The server records errors in the error log." in sentences(doc)
    assert "Its name is set by ErrorLog." in sentences(doc) and "Café owners read it." in sentences(doc)
    assert "[12]" not in doc.text and "citation needed" not in doc.text and "[7]" not in doc.text
    assert "A script reads its path from argv[1] and lines[i]." in sentences(doc)  # code keeps its indexes
    assert '```\nErrorLog "/var/log/httpd/error_log"\nLogLevel warn\n```' in doc.text  # <pre>: a code block
    # The main content: the heading, the text and the code; no menu or footer (the extractor keeps the
    # one-line banner above the heading, "Apache HTTP Server Version 2.4", as real Apache pages show too).
    assert "Log Files\n\nThe server records" in doc.text and doc.sections[-1].headings == ("Log Files",)
    for furniture in ("Modules", "Glossary", "Site menu", "Sitemap", "Copyright", "Home"):
        assert furniture not in doc.text


def rfc(pages: int) -> str:
    """A plain-text RFC set in pages: a column header on page 1, a running header and a footer on every
    page, form feeds between pages; on odd pages a sentence runs on over the page break."""
    topics = ["header", "trailer", "member", "checksum", "length", "flags", "extra field", "file name"]
    texts = ["Network Working Group                                         P. Deutsch\n"
             "Request for Comments: 1952                           Aladdin Enterprises\n"
             "Category: Informational                                         May 1996\n\n\n"
             "                GZIP file format specification version 4.3\n\n"
             "Status of This Memo\n\n   This memo provides information for the Internet community.\n"]
    for n in range(2, pages + 1):
        topic = topics[n % len(topics)]
        # The sentence from the page before goes on.
        head = f"   over the break to the {topic}.\n\n" if n % 2 == 0 and n > 2 else ""
        end = "   goes on" if n % 2 else f"   ends with the {topic}."
        texts.append(f"\nRFC 1952             GZIP File Format Specification             May 1996\n\n\n{head}"
                     f"{n}. The {topic}\n\n   The {topic} of a member is described here in {n * 3} words, and\n"
                     f"   this sentence about the {topic} runs on to the end of the page and\n{end}\n\n\n\n")
    return "".join(f"{text}Deutsch                      Informational                      [Page {n}]\n\f"
                   for n, text in enumerate(texts, start=1))


def test_paged_plain_text_loses_its_running_headers_footers_and_page_breaks(tmp_path: Path) -> None:
    path = tmp_path / "rfc1952.txt"
    path.write_text(rfc(6), encoding="utf-8")
    doc = read(path)
    assert doc.title == "GZIP file format specification version 4.3"
    assert "\f" not in doc.text and "[Page" not in doc.text and "RFC 1952             GZIP" not in doc.text
    assert doc.text.startswith("Network Working Group")  # the first page's own header is not running
    # No paragraph break where a sentence goes on over the page break; one where a page ends a sentence.
    assert "runs on to the end of the page and\n   goes on\n   over the break to the length.\n\n4. The" in doc.text
    assert "ends with the length.\n\n5. The" in doc.text


def test_plain_text_without_pages_keeps_its_first_line_as_title(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("Ferry notes\n\nThe ferry leaves at nine.\fA stray form feed.\n")
    doc = read(path)
    assert doc.title == "Ferry notes" and doc.text == "Ferry notes\n\nThe ferry leaves at nine.\fA stray form feed.\n"


@pytest.mark.parametrize("name", ["bad.rst", "bad.adoc", "bad.mdx"])
def test_a_bad_file_of_each_markup_format_gets_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"Title\n\n\xff\xfe\x00 broken")
    with pytest.raises(SourceError) as info:
        read(path)
    assert "\n" not in str(info.value) and ("binary" in str(info.value) or "UTF-8" in str(info.value))


def test_pdf_margin_line_numbers_footers_printer_lines_and_headings_by_font(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    path = tmp_path / "transcript.pdf"
    pdf = canvas.Canvas(str(path))
    topics = ["ferries", "harbours", "tides", "bridges", "tunnels"]
    for number, topic in enumerate(topics, start=1):
        pdf.setFont("Helvetica", 16)
        pdf.drawString(90, 780, f"Argument about {topic.title()}")  # set larger: a heading
        pdf.setFont("Helvetica", 10)
        for line in range(1, 21):
            y = 760 - 30 * line
            pdf.drawString(40, y, str(line))  # the margin's line number
            words = f"the witness said {topic} line {line} was heard on day {number}"
            pdf.drawString(90, y, words if line != 10 else "Official - Subject to Final Review")
        pdf.drawString(90, 40, f"VerDate Sep<11>2014 16:21 Aug 05, 2020 Jkt 25000{number} PO 00000 Frm 0000{number} "
                               f"Fmt 4700 Sfmt 4700 E:\\FR\\FM\\06AUR1.SGM 06AUR1")
        pdf.showPage()
    pdf.save()
    doc = read(path)
    assert "Official - Subject" not in doc.text and "VerDate" not in doc.text and "Jkt" not in doc.text
    assert "the witness said tides line 3 was heard on day 3" in doc.text
    assert not any(line.strip().isdigit() for line in doc.text.split("\n"))  # no margin numbers left
    assert re.search(r"(?<!day )\b\d{1,2} the witness", doc.text) is None  # none glued to a line either
    # The heading set larger is a block of its own, not the start of the sentence under it.
    assert "Argument about Tides\n\nthe witness said tides line 1" in doc.text


def test_pdf_without_larger_type_is_titled_by_its_first_cleaned_line(tmp_path: Path) -> None:
    from reportlab.pdfgen import canvas

    def transcript(first: str, name: str = "hearing") -> Path:
        path = tmp_path / f"{name}.pdf"
        pdf = canvas.Canvas(str(path))
        pdf.setFont("Helvetica", 10)  # one size throughout: no line is set larger
        for page in range(1, 4):
            # Page 1 opens with the court's line and the caption's rule, as transcripts do.
            lines = ["Official - Subject to Final Review"] + ([first, "- - - - - - - - - - - - x"] if page == 1 else [])
            lines += [f"the witness spoke about the ferry on day {page} line {n}" for n in range(1, 15)]
            for n, words in enumerate(lines, start=1):
                pdf.drawString(40, 780 - 30 * n, str(n))  # the margin's line number
                pdf.drawString(90, 780 - 30 * n, words)
            pdf.showPage()
        pdf.save()
        return path

    # The running line and the margin numbers are gone first: the title is the court's line, not "1".
    assert read(transcript("IN THE HARBOUR COURT OF OSTRA")).title == "IN THE HARBOUR COURT OF OSTRA"
    # A table's header row or a sentence is no title: the file name stands.
    assert read(transcript("Date | Company | City", "table")).title == "table"
    assert read(transcript("The court sat at nine and heard the ferry case.", "minutes")).title == "minutes"


def _paged_notice() -> str:
    """A paged text (form feeds, a running header and a footer) whose third page states a fact."""
    pages = []
    for n in range(1, 6):
        fact = "   The tunnel toll is paid at the eastern gate, in cash or by card.\n" if n == 3 else ""
        pages.append(f"Harbour Notice 12          Tunnel and Bridge Tolls          May 2026\n\n"
                     f"   Section {n} describes the crossing number {n} and its {n * 7} lanes.\n{fact}\n\n"
                     f"Harbour Board                  Public                          [Page {n}]\n")
    return "\f".join(pages)


@pytest.mark.integration
def test_each_new_reader_is_indexed_and_quoted_without_its_markup(tmp_path: Path) -> None:
    import json

    from tests.helpers import run_rag

    docs = tmp_path / "harbour"
    docs.mkdir()
    (docs / "ferry.rst").write_text(
        "Ferries\n=======\n\n.. note::\n   Timetables change in winter.\n\n"
        "The ferry to Brellin leaves at nine from :ref:`pier four <pier-4>`, see :doc:`the map <map>`.\n")
    (docs / "light.adoc").write_text(
        "= Lighthouses\n:place: Ostra\n\n== Hours\n\nThe *lighthouse* on {place} is lit from `dusk` to dawn.\n")
    (docs / "office.html.en").write_text(
        "<html><head><title>Harbour office</title></head><body><nav><ul><li><a href='/'>Home</a></li>"
        "<li><a href='/a'>About us</a></li><li><a href='/c'>Contact</a></li></ul></nav><main><h1>Office</h1>"
        "<p>The harbour master's office opens at seven every weekday.<sup>[3]</sup> It closes at noon on"
        " Saturdays.</p></main></body></html>")
    (docs / "bridge.mdx").write_text(
        "import Note from '../components/Note';\n\n# Bridge\n\n<Note>\nThe toll bridge charges **four crowns**"
        " per car and [two crowns](./fares.md) per bicycle.\n</Note>\n")
    (docs / "notice.txt").write_text(_paged_notice())
    home = tmp_path / ".rag"
    out = run_rag("ingest", str(docs), home=home)
    assert out.returncode == 0 and "added 5," in out.stdout, out.stdout + out.stderr
    asked = {
        "When does the ferry to Brellin leave?": ("harbour/ferry.rst", "leaves at nine from pier four"),
        "When is the lighthouse on Ostra lit?": ("harbour/light.adoc", "lighthouse on Ostra is lit from dusk to dawn"),
        "When does the harbour master's office open?": ("harbour/office.html.en", "opens at seven every weekday."),
        "How much does the toll bridge charge per car?": ("harbour/bridge.mdx", "charges four crowns per car"),
        "Where is the tunnel toll paid?": ("harbour/notice.txt", "paid at the eastern gate"),
    }
    for question, (source, phrase) in asked.items():
        answer = json.loads(run_rag("ask", question, "--json", home=home).stdout)
        quotes = [c["quote"] for c in answer["citations"] if c["source"] == source]
        assert not answer["abstained"] and any(phrase in quote for quote in quotes), (question, answer)
        for quote in quotes:  # no markup, reference markers or page furniture in what is quoted
            assert not any(mark in quote for mark in ("*", "`", ":ref:", "[3]", "<", "](", "[Page", "Harbour Notice"))


def test_a_page_nested_thousands_deep_is_read(tmp_path: Path) -> None:
    path = tmp_path / "deep.html"
    depth = 5000
    path.write_text("<html><body>" + "<div>" * depth + "<p>The deepest paragraph is read.</p>" + "</div>" * depth
                    + "<p>So is the one after it.</p></body></html>")
    assert read(path).text == "The deepest paragraph is read.\n\nSo is the one after it."


@pytest.mark.timeout(30)  # quadratic scanning took minutes on these (100,000 unclosed fences: about 4 minutes)
def test_unclosed_fences_and_macros_do_not_take_quadratic_time(tmp_path: Path) -> None:
    fences = "```x\n" * 100_000 + "Text after the fences.\n"
    start, end = sentence_spans(fences)[-1]
    assert fences[start:end].endswith("```x\nText after the fences.")  # unclosed: prose, not code
    path = tmp_path / "macros.adoc"
    path.write_text("= Macros\n\n" + "link:x[" * 50_000 + " <<a," * 50_000 + "\n\nThe end of the document.\n")
    assert read(path).text.endswith("The end of the document.")


def test_urls_and_identifiers_broken_at_line_ends_and_footnote_marks() -> None:
    from ingest.readers.paged import clean_pages

    page = ("Comments may be sent to https://\nwww.regulations.gov under docket FAA-2020-\n0746 before the\n"
            "deadline set in Bulletin 737-31-\n0001 by the agency.\n\n1Preliminary report of the accident board.")
    assert clean_pages([page]) == [
        "Comments may be sent to https://www.regulations.gov under docket FAA-2020-0746 before the deadline "
        "set in Bulletin 737-31-0001 by the agency.\n\n1 Preliminary report of the accident board."]
