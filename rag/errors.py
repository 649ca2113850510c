"""Errors meant for people: each names the thing that is wrong and what to do about it."""


class RagError(Exception):
    """Base of every error the assistant reports to a person in one line."""

    exit_code = 2


class SettingsError(RagError):
    """A setting (RAG_* variable or option) has a value that cannot work."""


class IndexMismatchError(RagError):
    """The index was built with other settings than the ones in force now."""


class IndexMissingError(RagError):
    """There is no index yet where the settings point."""


class StoreError(RagError):
    """The vector store cannot be reached or used."""


class SourceError(RagError):
    """A file cannot be read as a document (empty, binary, corrupt, too big, unreadable)."""


class SourceFilterError(RagError):
    """A question was limited to documents (`sources`) and no indexed document matches."""


class LLMError(RagError):
    """The generative backend failed; the message names the backend, its URL and what to do."""


class IngestLockedError(RagError):
    """Another ingest is writing to the same index."""


class ClusterError(RagError):
    """The Ray cluster an ingest was sent to cannot be reached or used (no workers, another model there)."""


def one_line(exc: object) -> str:
    """An error's text on one line (library messages can span several)."""
    return " ".join(str(exc).split())
