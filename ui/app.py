"""`build_app(assistant)`: the Gradio chat page. It is built on call and never launched here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr

from ingest.ocr import ocr_for
from ingest.readers import supported
from ingest.watch import Watcher
from rag.assistant import Assistant
from rag.errors import RagError
from ui.access import Access, Refused
from ui.handlers import SOURCES_PLACEHOLDER, CallbackProgress, Handlers, Message

CSS = """
#sources { max-height: 80vh; overflow-y: auto; }
.src-title { font-weight: 600; margin: 0 0 .5em; }
.src-title.abstain, .abstain { color: #9a3412; }
.abstain { border-left: 4px solid #f97316; background: #fff7ed; padding: .4em .7em; border-radius: 4px; }
.error { border-left: 4px solid #dc2626; background: #fef2f2; color: #991b1b; padding: .4em .7em; }
.src-card { border: 1px solid #d4d4d8; border-radius: 6px; padding: .5em .7em; margin-bottom: .6em; }
.src-card.flash { outline: 3px solid #2563eb; }
.src-card.closest { border-style: dashed; }
.src-head .src-n { font-weight: 700; color: #2563eb; }
.src-score, .src-path, .src-where { font-size: .85em; color: #52525b; }
.src-text { white-space: pre-wrap; font-size: .9em; margin-top: .3em; }
.src-text mark { background: #fde68a; padding: 0 .1em; }
.src-list { font-size: .85em; color: #52525b; margin-top: .5em; }
.standalone { font-size: .85em; font-style: italic; color: #52525b; margin-top: .3em; }
.claim.unsupported { background: #fee2e2; text-decoration: underline wavy #dc2626; }
.claim.weak { background: #fef9c3; }
.verdict { font-size: .8em; padding: 0 .4em; border-radius: 3px; }
.verdict.supported { background: #dcfce7; color: #166534; }
.verdict.weak { background: #fef9c3; color: #854d0e; }
.verdict.unsupported { background: #fee2e2; color: #991b1b; }
.fallback { font-size: .85em; color: #9a3412; margin-bottom: .3em; }
.attributed a.cite { text-decoration: underline dotted; }
.low-label { font-size: .85em; font-weight: 600; color: #52525b; margin-bottom: .2em; }
.low-label::before { content: "◌ "; }
.answer.low { color: #52525b; font-style: italic; border-left: 4px solid #a1a1aa; padding-left: .6em; }
.src-title.low { color: #52525b; }
.src-card.low { border-style: dotted; background: #fafafa; }
.src-note { font-size: .85em; font-style: italic; color: #71717a; }
a.cite { font-weight: 700; text-decoration: none; color: #2563eb; cursor: pointer; }
"""

# A click on [n] in an answer scrolls its source card into view and flashes it.
HEAD = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.cite");
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.hash.slice(1));  // the chat's sanitizer drops data-* attributes
  if (!card) return;
  card.scrollIntoView({behavior: "smooth", block: "center"});
  card.classList.add("flash");
  setTimeout(() => card.classList.remove("flash"), 1500);
}, true);
</script>"""


def build_app(assistant: Assistant, watcher: Watcher | None = None, access: Access | None = None) -> Any:
    """The chat page: chat with streamed, cited answers beside a sources panel; status, examples, upload.

    With `access` requiring a login, each event is held to the logged-in user's role on the page's
    collection: reader to ask and list, editor to add, remove and read again."""
    handlers = Handlers(assistant, watcher)
    settings = assistant.settings

    def allow(request: gr.Request | None, role: str) -> None:
        if access is None or not access.required():
            return
        name = getattr(request, "username", None) or ""
        try:
            person = access.person(name) if name else None
        except Refused:
            person = None
        if person is None or not person.may(assistant.collection_key, role):
            raise gr.Error(f"{role}s only: your login may not do this here; ask an admin")

    def ask(question: str, shown: list[Message], history: list[Message], k: float, mode: str,
            only: list[str] | None, request: gr.Request) -> Iterator[tuple[str, list[Message], list[Message], Any]]:
        """Clear the box at once, then stream the answer into the chat and fill the sources panel."""
        allow(request, "reader")
        if not question.strip():
            yield "", shown, history, gr.skip()
            return
        for chat, conversation, panel in handlers.ask(question, shown, history, int(k), mode, only):
            yield "", chat, conversation, panel or gr.skip()

    def listing(only: list[str] | None = None, request: gr.Request | None = None) -> tuple[Any, Any, Any, str, str]:
        """The documents table, both pickers and the unread files, refreshed (a picked document that is
        gone is dropped)."""
        allow(request, "reader")
        rows, sources, unread = handlers.documents()
        kept = [s for s in only or [] if s in sources]
        return (gr.update(value=rows), gr.update(choices=sources, value=kept),
                gr.update(choices=sources, value=None), unread, handlers.status())

    def upload(paths: list[str] | None, replace: bool, only: list[str] | None, request: gr.Request,
               progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        allow(request, "editor")
        lines = handlers.upload(paths, replace, CallbackProgress(lambda f, d: progress(f, desc=d)))
        return lines, None, *listing(only, request)

    def remove(source: str | None, only: list[str] | None, request: gr.Request) -> tuple[Any, ...]:
        allow(request, "editor")
        return handlers.remove(source), *listing(only, request)

    def reindex(source: str | None, only: list[str] | None, request: gr.Request,
                progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        allow(request, "editor")
        return handlers.reindex(source, CallbackProgress(lambda f, d: progress(f, desc=d))), *listing(only, request)

    def api_ask(question: str, history: list[dict[str, str]] | None = None, k: int | None = None,
                request: gr.Request | None = None) -> dict[str, Any]:
        """Answer a question (history: earlier {"role", "content"} turns); the same JSON as `rag ask --json`."""
        allow(request, "reader")
        try:
            return assistant.ask(question, history, k=k).to_dict()
        except RagError as exc:
            raise gr.Error(str(exc)) from None  # shown to the caller (other exceptions are hidden)

    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        history = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Markdown("## Ask your documents\nEvery answer quotes the passages it rests on; "
                            "click a [n] to see the sentence in its source.")
                status = gr.HTML(elem_id="status")
                chat = gr.Chatbot(elem_id="chat", height=480, show_label=False, feedback_options=None,
                                  buttons=["copy"], placeholder="Ask a question about the indexed documents.")
                with gr.Row():
                    box = gr.Textbox(show_label=False, placeholder="Ask a question…", scale=6, elem_id="question",
                                     autofocus=True, max_lines=4)
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                    new = gr.Button("New chat", scale=1, elem_id="new-chat")
                examples = handlers.examples()
                if examples:  # no block at all rather than questions the documents cannot answer
                    gr.Examples(examples, inputs=box, label="Example questions", elem_id="examples")
                with gr.Accordion("Settings", open=False):
                    only = gr.Dropdown([], multiselect=True, label="Answer only from these documents (none: all)",
                                       elem_id="only")
                    k = gr.Slider(1, 20, value=settings.k, step=1, label="Passages to retrieve", elem_id="k")
                    mode = gr.Radio(["hybrid", "dense", "bm25"], value=settings.mode, label="Retrieval mode",
                                    elem_id="mode")
                with gr.Accordion("Documents", open=False, elem_id="documents"):
                    table = gr.Dataframe(headers=["source", "title", "pages", "chunks", "KB", "indexed (UTC)"],
                                         interactive=False, elem_id="documents-table", wrap=True)
                    with gr.Row():
                        picked = gr.Dropdown([], label="Document", elem_id="document", scale=3)
                        reread = gr.Button("Read again", elem_id="reindex", scale=1)
                        drop = gr.Button("Remove from the index", variant="stop", elem_id="remove", scale=1)
                    managed = gr.HTML(elem_id="documents-result")
                    unread = gr.HTML(elem_id="documents-failed")
                with gr.Accordion("Add documents", open=False, elem_id="add-documents"):
                    formats = supported(ocr_for(settings))
                    files = gr.File(file_count="multiple", file_types=list(formats), elem_id="upload",
                                    label=f"{' '.join(formats)} · up to {settings.max_file_mb:g} MB each")
                    replace = gr.Checkbox(label="Replace documents that have the same name", value=False)
                    add = gr.Button("Add to the index", elem_id="add")
                    result = gr.HTML(elem_id="upload-result")
            with gr.Column(scale=2):
                sources = gr.HTML(SOURCES_PLACEHOLDER, elem_id="sources")

        gr.on([box.submit, send.click], ask, [box, chat, history, k, mode, only], [box, chat, history, sources],
              api_name="chat")
        lists = [table, only, picked, unread, status]
        # Removal asks first: a cancelled confirmation sends no document, which removes nothing.
        drop.click(remove, [picked, only], [managed, *lists], concurrency_limit=1, api_visibility="private",
                   js="(source, only) => [source && confirm('Remove ' + source + ' from the index for good? "
                      "An uploaded file is deleted; any other file is added to its folder\\'s .ragignore.') "
                      "? source : null, only]")
        reread.click(reindex, [picked, only], [managed, *lists], concurrency_limit=1, api_visibility="private")
        new.click(lambda: ([], [], SOURCES_PLACEHOLDER), None, [chat, history, sources], queue=False,
                  api_visibility="private")
        add.click(upload, [files, replace, only], [result, files, *lists], concurrency_limit=1, api_name="upload")
        def shown_status(request: gr.Request) -> str:
            allow(request, "reader")
            return handlers.status()

        app.load(shown_status, None, status, queue=False, api_name="status")
        app.load(listing, None, lists, queue=False, api_visibility="private")
        gr.api(api_ask, api_name="ask")  # type: ignore[attr-defined]
    app.queue(default_concurrency_limit=settings.concurrency)
    return app
