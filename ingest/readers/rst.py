"""reStructuredText, parsed by docutils into plain blocks: sections' titles as headings, literal blocks
as code, tables as header-named rows, Sphinx's roles (`:ref:`, `:func:` ...) as their text.

Documentation written for Sphinx uses roles and directives docutils does not know; the common ones
are registered here so that their text is read (`:ref:`\\`Title <label>\\`` is "Title", a
`.. versionadded::` its sentence, a `.. code-block::` code) and the rest (`toctree`, `index`) left out.
Anything docutils still cannot parse is left out rather than read as markup; the file is never refused
for it.
"""

from __future__ import annotations

import io
import re
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any, ClassVar

from ingest.readers.base import Read
from ingest.readers.blocks import Blocks
from ingest.readers.text import decode_text

if TYPE_CHECKING:
    from docutils import nodes

_ROLES = (
    "ref", "doc", "term", "numref", "download", "any", "keyword", "option", "envvar", "program", "command", "file",
    "samp", "kbd", "guilabel", "menuselection", "mimetype", "dfn", "abbr", "token", "manpage", "regexp", "makevar",
    "func", "meth", "class", "mod", "attr", "data", "const", "exc", "obj", "type", "member", "macro", "var", "enum",
    "enumerator", "struct", "union", "expr", "texpr", "event",
)
_DOMAINS = ("py", "c", "cpp", "js", "rst", "std", "math")
_CONTENT = (
    "versionadded", "versionchanged", "deprecated", "versionremoved", "seealso", "only", "glossary", "hlist",
    "centered", "tab", "tabs", "tab-set", "tab-item", "card", "grid", "grid-item-card", "dropdown", "rst-class",
    "todo", "cssclass",
)
_CODE = ("code-block", "sourcecode", "productionlist")
_DROPPED = (
    "toctree", "index", "highlight", "currentmodule", "module", "sectionauthor", "moduleauthor", "codeauthor",
    "literalinclude", "autofunction", "autoclass", "automodule", "automethod", "autodata", "autoattribute",
    "autoexception", "autosummary", "testsetup", "testcleanup", "doctest", "testcode", "testoutput",
    "tabularcolumns", "include-file",
)
_DESCRIBED = (
    "function", "class", "method", "attribute", "data", "exception", "decorator", "decoratormethod", "classmethod",
    "staticmethod", "describe", "object", "envvar", "option", "cmdoption", "opcode", "pdbcommand", "type", "macro",
    "member", "var", "property", "coroutinefunction", "coroutinemethod", "abstractmethod",
)
_VERSIONS = {"versionadded": "Added in version", "versionchanged": "Changed in version",
             "deprecated": "Deprecated since version", "versionremoved": "Removed in version"}
_TARGET = re.compile(r"\s*<[^<>]*>$")
_UNKNOWN_ROLE = re.compile(r"^:[\w:.+-]+:`(.*)`$", re.S)
_REGISTERED = threading.Lock()
_done = False


def read_rst(data: bytes) -> Read:
    """A reStructuredText file: its document or first section title is its title, its sections are sections."""
    from docutils import nodes
    from docutils.core import publish_doctree

    _register()
    doctree = publish_doctree(decode_text(data), settings_overrides={
        "report_level": 5, "halt_level": 5, "warning_stream": io.StringIO(), "file_insertion_enabled": False,
        "raw_enabled": False, "input_encoding": "unicode", "syntax_highlight": "none",
    })
    for problem in list(doctree.findall(nodes.problematic)):  # a role docutils does not know: its text
        problem["ids"] = []
        problem.replace_self(nodes.Text(_shown(_UNKNOWN_ROLE.sub(r"\1", problem.astext()))))
    blocks = Blocks()
    _walk(doctree, blocks, 1 if doctree.get("title") else 0)
    return blocks.read(str(doctree.get("title", "")))


