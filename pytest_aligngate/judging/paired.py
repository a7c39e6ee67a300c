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


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def agreement_cells(a: JudgeAgreement) -> list[str]:
    """n, MAE, rho, agreement at the cut, both mean differences and whether they point the same way."""
    direction = {True: "same", False: "OPPOSITE", None: "-"}[a.same_direction]
    return [
        str(a.n),
        _num(a.mae, 3),
        _num(a.spearman),
        "-" if a.agreement_rate is None else f"{a.agreement_rate:.0%}",
        _num(a.mean_diff, 3),
        _num(a.second_mean_diff, 3),
        direction,
    ]


AGREEMENT_HEADERS = [
    "axis",
    "n",
    "MAE",
    "Spearman rho",
    "same side of cut",
    "cand - base (judge)",
    "cand - base (second)",
    "direction",
]


def agreement_markdown(verdicts: Sequence[AxisVerdict], judge: str) -> list[str]:
    """The "Judge agreement" section of report.md; empty when no axis has a second judge."""
    agreed = [(v.axis, v.judge_agreement) for v in verdicts if v.judge_agreement is not None]
    if not agreed:
        return []
    first = agreed[0][1]
    lines = [
        "",
        f"### Judge agreement: `{judge}` vs `{first.second_judge}` (second judge, not gating)",
        "",
        f"Cut {first.cut:g}: score >= cut counts as aligned.",
        "",
        "| " + " | ".join(AGREEMENT_HEADERS) + " |",
        "|" + "---|" * len(AGREEMENT_HEADERS),
    ]
    for axis, agreement in agreed:
        lines.append("| " + " | ".join([axis, *agreement_cells(agreement)]) + " |")
    return lines
