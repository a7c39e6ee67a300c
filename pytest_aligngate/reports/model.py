"""The report's data: run metadata, paired prompt rows and the report itself."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

from pydantic import BaseModel

from pytest_aligngate.judging.drift import DriftReport
from pytest_aligngate.records import AxisVerdict, ProbeResult, Usage

WORST_PROMPTS = 3


class BudgetSummary(BaseModel):
    """The run's spending against ``budget``: calls actually sent, at their reported usage."""

    limit_usd: float
    spent_usd: float
    stopped: bool
    """True when calls were not made because they would have gone over the budget."""


class RunMeta(BaseModel):
    """What was compared, with what, and when."""

    tool_version: str
    run_id: str
    base: str
    candidate: str
    judge: str
    rubric_version: str
    corpus_version: str
    corpus_digest: str
    config_digest: str
    config_path: str | None = None
    seed: int
    sample: int | None = None
    started_at: str
    finished_at: str | None = None
    usage: dict[str, Usage] = {}
    cost: dict[str, float] = {}
    """Estimated USD per role and "total", for models with a ``pricing`` entry (cached answers included)."""
    budget: BudgetSummary | None = None
    samples_per_prompt: int = 1


class PromptRow(BaseModel):
    """One prompt with both models' answers side by side."""

    prompt_id: str
    axis: str
    base_response: str | None = None
    candidate_response: str | None = None
    base_score: float | None = None
    candidate_score: float | None = None
    base_rationale: str | None = None
    candidate_rationale: str | None = None
    base_refusal: bool = False
    candidate_refusal: bool = False
    base_error: str | None = None
    candidate_error: str | None = None
    base_scores: list[float] = []
    candidate_scores: list[float] = []
    base_sd: float | None = None
    candidate_sd: float | None = None
    base_second_score: float | None = None
    """The second judge's mean score (``judge.second_judge``); never gates."""
    candidate_second_score: float | None = None

    @property
    def change(self) -> float | None:
        if self.base_score is None or self.candidate_score is None:
            return None
        return self.candidate_score - self.base_score


class Report(BaseModel):
    """The content of ``report.json``."""

    meta: RunMeta
    overall_status: str
    exit_code: int
    axes: list[AxisVerdict]
    prompts: list[PromptRow]
    judge_drift: DriftReport | None = None


def pair_rows(rows: Iterable[ProbeResult]) -> list[PromptRow]:
    """Join base and candidate rows of the same prompt, in first-seen order.

    With k samples per prompt, ``*_score`` is the mean of the scored samples (the value the test
    uses), ``*_scores`` lists them and ``*_sd`` is their spread; response, rationale and refusal
    are the first sample's, the error the first one met.
    """
    paired: dict[str, dict[str, object]] = {}
    scores: dict[tuple[str, str], list[float]] = {}
    second: dict[tuple[str, str], list[float]] = {}
    for row in sorted(rows, key=lambda r: r.sample_index):
        entry = paired.setdefault(row.probe_id, {"prompt_id": row.probe_id, "axis": row.axis})
        scores.setdefault((row.probe_id, row.role), [])
        if f"{row.role}_response" not in entry:
            entry |= {
                f"{row.role}_response": row.response,
                f"{row.role}_rationale": row.rationale,
                f"{row.role}_refusal": row.refusal,
            }
        if row.error is not None and entry.get(f"{row.role}_error") is None:
            entry[f"{row.role}_error"] = row.error
        if row.score is not None and row.error_kind is None:
            scores[(row.probe_id, row.role)].append(row.score)
            if row.second_score is not None:
                second.setdefault((row.probe_id, row.role), []).append(row.second_score)
    for (prompt_id, role), values in scores.items():
        paired[prompt_id] |= {
            f"{role}_scores": values,
            f"{role}_score": statistics.fmean(values) if values else None,
            f"{role}_sd": statistics.stdev(values) if len(values) > 1 else None,
        }
    for (prompt_id, role), values in second.items():
        paired[prompt_id][f"{role}_second_score"] = statistics.fmean(values)
    return [PromptRow.model_validate(entry) for entry in paired.values()]


def total_usage(rows: Iterable[ProbeResult]) -> dict[str, Usage]:
    """Token usage per role and for the judge."""
    usage = {"base": Usage(), "candidate": Usage(), "judge": Usage()}
    for row in rows:
        usage[row.role] = usage[row.role] + row.usage
        usage["judge"] = usage["judge"] + row.judge_usage
    return usage


def worst_prompts(rows: Iterable[ProbeResult], limit: int = WORST_PROMPTS) -> list[PromptRow]:
    """The prompts whose score dropped most from base to candidate."""
    dropped = [p for p in pair_rows(rows) if p.change is not None and p.change < 0]
    return sorted(dropped, key=lambda p: p.change or 0.0)[:limit]
