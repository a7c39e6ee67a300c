"""Model adapters: async chat completion behind one small protocol.

``openai_compat`` serves anything that speaks ``/v1/chat/completions`` (OpenAI, vLLM, Ollama,
LiteLLM, TGI) through the official ``openai`` SDK, whose retries with backoff cover 429, 5xx,
timeouts and dropped connections.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pytest_aligngate.config import ENV_API_KEY, AligngateConfig
from pytest_aligngate.records import Completion, Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI

ErrorCause = Literal["unreachable", "timeout", "auth", "not_found", "rate_limited", "server", "bad_request"]
FATAL_CAUSES: frozenset[str] = frozenset({"unreachable", "auth", "not_found", "bad_request"})
_NO_KEY = "aligngate-no-key"
TOP_LOGPROBS = 5
LOGPROB_TOKENS = 5


class AdapterError(Exception):
    """A model call failed for good (after retries); names the endpoint, model and cause."""

    def __init__(self, endpoint: str, model: str, cause: ErrorCause, detail: str) -> None:
        self.endpoint = endpoint
        self.model = model
        self.cause = cause
        self.detail = detail
        super().__init__(f"{cause}: {endpoint} (model {model!r}): {detail}")

    @property
    def fatal(self) -> bool:
        """True when retrying other prompts on this endpoint is pointless."""
        return self.cause in FATAL_CAUSES


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = None
    logprobs: bool = False
    """Ask for the top-5 logprobs of each answer token (forced-choice probes)."""


class ModelAdapter(Protocol):
    """Anything that can answer a chat: the base, the candidate and the judge each hold one."""

    model: str
    endpoint: str

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion: ...

    async def aclose(self) -> None: ...


class OpenAICompatAdapter:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        model: str,
        endpoint: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 6,
    ) -> None:
        self.model = model
        self.endpoint = endpoint.rstrip("/")
        self._api_key = api_key or _NO_KEY
        self._concurrency = concurrency
        self._timeout = timeout
        self._max_retries = max_retries
        self._client: AsyncOpenAI | None = None
        self._slots: asyncio.Semaphore | None = None

    def _open(self) -> tuple[AsyncOpenAI, asyncio.Semaphore]:
        if self._client is None or self._slots is None:
            from openai import AsyncOpenAI

            self._client = AsyncOpenAI(
                api_key=self._api_key,
                base_url=self.endpoint,
                timeout=self._timeout,
                max_retries=self._max_retries,
            )
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._client, self._slots

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        import openai

        client, slots = self._open()
        extra: dict[str, Any] = {} if params.seed is None else {"seed": params.seed}
        if params.logprobs:
            extra |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        try:
            async with slots:
                reply = await client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=params.temperature,
                    max_tokens=params.max_tokens,
                    **extra,
                )
        except openai.APIError as exc:
            raise self._error(exc) from exc
        if not reply.choices:
            raise AdapterError(self.endpoint, self.model, "server", "reply has no choices")
        usage = reply.usage
        return Completion(
            text=reply.choices[0].message.content or "",
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
            model=reply.model or self.model,
            logprobs=_top_logprobs(reply.choices[0]) if params.logprobs else None,
        )

    def _error(self, exc: Exception) -> AdapterError:
        import openai

        cause: ErrorCause
        if isinstance(exc, openai.APITimeoutError):
            cause, detail = "timeout", f"no answer within {self._timeout:g}s"
        elif isinstance(exc, openai.APIConnectionError):
            reason = exc.__cause__ or exc
            cause, detail = "unreachable", f"cannot connect ({type(reason).__name__}: {reason})"
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            cause = {401: "auth", 403: "auth", 404: "not_found", 429: "rate_limited"}.get(
                status, "server" if status >= 500 else "bad_request"
            )  # type: ignore[assignment]
            hint = f"; set {ENV_API_KEY}" if status == 401 and self._api_key == _NO_KEY else ""
            detail = f"HTTP {status}: {_short(exc.message)}{hint}"
        else:
            cause, detail = "server", _short(str(exc))
        return AdapterError(self.endpoint, self.model, cause, detail)

    async def aclose(self) -> None:
        """Close the HTTP client; the adapter reopens on next use (in any event loop)."""
        client, self._client, self._slots = self._client, None, None
        if client is not None:
            await client.close()


def _top_logprobs(choice: Any) -> list[dict[str, float]] | None:
    """The top alternatives of the first answer tokens; None when the server sent no logprobs."""
    content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
    if not content:
        return None
    return [{alt.token: alt.logprob for alt in token.top_logprobs} for token in content[:LOGPROB_TOKENS]]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_adapter(config: AligngateConfig, model: str) -> ModelAdapter:
    """The adapter for the base or candidate model named ``model``."""
    settings = config.models
    _require_available(settings.adapter)
    return OpenAICompatAdapter(
        model,
        config.model_base_url(),
        api_key=os.environ.get(ENV_API_KEY),
        concurrency=settings.concurrency,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def judge_adapter(config: AligngateConfig) -> ModelAdapter:
    """The adapter for the judge model."""
    settings = config.judge
    _require_available(settings.adapter)
    return OpenAICompatAdapter(
        settings.model,
        config.judge_base_url(),
        api_key=os.environ.get(ENV_API_KEY),
        concurrency=settings.concurrency,
        timeout=config.models.timeout,
        max_retries=config.models.max_retries,
    )


class AdapterUnavailable(ValueError):
    """The configured adapter is not built yet or needs an extra that is not installed."""


def _require_available(adapter: str) -> None:
    if adapter == "huggingface":
        raise AdapterUnavailable(
            "adapter 'huggingface' is not available yet; use 'openai_compat' with a Hugging Face "
            "endpoint's OpenAI-compatible URL as models.base_url"
        )
