"""One generative model server (an OpenAI-compatible one or Ollama, through llama-index): its client, built on
first use, the reply streamed as text pieces, a follow-up condensed, and every failure as one actionable line."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any

from rag.answer.guards import ECHO, TURN_END, plain_words
from rag.answer.prompt import CONDENSE
from rag.errors import LLMError
from rag.settings import Settings


def base_url(settings: Settings) -> str:
    if settings.llm_base_url:
        return settings.llm_base_url.rstrip("/")
    return "http://127.0.0.1:11434" if settings.llm == "ollama" else "https://api.openai.com/v1"


def make_llm(settings: Settings, judge: bool = False) -> Any:
    """The llama-index LLM the settings name (built without contacting the server); each reply is capped at
    `RAG_LLM_ANSWER_TOKENS` by the server (`max_tokens`, Ollama's `num_predict`), or, for the judge, at one token
    with its most likely alternatives' log-probabilities (where the server gives them)."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    tokens = 1 if judge else settings.llm_answer_tokens
    if settings.llm == "ollama":
        from llama_index.llms.ollama import Ollama

        headers = {"Authorization": f"Bearer {key}"} if key else None
        return Ollama(model=settings.llm_model or "", base_url=base_url(settings), temperature=0.0,
                      request_timeout=settings.llm_timeout_s, context_window=settings.llm_context_tokens,
                      headers=headers, additional_kwargs={"num_predict": tokens})
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(model=settings.llm_model or "", api_base=base_url(settings), api_key=key or "unused",
                      timeout=settings.llm_timeout_s, max_retries=0, is_chat_model=True, temperature=0.0,
                      context_window=settings.llm_context_tokens, max_tokens=tokens,
                      **({"logprobs": True, "top_logprobs": JUDGE_ALTERNATIVES} if judge else {}))


JUDGE_ALTERNATIVES = 5  # log-probabilities asked for the judge's one token: "yes", "no" and their spellings


class Backend:
    """One generative model server: its llama-index client (built on first use), streaming and errors."""

    def __init__(self, settings: Settings, llm: Any = None) -> None:
        self.settings = settings
        self.name = f"{settings.llm}:{settings.llm_model}"
        self.where = f"{settings.llm} at {base_url(settings)}"
        self._llm = llm
        self._judge: Any = None
        self._lock = threading.Lock()

    def judge(self, prompt: str) -> float | None:
        """The model's probability of "yes" to a yes/no `prompt`, from one token: its log-probabilities where the
        server gives them, else 1 or 0 for the word it wrote; None when it wrote neither or the call failed (the
        judge only ever adds to the embedding check, so a failure leaves the check as it was)."""
        from llama_index.core.llms import ChatMessage

        try:
            with self._lock:
                if self._judge is None:
                    self._judge = make_llm(self.settings, judge=True)
            response = self._judge.chat([ChatMessage(role="user", content=prompt)])
        except Exception:  # the clients raise many types; an unanswered judge is no verdict
            return None
        return yes_probability(str(response.message.content or ""), getattr(response, "logprobs", None))

    def deltas(self, messages: list[Any], finish: list[str] | None = None) -> Generator[str, None, None]:
        """The model's reply as text pieces (the server's reason for stopping is appended to `finish`);
        any failure becomes one `LLMError` naming backend and URL."""
        try:
            with self._lock:
                if self._llm is None:
                    self._llm = make_llm(self.settings)
            for response in self._llm.stream_chat(messages):
                if response.delta:
                    yield response.delta
                reason = _finish_reason(response.raw)
                if reason and finish is not None:
                    finish.append(reason)
        except LLMError:
            raise
        except Exception as exc:  # the clients raise many types: turn each into one actionable line
            raise LLMError(describe(exc, self.where, self.settings)) from None

    def condense(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        """The follow-up `question` rewritten by the model as a standalone question: the first line of its
        reply (reading stops there), refused when it echoes the prompt or runs on."""
        from llama_index.core.llms import ChatMessage

        conversation = "\n".join(f"{role}: {content}" for role, content in history[-6:])
        prompt = CONDENSE.format(conversation=conversation, question=question)
        deltas = self.deltas([ChatMessage(role="user", content=prompt)])
        began, text = time.monotonic(), ""
        try:
            for delta in deltas:
                text += delta
                if "\n" in text.strip() or len(text) > 1000 or time.monotonic() - began > self.settings.llm_answer_s:
                    break
        finally:
            deltas.close()
        line = next((ln for ln in text.splitlines() if ln.strip()), "")
        condensed = " ".join(line.split()).strip('"')
        words = plain_words(condensed)
        if (not condensed or len(condensed) > 300 or ECHO.search(line) or TURN_END.search(line)
                or words in plain_words(CONDENSE.format(conversation="", question=""))):
            raise LLMError(f"{self.where}: could not condense the follow-up (got {text[:80]!r})")
        return condensed


def yes_probability(text: str, logprobs: Any) -> float | None:
    """P("yes") against P("no") from the first token's alternatives (`[[LogProb(token, logprob), ...]]`), else from
    the word written."""
    alternatives = logprobs[0] if logprobs else []
    best: dict[str, float] = {}
    for alt in alternatives:
        word = str(getattr(alt, "token", "")).strip().lower()
        if word in ("yes", "no"):
            best[word] = max(best.get(word, -math.inf), float(getattr(alt, "logprob", -math.inf)))
    if best:
        yes, no = math.exp(best.get("yes", -math.inf)), math.exp(best.get("no", -math.inf))
        return yes / (yes + no)
    written = re.match(r"\W*(yes|no)\b", text, re.I)
    return None if written is None else 1.0 if written.group(1).lower() == "yes" else 0.0


def _finish_reason(raw: Any) -> str | None:
    """Why the server stopped the reply, when this chunk says (`stop`, `length`): OpenAI's chunks or Ollama's."""
    if isinstance(raw, dict):
        if raw.get("done_reason"):
            return str(raw["done_reason"])
        choices = raw.get("choices") or [{}]
        reason = choices[0].get("finish_reason") if isinstance(choices[0], dict) else None
        return str(reason) if reason else None
    choices = getattr(raw, "choices", None)
    reason = getattr(choices[0], "finish_reason", None) if choices else None
    return str(reason) if reason else None


def describe(exc: Exception, where: str, settings: Settings) -> str:
    """One line for a failed LLM call: what happened and what to change."""
    name = type(exc).__name__
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).replace("\n", " ")[:200]
    if "Timeout" in name or "timed out" in text.lower():
        return f"{where}: no answer within {settings.llm_timeout_s:g} s; raise RAG_LLM_TIMEOUT_S or use a faster model"
    if status in (401, 403) or "Authentication" in name or "PermissionDenied" in name:
        return f"{where}: the server refused the credentials ({status or name}); check RAG_LLM_API_KEY"
    if status == 404 or "NotFound" in name:
        return f"{where}: model {settings.llm_model!r} or the endpoint was not found (404); check RAG_LLM_MODEL " \
               "and RAG_LLM_BASE_URL"
    if "context" in text.lower() and ("length" in text.lower() or "window" in text.lower()):
        return f"{where}: the prompt is longer than the model's context ({text}); lower RAG_LLM_CONTEXT_TOKENS"
    if "RemoteProtocol" in name or "peer closed" in text.lower() or "incomplete" in text.lower():
        return f"{where}: the connection dropped in the middle of the answer ({name}); ask again"
    if "Connect" in name or "connection" in text.lower() or isinstance(exc, ConnectionError):
        return f"{where}: cannot connect; is the server running? check RAG_LLM_BASE_URL"
    if "JSONDecode" in name or "Validation" in name or isinstance(exc, (KeyError, TypeError, ValueError)):
        return f"{where}: malformed response ({name}: {text}); is RAG_LLM_BASE_URL a {settings.llm} server?"
    return f"{where}: {name}: {text or 'the request failed'}"
