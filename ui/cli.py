"""The `rag` command: ingest, ask, chat, serve, status, eval, bench: the composition root, above `ingest` and `ui`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, get_args

from rag.errors import RagError
from rag.settings import EmbedBackend, Settings, credentials
from rag.types import MODES

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.types import Answer


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 some files failed, 2 usage or settings, 3 bug)."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
        return int(args.run(args, settings))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rag ... | head` stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second complaint at exit
        return 0
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        print(f"error: unexpected {type(exc).__name__}: {exc}; please report this", file=sys.stderr)
        return 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of your documents; get cited answers.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="index documents (default: the corpus folder)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: RAG_CORPUS)")
    p.add_argument("--rebuild", action="store_true", help="build a fresh index and swap it in when complete")
    p.add_argument("--dry-run", action="store_true", help="print what would change and touch nothing")
    p.set_defaults(run=_ingest)

    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _retrieval_options(p)
    p.set_defaults(run=_ask)

    p = sub.add_parser("chat", help="ask questions in a conversation (follow-ups understood)")
    _retrieval_options(p)
    p.set_defaults(run=_chat)

    p = sub.add_parser("serve", help="serve the chat page at / and the HTTP API at /v1")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="port (default: 7860)")
    p.add_argument("--auth", metavar="USER:PASS", default=None,
                   help="require this login for the page and the API (default: RAG_AUTH)")
    p.add_argument("--watch", nargs="*", type=Path, default=None, metavar="PATH",
                   help="keep the index in step with these folders while serving (none given: RAG_CORPUS)")
    p.set_defaults(run=_serve)

    p = sub.add_parser("mcp", help="serve the documents to an MCP client (an agent or desktop assistant) over "
                                   "stdin/stdout; `rag serve` offers the same at /mcp")
    p.set_defaults(run=_mcp)

    p = sub.add_parser("watch", help="keep the index in step with folders: index changes as they happen")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="folders (default: RAG_CORPUS)")
    p.set_defaults(run=_watch)

    p = sub.add_parser("eval", help="measure retrieval and answer quality (public data or your own questions)")
    kinds = p.add_subparsers(required=True, metavar="KIND")
    e = kinds.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on a BEIR folder")
    e.add_argument("--beir", type=Path, required=True, metavar="DIR",
                   help="folder with corpus.jsonl, queries.jsonl, qrels/test.tsv")
    e.add_argument("--mode", choices=[*MODES, "all"], default="all")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=_eval_retrieval)
    e = kinds.add_parser("answers", help="answer quality and abstention on SQuAD-format data")
    e.add_argument("--squad", type=Path, required=True, metavar="FILE", help="a SQuAD v1.1 JSON file")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=_eval_answers)
    e = kinds.add_parser("golden", help="your own questions (JSON lines) against the current index, or an "
                                        "evaluation index of --docs and --squad")
    e.add_argument("file", type=Path, metavar="FILE.jsonl",
                   help='lines of {"question", "answer"?, "source"?, "answerable"?, "history"?, "split"?}')
    e.add_argument("--docs", type=Path, action="append", default=[], metavar="DIR",
                   help="index this folder into an evaluation index of its own (repeatable)")
    e.add_argument("--squad", type=Path, default=None, metavar="FILE",
                   help="also index a SQuAD file's paragraphs there, as squad/aNNN-pNN.md")
    e.add_argument("--split", default=None, metavar="NAME", help='ask only the lines whose "split" is NAME')
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=_eval_golden)

    e = kinds.add_parser("reading", help="extraction debris per 1,000 characters of each document under a "
                                         "folder (ligatures, hyphens, broken lines, headers; nothing indexed)")
    e.add_argument("folder", type=Path, metavar="DIR")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=_eval_reading)

    e = kinds.add_parser("selector", help="the answer selector against the embedding model's cosine: WikiQA "
                                          "test MAP/MRR, sentence choice within SQuAD paragraphs")
    e.add_argument("--wikiqa", type=Path, metavar="DIR", help="WikiQA folder with test/ (a.toks, b.toks, sim.txt)")
    e.add_argument("--squad", type=Path, metavar="FILE", help="a SQuAD-format file, e.g. XQuAD")
    e.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="a selector folder (default: the shipped one)")
    e.set_defaults(run=_eval_selector)

    e = kinds.add_parser("fit", help="fit the extractive answerer's models from SQuAD data and golden files "
                                     "(prints rag/answer/weights.py's constants)")
    e.add_argument("--squad", type=Path, required=True, metavar="FILE", help="a SQuAD v1.1 file (e.g. XQuAD)")
    e.add_argument("--golden", type=Path, action="append", default=[], metavar="FILE.jsonl",
                   help='golden questions whose "split": "tune" lines are used (repeatable)')
    e.add_argument("--docs", type=Path, action="append", default=[], metavar="DIR",
                   help="the documents of golden files not about the SQuAD file (repeatable)")
    e.add_argument("--json", action="store_true", help="print everything as JSON")
    e.set_defaults(run=_eval_fit)

    p = sub.add_parser("train", help="train a model that ships in rag/models from public data (tens of minutes)")
    kinds = p.add_subparsers(required=True, metavar="MODEL")
    t = kinds.add_parser("selector", help="the answer selector (a cross-encoder) from SQuAD-format and WikiQA data")
    t.add_argument("--squad", type=Path, action="append", default=[], metavar="FILE",
                   help="SQuAD v1.1/v2.0 training file (repeatable; never XQuAD or SQuAD dev: those measure)")
    t.add_argument("--squad-explorer", type=Path, metavar="DIR",
                   help="the SQuAD explorer's article pages (explore/1.1/train of rajpurkar/SQuAD-explorer)")
    t.add_argument("--wikiqa", type=Path, metavar="DIR", help="WikiQA folder with train/ (and dev/ for the int8 check)")
    t.add_argument("--out", type=Path, default=Path(".rag/train/selector"), metavar="DIR",
                   help="checkpoints (a run stopped and started again resumes here)")
    t.add_argument("--target", type=Path, default=None, metavar="DIR",
                   help="where the ONNX model and its card go (default: rag/models/selector in this checkout)")
    t.add_argument("--epochs", type=float, default=1.0)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=4e-5)
    t.add_argument("--seed", type=int, default=13)
    t.add_argument("--max-pairs", type=int, default=None, metavar="N",
                   help="train on a random sample of N pairs of answered SQuAD questions (unanswerable and "
                        "WikiQA pairs are all kept)")
    t.set_defaults(run=_train_selector)

    p = sub.add_parser("bench", help="speed figures: ingest throughput, query latency, startup (never asserted)")
    kinds = p.add_subparsers(required=True, metavar="KIND")
    scifact = Path("../shared/bench-data/scifact")
    b = kinds.add_parser("ingest", help="pipeline chunks/s against a bare model encode of the same chunks")
    b.add_argument("--beir", type=Path, default=scifact, metavar="DIR", help=f"BEIR folder (default: {scifact})")
    b.add_argument("--docs", type=_positive, default=400, help="documents to ingest (default: 400)")
    b.add_argument("--runs", type=_positive, default=3, help="rounds; medians are reported (default: 3)")
    _backends_option(b)
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_bench, run_kind="ingest")
    b = kinds.add_parser("query", help="warm retrieve/answer latency at growing index sizes")
    b.add_argument("--beir", type=Path, default=scifact, metavar="DIR", help=f"BEIR folder (default: {scifact})")
    b.add_argument("--sizes", default="1000,10000,100000", help="chunk counts (default: 1000,10000,100000)")
    b.add_argument("--questions", type=_positive, default=100, help="questions timed per size (default: 100)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_bench, run_kind="query")
    b = kinds.add_parser("startup", help="seconds from `rag ask` starting to its answer, on the current index")
    b.add_argument("--question", default="How many 910C processors will Huawei make?")
    b.add_argument("--runs", type=_positive, default=5)
    _backends_option(b)
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_bench, run_kind="startup")
    b = kinds.add_parser("load", help="many clients asking a running `rag serve` at once: errors, req/s, "
                                      "latency, server RSS")
    b.add_argument("--url", default="http://127.0.0.1:7860", help="the server (default: http://127.0.0.1:7860)")
    b.add_argument("--clients", type=_positive, default=20, help="clients asking at once (default: 20)")
    b.add_argument("--questions", type=_positive, default=10, help="questions each client asks (default: 10)")
    b.add_argument("--questions-file", type=Path, default=None, metavar="FILE.jsonl",
                   help="golden-format questions, cycled (default: golden.jsonl in RAG_CORPUS)")
    b.add_argument("--auth", metavar="USER:PASS", default=None,
                   help="the server's login (default: bearer RAG_API_TOKEN if set)")
    b.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default: 120)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=_bench, run_kind="load")

    p = sub.add_parser("status", help="what the index holds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_status)

    p = sub.add_parser("models", help="prepare the embedding model for the ONNX backends")
    models = p.add_subparsers(required=True, metavar="ACTION")
    m = models.add_parser("export", help="export the embedding model to ONNX (and int8) under RAG_HOME/models now, "
                                         "instead of on first use")
    m.add_argument("--backend", choices=["onnx", "onnx-int8", "all"], default="all")
    m.set_defaults(run=_models_export)

    p = sub.add_parser("documents", help="list the indexed documents; remove one for good, or read one again")
    p.add_argument("--remove", action="append", default=[], metavar="SOURCE",
                   help="take this document out of the index for good (an upload is deleted, another file "
                        "added to its folder's .ragignore); repeatable")
    p.add_argument("--reindex", action="append", default=[], metavar="SOURCE",
                   help="read this document again from its file, even if unchanged; repeatable")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_documents)
    return parser


def _retrieval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=_positive, default=None, help="passages to retrieve (default: RAG_K)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="retrieval mode (default: RAG_MODE)")
    p.add_argument("--source", action="append", default=None, metavar="GLOB", dest="sources",
                   help="answer only from the documents this matches: the source (corpus/notes/*.md) or its "
                        "file name (*.pdf); repeatable")


def _backends_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", default=None, metavar="LIST",
                   help="embedding backends to measure side by side, comma-separated: torch, onnx, onnx-int8 "
                        "(default: RAG_EMBED_BACKEND)")


def _backends(text: str | None, settings: Settings) -> list[EmbedBackend]:
    if text is None:
        return [settings.embed_backend]
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = get_args(EmbedBackend)
    wrong = [name for name in names if name not in known]
    if wrong or not names:
        raise RagError(f"--backends: {', '.join(wrong) or '(none)'} is not a backend; use {', '.join(known)}")
    return cast("list[EmbedBackend]", names)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return int(text)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import dry_run, ingest

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
        return 1 if plan.failed else 0
    with _Bar() as bar:
        report = ingest(paths, settings, rebuild=args.rebuild, progress=bar)
    print(report.summary())
    return report.exit_code


class _Bar:
    """A rich progress bar with ETA on a terminal; on a pipe, only the failure lines."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                                      TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                      console=self.console, transient=True)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, phase: str, total: int) -> None:
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(phase, total=total, note="")

    def advance(self, n: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=n, note="")

    def note(self, text: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, note=text)

    def failed(self, source: str, reason: str) -> None:
        # One line, however long, and a file name's control characters (a newline, an escape) shown escaped.
        shown = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in source)
        self.console.print(f"failed: {shown}: {reason}", markup=False, highlight=False, soft_wrap=True)


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant

    answer = Assistant.open(settings).ask(args.question, k=args.k, mode=args.mode, sources=args.sources)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False))
    else:
        _print_answer(answer)
    return 0