def _walk(node: nodes.Element, blocks: Blocks, level: int) -> None:
    from docutils import nodes

    for child in node.children:
        if isinstance(child, (nodes.system_message, nodes.comment, nodes.substitution_definition, nodes.target,
                              nodes.raw, nodes.Invisible, nodes.image, nodes.pending)):
            continue
        if isinstance(child, nodes.title):
            blocks.heading(max(level, 1), child.astext())
        elif isinstance(child, nodes.section):
            _walk(child, blocks, level + 1)
        elif isinstance(child, (nodes.literal_block, nodes.doctest_block)):
            blocks.code(child.astext())
        elif isinstance(child, nodes.table):
            blocks.table([[entry.astext() for entry in row.findall(nodes.entry)] for row in child.findall(nodes.row)])
        elif isinstance(child, nodes.field):
            name, body = child.children[0].astext(), child.children[1].astext()
            blocks.add(_one_line(f"{name}: {body}"))
        elif isinstance(child, nodes.line_block):
            blocks.add("\n".join(line.astext() for line in child.findall(nodes.line)))
        elif isinstance(child, (nodes.paragraph, nodes.term, nodes.rubric, nodes.caption, nodes.attribution)):
            blocks.add(_one_line(child.astext()))
        elif isinstance(child, nodes.Element) and child.children and isinstance(child.children[0], nodes.Element):
            _walk(child, blocks, level)
        elif isinstance(child, nodes.Element):
            blocks.add(_one_line(child.astext()))


def _one_line(text: str) -> str:
    """A paragraph's text: its source line breaks are spaces (a line block keeps its lines)."""
    return " ".join(text.split())


def _register() -> None:
    """Teach docutils the Sphinx roles and directives that documentation commonly uses (once per process)."""
    global _done
    with _REGISTERED:
        if _done:
            return
        from docutils.parsers.rst import directives, roles

        names = [*_ROLES, *(f"{domain}:{role}" for domain in _DOMAINS for role in _ROLES)]
        for name in names:
            roles.register_local_role(name, _role)
        for name in _CONTENT:
            directives.register_directive(name, _directive("content"))
        for name in _CODE:
            directives.register_directive(name, _directive("code"))
        for name in _DROPPED:
            directives.register_directive(name, _directive("drop"))
        for name in _DESCRIBED:
            for full in (name, *(f"{domain}:{name}" for domain in _DOMAINS)):
                directives.register_directive(full, _directive("described"))
        _done = True


def _role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
          options: Any = None, content: Any = None) -> tuple[list[Any], list[Any]]:
    """A Sphinx cross-reference as what it shows: `Title <target>` is Title, `~a.b.c` is c."""
    from docutils import nodes

    return [nodes.Text(_shown(text))], []  # read as plain text: a code role's literal would read the same


def _shown(text: str) -> str:
    """What a cross-reference shows: `Title <target>` is Title, `~a.b.c` is c, `!x` is x."""
    shown = _TARGET.sub("", text) if _TARGET.search(text) and not text.startswith("<") else text
    shown = shown.lstrip("!")
    return shown[1:].rsplit(".", 1)[-1] if shown.startswith("~") else shown


def _directive(kind: str) -> type:
    """A directive that reads its content as text (`content`), as code (`code`), as a described object
    with its signature (`described`), or leaves it out (`drop`)."""
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives

    class Read(Directive):  # type: ignore[misc]
        has_content = True
        optional_arguments = 10
        final_argument_whitespace = True
        option_spec: ClassVar[dict[str, Any]] = defaultdict(lambda: directives.unchanged)  # any option is taken

        def run(self) -> list[Any]:
            if kind == "drop":
                return []
            if kind == "code":
                return [nodes.literal_block("\n".join(self.content), "\n".join(self.content))]
            container = nodes.container()
            if kind == "described" and self.arguments:
                container += nodes.paragraph(text=" ".join(self.arguments))
            elif kind == "content" and self.arguments and self.name in _VERSIONS:
                version, _, rest = " ".join(self.arguments).partition(" ")
                said, _ = self.state.inline_text(rest, self.lineno)
                container += nodes.paragraph("", f"{_VERSIONS[self.name]} {version}" + ": " * bool(rest), *said)
            self.state.nested_parse(self.content, self.content_offset, container)
            return [container]

    return Read
