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
from rag.collections import CollectionError
from rag.errors import RagError
from rag.types import Answer
from ui import render
from ui.access import ANYONE, Access, Person, Refused
from ui.conversations import Conversations
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
.judged a.cite { text-decoration: underline dashed; }
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
    """The chat page: chat with streamed, cited answers beside a sources panel; status, examples, upload; a
    picker of the collections the user may read and their saved conversations.

    With `access` requiring a login, each event is held to the logged-in user's role on the chosen
    collection: reader to ask and list, editor to add, remove and read again."""
    settings = assistant.settings
    saved = Conversations(assistant.base_settings.users)
    home = Handlers(assistant, watcher)  # the server's collection: examples, and its watch in the status line

    def person(request: gr.Request | None) -> Person:
        if access is None or not access.required():
            return ANYONE
        name = getattr(request, "username", None) or ""
        try:
            return access.person(name) if name else Person("")
        except Refused:
            return Person("")

    def handlers(collection: str | None, request: gr.Request | None, role: str = "reader") -> Handlers:
        """The page's behaviour over the chosen collection, if the user holds `role` on it."""
        who = person(request)
        try:
            chosen = access.collection(who, assistant, collection, role) if access is not None \
                else assistant.collection(collection)
        except (CollectionError, Refused) as exc:
            raise gr.Error(str(exc)) from None
        return home if chosen is assistant else Handlers(chosen, collection=chosen.collection_name)

    def user(request: gr.Request | None) -> str:
        return getattr(request, "username", None) or ""

    def conversations(collection: str | None, request: gr.Request | None, value: str | None = None) -> Any:
        chosen = handlers(collection, request).assistant
        listed = saved.of(user(request), {chosen.collection_key})
        return gr.update(choices=[(c.title, c.id) for c in listed], value=value)

    def ask(question: str, shown: list[Message], history: list[Message], k: float, mode: str,
            only: list[str] | None, collection: str | None, conversation: str | None,
            request: gr.Request) -> Iterator[tuple[Any, ...]]:
        """Clear the box at once, then stream the answer into the chat and fill the sources panel; save the
        turn in the conversation (a new one on its first question)."""
        page = handlers(collection, request)
        if not question.strip():
            yield "", shown, history, gr.skip(), conversation
            return
        kept = [conversation]

        def keep(answer: Answer) -> None:  # before the last piece is shown: that piece carries the id
            who = user(request)
            ident = kept[0] or saved.start(who, page.assistant.collection_key, question)
            saved.add(who, ident, question, answer.to_dict())
            kept[0] = ident

        for chat, turns, panel in page.ask(question, shown, history, int(k), mode, only, keep=keep):
            yield "", chat, turns, panel or gr.skip(), kept[0]

    def listed(collection: str | None, conversation: str | None, request: gr.Request) -> Any:
        return conversations(collection, request, conversation)

    def reopen(conversation: str | None, collection: str | None, request: gr.Request) -> tuple[Any, ...]:
        """A saved conversation back in the chat: its questions and answers (their quotes in plain text)."""
        if not conversation:
            return gr.skip(), gr.skip(), None, SOURCES_PLACEHOLDER
        handlers(collection, request)  # still readable
        try:
            _, turns = saved.get(user(request), conversation)
        except RagError as exc:
            raise gr.Error(str(exc)) from None
        shown = [m for q, a in turns for m in ({"role": "user", "content": render.text(q)},
                                              {"role": "assistant", "content": render.text(a.get("answer", ""))})]
        raw = [m for q, a in turns for m in ({"role": "user", "content": q},
                                            {"role": "assistant", "content": a.get("answer", "")})]
        return shown, raw, conversation, SOURCES_PLACEHOLDER

    def listing(only: list[str] | None = None, collection: str | None = None,
                request: gr.Request | None = None) -> tuple[Any, Any, Any, str, str]:
        """The documents table, both pickers and the unread files, refreshed (a picked document that is
        gone is dropped)."""
        page = handlers(collection, request)
        rows, sources, unread = page.documents()
        kept = [s for s in only or [] if s in sources]
        return (gr.update(value=rows), gr.update(choices=sources, value=kept),
                gr.update(choices=sources, value=None), unread, page.status())

    def start(request: gr.Request) -> tuple[Any, ...]:
        """The page as it opens: the collections this user may read (the server's first), and its lists."""
        who = person(request)
        names = access.readable(who, assistant) if access is not None else assistant.collections()
        own = assistant.collection_name
        chosen = own if own in names else (names[0] if names else None)
        if chosen is None:
            raise gr.Error("your login may not read any collection here; ask an admin")
        return (gr.update(choices=names, value=chosen), conversations(chosen, request),
                *listing(None, chosen, request))

    def switch(collection: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Another collection: a new chat over it, its documents and conversations."""
        return ([], [], None, SOURCES_PLACEHOLDER, conversations(collection, request),
                *listing(None, collection, request))

    def upload(paths: list[str] | None, replace: bool, only: list[str] | None, collection: str | None,
               request: gr.Request, progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        lines = handlers(collection, request, "editor").upload(
            paths, replace, CallbackProgress(lambda f, d: progress(f, desc=d)))
        return lines, None, *listing(only, collection, request)

    def remove(source: str | None, only: list[str] | None, collection: str | None,
               request: gr.Request) -> tuple[Any, ...]:
        return handlers(collection, request, "editor").remove(source), *listing(only, collection, request)

    def reindex(source: str | None, only: list[str] | None, collection: str | None, request: gr.Request,
                progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        page = handlers(collection, request, "editor")
        return page.reindex(source, CallbackProgress(lambda f, d: progress(f, desc=d))), \
            *listing(only, collection, request)

    def api_ask(question: str, history: list[dict[str, str]] | None = None, k: int | None = None,
                request: gr.Request | None = None) -> dict[str, Any]:
        """Answer a question (history: earlier {"role", "content"} turns); the same JSON as `rag ask --json`."""
        page = handlers(None, request)
        try:
            return page.assistant.ask(question, history, k=k).to_dict()
        except RagError as exc:
            raise gr.Error(str(exc)) from None  # shown to the caller (other exceptions are hidden)

    def shown_status(collection: str | None, request: gr.Request) -> str:
        return handlers(collection, request).status()

    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        history = gr.State([])
        conversation = gr.State(None)  # the saved conversation this chat adds to (None: a new one)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Markdown("## Ask your documents\nEvery answer quotes the passages it rests on; "
                            "click a [n] to see the sentence in its source.")
                with gr.Row():
                    collection = gr.Dropdown([assistant.collection_name], value=assistant.collection_name,
                                             label="Collection", elem_id="collection", scale=1)
                    saved_list = gr.Dropdown([], label="Saved conversations (newest first)", elem_id="conversations",
                                             scale=2)
                status = gr.HTML(elem_id="status")
                chat = gr.Chatbot(elem_id="chat", height=480, show_label=False, feedback_options=None,
                                  buttons=["copy"], placeholder="Ask a question about the indexed documents.")
                # The question takes the column's width; the buttons sit under it.
                box = gr.Textbox(show_label=False, placeholder="Ask a question…", elem_id="question",
                                 autofocus=True, max_lines=4)
                with gr.Row():
                    send = gr.Button("Ask", variant="primary", elem_id="ask", min_width=80)
                    new = gr.Button("New chat", elem_id="new-chat", min_width=80)
                examples = home.examples()
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

        asked = gr.on([box.submit, send.click], ask, [box, chat, history, k, mode, only, collection, conversation],
                      [box, chat, history, sources, conversation], api_name="chat")
        asked.then(listed, [collection, conversation], saved_list, api_visibility="private")
        lists = [table, only, picked, unread, status]
        # Removal asks first: a cancelled confirmation sends no document, which removes nothing.
        drop.click(remove, [picked, only, collection], [managed, *lists], concurrency_limit=1,
                   api_visibility="private",
                   js="(source, only, collection) => [source && confirm('Remove ' + source + ' from the index for "
                      "good? An uploaded file is deleted; any other file is added to its folder\\'s .ragignore.') "
                      "? source : null, only, collection]")
        reread.click(reindex, [picked, only, collection], [managed, *lists], concurrency_limit=1,
                     api_visibility="private")
        new.click(lambda: ([], [], SOURCES_PLACEHOLDER, None, None), None,
                  [chat, history, sources, conversation, saved_list], queue=False, api_visibility="private")
        add.click(upload, [files, replace, only, collection], [result, files, *lists], concurrency_limit=1,
                  api_name="upload")
        collection.input(switch, [collection], [chat, history, conversation, sources, saved_list, *lists],
                         api_visibility="private")
        saved_list.input(reopen, [saved_list, collection], [chat, history, conversation, sources],
                         api_visibility="private")
        app.load(start, None, [collection, saved_list, *lists], queue=False, api_visibility="private")
        app.load(shown_status, [collection], status, queue=False, api_name="status")
        gr.api(api_ask, api_name="ask")  # type: ignore[attr-defined]
    app.queue(default_concurrency_limit=settings.concurrency)
    return app