def _print_answer(answer: Answer, text: bool = True) -> None:
    """The answer (unless already streamed), how sure it is, then its sources with their check.

    A low-confidence answer is followed by a line saying so and its citations show their quotes;
    an abstention lists the closest passages instead, best first, with their similarity.
    """
    if text:
        print(answer.text)
    extractive = answer.backend == "extractive"
    if answer.confidence == "low":  # extractive: the closest evidence; generated: sentences not fully supported
        print("(low confidence: the quoted passages may not answer the question directly)" if extractive
              else "(low confidence: not every sentence is supported by the passages it cites)")
    if answer.fallback:
        print(f"(extractive answer: {answer.fallback})")
    if answer.cut:
        print(f"(the model's reply was cut short: {answer.cut})")
    if answer.standalone_question != answer.question:
        print(f"(searched for: {answer.standalone_question})")
    if answer.abstained:
        for hit in answer.closest():
            excerpt = " ".join(hit.chunk.text.split())
            print(f"  - {hit.chunk.source} (similarity {hit.dense_score or 0.0:.2f}): "
                  f"{excerpt[:160]}{'…' if len(excerpt) > 160 else ''}")
        return
    if not extractive:  # an extractive answer's sentences are its quotes: the line above says it all
        for claim in answer.sentences:
            if claim.verdict != "supported":
                print(f"  ! {claim.verdict}: {claim.text}")
            elif claim.attributed:
                print(f"  = cited by the check (the model gave no marker): {claim.text}")
    print()
    for c in answer.citations:
        where = f"page {c.page}, " if c.page is not None else ""
        print(f"[{c.n}] {c.source} ({c.title}), {where}characters {c.start}-{c.end}, score {c.score:.2f}, "
              f"{c.verdict} ({c.support:.2f})")
        if not extractive or answer.confidence == "low":  # a confident extractive answer is its quotes
            print(f"    “{c.quote}”")


