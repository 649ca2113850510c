"""`.ragignore`: patterns in gitignore's syntax, at the root of an ingested folder, for files to leave out.

Matched with pathspec (the library that implements git's rules: `drafts/`, `*.tmp.md`, `!keep.md`,
`/only-at-the-root.md`, `**/private/*`), against paths relative to that folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import pathspec

from rag.errors import SourceError
from rag.files import locked, write_atomic

IGNORE_FILE = ".ragignore"


class Ignore:
    """The `.ragignore` of one folder (none: nothing is ignored)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        path = root / IGNORE_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"{path}: cannot read it ({type(exc).__name__}); make it readable UTF-8 text "
                              "or remove it") from None
        self._spec = pathspec.GitIgnoreSpec.from_lines(lines) if lines else None

    def ignores(self, relative: str, folder: bool = False) -> bool:
        """Whether the file (or, with `folder`, the folder) at `relative` (posix, below the root) is left out."""
        if self._spec is None:
            return False
        return self._spec.match_file(relative + "/" if folder else relative)


def ignored_by_a_folder_above(path: Path) -> bool:
    """Whether the `.ragignore` of a folder holding `path` (at any depth) leaves it out: a file named
    by itself stays out when the folder it was removed from ignores it."""
    for folder in path.parents:
        if (folder / IGNORE_FILE).is_file() and Ignore(folder).ignores(path.relative_to(folder).as_posix()):
            return True
    return False


def add_to_ignore(root: Path, relative: str) -> None:
    """Append a line ignoring exactly the file at `relative` to the folder's `.ragignore` (created when
    missing), so that no later ingest brings it back; the line says why."""
    escaped = re.sub(r"([*?\[\]\\!#])", r"\\\1", relative)
    escaped = re.sub(r" $", r"\\ ", escaped)  # git drops trailing spaces unless escaped
    path = root / IGNORE_FILE
    line = f"/{escaped}"
    with locked(root / f"{IGNORE_FILE}.lock"):  # two removals at once: neither line is lost
        existing = path.read_text(encoding="utf-8") if path.is_file() else ""
        if line in existing.splitlines():
            return
        text = existing + ("" if not existing or existing.endswith("\n") else "\n")
        text += f"# removed from the index; delete this line to index it again\n{line}\n"
        write_atomic(path, text)  # never half a file
