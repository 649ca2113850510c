"""Pure HTML rendering of answers, sources and index status for the chat page (no Gradio here)."""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ingest.sources import skipped_summary
from rag.citations import MARKER
from rag.types import Answer, Chunk, Citation, Claim, FileRecord, Hit

if TYPE_CHECKING:
    from rag.assistant import Assistant

CONTEXT_CHARS = 300  # passage text shown on each side of a highlighted quote
# Above a low-confidence answer: an extractive one quotes the closest evidence found; a generated one
# has sentences that the passages they cite do not fully support.
LOW_LABEL = "Low confidence — closest evidence, may not answer the question"
LOW_LABEL_GENERATED = "Low confidence — not every sentence is supported by the passages it cites"
# Every sentence supported, but its lead quote is not one the confidence model calls an answer to the question.
LOW_LABEL_UNSURE = "Low confidence — true to the passages it cites, which may not answer the question"
LOW_CARD_NOTE = "Closest evidence found: this quote may not answer the question."


def text(value: str) -> str:
    """Document or user text made inert HTML; line breaks kept without blank lines.

    Chat messages are one HTML block (never a blank line inside), so markdown is not applied
    to quoted text: `*` or `#` in a document shows as written.
    """
    return "<br>".join(html.escape(line, quote=True) for line in value.splitlines() or [""])


def anchor(turn: int, n: int) -> str:
    """The id of citation `n` of answer `turn` in the sources panel."""
    return f"src-{turn}-{n}"


def streaming(partial: str) -> str:
    """An answer still arriving: its text so far, inert, markers as plain `[n]`."""
    return f'<div class="answer streaming">{text(partial)}</div>'


def answer(ans: Answer, turn: int) -> str:
    """The chat message for a finished answer.

    Each `[n]` becomes a link to its source card (its title attribute shows the quote on hover);
    a line of sources follows, and the standalone question when a follow-up was rewritten.
    A low-confidence answer is muted (class `low`) under a `low-label` line. An abstention is
    styled apart and names the closest passages instead, best first, with their similarity.
    """
    parts = []
    if ans.fallback:
        parts.append(f'<div class="fallback">⚠ The language model\'s answer was not used ({text(ans.fallback)}); '
                     "this is the extractive answer.</div>")
    if ans.cut:
        parts.append(f'<div class="fallback">✂ The model\'s reply was cut short: {text(ans.cut)}.</div>')
    if ans.abstained:
        parts.append(f'<div class="abstain">⚠ {text(ans.text)}</div>')
        closest = ans.closest()
        if closest:
            parts.append('<div class="src-list">Closest: ' + ", ".join(
                f"<code>{text(h.chunk.source)}</code> (similarity {h.dense_score or 0.0:.2f})" for h in closest
            ) + "</div>")
    else:
        extractive = ans.backend == "extractive"
        low = ans.confidence == "low"
        if low:
            label = LOW_LABEL if extractive else LOW_LABEL_UNSURE if all(
                c.verdict == "supported" for c in ans.sentences) else LOW_LABEL_GENERATED
            parts.append(f'<div class="low-label">{label}</div>')
        by_n = {c.n: c for c in ans.citations}
        if ans.sentences:  # an extractive answer's sentences are its quotes: the label says how sure it is
            body = " ".join(_claim(c, by_n, turn, flag=not extractive) for c in ans.sentences)
        else:  # an answer from elsewhere: link the markers in its text
            pieces = MARKER.split(ans.text)  # text, n, text, n, ..., text
            body = "".join(text(p) if i % 2 == 0 else _marker(int(p), by_n.get(int(p)), turn)
                           for i, p in enumerate(pieces))
        parts.append(f'<div class="answer{" low" if low else ""}">{body}</div>')
        by_source: dict[str, list[Citation]] = {}
        for c in ans.citations:
            by_source.setdefault(c.source, []).append(c)
        parts.append('<div class="src-list">' + "<br>".join(
            "".join(_marker(c.n, c, turn) for c in cs) + f" {text(cs[0].title)} · <code>{text(source)}</code>"
            for source, cs in by_source.items()
        ) + "</div>")
    if ans.standalone_question != ans.question:
        parts.append(f'<div class="standalone">Searched for: “{text(ans.standalone_question)}”</div>')
    return "\n".join(parts)