def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant

    assistant: Assistant = Assistant.open(settings)
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
                    _print_answer(piece, text=False)
        except KeyboardInterrupt:
            print("\n(interrupted)")
        except RagError as exc:
            print(f"{chr(10) if partial else ''}error: {exc}")
        if partial:  # kept even when interrupted, so that a follow-up can refer to it
            history += [{"role": "user", "content": question}, {"role": "assistant", "content": partial}]


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from ui.server import serve

    if args.auth is not None:
        settings = Settings.load(auth=args.auth)  # the environment, with the login from the command line
    serve(settings, args.host, args.port, args.watch)
    return 0


def _mcp(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant
    from rag.errors import IndexMissingError
    from ui.mcp import serve_stdio

    assistant = Assistant(settings)
    assistant.warm_up()  # load the model before the client's first call
    try:
        print(f"rag mcp: {len(assistant.documents())} documents indexed; serving MCP on stdin/stdout",
              file=sys.stderr)
    except IndexMissingError as exc:  # each tool call says so until an ingest runs; other errors stop here
        print(f"warning: {exc}", file=sys.stderr)
    serve_stdio(assistant)
    return 0


def _watch(args: argparse.Namespace, settings: Settings) -> int:
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


def _eval_retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.retrieval import evaluate

    modes = MODES if args.mode == "all" else (args.mode,)
    with _Bar() as bar:
        result = evaluate(args.beir, settings, modes, say=_say, progress=bar)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'mode':8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'ms/query':>9}")
        for mode, m in result["modes"].items():
            print(f"{mode:8} {m['ndcg@10']:8.4f} {m['recall@10']:7.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} "
                  f"{m['ms_per_query']:9.1f}")
    return 0


