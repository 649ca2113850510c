"""The `rag` command's arguments: every command, its options and the function that runs it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.types import MODES
from ui.cli import commands, measure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Ask questions of your documents; get cited answers.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="index documents (default: the corpus folder)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: RAG_CORPUS)")
    p.add_argument("--rebuild", action="store_true", help="build a fresh index and swap it in when complete")
    p.add_argument("--dry-run", action="store_true", help="print what would change and touch nothing")
    p.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="read, OCR, chunk and embed on this Ray cluster: HOST:PORT of its head, ray://HOST:10001 "
                        "from outside it, or auto (default: RAG_CLUSTER; unset: this machine)")
    _collection_option(p)
    p.set_defaults(run=commands.ingest)

    p = sub.add_parser("ask", help="answer one question")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    _retrieval_options(p)
    _collection_option(p)
    p.set_defaults(run=commands.ask)

    p = sub.add_parser("chat", help="ask questions in a conversation (follow-ups understood)")
    _retrieval_options(p)
    _collection_option(p)
    p.set_defaults(run=commands.chat)

    p = sub.add_parser("serve", help="serve the chat page at / and the HTTP API at /v1")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="port (default: 7860)")
    p.add_argument("--auth", metavar="USER:PASS", default=None,
                   help="require this login for the page and the API (default: RAG_AUTH)")
    p.add_argument("--watch", nargs="*", type=Path, default=None, metavar="PATH",
                   help="keep the index in step with these folders while serving (none given: the collection's "
                        "corpus folder)")
    p.add_argument("--collection", metavar="NAME", default=None,
                   help="the collection the page and requests that name none use (default: default); requests "
                        "may name any")
    p.set_defaults(run=commands.serve)

    p = sub.add_parser("mcp", help="serve the documents to an MCP client (an agent or desktop assistant) over "
                                   "stdin/stdout; `rag serve` offers the same at /mcp")
    p.add_argument("--collection", metavar="NAME", default=None,
                   help="the collection tool calls that name none use (default: default)")
    p.set_defaults(run=commands.mcp)

    p = sub.add_parser("watch", help="keep the index in step with folders: index changes as they happen")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="folders (default: RAG_CORPUS)")
    _collection_option(p)
    p.set_defaults(run=commands.watch)

    p = sub.add_parser("eval", help="measure retrieval and answer quality (public data or your own questions)")
    kinds = p.add_subparsers(required=True, metavar="KIND")
    e = kinds.add_parser("retrieval", help="nDCG@10, Recall@10/100, MRR@10 on a BEIR folder")
    e.add_argument("--beir", type=Path, required=True, metavar="DIR",
                   help="folder with corpus.jsonl, queries.jsonl, qrels/test.tsv")
    e.add_argument("--mode", choices=[*MODES, "all"], default="all")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=measure.eval_retrieval)
    e = kinds.add_parser("answers", help="answer quality and abstention on SQuAD-format data")
    e.add_argument("--squad", type=Path, required=True, metavar="FILE", help="a SQuAD v1.1 JSON file")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=measure.eval_answers)
    e = kinds.add_parser("golden", help="your own questions (JSON lines) against the current index, or an "
                                        "evaluation index of --docs and --squad")
    e.add_argument("file", type=Path, metavar="FILE.jsonl",
                   help='lines of {"question", "answer"?, "source"?, "answerable"?, "history"?, "split"?}')
    e.add_argument("--docs", type=Path, action="append", default=[], metavar="DIR",
                   help="index this folder into an evaluation index of its own (repeatable)")
    e.add_argument("--squad", type=Path, default=None, metavar="FILE",
                   help="also index a SQuAD file's paragraphs there, as squad/aNNN-pNN.md")
    e.add_argument("--split", default=None, metavar="NAME", help='ask only the lines whose "split" is NAME')
    e.add_argument("--backend", action="append", default=[], metavar="SPEC",
                   help="answer with this backend, and print one table with a column per backend (repeatable): "
                        "extractive, openai:MODEL[@URL] or ollama:MODEL[@URL] (default: RAG_LLM's alone)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=measure.eval_golden)

    e = kinds.add_parser("reading", help="extraction debris per 1,000 characters of each document under a "
                                         "folder (ligatures, hyphens, broken lines, headers, menus, markup, "
                                         "page furniture; nothing indexed) and titles")
    e.add_argument("folder", type=Path, metavar="DIR")
    e.add_argument("--titles", type=Path, metavar="FILE",
                   help="a JSON file of the expected titles (source -> title): count the titles that are right")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(run=measure.eval_reading)

    e = kinds.add_parser("selector", help="the answer selector against the embedding model's cosine: WikiQA "
                                          "test MAP/MRR, sentence choice within SQuAD paragraphs")
    e.add_argument("--wikiqa", type=Path, metavar="DIR", help="WikiQA folder with test/ (a.toks, b.toks, sim.txt)")
    e.add_argument("--squad", type=Path, metavar="FILE", help="a SQuAD-format file, e.g. XQuAD")
    e.add_argument("--model", type=Path, default=None, metavar="DIR",
                   help="a selector folder (default: the shipped one)")
    e.set_defaults(run=measure.eval_selector)

    e = kinds.add_parser("fit", help="fit the extractive answerer's models from SQuAD data and golden files "
                                     "(prints rag/answer/weights.py's constants)")
    e.add_argument("--squad", type=Path, required=True, metavar="FILE", help="a SQuAD v1.1 file (e.g. XQuAD)")
    e.add_argument("--golden", type=Path, action="append", default=[], metavar="FILE.jsonl",
                   help='golden questions whose "split": "tune" lines are used (repeatable)')
    e.add_argument("--docs", type=Path, action="append", default=[], metavar="DIR",
                   help="the documents of golden files not about the SQuAD file (repeatable)")
    e.add_argument("--json", action="store_true", help="print everything as JSON")
    e.set_defaults(run=measure.eval_fit)

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
    t.set_defaults(run=measure.train_selector)

    p = sub.add_parser("bench", help="speed figures: ingest throughput, query latency, startup (never asserted)")
    kinds = p.add_subparsers(required=True, metavar="KIND")
    scifact = Path("../shared/bench-data/scifact")
    b = kinds.add_parser("ingest", help="pipeline chunks/s against a bare model encode of the same chunks")
    b.add_argument("--beir", type=Path, default=scifact, metavar="DIR", help=f"BEIR folder (default: {scifact})")
    b.add_argument("--docs", type=_positive, default=400, help="documents to ingest (default: 400)")
    b.add_argument("--runs", type=_positive, default=3, help="rounds; medians are reported (default: 3)")
    _backends_option(b)
    b.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="the local path and a Ray cluster side by side, on text and on scanned PDFs, with a "
                        "projection to more workers: `local` starts clusters on this machine (one worker with its "
                        "CPUs, then one per CPU); an ADDRESS measures that cluster")
    b.add_argument("--scans", type=_positive, default=24, help="scanned PDFs of 4 pages for --cluster (default: 24)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=measure.bench, run_kind="ingest")
    b = kinds.add_parser("query", help="warm retrieve/answer latency at growing index sizes")
    b.add_argument("--beir", type=Path, default=scifact, metavar="DIR", help=f"BEIR folder (default: {scifact})")
    b.add_argument("--sizes", default="1000,10000,100000", help="chunk counts (default: 1000,10000,100000)")
    b.add_argument("--questions", type=_positive, default=100, help="questions timed per size (default: 100)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=measure.bench, run_kind="query")
    b = kinds.add_parser("startup", help="seconds from `rag ask` starting to its answer, on the current index")
    b.add_argument("--question", default="How many 910C processors will Huawei make?")
    b.add_argument("--runs", type=_positive, default=5)
    _backends_option(b)
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=measure.bench, run_kind="startup")
    b = kinds.add_parser("publish", help="rag serve replicas on a Chroma server while an ingest publishes a new "
                                         "generation: latency before, during, after; time to take it up")
    b.add_argument("--beir", type=Path, default=scifact, metavar="DIR", help=f"BEIR folder (default: {scifact})")
    b.add_argument("--size", type=_positive, default=1_000_000, help="chunks in the index (default: 1000000)")
    b.add_argument("--chroma-url", default=None, metavar="URL",
                   help="the Chroma server (default: RAG_CHROMA_URL; `make chroma` starts one)")
    b.add_argument("--replicas", type=_positive, default=2, help="rag serve replicas (default: 2)")
    b.add_argument("--clients", type=_positive, default=1, help="clients asking each replica at once (default: 1)")
    b.add_argument("--every", type=float, default=1.0, metavar="S",
                   help="each client asks a question every S seconds (default: 1; 0: back to back)")
    b.add_argument("--before", type=float, default=30.0, metavar="S", help="seconds answered before the publish")
    b.add_argument("--writer-nice", type=int, default=10, metavar="N",
                   help="niceness of the writer's `rag ingest` (default: 10; on one machine it shares the cores)")
    b.add_argument("--own-bm25", action="store_true",
                   help="each replica builds its BM25 copy itself (the default: they load the writer's)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=measure.bench, run_kind="publish")
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
    b.add_argument("--collection", metavar="NAME", default=None,
                   help="ask this collection, and count answers citing documents outside it")
    b.add_argument("--json", action="store_true")
    b.set_defaults(run=measure.bench, run_kind="load")

    p = sub.add_parser("status", help="what the index holds")
    p.add_argument("--json", action="store_true")
    _collection_option(p)
    p.set_defaults(run=commands.status)

    p = sub.add_parser("collections", help="named document sets, each an index of its own: list (the default), "
                                           "create, rename, remove")
    p.set_defaults(run=commands.collections, action="list", json=False)
    actions = p.add_subparsers(metavar="ACTION")
    c = actions.add_parser("list", help="the collections, with their corpus folders and documents")
    c.add_argument("--json", action="store_true")
    c.set_defaults(action="list")
    c = actions.add_parser("create", help="make an empty collection")
    c.add_argument("name", help="1-40 letters, digits, '-' or '_'")
    c.add_argument("--corpus", type=Path, default=None, metavar="DIR",
                   help="the folder `rag ingest --collection NAME` reads and uploads land in (default: a new "
                        "folder under RAG_HOME/collections)")
    c.set_defaults(action="create")
    c = actions.add_parser("rename", help="give a collection another name (its index stays)")
    c.add_argument("name")
    c.add_argument("new_name", metavar="NEW")
    c.set_defaults(action="rename")
    c = actions.add_parser("remove", help="delete a collection's index (a corpus folder you gave stays; the one "
                                          "made for it, with its uploads, goes)")
    c.add_argument("name")
    c.set_defaults(action="remove")

    p = sub.add_parser("users", help="the people a server lets in (RAG_USERS_DB): add, list, remove, grant, "
                                     "revoke, password, token, tokens")
    p.set_defaults(run=commands.users, action="list", json=False)
    actions = p.add_subparsers(metavar="ACTION")
    u = actions.add_parser("list", help="the users and their roles")
    u.add_argument("--json", action="store_true")
    u.set_defaults(action="list")
    u = actions.add_parser("add", help="add a user (their password from a prompt, or one line of stdin)")
    u.add_argument("name")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.add_argument("--admin", action="store_true", help="make them an admin of every collection")
    u.set_defaults(action="add")
    u = actions.add_parser("password", help="set a user's password")
    u.add_argument("name")
    u.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    u.set_defaults(action="password")
    u = actions.add_parser("remove", help="remove a user, their roles and their tokens (at once)")
    u.add_argument("name")
    u.set_defaults(action="remove")
    u = actions.add_parser("grant", help="give a user a role on a collection (`*`: every collection)")
    u.add_argument("name")
    u.add_argument("collection")
    u.add_argument("role", choices=["reader", "editor", "admin"],
                   help="reader: ask and read; editor: also add, remove, read again; admin: also users and "
                        "collections")
    u.set_defaults(action="grant")
    u = actions.add_parser("revoke", help="take a user's role on a collection away")
    u.add_argument("name")
    u.add_argument("collection")
    u.set_defaults(action="revoke")
    u = actions.add_parser("token", help="make a personal API token for a user (shown once; revoke with "
                                         "--revoke ID)")
    u.add_argument("name", nargs="?", default=None)
    u.add_argument("--label", default="", help="what it is for (shown by `rag users tokens`)")
    u.add_argument("--revoke", metavar="ID", default=None, help="revoke the token with this id instead")
    u.set_defaults(action="token")
    u = actions.add_parser("tokens", help="the personal tokens (ids, owners, labels, last use), never the tokens")
    u.add_argument("name", nargs="?", default=None)
    u.add_argument("--json", action="store_true")
    u.set_defaults(action="tokens")

    p = sub.add_parser("models", help="prepare the embedding model for the ONNX backends")
    models = p.add_subparsers(required=True, metavar="ACTION")
    m = models.add_parser("export", help="export the embedding model to ONNX (and int8) under RAG_HOME/models now, "
                                         "instead of on first use")
    m.add_argument("--backend", choices=["onnx", "onnx-int8", "all"], default="all")
    m.set_defaults(run=commands.models_export)

    p = sub.add_parser("documents", help="list the indexed documents; remove one for good, or read one again")
    p.add_argument("--remove", action="append", default=[], metavar="SOURCE",
                   help="take this document out of the index for good (an upload is deleted, another file "
                        "added to its folder's .ragignore); repeatable")
    p.add_argument("--reindex", action="append", default=[], metavar="SOURCE",
                   help="read this document again from its file, even if unchanged; repeatable")
    p.add_argument("--text", metavar="SOURCE", default=None,
                   help="print this document's text as it was indexed (what citations' character spans point into)")
    p.add_argument("--json", action="store_true")
    _collection_option(p)
    p.set_defaults(run=commands.documents)
    return parser


def _retrieval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-k", type=_positive, default=None, help="passages to retrieve (default: RAG_K)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="retrieval mode (default: RAG_MODE)")
    p.add_argument("--source", action="append", default=None, metavar="GLOB", dest="sources",
                   help="answer only from the documents this matches: the source (corpus/notes/*.md) or its "
                        "file name (*.pdf); repeatable")


def _collection_option(p: argparse.ArgumentParser) -> None:
    """`--collection NAME`: the command runs with that collection's settings (`rag.collections`)."""
    p.add_argument("--collection", metavar="NAME", default=None,
                   help="work on this collection (`rag collections`; default: the default one, RAG_HOME's own)")
    p.set_defaults(collection_here=True)


def _backends_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backends", default=None, metavar="LIST",
                   help="embedding backends to measure side by side, comma-separated: torch, onnx, onnx-int8 "
                        "(default: RAG_EMBED_BACKEND)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {text!r}")
    return int(text)