def _claim(claim: Claim, by_n: dict[int, Citation], turn: int, flag: bool = True) -> str:
    """One answer sentence with its linked markers; a sentence its passages do not support is flagged."""
    markers = "".join(_marker(n, by_n.get(n), turn) for n in claim.citations)
    if claim.attributed:  # the model cited nothing: the check found the passage this sentence copies
        markers = f'<span class="attributed" title="the model cited no passage; the check found the one this ' \
                  f'sentence copies">{markers}</span>'
    elif claim.judged:  # a paraphrase: the model, asked, said the quote says this
        markers = f'<span class="judged" title="in other words than the passage: the model judged that the ' \
                  f'quote says this">{markers}</span>'
    if claim.verdict == "supported" or not flag:
        return f"{text(claim.text)} {markers}".rstrip()
    why = ("no cited passage supports this sentence" if claim.verdict == "unsupported"
           else "the cited passage only partly supports this sentence")
    return f'<span class="claim {claim.verdict}" title="{why}">{text(claim.text)}</span> {markers}'.rstrip()


def _marker(n: int, citation: Citation | None, turn: int) -> str:
    if citation is None:
        return f"[{n}]"
    tip = html.escape(f"{citation.source}: {citation.quote}", quote=True)
    return f'<a class="cite" href="#{anchor(turn, n)}" title="{tip}">[{n}]</a>'


def sources(ans: Answer, turn: int, collection: str | None = None) -> str:
    """The sources panel for an answer: a card per citation with the quote highlighted in its passage (its
    link naming `collection`, when the answer comes from another than the server's).

    The cards of a low-confidence extractive answer say that the quote may not answer the question.
    For an abstention, the closest passages, best first, so the reader can judge for themselves.
    """
    chunks = {h.chunk.id: h.chunk for h in ans.hits}
    if ans.abstained:
        head = f'<p class="src-title abstain">No passage answers “{html.escape(ans.question)}”. Closest passages:</p>'
        cards = [_hit_card(h) for h in ans.closest()]
    else:
        checked = ans.backend != "extractive"  # extractive quotes are the answer itself: nothing to check
        low = ans.confidence == "low" and not checked
        if low:
            head = (f'<p class="src-title low">Closest evidence for “{html.escape(ans.question)}” '
                    "(low confidence)</p>")
        else:
            head = f'<p class="src-title">Sources for “{html.escape(ans.question)}”</p>'
        cards = [_citation_card(c, chunks.get(c.chunk_id), turn, checked, low, collection) for c in ans.citations]
    return head + "\n".join(cards)


def _tail(before: str, room: int = CONTEXT_CHARS) -> str:
    """The last `room` characters of the text before a quote, cut at a space."""
    return before if len(before) <= room else "…" + before[-room:].split(" ", 1)[-1]


def _head(after: str, room: int = CONTEXT_CHARS) -> str:
    """The first `room` characters of the text after a quote, cut at a space."""
    return after if len(after) <= room else after[:room].rsplit(" ", 1)[0] + "…"


def _where(chunk: Chunk | None) -> str:
    if chunk is None:
        return ""
    headings = [h for h in chunk.headings if h != chunk.title]
    bits = [" › ".join(headings)] if headings else []
    if chunk.page is not None:
        bits.append(f"page {chunk.page}")
    return f'<div class="src-where">{html.escape(" · ".join(bits))}</div>' if bits else ""


