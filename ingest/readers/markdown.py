"""Markdown and MDX, rendered by a Markdown parser (markdown-it-py) into plain blocks.

Links become their text and images their alt text; emphasis, inline code and HTML tags lose their
markers; headings are blocks of their own that open sections; code blocks stay whole between fence
lines; tables become header-named rows. YAML front matter is not text, but its `title:` is the title.
MDX is read as Markdown without its `import`/`export` lines and JSX expressions.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.readers.base import Read
from ingest.readers.blocks import Blocks
from ingest.readers.text import decode_text

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_YAML_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)
# MDX: ES module lines at the top level, and `{expressions}` standing alone on a line.
_MDX_MODULE = re.compile(r"^(?:import|export)\s[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*", re.M)
_MDX_EXPRESSION = re.compile(r"^[ \t]*\{[^\n]*\}[ \t]*$", re.M)


def read_md(data: bytes) -> Read:
    """A Markdown file: its headings are sections, its front matter title (or first `#` heading) its title."""
    text, meta_title = front_matter(decode_text(data))
    return render(text, meta_title)


def read_mdx(data: bytes) -> Read:
    """An MDX file: Markdown with JSX; module lines and `{...}` expression lines dropped, components' text kept."""
    text, meta_title = front_matter(decode_text(data))
    text = _MDX_EXPRESSION.sub("", _MDX_MODULE.sub("", text))
    return render(text, meta_title)


def front_matter(text: str) -> tuple[str, str]:
    """The text without its YAML front matter (`---` ... `---` at the top), and the front matter's `title:`."""
    found = _FRONT_MATTER.match(text)
    if not found:
        return text, ""
    title = next((m.group(1) for m in _YAML_TITLE.finditer(found.group(1))), "").strip().strip("'\"").strip()
    return text[found.end():], title


def render(text: str, title: str = "") -> Read:
    """Markdown source as blocks of plain text, with its headings as sections."""
    blocks = Blocks()
    tokens = _parser().parse(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "heading_open":
            blocks.heading(int(token.tag[1]), inline_text(tokens[i + 1]))
            i += 3
            continue
        if token.type == "table_open":
            i = _table(tokens, i, blocks)
            continue
        if token.type == "inline":
            blocks.add(inline_text(token))
        elif token.type in ("fence", "code_block"):
            blocks.code(token.content)
        elif token.type == "html_block":
            blocks.add(_inline_markdown(html_text(token.content)))
        i += 1
    return blocks.read(title)


def inline_text(token: Token) -> str:
    """An inline run as a reader sees it: links as their text, images as their alt text, no markers."""
    out: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "image"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
    return "".join(out)


def _inline_markdown(text: str) -> str:
    """Markdown inside a raw HTML or JSX block (`<Note>**Note**: use `x`</Note>`) as plain text."""
    return " ".join(inline_text(token) for token in _parser().parse(text) if token.type == "inline")


def html_text(html: str) -> str:
    """The text of a block of raw HTML (or JSX) inside Markdown, without its tags."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "svg"]):
        tag.decompose()
    return soup.get_text(" ")


def _table(tokens: list[Token], i: int, blocks: Blocks) -> int:
    """Read the table that opens at `tokens[i]` into `blocks`; the index after it."""
    rows: list[list[str]] = []
    while tokens[i].type != "table_close":
        if tokens[i].type == "tr_open":
            rows.append([])
        elif tokens[i].type == "inline" and rows:
            rows[-1].append(inline_text(tokens[i]))
        i += 1
    blocks.table(rows)
    return i + 1


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])
