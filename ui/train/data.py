"""Training pairs for the answer selector: (question, candidate, label) from public reading data.

- SQuAD-format files (v1.1 or v2.0), or the SQuAD explorer's article pages (`explore/1.1/train/*.html`
  in rajpurkar/SQuAD-explorer: the whole of SQuAD 1.1 train, one page per article; they give answer
  texts without offsets, so an answer is taken at its first occurrence in the paragraph): each
  paragraph is split into sentences by the product's own splitter (`rag.text.sentence_spans`), so
  the selector learns on the candidates it will score. The
  sentence holding the answer span is positive; the paragraph's other sentences are near-miss
  negatives; a sentence of another paragraph of the same article is an on-topic negative; every
  sentence of an unanswerable (v2.0 `is_impossible`) question's paragraph is negative. Two
  neighbouring sentences are a candidate too: positive when one of them holds the answer.
- WikiQA (`a.toks`, `b.toks`, `sim.txt` per split): natural search questions with Wikipedia
  sentences labelled as answers or not; a question none of whose sentences answers is kept (all
  negative): it teaches "none of these".
"""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.text import sentence_spans

NEAR_MISSES = 4  # same-paragraph negatives per question (the hardest: same topic, same words)
ELSEWHERE = 1  # negatives from another paragraph of the same article


@dataclass(frozen=True)
class Pair:
    """One training example: does `text` answer `question`?"""

    question: str
    text: str
    label: float
    origin: str  # "squad", "squad-none" (an unanswerable question's) or "wikiqa"


Article = dict[str, Any]


def squad_articles(path: Path) -> list[Article]:
    """The articles of a SQuAD-format file: `{"title", "paragraphs": [{"context", "qas"}]}`."""
    try:
        articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    except OSError as exc:
        raise RagError(f"{path}: cannot read ({exc.strerror}); check the path") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise RagError(f"{path}: not SQuAD JSON ({type(exc).__name__}); expected data[].paragraphs[]") from None
    if not isinstance(articles, list):
        raise RagError(f"{path}: not SQuAD JSON; expected data[].paragraphs[]")
    return articles


_PARAGRAPH = re.compile(r'<div class="para-wrap">(.*?)(?=<div class="para-wrap">|$)', re.S)
_CONTEXT = re.compile(r"<pre>(.*?)</pre>", re.S)
_QA = re.compile(r'<strong class="question">(.*?)</strong></p><ol class="list-unstyled">(.*?)</ol>', re.S)
_ANSWER = re.compile(r'<span class="answer">(.*?)</span>', re.S)


def explorer_articles(folder: Path) -> list[Article]:
    """The articles of the SQuAD explorer's pages in `folder` (`*.html` but `index.html`), as `squad_articles`
    gives them; an answer is placed at its first occurrence in the paragraph (the pages give no offsets)."""
    pages = sorted(p for p in folder.glob("*.html") if p.name != "index.html")
    if not pages:
        raise RagError(f"{folder}: no SQuAD explorer pages (*.html); give explore/1.1/train of "
                       "rajpurkar/SQuAD-explorer")
    articles = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        paragraphs: list[Article] = []
        for block in _PARAGRAPH.findall(text):
            found = _CONTEXT.search(block)
            if not found:
                continue
            context = html.unescape(found.group(1))
            qas = []
            for number, (question, answers) in enumerate(_QA.findall(block)):
                spans = [{"text": a, "answer_start": context.find(a)}
                         for a in (html.unescape(x) for x in _ANSWER.findall(answers)) if a in context]
                if spans:
                    qas.append({"id": f"{page.stem}-{len(paragraphs)}-{number}", "question": html.unescape(question),
                                "answers": spans})
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": page.stem, "paragraphs": paragraphs})
    return articles


def squad_pairs(path: Path, rng: random.Random) -> list[Pair]:
    """Pairs from one SQuAD-format file (see the module docstring)."""
    return article_pairs(squad_articles(path), rng)


