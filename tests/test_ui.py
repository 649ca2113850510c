"""The chat page's rendering and handlers, Gradio-free, over a real Assistant and a real index."""

from __future__ import annotations

import html
import re
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ingest.library import add_documents, safe_name
from ingest.pipeline import ingest
from rag.answer import LOW_NOTE
from rag.assistant import Assistant
from rag.embedding import Embedder
from rag.errors import SourceError
from rag.settings import Settings
from rag.types import Answer, Chunk, Citation, Claim, Hit
from tests.helpers import ROOT, indexed_copy, run_rag
from ui import render
from ui.app import build_app
from ui.handlers import CallbackProgress, Handlers
from ui.server import _loopback

Q910C = "How many 910C processors will Huawei make?"
S910C = "Huawei aims to crank out 100,000 of its latest 910C processors this year."
S910B = "They'll make 300,000 of the older 910B chips too."
SOURCE = "corpus/deepseek-huawei-nvidia-buying-frenzy.md"


def _answer(abstained: bool = False, standalone: str = "q?") -> Answer:
    text = "Intro <b>bold</b> & more. " * 40 + "The <script>x</script> fact. " + "Tail words. " * 40
    start = text.index("The <script>")
    quote = "The <script>x</script> fact."
    chunk = Chunk(id="c1", source="docs/a&b.md", title="A & B", text=text, start=100, end=100 + len(text), index=0,
                  headings=("A & B", "Part 2"), page=3)
    citation = Citation(n=1, source=chunk.source, title=chunk.title, quote=quote, start=100 + start,
                        end=100 + start + len(quote), chunk_id="c1", score=0.61)
    return Answer(question="q?", text="Nothing here." if abstained else f"{quote} [1] Unknown [7].",
                  citations=() if abstained else (citation,), hits=(Hit(chunk, 0.1, dense_score=0.42),),
                  abstained=abstained, standalone_question=standalone)


def test_answer_links_each_marker_to_its_card_and_escapes_document_text() -> None:
    shown = render.answer(_answer(), turn=4)
    assert '<a class="cite" href="#src-4-1" title=' in shown
    assert "title=\"docs/a&amp;b.md: The &lt;script&gt;x&lt;/script&gt; fact.\"" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "[7]" in shown and "src-4-7" not in shown  # a marker naming no citation stays plain text
    assert "A &amp; B · <code>docs/a&amp;b.md</code>" in shown
    assert "standalone" not in shown


def test_answer_shows_the_standalone_question_of_a_follow_up() -> None:
    shown = render.answer(_answer(standalone="earlier q? q?"), turn=2)
    assert '<div class="standalone">Searched for: “earlier q? q?”</div>' in shown


def test_abstention_is_styled_apart_and_names_the_closest_documents() -> None:
    shown = render.answer(_answer(abstained=True), turn=1)
    assert shown.startswith('<div class="abstain">⚠ Nothing here.</div>')
    assert "cite" not in shown and "<code>docs/a&amp;b.md</code>" in shown
    panel = render.sources(_answer(abstained=True), turn=1)
    assert "No passage answers" in panel and 'class="src-card closest"' in panel
    assert "similarity 0.42" in panel and "<mark>" not in panel


def _confident(confidence: str, backend: str = "extractive") -> Answer:
    """`_answer()` as the extractive answerer gives it: `high` quotes supported, `low` ones weak."""
    base = _answer()
    verdict = "supported" if confidence == "high" else "weak"
    citation = replace(base.citations[0], support=0.7 if confidence == "high" else 0.4, verdict=verdict)
    claim = Claim(citation.quote, (1,), verdict)  # type: ignore[arg-type]
    note = f"{LOW_NOTE} " if confidence == "low" else ""
    return replace(base, text=f"{note}{citation.quote} [1]", citations=(citation,), sentences=(claim,),
                   confidence=confidence, backend=backend)  # type: ignore[arg-type]


