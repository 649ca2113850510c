"""`rag eval`, `rag train` and `rag bench`: quality figures, training the shipped models, speed figures."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any, cast, get_args

from rag.errors import RagError
from rag.settings import EmbedBackend, Settings, credentials
from rag.types import MODES
from ui.cli.output import Bar, print_figures, say


def eval_retrieval(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.retrieval import evaluate

    modes = MODES if args.mode == "all" else (args.mode,)
    with Bar() as bar:
        result = evaluate(args.beir, settings, modes, say=say, progress=bar)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'mode':8} {'nDCG@10':>8} {'R@10':>7} {'R@100':>7} {'MRR@10':>7} {'ms/query':>9}")
        for mode, m in result["modes"].items():
            print(f"{mode:8} {m['ndcg@10']:8.4f} {m['recall@10']:7.4f} {m['recall@100']:7.4f} {m['mrr@10']:7.4f} "
                  f"{m['ms_per_query']:9.1f}")
    return 0


def eval_answers(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.answers import evaluate_squad

    with Bar() as bar:
        result = evaluate_squad(args.squad, settings, say=say, progress=bar)
    print_figures(result, args.json)
    return 0


def eval_golden(args: argparse.Namespace, settings: Settings) -> int:
    from rag.assistant import Assistant
    from ui.eval.answers import compare_golden, evaluate_golden, golden_assistant

    if args.docs or args.squad:
        with Bar() as bar:
            assistant = golden_assistant(settings, args.file.stem, args.docs, args.squad, say=say, progress=bar)
    else:
        assistant = Assistant.open(settings)
    if args.backend:
        result = compare_golden(args.file, assistant, args.backend, say=say, split=args.split)
        print(json.dumps(result) if args.json else format_comparison(result))
        return 0
    result = evaluate_golden(args.file, assistant, say=say, split=args.split)
    if not args.json:
        for failure in result["failures"]:
            say(f"miss: {failure['question']} -> {'(abstained)' if failure['abstained'] else failure['answer']}")
    print_figures({k: v for k, v in result.items() if k != "failures" or args.json}, args.json)
    return 0


def format_comparison(result: dict[str, Any]) -> str:
    """`compare_golden`'s figures as one table, a column per backend, then each generative one's fallback reasons."""
    from ui.bench.common import table

    def share(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    def generated(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: share(r["generated"][key]) if "generated" in r else "-"

    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("questions (unanswerable)", lambda r: f"{r['questions']} ({r['unanswerable']})"),
        ("fact in a supported quote", lambda r: share(r["fact_supported"])),
        ("fact in any quote", lambda r: share(r["fact_cited"])),
        ("answerable declined", lambda r: share(r["answerable_declined"])),
        ("  of them, answer in passage [1]",
         lambda r: str(r["generated"]["declined_first_holds"]) if "generated" in r else "-"),
        ("unanswerable declined or low", lambda r: share(r["unanswerable_abstained_or_low"])),
        ("high (of answerable)", lambda r: share(r["high_confidence"])),
        ("high answers holding the fact", lambda r: share(r["high_holds_fact"])),
        ("fallbacks to extractive", generated("fallback")),
        ("sentences checked", lambda r: str(r["generated"]["sentences"]) if "generated" in r else "-"),
        ("  supported", generated("supported")),
        ("  of them, by the judge", generated("judged")),
        ("  weak", generated("weak")),
        ("  unsupported", generated("unsupported")),
        ("seconds per answer p50 (p95)",
         lambda r: f"{r['latency_ms']['p50'] / 1000:.2f} ({r['latency_ms']['p95'] / 1000:.2f})"),
    ]
    backends = result["backends"]
    lines = [table(["", *backends], [[name, *(cell(r) for r in backends.values())] for name, cell in rows])]
    for spec, r in backends.items():
        reasons = r.get("generated", {}).get("fallback_reasons")
        if reasons:
            lines.append(f"{spec} fell back: " + "; ".join(f"{n}x {why}" for why, n in reasons.items()))
    return "\n".join(lines)


def eval_reading(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.reading import evaluate_reading

    if not args.folder.is_dir():
        raise RagError(f"{args.folder}: no such folder; give rag eval reading a folder of documents")
    titles = None
    if args.titles is not None:
        try:
            titles = json.loads(args.titles.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RagError(f"{args.titles}: not a readable JSON file of titles ({exc}); give source -> title") from None
    result = evaluate_reading(args.folder, settings, say=say, titles=titles)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    for source, doc in result["documents"].items():
        if "error" not in doc:
            problems = ", ".join(f"{k} {v}" for k, v in doc["per_1000"].items() if v)
            verdict = "" if doc.get("title right", True) else " (title wrong)"
            verdict += f" (title: {doc['title problem']})" if doc["title problem"] else ""
            print(f"{source}: {doc['title']!r}{verdict}, {doc['characters']} characters; "
                  f"per 1,000: {problems or 'none'}")
    print(f"all {len(result['documents'])} documents, {result['characters']} characters; per 1,000: "
          + ", ".join(f"{k} {v}" for k, v in result["per_1000"].items()))
    print(f"titles of a bad shape: {result['bad titles']}"
          + (f"; titles right: {result['titles right']}" if "titles right" in result else ""))
    return 0


def eval_selector(args: argparse.Namespace, settings: Settings) -> int:
    from rag.embedding import embedder_for
    from rag.models.selector import FOLDER, Selector
    from ui.eval.selector import evaluate

    if args.wikiqa is None and args.squad is None:
        raise RagError("rag eval selector: give --wikiqa DIR and/or --squad FILE")
    result = evaluate(embedder_for(settings), Selector(args.model or FOLDER), args.wikiqa, args.squad)
    print(json.dumps(result, indent=2))
    return 0


def train_selector(args: argparse.Namespace, settings: Settings) -> int:
    from rag.models.selector import FOLDER
    from ui.train.selector import Hyper, run

    if not args.squad and args.wikiqa is None and args.squad_explorer is None:
        raise RagError("rag train selector: give --squad FILE, --squad-explorer DIR and/or --wikiqa DIR")
    hyper = Hyper(epochs=args.epochs, batch=args.batch, lr=args.lr, seed=args.seed)
    with Bar() as bar:
        run(args.squad, args.wikiqa, args.out, args.target or FOLDER, hyper, args.max_pairs, say=say, progress=bar,
            explorer=args.squad_explorer)
    return 0


def eval_fit(args: argparse.Namespace, settings: Settings) -> int:
    from ui.eval.fit import fit

    with Bar() as bar:
        result = fit(settings, args.squad, args.golden, args.docs, say=say, progress=bar)
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


def bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.run_kind == "load":
        return bench_load(args, settings)
    from ui.bench.ingest import bench_ingest, format_ingest, format_ingest_backends
    from ui.bench.query import bench_query, format_query
    from ui.bench.startup import bench_startup, format_startup, format_startup_backends

    work = settings.home / "bench"
    kind = args.run_kind
    if kind in ("ingest", "query", "publish") and not (args.beir / "corpus.jsonl").is_file():
        raise RagError(f"{args.beir}: no corpus.jsonl; give a BEIR folder with --beir")
    if kind == "publish":
        from ui.bench.publish import bench_publish, format_publish

        url = args.chroma_url or settings.chroma_url
        if not url:
            raise RagError("rag bench publish needs a Chroma server: give --chroma-url or set RAG_CHROMA_URL "
                           "(`make chroma` starts one)")
        result = bench_publish(args.beir / "corpus.jsonl", args.beir / "queries.jsonl", settings, work, args.size,
                               url, replicas=args.replicas, clients=args.clients, every_s=args.every,
                               before_s=args.before,
                               shared=not args.own_bm25, writer_nice=args.writer_nice,
                               progress=say)
        print(json.dumps(result) if args.json else format_publish(result))
        return 0
    if kind == "ingest" and args.cluster:
        from ui.bench.scaleout import bench_cluster, format_cluster

        result = bench_cluster(args.beir / "corpus.jsonl", settings, work, args.docs, args.scans,
                               address=args.cluster, progress=say)
        print(json.dumps(result) if args.json else format_cluster(result))
        return 0
    if kind in ("ingest", "startup"):
        chosen_backends = backends(args.backends, settings)
        results: dict[str, dict[str, Any]] = {}
        for backend in chosen_backends:
            say(f"backend {backend}")
            chosen = settings.model_copy(update={"embed_backend": backend})
            if kind == "ingest":
                results[backend] = bench_ingest(args.beir / "corpus.jsonl", chosen, work / backend, args.docs,
                                                runs=args.runs, progress=say)
            else:
                results[backend] = bench_startup(settings.home.resolve(), args.question, args.runs,
                                                 backend=backend, progress=say)
        result = results[chosen_backends[0]] if len(chosen_backends) == 1 else {"backends": results}
        if len(chosen_backends) > 1:
            side = format_ingest_backends if kind == "ingest" else format_startup_backends
            print(json.dumps(result) if args.json else side(results))
            return 0
    if kind == "query":
        try:
            sizes = [int(n) for n in args.sizes.split(",")]
        except ValueError:
            raise RagError(f"--sizes: expected comma-separated chunk counts, got {args.sizes!r}") from None
        result = bench_query(args.beir / "corpus.jsonl", args.beir / "queries.jsonl", settings, work,
                             sizes, args.questions, progress=say)
    formats = {"ingest": format_ingest, "query": format_query, "startup": format_startup}
    print(json.dumps(result) if args.json else formats[kind](result))
    return 0


def bench_load(args: argparse.Namespace, settings: Settings) -> int:
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
                      auth=login, timeout=args.timeout, progress=say, collection=args.collection)
    print(json.dumps(result) if args.json else format_load(result))
    if result["errors"]:
        kinds = ", ".join(f"{kind} {n}" for kind, n in result["errors_by_kind"].items())
        say(f"error: {result['errors']} of {result['requests']} requests failed ({kinds})")
        return 1
    return 0


def backends(text: str | None, settings: Settings) -> list[EmbedBackend]:
    if text is None:
        return [settings.embed_backend]
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = get_args(EmbedBackend)
    wrong = [name for name in names if name not in known]
    if wrong or not names:
        raise RagError(f"--backends: {', '.join(wrong) or '(none)'} is not a backend; use {', '.join(known)}")
    return cast("list[EmbedBackend]", names)
