"""The commands a user works with: ingest, ask, chat, serve, mcp, watch, status, models export, documents."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError
from rag.settings import Settings
from ui.cli.output import Bar, print_answer

if TYPE_CHECKING:
    from rag.assistant import Assistant


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import dry_run, ingest
    from ingest.sources import skipped_summary

    paths = args.paths or [settings.corpus]
    if args.dry_run:
        plan = dry_run(paths, settings, args.rebuild)
        for label, items in (("add", [f.source for f in plan.add]), ("update", [f.source for f in plan.update]),
                             ("delete", plan.delete), ("unchanged", plan.unchanged)):
            for source in items:
                print(f"{label:9} {source}")
        for source, reason in plan.failed.items():
            print(f"{'fail':9} {source}: {reason}")
        print(f"dry run: would add {len(plan.add)}, update {len(plan.update)}, delete {len(plan.delete)}, "
              f"leave {len(plan.unchanged)} unchanged; {len(plan.failed)} unreadable. Nothing was changed.")
        if plan.skipped:
            print(skipped_summary(plan.skipped))
        return 1 if plan.failed else 0
    with Bar() as bar:
        report = ingest(paths, settings, rebuild=args.rebuild, progress=bar, cluster=args.cluster or settings.cluster)
    print(report.summary())
    return report.exit_code


def _open(args: argparse.Namespace) -> Assistant:
    """The assistant of the collection the command names (`--collection`), opened."""
    from rag.assistant import Assistant

    return Assistant.open(args.base_settings, collection=args.collection)


def ask(args: argparse.Namespace, settings: Settings) -> int:

    answer = _open(args).ask(args.question, k=args.k, mode=args.mode, sources=args.sources)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        print_answer(answer)
    return 0


def chat(args: argparse.Namespace, settings: Settings) -> int:

    assistant: Assistant = _open(args)
    history: list[dict[str, str]] = []
    print("Ask a question about your documents. /new starts over, an empty line or Ctrl-D quits.")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            return 0
        if question == "/new":
            history.clear()
            print("(new conversation)")
            continue
        partial = ""
        try:
            for piece in assistant.stream(question, history, k=args.k, mode=args.mode, sources=args.sources):
                if isinstance(piece, str):
                    print(piece, end="", flush=True)
                    partial += piece
                else:
                    print()
                    print_answer(piece, text=False)
        except KeyboardInterrupt:
            print("\n(interrupted)")
        except RagError as exc:
            print(f"{chr(10) if partial else ''}error: {exc}")
        if partial:  # kept even when interrupted, so that a follow-up can refer to it
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": partial}]


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from ui.server import serve

    if args.auth is not None:
        settings = Settings.load(auth=args.auth)  # the environment, with the login from the command line
    serve(settings, args.host, args.port, args.watch, args.collection)
    return 0


def mcp(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant
    from rag.errors import IndexMissingError
    from ui.mcp import serve_stdio

    assistant = Assistant(settings).collection(args.collection)
    assistant.warm_up()  # load the model before the client's first call
    try:
        print(f"rag mcp: {len(assistant.documents())} documents indexed; serving MCP on stdin/stdout",
              file=sys.stderr)
    except IndexMissingError as exc:  # each tool call says so until an ingest runs; other errors stop here
        print(f"warning: {exc}", file=sys.stderr)
    serve_stdio(assistant)
    return 0


def watch(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import Report
    from ingest.watch import Watcher

    def synced(report: Report | None, error: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {report.summary() if report else 'error: ' + error}", flush=True)
        if report is not None:
            for source, reason in report.failed.items():
                print(f"  failed: {source}: {reason}", flush=True)

    watcher = Watcher(args.paths or [settings.corpus], settings, on_sync=synced)
    # SIGTERM (a service manager's stop) ends the watch after the sync in progress, like Ctrl-C between syncs.
    signal.signal(signal.SIGTERM, lambda number, frame: watcher.stop())
    print(f"watching {', '.join(watcher.state.folders)}; Ctrl-C stops", flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a sync in progress stops; the next run completes it
        watcher.run()
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.sources import skipped_summary

    status = _open(args).status()
    if args.json:
        print(json.dumps(status))
    else:
        failed = status.pop("failed", {})
        skipped = status.pop("skipped", {})
        for key, value in status.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            print(f"{key:12} {value}")
        print(f"{'failed':12} {len(failed)} files in the last ingest" + (":" if failed else ""))
        for source, reason in failed.items():
            print(f"  {source}: {reason}")
        print(f"{'skipped':12} {skipped_summary(skipped) or 'no files of formats not read'}")
    return 0


def collections(args: argparse.Namespace, settings: Settings) -> int:
    from rag.collections import Collections
    from rag.index.store import Store

    registry = Collections(settings)
    if args.action == "create":
        made = registry.create(args.name, args.corpus)
        print(f"created collection {made.name}: `rag ingest --collection {made.name}` reads {made.corpus}")
    elif args.action == "rename":
        print(f"renamed {args.name} to {registry.rename(args.name, args.new_name).name}")
    elif args.action == "remove":
        gone = registry.remove(args.name)
        print(f"removed collection {gone.name} and its index; "
              + (f"{gone.corpus} stays" if gone.corpus.exists() else "its corpus folder went with it"))
    else:
        listed = []
        for collection in registry.list():
            store = Store(registry.settings_of(collection))
            listed.append({"name": collection.name, "corpus": str(collection.corpus),
                           "documents": store.open().file_count() if store.active() is not None else 0})
        if args.json:
            print(json.dumps(listed, ensure_ascii=False))
        for item in listed if not args.json else []:
            print(f"{item['name']:20} {item['documents']:6} documents  {item['corpus']}")
    return 0


def users(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from rag.collections import Collections
    from ui.people import EVERY, People

    people = People(settings.users)
    registry = Collections(settings)

    def key(collection: str) -> str:
        return EVERY if collection == EVERY else registry.get(collection).key

    def password() -> str:
        if args.password_stdin:
            return sys.stdin.readline().rstrip("\n")
        first = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != first:
            raise RagError("the two passwords differ; try again")
        return first

    if args.action == "add":
        people.add(args.name, password())
        if args.admin:
            people.grant(args.name, EVERY, "admin")
        print(f"added {args.name}" + (" (admin of every collection)" if args.admin else
                                      f"; give them a role: rag users grant {args.name} COLLECTION reader"))
    elif args.action == "password":
        people.set_password(args.name, password())
        print(f"set the password of {args.name}")
    elif args.action == "remove":
        people.remove(args.name)
        print(f"removed {args.name}, their roles and their tokens")
    elif args.action == "grant":
        people.grant(args.name, key(args.collection), args.role)
        print(f"{args.name} is {args.role} of {args.collection}")
    elif args.action == "revoke":
        done = people.revoke(args.name, key(args.collection))
        print(f"{args.name} has no role on {args.collection}" + ("" if done else " (had none)"))
    elif args.action == "token":
        if args.revoke:
            people.revoke_token(args.revoke)
            print(f"revoked token {args.revoke}: it stops working at once")
        elif args.name is None:
            raise RagError("name the user the token is for: rag users token NAME")
        else:
            made, token = people.new_token(args.name, args.label)
            print(token)
            print(f"token {made.id} for {made.user}: shown this once, kept only as a hash; send it as "
                  "`Authorization: Bearer <token>`", file=sys.stderr)
    elif args.action == "tokens":
        tokens = people.tokens(args.name)
        if args.json:
            print(json.dumps([vars(t) for t in tokens]))
        for t in tokens if not args.json else []:
            used = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.last_used)) if t.last_used else "never"
            print(f"{t.id}  {t.user:20} {t.label or '-':20} last used {used}")
    else:
        names = {c.key: c.name for c in registry.list()} | {EVERY: EVERY}
        roles = {u.name: {names.get(k, f"(removed {k})"): r for k, r in u.roles.items()} for u in people.users()}
        if args.json:
            print(json.dumps([{"name": name, "roles": held} for name, held in roles.items()], ensure_ascii=False))
        for name, held in roles.items() if not args.json else []:
            print(f"{name:20} {', '.join(f'{r} of {c}' for c, r in sorted(held.items())) or 'no role yet'}")
    return 0


def models_export(args: argparse.Namespace, settings: Settings) -> int:
    from rag.embedding import embedder_for, model_path
    from rag.onnx_model import onnx_file

    backends = ["onnx", "onnx-int8"] if args.backend == "all" else [args.backend]
    folder = Path(model_path(settings.embed_model))
    if not folder.is_dir():
        raise RagError(f"RAG_EMBED_MODEL: {settings.embed_model!r} is not a local model folder; give one")
    for backend in backends:
        began = time.perf_counter()
        path = onnx_file(folder, settings.models, backend == "onnx-int8")
        chosen = settings.model_copy(update={"embed_backend": backend})
        dimension = embedder_for(chosen).dimension  # loads it: the graph runs
        print(f"{backend}: {path} ({path.stat().st_size / 2**20:.0f} MiB, {dimension} dimensions, "
              f"{time.perf_counter() - began:.1f} s)")
    return 0


def documents(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import library
    from ui.render import document_json

    assistant = _open(args)
    for source in args.remove:
        print(f"removed {source}: {library.remove_document(assistant, source).detail}")
    for source in args.reindex:
        print(f"read {source} again: {library.reindex_document(assistant, source).summary()}")
    if args.remove or args.reindex:
        return 0
    if args.text is not None:
        record, text, current = library.document_text(assistant, args.text)
        if args.json:
            print(json.dumps({"source": record.source, "title": record.title, "current": current, "text": text},
                             ensure_ascii=False))
        else:
            print(text)
            if not current:
                print("(the file changed since it was indexed: this is its text now; run `rag ingest` to index it)",
                      file=sys.stderr)
        return 0
    uploaded = library.uploaded(settings)
    listed = [document_json(record, source in uploaded) for source, record in assistant.documents().items()]
    if args.json:
        print(json.dumps(listed, ensure_ascii=False))
        return 0
    for doc in listed:
        pages = f"{doc['pages']} pages, " if doc["pages"] else ""
        size = f"{doc['size'] / 1024:.0f} KB, " if doc["size"] else ""
        print(f"{doc['source']}  {doc['title']!r}  ({pages}{doc['chunks']} chunks, {size}indexed {doc['indexed_at']})")
    print(f"{len(listed)} documents")
    return 0