def _citation_card(c: Citation, chunk: Chunk | None, turn: int, checked: bool, low: bool = False,
                   collection: str | None = None) -> str:
    badge = f' <span class="verdict {c.verdict}">{c.verdict}</span>' if checked else ""
    note = f'<div class="src-note">{LOW_CARD_NOTE}</div>' if low else ""
    if chunk is not None and chunk.start <= c.start and c.end <= chunk.end:
        a, b = c.start - chunk.start, c.end - chunk.start
        passage = (html.escape(_tail(chunk.text[:a])) + f"<mark>{html.escape(chunk.text[a:b])}</mark>"
                   + html.escape(_head(chunk.text[b:])))
    else:  # the passage is not among the hits: show the quote alone
        passage = f"<mark>{html.escape(c.quote)}</mark>"
    return (
        f'<div class="src-card{" low" if low else ""}" id="{anchor(turn, c.n)}">'
        f'<div class="src-head"><span class="src-n">[{c.n}]</span> <b>{html.escape(c.title)}</b>'
        f' <span class="src-score">score {c.score:.2f}</span>{badge}</div>{note}'
        f'<div class="src-path"><code>{html.escape(c.source)}</code> characters {c.start}–{c.end}'
        f' · <a class="open-source" href="{html.escape(source_link(c.source, c.page, c.start, c.end, collection))}" '
        f'target="_blank" rel="noopener">open</a></div>'
        f"{_where(chunk)}<div class=\"src-text\">{passage}</div></div>"
    )


def _hit_card(hit: Hit) -> str:
    similarity = f"similarity {hit.dense_score:.2f}" if hit.dense_score is not None else ""
    return (
        f'<div class="src-card closest"><div class="src-head"><b>{html.escape(hit.chunk.title)}</b>'
        f' <span class="src-score">{similarity}</span></div>'
        f'<div class="src-path"><code>{html.escape(hit.chunk.source)}</code></div>'
        f'{_where(hit.chunk)}<div class="src-text">{html.escape(hit.chunk.text)}</div></div>'
    )


def status(info: Mapping[str, Any] | None, problem: str | None = None) -> str:
    """One line of HTML on what the index holds (and the files the last ingest could not read), or why there is none."""
    if info is None:
        return f"<b>No index yet.</b> {text(problem or '')} Upload documents below, or run <code>rag ingest</code>."
    last = str(info.get("last_ingest") or "never").replace("T", " ").replace("+00:00", " UTC")
    failed = info.get("failed") or {}
    problems = ""
    if failed:
        problems = (f' · <details class="failed"><summary><b>{len(failed)}</b> files could not be read</summary>'
                    f"{_file_list(failed)}</details>")
    skipped = skipped_summary(info.get("skipped") or {})
    if skipped:
        problems += f' · <span class="skipped" title="name them in .ragignore to leave them out">{text(skipped)}</span>'

    return (f"<b>{info['documents']}</b> documents · <b>{info['chunks']}</b> chunks · "
            f"model <code>{text(str(info['model']))}</code> · last ingest {text(last)}{problems}")


def failed(files: Mapping[str, str]) -> str:
    """The files the last ingest could not read, each with its reason (nothing when there are none)."""
    if not files:
        return ""
    return f'<p class="failed-title">Not indexed: the last ingest could not read these files</p>{_file_list(files)}'


def _file_list(files: Mapping[str, str]) -> str:
    """Files with their reasons, one list item each."""
    items = "".join(f"<li><code>{text(source)}</code>: {text(why)}</li>" for source, why in files.items())
    return f"<ul>{items}</ul>"


def watching(watch: Mapping[str, Any] | None) -> str:
    """The watched folders on the status line: what is pending, the last sync (nothing when not watching)."""
    if not watch:
        return ""
    now = "syncing…" if watch["syncing"] else f"{watch['pending']} changes pending" if watch["pending"] else "in step"
    last = str(watch.get("last_sync") or "not yet").replace("T", " ").replace("+00:00", " UTC")
    problem = f' · <span class="error">{text(watch["last_error"])}</span>' if watch.get("last_error") else ""
    folders = ", ".join(f"<code>{text(f)}</code>" for f in watch["folders"])
    return f'<div class="watching">👁 watching {folders} · {now} · last sync {text(last)}{problem}</div>'


