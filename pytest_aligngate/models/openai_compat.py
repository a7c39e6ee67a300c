"""Models behind an OpenAI-compatible ``/v1/chat/completions`` endpoint (OpenAI, vLLM, Ollama, LiteLLM,
llama.cpp's server, Hugging Face, Azure), through the official SDK.

Longer than most modules: one adapter class, its two provider variants and the defensive reading
of replies they share (every field of a reply is untrusted), kept together so no other module needs
to know a reply's shape."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from pytest_aligngate.config.schema import (
    DEFAULT_MAX_ANSWER_CHARS,
    ENV_HF_TOKEN,
    ResolvedRole,
)
from pytest_aligngate.errors import AdapterError, ErrorCause
from pytest_aligngate.models.base import LOGPROB_TOKENS, TOP_LOGPROBS, SamplingParams
from pytest_aligngate.models.endpoints import (
    SHARED_POOL,
    Endpoint,
    EndpointLimits,
    EndpointPool,
    estimate_prompt_tokens,
)
from pytest_aligngate.records import Completion, Usage
from pytest_aligngate.safe_text import redact

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from pytest_aligngate.models.budget import Budget, Charge


_CONTEXT_LENGTH = re.compile(
    r"context[ _-]?(?:length|window|size)|maximum context|too many tokens|prompt is too long|exceeds? the",
    re.I,
)
_NO_KEY = "aligngate-no-key"
LOADING_WAIT_LIMIT = 300.0
"""Seconds to keep retrying a model that answers 503 "loading" (cold Hugging Face / TGI endpoints)."""
_LOADING_STEP = (0.05, 30.0)


class OpenAICompatAdapter:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``system_prompt`` is sent as the first message only when the probe has no system message of its
    own (a probe's system prompt is part of the test). ``temperature``/``max_tokens``, when set,
    replace the caller's values (per-role settings). ``extra_body`` fields are merged into every
    request. Reasoning a server returns apart (``reasoning_content``) comes back as a leading
    ``<think>`` block of the text, the same form as models that write it inline.

    Adapters of one ``group`` ("models" or "judge") calling the same endpoint with the same
    credentials and limits share one SDK client and one concurrency bound (see :mod:`endpoints`).
    """

    def __init__(
        self,
        model: str,
        endpoint: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        group: str = "models",
        pool: EndpointPool = SHARED_POOL,
        budget: Budget | None = None,
        timeout: float = 60.0,
        max_retries: int = 6,
        api_key_env: str | None = None,
        extra_headers: dict[str, str] | None = None,
        extra_body: dict[str, Any] | None = None,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_answer_chars: int = DEFAULT_MAX_ANSWER_CHARS,
    ) -> None:
        self.model = model
        self.endpoint = endpoint.rstrip("/")
        self._api_key = api_key or _NO_KEY
        self._api_key_env = api_key_env
        self._limits = EndpointLimits(concurrency, requests_per_minute, tokens_per_minute)
        self._group = group
        self._pool = pool
        self._budget = budget
        if budget is not None:
            budget.price(model)  # a budget needs every called model's price: fail at setup, not mid-run
        self._timeout = timeout
        self._max_retries = max_retries
        self._headers = dict(extra_headers or {})
        self._extra_body = dict(extra_body or {})
        self._system_prompt = system_prompt
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._max_answer_chars = max_answer_chars
        self._endpoint: Endpoint | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: ResolvedRole, model: str, **kwargs: Any) -> OpenAICompatAdapter:
        """An adapter for ``model`` with one role's resolved settings.

        Raises:
            ConfigError: an ``extra_headers`` value names an unset environment variable.
        """
        return cls(
            model,
            settings.base_url,
            api_key=settings.api_key(),
            api_key_env=settings.api_key_env,
            concurrency=settings.concurrency,
            requests_per_minute=settings.requests_per_minute,
            tokens_per_minute=settings.tokens_per_minute,
            group="judge" if settings.role == "judge" else "models",
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            extra_headers=settings.headers(),
            extra_body=settings.extra_body,
            system_prompt=settings.system_prompt,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            max_answer_chars=settings.max_answer_chars,
            **kwargs,
        )

    def _client_settings(self) -> dict[str, Any]:
        """What every SDK client of this adapter shares: key, timeout, retries, headers."""
        return {
            "api_key": self._api_key,
            "timeout": self._timeout,
            "max_retries": self._max_retries,
            "default_headers": self._headers or None,
        }

    def _make_client(self) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        return AsyncOpenAI(base_url=self.endpoint, **self._client_settings())

    def _share_key(self) -> tuple[object, ...]:
        """What must match for two adapters to share a client: group, kind, endpoint and client settings."""
        settings = self._client_settings()
        headers = tuple(sorted((settings.pop("default_headers") or {}).items()))
        return (self._group, type(self).__name__, self.endpoint, headers, *sorted(settings.items()))

    def _open(self) -> Endpoint:
        """This adapter's endpoint in the running event loop (leased from the pool on first use)."""
        loop = asyncio.get_running_loop()
        if self._endpoint is None or self._loop is not loop:
            self._endpoint = self._pool.lease(self._share_key(), self._limits, self._make_client)
            self._loop = loop
        return self._endpoint

    def _chat(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        if self._system_prompt is None or any(m.get("role") == "system" for m in messages):
            return messages
        return [{"role": "system", "content": self._system_prompt}, *messages]

    async def _create(self, client: AsyncOpenAI, **request: Any) -> dict[str, Any]:
        """One chat completion's JSON body; a 503 "model loading" reply is waited out (LOADING_WAIT_LIMIT).

        The SDK sends the request (retries, backoff, errors) but two of its per-call conversions are
        skipped, being most of the client's CPU at high concurrency: the messages travel in
        ``extra_body``, which the SDK merges into the JSON body last (the bytes sent are the same),
        so they are not walked against its typed request schema (about 3 ms per judge prompt); and
        the reply is read as JSON (``with_raw_response``) instead of typed objects (about 1 ms).
        """
        import openai

        request["extra_body"] = {**request.get("extra_body", {}), "messages": request["messages"]}
        request["messages"] = []
        deadline = time.monotonic() + LOADING_WAIT_LIMIT
        malformed = 0
        while True:
            try:
                raw = await client.chat.completions.with_raw_response.create(**request)
                body = json.loads(raw.content)
                if not isinstance(body, dict):
                    raise ValueError(f"expected a JSON object, got {type(body).__name__}")
                return body
            except openai.APIStatusError as exc:
                wait = _loading_wait(exc)
                if wait is None or time.monotonic() + wait > deadline:
                    raise
                await asyncio.sleep(wait)
            except ValueError as exc:  # a 200 whose body is not JSON: the SDK does not retry those
                malformed += 1
                if malformed > self._max_retries:
                    detail = f"reply body is not JSON after {malformed} tries ({exc})"
                    raise AdapterError(self.endpoint, self.model, "server", detail) from exc
                await asyncio.sleep(min(0.5 * 2 ** (malformed - 1), 8.0) * (1 - 0.25 * random.random()))

    def request(self, messages: list[dict[str, str]], params: SamplingParams) -> dict[str, Any]:
        """The exact chat-completion arguments sent for these messages (what a cache keys on)."""
        request: dict[str, Any] = {
            "model": self.model,
            "messages": self._chat(messages),
            "temperature": params.temperature if self._temperature is None else self._temperature,
            "max_tokens": params.max_tokens if self._max_tokens is None else self._max_tokens,
        }
        if params.seed is not None:
            request["seed"] = params.seed
        if params.logprobs:
            request |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if params.response_format is not None:
            request["response_format"] = params.response_format
        if self._extra_body:
            request["extra_body"] = self._extra_body
        return request

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion:
        import openai

        from pytest_aligngate.models.budget import BudgetExceeded

        endpoint = self._open()
        request = self.request(messages, params)
        prompt_tokens = estimate_prompt_tokens(request["messages"])
        tokens = prompt_tokens + request["max_tokens"]
        try:
            async with endpoint.slot():
                await endpoint.admit(tokens)
                with self._charge(prompt_tokens, request["max_tokens"]) as charge:
                    reply = await self._create(await endpoint.client(), **request)
                    usage = _usage(reply)
                    if charge is not None:
                        charge.usage = usage
        except openai.APIError as exc:
            raise self._error(exc) from exc
        except BudgetExceeded as exc:
            raise AdapterError(self.endpoint, self.model, "budget", str(exc)) from None
        endpoint.settle(tokens, usage.prompt_tokens + usage.completion_tokens if usage else None)
        try:
            choice, message, model = _reply_parts(reply)
            logprobs = _top_logprobs(choice) if params.logprobs else None
        except _Malformed as exc:
            raise AdapterError(self.endpoint, self.model, "server", f"malformed reply: {exc}") from None
        text = redact(_with_reasoning(message))  # before the cap: a cut secret would leak its start
        cap = self._max_answer_chars
        return Completion(
            text=text[:cap],
            usage=usage or Usage(),
            model=model or self.model,
            logprobs=logprobs,
            truncated=len(text) > cap,
            cut_off=choice.get("finish_reason") == "length",
        )

    async def listed_models(self) -> set[str] | None:
        """The model ids the endpoint lists (``GET /models``); None when it lists none or cannot."""
        import openai

        endpoint = self._open()
        try:
            client = (await endpoint.client()).with_options(max_retries=0, timeout=min(self._timeout, 10.0))
            page = await client.models.list()
        except (openai.APIError, ValueError, TypeError):
            return None
        ids = {str(getattr(model, "id", "")) for model in getattr(page, "data", None) or []}
        ids.discard("")
        return ids or None

    async def check_listed(self) -> bool:
        """Whether the endpoint's model list was checked: True when it lists this model id, False
        when it lists no models. Some servers (llama-cpp-python's) answer an unknown id with their
        default model and echo the id back, so a typo would reach the wrong model.

        Raises:
            AdapterError: ``not_found``, naming what the endpoint lists, when the id is not among them.
        """
        listed = await self.listed_models()
        if listed is None:
            return False
        if self.model not in listed:
            shown = ", ".join(sorted(listed)[:20]) + (", ..." if len(listed) > 20 else "")
            detail = f"the server does not list this model id (it lists: {shown}); check it for a typo"
            raise AdapterError(self.endpoint, self.model, "not_found", detail)
        return True

    def _charge(self, prompt_tokens: int, max_tokens: int) -> AbstractContextManager[Charge | None]:
        """The call's charge against the run's budget (none without a budget)."""
        if self._budget is None:
            return nullcontext()
        return self._budget.charge(self.model, prompt_tokens, max_tokens)

    def _error(self, exc: Exception) -> AdapterError:
        import openai

        cause: ErrorCause
        if isinstance(exc, openai.APITimeoutError):
            cause, detail = "timeout", f"no answer within {self._timeout:g}s"
        elif isinstance(exc, openai.APIConnectionError) and _cut_mid_body(exc.__cause__):
            reason = exc.__cause__
            cause, detail = "server", f"connection closed in the middle of the reply ({reason})"
        elif isinstance(exc, openai.APIConnectionError):
            reason = exc.__cause__ or exc
            cause, detail = "unreachable", f"cannot connect ({type(reason).__name__}: {reason})"
        elif isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            cause = {401: "auth", 403: "auth", 404: "not_found", 429: "rate_limited"}.get(
                status, "server" if status >= 500 else "bad_request"
            )  # type: ignore[assignment]
            detail = f"HTTP {status}: {_short(exc.message)}{self._hint(status, exc.message)}"
            if status in (400, 413) and _CONTEXT_LENGTH.search(exc.message):
                cause, detail = "context_length", f"{detail} (the prompt does not fit the model's context)"
        else:
            cause, detail = "server", _short(str(exc))
        return AdapterError(self.endpoint, self.model, cause, detail)

    def _hint(self, status: int, message: str) -> str:
        """What to do about an HTTP error, naming the key's variable (never the key)."""
        if status == 401 and self._api_key_env:
            state = "is not set" if self._api_key == _NO_KEY else "holds a key this server rejects"
            return f"; {self._api_key_env} {state}"
        if status == 401:
            return "; no API key is configured (set api_key_env)"
        if status == 400 and "seed" in message.lower():
            return "; this server rejects `seed`: leave models.seed unset"
        if status == 503 and "loading" in message.lower():
            return f"; the model was still loading after {LOADING_WAIT_LIMIT:g}s"
        return ""

    async def aclose(self) -> None:
        """Release the endpoint (its client closes with its last user); the adapter reopens on next use."""
        endpoint, self._endpoint, self._loop = self._endpoint, None, None
        if endpoint is not None:
            await self._pool.release(endpoint)


class _Malformed(ValueError):
    """A reply field has the wrong JSON type; the message names the field."""


def _field(value: Any, name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
    """``value`` when it has JSON type ``kind`` (or is null and ``optional``); else :class:`_Malformed`."""
    if (value is None and optional) or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    wanted = " or ".join(dict.fromkeys(names[k] for k in (kind if isinstance(kind, tuple) else (kind,))))
    got = "null" if value is None else type(value).__name__
    raise _Malformed(f"{name} is {got}, expected {wanted}")


def _reply_parts(reply: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """The first choice, its message and the reply's model, each checked for its JSON type."""
    choices = _field(reply.get("choices"), "choices", list)
    if not choices:
        raise _Malformed("choices is empty")
    choice = _field(choices[0], "choices[0]", dict)
    message = _field(choice.get("message"), "choices[0].message", dict)
    _field(message.get("content"), "choices[0].message.content", str, optional=True)
    for key in ("reasoning_content", "reasoning"):
        _field(message.get(key), f"choices[0].message.{key}", str, optional=True)
    return choice, message, _field(reply.get("model"), "model", str, optional=True)


def _cut_mid_body(reason: BaseException | None) -> bool:
    """True for a connection the server closed after starting, not finishing, its reply body.

    Matched by name: the SDK's HTTP library differs across versions (``httpx``, ``httpx2``).
    """
    return type(reason).__name__ == "RemoteProtocolError" and "message body" in str(reason)


def _usage(reply: dict[str, Any]) -> Usage | None:
    """The reply's token usage; None when the server reports none (or not as numbers)."""
    usage = reply.get("usage")
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens")]
    prompt, completion = (
        n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0 for n in counts
    )
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _top_logprobs(choice: dict[str, Any]) -> list[dict[str, float]] | None:
    """The top alternatives of the first answer tokens; None when the server sent no logprobs."""
    logprobs = _field(choice.get("logprobs"), "choices[0].logprobs", dict, optional=True) or {}
    content = _field(logprobs.get("content"), "choices[0].logprobs.content", list, optional=True)
    if not content:
        return None
    top = []
    for index, token in enumerate(content[:LOGPROB_TOKENS]):
        where = f"choices[0].logprobs.content[{index}]"
        alternatives = _field(
            _field(token, where, dict).get("top_logprobs"), f"{where}.top_logprobs", list, optional=True
        )
        entries = [_field(alt, f"{where}.top_logprobs[]", dict) for alt in alternatives or []]
        top.append(
            {
                _field(alt.get("token"), f"{where}.top_logprobs[].token", str): float(
                    _field(alt.get("logprob"), f"{where}.top_logprobs[].logprob", (int, float))
                )
                for alt in entries
            }
        )
    return top


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _with_reasoning(message: dict[str, Any]) -> str:
    """The reply text, with reasoning sent in a separate field put back as a leading ``<think>`` block."""
    text = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in text:
        return f"<think>{reasoning}</think>\n{text}"
    return text


def _loading_wait(exc: Any) -> float | None:
    """Seconds to wait before retrying a 503 "model is loading" reply; None for any other error.

    Reads ``Retry-After`` (header) or ``estimated_time`` (Hugging Face body), clamped to a few
    seconds per step so a long estimate is re-checked.
    """
    if exc.status_code != 503:
        return None
    try:
        body = exc.response.json()  # the SDK's exc.body drops top-level fields such as estimated_time
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    nested = body.get("error")
    inner = nested if isinstance(nested, dict) else {}
    estimate = body.get("estimated_time", inner.get("estimated_time"))
    header = exc.response.headers.get("retry-after")
    if estimate is None and header is None and "loading" not in exc.message.lower():
        return None
    try:
        seconds = float(header or estimate or 1.0)
    except (TypeError, ValueError):
        seconds = 1.0
    low, high = _LOADING_STEP
    return min(max(seconds, low), high)


class HuggingFaceAdapter(OpenAICompatAdapter):
    """A model on Hugging Face: the Inference Providers router, or a dedicated endpoint / TGI as base_url."""

    async def listed_models(self) -> set[str] | None:
        """None: the router lists ids without the ``:provider`` suffixes its requests may carry."""
        return None

    def _hint(self, status: int, message: str) -> str:
        key = self._api_key_env or ENV_HF_TOKEN
        hints = {
            401: f"; the Hugging Face token is missing or invalid: set {key} to a token allowed to call "
            "Inference Providers",
            403: "; the token may not use this model: accept the licence of a gated model on its "
            "huggingface.co page, or use a token with the Inference Providers permission",
            404: "; no provider serves this model id (check the id and its :provider suffix), or the "
            "dedicated endpoint is not deployed",
        }
        return hints.get(status) or super()._hint(status, message)


class AzureOpenAIAdapter(OpenAICompatAdapter):
    """An Azure OpenAI deployment: ``model`` is the deployment name, ``endpoint`` the resource URL."""

    def __init__(self, model: str, endpoint: str, *, api_version: str, **kwargs: Any) -> None:
        super().__init__(model, endpoint, **kwargs)
        self.api_version = api_version

    async def listed_models(self) -> set[str] | None:
        """None: ``model`` is a deployment name, which Azure's model list does not hold."""
        return None

    def _share_key(self) -> tuple[object, ...]:
        return (*super()._share_key(), self.api_version)

    def _make_client(self) -> AsyncOpenAI:
        from openai import AsyncAzureOpenAI

        return AsyncAzureOpenAI(
            azure_endpoint=self.endpoint, api_version=self.api_version, **self._client_settings()
        )