def _eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.answers import evaluate_squad

    with _Bar() as bar:
        result = evaluate_squad(args.squad, settings, say=_say, progress=bar)
    _print_figures(result, args.json)
    return 0


def _eval_golden(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant
    from ui.eval.answers import evaluate_golden, golden_assistant

    if args.docs or args.squad:
        with _Bar() as bar:
            assistant = golden_assistant(settings, args.file.stem, args.docs, args.squad, say=_say, progress=bar)
    else:
        assistant = Assistant.open(settings)
    result = evaluate_golden(args.file, assistant, say=_say, split=args.split)
    if not args.json:
        for failure in result["failures"]:
            _say(f"miss: {failure['question']} -> {'(abstained)' if failure['abstained'] else failure['answer']}")
    _print_figures({k: v for k, v in result.items() if k != "failures" or args.json}, args.json)
    return 0


def _eval_reading(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.reading import evaluate_reading

    if not args.folder.is_dir():
        raise RagError(f"{args.folder}: no such folder; give rag eval reading a folder of documents")
    result = evaluate_reading(args.folder, settings, say=_say)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for source, doc in result["documents"].items():
        if "error" not in doc:
            problems = ", ".join(f"{k} {v}" for k, v in doc["per_1000"].items() if v)
            print(f"{source}: {doc['title']!r}, {doc['characters']} characters; per 1,000: {problems or 'none'}")
    print(f"all {len(result['documents'])} documents, {result['characters']} characters; per 1,000: "
          + ", ".join(f"{k} {v}" for k, v in result["per_1000"].items()))
    return 0


def _eval_selector(args: argparse.Namespace, settings: Settings) -> int:
    from rag.embedding import Embedder
    from rag.models.selector import FOLDER, Selector
    from ui.eval.selector import evaluate

    if args.wikiqa is None and args.squad is None:
        raise RagError("rag eval selector: give --wikiqa DIR and/or --squad FILE")
    result = evaluate(Embedder.from_settings(settings), Selector(args.model or FOLDER), args.wikiqa, args.squad)
    print(json.dumps(result, indent=2))
    return 0


def _train_selector(args: argparse.Namespace, settings: Settings) -> int:
    from rag.models.selector import FOLDER
    from ui.train.selector import Hyper, run

    if not args.squad and args.wikiqa is None and args.squad_explorer is None:
        raise RagError("rag train selector: give --squad FILE, --squad-explorer DIR and/or --wikiqa DIR")
    hyper = Hyper(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed)
    with _Bar() as bar:
        run(args.squad, args.wikiqa, args.out, args.target or FOLDER, hyper, args.max_pairs, say=_say, progress=bar,
            explorer=args.squad_explorer)
    return 0


def _eval_fit(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.fit import fit

    with _Bar() as bar:
        result = fit(settings, args.squad, args.golden, args.docs, say=_say, progress=bar)
    if args.json:
        print(json.dumps(result))
        return 0
    for name in ("CANDIDATE", "CONFIDENCE", "SELECTED", "CONFIDENCE_SELECTED"):
        if name in result:
            print(f"{name} = {result[name]}")
    print(f"best candidate probability: {result['best_candidate_probability']}")
    print(f"top candidate right, by score: {result['top1']}")
    for row in result["thresholds"]:
        print(f"threshold {row['threshold']}, {'natural' if row['natural'] else 'SQuAD  '}, gate {row['gate']}: "
              f"high for {row['high_share_of_answerable']:.1%} of answerable, right {row['high_precision']}")
    return 0


def _print_figures(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        print(f"{key:24} {value}")


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.run_kind == "load":
        return _bench_load(args, settings)
    from ui.bench.ingest import bench_ingest, format_ingest, format_ingest_backends
    from ui.bench.query import bench_query, format_query
    from ui.bench.startup import bench_startup, format_startup, format_startup_backends

    work = settings.home / "bench"
    kind = args.run_kind
    if kind in ("ingest", "query") and not (args.beir / "corpus.jsonl").is_file():
        raise RagError(f"{args.beir}: no corpus.jsonl; give a BEIR folder with --beir")
    if kind in ("ingest", "startup"):
        backends = _backends(args.backends, settings)
        results: dict[str, dict[str, Any]] = {}
        for backend in backends:
            _say(f"backend {backend}")
            chosen = settings.model_copy(update={"embed_backend": backend})
            if kind == "ingest":
                results[backend] = bench_ingest(args.beir / "corpus.jsonl", chosen, work / backend, args.docs,
                                                runs=args.runs, progress=_say)
            else:
                results[backend] = bench_startup(settings.home.resolve(), args.question, args.runs,
                                                 backend=backend, progress=_say)
        result = results[backends[0]] if len(backends) == 1 else {"backends": results}
        if len(backends) > 1:
            side = format_ingest_backends if kind == "ingest" else format_startup_backends
            print(json.dumps(result) if args.json else side(results))
            return 0
    if kind == "query":
        try:
            sizes = [int(n) for n in args.sizes.split(",")]
        except ValueError:
            raise RagError(f"--sizes: expected comma-separated chunk counts, got {args.sizes!r}") from None
        result = bench_query(args.beir / "corpus.jsonl", args.beir / "queries.jsonl", settings, work,
                             sizes, args.questions, progress=_say)
    formats = {"ingest": format_ingest, "query": format_query, "startup": format_startup}
    print(json.dumps(result) if args.json else formats[kind](result))
    return 0


def _bench_load(args: argparse.Namespace, settings: Settings) -> int:
    from ui.bench.load import format_load, read_questions, run_load

    try:
        login = credentials(args.auth) if args.auth is not None else None
    except ValueError as exc:
        raise RagError(f"--auth: {exc}") from None
    if args.timeout <= 0:
        raise RagError(f"--timeout: must be more than 0 seconds, got {args.timeout}")
    token = settings.api_token.get_secret_value() if settings.api_token else None
    questions = read_questions(args.questions_file or settings.corpus / "golden.jsonl")
    result = run_load(args.url, questions, args.clients, args.questions, token=token,
                      auth=login, timeout=args.timeout, progress=_say)
    print(json.dumps(result) if args.json else format_load(result))
    if result["errors"]:
        kinds = ", ".join(f"{kind} {n}" for kind, n in result["errors_by_kind"].items())
        _say(f"error: {result['errors']} of {result['requests']} requests failed ({kinds})")
        return 1
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant

    status = Assistant.open(settings).status()
    if args.json:
        print(json.dumps(status))
    else:
        failed = status.pop("failed", {})
        for key, value in status.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            print(f"{key:12} {value}")
        print(f"{'failed':12} {len(failed)} files in the last ingest" + (":" if failed else ""))
        for source, reason in failed.items():
            print(f"  {source}: {reason}")
    return 0


def _models_export(args: argparse.Namespace, settings: Settings) -> int:
    from rag.embedding import Embedder, model_path
    from rag.onnx_model import onnx_file

    backends = ["onnx", "onnx-int8"] if args.backend == "all" else [args.backend]
    folder = Path(model_path(settings.embed_model))
    if not folder.is_dir():
        raise RagError(f"RAG_EMBED_MODEL: {settings.embed_model!r} is not a local model folder; give one")
    for backend in backends:
        began = time.perf_counter()
        path = onnx_file(folder, settings.models, backend == "onnx-int8")
        chosen = settings.model_copy(update={"embed_backend": backend})
        dimension = Embedder.from_settings(chosen).dimension  # loads it: the graph runs
        print(f"{backend}: {path} ({path.stat().st_size / 2**20:.0f} MiB, {dimension} dimensions, "
              f"{time.perf_counter() - began:.1f} s)")
    return 0


def _documents(args: argparse.Namespace, settings: Settings) -> int:
    from ingest import library
    from rag.assistant import Assistant
    from ui.render import document_json

    assistant = Assistant.open(settings)
    for source in args.remove:
        print(f"removed {source}: {library.remove_document(assistant, source).detail}")
    for source in args.reindex:
        print(f"read {source} again: {library.reindex_document(assistant, source).summary()}")
    if args.remove or args.reindex:
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


if __name__ == "__main__":
    sys.exit(main())
