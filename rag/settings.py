"""One `Settings` object, read from `RAG_*` environment variables at the edge and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.errors import SettingsError
from rag.types import Fusion, Mode

DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"
EmbedBackend = Literal["torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    """Everything that can be configured; each field is also the variable `RAG_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="RAG_", frozen=True, extra="forbid")

    home: Path = Field(Path(".rag"), description="Folder of the embedded index (Chroma and BM25).")
    corpus: Path = Field(Path("corpus"), description="Folder `rag ingest` reads when given no path.")
    chroma_url: str | None = Field(
        None, description="Use a Chroma server (http://host:port) instead of the embedded store."
    )
    collection: str = Field("rag", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{1,40}$",
                            description="Name of the index inside Chroma.")
    embed_model: str = Field(
        DEFAULT_EMBED_MODEL,
        description="sentence-transformers model: the packaged default, or a local path.",
    )
    embed_batch_size: int = Field(32, ge=1, le=1024, description="Chunks embedded per batch.")
    embed_group: int = Field(
        2048, ge=1, le=100_000,
        description="Ingest embeds this many chunks together, shortest first, then writes them while it embeds "
                    "the next group.",
    )
    embed_backend: EmbedBackend = Field(
        "onnx", description="Runs the embedding model: `onnx` (onnxruntime; torch's vectors, faster, no torch "
                            "when asking), `onnx-int8` (weights quantised to int8: faster still, slightly different "
                            "vectors), `torch` (sentence-transformers).")
    models_dir: Path | None = Field(
        None, description="Where the ONNX exports of the embedding model are kept (default: RAG_HOME/models); "
                          "several indexes may share one.")
    cluster: str | None = Field(
        None, description="`rag ingest` reads, OCRs, chunks and embeds on this Ray cluster (HOST:PORT of the head, "
                          "ray://HOST:10001 from outside it, or auto: the one running here); unset: on this machine.")
    bm25_dir: Path | None = Field(
        None, description="Where BM25 snapshots are kept (default: RAG_HOME/bm25). With a Chroma server, give the "
                          "writer and every replica one shared folder: replicas then load the writer's snapshot "
                          "of each new index instead of building their own.")
    chunk_tokens: int = Field(256, ge=32, le=4096, description="Chunk size in cl100k_base tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    max_file_mb: float = Field(50.0, gt=0, description="Files larger than this are skipped.")
    # What one file may become (README, Failure behaviour): beyond a limit the file is refused, with the limit named.
    max_unpacked_mb: float = Field(
        256.0, gt=0, description="Most a zip-based document (.docx .xlsx .pptx .epub) may unpack to, its members "
                                 "together, by their declared sizes (checked before it is read).")
    max_zip_ratio: float = Field(
        100.0, ge=2, description="Most a member of a zip-based document over 1 MB may inflate per byte stored (real "
                                 "Office and EPUB files measured: 21 at most; zip bombs: 200-1,000).")
    max_text_mb: float = Field(20.0, gt=0, description="Most text one file may become (a 1,000-page book: 2-4 MB).")
    max_chunks: int = Field(25_000, ge=1, description="Most chunks one file may become.")
    max_pages: int = Field(5_000, ge=1, description="Most pages one PDF (or frames one image) may have.")
    max_ocr_pages: int = Field(500, ge=1, description="Most pages of one file read by OCR.")
    read_timeout_s: float = Field(
        120.0, gt=0, le=86400, description="A reader is stopped when one file takes longer than this (each page "
                                           "read by OCR starts the clock again).")
    read_memory_mb: float = Field(
        1536.0, ge=256, description="Memory (address space) the reader process may take for one file beyond "
                                    "its own start.")
    k: int = Field(5, ge=1, le=50, description="Passages given to the answerer.")
    candidates: int = Field(50, ge=1, le=1000, description="Hits taken from each retriever before fusion.")
    mode: Mode = Field("hybrid", description="Retrieval mode.")
    fusion: Fusion = Field(
        "zscore", description="How hybrid mode fuses dense and BM25: weighted z-scores, or reciprocal ranks.",
    )
    dense_weight: float = Field(0.5, ge=0.0, le=1.0, description="Weight of dense scores in `zscore` fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant (with RAG_FUSION=rrf).")
    per_source: int = Field(3, ge=1, description="At most this many passages from one document.")
    abstain_below: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Abstain when no sentence is this likely to answer nor close to the question (README, Abstention).",
    )
    max_sentences: int = Field(3, ge=1, le=10, description="Sentences in an extractive answer.")
    selector: bool = Field(
        True, description="Choose and judge extractive answers with the trained answer selector (a cross-encoder "
                          "shipped in rag/models); off: the embedding-feature scorer alone (faster, less sure).",
    )
    llm: Literal["extractive", "openai", "ollama"] = Field(
        "extractive",
        description="Answerer: `extractive` (offline), `openai` (any OpenAI-compatible server) or `ollama`.",
    )
    llm_base_url: str | None = Field(
        None, pattern=r"^https?://\S+$",
        description="Server URL (default: https://api.openai.com/v1 for openai, http://127.0.0.1:11434 for ollama).",
    )
    llm_model: str | None = Field(
        None, min_length=1, description="Model name on that server (required for openai and ollama).",
    )
    llm_api_key: SecretStr | None = Field(None, description="API key sent to the LLM server, if it needs one.")
    llm_timeout_s: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for the LLM before falling back.")
    llm_context_tokens: int = Field(
        4096, ge=512, le=1_000_000, description="Prompt budget in tokens (passages are packed up to it).",
    )
    llm_context: Literal["excerpts", "passages"] = Field(
        "excerpts", description="What the model reads: `excerpts`, the sentences the extractive ranking finds most "
                                "likely to answer (short prompts small local models answer from), or `passages`, "
                                "the retrieved passages whole (for large models).",
    )
    llm_judge: bool = Field(
        True, description="Ask the model (one token: yes or no) whether a passage says what a generated sentence "
                          "says when the embedding check finds the sentence weak or unsupported (a paraphrase).",
    )
    llm_answer_tokens: int = Field(
        512, ge=16, le=32768,
        description="Most tokens the model may write for one answer: sent as `max_tokens` and kept free in the "
                    "prompt budget.",
    )
    llm_answer_s: float = Field(
        120.0, gt=0, le=3600, description="Wall-clock cap on one generated answer: the reply is cut there.",
    )
    llm_fallback: bool = Field(
        True, description="On an LLM failure, or a reply with no sentence its passages support, answer "
                          "extractively (marked, with the reason) instead.",
    )
    unsupported: Literal["flag", "drop"] = Field(
        "flag", description="Generated sentences their citations do not support: kept and flagged, or dropped.",
    )
    users_db: Path | None = Field(
        None, description="The database of users, their roles and tokens (default: RAG_HOME/users.db); with a "
                          "user in it, `rag serve` wants a login.")
    auth: SecretStr | None = Field(
        None, description="`USER:PASS` required by `rag serve` for the page and the API (same as `--auth`).",
    )
    api_token: SecretStr | None = Field(
        None, description="Bearer token the HTTP API accepts (besides `--auth` credentials).",
    )
    concurrency: int = Field(4, ge=1, le=64, description="Questions `rag serve` answers at once.")
    ocr: Literal["auto", "off"] = Field(
        "auto", description="Read scanned PDF pages and images (.png .jpg .tiff) with Tesseract when it is installed.")
    ocr_lang: str = Field(
        "eng", pattern=r"^[A-Za-z_]{3,20}(\+[A-Za-z_]{3,20})*$",
        description="Tesseract languages for OCR, `+` between several (`eng+deu`); each needs its data "
                    "package (`apt-get install tesseract-ocr-deu`).")
    watch_poll: bool = Field(False, description="`rag watch` / `rag serve --watch` poll for changes instead of "
                                                "inotify (network filesystems, some containers).")
    watch_quiet_s: float = Field(1.0, gt=0, le=600, description="Seconds without changes before a watched "
                                                                "folder is synced (a burst of changes is one sync).")
    # The index lifecycle's timings (README, Architecture). Tests shorten them; users rarely need to.
    reader_recheck_s: float = Field(
        1.0, gt=0, le=3600, description="How often a reader (`rag serve`, `rag chat`) looks for a newer index.")
    publish_grace_s: float = Field(
        2.0, ge=0, le=3600, description="After an ingest publishes, how long the chunks it replaced stay for "
                                        "readers still on the old index (keep it above RAG_READER_RECHECK_S).")
    lock_ttl_s: float = Field(
        60.0, ge=1, le=86400, description="A writer's lock on a Chroma server lapses this long after its "
                                          "writer died (a live writer renews it).")
    chroma_connect_s: float = Field(10.0, gt=0, le=600, description="Seconds to wait for a Chroma server to answer "
                                                                   "at all before calling it unreachable.")
    chroma_request_s: float = Field(300.0, gt=0, le=86400, description="Seconds one Chroma server request may take.")

    @field_validator("auth")
    @classmethod
    def _check_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            credentials(value.get_secret_value())
        return value

    @field_validator("api_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters; generate one with `openssl rand -hex 24`")
        return value

    @model_validator(mode="after")
    def _check_llm(self) -> Settings:
        if self.llm != "extractive" and not self.llm_model:
            raise ValueError(f"RAG_LLM={self.llm} needs RAG_LLM_MODEL (the model's name on the server)")
        return self

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"RAG_CHUNK_OVERLAP ({self.chunk_overlap}) must be smaller than "
                f"RAG_CHUNK_TOKENS ({self.chunk_tokens})"
            )
        return self

    @property
    def models(self) -> Path:
        """Where the ONNX exports of the embedding model are kept: `RAG_MODELS_DIR`, else `RAG_HOME/models`."""
        return self.models_dir or self.home / "models"

    @property
    def bm25(self) -> Path:
        """Where BM25 snapshots are kept: `RAG_BM25_DIR`, else `RAG_HOME/bm25`."""
        return self.bm25_dir or self.home / "bm25"

    @property
    def users(self) -> Path:
        """Where the user database is: `RAG_USERS_DB`, else `RAG_HOME/users.db`."""
        return self.users_db or self.home / "users.db"

    @property
    def max_file_bytes(self) -> int:
        """`RAG_MAX_FILE_MB` in bytes: larger files are refused."""
        return int(self.max_file_mb * 2**20)

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment (plus `overrides`) and turn validation errors into one line."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None


def credentials(value: str) -> tuple[str, str]:
    """`USER:PASS` as (user, password).

    Raises:
        ValueError: either part is empty or there is no colon.
    """
    user, _, password = value.partition(":")
    if not user or not password:
        raise ValueError("must be USER:PASS with both parts non-empty")
    return user, password


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors():
        name = "_".join(str(p) for p in err["loc"]).upper()
        where = f"RAG_{name}" if name else "settings"
        secret = name in ("AUTH", "API_TOKEN", "LLM_API_KEY")
        value = f" (got {err['input']!r})" if name and not secret and not isinstance(err["input"], dict) else ""
        problems.append(f"{where}: {err['msg'].removeprefix('Value error, ')}{value}")
    return "invalid setting: " + "; ".join(problems) + "; fix the variable or option and retry"
