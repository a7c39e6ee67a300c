"""Server quirks and scripted models: how real servers differ, and hostile or broken endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerQuirks:
    """Behaviours real servers differ on (Ollama, vLLM, Hugging Face, gateways).

    Args:
        omit_usage: replies carry no ``usage`` (some Ollama and proxy versions).
        require_api_key: answer 401 unless ``Authorization: Bearer <key>`` or ``api-key: <key>`` is sent.
        loading: answer the first N chat requests 503 "model is loading" with ``estimated_time``.
        loading_time: the ``estimated_time`` (seconds) those 503 replies announce.
        reject_params: request fields answered with 400 "unsupported parameter" (e.g. ``("seed",)``).
        reasoning_field: ``sim:thinker`` sends its reasoning in ``reasoning_content``, not inline.
        listed_models: the ids ``GET /v1/models`` lists (default: none, answered 404).
        fallback_model: answer unknown model ids with this model, echoing the requested id
            (llama-cpp-python's server does so).
    """

    omit_usage: bool = False
    require_api_key: str | None = None
    loading: int = 0
    loading_time: float = 0.05
    reject_params: tuple[str, ...] = ()
    reasoning_field: bool = False
    listed_models: tuple[str, ...] | None = None
    fallback_model: str | None = None

    def refusal(self, headers: Any, body: dict[str, Any], served: int) -> tuple[int, dict[str, Any]] | None:
        """The error reply for a request, or None to answer it; ``served`` counts earlier chat requests."""
        key = self.require_api_key
        sent = (headers.get("Authorization", "").removeprefix("Bearer "), headers.get("api-key"))
        if key is not None and key not in sent:
            return 401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}}
        rejected = [name for name in self.reject_params if name in body]
        if rejected:
            message = f"unsupported parameter: {rejected[0]}"
            return 400, {"error": {"message": message, "type": "invalid_request_error"}}
        if served < self.loading:
            message = f"Model {body.get('model')} is currently loading"
            return 503, {"error": {"message": message}, "estimated_time": self.loading_time}
        return None


@dataclass(frozen=True)
class ScriptedReply:
    """What a scripted model sends back for one chat request.

    Args:
        content: the message's ``content`` (any JSON value: ``None`` sends ``content: null``).
        status: the HTTP status; with a status other than 200, ``body`` (or a generic error) is sent.
        body: a whole JSON body to send instead of a chat completion (error bodies, odd shapes).
        finish_reason: the choice's ``finish_reason``.
        raw: bytes to send as the body, as they are (a body that is not JSON).
        cut_body: announce the full body's length, send half of it and close (a dropped connection).
        model: the ``model`` field of the reply (default: the requested model).
    """

    content: Any = ""
    status: int = 200
    body: Any = None
    finish_reason: str = "stop"
    raw: bytes | None = None
    cut_body: bool = False
    model: Any = None




@dataclass
class RecordedRequest:
    """One request the server received, for tests to inspect."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