def uploads(lines: Sequence[tuple[str, str, str]]) -> str:
    """One list item per uploaded file: its name, outcome and the reason."""
    icon = {"added": "✅", "updated": "✅", "unchanged": "➖", "refused": "⛔", "failed": "❌", "removed": "🗑"}
    items = "".join(f"<li>{icon.get(outcome, '')} <code>{text(name)}</code>: {outcome}"
                    f"{' · ' + text(why) if why else ''}</li>" for name, outcome, why in lines)
    return f'<ul class="uploads">{items}</ul>'


def source_link(source: str, page: int | None, start: int, end: int, collection: str | None = None) -> str:
    """Where a citation opens: a PDF at its page, any other document as text with the quote marked (in
    `collection`, when given: the routes otherwise look in the server's collection)."""
    quoted = quote(source, safe="/")
    named = f"collection={quote(collection, safe='')}" if collection else ""
    if source.lower().endswith(".pdf") and page:
        return f"/v1/documents/{quoted}/file{'?' + named if named else ''}#page={page}"
    return f"/v1/documents/{quoted}/view?start={start}&end={end}{'&' + named if named else ''}#quote"


def listing(assistant: Assistant, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """The indexed documents a page at a time, their total, and the files the last ingest could not read
    (as `GET /v1/documents` and the MCP tool `list_documents` return them)."""
    from ingest.library import uploaded  # the documents' ledger; rendering itself stays light to import

    documents = assistant.documents()
    uploads = uploaded(assistant.settings)
    page = list(documents.values())[offset:offset + limit]
    return {"documents": [document_json(r, r.source in uploads) for r in page], "total": len(documents),
            "offset": offset, "limit": limit, "failed": assistant.failed()}


def document_json(record: FileRecord, uploaded: bool) -> dict[str, Any]:
    """One indexed document as `GET /v1/documents` lists it."""
    return {"source": record.source, "title": record.title, "pages": record.pages or None, "chunks": record.chunks,
            "size": record.size or None, "uploaded": uploaded,
            "indexed_at": datetime.fromtimestamp(record.indexed_at, UTC).isoformat(timespec="seconds"),
            "file": f"/v1/documents/{quote(record.source, safe='/')}/file"}


# Served as themselves only where a browser shows them inertly; everything else as plain text or a download.
_INLINE = {"application/pdf", "image/png", "image/jpeg", "image/tiff", "text/plain", "text/markdown", "text/csv"}


def file_type(path: Path) -> tuple[str, str]:
    """The media type and disposition to serve an original file with (HTML as text: never run its scripts)."""
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if guessed == "text/html":
        return "text/plain; charset=utf-8", "inline"
    if guessed in _INLINE:
        return (f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed), "inline"
    return guessed, "attachment"


def document_page(record: FileRecord, body: str, start: int, end: int, current: bool) -> str:
    """A document's indexed text as a page, characters `start`-`end` marked and scrolled into view."""
    start, end = max(0, min(start, len(body))), max(0, min(end, len(body)))
    marked = start < end
    note = "" if current else ('<p class="note">The file changed since it was indexed: the marked characters '
                               "may no longer be the quoted ones. Re-index it to bring the index up to date.</p>")
    text_html = (html.escape(body[:start]) + '<mark id="quote">' + html.escape(body[start:end]) + "</mark>"
                 + html.escape(body[end:])) if marked else html.escape(body)
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(record.title or record.source)}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#18181b}"
        "pre{white-space:pre-wrap;font-family:inherit;line-height:1.5}mark{background:#fde68a;padding:0 2px}"
        ".note{color:#92400e}</style></head><body>"
        f"<h1>{html.escape(record.title or record.source)}</h1><p><code>{html.escape(record.source)}</code></p>"
        f"{note}<pre>{text_html}</pre>"
        "<script>const q=document.getElementById('quote');if(q)q.scrollIntoView({block:'center'});</script>"
        "</body></html>"
    )

