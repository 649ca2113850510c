"""The direction of imports (../shared/DESIGN.md): ui -> ingest -> rag, and ui -> rag, never back.

Every import statement counts, at the top of a module or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSITION_ROOT = ("ui.cli", "ui.eval", "ui.train")  # the `rag` command, evaluation, benchmarks, training


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
