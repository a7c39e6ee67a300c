"""The record types that flow from the runner through stats into reports."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

Role = Literal["base", "candidate"]
ErrorKind = Literal["api", "scoring", "budget", "empty"]
"""``budget``: the call was not sent, its worst case would take the run past ``budget``; ``empty``:
the model answered nothing (``content: null``, blank, or only reasoning), which is never judged."""


def encodable(text: str) -> str:
    """``text`` with lone surrogates (valid in JSON escapes, not in UTF-8) replaced by U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


Text = Annotated[str, AfterValidator(encodable)]
"""Any text a model or endpoint sent: always encodable as UTF-8, so every file can hold it."""
ScoredBy = Literal["judge", "choice", "logprob"]


class Usage(BaseModel):
    """Token usage of one or more calls (zero where a server does not report it)."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class Completion(BaseModel):
    """What a model adapter returns for one request."""

    text: Text
    usage: Usage = Usage()
    model: Text = ""
    logprobs: list[dict[str, float]] | None = None
    """Top alternatives (token -> log probability) of the first answer tokens, when requested."""
    truncated: bool = False
    """The answer was longer than ``models.max_answer_chars`` and was cut there."""
    cut_off: bool = False
    """The model stopped at ``max_tokens`` (``finish_reason: length``): the answer may be incomplete."""


class ProbeResult(BaseModel):
    """One probe answered by one model and scored: the row every report is a view of."""

    model_config = ConfigDict(extra="forbid")

    probe_id: str
    axis: str
    role: Role
    model: str
    sample_index: int = 0
    response: Text | None = None
    usage: Usage = Usage()
    refusal: bool = False
    truncated: bool = False
    """The answer was cut at ``models.max_answer_chars``."""
    cut_off: bool = False
    """The model stopped at ``max_tokens`` (``finish_reason: length``)."""
    judge_clipped: bool = False
    """The answer was longer than ``judge.max_answer_chars``: the judge saw its start only."""
    score: float | None = None
    rationale: Text | None = None
    scored_by: ScoredBy | None = None
    second_score: float | None = None
    """The second judge's score (``judge.second_judge``), beside ``score``; never gates."""
    judge_usage: Usage = Usage()
    error_kind: ErrorKind | None = None
    error: Text | None = None
    injection_suspected: bool = False
    """The answer addresses the judge or holds score-like text (shown to reviewers; never gates)."""