def test_low_confidence_answer_is_labelled_and_muted_and_its_cards_say_so() -> None:
    shown = render.answer(_confident("low"), turn=2)
    assert shown.startswith(f'<div class="low-label">{render.LOW_LABEL}</div>\n<div class="answer low">')
    assert render.LOW_LABEL == "Low confidence — closest evidence, may not answer the question"
    assert "The &lt;script&gt;x&lt;/script&gt; fact." in shown and "<script>" not in shown
    assert 'href="#src-2-1"' in shown
    assert "claim weak" not in shown  # an extractive sentence is its quote: the label says how sure it is
    assert LOW_NOTE not in shown  # the label takes the place of the note that opens the text
    panel = render.sources(_confident("low"), turn=2)
    assert panel.startswith('<p class="src-title low">Closest evidence for “q?” (low confidence)</p>')
    assert '<div class="src-card low" id="src-2-1">' in panel
    assert f'<div class="src-note">{render.LOW_CARD_NOTE}</div>' in panel
    assert "may not answer the question" in render.LOW_CARD_NOTE
    assert re.findall(r"<mark>(.*?)</mark>", panel) == ["The &lt;script&gt;x&lt;/script&gt; fact."]


def test_confident_answer_has_no_low_confidence_marks() -> None:
    shown = render.answer(_confident("high"), turn=2)
    assert shown.startswith('<div class="answer">The &lt;script&gt;x&lt;/script&gt; fact. <a class="cite"')
    assert "low" not in shown and render.LOW_LABEL not in shown
    panel = render.sources(_confident("high"), turn=2)
    assert panel.startswith('<p class="src-title">Sources for “q?”</p><div class="src-card" id="src-2-1">')
    assert "src-note" not in panel and "low" not in panel


def test_low_confidence_generated_answer_keeps_its_sentence_flags() -> None:
    shown = render.answer(_confident("low", backend="openai:m"), turn=1)
    assert shown.startswith(f'<div class="low-label">{render.LOW_LABEL_GENERATED}</div>\n<div class="answer low">')
    assert '<span class="claim weak"' in shown
    panel = render.sources(_confident("low", backend="openai:m"), turn=1)
    assert '<span class="verdict weak">weak</span>' in panel and "src-note" not in panel
    # Every sentence supported, and low all the same: the quote may not answer the question.
    true = _confident("high", backend="openai:m")
    unsure = render.answer(replace(true, confidence="low"), turn=1)
    assert unsure.startswith(f'<div class="low-label">{render.LOW_LABEL_UNSURE}</div>')


def test_abstention_shows_the_closest_passages_best_first_with_their_similarity() -> None:
    base = _answer(abstained=True)
    chunk = base.hits[0].chunk

    def hit(name: str, fused: float, similarity: float) -> Hit:
        return Hit(replace(chunk, id=name, source=f"docs/{name}.md", title=f"<{name}>"), fused, dense_score=similarity)

    hits = (hit("a", 0.9, 0.20), hit("b", 0.8, 0.61), hit("c", 0.7, 0.43), hit("d", 0.6, 0.05))  # in fused order
    ans = replace(base, hits=hits)
    shown = render.answer(ans, turn=1)
    assert ('<div class="src-list">Closest: <code>docs/b.md</code> (similarity 0.61), '
            "<code>docs/c.md</code> (similarity 0.43), <code>docs/a.md</code> (similarity 0.20)</div>") in shown
    panel = render.sources(ans, turn=1)
    assert re.findall(r"<b>&lt;(\w)&gt;</b> <span class=\"src-score\">similarity (\S+)</span>", panel) == [
        ("b", "0.61"), ("c", "0.43"), ("a", "0.20")]
    assert "docs/d.md" not in panel and "low" not in panel


def test_source_card_highlights_the_quote_inside_a_window_of_its_passage() -> None:
    panel = render.sources(_answer(), turn=4)
    card = re.search(r'<div class="src-card" id="src-4-1">.*?</div></div>', panel, re.S)
    assert card is not None
    marked = re.findall(r"<mark>(.*?)</mark>", panel)
    assert marked == ["The &lt;script&gt;x&lt;/script&gt; fact."]
    found = re.search(r'<div class="src-text">(.*?)</div>', panel, re.S)
    assert found is not None
    shown = html.unescape(re.sub("</?mark>", "", found.group(1)))
    assert shown.startswith("…") and shown.endswith("…") and "The <script>x</script> fact." in shown
    assert len(shown) <= 2 * render.CONTEXT_CHARS + 40  # a window around the quote, not the whole chunk
    assert "score 0.61" in panel and "page 3" in panel and "Part 2" in panel
    assert '<div class="src-where">Part 2 · page 3</div>' in panel  # the title is not repeated as a heading


