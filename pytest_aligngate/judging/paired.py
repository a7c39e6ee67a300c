"""A second judge beside the gate's judge, and how well the two agree per axis.

With ``judge.second_judge: embedding`` every judged answer is also scored by the local embedding
judge (:class:`PairedJudge`); the row keeps both scores (``score`` and ``second_score``). Only
the first judge's score reaches the gate. Per axis, over the rows both judges scored,
:func:`judge_agreement` reports the mean absolute difference, Spearman's rank correlation, the
share of answers both put on the same side of ``thresholds.flip_cut`` and each judge's
candidate-minus-base mean (do they see the change the same way?)."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from pytest_aligngate.judging.base import JudgeResult, ScoringJudge
from pytest_aligngate.judging.embedding import JUDGE_MODEL, EmbeddingJudge
from pytest_aligngate.records import JudgeAgreement, ProbeResult

if TYPE_CHECKING:
    from pytest_aligngate.corpus.model import Probe
    from pytest_aligngate.records import AxisVerdict


J = TypeVar("J", bound=ScoringJudge)


class PairedJudge:
    """Scores with ``primary`` (whose result the gate uses), then adds ``second``'s score to it."""

    def __init__(self, primary: ScoringJudge, second: ScoringJudge) -> None:
        self.primary = primary
        self.second = second

    @property
    def model(self) -> str:
        return self.primary.model

    @property
    def rubric_version(self) -> str:
        return self.primary.rubric_version

    async def score(self, probe: Probe, response: str) -> JudgeResult:
        """The primary's result with ``second_score`` set; endpoint errors of the primary propagate.

        Both judges score at once, so the local second judge adds no latency to the primary's call.
        """
        result, second = await asyncio.gather(
            self.primary.score(probe, response), self.second.score(probe, response)
        )
        return replace(result, second_score=second.score)

    async def aclose(self) -> None:
        await self.primary.aclose()
        await self.second.aclose()


def paired_judge(primary: J, second_judge: str | None) -> J | PairedJudge:
    """``primary`` alone, or paired with the configured second judge (``"embedding"``)."""
    if second_judge is None:
        return primary
    return PairedJudge(primary, EmbeddingJudge())


def _mean_diff(pairs: Sequence[tuple[str, float]]) -> float | None:
    base = [score for role, score in pairs if role == "base"]
    candidate = [score for role, score in pairs if role == "candidate"]
    if not base or not candidate:
        return None
    return statistics.fmean(candidate) - statistics.fmean(base)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def judge_agreement(rows: Iterable[ProbeResult], cut: float) -> JudgeAgreement | None:
    """The agreement over rows both judges scored; None when no row has a second score."""
    rows = list(rows)
    if all(row.second_score is None for row in rows):
        return None
    both = [
        (row.role, row.score, row.second_score)
        for row in rows
        if row.error_kind is None and row.score is not None and row.second_score is not None
    ]
    if not both:
        return JudgeAgreement(second_judge=JUDGE_MODEL, n=0, cut=cut)
    first = [score for _, score, _ in both]
    second = [score for _, _, score in both]
    rho = None
    if len(both) >= 3 and len(set(first)) > 1 and len(set(second)) > 1:
        from scipy.stats import spearmanr

        rho = float(spearmanr(first, second).statistic)
    mean_diff = _mean_diff([(role, score) for role, score, _ in both])
    second_diff = _mean_diff([(role, score) for role, _, score in both])
    same = None if mean_diff is None or second_diff is None else _sign(mean_diff) == _sign(second_diff)
    return JudgeAgreement(
        second_judge=JUDGE_MODEL,
        n=len(both),
        mae=statistics.fmean(abs(a - b) for a, b in zip(first, second, strict=True)),
        spearman=rho,
        cut=cut,
        agreement_rate=statistics.fmean((a >= cut) == (b >= cut) for a, b in zip(first, second, strict=True)),
        mean_diff=mean_diff,
        second_mean_diff=second_diff,
        same_direction=same,
    )


def with_judge_agreement(verdict: AxisVerdict, rows: Iterable[ProbeResult], cut: float) -> AxisVerdict:
    """The verdict with its judge agreement (unchanged when no row has a second score)."""
    return verdict.model_copy(update={"judge_agreement": judge_agreement(rows, cut)})
