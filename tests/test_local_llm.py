"""The packaged instruct models: chunk packages joined in order into one GGUF, checked by sha256, reused."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.errors import RagError
from ui.local_llm import MODELS, Packaged, assemble, main

PIECES = [b"GGUF" + b"a" * 5000, b"b" * 7000, b"c" * 10]


@pytest.fixture
def packaged(tmp_path: Path) -> Iterator[Packaged]:
    """Three chunk packages like the real ones (`<name>N/data/partNN.bin`) on sys.path."""
    root = tmp_path / "site"
    for n, piece in enumerate(PIECES, start=1):
        data = root / f"fakemodel_part{n}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"part{n:02d}.bin").write_bytes(piece)
    sys.path.insert(0, str(root))
    try:
        yield Packaged("fake", "fake.gguf", "fakemodel_part", len(PIECES),
                       hashlib.sha256(b"".join(PIECES)).hexdigest())
    finally:
        sys.path.remove(str(root))
        for n in range(1, len(PIECES) + 1):
            sys.modules.pop(f"fakemodel_part{n}", None)


def test_the_pieces_are_joined_in_order_and_reused_once_checked(packaged: Packaged, tmp_path: Path) -> None:
    path = assemble(packaged, tmp_path / "models")
    assert path.read_bytes() == b"".join(PIECES) and path.name == "fake.gguf"
    made = path.stat().st_mtime_ns
    assert assemble(packaged, tmp_path / "models").stat().st_mtime_ns == made  # not written again
    path.write_bytes(b"GGUF tampered")  # a changed file is not taken for the checked one
    assert assemble(packaged, tmp_path / "models").read_bytes() == b"".join(PIECES)


def test_a_wrong_checksum_leaves_no_file_and_says_how_to_fix_it(packaged: Packaged, tmp_path: Path) -> None:
    wrong = Packaged(packaged.name, packaged.file, packaged.package, packaged.parts, "0" * 64)
    with pytest.raises(RagError, match=r"fake: the assembled file's sha256 is [0-9a-f]{64}, not 0{64}; reinstall"):
        assemble(wrong, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_piece_names_its_package(packaged: Packaged, tmp_path: Path) -> None:
    more = Packaged(packaged.name, packaged.file, packaged.package, 4, packaged.sha256)
    with pytest.raises(RagError, match=r"its package fakemodel_part4 is not installed; run `make llm-install`"):
        assemble(more, tmp_path / "models")


def test_the_command_names_the_models_it_knows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpt-5"]) == 2
    assert "choose one of qwen2.5-coder-1.5b, qwen2.5-coder-0.5b" in capsys.readouterr().err
    assert {m.sha256 for m in MODELS.values()} == {
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"}