def article_pairs(articles: Sequence[Article], rng: random.Random) -> list[Pair]:
    """Pairs from SQuAD-format articles (see the module docstring)."""
    pairs: list[Pair] = []
    for article in articles:
        paragraphs = [(p["context"], sentence_spans(p["context"])) for p in article["paragraphs"]]
        for index, paragraph in enumerate(article["paragraphs"]):
            context, spans = paragraphs[index]
            others = [context_[s:e] for i, (context_, sp) in enumerate(paragraphs) if i != index for s, e in sp]
            for qa in paragraph["qas"]:
                pairs += _question_pairs(qa, context, spans, others, rng)
    return pairs


def _question_pairs(qa: Article, context: str, spans: Sequence[tuple[int, int]], others: Sequence[str],
                    rng: random.Random) -> list[Pair]:
    question = str(qa["question"]).strip()
    answers = qa.get("answers") or []
    holding: set[int] = set()
    partial: set[int] = set()
    for answer in answers:
        text = str(answer["text"])
        start = int(answer.get("answer_start", -1))
        if context[start:start + len(text)] != text:  # no offset, or a wrong one: its first occurrence
            start = context.find(text)
            if start < 0:
                continue
        end = start + len(text)
        touched = [i for i, (s, e) in enumerate(spans) if s < end and start < e]
        inside = [i for i in touched if spans[i][0] <= start and end <= spans[i][1]]
        holding.update(inside)
        partial.update(i for i in touched if i not in inside)
    if answers and not holding:
        return []  # the answer runs over a sentence break: no single sentence to learn from
    sentence = [context[s:e] for s, e in spans]
    origin = "squad" if answers else "squad-none"
    out = [Pair(question, sentence[i], 1.0, origin) for i in sorted(holding)]
    near = [i for i in range(len(spans)) if i not in holding and i not in partial]
    rng.shuffle(near)
    out += [Pair(question, sentence[i], 0.0, origin) for i in near[:NEAR_MISSES if holding else NEAR_MISSES + 1]]
    out += [Pair(question, text, 0.0, origin) for text in rng.sample(list(others), min(ELSEWHERE, len(others)))]
    neighbours = [(i, i + 1) for i in range(len(spans) - 1) if "\n\n" not in context[spans[i][1]:spans[i + 1][0]]]
    if neighbours:
        a, b = rng.choice(neighbours)
        if not ({a, b} & partial):
            label = 1.0 if {a, b} & holding else 0.0
            out.append(Pair(question, context[spans[a][0]:spans[b][1]], label, origin))
    return out


def wikiqa_pairs(folder: Path) -> list[Pair]:
    """Pairs from one WikiQA split folder (`a.toks`, `b.toks`, `sim.txt`, one pair a line)."""
    try:
        questions, sentences, labels = ((folder / name).read_text(encoding="utf-8").splitlines()
                                        for name in ("a.toks", "b.toks", "sim.txt"))
    except OSError as exc:
        raise RagError(f"{folder}: cannot read WikiQA ({exc.strerror}); give a folder with a.toks, b.toks and "
                       "sim.txt") from None
    if not (len(questions) == len(sentences) == len(labels)) or not questions:
        raise RagError(f"{folder}: a.toks, b.toks and sim.txt must have the same (non-zero) number of lines")
    return [Pair(_detok(q), _detok(s), float(label.strip() == "1"), "wikiqa")
            for q, s, label in zip(questions, sentences, labels, strict=True)]


def wikiqa_groups(folder: Path) -> list[tuple[str, list[str], list[bool]]]:
    """WikiQA's questions with their candidate sentences and labels, in file order (for MAP and MRR)."""
    groups: dict[str, tuple[list[str], list[bool]]] = {}
    for pair in wikiqa_pairs(folder):
        texts, labels = groups.setdefault(pair.question, ([], []))
        texts.append(pair.text)
        labels.append(pair.label > 0)
    return [(q, texts, labels) for q, (texts, labels) in groups.items()]


def _detok(text: str) -> str:
    """WikiQA's tokenised text ("formed ?", "did n't") closer to how people write it."""
    out = " ".join(text.split())
    for spaced, joined in ((" ?", "?"), (" .", "."), (" ,", ","), (" n't", "n't"), (" 's", "'s"), (" ;", ";"),
                           (" :", ":"), ("( ", "("), (" )", ")"), (" '", "'")):
        out = out.replace(spaced, joined)
    return out
