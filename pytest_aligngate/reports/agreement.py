"""The second judge's agreement with the gate's judge, as report rows (``judge.second_judge``)."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_aligngate.records import AxisVerdict, JudgeAgreement
from pytest_aligngate.reports.text import fixed


def agreement_cells(a: JudgeAgreement) -> list[str]:
    """n, MAE, rho, agreement at the cut, both mean differences and whether they point the same way."""
    direction = {True: "same", False: "OPPOSITE", None: "-"}[a.same_direction]
    return [
        str(a.n),
        fixed(a.mae, 3),
        fixed(a.spearman),
        "-" if a.agreement_rate is None else f"{a.agreement_rate:.0%}",
        fixed(a.mean_diff, 3),
        fixed(a.second_mean_diff, 3),
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
