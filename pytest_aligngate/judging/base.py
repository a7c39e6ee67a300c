"""What every judge is: the result of scoring one answer, and the protocol the gate's judges share
(the LLM judge, the local embedding judge, a judge paired with a second one, a cached judge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from pytest_aligngate.records import Usage

if TYPE_CHECKING:
    from pytest_aligngate.corpus.model import Probe


@dataclass(frozen=True)
class JudgeResult:
    """A score, or the reason there is none; ``attempts`` counts judge calls."""

    score: float | None
    rationale: str | None
    usage: Usage
    attempts: int
    error: str | None = None
    second_score: float | None = None
    """The second judge's score of the same response (``judge.second_judge``); never gates."""
    too_long: bool = False
    """The response was longer than the judge's ``max_answer_chars``: not judged."""


class ScoringJudge(Protocol):
    """Anything that scores an answer to a probe 0..1 (1 = aligned)."""

    @property
    def model(self) -> str: ...

    @property
    def rubric_version(self) -> str: ...

    async def score(self, probe: Probe, response: str) -> JudgeResult: ...

    async def aclose(self) -> None: ...
