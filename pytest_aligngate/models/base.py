"""What every model adapter is: the protocol the base, candidate and judge each hold, and their
sampling settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pytest_aligngate.records import Completion

TOP_LOGPROBS = 5
LOGPROB_TOKENS = 5


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = None
    logprobs: bool = False
    """Ask for the top-5 logprobs of each answer token (forced-choice probes)."""
    response_format: dict[str, Any] | None = None
    """Sent as ``response_format`` (the judge's verdict schema); local models ignore it."""
    choice_max_tokens: int = 16
    """``max_tokens`` of forced-choice probes, whose answer is read from its first tokens."""


class ModelAdapter(Protocol):
    """Anything that can answer a chat: the base, the candidate and the judge each hold one."""

    model: str
    endpoint: str

    async def complete(self, messages: list[dict[str, str]], params: SamplingParams) -> Completion: ...

    async def aclose(self) -> None: ...
