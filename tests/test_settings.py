"""Settings: wrong values name the variable in one line, and the README documents every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import SettingsError
from rag.settings import Settings


def test_bad_settings_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="RAG_CHUNK_OVERLAP"):
        Settings.load(chunk_overlap=300)
    with pytest.raises(SettingsError, match="RAG_K"):
        Settings.load(k=0)


def test_bad_environment_variable_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MODE", "magic")
    with pytest.raises(SettingsError) as err:
        Settings.load()
    assert "RAG_MODE" in str(err.value) and "\n" not in str(err.value)


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [f"RAG_{name.upper()}" for name in Settings.model_fields if f"`RAG_{name.upper()}`" not in readme]
    assert missing == []