def test_status_and_upload_lines() -> None:
    assert "No index yet" in render.status(None, "no index at x")
    line = render.status({"documents": 2, "chunks": 6, "model": "m", "last_ingest": "2026-11-23T10:00:00+00:00"})
    assert line == ("<b>2</b> documents · <b>6</b> chunks · model <code>m</code> · "
                    "last ingest 2026-11-23 10:00:00 UTC")
    failing = render.status({"documents": 2, "chunks": 6, "model": "m", "last_ingest": None,
                             "failed": {"corpus/x<1>.pdf": "PDF has no text layer"}})
    assert "<b>1</b> files could not be read" in failing
    assert "<code>corpus/x&lt;1&gt;.pdf</code>: PDF has no text layer" in failing
    skipping = render.status({"documents": 2, "chunks": 6, "model": "m", "last_ingest": None,
                              "skipped": {".rst": 5, ".a<b": 1}})
    assert "6 files skipped, of formats not read: 5 .rst, 1 .a&lt;b</span>" in skipping
    lines = render.uploads([("a<b>.md", "refused", "bad & wrong"), ("c.md", "added", "")])
    assert "<code>a&lt;b&gt;.md</code>: refused · bad &amp; wrong" in lines and "<code>c.md</code>: added</li>" in lines


def test_ask_streams_then_links_citations_and_fills_the_sources_panel(seed_assistant: Assistant) -> None:
    handlers = Handlers(seed_assistant)
    steps = list(handlers.ask(Q910C, [], []))
    assert len(steps) >= 2 and all('class="answer streaming"' in s[0][-1]["content"] for s in steps[:-1])
    shown, history, panel = steps[-1]
    assert [m["role"] for m in shown] == ["user", "assistant"]
    assert 'class="cite"' in shown[-1]["content"] and "100,000" in shown[-1]["content"]
    assert history[0] == {"role": "user", "content": Q910C} and "[1]" in history[1]["content"]
    assert re.findall(r"<mark>(.*?)</mark>", panel)[0] == S910C.replace("'", "&#x27;")
    assert SOURCE in panel


def test_follow_up_through_the_handlers_cites_the_older_model(seed_assistant: Assistant) -> None:
    handlers = Handlers(seed_assistant)
    shown, history, _ = list(handlers.ask(Q910C, [], []))[-1]
    shown, history, panel = list(handlers.ask("And of the older model?", shown, history))[-1]
    assert len(shown) == 4 and len(history) == 4
    assert "Searched for:" in shown[-1]["content"]
    assert S910B.replace("'", "&#x27;") in re.findall(r"<mark>(.*?)</mark>", panel)


def test_errors_are_shown_in_the_chat_and_the_conversation_is_kept(seed_assistant: Assistant) -> None:
    handlers = Handlers(seed_assistant)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    shown, kept, panel = list(handlers.ask("x" * 5000, [], history))[-1]
    assert 'class="error"' in shown[-1]["content"] and "keep it under" in shown[-1]["content"]
    assert kept == history and panel == ""


def test_status_and_examples_come_from_the_index_and_golden_file(seed_assistant: Assistant) -> None:
    handlers = Handlers(seed_assistant)
    assert "<b>2</b> documents" in handlers.status()
    examples = handlers.examples()
    assert len(examples) == 4 and examples[0] == "How many 910C processors will Huawei make this year?"
    assert not any("Australia" in e for e in examples)


FAQ = """# Lantern keeping: frequently asked questions

## How often should a Quibbleflux lantern be refilled?

Every eleven days, with lamp oil pressed from green olives.

## Why?

Because the wick dries out.

**Who repairs broken Quibbleflux lanterns in Dundee?**

The Vale workshop on Harbour Street repairs them.

- Can a lantern burn under water?
- What if this very long question line goes on and on for far more than fifteen words before it ends?

People ask what makes the glass green? The answer is copper. Is the ring safe to touch?

| Question | Answer |
| --- | --- |
| Does the lantern hum at night? | Yes |

See [is it safe?](http://example.org/safe?) for more.
"""
NOTES = "# Lantern history\n\n## Who built the first Quibbleflux lantern?\n\nOrrin Vale, in 1887.\n"


