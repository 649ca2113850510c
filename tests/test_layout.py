"""The direction of imports (../shared/DESIGN.md): ui -> ingest -> rag, and ui -> rag, never back.

Every import statement counts, at the top of a module or inside a function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = ("ui.cli", "ui.eval", "ui.bench", "ui.train")  # the `rag` command, evaluation, benchmarks, training


def _module(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, root: Path) -> set[str]:
    """Every module an import statement of the file names (relative imports resolved)."""
    package = _module(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _offenders(package: str, forbidden: tuple[str, ...], exempt: tuple[str, ...] = (),
               root: Path = ROOT) -> dict[str, list[str]]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        if _within(_module(path, root), exempt):
            continue
        bad = sorted(name for name in _imports(path, root) if _within(name, forbidden))
        if bad:
            out[str(path.relative_to(root))] = bad
    return out


def test_the_domain_imports_neither_ingest_nor_ui() -> None:
    assert _offenders("rag", ("ingest", "ui")) == {}


def test_ingest_never_imports_ui() -> None:
    assert _offenders("ingest", ("ui",)) == {}


def test_only_the_composition_root_imports_evaluation_and_the_command() -> None:
    assert _offenders("rag", COMPOSITION_ROOT) == {}
    assert _offenders("ingest", COMPOSITION_ROOT) == {}
    assert _offenders("ui", COMPOSITION_ROOT, exempt=COMPOSITION_ROOT) == {}


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    (tmp_path / "rag" / "sub").mkdir(parents=True)
    (tmp_path / "rag" / "late.py").write_text("def later() -> None:\n    from ingest.pipeline import run\n"
                                              "    import ui.app\n")
    (tmp_path / "rag" / "sub" / "rel.py").write_text("from .. import store\nfrom ..ui_like import x\n")
    assert _offenders("rag", ("ingest", "ui"), root=tmp_path) == {
        "rag/late.py": ["ingest.pipeline", "ingest.pipeline.run", "ui.app"]}
    assert _offenders("rag", ("rag.store",), root=tmp_path) == {"rag/sub/rel.py": ["rag.store"]}


def _cycles(package: str, depth: int, root: Path = ROOT) -> list[list[str]]:
    """Groups of modules of `package` that import each other, directly or round a loop, with every module
    taken as its first `depth` name parts (depth 2: `rag.answer.llm` counts as the package `rag.answer`)."""
    modules = {_module(path, root): path for path in sorted((root / package).rglob("*.py"))}

    def node(name: str) -> str:
        return ".".join(name.split(".")[:depth])

    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        for imported in _imports(path, root):
            owners = [m for m in modules if _within(imported, (m,))]
            if owners:
                a, b = node(name), node(max(owners, key=len))
                if a != b and not _within(a, (b,)) and not _within(b, (a,)):  # a package and its own parts
                    edges.setdefault(a, set()).add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {n: reach(n) for n in edges}
    loops = {frozenset({a, *(b for b in reached[a] if a in reached.get(b, ()))}) for a in edges if a in reached[a]}
    return sorted(sorted(loop) for loop in loops)


def test_the_domain_has_no_import_cycle_between_modules_or_packages() -> None:
    assert _cycles("rag", 3) == []
    assert _cycles("rag", 2) == []


def test_the_cycle_check_sees_a_loop_through_a_package(tmp_path: Path) -> None:
    (tmp_path / "rag" / "answer").mkdir(parents=True)
    (tmp_path / "rag" / "answer" / "__init__.py").write_text("")
    (tmp_path / "rag" / "answer" / "llm.py").write_text("from rag.support import check\n")
    (tmp_path / "rag" / "support.py").write_text("from rag.answer.features import Coverage\n")
    (tmp_path / "rag" / "answer" / "features.py").write_text("Coverage = 1\n")
    assert _cycles("rag", 3, root=tmp_path) == []
    assert _cycles("rag", 2, root=tmp_path) == [["rag.answer", "rag.support"]]


def test_import_is_cheap_and_silent() -> None:
    code = ("import sys, rag, ingest, ui, ui.cli, rag.assistant; "
            "print(sorted(m for m in ('torch', 'chromadb', 'gradio', 'sentence_transformers', 'llama_index') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]" and out.stderr == ""