def test_examples_without_golden_file_are_the_documents_own_questions(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "faq"
    corpus.mkdir()
    (corpus / "faq.md").write_text(FAQ, encoding="utf-8")
    (corpus / "notes.md").write_text(NOTES, encoding="utf-8")
    settings = Settings.load(home=tmp_path / ".rag", corpus=corpus)  # no golden.jsonl there
    assert ingest([corpus], settings, embedder=embedder).exit_code == 0
    handlers = Handlers(Assistant(settings, embedder=embedder))
    # headings and lines that are one question of 3-15 words, markers and emphasis removed, the
    # documents taken in turn; not: "Why?" (1 word), the 19-word line, questions inside a paragraph,
    # a table row, a link
    assert handlers.examples(limit=10) == [
        "How often should a Quibbleflux lantern be refilled?", "Who built the first Quibbleflux lantern?",
        "Who repairs broken Quibbleflux lanterns in Dundee?", "Can a lantern burn under water?",
    ]
    assert handlers.examples() == handlers.examples(limit=10)  # four at most
    assert handlers.examples(limit=2) == handlers.examples(limit=10)[:2]


def test_examples_without_golden_file_or_questions_are_none(seed_home: Path, embedder: Embedder,
                                                            tmp_path: Path) -> None:
    settings = Settings.load(home=seed_home / ".rag", corpus=tmp_path)  # the seed index; no golden.jsonl
    handlers = Handlers(Assistant(settings, embedder=embedder))
    assert handlers.examples() == []  # the seed articles ask no question of their own: no junk offered

    def example_blocks(handlers: Handlers) -> list[list[Any]]:
        config = build_app(handlers.assistant).get_config_file()
        return [c["props"]["samples"] for c in config["components"]
                if c.get("props", {}).get("elem_id") == "examples"]

    assert example_blocks(handlers) == []  # the page has no examples block at all
    golden = Handlers(Assistant(settings.model_copy(update={"corpus": ROOT / "corpus"}), embedder=embedder))
    assert example_blocks(golden) == [[[q] for q in golden.examples()]]


def test_status_without_an_index_says_how_to_make_one(tmp_path: Path, embedder: Embedder) -> None:
    handlers = Handlers(Assistant(Settings.load(home=tmp_path / ".rag", corpus=tmp_path), embedder=embedder))
    assert "No index yet" in handlers.status() and "rag ingest" in handlers.status()
    assert handlers.examples() == []


@pytest.mark.parametrize(("given", "stored"), [
    ("notes.md", "notes.md"), ("../../etc/evil.md", "evil.md"), ("C:\\Users\\x\\Report 1.PDF", "Report 1.PDF"),
    ("a<b>|c?.txt", "a_b__c_.txt"), ("/abs/path/page.html", "page.html"), ("install.html.en", "install.html.en"),
    ("guide.rst", "guide.rst"), ("book.adoc", "book.adoc"), ("intro.mdx", "intro.mdx"),
])
def test_safe_name_keeps_only_a_plain_file_name(given: str, stored: str) -> None:
    assert safe_name(given) == stored


@pytest.mark.parametrize(("given", "why"), [
    (".env.md", "no leading dot"), ("../", "no leading dot"), ("tool.exe", "file type not accepted"),
    ("notes", "file type not accepted"), ("x" * 300 + ".md", "at most 200"), ("notes.md.bak", "file type not accepted"),
])
def test_safe_name_refuses(given: str, why: str) -> None:
    with pytest.raises(SourceError, match=why):
        safe_name(given)


def test_uploads_are_checked_saved_and_searchable_at_once(tmp_path: Path, embedder: Embedder) -> None:
    base = indexed_copy(tmp_path, embedder)
    assistant = Assistant(Settings.load(home=base / ".rag", corpus=base / "corpus"), embedder=embedder)
    assistant.ask(Q910C)  # the index is loaded before the upload: the new document must still be found
    good = b"# Quibbleflux lanterns\n\nOrrin Vale built the first Quibbleflux lantern in 1887 in Dundee.\n"
    seen: list[tuple[float, str]] = []
    results = add_documents(assistant, [
        ("../lantern.md", good), ("bad.pdf", b"%PDF-1.4 not really"), ("empty.txt", b""), ("run.sh", b"echo"),
    ], progress=CallbackProgress(lambda f, d: seen.append((f, d))))
    outcome = {r.name: (r.outcome, r.reason) for r in results}
    assert outcome["../lantern.md"] == ("added", "indexed as corpus/lantern.md")
    assert outcome["bad.pdf"][0] == "refused" and "PDF" in outcome["bad.pdf"][1]
    assert outcome["empty.txt"] == ("refused", "the file is empty; nothing to index")
    assert outcome["run.sh"][0] == "refused" and "file type not accepted" in outcome["run.sh"][1]
    assert sorted(p.name for p in (base / "corpus").iterdir()) == [
        ".ragignore", "deepseek-huawei-nvidia-buying-frenzy.md", "golden.jsonl", "lantern.md",
        "podcast-insights-china-ai-chips.md",
    ]  # nothing refused was kept, no temporary file is left, nothing escaped the folder
    assert seen and seen[-1][0] == 1.0

    answer = assistant.ask("Who built the first Quibbleflux lantern?")
    assert not answer.abstained and answer.citations[0].source == "corpus/lantern.md"

    changed = good.replace(b"1887", b"1889")
    [refused] = add_documents(assistant, [("lantern.md", changed)])
    assert refused.outcome == "refused" and "already holds a different document" in refused.reason
    assert (base / "corpus" / "lantern.md").read_bytes() == good
    [same] = add_documents(assistant, [("lantern.md", good)])
    assert same.outcome == "unchanged"
    [updated] = add_documents(assistant, [("lantern.md", changed)], replace=True)
    assert updated.outcome == "updated" and (base / "corpus" / "lantern.md").read_bytes() == changed
    assert "1889" in assistant.ask("When was the first Quibbleflux lantern built?").text
    assert assistant.status()["documents"] == 3


def test_upload_handler_reports_missing_files(seed_assistant: Assistant) -> None:
    assert "choose one or more files first" in Handlers(seed_assistant).upload([])



def test_serve_refuses_a_busy_port_and_a_bad_login_in_one_line(seed_home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = run_rag("serve", "--port", port, home=seed_home / ".rag", process=True)
    assert taken.returncode == 2 and taken.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr and "--port" in taken.stderr
    bad = run_rag("serve", "--auth", "nopassword", home=seed_home / ".rag", process=True)
    assert bad.returncode == 2 and "RAG_AUTH: must be USER:PASS" in bad.stderr and "nopassword" not in bad.stderr
    short = run_rag("serve", home=seed_home / ".rag", env={"RAG_API_TOKEN": "short"}, process=True)
    assert short.returncode == 2 and "RAG_API_TOKEN: must be at least 16 characters" in short.stderr
    other = run_rag("serve", "--port", port, home=seed_home / ".rag", env={"RAG_CHUNK_TOKENS": "128"}, process=True)
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "rag ingest --rebuild" in other.stderr


def test_only_loopback_addresses_count_as_private() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and _loopback("127.0.0.2")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.5") and not _loopback("example.org")


def test_first_upload_creates_the_index(tmp_path: Path, embedder: Embedder) -> None:
    assistant = Assistant(Settings.load(home=tmp_path / ".rag", corpus=tmp_path / "docs"), embedder=embedder)
    handlers = Handlers(assistant)
    assert "No index yet" in handlers.status()
    upload = tmp_path / "incoming" / "vale.txt"
    upload.parent.mkdir()
    upload.write_text("Orrin Vale built the first Quibbleflux lantern in 1887.\n", encoding="utf-8")
    assert "<code>vale.txt</code>: added · indexed as docs/vale.txt" in handlers.upload([str(upload)])
    assert "<b>1</b> documents" in handlers.status()
    assert assistant.ask("Who built the first Quibbleflux lantern?").citations[0].source == "docs/vale.txt"


def test_generated_answers_flag_unsupported_sentences_and_show_verdicts() -> None:
    base = _answer()
    supported = replace(base.citations[0], verdict="supported", support=0.8)
    unsupported = replace(base.citations[0], n=2, verdict="unsupported", support=0.1)
    ans = replace(base, text="ignored", citations=(supported, unsupported), backend="openai:m",
                  sentences=(Claim("A <fact>.", (1,), "supported"), Claim("A guess.", (2,), "unsupported"),
                             Claim("Partly.", (), "weak")))
    shown = render.answer(ans, turn=3)
    assert shown.startswith('<div class="answer">A &lt;fact&gt;. <a class="cite" href="#src-3-1"')
    assert ('<span class="claim unsupported" title="no cited passage supports this sentence">A guess.</span> '
            '<a class="cite" href="#src-3-2"') in shown
    assert '<span class="claim weak"' in shown and "ignored" not in shown
    panel = render.sources(ans, turn=3)
    assert '<span class="verdict supported">supported</span>' in panel
    assert '<span class="verdict unsupported">unsupported</span>' in panel
    assert "verdict" not in render.sources(base, turn=3)  # extractive quotes are the answer itself
    fallback = render.answer(replace(base, fallback="openai at http://x: timed out"), turn=1)
    assert fallback.startswith('<div class="fallback">⚠ The language model\'s answer was not used '
                               '(openai at http://x: timed out)')
    copied = replace(ans, sentences=(Claim("A <fact>.", (1,), "supported", attributed=True),),
                     cut="the model began to repeat itself")
    shown = render.answer(copied, turn=3)
    assert '<div class="fallback">✂ The model\'s reply was cut short: the model began to repeat itself.</div>' in shown
    assert 'A &lt;fact&gt;. <span class="attributed" title="the model cited no passage' in shown
    judged = render.answer(replace(ans, sentences=(Claim("In short, yes.", (1,), "supported", judged=True),)), turn=3)
    assert 'In short, yes. <span class="judged" title="in other words than the passage: the model judged' in judged


def test_the_documents_view_lists_documents_and_the_files_that_failed(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bell.md").write_text("# Bell\n\nThe Vexmoor bell rings eleven times at dusk.\n")
    (corpus / "empty.md").write_text("")
    settings = Settings.load(home=tmp_path / ".rag", corpus=corpus)
    ingest([corpus], settings, embedder=embedder)
    handlers = Handlers(Assistant(settings, embedder=embedder))
    rows, sources, failed = handlers.documents()
    assert sources == ["corpus/bell.md"] and rows[0][:4] == ["corpus/bell.md", "Bell", "", 1]
    assert "<code>corpus/empty.md</code>: empty file (0 bytes)" in failed
    assert "choose a document first" in handlers.remove(None) and "choose a document first" in handlers.reindex("")
    assert "is not an indexed document" in handlers.remove("corpus/none.md")
    assert "<code>corpus/bell.md</code>: updated · added 0, updated 1," in handlers.reindex("corpus/bell.md")
    assert "</code>: removed · left the file alone and added it to" in handlers.remove("corpus/bell.md")
    assert handlers.documents()[1] == []


def test_cited_sources_open_at_their_page_or_quote_and_are_served_inertly() -> None:
    from rag.types import FileRecord
    from ui.render import document_page, file_type, source_link

    assert source_link("papers/gfs.pdf", 3, 10, 20) == "/v1/documents/papers/gfs.pdf/file#page=3"
    assert source_link("corpus/a b?.md", None, 10, 20) == \
        "/v1/documents/corpus/a%20b%3F.md/view?start=10&end=20#quote"
    # An answer from another collection than the server's names it, so that the link opens it there.
    assert source_link("hr/gfs.pdf", 3, 10, 20, "hr-2") == "/v1/documents/hr/gfs.pdf/file?collection=hr-2#page=3"
    assert source_link("hr/a.md", None, 1, 2, "hr") == "/v1/documents/hr/a.md/view?start=1&end=2&collection=hr#quote"
    assert file_type(Path("a.pdf")) == ("application/pdf", "inline")
    assert file_type(Path("a.html")) == ("text/plain; charset=utf-8", "inline")  # never run a document's scripts
    assert file_type(Path("a.docx"))[1] == "attachment"
    record = FileRecord("corpus/x.html", "sha", 1, "<b>X</b>", 0.0)
    page = document_page(record, "<script>alert(1)</script> the quote here.", 26, 35, current=False)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert '<mark id="quote">the quote</mark>' in page and "The file changed since it was indexed" in page
    assert "<title>&lt;b&gt;X&lt;/b&gt;</title>" in page
    assert '<mark id="quote">' not in document_page(record, "text", 5, 2, current=True)  # an empty span marks nothing


def test_the_status_line_shows_a_watch() -> None:
    from ui.render import watching

    assert watching(None) == ""
    line = watching({"folders": ["/data/notes"], "pending": 3, "syncing": False, "last_sync": None,
                     "last_summary": "", "last_error": "the folder holds no documents now", "syncs": 0})
    assert "watching <code>/data/notes</code> · 3 changes pending · last sync not yet" in line
    assert "the folder holds no documents now" in line
